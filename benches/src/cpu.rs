//! Benchmark 6: instructions per API request and per worker chunk, counted by callgrind on
//! fixed inputs with the in-memory adapters (no network, no timing noise). Each case runs
//! once and 21 times under callgrind; the difference / 20 is the cost of one operation
//! without process start-up. The baseline is the previous run recorded in
//! benches/cpu-baseline.json (`BENCH_SAVE_CPU_BASELINE=1 make bench BENCH=cpu` rewrites it), so a regression shows
//! as a ratio below 1. The driver is built with the `bench-tools` profile (opt-level 3),
//! so absolute counts are for that build of the handlers, not the size-tuned functions.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result};
use jobs_api_core::api::http::HttpRequest;
use jobs_api_core::api::{JobsApi, Settings};
use jobs_api_core::tokens::{Claims, mint};
use jobs_core::domain::auth::Role;
use jobs_core::domain::job::JobType;
use jobs_core::domain::record::{JobRecord, NewJob};
use jobs_core::memory::{MemoryInputs, MemoryPorts, MemoryQueue, MemorySenders, MemoryStore};
use jobs_core::ports::WorkMessage;
use jobs_core::worker::scripted::Scripted;
use jobs_core::worker::{Worker, WorkerSettings};

use crate::{Goal, Row};

const CASES: [&str; 6] = [
    "create",
    "list",
    "chunk-bulk_message_sending",
    "chunk-session_termination",
    "chunk-ai_text_embedding",
    "chunk-profile_field_update",
];
const RUNS: u64 = 21;
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret";

fn baseline_path() -> std::path::PathBuf {
    infra::repo_root().join("benches/cpu-baseline.json")
}

pub fn run() -> Result<Vec<Row>> {
    let me = std::env::current_exe()?;
    let baseline: BTreeMap<String, f64> = std::fs::read(baseline_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut measured = BTreeMap::new();
    let mut rows = Vec::new();
    for case in CASES {
        let one = instructions(&me, case, 1)?;
        let many = instructions(&me, case, RUNS)?;
        let per_op = (many - one) as f64 / (RUNS - 1) as f64;
        measured.insert(case.to_string(), per_op);
        let before = baseline.get(case).copied().unwrap_or(f64::NAN);
        rows.push(Row::new(
            &format!("6. {case}: instructions"),
            per_op,
            before,
            Some(Goal::AtMost(1.05)),
            "callgrind; baseline: the run in benches/cpu-baseline.json".into(),
        ));
    }
    if std::env::var_os("BENCH_SAVE_CPU_BASELINE").is_some() {
        std::fs::write(baseline_path(), serde_json::to_vec_pretty(&measured)?)?;
    }
    Ok(rows)
}

fn instructions(me: &std::path::Path, case: &str, runs: u64) -> Result<u64> {
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(me)
        .args(["cpu-case", case, &runs.to_string()])
        .output()
        .context("valgrind (apt-get install valgrind)")?;
    anyhow::ensure!(
        out.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let collected = stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .context("no 'Collected' line from callgrind")?;
    Ok(collected.trim().parse()?)
}

/// The measured side: `jobs-bench cpu-case <case> <runs>`.
pub fn case(case: &str, runs: u64) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(async {
        match case {
            "create" | "list" => api_case(case, runs).await,
            _ => {
                let key = case.strip_prefix("chunk-").context("unknown case")?;
                let job_type = JobType::parse(key).context("unknown job type")?;
                chunk_case(job_type, runs).await
            }
        }
    })
}

fn request(
    method: &str,
    path: &str,
    token: &str,
    body: Vec<u8>,
    query: Vec<(String, String)>,
) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {token}")),
        ],
        body,
        ..HttpRequest::default()
    }
}

