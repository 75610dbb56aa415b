//! What every function of the jobs service shares: the `domain` (the registry of job
//! types, records, params, chunks, metrics, the audit trail, a job's end), the `ports` and
//! their AWS adapters (`aws`), and the worker runtime (`worker`). Entry points (the Lambda
//! functions, the infra tool, tests, benches) depend on it; the API's own code is
//! `jobs-api-core`, which workers never compile. Start at `domain::registry`, then `worker`.

pub mod aws;
pub mod clock;
pub mod concurrency;
/// The conformance suites of the storage ports, for the doubles and the adapters alike
/// (`test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod domain;
pub mod env;
pub mod error;
pub mod item_list;
pub mod logging;
/// In-memory doubles of the ports, for tests and benches only (the `test-support`
/// feature); the deployed functions are built without it (`infra` checks).
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
/// Byte-level mutations of valid inputs, for the fuzz-style tests (`test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod mutate;
pub mod ports;
pub mod worker;

pub use domain::job::{JobStatus, JobType};
pub use error::{ApiError, ErrorCode};
