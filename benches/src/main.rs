//! `make bench` (or `cargo run --profile bench-tools -p jobs-bench -- [all|pipeline|listing|fairness|metrics|init|cpu|tokens|large]`):
//! each benchmark runs our design and its naive baseline in the same command and prints
//! our figure, the baseline's and the ratio. Needs LocalStack with the stack deployed
//! (`make up`), except `init`, `cpu` and `tokens`.

mod cost;
mod counting;
mod cpu;
mod fairness;
mod large;
mod listing;
mod metrics;
mod pipeline;
mod process;
mod tokens;

use std::collections::BTreeMap;

use anyhow::Result;

pub struct Env {
    pub config: aws_config::SdkConfig,
    pub outputs: BTreeMap<String, String>,
    pub sqs: aws_sdk_sqs::Client,
}

impl Env {
    async fn load() -> Result<Env> {
        let target = infra::Target::load(false).await;
        let stack =
            std::env::var("JOBS_STACK").unwrap_or_else(|_| infra::DEFAULT_STACK.to_string());
        let outputs = target
            .outputs(&stack)
            .await
            .map_err(|e| e.context("deploy the stack first: make up"))?;
        Ok(Env {
            sqs: aws_sdk_sqs::Client::new(&target.config),
            config: target.config,
            outputs,
        })
    }

    pub fn table(&self) -> &str {
        &self.outputs["JobsTableName"]
    }
}

/// One line of the results table.
pub struct Row {
    pub name: String,
    pub ours: f64,
    pub baseline: f64,
    /// The goal, as the largest (or, with `higher`, smallest) acceptable ours ÷ baseline.
    pub goal: Option<Goal>,
    pub note: String,
}

#[derive(Clone, Copy)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// A bound on our figure itself, not on the ratio.
    OursAtMost(f64),
}

impl Row {
    pub fn new(name: &str, ours: f64, baseline: f64, goal: Option<Goal>, note: String) -> Row {
        Row {
            name: name.into(),
            ours,
            baseline,
            goal,
            note,
        }
    }

    fn verdict(&self) -> String {
        let ratio = self.ours / self.baseline;
        if !ratio.is_finite() {
            return "no baseline yet".into();
        }
        match self.goal {
            Some(Goal::AtMost(max)) => format!(
                "≤ {max} : {}",
                if ratio <= max { "met" } else { "**not met**" }
            ),
            Some(Goal::AtLeast(min)) => format!(
                "≥ {min} : {}",
                if ratio >= min { "met" } else { "**not met**" }
            ),
            Some(Goal::OursAtMost(max)) => format!(
                "ours ≤ {max} : {}",
                if self.ours <= max {
                    "met"
                } else {
                    "**not met**"
                }
            ),
            None => "–".into(),
        }
    }
}

fn print(rows: &[Row], out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "| Benchmark | Ours | Baseline | Ours ÷ baseline | Goal (ratio) | Detail |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---|---|")?;
    for r in rows {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            figure(r.ours),
            figure(r.baseline),
            figure(r.ours / r.baseline),
            r.verdict(),
            r.note
        )?;
    }
    Ok(())
}

fn figure(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 1000.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("large-case") => large::case_main(
            args.get(2).map_or("", String::as_str),
            args.get(3).and_then(|n| n.parse().ok()).unwrap_or(0),
            args.get(4).and_then(|n| n.parse().ok()).unwrap_or(0),
        ),
        Some("cpu-case") => cpu::case(
            args.get(2).map_or("", String::as_str),
            args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1),
        ),
        which => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(which.unwrap_or("all"))),
    }
}

/// Where the log and EMF lines of the workers that benchmarks run in this process go.
const WORKER_LOG: &str = "bench-workers.log";

/// Sends this process's stdout (where workers print their log and EMF lines, as in Lambda)
/// to `path`; returns the original stdout, for the tables.
fn divert_stdout(path: &std::path::Path) -> Result<std::fs::File> {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    std::io::stdout().flush()?;
    let log = std::fs::File::create(path)?;
    // SAFETY: dup and dup2 on descriptors this process owns; the duplicate of stdout is owned
    // by the returned File alone.
    unsafe {
        let terminal = libc::dup(1);
        if terminal < 0 || libc::dup2(log.as_raw_fd(), 1) < 0 {
            anyhow::bail!(
                "cannot divert stdout to {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(std::fs::File::from_raw_fd(terminal))
    }
}

async fn run(which: &str) -> Result<()> {
    let log = infra::artifacts_dir().join(WORKER_LOG);
    std::fs::create_dir_all(infra::artifacts_dir())?;
    let mut terminal = divert_stdout(&log)?;
    eprintln!("bench: the workers' log lines go to {}", log.display());
    let all = which == "all";
    let mut rows = Vec::new();
    if all || which == "init" {
        rows.extend(process::run()?);
    }
    if all || which == "cpu" {
        rows.extend(cpu::run()?);
    }
    if all || which == "tokens" {
        rows.extend(tokens::run().await?);
    }
    if all || ["pipeline", "listing", "fairness", "metrics", "large"].contains(&which) {
        let env = Env::load().await?;
        // Not in `all`: it writes a 0.39 GB file and plans it twice (minutes).
        if which == "large" {
            rows.extend(large::run(&env).await?);
        }
        if all || which == "fairness" {
            rows.extend(fairness::run(&env).await?);
        }
        if all || which == "pipeline" {
            rows.extend(pipeline::run(&env, 10_000).await?);
        }
        if all || which == "listing" {
            rows.extend(listing::run(&env).await?);
        }
        if all || which == "metrics" {
            rows.extend(metrics::run(&env).await?);
        }
    }
    if rows.is_empty() {
        anyhow::bail!(
            "unknown benchmark {which}: all, pipeline, listing, fairness, metrics, init, cpu, tokens or large"
        );
    }
    print(&rows, &mut terminal)?;
    Ok(())
}