async fn api_case(case: &str, runs: u64) -> Result<()> {
    let store = MemoryStore::default();
    store.register_sender("acme", "example.com");
    let api = JobsApi::<jobs_core::memory::MemoryPorts>::new(
        store,
        MemoryInputs::default(),
        MemoryQueue::default(),
        MemorySenders::default(),
        jobs_core::memory::observers(),
        Settings::dev_tokens(SECRET, 90),
    );
    let claims = Claims {
        sub: "alice".into(),
        tenant: "acme".into(),
        role: Role::Operator,
        exp: 4_102_444_800,
        nbf: None,
        iat: None,
    };
    let token = mint(SECRET, &claims).map_err(|e| anyhow::anyhow!("{e}"))?;
    let body = serde_json::to_vec(
        &serde_json::json!({"type": "bulk_message_sending", "params": {
        "channel": "email", "from": "ops@example.com", "subject": "Hello", "body": "Hi there",
        "recipients": (0..100).map(|i| format!("user{i}@example.com")).collect::<Vec<_>>()}}),
    )?;
    if case == "list" {
        for _ in 0..60 {
            api.handle(request("POST", "/jobs", &token, body.clone(), vec![]))
                .await;
        }
    }
    for _ in 0..runs {
        let response = if case == "create" {
            api.handle(request("POST", "/jobs", &token, body.clone(), vec![]))
                .await
        } else {
            api.handle(request(
                "GET",
                "/jobs",
                &token,
                vec![],
                vec![
                    ("limit".into(), "50".into()),
                    ("status".into(), "queued".into()),
                ],
            ))
            .await
        };
        anyhow::ensure!(response.status < 300, "{case}: {}", response.status);
    }
    Ok(())
}

/// A type's chunk through the shared runtime (decode, ledger check, tally, commit) with
/// the item shape and chunk size of that type; the target call is the shared stand-in's.
async fn chunk_case(job_type: JobType, runs: u64) -> Result<()> {
    let item: Box<dyn Fn(usize) -> serde_json::Value> = match job_type {
        JobType::BulkMessageSending => {
            Box::new(|i| serde_json::json!(format!("user{i}@example.com")))
        }
        JobType::SessionTermination => Box::new(
            |i| serde_json::json!({"session_id": format!("s-{i:08}"), "user_id": format!("user{i}")}),
        ),
        JobType::AiTextEmbedding => Box::new(
            |i| serde_json::json!({"id": format!("doc-{i}"), "text": "The quick brown fox jumps over the lazy dog. ".repeat(20)}),
        ),
        JobType::ProfileFieldUpdate => Box::new(|i| serde_json::json!(format!("user{i}"))),
    };
    let size = job_type.spec().chunk_size;
    // Every chunk is delivered by hand: no chunk releases another (the pipeline bench runs releases).
    let settings = WorkerSettings {
        max_receive_count: 5,
        chunk_size: size,
        release: jobs_core::domain::window::ReleaseSettings {
            limit: u64::MAX,
            scope: jobs_core::domain::window::WindowScope::Tenant,
        },
        checkpoint_interval: std::time::Duration::from_secs(2),
        retry_budget: std::time::Duration::from_secs(600),
        default_limits: jobs_core::domain::limits::TenantLimits::default(),
        segment_bytes: jobs_core::domain::file::SEGMENT_BYTES,
    };
    let worker = Worker::<_, MemoryPorts>::new(
        Scripted,
        MemoryStore::default(),
        MemoryInputs::default(),
        MemoryQueue::default(),
        jobs_core::memory::observers(),
        settings,
    );
    let total = size as u64 * runs;
    let mut job = JobRecord::new(NewJob {
        id: "01BENCHCPU0000000000000000".into(),
        job_type: JobType::ProfileFieldUpdate,
        tenant: "acme".into(),
        user: "alice".into(),
        created_at: "2026-11-28T00:00:00.000Z".into(),
        month: "2026-11".into(),
        total,
        summary: serde_json::json!({}),
        input_key: "inputs/acme/bench.json".into(),
        expires_at: 0,
    });
    job.status = jobs_core::JobStatus::Running;
    job.chunks_total = Some(runs);
    worker.store().insert(job);
    worker
        .inputs()
        .objects
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .insert(
            "inputs/acme/bench.json".into(),
            br#"{"items": []}"#.to_vec(),
        );
    for n in 0..runs {
        let message = WorkMessage::Chunk {
            job_id: "01BENCHCPU0000000000000000".into(),
            tenant: "acme".into(),
            chunk: n,
            items: (0..size).map(&item).collect(),
            retry_since: None,
        };
        let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
        record.body = Some(serde_json::to_string(&message)?);
        let disposition = worker.handle_message(&record).await;
        anyhow::ensure!(
            disposition == jobs_core::worker::Disposition::Ack,
            "chunk {n}: {disposition:?}"
        );
    }
    Ok(())
}
