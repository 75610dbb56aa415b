//! What every function of the jobs service shares: the domain (`registry` of job types,
//! `job` and `record`, `params`, `chunk`, `metrics`, `audit`, `ended`), the `ports` and
//! their AWS adapters (`aws`), and the worker runtime (`worker`). Entry points (the Lambda
//! functions, the infra tool, tests, benches) depend on it; the API's own code is
//! `jobs-api-core`, which workers never compile. Start at `registry`, then `worker`.

pub mod audit;
pub mod auth;
pub mod aws;
pub mod chunk;
pub mod clock;
pub mod concurrency;
/// The conformance suites of the storage ports, for the doubles and the adapters alike
/// (`test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod ended;
pub mod env;
pub mod error;
pub mod job;
pub mod logging;
/// In-memory doubles of the ports, for tests and benches only (the `test-support`
/// feature); the deployed functions are built without it (`infra` checks).
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod metrics;
/// Byte-level mutations of valid inputs, for the fuzz-style tests (`test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod mutate;
pub mod params;
pub mod ports;
pub mod record;
pub mod registry;
pub mod worker;

pub use error::{ApiError, ErrorCode};
pub use job::{JobStatus, JobType};
