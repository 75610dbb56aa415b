//! The least any function of this service does at start: hello world on the functions'
//! current-thread runtime that also loads the SDK configuration and builds one DynamoDB client.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = jobs_core::aws::load_config().await;
    let _dynamodb = aws_sdk_dynamodb::Client::new(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
