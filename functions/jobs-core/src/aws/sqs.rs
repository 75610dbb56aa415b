use super::LazyClient;
use crate::domain::job::JobType;
use crate::env::{self, SettingError};
use crate::error::StoreError;
use crate::ports::{ExportMessage, QueueDepths, WorkMessage, WorkQueue};

/// Two work queues per job type, so each type's worker scales and fails on its own: chunk
/// messages on `<stack>-work-<type key>`, plan messages on `<stack>-work-<type key>-plans`,
/// each with its own event source mapping to the type's worker, so a job's plan never
/// waits behind a batch of other jobs' chunks. The URLs are a common prefix and the key:
/// the API and the workers need no setting per type.
pub struct SqsWorkQueue {
    client: LazyClient<aws_sdk_sqs::Client>,
    url_prefix: String,
    fair_queues: bool,
}

impl SqsWorkQueue {
    /// `url_prefix`: a queue URL without the type key, e.g.
    /// `https://sqs.us-east-1.amazonaws.com/123456789012/jobs-work-`.
    pub fn new(
        client: LazyClient<aws_sdk_sqs::Client>,
        url_prefix: impl Into<String>,
    ) -> SqsWorkQueue {
        SqsWorkQueue {
            client,
            url_prefix: url_prefix.into(),
            fair_queues: false,
        }
    }

    /// With `on`, every message carries `MessageGroupId` = its tenant: on a standard queue
    /// SQS fair queues then keep one tenant's backlog from delaying the others' messages
    /// (AWS SQS Developer Guide, "Amazon SQS fair queues"). The runtime's own fairness (release
    /// windows) does not depend on it. LocalStack 4.4 rejects the attribute on a standard
    /// queue, so `infra deploy` turns it off there.
    pub fn with_fair_queues(mut self, on: bool) -> SqsWorkQueue {
        self.fair_queues = on;
        self
    }

    /// `SQS_FAIR_QUEUES`: `true` or `false` (absent: `false`).
    pub fn fair_queues_from_env() -> Result<bool, SettingError> {
        env::parsed_or("SQS_FAIR_QUEUES", false)
    }

    /// The message group of `message`: its tenant, with fair queues on.
    fn group(&self, message: &WorkMessage) -> Option<String> {
        self.fair_queues.then(|| message.tenant().to_string())
    }

    /// The prefix from `WORK_QUEUE_URL_PREFIX` (set by the template for every function).
    pub fn url_prefix_from_env() -> Result<String, SettingError> {
        env::required("WORK_QUEUE_URL_PREFIX")
    }

    /// The URL of `job_type`'s work queue, which carries its chunk messages.
    pub fn url(&self, job_type: JobType) -> String {
        format!("{}{}", self.url_prefix, job_type.key())
    }

    /// The URL of `job_type`'s plan queue: `<stack>-work-<type key>-plans`.
    pub fn plan_url(&self, job_type: JobType) -> String {
        format!("{}-plans", self.url(job_type))
    }

    /// The queue `message` goes to: a plan to the type's plan queue, a chunk to its work
    /// queue.
    fn url_of(&self, job_type: JobType, message: &WorkMessage) -> String {
        match message {
            WorkMessage::Plan { .. } => self.plan_url(job_type),
            WorkMessage::Chunk { .. } => self.url(job_type),
        }
    }

    /// The URL of `job_type`'s dead-letter queue: named `<stack>-dlq-<type key>` beside
    /// `<stack>-work-<type key>`.
    pub fn dlq_url(&self, job_type: JobType) -> String {
        let prefix = self
            .url_prefix
            .strip_suffix("-work-")
            .map_or_else(|| self.url_prefix.clone(), |stack| format!("{stack}-dlq-"));
        format!("{prefix}{}", job_type.key())
    }

    /// The URL of the export queue: named `<stack>-exports` beside the work queues.
    pub fn export_url(&self) -> String {
        self.url_prefix.strip_suffix("-work-").map_or_else(
            || format!("{}exports", self.url_prefix),
            |stack| format!("{stack}-exports"),
        )
    }

