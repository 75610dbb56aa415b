//! Benchmark 9 (`make bench BENCH=large`): the plan of a job from a file of 1,000,000 and
//! 10,000,000 rows (a Profile Field Update CSV, 39 bytes a row: 0.39 GB at 10 M) in
//! LocalStack's S3, each in a process of its own: ours streams it
//! (`jobs_core::worker::write_item_list`: segments and a chunk index); the baseline reads
//! the whole file and cuts its items in memory, as the plan of inline items does. Figures:
//! peak RSS (`VmHWM`), wall time, S3 requests. Then the 1,000,000-row file's job runs end to
//! end through the deployed stack: items/s, DynamoDB write requests per item, and what its
//! coordination costs at AWS prices beside two other designs ([`crate::cost`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use jobs_core::aws::{LazyClient, S3InputStore, s3_client};
use jobs_core::domain::chunk::{MAX_CHUNK_BYTES, chunk_items};
use jobs_core::domain::file::{JobFile, PROFILE_ROWS, SEGMENT_BYTES};
use jobs_core::ports::InputStore;
use serde_json::{Value, json};

use crate::{Env, Goal, Row};

const SIZES: [u64; 2] = [1_000_000, 10_000_000];
/// Items of the job run end to end by the deployed stack (LocalStack gives the worker 10 s
/// an invocation, so its plan pauses and continues): `BENCH_LARGE_ITEMS`, 1,000,000 unless
/// set. LocalStack runs one chunk at a time (about 160 items/s here), so a smaller job
/// measures the same per-item figures sooner.
fn through_the_stack() -> Result<u64> {
    match std::env::var("BENCH_LARGE_ITEMS") {
        Ok(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=10_000_000).contains(n))
            .context("BENCH_LARGE_ITEMS: a whole number from 1 to 10,000,000"),
        Err(_) => Ok(1_000_000),
    }
}
/// Profile Field Update's chunk size (its registry entry).
const CHUNK_SIZE: usize = 100;
/// A Lambda's smallest useful memory size: the goal for the plan's peak, whatever the file.
const GOAL_MIB: f64 = 128.0;

