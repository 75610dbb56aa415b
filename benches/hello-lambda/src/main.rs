//! Hello world on `lambda_runtime`, as the lambda_runtime examples write it (`#[tokio::main]`,
//! the multi-thread runtime): what a Rust function costs before it does anything.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
