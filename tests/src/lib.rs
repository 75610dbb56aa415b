//! Test harness: finds the stack deployed by `infra deploy` and talks to it only through
//! its public interfaces (the API), plus the SDK to inspect what the API wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

pub use serde_json::json;

pub struct Stack {
    pub api: String,
    /// LocalStack's endpoint (for its `/_aws/...` inspection routes).
    pub endpoint: String,
    pub outputs: BTreeMap<String, String>,
    secret: String,
    pub http: reqwest::Client,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ses: aws_sdk_ses::Client,
    pub config: aws_config::SdkConfig,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    pub fn error_field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
}

impl Stack {
    /// Loads the stack's outputs; panics with what to run when it is not deployed.
    pub async fn load() -> Stack {
        let target = infra::Target::load(false).await;
        let stack =
            std::env::var("JOBS_STACK").unwrap_or_else(|_| infra::DEFAULT_STACK.to_string());
        let outputs = target
            .outputs(&stack)
            .await
            .unwrap_or_else(|e| panic!("{e:#}: start LocalStack and deploy first (see README)"));
        let ses = aws_sdk_ses::Client::new(&target.config);
        verify_domain(&ses, TEST_SENDER_DOMAIN)
            .await
            .expect("verify the test sender domain in SES");
        Stack {
            api: outputs["ApiUrl"].clone(),
            secret: infra::token::secret().expect("token secret of the deployment"),
            http: infra::http_client()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            dynamo: aws_sdk_dynamodb::Client::new(&target.config),
            sqs: aws_sdk_sqs::Client::new(&target.config),
            ses,
            endpoint: target.endpoint.clone().unwrap_or_default(),
            config: target.config,
            outputs,
        }
    }

    /// A dev token of an operator, or of a platform admin when `admin`.
    pub fn token(&self, tenant: &str, user: &str, admin: bool) -> String {
        let role = if admin {
            jobs_core::domain::auth::Role::PlatformAdmin
        } else {
            jobs_core::domain::auth::Role::Operator
        };
        self.token_as(tenant, user, role)
    }

    /// A dev token of `role`.
    pub fn token_as(
        &self,
        tenant: &str,
        user: &str,
        role: jobs_core::domain::auth::Role,
    ) -> String {
        infra::token::dev_token(&self.secret, tenant, user, role, Duration::from_secs(900))
            .expect("token")
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn table(&self) -> &str {
        &self.outputs["JobsTableName"]
    }

    /// Sends a request; `token` None sends no Authorization header.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.api));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.reply(request).await
    }