/// The CSV of `rows` rows, written once under `.artifacts/`.
fn file_of(rows: u64) -> Result<PathBuf> {
    let path = infra::artifacts_dir().join(format!("large-{rows}.csv"));
    if path.exists() {
        return Ok(path);
    }
    let partial = path.with_extension("partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    out.write_all(b"user_id\n")?;
    for i in 0..rows {
        writeln!(out, "user-{i:033}")?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

fn key_of(rows: u64) -> String {
    format!("uploads/bench-large/{rows}.csv")
}

pub async fn run(env: &Env) -> Result<Vec<Row>> {
    let s3 = s3_client(&env.config);
    let bucket = &env.outputs["InputBucketName"];
    let me = std::env::current_exe()?;
    let mut table = Vec::new();
    // Seconds of each size's plan in one process, beside the deployed worker's.
    let mut planned = std::collections::BTreeMap::new();
    for rows in SIZES {
        let path = file_of(rows)?;
        let bytes = std::fs::metadata(&path)?.len();
        let key = key_of(rows);
        let stored = s3
            .head_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .ok()
            .and_then(|h| h.content_length());
        if stored != Some(bytes as i64) {
            eprintln!("bench large: uploading {} MB to S3", bytes / 1_000_000);
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .content_type("text/csv")
                .body(aws_sdk_s3::primitives::ByteStream::from_path(&path).await?)
                .send()
                .await?;
        }
        eprintln!("bench large: planning {rows} rows (ours, then the baseline)");
        let ours = case(&me, "ours", rows, bytes)?;
        let naive = case(&me, "naive", rows, bytes)?;
        anyhow::ensure!(
            ours["total"] == rows && naive["total"] == rows,
            "both count every row: {ours} {naive}"
        );
        let mib = |v: &Value| v["rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0;
        let secs = |v: &Value| v["secs"].as_f64().unwrap_or(f64::NAN);
        table.push(Row::new(
            &format!("9. plan a {rows}-row file: peak RSS, MiB"),
            mib(&ours),
            mib(&naive),
            Some(Goal::OursAtMost(GOAL_MIB)),
            format!(
                "{:.0} MB file; ours streams it, the baseline holds it and its items",
                bytes as f64 / 1e6
            ),
        ));
        planned.insert(rows, secs(&ours));
        table.push(Row::new(
            &format!("9. plan a {rows}-row file: seconds"),
            secs(&ours),
            secs(&naive),
            None,
            format!(
                "{:.0} rows/s; S3: 1 GET, {} PUTs ({} segments + index), {} chunks",
                rows as f64 / secs(&ours),
                ours["segments"].as_u64().unwrap_or(0) + 1,
                ours["segments"],
                ours["chunks"]
            ),
        ));
    }
    let items = through_the_stack()?;
    let in_process = planned.get(&items).copied().unwrap_or(f64::NAN);
    table.extend(end_to_end(env, &file_of(items)?, items, in_process).await?);
    Ok(table)
}

/// The tenant whose profiles the end-to-end job updates (written once per LocalStack).
const BENCH_TENANT: &str = "bench-large";
/// The worker's memory (the template's `MemorySize`), for GB-seconds.
const WORKER_GB: f64 = 0.25;

/// The profiles of the file's users under [`BENCH_TENANT`], written once: a marker item
/// says they are there.
async fn seed_profiles(env: &Env, rows: u64) -> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    use futures::{StreamExt, TryStreamExt};
    let dynamo = aws_sdk_dynamodb::Client::new(&env.config);
    let table = env.outputs["ProfilesTableName"].clone();
    let marker = format!("~seeded-{rows}");
    let seeded = dynamo
        .get_item()
        .table_name(&table)
        .key("tenant", S(BENCH_TENANT.into()))
        .key("user_id", S(marker.clone()))
        .send()
        .await?
        .item
        .is_some();
    if seeded {
        return Ok(());
    }
    eprintln!("bench large: writing {rows} profiles (once per LocalStack)");
    let started = Instant::now();
    let done = std::sync::atomic::AtomicU64::new(0);
    futures::stream::iter((0..rows).step_by(10_000))
        .map(|from| {
            let (dynamo, table, done) = (&dynamo, &table, &done);
            async move {
                let items = (from..(from + 10_000).min(rows))
                    .map(|i| {
                        std::collections::HashMap::from([
                            ("tenant".to_string(), S(BENCH_TENANT.into())),
                            ("user_id".to_string(), S(format!("user-{i:033}"))),
                            ("locale".to_string(), S("en".into())),
                        ])
                    })
                    .collect();
                infra::seed::put_items(dynamo, table, items).await?;
                let n = done.fetch_add(10_000, std::sync::atomic::Ordering::Relaxed) + 10_000;
                if n % 100_000 == 0 {
                    eprintln!(
                        "bench large: {n} profiles written ({:.0} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    dynamo
        .put_item()
        .table_name(&table)
        .item("tenant", S(BENCH_TENANT.into()))
        .item("user_id", S(marker))
        .send()
        .await?;
    Ok(())
}

/// LocalStack's log (host mode), where it names every AWS request it serves from outside
/// (`AWS dynamodb.TransactWriteItems => 200`): not the event source mapping's own receives
/// and deletes, nor its invokes.
fn localstack_log() -> PathBuf {
    infra::repo_root().join("localstack/.run/localstack.log")
}

/// Requests by `service.Operation` in the log from byte `from` on.
fn requests_since(from: u64) -> Result<std::collections::BTreeMap<String, f64>> {
    use std::io::{BufRead, Seek};
    let mut log = std::fs::File::open(localstack_log())?;
    log.seek(std::io::SeekFrom::Start(from))?;
    let mut counts = std::collections::BTreeMap::new();
    for line in std::io::BufReader::new(log).lines() {
        let line = line?;
        if let Some(rest) = line.split("localstack.request.aws").nth(1)
            && let Some(op) = rest.split("AWS ").nth(1).and_then(|r| r.split(' ').next())
        {
            *counts.entry(op.to_string()).or_insert(0.0) += 1.0;
        }
    }
    Ok(counts)
}

/// The worker's invocations since `since` (ms since the epoch) and their summed duration in
/// seconds, from the `REPORT` lines of its log group.
async fn invocations(env: &Env, function: &str, since: i64) -> Result<(f64, f64)> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.config);
    let (mut count, mut seconds) = (0.0, 0.0);
    let mut token = None;
    loop {
        let page = logs
            .filter_log_events()
            .log_group_name(format!("/aws/lambda/{function}"))
            .start_time(since)
            .filter_pattern("REPORT")
            .set_next_token(token)
            .send()
            .await?;
        for event in page.events() {
            let message = event.message().unwrap_or_default();
            if !message.starts_with("REPORT") {
                continue;
            }
            if let Some(ms) = message
                .split("Duration: ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<f64>().ok())
            {
                count += 1.0;
                seconds += ms / 1000.0;
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok((count, seconds))
}

/// One Profile Field Update job of `rows` items from the file, end to end through the
/// deployed stack: `POST /uploads`, the presigned `PUT`, `POST /jobs`, then polls until
/// the job ends. Figures: seconds until planned (against the in-process plan's), items/s,
/// DynamoDB write requests per item, and the cost of the coordination per 1,000,000 items
/// beside the per-item design and Distributed Map ([`crate::cost`]).
async fn end_to_end(
    env: &Env,
    path: &std::path::Path,
    rows: u64,
    in_process: f64,
) -> Result<Vec<Row>> {
    seed_profiles(env, rows).await?;
    let http = infra::http_client().build()?;
    let url = &env.outputs["ApiUrl"];
    let token = infra::token::dev_token(
        &infra::token::secret()?,
        BENCH_TENANT,
        "bench",
        jobs_core::domain::auth::Role::Operator,
        std::time::Duration::from_secs(7200),
    )?;
    let upload: Value = http
        .post(format!("{url}/uploads"))
        .bearer_auth(&token)
        .json(&json!({"content_type": "text/csv"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut put = http
        .put(upload["url"].as_str().context("upload url")?)
        .body(std::fs::read(path)?);
    for (name, value) in upload["headers"].as_object().context("upload headers")? {
        put = put.header(name.as_str(), value.as_str().unwrap_or_default());
    }
    put.send().await?.error_for_status()?;
    let log_from = std::fs::metadata(localstack_log())
        .context("LocalStack's log (host mode: localstack/.run/localstack.log)")?
        .len();
    let since_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let started = Instant::now();
    let job: Value = http
        .post(format!("{url}/jobs"))
        .bearer_auth(&token)
        .json(&json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de"}, "input": {"upload_id": upload["upload_id"]}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = job["id"].as_str().context("job id")?.to_string();
    let mut planned_after = None;
    let mut pauses = std::collections::BTreeSet::new();
    let mut reported = 0;
    let ended = loop {
        let now: Value = http
            .get(format!("{url}/jobs/{id}"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if let Some(read) = now["rows_read"].as_u64() {
            pauses.insert(read);
        }
        if planned_after.is_none() && now["progress"]["total"].as_u64().unwrap_or(0) > 0 {
            planned_after = Some(started.elapsed().as_secs_f64());
        }
        let done = now["progress"]["succeeded"].as_u64().unwrap_or(0)
            + now["progress"]["failed"].as_u64().unwrap_or(0);
        let step = (rows / 10).max(1);
        if done >= reported + step {
            reported = done - done % step;
            eprintln!(
                "bench large: {done} of {rows} items ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        if !matches!(now["status"].as_str(), Some("queued" | "running")) {
            break now;
        }
        // A twentieth of the rows in seconds (20 items/s, an eighth of LocalStack's pace
        // here), and at least an hour.
        let limit = (rows / 20).max(3_600);
        anyhow::ensure!(
            started.elapsed().as_secs() < limit,
            "job {id} not ended after {limit} s: {now}"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        ended["status"] == "completed" && ended["progress"]["succeeded"] == rows,
        "every profile updated: {ended}"
    );
    // The last REPORT lines reach the log group a moment after the job ends.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let counted = requests_since(log_from)?;
    let count = |op: &str| counted.get(op).copied().unwrap_or(0.0);
    let stack = env.outputs["ApiFunctionName"].trim_end_matches("-api");
    let (invokes, busy) =
        invocations(env, &format!("{stack}-profile-field-update"), since_ms).await?;
    let items = rows as f64;
    // One profile UpdateItem per item is the work itself; the rest coordinates.
    let transactions = count("dynamodb.TransactWriteItems");
    let single_writes = count("dynamodb.UpdateItem") - items
        + count("dynamodb.PutItem")
        + count("dynamodb.DeleteItem");
    let writes = transactions + single_writes + count("dynamodb.BatchWriteItem");
    let job_kib = (serde_json::to_vec(&ended)?.len() as f64 / 1024.0).ceil();
    let ours = crate::cost::Usage {
        lambda_requests: invokes,
        lambda_gb_seconds: busy * WORKER_GB,
        // The mapping's receive and delete per batch are not in the log: one each.
        sqs_requests: count("sqs.SendMessage") + count("sqs.SendMessageBatch") + 2.0 * invokes,
        // A transaction writes a chunk's ledger item (under 1 KiB) and the job, 2 units a KiB.
        write_units: transactions * 2.0 * (1.0 + job_kib) + single_writes * job_kib,
        read_units: count("dynamodb.GetItem") + count("dynamodb.Query"),
        s3_puts: count("s3.PutObject") + count("s3.UploadPart"),
        s3_gets: count("s3.GetObject"),
        ..crate::cost::Usage::default()
    };
    let per_item = crate::cost::per_item(items, job_kib);
    // A child does one chunk's work: our busy time per chunk.
    let chunks = (items / CHUNK_SIZE as f64).ceil();
    let map = crate::cost::distributed_map(items, CHUNK_SIZE as f64, busy / chunks);
    // Per 1,000,000 items: the run's usage scaled, breakdowns included.
    let scale = 1e6 / items;
    let (ours, per_item, map) = (
        ours.scaled(scale),
        per_item.scaled(scale),
        map.scaled(scale),
    );
    let dollars = |u: &crate::cost::Usage| u.dollars();
    Ok(vec![
        Row::new(
            &format!("9. a {rows}-row file planned by the deployed worker: seconds"),
            planned_after.unwrap_or(f64::NAN),
            in_process,
            None,
            format!(
                "baseline: the same plan in one process; LocalStack's 10 s invocations: paused {} times",
                pauses.len()
            ),
        ),
        Row::new(
            &format!("9. a {rows}-item Profile Field Update job through the stack: items/s"),
            items / secs,
            f64::NAN,
            None,
            format!(
                "{secs:.0} s from POST /jobs to completed; {invokes:.0} worker invocations, {busy:.0} s busy (LocalStack on 2 cores, not AWS)"
            ),
        ),
        Row::new(
            &format!("9. DynamoDB write requests per item, {rows}-item job"),
            writes / items,
            1.0,
            Some(Goal::OursAtMost(0.025)),
            format!(
                "{transactions:.0} TransactWriteItems, {single_writes:.0} other writes of the Jobs table; baseline: a counter write per item; the {rows} profile writes are the work itself"
            ),
        ),
        Row::new(
            "9. coordination cost per 1,000,000 items, $ (baseline: a message, an invocation and a write per item)",
            dollars(&ours),
            dollars(&per_item),
            None,
            format!(
                "ours: {}; baseline: {}",
                ours.breakdown(),
                per_item.breakdown()
            ),
        ),
        Row::new(
            "9. coordination cost per 1,000,000 items, $ (baseline: Distributed Map, Express children of 100 items)",
            dollars(&ours),
            dollars(&map),
            None,
            format!(
                "baseline: {}; ours counts LocalStack's durations as GB-s (an AWS run would differ); prices: docs/performance.md",
                map.breakdown()
            ),
        ),
    ])
}

fn case(me: &std::path::Path, which: &str, rows: u64, bytes: u64) -> Result<Value> {
    let out = Command::new(me)
        .args(["large-case", which, &rows.to_string(), &bytes.to_string()])
        .output()
        .context("the large-case process")?;
    anyhow::ensure!(
        out.status.success(),
        "large-case {which} {rows}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    serde_json::from_str(&last).with_context(|| format!("large-case output: {last}"))
}

/// The measured side: `jobs-bench large-case <ours|naive> <rows> <bytes>`; prints one JSON
/// line `{total, chunks, segments, secs, rss_kib}`.
pub fn case_main(which: &str, rows: u64, bytes: u64) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let env = Env::load().await?;
        let inputs = S3InputStore::new(
            LazyClient::new(&env.config, s3_client),
            env.outputs["InputBucketName"].clone(),
        );
        let file = JobFile {
            key: key_of(rows),
            content_type: "text/csv".into(),
            content_encoding: None,
            bytes,
            limits: Default::default(),
            retry: None,
        };
        let started = Instant::now();
        let (total, chunks, segments) = match which {
            "ours" => {
                let planned = jobs_core::worker::write_item_list(
                    &inputs,
                    &file,
                    &PROFILE_ROWS,
                    &format!("inputs/bench-large/{rows}-{}.json", ulid::Ulid::new()),
                    CHUNK_SIZE,
                    SEGMENT_BYTES,
                    None,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                let jobs_core::worker::Planned::Done(list) = planned else {
                    anyhow::bail!("not planned: {planned:?}");
                };
                (list.total, list.chunks, u64::from(list.segments))
            }
            _ => {
                let body = inputs.get(&file.key).await?.context("the file")?;
                let text = String::from_utf8(body)?;
                let items: Vec<Value> = text
                    .lines()
                    .skip(1)
                    .map(|l| Value::String(l.to_string()))
                    .collect();
                let chunks = chunk_items(&items, CHUNK_SIZE, MAX_CHUNK_BYTES)?;
                (items.len() as u64, chunks.len() as u64, 0)
            }
        };
        anyhow::Ok(json!({
            "total": total,
            "chunks": chunks,
            "segments": segments,
            "secs": started.elapsed().as_secs_f64(),
            "rss_kib": peak_rss_kib()?,
        }))
    })?;
    println!("{result}");
    Ok(())
}

/// This process's peak resident set (`VmHWM` in `/proc/self/status`), KiB.
fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")
}
