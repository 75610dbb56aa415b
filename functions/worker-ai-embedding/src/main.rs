//! AI Text Embedding worker: wiring only.

mod embedder;
mod processor;

use jobs_core::aws::LazyClient;
use jobs_core::env::required;
use jobs_core::worker::lambda::run;

fn main() -> Result<(), lambda_runtime::Error> {
    run(|clients| {
        let titan = embedder::Titan::new(LazyClient::new(
            clients.config,
            aws_sdk_bedrockruntime::Client::new,
        ));
        Ok(processor::Embeddings::new(
            clients.dynamodb.clone(),
            required("EMBEDDINGS_TABLE")?,
            titan,
        ))
    })
}
