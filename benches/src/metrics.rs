//! Benchmark 6: the job metrics. (a) Their write cost: jobs created through the API's code
//! and ended through the one end hook, on the deployed table, counting the requests that
//! write an aggregate (goal: at most 4 per job, none per item). (b) `GET /metrics` for 24
//! hourly buckets with the aggregates of 100,000 jobs of 50 tenants (the listing
//! benchmark's jobs, ended over the last 24 hours): read units and latency against a Scan
//! of the table, which is what the figures cost without aggregates (goal: at most 50 units).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use jobs_api_core::api::{JobsApi, MetricsQuery, Settings};
use jobs_core::aws::{DynamoAuditLog, DynamoJobStore, batch_write, put};
use jobs_core::domain::audit::Audit;
use jobs_core::domain::auth::{Caller, Role};
use jobs_core::domain::ended::Observers;
use jobs_core::domain::job::{JobStatus, JobType};
use jobs_core::domain::metrics::{on_created, on_ended};
use jobs_core::domain::record::{JobRecord, NewJob};
use jobs_core::memory::{MemoryBus, MemoryInputs, MemoryQueue, MemorySenders};
use jobs_core::ports::{ChunkCommit, ProgressStore, Settled, Tally};

use crate::counting::Counter;
use crate::listing::{JOBS, TENANTS, tenant};
use crate::{Env, Goal, Row};

const WRITE_JOBS: u64 = 20;
const ITEMS_PER_JOB: u64 = 100;

/// The stack's table and audit log; doubles for the rest.
struct MetricsBenchPorts;

impl jobs_core::ports::WorkerPorts for MetricsBenchPorts {
    type Store = DynamoJobStore;
    type Inputs = MemoryInputs;
    type Queue = MemoryQueue;
    type Audit = DynamoAuditLog;
    type Bus = MemoryBus;
}

impl jobs_core::ports::ServicePorts for MetricsBenchPorts {
    type Senders = MemorySenders;
}

pub async fn run(env: &Env) -> Result<Vec<Row>> {
    let counter = Counter::default();
    let client = counter.client(&env.config);
    let observers = || {
        Observers::new(
            Audit::new(
                DynamoAuditLog::new(client.clone(), env.outputs["AuditTableName"].clone()),
                400,
            ),
            MemoryBus::default(),
        )
    };
    let api = JobsApi::<MetricsBenchPorts>::new(
        DynamoJobStore::new(client.clone(), env.table()),
        MemoryInputs::default(),
        MemoryQueue::default(),
        MemorySenders::default(),
        observers(),
        Settings::dev_tokens(b"bench-secret-bench-secret-bench-secret", 90),
    );
    let store = DynamoJobStore::new(client.clone(), env.table());
    let end = observers();

    // (a) writes: create, run (one commit of 100 items) and end 20 jobs.
    let member = Caller {
        user: "bench".into(),
        tenant: "bench-metrics".into(),
        role: Role::Operator,
        origin: Default::default(),
    };
    counter.take();
    for _ in 0..WRITE_JOBS {
        let request = serde_json::from_value(
            serde_json::json!({"type": "profile_field_update", "params": {
            "field": "locale", "value": "de", "user_ids": (0..ITEMS_PER_JOB).map(|i| format!("u{i}")).collect::<Vec<_>>()}}),
        )?;
        let created = api
            .create_job(&member, request, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let id = created.job.id;
        let at = jobs_core::clock::format(jobs_core::clock::now());
        store.begin(&id, ITEMS_PER_JOB, 1, &at).await?;
        let mut all = Settled::default();
        (0..ITEMS_PER_JOB as usize).for_each(|p| all.insert(p));
        let commit = ChunkCommit {
            after: all,
            tally: Tally {
                succeeded: ITEMS_PER_JOB,
                ..Tally::default()
            },
            done: true,
            ..ChunkCommit::default()
        };
        store.commit_chunk(&id, 0, &commit, 0).await?;
        store.complete(&id, JobStatus::Completed, &at).await?;
        let job = jobs_core::ports::JobStore::get(&store, &id)
            .await?
            .context("the job")?;
        // Jobs written by the store, not the API: not counted in a tenant's usage, so the
        // hook writes nothing for the limits and sends nothing.
        end.on_job_end(&store, &jobs_core::memory::MemoryQueue::default(), &job)
            .await?;
    }
    let counts = counter.take();
    let per_job = counts.metric_writes as f64 / WRITE_JOBS as f64;
    let all_writes = counts.writes() as f64 / WRITE_JOBS as f64;
    let mut rows = vec![Row::new(
        "6. metrics: aggregate write requests per job",
        per_job,
        all_writes,
        Some(Goal::OursAtMost(4.0)),
        format!(
            "{WRITE_JOBS} jobs of {ITEMS_PER_JOB} items, created, run and ended; baseline = every DynamoDB write of such a job ({}); none of the 4 depends on the item count",
            counts.write_detail()
        ),
    )];

    // (b) reads: the aggregates of the 100,000 listing jobs, as if they ended in the last 24 h.
    crate::listing::load(env, &client).await?;
    seed(env, &client).await?;
    counter.take();
    let started = Instant::now();
    let mut start_key = None;
    loop {
        let page = client
            .scan()
            .table_name(env.table())
            .limit(1000)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("Scan: {e:?}"))?;
        start_key = page.last_evaluated_key;
        if start_key.is_none() {
            break;
        }
    }
    let scan_ms = started.elapsed().as_secs_f64() * 1000.0;
    let scan_units = counter.take().read_units;
    let admin = Caller {
        user: "root".into(),
        tenant: "ops".into(),
        role: Role::PlatformAdmin,
        origin: Default::default(),
    };
    let one = Caller {
        user: "user0".into(),
        tenant: tenant(7),
        role: Role::Operator,
        origin: Default::default(),
    };
    for (name, caller) in [("all tenants", &admin), ("one tenant", &one)] {
        let query = MetricsQuery::parse(&[], jobs_core::clock::now())
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let (mut units, mut latencies, mut created) = (0.0, Vec::new(), 0);
        for _ in 0..3 {
            counter.take();
            let started = Instant::now();
            let answer = api
                .metrics(caller, &query)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            units = counter.take().read_units;
            created = answer.total.created;
        }
        latencies.sort_by(f64::total_cmp);
        rows.push(Row::new(
            &format!("6. GET /metrics, 24 hourly buckets, {name}: read units"),
            units,
            scan_units,
            Some(Goal::OursAtMost(50.0)),
            format!(
                "{created} jobs created in range; {:.0} ms vs Scan {scan_ms:.0} ms",
                latencies[1]
            ),
        ));
    }
    Ok(rows)
}

