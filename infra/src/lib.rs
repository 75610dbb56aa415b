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

/// The repository root (infra lives one level below it).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
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
