//! Benchmark 7: fairness between tenants on the deployed stack. The latency (created →
//! completed) of tenant B's 1-document AI Text Embedding job created while tenant A runs
//! one 5,000-document job, or 20 jobs of 500 documents, divided by the latency of the same
//! job on an idle stack (medians of `RUNS`); and A's throughput (one run each). Each
//! loaded run is paired with an idle one just before it, once the type's queue is empty,
//! so both designs' idle latencies are measured on a warm stack in the same state as
//! their loaded ones. Ours: one
//! release window per tenant (`RELEASE_WINDOW_SCOPE=tenant`, LocalStack: 5 chunks; plans
//! deferred while it is full).
//! Baseline: one window per job (`RELEASE_WINDOW_SCOPE=job`), set on the worker for the
//! run and put back.
//!
//! LocalStack's SQS poller backs off up to `LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC`
//! on an empty queue; `localstack/localstack.env` sets it to 1 s, so an idle job's latency
//! is not that back-off.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{Env, Goal, Row};

const RUNS: usize = 5;

struct Api {
    http: reqwest::Client,
    url: String,
    secret: String,
    sqs: aws_sdk_sqs::Client,
    /// The AI Text Embedding work and plan queues.
    queue_urls: Vec<String>,
}

impl Api {
    /// An operator's dev token for `tenant`, valid one hour.
    fn token(&self, tenant: &str) -> Result<String> {
        infra::token::dev_token(
            &self.secret,
            tenant,
            "bench",
            jobs_core::domain::auth::Role::Operator,
            Duration::from_secs(3600),
        )
    }

