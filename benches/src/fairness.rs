//! Benchmark 7: fairness between tenants on the deployed stack. The latency (created →
//! completed) of a 1-document AI Text Embedding job created while a 5,000-document job of
//! another tenant runs, divided by the latency of the same job on an idle stack; and the
//! big job's throughput. Ours: the deployed `RELEASE_WINDOW` (LocalStack: 10 chunks).
//! Baseline: every chunk released at once (the worker reconfigured with a window of
//! 1,000,000 for the run, then put back). Medians of `RUNS` runs each.
//!
//! LocalStack's SQS poller backs off up to `LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC`
//! on an empty queue; `localstack/localstack.env` sets it to 1 s, so an idle job's latency
//! is not that back-off.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{Env, Goal, Row};

const RUNS: usize = 3;
const BIG: usize = 5_000;
const ALL_AT_ONCE: &str = "1000000";

struct Api {
    http: reqwest::Client,
    url: String,
    secret: String,
}

impl Api {
    async fn create(&self, tenant: &str, documents: usize) -> Result<String> {
        let docs: Vec<Value> = (0..documents).map(|i| json!({"id": format!("doc-{i}"), "text": format!("Fairness benchmark document {i}: the quick brown fox.")})).collect();
        let token = infra::token::dev_token(
            &self.secret,
            tenant,
            "bench",
            jobs_core::domain::auth::Role::Operator,
            Duration::from_secs(3600),
        )?;
        let reply: Value = self
            .http
            .post(format!("{}/jobs", self.url))
            .bearer_auth(&token)
            .json(&json!({"type": "ai_text_embedding", "params": {"model": "hashing-v1", "documents": docs}}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        reply["id"]
            .as_str()
            .map(str::to_string)
            .context("no job id")
    }

    async fn job(&self, tenant: &str, id: &str) -> Result<Value> {
        let token = infra::token::dev_token(
            &self.secret,
            tenant,
            "bench",
            jobs_core::domain::auth::Role::Operator,
            Duration::from_secs(3600),
        )?;
        Ok(self
            .http
            .get(format!("{}/jobs/{id}", self.url))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn wait(&self, tenant: &str, id: &str, until: impl Fn(&Value) -> bool) -> Result<Value> {
        let started = Instant::now();
        loop {
            let job = self.job(tenant, id).await?;
            if until(&job) {
                return Ok(job);
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("job {id} not there after 600 s: {job}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn done(&self, tenant: &str, id: &str) -> Result<Value> {
        self.wait(tenant, id, |j| {
            !matches!(j["status"].as_str(), Some("queued" | "running"))
        })
        .await
    }
}

fn seconds(job: &Value, from: &str, to: &str) -> Result<f64> {
    let at = |key: &str| {
        jobs_core::clock::parse(job[key].as_str().unwrap_or_default())
            .with_context(|| format!("no {key} in {job}"))
    };
    Ok((at(to)? - at(from)?).as_seconds_f64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

struct Figures {
    slowdown: f64,
    idle: f64,
    loaded: f64,
    throughput: f64,
}

/// Idle and loaded latencies of a 1-document job, and the big job's items/s.
async fn measure(api: &Api) -> Result<Figures> {
    let run = ulid::Ulid::new().to_string().to_lowercase();
    let mut idle = Vec::new();
    for i in 0..RUNS {
        let tenant = format!("fair-small-{run}-{i}");
        let id = api.create(&tenant, 1).await?;
        idle.push(seconds(
            &api.done(&tenant, &id).await?,
            "created_at",
            "completed_at",
        )?);
    }
    let (mut loaded, mut throughput) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let (big_tenant, small_tenant) = (
            format!("fair-big-{run}-{i}"),
            format!("fair-small-{run}-l{i}"),
        );
        let big = api.create(&big_tenant, BIG).await?;
        api.wait(&big_tenant, &big, |j| {
            j["progress"]["succeeded"].as_u64().unwrap_or(0) > 0
        })
        .await?;
        let small = api.create(&small_tenant, 1).await?;
        loaded.push(seconds(
            &api.done(&small_tenant, &small).await?,
            "created_at",
            "completed_at",
        )?);
        let big = api.done(&big_tenant, &big).await?;
        throughput.push(BIG as f64 / seconds(&big, "started_at", "completed_at")?);
    }
    let (idle, loaded) = (median(idle), median(loaded));
    Ok(Figures {
        slowdown: loaded / idle,
        idle,
        loaded,
        throughput: median(throughput),
    })
}

async fn release_window(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    window: Option<&str>,
) -> Result<String> {
    let config = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await?;
    let mut variables: HashMap<String, String> = config
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    let before = variables
        .get("RELEASE_WINDOW")
        .cloned()
        .context("the worker has no RELEASE_WINDOW")?;
    if let Some(window) = window {
        variables.insert("RELEASE_WINDOW".into(), window.into());
        let environment = aws_sdk_lambda::types::Environment::builder()
            .set_variables(Some(variables))
            .build();
        lambda
            .update_function_configuration()
            .function_name(name)
            .environment(environment)
            .send()
            .await?;
        for _ in 0..100 {
            let now = lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await?;
            if now
                .last_update_status()
                .is_none_or(|s| s.as_str() == "Successful")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(before)
}

pub async fn run(env: &Env) -> Result<Vec<Row>> {
    let stack = std::env::var("JOBS_STACK").unwrap_or_else(|_| infra::DEFAULT_STACK.to_string());
    let name = format!("{stack}-ai-text-embedding");
    let api = Api {
        http: infra::http_client().build()?,
        url: env.outputs["ApiUrl"].clone(),
        secret: infra::token::secret()?,
    };
    let lambda = aws_sdk_lambda::Client::new(&env.config);
    let window = release_window(&lambda, &name, None).await?;
    eprintln!("fairness: ours (window {window}), {RUNS} idle and {RUNS} loaded runs…");
    let ours = measure(&api).await?;
    eprintln!("fairness: baseline (every chunk at once)…");
    release_window(&lambda, &name, Some(ALL_AT_ONCE)).await?;
    let baseline = measure(&api).await;
    release_window(&lambda, &name, Some(&window)).await?;
    let baseline = baseline?;
    let note = |f: &Figures| format!("{:.2} s loaded ÷ {:.2} s idle", f.loaded, f.idle);
    Ok(vec![
        Row::new(
            &format!(
                "7. 1-document job beside a {BIG}-document job of another tenant: latency ÷ idle latency (median of {RUNS})"
            ),
            ours.slowdown,
            baseline.slowdown,
            Some(Goal::OursAtMost(2.0)),
            format!(
                "ours {}; baseline (every chunk released at once) {}",
                note(&ours),
                note(&baseline)
            ),
        ),
        Row::new(
            &format!("7. throughput of the {BIG}-document job, items/s"),
            ours.throughput,
            baseline.throughput,
            Some(Goal::AtLeast(0.9)),
            "the window must not slow the big job by more than 10 %".into(),
        ),
    ])
}
