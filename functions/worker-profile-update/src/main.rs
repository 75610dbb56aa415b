//! Profile Field Update worker: wiring only.

mod processor;

use jobs_core::env::required;
use jobs_core::worker::lambda::run;

fn main() -> Result<(), lambda_runtime::Error> {
    run(|clients| {
        Ok(processor::ProfileUpdates::new(
            clients.dynamodb.clone(),
            required("PROFILES_TABLE")?,
        ))
    })
}
