//! Bulk Message Sending worker: wiring only.

mod processor;

// Lambda hands a process one event at a time and the handler runs as one task: a worker
// thread pool would only lengthen the cold start (~0.6 ms here, README Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::logging::init();
    let config = jobs_core::aws::load_config().await;
    let processor = processor::BulkMessages::new(aws_sdk_ses::Client::new(&config));
    jobs_core::worker::lambda::serve(processor, &config).await
}
