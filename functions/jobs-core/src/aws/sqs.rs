use std::collections::HashMap;

use super::LazyClient;
use crate::error::StoreError;
use crate::job::JobType;
use crate::ports::{WorkMessage, WorkQueue};

/// One work queue per job type, so each type's worker scales and fails on its own.
pub struct SqsWorkQueue {
    client: LazyClient<aws_sdk_sqs::Client>,
    urls: HashMap<JobType, String>,
}

impl SqsWorkQueue {
    pub fn new(client: LazyClient<aws_sdk_sqs::Client>, urls: HashMap<JobType, String>) -> SqsWorkQueue {
        SqsWorkQueue { client, urls }
    }

    /// Reads each type's queue URL from `<TYPE>_QUEUE_URL`; names the missing variables.
    pub fn urls_from_env() -> Result<HashMap<JobType, String>, String> {
        let mut urls = HashMap::new();
        let mut missing = Vec::new();
        for t in JobType::ALL {
            match std::env::var(t.queue_env_var()) {
                Ok(url) if !url.is_empty() => {
                    urls.insert(t, url);
                }
                _ => missing.push(t.queue_env_var()),
            }
        }
        if missing.is_empty() { Ok(urls) } else { Err(format!("missing {}", missing.join(", "))) }
    }
}

impl WorkQueue for SqsWorkQueue {
    async fn send(&self, job_type: JobType, message: &WorkMessage) -> Result<(), StoreError> {
        let url = self
            .urls
            .get(&job_type)
            .ok_or_else(|| StoreError::Corrupt(format!("no queue for {}", job_type.key())))?;
        let body = serde_json::to_string(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.client
            .get()
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| StoreError::aws("sqs:SendMessage", e))?;
        Ok(())
    }

    async fn send_all(&self, job_type: JobType, messages: &[WorkMessage]) -> Result<(), StoreError> {
        let url = self
            .urls
            .get(&job_type)
            .ok_or_else(|| StoreError::Corrupt(format!("no queue for {}", job_type.key())))?;
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for batch in batches(&bodies) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(*body)
                        .build()
                        .map_err(|e| StoreError::aws("build SendMessageBatch entry", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
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
                return Err(StoreError::Corrupt(format!(
                    "SendMessageBatch refused {} entries: {}",
                    out.failed.len(),
                    failed.message.as_deref().unwrap_or(failed.code.as_str())
                )));
            }
        }
        Ok(())
    }
}

/// SQS takes at most 10 messages and 256 KiB per batch; keep a margin for attributes.
const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_BATCH_BYTES: usize = 240 * 1024;

fn batches(bodies: &[String]) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut size = 0;
    for body in bodies {
        let fits = out.last().is_some_and(|b| b.len() < MAX_BATCH_ENTRIES && size + body.len() <= MAX_BATCH_BYTES);
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
    use super::*;

    #[test]
    fn batches_respect_count_and_size_limits() {
        let small: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
        assert_eq!(batches(&small).iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
        let big: Vec<String> = (0..3).map(|_| "x".repeat(100 * 1024)).collect();
        assert_eq!(batches(&big).iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        assert!(batches(&[]).is_empty());
    }
}
