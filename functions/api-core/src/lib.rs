//! The Jobs API: what each operation does (`api`, over the ports of `jobs_core`), its HTTP
//! mapping, the System → Jobs page and the OpenAPI document (`api::http`), bearer tokens
//! (`tokens`), listings and their signed cursors, schedules' timing (`schedule`), the
//! scheduler's tick (`scheduler`), and the wiring of the AWS adapters (`aws`). The API function and the scheduler use it; workers
//! do not, so none of this is compiled into a worker.

pub mod api;
pub mod aws;
pub mod cursor;
pub mod listing;
pub mod oidc;
pub mod query;
pub mod schedule;
pub mod scheduler;
pub mod tokens;
