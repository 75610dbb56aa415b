//! Where a function's init time goes: this binary links what the functions link, does the
//! start-up steps up to `PROBE_STEP`, then serves like the hello-world baseline. Step 0
//! measures the size of the binary alone; each further step adds one piece of the
//! functions' start-up (see `STEPS` in benches/src/process.rs).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

// The functions' runtime (see functions/api/src/main.rs).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let step: u32 = std::env::var("PROBE_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut clients: Vec<Box<dyn std::any::Any>> = Vec::new();
    if step >= 1 {
        jobs_core::logging::init();
    }
    if step >= 2 {
        let config = jobs_core::aws::load_config().await;
        if step >= 3 {
            clients.push(Box::new(aws_sdk_dynamodb::Client::new(&config)));
        }
        if step >= 4 {
            clients.push(Box::new(aws_sdk_sqs::Client::new(&config)));
        }
        if step >= 5 {
            clients.push(Box::new(jobs_core::aws::s3_client(&config)));
        }
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
