//! Sends each recipient its email through SES (v1 `SendEmail`, which LocalStack's free
//! tier implements and records at `GET /_aws/ses`). A rejected or invalid recipient fails
//! that item; throttling retries the chunk.
//!
//! SES has no idempotency key: a chunk retried after a crash between sending and
//! committing re-sends its messages. The chunk ledger keeps the *counts* exact.

use jobs_core::JobType;
use jobs_core::params::{BulkMessageParams, is_email};
use jobs_core::record::JobRecord;
use jobs_core::worker::{ItemOutcome, Processor, WorkError, in_order};

/// Emails sent at once within a chunk: enough to hide SES latency, far below its quotas.
const CONCURRENCY: usize = 10;

pub struct BulkMessages {
    ses: aws_sdk_ses::Client,
}

impl BulkMessages {
    pub fn new(ses: aws_sdk_ses::Client) -> BulkMessages {
        BulkMessages { ses }
    }

    async fn send(&self, params: &BulkMessageParams, recipient: &str) -> Result<ItemOutcome, WorkError> {
        // Chunk messages are not trusted: re-check what the API validated.
        if !is_email(recipient) {
            return Ok(ItemOutcome::Rejected("not a valid email address".into()));
        }
        let content = |text: &str| {
            aws_sdk_ses::types::Content::builder().data(text).charset("UTF-8").build().map_err(|e| WorkError::Rejected(e.to_string()))
        };
        let message = aws_sdk_ses::types::Message::builder()
            .subject(content(&params.subject)?)
            .body(aws_sdk_ses::types::Body::builder().text(content(&params.body)?).build())
            .build();
        let result = self
            .ses
            .send_email()
            .source(&params.from)
            .destination(aws_sdk_ses::types::Destination::builder().to_addresses(recipient).build())
            .message(message)
            .send()
            .await;
        ItemOutcome::of(result)
    }
}

impl Processor for BulkMessages {
    const JOB_TYPE: JobType = JobType::BulkMessageSending;
    type Params = BulkMessageParams;
    type Item = String;

    async fn items(&self, _job: &JobRecord, params: &BulkMessageParams) -> Result<Vec<String>, WorkError> {
        Ok(params.recipients.clone())
    }

    fn label(recipient: &String) -> String {
        recipient.clone()
    }

    async fn process(&self, _job: &JobRecord, params: &BulkMessageParams, recipients: &[String]) -> Result<Vec<ItemOutcome>, WorkError> {
        in_order(recipients.iter().map(|r| self.send(params, r)).collect(), CONCURRENCY).await.into_iter().collect()
    }
}
