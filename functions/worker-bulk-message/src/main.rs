//! Bulk Message Sending worker: wiring only.

mod processor;

fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::worker::lambda::run(|clients| Ok(processor::BulkMessages::new(aws_sdk_ses::Client::new(clients.config))))
}
