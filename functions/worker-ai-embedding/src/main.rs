//! AI Text Embedding worker: wiring only.

mod embedder;
mod processor;

use jobs_core::aws::LazyClient;

fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::worker::lambda::run(|config| {
        let table = std::env::var("EMBEDDINGS_TABLE").map_err(|_| "EMBEDDINGS_TABLE is not set")?;
        let titan = embedder::Titan::new(LazyClient::new(config, aws_sdk_bedrockruntime::Client::new));
        Ok(processor::Embeddings::new(aws_sdk_dynamodb::Client::new(config), table, titan))
    })
}
