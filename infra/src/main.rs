//! infra: build, deploy and tear down the jobs stack; print outputs; mint dev tokens; seed.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use infra::{DEFAULT_STACK, Target, deploy, package, repo_root, seed, token};
use jobs_core::domain::auth::Role;

#[derive(Parser)]
#[command(about = "Build, deploy and operate the jobs stack (LocalStack by default).")]
struct Cli {
    /// Talk to a real AWS account (the SDK's usual configuration) instead of LocalStack.
    #[arg(long, global = true, env = "INFRA_AWS")]
    aws: bool,
    #[arg(long, global = true, default_value = DEFAULT_STACK, env = "JOBS_STACK")]
    stack: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build zips of every function in template.yaml into .artifacts/lambda.
    Build {
        #[arg(long, default_value = default_arch())]
        arch: String,
        /// Cargo profile: `local` (quick build) by default, `release` (tuned) with --aws.
        #[arg(long)]
        profile: Option<String>,
    },
    /// Build, upload and create or update the stack; then print its outputs.
    Deploy {
        #[arg(long, default_value = default_arch())]
        arch: String,
        /// Cargo profile: `local` (quick build) by default, `release` (tuned) with --aws.
        #[arg(long)]
        profile: Option<String>,
        /// Bucket for function zips (created if missing).
        #[arg(long, default_value = "jobs-artifacts", env = "JOBS_ARTIFACTS_BUCKET")]
        artifacts_bucket: String,
        /// A template parameter, `Name=Value` (repeatable), e.g. `--param OidcIssuer=https://…`.
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Print the stack's outputs (API URL, Jobs page URL, table and queue names).
    Outputs {
        #[arg(long)]
        json: bool,
    },
    /// Print a bearer token signed with the deployment's secret.
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// viewer, operator (the default), tenant_admin or platform_admin.
        #[arg(long, default_value = "operator", value_parser = parse_role)]
        role: Role,
        /// The same as `--role platform_admin`.
        #[arg(long, conflicts_with = "role")]
        admin: bool,
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Create a few demo jobs of every type through the API.
    Seed,
    /// Delete the stack (after emptying its input bucket).
    Destroy,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value))
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Ok((name.to_string(), value.to_string()))
        }
        _ => Err("write Name=Value, Name a template parameter".into()),
    }
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| "use viewer, operator, tenant_admin or platform_admin".to_string())
}

const fn default_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    }
}

/// `release` (Cargo.toml: small, tuned, slow to build) for AWS; `local` for LocalStack.
const fn default_profile(aws: bool) -> &'static str {
    if aws {
        "release"
    } else {
        package::LOCAL_PROFILE
    }
}

fn read_template() -> Result<String> {
    let path = repo_root().join("template.yaml");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

async fn print_outputs(target: &Target, stack: &str, json: bool) -> Result<()> {
    let outputs = target.outputs(stack).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&outputs)?);
    } else {
        for (key, value) in &outputs {
            println!("{key:<32} {value}");
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Build { arch, profile } => {
            let template = read_template()?;
            let profile = profile.unwrap_or_else(|| default_profile(cli.aws).into());
            for built in
                package::build(&package::functions_in_template(&template)?, &arch, &profile)?
            {
                println!("{}  {}", built.zip.display(), built.sha256);
            }
        }
        Command::Deploy {
            arch,
            profile,
            artifacts_bucket,
            params,
        } => {
            let template = read_template()?;
            let profile = profile.unwrap_or_else(|| default_profile(cli.aws).into());
            let built =
                package::build(&package::functions_in_template(&template)?, &arch, &profile)?;
            let target = Target::load(cli.aws).await;
            let secret = token::secret()?;
            let options = deploy::DeployOptions {
                stack: &cli.stack,
                artifacts_bucket: &artifacts_bucket,
                architecture: &arch,
                token_secret: &secret,
                overrides: &params,
            };
            deploy::deploy(&target, &template, &built, &options).await?;
            print_outputs(&target, &cli.stack, false).await?;
        }
        Command::Outputs { json } => {
            print_outputs(&Target::load(cli.aws).await, &cli.stack, json).await?
        }
        Command::Token {
            tenant,
            user,
            role,
            admin,
            ttl,
        } => {
            let secret = token::secret()?;
            let role = if admin { Role::PlatformAdmin } else { role };
            println!(
                "{}",
                token::dev_token(&secret, &tenant, &user, role, token::parse_ttl(&ttl)?)?
            );
        }
        Command::Seed => {
            let target = Target::load(cli.aws).await;
            let outputs = target.outputs(&cli.stack).await?;
            let api_url = outputs
                .get("ApiUrl")
                .context("stack has no ApiUrl output")?;
            seed::seed_data(&target.config, &outputs).await?;
            seed::seed(api_url, &token::secret()?).await?;
        }
        Command::Destroy => deploy::destroy(&Target::load(cli.aws).await, &cli.stack).await?,
    }
    Ok(())
}
