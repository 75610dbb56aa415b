//! Benchmark 5: listing with 100,000 jobs of 50 tenants in the Jobs table. The API's own
//! listing code (index plan, keyset pages, cursors) runs against the deployed table through
//! a client that adds up the read capacity DynamoDB reports, for the first and the 20th
//! page of 50 rows of tenant and admin views, with and without filters. The baseline is
//! what listing without the indexes needs: newest-first order needs every item, so a full
//! Scan of the table.

use std::time::Instant;

use anyhow::{Context, Result};
use jobs_core::api::{JobsApi, Settings};
use jobs_core::auth::{Caller, Role};
use jobs_core::aws::{DynamoJobStore, S3InputStore, SqsWorkQueue, batch_write, put, s3_client};
use jobs_core::job::{JobStatus, JobType};
use jobs_core::listing::ListRequest;
use jobs_core::record::{JobRecord, NewJob};

use crate::counting::Counter;
use crate::{Env, Row};

const JOBS: usize = 100_000;
const TENANTS: usize = 50;
const PAGE: &str = "50";
const DEEP_PAGE: usize = 20;

fn tenant(n: usize) -> String {
    format!("bench-t{n:02}")
}

pub async fn run(env: &Env) -> Result<Vec<Row>> {
    let counter = Counter::default();
    let client = counter.client(&env.config);
    load(env, &client).await?;
    let api = JobsApi::new(
        DynamoJobStore::new(client.clone(), env.table()),
        S3InputStore::new(s3_client(&env.config), env.outputs["InputBucketName"].clone()),
        SqsWorkQueue::new(env.sqs.clone(), Default::default()),
        Settings { token_secret: b"bench-secret-bench-secret-bench-secret".to_vec(), retention_days: 90 },
    );
    let member = Caller { user: "user0".into(), tenant: tenant(7), role: Role::Member };
    let admin = Caller { user: "root".into(), tenant: "ops".into(), role: Role::Admin };

    counter.take();
    let started = Instant::now();
    let mut scanned = 0usize;
    let mut start_key = None;
    loop {
        let page = client.scan().table_name(env.table()).set_exclusive_start_key(start_key).send().await?;
        scanned += page.items.map_or(0, |i| i.len());
        start_key = page.last_evaluated_key;
        if start_key.is_none() {
            break;
        }
    }
    let scan_ms = started.elapsed().as_secs_f64() * 1000.0;
    let scan_units = counter.take().read_units;

    let views: [(&str, &Caller, &[(&str, &str)]); 6] = [
        ("tenant", &member, &[]),
        ("tenant, status=completed", &member, &[("status", "completed")]),
        ("tenant, user", &member, &[("user", "user3")]),
        ("admin", &admin, &[]),
        ("admin, type=ai_text_embedding", &admin, &[("type", "ai_text_embedding")]),
        ("admin, tenant", &admin, &[("tenant", "bench-t11")]),
    ];
    let mut rows = Vec::new();
    for (name, caller, filters) in views {
        for deep in [false, true] {
            let mut cursor: Option<String> = None;
            let pages = if deep { DEEP_PAGE } else { 1 };
            let (mut units, mut returned, mut ms) = (0.0, 0, 0.0);
            for _ in 0..pages {
                let mut params: Vec<(String, String)> = filters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                params.push(("limit".into(), PAGE.into()));
                params.extend(cursor.take().map(|c| ("cursor".to_string(), c)));
                let request = ListRequest::parse(&params).map_err(|e| anyhow::anyhow!("{e}"))?;
                counter.take();
                let started = Instant::now();
                let page = api.list_jobs(caller, &request).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                ms = started.elapsed().as_secs_f64() * 1000.0;
                units = counter.take().read_units;
                returned = page.items.len();
                cursor = page.next_cursor;
            }
            let label = format!("5. list {name}, page {}: read units", if deep { DEEP_PAGE } else { 1 });
            rows.push(Row::lower(&label, units, scan_units, format!("{returned} rows ({:.2} units/row), {ms:.0} ms vs Scan of {scanned} items {scan_ms:.0} ms", units / returned.max(1) as f64)));
        }
    }
    Ok(rows)
}

/// Writes the 100,000 jobs once; a marker job says they are there.
async fn load(env: &Env, client: &aws_sdk_dynamodb::Client) -> Result<()> {
    let store = DynamoJobStore::new(client.clone(), env.table());
    let marker = "01BENCHL0ADED0000000000000";
    if jobs_core::ports::JobStore::get(&store, marker).await?.is_some() {
        return Ok(());
    }
    eprintln!("loading {JOBS} jobs of {TENANTS} tenants into {} (once)", env.table());
    let now = jobs_core::clock::now();
    let started = Instant::now();
    let records = (0..JOBS).map(|i| {
        let at = now - time_secs(i as i64 * 50 + 60);
        let mut job = JobRecord::new(NewJob {
            id: ulid::Ulid::from_parts(at.unix_timestamp() as u64 * 1000, i as u128).to_string(),
            job_type: JobType::ALL[i % 4],
            tenant: tenant(i % TENANTS),
            user: format!("user{}", (i / TENANTS) % 10),
            created_at: jobs_core::clock::format(at),
            month: jobs_core::clock::month_of(at),
            total: 100,
            summary: serde_json::json!({"recipients": 100}),
            input_key: format!("inputs/bench/{i}.json"),
            expires_at: now.unix_timestamp() + 86_400 * 30,
        });
        job.status = [JobStatus::Completed, JobStatus::Completed, JobStatus::Failed, JobStatus::Running, JobStatus::CompletedWithErrors][i % 5];
        job.succeeded = 100;
        job
    });
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(25);
    for record in records {
        batch.push(put(serde_dynamo::to_item(&record)?).context("item")?);
        if batch.len() == 25 {
            batches.push(std::mem::take(&mut batch));
        }
    }
    use futures::StreamExt;
    let results: Vec<_> = futures::stream::iter(batches).map(|b| batch_write(client, env.table(), b)).buffer_unordered(8).collect().await;
    for r in results {
        r.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let mut marker_job = JobRecord::new(NewJob {
        id: marker.into(), job_type: JobType::BulkMessageSending, tenant: "bench-marker".into(), user: "bench".into(),
        created_at: "2000-01-01T00:00:00.000Z".into(), month: "2000-01".into(), total: 0, summary: serde_json::json!({}),
        input_key: "inputs/bench/marker.json".into(), expires_at: now.unix_timestamp() + 86_400 * 30,
    });
    marker_job.hidden_at = Some("2000-01-01T00:00:00.000Z".into());
    jobs_core::ports::JobStore::create(&store, &marker_job, None).await?;
    eprintln!("loaded in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn time_secs(s: i64) -> time::Duration {
    time::Duration::seconds(s)
}