    async fn counts(&self, url: String) -> Result<(u64, u64), StoreError> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let out = self
            .client
            .get()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| StoreError::aws("sqs:GetQueueAttributes", e))?;
        let attributes = out.attributes.unwrap_or_default();
        let count = |name: &QueueAttributeName| {
            attributes
                .get(name)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            count(&QueueAttributeName::ApproximateNumberOfMessages),
            count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

impl SqsWorkQueue {
    /// Sends `messages` to the queue at `url` in `SendMessageBatch`es of at most 10, in
    /// order.
    async fn send_batches(&self, url: &str, messages: &[&WorkMessage]) -> Result<(), StoreError> {
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::encode("a work message", e))?;
        // Batches keep the messages' order: the n-th body sent is messages[n].
        let mut sent = 0;
        for batch in batches(&bodies) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    let group = messages.get(sent + i).and_then(|m| self.group(m));
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(*body)
                        .set_message_group_id(group)
                        .build()
                        .map_err(|e| StoreError::encode("a SendMessageBatch entry", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            sent += batch.len();
            let out = self
                .client
                .get()
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| StoreError::aws("sqs:SendMessageBatch", e))?;
            if let Some(failed) = out.failed.first() {
                // The caller's message is retried as a whole; duplicates are harmless.
                return Err(StoreError::Incomplete {
                    operation: "sqs:SendMessageBatch",
                    count: out.failed.len(),
                    detail: failed
                        .message
                        .clone()
                        .unwrap_or_else(|| failed.code.clone()),
                });
            }
        }
        Ok(())
    }
}

impl WorkQueue for SqsWorkQueue {
    async fn send_export(&self, message: &ExportMessage) -> Result<(), StoreError> {
        let body = serde_json::to_string(message)
            .map_err(|e| StoreError::encode("an export message", e))?;
        self.client
            .get()
            .send_message()
            .queue_url(self.export_url())
            .message_body(body)
            .send()
            .await
            .map_err(|e| StoreError::aws("sqs:SendMessage", e))?;
        Ok(())
    }

    async fn send(&self, job_type: JobType, message: &WorkMessage) -> Result<(), StoreError> {
        let body =
            serde_json::to_string(message).map_err(|e| StoreError::encode("a work message", e))?;
        self.client
            .get()
            .send_message()
            .queue_url(self.url_of(job_type, message))
            .message_body(body)
            .set_message_group_id(self.group(message))
            .send()
            .await
            .map_err(|e| StoreError::aws("sqs:SendMessage", e))?;
        Ok(())
    }

    async fn send_all(
        &self,
        job_type: JobType,
        messages: &[WorkMessage],
    ) -> Result<(), StoreError> {
        let (plans, chunks): (Vec<&WorkMessage>, Vec<&WorkMessage>) = messages
            .iter()
            .partition(|m| matches!(m, WorkMessage::Plan { .. }));
        self.send_batches(&self.url(job_type), &chunks).await?;
        self.send_batches(&self.plan_url(job_type), &plans).await
    }

    async fn depths(&self, job_type: JobType) -> Result<QueueDepths, StoreError> {
        let ((visible, in_flight), (plans_visible, plans_in_flight), (dead, _)) = futures_util::try_join!(
            self.counts(self.url(job_type)),
            self.counts(self.plan_url(job_type)),
            self.counts(self.dlq_url(job_type))
        )?;
        Ok(QueueDepths {
            messages_visible: visible + plans_visible,
            messages_in_flight: in_flight + plans_in_flight,
            dlq_messages: dead,
        })
    }
}

/// SQS takes at most 10 messages and 256 KiB per batch; keep a margin for attributes.
const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_BATCH_BYTES: usize = 240 * 1024;