    async fn create(&self, tenant: &str, documents: usize) -> Result<String> {
        let docs: Vec<Value> = (0..documents).map(|i| json!({"id": format!("doc-{i}"), "text": format!("Fairness benchmark document {i}: the quick brown fox.")})).collect();
        let token = self.token(tenant)?;
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
        let token = self.token(tenant)?;
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

    async fn cancel(&self, tenant: &str, id: &str) -> Result<()> {
        let token = self.token(tenant)?;
        let status = self
            .http
            .post(format!("{}/jobs/{id}/cancel", self.url))
            .bearer_auth(&token)
            .send()
            .await?
            .status();
        // 409: the job ended meanwhile.
        if !status.is_success() && status.as_u16() != 409 {
            bail!("cancel {id}: {status}");
        }
        Ok(())
    }

    async fn done(&self, tenant: &str, id: &str) -> Result<Value> {
        self.wait(tenant, id, |j| {
            !matches!(j["status"].as_str(), Some("queued" | "running"))
        })
        .await
    }

    /// Seconds from created to completed of a new 1-document job of `tenant`.
    async fn latency(&self, tenant: &str) -> Result<f64> {
        let id = self.create(tenant, 1).await?;
        seconds(&self.done(tenant, &id).await?, "created_at", "completed_at")
    }

    /// Waits until the type's queues hold no message: none visible, in flight or delayed
    /// (SQS approximate counts), so the next sample starts on an idle stack.
    async fn drained(&self) -> Result<()> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let started = Instant::now();
        for url in &self.queue_urls {
            loop {
                let reply = self
                    .sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(A::ApproximateNumberOfMessages)
                    .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                    .attribute_names(A::ApproximateNumberOfMessagesDelayed)
                    .send()
                    .await?;
                let counts = reply.attributes().cloned().unwrap_or_default();
                if counts.values().all(|n| n == "0") {
                    break;
                }
                if started.elapsed() > Duration::from_secs(300) {
                    bail!("{url} still holds messages after 300 s: {counts:?}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }
}

fn at(job: &Value, key: &str) -> Result<OffsetDateTime> {
    jobs_core::clock::parse(job[key].as_str().unwrap_or_default())
        .with_context(|| format!("no {key} in {job}"))
}

fn seconds(job: &Value, from: &str, to: &str) -> Result<f64> {
    Ok((at(job, to)? - at(job, from)?).as_seconds_f64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Tenant A's load while tenant B's 1-document job runs.
#[derive(Clone, Copy)]
struct Load {
    jobs: usize,
    documents: usize,
}

const SINGLE: Load = Load {
    jobs: 1,
    documents: 5_000,
};
const MANY: Load = Load {
    jobs: 20,
    documents: 500,
};

impl Load {
    fn label(self) -> String {
        if self.jobs == 1 {
            format!("a {}-document job", self.documents)
        } else {
            format!("{} jobs of {} documents", self.jobs, self.documents)
        }
    }
}

struct Figures {
    /// A 1-document job's latency on the idle stack, median of the `RUNS` samples per load.
    idle: f64,
    /// B's latency beside each load, median of `RUNS`.
    loaded: Vec<f64>,
    /// A's items/s for each load, measured once.
    throughput: Vec<f64>,
}

impl Figures {
    fn slowdown(&self, load: usize) -> f64 {
        self.loaded[load] / self.idle
    }
}

/// Beside each load of another tenant, `RUNS` pairs: the latency of a 1-document job on the
/// idle stack (the queue empty), then with the load: A starts its jobs, B creates its job
/// once A's first item is done; A's jobs are cancelled once B's ends, except in the first
/// run, which lets them finish for A's throughput (items ÷ first start to last completion).
/// A first, discarded job warms the functions up after the configuration change.
async fn measure(api: &Api, loads: &[Load]) -> Result<Figures> {
    let run = ulid::Ulid::new().to_string().to_lowercase();
    api.latency(&format!("fair-warm-{run}")).await?;
    let mut idle = Vec::new();
    let (mut loaded, mut throughput) = (Vec::new(), Vec::new());
    for (l, load) in loads.iter().enumerate() {
        let mut latencies = Vec::new();
        for i in 0..RUNS {
            let (a, b) = (
                format!("fair-a-{run}-{l}-{i}"),
                format!("fair-b-{run}-{l}-{i}"),
            );
            api.drained().await?;
            idle.push(api.latency(&format!("fair-idle-{run}-{l}-{i}")).await?);
            let mut jobs = Vec::new();
            for _ in 0..load.jobs {
                jobs.push(api.create(&a, load.documents).await?);
            }
            api.wait(&a, &jobs[0], |j| {
                j["progress"]["succeeded"].as_u64().unwrap_or(0) > 0
            })
            .await?;
            latencies.push(api.latency(&b).await?);
            eprintln!(
                "fairness: {}, run {}: {:.2} s (idle just before: {:.2} s)",
                load.label(),
                i + 1,
                latencies[i],
                idle[idle.len() - 1]
            );
            if i > 0 {
                for id in &jobs {
                    api.cancel(&a, id).await?;
                }
            }
            // A job cancelled before its plan ran (deferred, in line) has no `started_at`:
            // only the first run, which lets every job finish, is timed.
            let mut span: Option<(OffsetDateTime, OffsetDateTime)> = None;
            for id in &jobs {
                let done = api.done(&a, id).await?;
                if i == 0 {
                    let (start, end) = (at(&done, "started_at")?, at(&done, "completed_at")?);
                    span = Some(span.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
                }
            }
            if let Some((start, end)) = span {
                let items = (load.jobs * load.documents) as f64;
                throughput.push(items / (end - start).as_seconds_f64());
            }
        }
        loaded.push(median(latencies));
    }
    eprintln!(
        "fairness: idle latencies {}",
        idle.iter()
            .map(|s| format!("{s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Figures {
        idle: median(idle),
        loaded,
        throughput,
    })
}
/// The worker's `RELEASE_WINDOW_SCOPE`, set to `scope` first when given (and the
/// function's update awaited), on the worker and on the API, which defers new jobs' plans
/// by it.
async fn window_scope(
    lambda: &aws_sdk_lambda::Client,
    stack: &str,
    scope: Option<&str>,
) -> Result<String> {
    let before =
        function_window_scope(lambda, &format!("{stack}-ai-text-embedding"), scope).await?;
    function_window_scope(lambda, &format!("{stack}-api"), scope).await?;
    Ok(before)
}

/// Function `name`'s `RELEASE_WINDOW_SCOPE`, set to `scope` first when given.
async fn function_window_scope(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    scope: Option<&str>,
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
        .get("RELEASE_WINDOW_SCOPE")
        .cloned()
        .unwrap_or_else(|| "tenant".into());
    if let Some(scope) = scope {
        variables.insert("RELEASE_WINDOW_SCOPE".into(), scope.into());
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
    let mut queue_urls = Vec::new();
    for name in ["ai_text_embedding", "ai_text_embedding-plans"] {
        let url = env
            .sqs
            .get_queue_url()
            .queue_name(format!("{stack}-work-{name}"))
            .send()
            .await?
            .queue_url()
            .context("no queue URL")?
            .to_string();
        queue_urls.push(url);
    }
    let api = Api {
        http: infra::http_client().build()?,
        url: env.outputs["ApiUrl"].clone(),
        secret: infra::token::secret()?,
        sqs: env.sqs.clone(),
        queue_urls,
    };
    let lambda = aws_sdk_lambda::Client::new(&env.config);
    let loads = [SINGLE, MANY];
    let scope = window_scope(&lambda, &stack, Some("tenant")).await?;
    eprintln!("fairness: ours (one release window per tenant), {RUNS} runs per load…");
    let ours = measure(&api, &loads).await;
    eprintln!("fairness: baseline (one release window per job)…");
    window_scope(&lambda, &stack, Some("job")).await?;
    let baseline = measure(&api, &loads).await;
    window_scope(&lambda, &stack, Some(&scope)).await?;
    let (ours, baseline) = (ours?, baseline?);
    let mut rows = Vec::new();
    for (l, load) in loads.iter().enumerate() {
        let note = |f: &Figures| format!("{:.2} s loaded ÷ {:.2} s idle", f.loaded[l], f.idle);
        rows.push(Row::new(
            &format!(
                "7. 1-document job beside {} of another tenant: latency ÷ idle latency (median of {RUNS})",
                load.label()
            ),
            ours.slowdown(l),
            baseline.slowdown(l),
            Some(Goal::OursAtMost(2.0)),
            format!(
                "ours (a window per tenant) {}; baseline (a window per job) {}",
                note(&ours),
                note(&baseline)
            ),
        ));
    }
    for (l, load) in loads.iter().enumerate() {
        rows.push(Row::new(
            &format!("7. throughput of {}, items/s (one run)", load.label()),
            ours.throughput[l],
            baseline.throughput[l],
            Some(Goal::AtLeast(0.9)),
            "the tenant's window must not slow its own jobs by more than 10 %".into(),
        ));
    }
    Ok(rows)
}
