//! Session Termination worker: wiring only.

mod processor;

use jobs_core::worker::lambda::{required, run};

fn main() -> Result<(), lambda_runtime::Error> {
    run(|clients| Ok(processor::SessionTerminations::new(clients.dynamodb.clone(), required("SESSIONS_TABLE")?)))
}
