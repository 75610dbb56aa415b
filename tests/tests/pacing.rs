//! Pacing and crash recovery of the deployed Bulk Message Sending worker, through the API:
//! an SES with a sending-rate limit (tests/harness/ses_throttle_proxy.py, reached through
//! the SDK's standard `AWS_ENDPOINT_URL_SES`), and the worker process killed mid-job.
//! The tests reconfigure the worker's environment, so they run one at a time and put it
//! back afterwards.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{Stack, fresh_tenant, json};
use serde_json::Value;

/// One reconfiguration of the worker at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn worker_name() -> String {
    let stack_name =
        std::env::var("JOBS_STACK").unwrap_or_else(|_| infra::DEFAULT_STACK.to_string());
    format!("{stack_name}-bulk-message-sending")
}

/// The worker's environment with `changes` applied (`None` removes a variable), waiting
/// until the update is live. Returns the environment it had before.
async fn reconfigure(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    changes: &[(&str, Option<String>)],
) -> BTreeMap<String, String> {
    let current = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .expect("GetFunctionConfiguration");
    let before: BTreeMap<String, String> = current
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut after = before.clone();
    for (key, value) in changes {
        match value {
            Some(value) => after.insert((*key).to_string(), value.clone()),
            None => after.remove(*key),
        };
    }
    set_environment(lambda, name, &after).await;
    before
}

async fn set_environment(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    variables: &BTreeMap<String, String>,
) {
    let environment = aws_sdk_lambda::types::Environment::builder()
        .set_variables(Some(variables.clone().into_iter().collect()))
        .build();
    lambda
        .update_function_configuration()
        .function_name(name)
        .environment(environment)
        .send()
        .await
        .expect("UpdateFunctionConfiguration");
    for _ in 0..100 {
        let now = lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .expect("GetFunctionConfiguration");
        if now
            .last_update_status()
            .is_none_or(|s| s.as_str() == "Successful")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} did not finish updating");
}

/// The rate-limited SES stand-in, stopped when dropped.
struct Proxy {
    child: Child,
    url: String,
}

