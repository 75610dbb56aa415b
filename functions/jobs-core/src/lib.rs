//! The domain of the jobs service, and what every function shares. Entry points (the
//! Lambda functions, the infra tool, tests, benches) depend on this crate; it holds no
//! `main`. Start at `registry` (the job types), `api` (a request) and `worker` (a message);
//! `ports` are what they need from AWS, `aws` the adapters that provide it.

pub mod api;
pub mod audit;
pub mod auth;
pub mod chunk;
pub mod aws;
pub mod clock;
pub mod concurrency;
pub mod cursor;
pub mod ended;
pub mod env;
pub mod error;
pub mod job;
pub mod listing;
pub mod logging;
/// In-memory doubles of the ports, for tests and benches only (the `test-support`
/// feature); the deployed functions are built without it (`infra` checks).
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod metrics;
#[cfg(test)]
mod mutate;
pub mod params;
pub mod ports;
pub mod record;
pub mod registry;
pub mod schedule;
pub mod worker;

pub use error::{ApiError, ErrorCode};
pub use job::{JobStatus, JobType};
