use std::collections::HashMap;

use crate::error::StoreError;
use crate::job::JobType;
use crate::ports::{WorkMessage, WorkQueue};

/// One work queue per job type, so each type's worker scales and fails on its own.
pub struct SqsWorkQueue {
    client: aws_sdk_sqs::Client,
    urls: HashMap<JobType, String>,
}

impl SqsWorkQueue {
    pub fn new(client: aws_sdk_sqs::Client, urls: HashMap<JobType, String>) -> SqsWorkQueue {
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
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| StoreError::aws("sqs:SendMessage", e))?;
        Ok(())
    }
}
