//! Benchmark 5: listing with 100,000 jobs of 50 tenants in the Jobs table. The API's own
//! listing code (index plan, keyset pages, cursors) runs against the deployed table through
//! a client that adds up the read capacity DynamoDB reports, for the first and the 20th
//! page of 50 rows of tenant and admin views, with and without filters. The baseline is
//! what listing without the indexes needs: newest-first order needs every item, so a full
//! Scan of the table.

use std::time::Instant;

use anyhow::{Context, Result};
use jobs_api_core::api::{JobsApi, Settings};
use jobs_api_core::listing::ListRequest;
use jobs_core::aws::{
    DynamoJobStore, LazyClient, S3InputStore, SqsWorkQueue, batch_write, put, s3_client,
};
use jobs_core::domain::auth::{Caller, Role};
use jobs_core::domain::job::{JobStatus, JobType};
use jobs_core::domain::record::{JobRecord, NewJob};
use jobs_core::memory::MemorySenders;

use crate::counting::Counter;
use crate::{Env, Goal, Row};

pub const JOBS: usize = 100_000;
pub const TENANTS: usize = 50;
const PAGE: &str = "50";
const DEEP_PAGE: usize = 20;

pub fn tenant(n: usize) -> String {
    format!("bench-t{n:02}")
}

/// Job i belongs to tenant i % 50 and is that tenant's (i / 50)th job: types, users and
/// statuses rotate within each tenant, so every filter matches a known share.
fn nth_of_tenant(i: usize) -> usize {
    i / TENANTS
}

/// The stack's table, bucket and queues; doubles for senders and observers.
struct ListingBenchPorts;

impl jobs_core::ports::WorkerPorts for ListingBenchPorts {
    type Store = DynamoJobStore;
    type Inputs = S3InputStore;
    type Queue = SqsWorkQueue;
    type Audit = jobs_core::memory::MemoryAudit;
    type Bus = jobs_core::memory::MemoryBus;
}

impl jobs_core::ports::ServicePorts for ListingBenchPorts {
    type Senders = MemorySenders;
}

pub async fn run(env: &Env) -> Result<Vec<Row>> {
    let counter = Counter::default();
    let client = counter.client(&env.config);
    load(env, &client).await?;
    let api = JobsApi::<ListingBenchPorts>::new(
        DynamoJobStore::new(client.clone(), env.table()),
        S3InputStore::new(
            LazyClient::new(&env.config, s3_client),
            env.outputs["InputBucketName"].clone(),
        ),
        SqsWorkQueue::new(
            LazyClient::new(&env.config, aws_sdk_sqs::Client::new),
            String::new(),
        ),
        MemorySenders::default(),
        jobs_core::memory::observers(),
        Settings::dev_tokens(b"bench-secret-bench-secret-bench-secret", 90),
    );
    let member = Caller {
        user: "user0".into(),
        tenant: tenant(7),
        role: Role::Operator,
        origin: Default::default(),
    };
    let admin = Caller {
        user: "root".into(),
        tenant: "ops".into(),
        role: Role::PlatformAdmin,
        origin: Default::default(),
    };

    counter.take();
    let started = Instant::now();
    let mut scanned = 0usize;
    let mut start_key = None;
    loop {
        let page = client
            .scan()
            .table_name(env.table())
            .limit(1000)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("Scan: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e))
            })?;
        scanned += page.items.map_or(0, |i| i.len());
        start_key = page.last_evaluated_key;
        if start_key.is_none() {
            break;
        }
    }
    let scan_ms = started.elapsed().as_secs_f64() * 1000.0;
    let scan_units = counter.take().read_units;

    let views: [View; 6] = [
        ("tenant", &member, &[]),
        (
            "tenant, status=completed",
            &member,
            &[("status", "completed")],
        ),
        ("tenant, user", &member, &[("user", "user3")]),
        ("admin", &admin, &[]),
        (
            "admin, type=ai_text_embedding",
            &admin,
            &[("type", "ai_text_embedding")],
        ),
        ("admin, tenant", &admin, &[("tenant", "bench-t11")]),
    ];
    let mut rows = Vec::new();
    for (name, caller, filters) in views {
        for deep in [false, true] {
            let mut cursor: Option<String> = None;
            let (mut units, mut returned, mut latencies, mut page_no) = (0.0, 0, Vec::new(), 0);
            // The deep view follows next_cursor to page 20, or to the last page if sooner.
            for page_index in 1..=if deep { DEEP_PAGE } else { 1 } {
                let mut params: Vec<(String, String)> = filters
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                params.push(("limit".into(), PAGE.into()));
                params.extend(cursor.clone().map(|c| ("cursor".to_string(), c)));
                let request = ListRequest::parse(&params).map_err(|e| anyhow::anyhow!("{e}"))?;
                // Three reads of the same page: units are the same each time; latency is the median.
                let (mut page, mut page_units, mut page_latencies) = (None, 0.0, Vec::new());
                for _ in 0..3 {
                    counter.take();
                    let started = Instant::now();
                    page = Some(
                        api.list_jobs(caller, &request)
                            .await
                            .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?,
                    );
                    page_latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    page_units = counter.take().read_units;
                }
                let page = page.context("no page")?;
                // A full last page still carries a cursor; the empty page after it is not a view.
                if page.items.is_empty() && page_index > 1 {
                    break;
                }
                (units, latencies) = (page_units, page_latencies);
                returned = page.items.len();
                page_no = page_index;
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            latencies.sort_by(f64::total_cmp);
            let label = format!("5. list {name}, page {page_no}: read units");
            let goal = if filters.iter().any(|(k, _)| *k != "tenant") {
                ""
            } else {
                "; goal ≤ 2 units/row"
            };
            rows.push(Row::new(&label, units, scan_units, Some(Goal::AtMost(0.01)), format!("{returned} rows, {:.2} units/row{goal}; {:.0} ms vs Scan {scan_ms:.0} ms ({scanned} items)", units / returned.max(1) as f64, latencies[1])));
        }
    }
    Ok(rows)
}

