//! Session Termination worker: wiring only.

mod processor;

// Lambda hands a process one event at a time and the handler runs as one task: a worker
// thread pool would only lengthen the cold start (~0.6 ms here, README Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::logging::init();
    let config = jobs_core::aws::load_config().await;
    let table = std::env::var("SESSIONS_TABLE").map_err(|_| "SESSIONS_TABLE is not set")?;
    let processor = processor::SessionTerminations::new(aws_sdk_dynamodb::Client::new(&config), table);
    jobs_core::worker::lambda::serve(processor, &config).await
}
