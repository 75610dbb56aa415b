//! Bulk Message Sending worker: wiring only.

mod processor;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::logging::init();
    let config = jobs_core::aws::load_config().await;
    let processor = processor::BulkMessages::new(aws_sdk_ses::Client::new(&config));
    jobs_core::worker::lambda::serve(processor, &config).await
}