/// The aggregates 100,000 jobs leave: job i of tenant i % 50 created (now - i × 0.8 s),
/// started 1–7 s later and ended 5–95 s after that, with the listing jobs' statuses. Summed
/// here and written once per item: the same items 400,000 `ADD`s would leave.
async fn seed(env: &Env, client: &aws_sdk_dynamodb::Client) -> Result<()> {
    let now = jobs_core::clock::now();
    let mut items: BTreeMap<(String, String), BTreeMap<String, u64>> = BTreeMap::new();
    for i in 0..JOBS {
        let created = now - time::Duration::milliseconds(i as i64 * 800 + 120_000);
        let mut job = JobRecord::new(NewJob {
            id: ulid::Ulid::from_parts(created.unix_timestamp() as u64 * 1000, i as u128)
                .to_string(),
            job_type: JobType::ALL[(i / TENANTS) % 4],
            tenant: tenant(i % TENANTS),
            user: "bench".into(),
            created_at: jobs_core::clock::format(created),
            month: jobs_core::clock::month_of(created),
            total: 100,
            summary: serde_json::json!({}),
            input_key: String::new(),
            expires_at: 0,
        });
        let started = created + time::Duration::seconds(1 + (i % 7) as i64);
        job.started_at = Some(jobs_core::clock::format(started));
        job.completed_at = Some(jobs_core::clock::format(
            started + time::Duration::seconds(5 + (i % 91) as i64),
        ));
        job.status = [
            JobStatus::Completed,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
            JobStatus::CompletedWithErrors,
        ][(i / TENANTS) % 5];
        (job.succeeded, job.failed) = (90, 10);
        for add in on_created(&job, 30).into_iter().chain(on_ended(&job, 30)) {
            let item = items.entry((add.pk, add.sk)).or_default();
            for (name, n) in add.adds {
                *item.entry(name).or_default() += n;
            }
        }
    }
    let expires = now.unix_timestamp() + 86_400;
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(25);
    for ((pk, sk), counters) in items {
        let mut item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            counters
                .into_iter()
                .map(|(k, v)| (k, aws_sdk_dynamodb::types::AttributeValue::N(v.to_string())))
                .collect();
        item.insert("pk".into(), aws_sdk_dynamodb::types::AttributeValue::S(pk));
        item.insert("sk".into(), aws_sdk_dynamodb::types::AttributeValue::S(sk));
        item.insert(
            "expires_at".into(),
            aws_sdk_dynamodb::types::AttributeValue::N(expires.to_string()),
        );
        batch.push(put(item).context("item")?);
        if batch.len() == 25 {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    for b in batches {
        batch_write(client, env.table(), b)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    Ok(())
}