impl Proxy {
    fn start(rate: f64, upstream: &str) -> Proxy {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/harness/ses_throttle_proxy.py");
        let mut child = Command::new("python3")
            .args([script, &rate.to_string(), upstream])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SES proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("proxy stdout"))
            .read_line(&mut line)
            .expect("proxy prints its port");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("proxy said {line:?}"));
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn stats(&self) -> Value {
        infra::http_client()
            .build()
            .expect("http client")
            .get(format!("{}/_proxy/stats", self.url))
            .send()
            .await
            .expect("proxy stats")
            .json()
            .await
            .expect("stats JSON")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a bulk job of `count` recipients in `tenant` (as the holder of `token`) from a
/// sender of its own.
async fn bulk_job(
    stack: &Stack,
    tenant: &str,
    token: &str,
    count: usize,
) -> (String, String, Vec<String>) {
    let sender = format!(
        "pacing-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    stack.register_sender(tenant, &sender).await;
    let recipients: Vec<String> = (0..count)
        .map(|i| format!("r{i}@pacing.example.org"))
        .collect();
    let job = stack
        .create(token, &json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": sender, "subject": "Pacing", "body": "Hello", "recipients": recipients}}))
        .await;
    (
        job["id"].as_str().expect("job id").to_string(),
        sender,
        recipients,
    )
}

/// How many times each recipient got mail from `sender`.
async fn deliveries(stack: &Stack, sender: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for message in stack.sent_mail(sender).await {
        for to in message["Destination"]["ToAddresses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            *counts
                .entry(to.as_str().unwrap_or_default().to_string())
                .or_insert(0) += 1;
        }
    }
    counts
}

fn seconds_between(from: &Value, to: &Value) -> f64 {
    let at =
        |v: &Value| jobs_core::clock::parse(v.as_str().unwrap_or_default()).expect("timestamp");
    (at(to) - at(from)).as_seconds_f64()
}

/// Runs `body` with the worker reconfigured, and puts the environment back even if it fails.
async fn with_worker_env<F: std::future::Future<Output = ()>>(
    stack: &Stack,
    changes: &[(&str, Option<String>)],
    body: F,
) {
    use futures::FutureExt;
    let lambda = aws_sdk_lambda::Client::new(&stack.config);
    let name = worker_name();
    let before = reconfigure(&lambda, &name, changes).await;
    let result = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    set_environment(&lambda, &name, &before).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn a_rate_limited_ses_gets_every_email_once_and_no_item_fails() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::load().await;
    const RATE: f64 = 20.0;
    const RECIPIENTS: usize = 2_000;
    let proxy = Proxy::start(RATE, &stack.endpoint);
    let tenant = fresh_tenant("paced");
    let token = stack.token(&tenant, "alice", false);
    with_worker_env(&stack, &[("AWS_ENDPOINT_URL_SES", Some(proxy.url.clone()))], async {
        let (id, sender, recipients) = bulk_job(&stack, &tenant, &token, RECIPIENTS).await;
        // Progress shows within 10 s of the job starting.
        let watch = Instant::now();
        let started_at = loop {
            let now = stack.send("GET", &format!("/jobs/{id}"), Some(&token), None).await.body;
            if now["progress"]["succeeded"].as_u64().unwrap_or(0) > 0 {
                break now["started_at"].clone();
            }
            assert!(watch.elapsed() < Duration::from_secs(60), "no progress after 60 s: {now}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let first_progress = jobs_core::clock::format(jobs_core::clock::now());
        assert!(seconds_between(&started_at, &json!(first_progress)) <= 10.0, "first progress {first_progress}, started {started_at}");

        let done = stack.wait_until_done(&token, &id, Duration::from_secs(400)).await;
        let sent = deliveries(&stack, &sender).await;
        let stats = proxy.stats().await;
        let seconds = seconds_between(&done["started_at"], &done["completed_at"]);
        let rate = RECIPIENTS as f64 / seconds;
        println!("paced: {RECIPIENTS} emails at {rate:.1}/s against a limit of {RATE}/s; SES refused {} sends", stats["throttled"]);
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!((done["progress"]["succeeded"].as_u64(), done["progress"]["failed"].as_u64()), (Some(RECIPIENTS as u64), Some(0)));
        let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{} recipients got the email more than once: {:?}", twice.len(), twice.iter().take(5).collect::<Vec<_>>());
        assert_eq!(sent.len(), recipients.len(), "every recipient got it");
        assert!(stats["throttled"].as_u64().unwrap_or(0) > 0, "the limit was met (else this test shows nothing): {stats}");
        assert!(rate >= 0.8 * RATE, "throughput {rate:.1}/s below 80 % of the {RATE}/s limit");
    })
    .await;
}

/// The worker processes of the function `name`, found by the variable Lambda sets.
fn worker_pids(name: &str) -> Vec<u32> {
    let needle = format!("AWS_LAMBDA_FUNCTION_NAME={name}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(environ) = std::fs::read(entry.path().join("environ"))
            && environ
                .split(|b| *b == 0)
                .any(|var| var == needle.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test]
async fn killing_the_worker_mid_job_repeats_few_emails_and_counts_stay_exact() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::load().await;
    const RECIPIENTS: usize = 2_000;
    const KILLS: usize = 3;
    // Paced at 50 emails/s so the job runs long enough to be killed several times.
    const SEND_RATE: f64 = 50.0;
    let tenant = fresh_tenant("crash");
    let token = stack.token(&tenant, "alice", false);
    let name = worker_name();
    with_worker_env(&stack, &[("SES_MAX_SEND_RATE", Some(SEND_RATE.to_string())), ("MAXIMUM_CONCURRENCY", Some("1".into())), ("PLAN_CONCURRENCY", Some("0".into()))], async {
        let (id, sender, _) = bulk_job(&stack, &tenant, &token, RECIPIENTS).await;
        let mut kills = 0;
        let mut last_kill_at = 0;
        let watch = Instant::now();
        while kills < KILLS {
            let now = stack.send("GET", &format!("/jobs/{id}"), Some(&token), None).await.body;
            let sent = deliveries(&stack, &sender).await.values().sum::<usize>();
            assert!(now["status"] == "running" || now["status"] == "queued", "the job ended before {KILLS} kills: {now}");
            // Kill once the worker has sent 100 emails since the last kill: mid-chunk.
            if sent >= last_kill_at + 100 {
                let pids = worker_pids(&name);
                if !pids.is_empty() {
                    for pid in &pids {
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                    kills += 1;
                    last_kill_at = sent;
                    println!("kill {kills} at {sent} emails sent ({:.0?})", watch.elapsed());
                }
            }
            assert!(watch.elapsed() < Duration::from_secs(400), "could not kill {KILLS} times: {now}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let done = stack.wait_until_done(&token, &id, Duration::from_secs(400)).await;
        let sent = deliveries(&stack, &sender).await;
        let repeats: usize = sent.values().map(|n| n - 1).sum();
        println!("crashes: {KILLS} kills, {repeats} emails sent twice ({:.1} per kill), job took {:.0?}", repeats as f64 / KILLS as f64, watch.elapsed());
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!((done["progress"]["succeeded"].as_u64(), done["progress"]["failed"].as_u64()), (Some(RECIPIENTS as u64), Some(0)));
        assert_eq!(sent.len(), RECIPIENTS, "every recipient got it");
        // Bounded by what runs between checkpoints (CheckpointInterval 2 s at 50/s) plus a
        // step in flight (10), not by the chunk (50) or the batch (500).
        assert!(repeats as f64 <= KILLS as f64 * (SEND_RATE * 2.0 + 10.0), "{repeats} repeats for {KILLS} kills");
    })
    .await;
}