/// Writes the 100,000 jobs once; a marker job says they are there.
pub async fn load(env: &Env, client: &aws_sdk_dynamodb::Client) -> Result<()> {
    let store = DynamoJobStore::new(client.clone(), env.table());
    let marker = "01BENCHL0ADED0000000000002";
    if jobs_core::ports::JobStore::get(&store, marker)
        .await
        .context("marker")?
        .is_some()
    {
        return Ok(());
    }
    eprintln!(
        "loading {JOBS} jobs of {TENANTS} tenants into {} (once)",
        env.table()
    );
    let now = jobs_core::clock::now();
    let started = Instant::now();
    let records = (0..JOBS).map(|i| {
        let at = now - time::Duration::seconds(i as i64 * 50 + 60);
        let mut job = JobRecord::new(NewJob {
            id: ulid::Ulid::from_parts(at.unix_timestamp() as u64 * 1000, i as u128).to_string(),
            job_type: JobType::ALL[nth_of_tenant(i) % 4],
            tenant: tenant(i % TENANTS),
            user: format!("user{}", nth_of_tenant(i) % 10),
            created_at: jobs_core::clock::format(at),
            month: jobs_core::clock::month_of(at),
            total: 100,
            summary: serde_json::json!({"recipients": 100}),
            input_key: format!("inputs/bench/{i}.json"),
            expires_at: now.unix_timestamp() + 86_400 * 30,
        });
        job.status = [
            JobStatus::Completed,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Running,
            JobStatus::CompletedWithErrors,
        ][nth_of_tenant(i) % 5];
        job.succeeded = 100;
        if job.status.is_terminal() {
            job.active = None;
        }
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
    let results: Vec<_> = futures::stream::iter(batches)
        .map(|b| batch_write(client, env.table(), b))
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let mut marker_job = JobRecord::new(NewJob {
        id: marker.into(),
        job_type: JobType::BulkMessageSending,
        tenant: "bench-marker".into(),
        user: "bench".into(),
        created_at: "2000-01-01T00:00:00.000Z".into(),
        month: "2000-01".into(),
        total: 0,
        summary: serde_json::json!({}),
        input_key: "inputs/bench/marker.json".into(),
        expires_at: now.unix_timestamp() + 86_400 * 30,
    });
    marker_job.hidden_at = Some("2000-01-01T00:00:00.000Z".into());
    jobs_core::ports::JobStore::create(&store, &marker_job, None)
        .await
        .context("marker")?;
    eprintln!("loaded in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// (label, caller, query filters) of one listed view.
type View<'a> = (
    &'static str,
    &'a Caller,
    &'static [(&'static str, &'static str)],
);
