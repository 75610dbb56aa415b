//! Bulk Message Sending worker: wiring only.

mod processor;

use jobs_core::env::parsed;

fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::worker::lambda::run(|clients| {
        Ok(processor::BulkMessages::new(
            aws_sdk_ses::Client::new(clients.config),
            Some(parsed("SES_MAX_SEND_RATE")?),
            parsed("MAXIMUM_CONCURRENCY")?,
        ))
    })
}
