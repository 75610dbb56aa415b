//! The domain of the jobs service. Entry points (Lambda functions, the infra tool, tests)
//! depend on this crate; it holds no `main` and builds no clients of its own.

pub mod api;
pub mod auth;
pub mod aws;
pub mod clock;
pub mod cursor;
pub mod env;
pub mod error;
pub mod job;
pub mod listing;
pub mod logging;
pub mod memory;
#[cfg(test)]
mod mutate;
pub mod params;
pub mod ports;
mod pow;
pub mod record;
pub mod worker;

pub use error::{ApiError, ErrorCode};
pub use job::{JobStatus, JobType};