    pub async fn reply(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request reaches the API");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Registers `<tenant>@example.com` as a sender of `tenant` (as its tenant admin) and
    /// returns it, so that the tenant's bulk jobs may send from it (`make up` has SES verify
    /// `example.com`).
    pub async fn own_sender(&self, tenant: &str) -> String {
        let address = format!("{tenant}@example.com");
        self.register_sender(tenant, &address).await;
        address
    }

    /// Registers `address` as a sender of `tenant` (as its tenant admin).
    pub async fn register_sender(&self, tenant: &str, address: &str) {
        let admin = self.token_as(
            tenant,
            "sender-admin",
            jobs_core::domain::auth::Role::TenantAdmin,
        );
        let reply = self
            .send(
                "POST",
                "/senders",
                Some(&admin),
                Some(&serde_json::json!({"address": address})),
            )
            .await;
        assert_eq!(reply.status, 201, "registering {address}: {}", reply.body);
    }

    pub async fn create(&self, token: &str, body: &Value) -> Value {
        let reply = self.send("POST", "/jobs", Some(token), Some(body)).await;
        assert_eq!(reply.status, 202, "create failed: {}", reply.body);
        reply.body
    }

    /// Polls a job until it reaches a final status (or fails the test after `timeout`).
    pub async fn wait_until_done(&self, token: &str, id: &str, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let reply = self
                .send("GET", &format!("/jobs/{id}"), Some(token), None)
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let status = reply.body["status"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !matches!(status.as_str(), "queued" | "running") {
                return reply.body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} still {status} after {timeout:?}: {}",
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls a job until its first item succeeded: it is running. Fails the test if it ends first.
    pub async fn wait_until_started(&self, token: &str, id: &str) {
        let path = format!("/jobs/{id}");
        loop {
            let now = self.send("GET", &path, Some(token), None).await.body;
            if now["progress"]["succeeded"].as_u64().unwrap_or(0) > 0 {
                return;
            }
            assert!(
                matches!(now["status"].as_str(), Some("queued" | "running")),
                "job ended before it was seen running: {now}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Emails LocalStack's SES recorded as sent from `source`.
    pub async fn sent_mail(&self, source: &str) -> Vec<Value> {
        let url = format!("{}/_aws/ses?email={source}", self.endpoint);
        let body: Value = self
            .http
            .get(url)
            .send()
            .await
            .expect("GET /_aws/ses")
            .json()
            .await
            .expect("SES messages");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Follows `next_cursor` to the end; returns the pages' job ids.
    pub async fn list_all(&self, token: &str, query: &str) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut cursor = String::new();
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let path = if cursor.is_empty() {
                format!("/jobs?{query}")
            } else {
                format!("/jobs?{query}{sep}cursor={cursor}")
            };
            let reply = self.send("GET", &path, Some(token), None).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            pages.push(ids(&reply.body["items"]));
            match reply.body["next_cursor"].as_str() {
                Some(next) => cursor = next.to_string(),
                None => return pages,
            }
            assert!(pages.len() < 200, "pagination does not end");
        }
    }

    /// The session ids left in `tenant`'s partition of the Sessions table, sorted.
    pub async fn sessions(&self, tenant: &str) -> Vec<String> {
        let out = self
            .dynamo
            .query()
            .table_name(&self.outputs["SessionsTableName"])
            .key_condition_expression("tenant = :t")
            .expression_attribute_values(
                ":t",
                aws_sdk_dynamodb::types::AttributeValue::S(tenant.into()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("Query sessions");
        let mut ids: Vec<String> = out
            .items()
            .iter()
            .filter_map(|i| i.get("session_id")?.as_s().ok().cloned())
            .collect();
        ids.sort();
        ids
    }

    /// The raw DynamoDB item of a job.
    pub async fn job_item(&self, id: &str) -> Option<Value> {
        let out = self
            .dynamo
            .get_item()
            .table_name(self.table())
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("JOB#{id}")),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("JOB".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        out.item
            .map(|item| serde_dynamo::from_item(item).expect("item as JSON"))
    }
}

/// A queue that receives the stack's job end events of `tenant` (an EventBridge rule on the
/// stack's bus with an SQS target). Returns the queue URL.
pub async fn subscribe(stack: &Stack, tenant: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(&stack.config);
    let url = stack
        .sqs
        .create_queue()
        .queue_name(format!("events-{tenant}"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .unwrap_or_default();
    let arn = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap_or_default();
    let bus = stack.outputs["EventBusName"].clone();
    let pattern = json!({"source": ["jobs"], "detail": {"tenant": [tenant]}}).to_string();
    events
        .put_rule()
        .name(tenant)
        .event_bus_name(&bus)
        .event_pattern(pattern)
        .send()
        .await
        .expect("PutRule");
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(arn)
        .build()
        .expect("target");
    events
        .put_targets()
        .rule(tenant)
        .event_bus_name(&bus)
        .targets(target)
        .send()
        .await
        .expect("PutTargets");
    url
}

/// The events received on `queue` until `done` holds for them (or `timeout`), then for
/// `linger` more, so repeats show. Each is the EventBridge envelope as JSON.
pub async fn received_events(
    stack: &Stack,
    queue: &str,
    done: impl Fn(&[Value]) -> bool,
    timeout: Duration,
    linger: Duration,
) -> Vec<Value> {
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut done_at: Option<std::time::Instant> = None;
    loop {
        let out = stack
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        for message in out.messages.unwrap_or_default() {
            events.push(
                serde_json::from_str(message.body.as_deref().unwrap_or("null"))
                    .unwrap_or(Value::Null),
            );
            if let Some(handle) = message.receipt_handle {
                stack
                    .sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
        let now = std::time::Instant::now();
        if done_at.is_none() && done(&events) {
            done_at = Some(now);
        }
        if done_at.is_some_and(|at| now >= at + linger) || now >= deadline {
            return events;
        }
    }
}

/// Verifies a domain identity in LocalStack's SES (any sender at it, or below it, may send).
pub async fn verify_domain(
    ses: &aws_sdk_ses::Client,
    domain: &str,
) -> Result<(), aws_sdk_ses::Error> {
    ses.verify_domain_identity().domain(domain).send().await?;
    Ok(())
}

/// The domain the tests' senders use unless a test is about an unverified one.
pub const TEST_SENDER_DOMAIN: &str = "example.com";

pub fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|j| j["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A tenant of its own for one test, so parallel tests never see each other's jobs.
pub fn fresh_tenant(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub fn embedding_job(text: &str) -> Value {
    json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "d1", "text": text}]}})
}

/// An access token of the local identity provider (`localstack/oidc`) for a demo user,
/// through its login form (`token.mjs`: Authorization Code + PKCE over HTTP, no browser).
/// `client` `jobs-short` gives a token that lasts 5 s.
pub fn idp_token(login: &str, password: &str, client: &str) -> String {
    let script = infra::repo_root().join("localstack/oidc/token.mjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .args(["--user", login, "--password", password, "--client", client])
        .output()
        .expect("node runs localstack/oidc/token.mjs");
    assert!(
        out.status.success(),
        "token.mjs {login}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
