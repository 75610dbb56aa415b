//! Benchmark 9 (`make bench BENCH=large`): the plan of a job from a file of 1,000,000 and
//! 10,000,000 rows (a Profile Field Update CSV, 39 bytes a row: 0.39 GB at 10 M) in
//! LocalStack's S3, each in a process of its own: ours streams it
//! (`jobs_core::worker::write_item_list`: segments and a chunk index); the baseline reads
//! the whole file and cuts its items in memory, as the plan of inline items does. Figures:
//! peak RSS (`VmHWM`), wall time, S3 requests.

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
/// The file also planned by the deployed worker (LocalStack gives it 10 s an invocation,
/// so its plan pauses and continues).
const THROUGH_THE_STACK: u64 = 1_000_000;
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
        if rows == THROUGH_THE_STACK {
            table.push(through_the_stack(env, &path, rows, secs(&ours)).await?);
        }
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
    Ok(table)
}

/// `POST /uploads`, the presigned `PUT` of the file, `POST /jobs` from it (Profile Field
/// Update), then polls until the deployed worker has read it all (the job has its total),
/// and cancels it: seconds to planned against the in-process plan's, and the plan's runs.
async fn through_the_stack(
    env: &Env,
    path: &std::path::Path,
    rows: u64,
    in_process: f64,
) -> Result<Row> {
    let http = infra::http_client().build()?;
    let url = &env.outputs["ApiUrl"];
    let tenant = format!(
        "bench-large-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let token = infra::token::dev_token(
        &infra::token::secret()?,
        &tenant,
        "bench",
        jobs_core::domain::auth::Role::Operator,
        std::time::Duration::from_secs(3600),
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
    let mut seen = std::collections::BTreeSet::new();
    let planned = loop {
        let now: Value = http
            .get(format!("{url}/jobs/{id}"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if let Some(read) = now["rows_read"].as_u64() {
            seen.insert(read);
        }
        if now["progress"]["total"].as_u64().unwrap_or(0) > 0 {
            break now;
        }
        anyhow::ensure!(
            started.elapsed().as_secs() < 1_800,
            "job {id} not planned after 30 minutes: {now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    http.post(format!("{url}/jobs/{id}/cancel"))
        .bearer_auth(&token)
        .send()
        .await?;
    anyhow::ensure!(
        planned["progress"]["total"] == rows,
        "the stack counted every row: {planned}"
    );
    Ok(Row::new(
        &format!("9. a {rows}-row file planned by the deployed worker: seconds"),
        secs,
        in_process,
        None,
        format!(
            "baseline: the same plan in one process; LocalStack's 10 s invocations: rows read seen at {} pauses; the job is then cancelled",
            seen.len()
        ),
    ))
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
