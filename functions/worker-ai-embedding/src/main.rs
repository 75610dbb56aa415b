//! AI Text Embedding worker: wiring only.

mod embedder;
mod processor;

use jobs_core::aws::LazyClient;

// Lambda hands a process one event at a time and the handler runs as one task: a worker
// thread pool would only lengthen the cold start (~0.6 ms here, README Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::logging::init();
    let config = jobs_core::aws::load_config().await;
    let table = std::env::var("EMBEDDINGS_TABLE").map_err(|_| "EMBEDDINGS_TABLE is not set")?;
    let processor = processor::Embeddings::new(
        aws_sdk_dynamodb::Client::new(&config),
        table,
        embedder::Titan::new(LazyClient::new(&config, aws_sdk_bedrockruntime::Client::new)),
    );
    jobs_core::worker::lambda::serve(processor, &config).await
}
