//! `infra build`: binaries of every function in template.yaml, zipped as `bootstrap`.
//!
//! Two cargo profiles (Cargo.toml): `local` (quick to build; LocalStack and the tests) and
//! `release` (small and tuned; AWS).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{artifacts_dir, repo_root};

/// A function of the template: its `CodeUri` (a crate folder) and that crate's package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionCode {
    pub code_uri: String,
    pub package: String,
}

#[derive(Clone, Debug)]
pub struct Built {
    pub function: FunctionCode,
    pub zip: PathBuf,
    pub sha256: String,
}

/// Every `CodeUri: functions/<crate>` of the template: adding a function to the template is
/// all it takes for `infra build` and `infra deploy` to ship it.
pub fn functions_in_template(template: &str) -> Result<Vec<FunctionCode>> {
    let mut found = Vec::new();
    for line in template.lines() {
        let Some(uri) = line.trim().strip_prefix("CodeUri:").map(str::trim) else {
            continue;
        };
        if !uri.starts_with("functions/") {
            bail!("CodeUri {uri} is not a crate under functions/");
        }
        let manifest = std::fs::read_to_string(repo_root().join(uri).join("Cargo.toml"))
            .with_context(|| format!("reading {uri}/Cargo.toml"))?;
        let package = manifest
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("name = ")
                    .map(|n| n.trim_matches('"').to_string())
            })
            .with_context(|| format!("no package name in {uri}/Cargo.toml"))?;
        found.push(FunctionCode {
            code_uri: uri.to_string(),
            package,
        });
    }
    Ok(found)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

fn cargo_lambda_available() -> bool {
    Command::new("cargo")
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    }
}

/// The profile of LocalStack deployments and tests (Cargo.toml).
pub const LOCAL_PROFILE: &str = "local";

