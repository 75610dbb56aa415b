//! Profile Field Update worker: wiring only.

mod processor;

fn main() -> Result<(), lambda_runtime::Error> {
    jobs_core::worker::lambda::run(|config| {
        let table = std::env::var("PROFILES_TABLE").map_err(|_| "PROFILES_TABLE is not set")?;
        Ok(processor::ProfileUpdates::new(aws_sdk_dynamodb::Client::new(config), table))
    })
}