fn batches(bodies: &[String]) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut size = 0;
    for body in bodies {
        let fits = out
            .last()
            .is_some_and(|b| b.len() < MAX_BATCH_ENTRIES && size + body.len() <= MAX_BATCH_BYTES);
        if !fits {
            out.push(Vec::new());
            size = 0;
        }
        size += body.len();
        if let Some(batch) = out.last_mut() {
            batch.push(body);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::SharedHttpClient;
    use serde_json::json;

    use super::*;
    use crate::aws::fake_http::FakeHttp;

    fn queue(fair: bool) -> (SqsWorkQueue, FakeHttp) {
        let http = FakeHttp::answering(200, json!({"Successful": [], "Failed": []}));
        let client = FakeHttp::sqs(SharedHttpClient::new(http.clone()));
        let queue = SqsWorkQueue::new(
            LazyClient::ready(client),
            "https://sqs.us-east-1.amazonaws.com/123456789012/jobs-work-",
        )
        .with_fair_queues(fair);
        (queue, http)
    }

    #[tokio::test]
    async fn with_fair_queues_each_message_is_grouped_by_its_tenant() {
        let plan = |tenant: &str| WorkMessage::Plan {
            job_id: "01JOB".into(),
            tenant: tenant.into(),
            woken: false,
        };
        let (fair, http) = queue(true);
        fair.send(JobType::AiTextEmbedding, &plan("acme"))
            .await
            .unwrap();
        fair.send_all(JobType::AiTextEmbedding, &[plan("acme"), plan("globex")])
            .await
            .unwrap();
        let sent = http.requests();
        assert_eq!(sent[0].operation, "SendMessage");
        assert_eq!(sent[0].body["MessageGroupId"], "acme");
        assert_eq!(sent[1].body["Entries"][0]["MessageGroupId"], "acme");
        assert_eq!(sent[1].body["Entries"][1]["MessageGroupId"], "globex");
        let (plain, http) = queue(false);
        plain
            .send(JobType::AiTextEmbedding, &plan("acme"))
            .await
            .unwrap();
        assert!(
            http.requests()[0].body.get("MessageGroupId").is_none(),
            "off: no attribute (LocalStack rejects it on a standard queue)"
        );
    }

    #[tokio::test]
    async fn plans_go_to_the_type_s_plan_queue_and_chunks_to_its_work_queue() {
        let plan = WorkMessage::Plan {
            job_id: "01JOB".into(),
            tenant: "acme".into(),
            woken: true,
        };
        let chunk = WorkMessage::Chunk {
            job_id: "01JOB".into(),
            tenant: "acme".into(),
            chunk: 1,
            items: vec![json!({"id": "d1"})],
            retry_since: None,
        };
        let (queue, http) = queue(false);
        let work = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs-work-ai_text_embedding";
        let plans = format!("{work}-plans");
        queue.send(JobType::AiTextEmbedding, &plan).await.unwrap();
        queue.send(JobType::AiTextEmbedding, &chunk).await.unwrap();
        queue
            .send_all(
                JobType::AiTextEmbedding,
                &[chunk.clone(), plan.clone(), chunk.clone()],
            )
            .await
            .unwrap();
        let sent: Vec<(String, String, usize)> = http
            .requests()
            .iter()
            .map(|r| {
                let entries = r.body["Entries"].as_array().map_or(1, Vec::len);
                (
                    r.operation.clone(),
                    r.body["QueueUrl"].as_str().unwrap_or_default().to_string(),
                    entries,
                )
            })
            .collect();
        assert_eq!(
            sent,
            vec![
                ("SendMessage".to_string(), plans.clone(), 1),
                ("SendMessage".to_string(), work.to_string(), 1),
                ("SendMessageBatch".to_string(), work.to_string(), 2),
                ("SendMessageBatch".to_string(), plans, 1),
            ]
        );
    }

    #[test]
    fn the_dead_letter_and_export_queues_are_named_beside_the_work_queues() {
        let config = aws_config::SdkConfig::builder().build();
        let queue = SqsWorkQueue::new(
            LazyClient::new(&config, aws_sdk_sqs::Client::new),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs-work-",
        );
        assert_eq!(
            queue.url(JobType::AiTextEmbedding),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs-work-ai_text_embedding"
        );
        assert_eq!(
            queue.plan_url(JobType::AiTextEmbedding),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs-work-ai_text_embedding-plans"
        );
        assert_eq!(
            queue.dlq_url(JobType::AiTextEmbedding),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs-dlq-ai_text_embedding"
        );
        assert_eq!(
            queue.export_url(),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs-exports"
        );
    }

    #[test]
    fn batches_respect_count_and_size_limits() {
        let small: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
        assert_eq!(
            batches(&small).iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        let big: Vec<String> = (0..3).map(|_| "x".repeat(100 * 1024)).collect();
        assert_eq!(
            batches(&big).iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert!(batches(&[]).is_empty());
    }
}