/// Builds the functions with cargo `profile`. `local` (LocalStack): plain cargo for the host,
/// which LocalStack's host-process executor runs. Other profiles (AWS): `cargo lambda` where
/// it is installed and `INFRA_BUILDER` does not say otherwise (it cross-compiles for arm64).
/// Cargo's own progress shows.
pub fn build(functions: &[FunctionCode], arch: &str, profile: &str) -> Result<Vec<Built>> {
    let use_lambda = profile != LOCAL_PROFILE
        && std::env::var("INFRA_BUILDER")
            .map(|b| b == "cargo-lambda")
            .unwrap_or_else(|_| cargo_lambda_available());
    if !use_lambda && arch != host_arch() {
        bail!(
            "building for {arch} on a {} host needs cargo-lambda (pip install cargo-lambda ziglang)",
            host_arch()
        );
    }
    let mut command = Command::new("cargo");
    if use_lambda {
        command.args([
            "lambda",
            "build",
            "--profile",
            profile,
            if arch == "arm64" {
                "--arm64"
            } else {
                "--x86-64"
            },
        ]);
    } else {
        command.args(["build", "--profile", profile, "--locked"]);
    }
    // The functions alone, never `--workspace`: cargo unifies features over the packages it
    // builds, and the tests' and benches' `jobs-core/test-support` must not reach them.
    let packages: Vec<&str> = functions.iter().map(|f| f.package.as_str()).collect();
    for package in &packages {
        command.args(["-p", package]);
    }
    check_no_test_support(&packages)?;
    eprintln!(
        "building {} function(s) with {} (profile {profile})",
        functions.len(),
        if use_lambda { "cargo lambda" } else { "cargo" }
    );
    let status = command
        .current_dir(repo_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let out_dir = artifacts_dir().join("lambda");
    std::fs::create_dir_all(&out_dir)?;
    functions
        .iter()
        .map(|f| {
            let binary = if use_lambda {
                target_dir()
                    .join("lambda")
                    .join(&f.package)
                    .join("bootstrap")
            } else {
                target_dir().join(profile).join(&f.package)
            };
            let zip = out_dir.join(format!("{}.zip", f.package));
            let sha256 = zip_bootstrap(&binary, &zip)?;
            Ok(Built {
                function: f.clone(),
                zip,
                sha256,
            })
        })
        .collect()
}

/// jobs-core's feature holding the test doubles (in-memory ports, scripted processor).
pub const TEST_SUPPORT_FEATURE: &str = "test-support";

/// Fails when cargo would build jobs-core for `packages` with [`TEST_SUPPORT_FEATURE`]:
/// asks cargo for the features it resolves for exactly that selection (`cargo tree`).
pub fn check_no_test_support(packages: &[&str]) -> Result<()> {
    let mut command = Command::new("cargo");
    command.args([
        "tree",
        "--locked",
        "--edges",
        "normal",
        "--format",
        "{p} [{f}]",
        "--invert",
        "jobs-core",
    ]);
    for package in packages {
        command.args(["-p", package]);
    }
    let out = command
        .current_dir(repo_root())
        .output()
        .context("running cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let Some(line) = tree.lines().find(|l| l.starts_with("jobs-core ")) else {
        bail!("cargo tree shows no jobs-core for {packages:?}")
    };
    if line.contains(TEST_SUPPORT_FEATURE) {
        bail!(
            "the functions would be built with jobs-core's {TEST_SUPPORT_FEATURE} feature: {line}"
        );
    }
    Ok(())
}

/// Zips a binary as an executable `bootstrap` with a fixed timestamp, so that the same
/// binary gives the same zip (and deploys skip unchanged code). Returns the zip's SHA-256.
fn zip_bootstrap(binary: &Path, zip_path: &Path) -> Result<String> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut writer = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755)
            .last_modified_time(zip::DateTime::default());
        writer.start_file("bootstrap", options)?;
        writer.write_all(&bytes)?;
        writer.finish()?;
    }
    let zipped = buffer.into_inner();
    std::fs::write(zip_path, &zipped)?;
    Ok(jobs_core::domain::record::sha256_hex(&[&zipped]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployed_functions_are_built_without_test_support_and_the_check_sees_it() {
        let template = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
        let functions = functions_in_template(&template).unwrap();
        let packages: Vec<&str> = functions.iter().map(|f| f.package.as_str()).collect();
        check_no_test_support(&packages).unwrap();
        let refused = check_no_test_support(&["e2e"]).unwrap_err().to_string();
        assert!(
            refused.contains(TEST_SUPPORT_FEATURE),
            "the tests' crate has the feature: {refused}"
        );
    }

    #[test]
    fn template_functions_map_to_crates() {
        let template = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
        let functions = functions_in_template(&template).unwrap();
        assert!(functions.contains(&FunctionCode {
            code_uri: "functions/api".into(),
            package: "jobs-api".into()
        }));
    }

    #[test]
    fn same_binary_gives_the_same_zip() {
        let dir = std::env::temp_dir().join(format!("infra-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bin"), b"#!/bin/sh\necho hi\n").unwrap();
        let a = zip_bootstrap(&dir.join("bin"), &dir.join("a.zip")).unwrap();
        let b = zip_bootstrap(&dir.join("bin"), &dir.join("b.zip")).unwrap();
        assert_eq!(a, b);
        let mut archive =
            zip::ZipArchive::new(std::fs::File::open(dir.join("a.zip")).unwrap()).unwrap();
        let entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[cfg(test)]
mod template_tests {
    use crate::repo_root;

    fn mapping(template: &str, key: &str) -> u64 {
        template
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{key}:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("{key} not in template.yaml"))
    }

    /// A template parameter's `Default`.
    fn default_of(template: &str, parameter: &str) -> u64 {
        let start = template
            .find(&format!("\n  {parameter}:\n"))
            .unwrap_or_else(|| panic!("no parameter {parameter}"));
        mapping(&template[start..], "Default")
    }

    /// AWS advises a queue visibility timeout of at least 6 x the function timeout for SQS
    /// event sources; CloudFormation cannot compute it, so this test keeps the defaults and
    /// LocalStack's values together.
    #[test]
    fn queue_visibility_is_six_times_the_worker_timeout_and_retries_are_allowed() {
        let template = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
        assert!(
            default_of(&template, "WorkQueueVisibilityTimeout")
                >= 6 * default_of(&template, "WorkerTimeout")
        );
        let local = |key: &str| {
            crate::deploy::LOCALSTACK_PARAMETERS
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap()
        };
        assert!(local("WorkQueueVisibilityTimeout") >= 6 * local("WorkerTimeout"));
        assert!(mapping(&template, "MaxReceiveCount") > 1);
        let types = jobs_core::domain::registry::REGISTRY.len();
        assert_eq!(
            template
                .matches("VisibilityTimeout: !Ref WorkQueueVisibilityTimeout")
                .count(),
            2 * types,
            "a work queue and a plan queue per registered type"
        );
        assert_eq!(
            template.matches("Timeout: !Ref WorkerTimeout").count(),
            types,
            "one worker per registered type"
        );
        assert_eq!(
            template.matches("MessageRetentionPeriod: 1209600").count(),
            types + 1,
            "one DLQ per registered type and the export queue's, kept 14 days"
        );
        // The exporter's queue: Lambda's longest timeout, six times over.
        assert!(template.contains("      VisibilityTimeout: 5400\n"));
        assert!(template.contains("      Timeout: 900\n"));
    }
}
