//! The infra tool's library: where the stack lives and how to reach it. Shared with the
//! end-to-end tests so that both find the deployed stack the same way.

pub mod deploy;
pub mod package;
pub mod seed;
pub mod tables;
pub mod target;
pub mod token;

pub use target::Target;

/// The name of the stack `infra deploy` manages.
pub const DEFAULT_STACK: &str = "jobs";

/// The repository root: `JOBS_REPO_ROOT` (set by `infra/run.sh`), else the parent of the
/// running crate's `CARGO_MANIFEST_DIR` (cargo sets it when it runs tests and benches; every
/// crate that calls this lives one level below the root). Read at run time, not compile
/// time: checkouts sharing one `CARGO_TARGET_DIR` may reuse a binary built in another one.
pub fn repo_root() -> std::path::PathBuf {
    if let Some(root) = std::env::var_os("JOBS_REPO_ROOT") {
        return root.into();
    }
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    manifest_dir
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default()
}

/// Generated, git-ignored files: function zips and the local token secret.
pub fn artifacts_dir() -> std::path::PathBuf {
    repo_root().join(".artifacts")
}

/// An HTTP client builder for the tools and tests (reqwest over rustls with the aws-lc-rs
/// provider the AWS SDK uses; reqwest is built without a provider of its own, so that the
/// workspace and the deployed functions resolve the same dependency features).
pub fn http_client() -> reqwest::ClientBuilder {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
}
