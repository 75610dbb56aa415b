//! Bulk Message Sending worker: wiring only.

mod processor;

fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::worker::lambda::run(|config| Ok(processor::BulkMessages::new(aws_sdk_ses::Client::new(config))))
}
