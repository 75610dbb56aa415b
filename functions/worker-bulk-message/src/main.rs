//! Bulk Message Sending worker: wiring only.

mod processor;

use jobs_core::env::parsed;

fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::worker::lambda::run(|clients| {
        // The worker's invocations at most: its work queue's mapping's and its plan queue's.
        let chunks: u32 = parsed("MAXIMUM_CONCURRENCY")?;
        let plans: u32 = parsed("PLAN_CONCURRENCY")?;
        Ok(processor::BulkMessages::new(
            aws_sdk_ses::Client::new(clients.config),
            Some(parsed("SES_MAX_SEND_RATE")?),
            chunks.saturating_add(plans),
        ))
    })
}
