//! Session Termination worker: wiring only.

mod processor;

fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::worker::lambda::run(|config| {
        let table = std::env::var("SESSIONS_TABLE").map_err(|_| "SESSIONS_TABLE is not set")?;
        Ok(processor::SessionTerminations::new(aws_sdk_dynamodb::Client::new(config), table))
    })
}
