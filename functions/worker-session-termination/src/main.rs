//! Session Termination worker: wiring only.

mod processor;

use jobs_core::env::required;
use jobs_core::worker::lambda::run;

fn main() -> Result<(), lambda_runtime::Error> {
    run(|clients| {
        Ok(processor::SessionTerminations::new(
            clients.dynamodb.clone(),
            required("SESSIONS_TABLE")?,
        ))
    })
}
