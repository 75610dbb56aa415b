//! `infra deploy` / `infra destroy`: the stack from template.yaml, with function code from
//! S3, created or updated through CloudFormation (LocalStack's, or a real account's).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use aws_sdk_s3::primitives::ByteStream;

use crate::package::Built;
use crate::target::Target;

/// The template's `ReleaseWindow` in LocalStack: its SQS event source mapping polls one
/// batch (`WorkerBatchSize`, 5 there) at a time per queue, so a window of one batch keeps a
/// lone job's batches full and lets another tenant's message in after at most one batch.
/// Measured with `make bench BENCH=fairness` (docs/performance.md): a window and batch of 5
/// instead of 10 halve the wait behind a big job and keep its throughput.
pub const LOCALSTACK_RELEASE_WINDOW: u32 = 5;

/// Template parameters for LocalStack, beside [`LOCALSTACK_RELEASE_WINDOW`]: batches of that
/// size; a short worker timeout and visibility timeout (still 6 x) so a crashed batch comes back in a minute,
/// not six; and an SES rate, as LocalStack's `GetSendQuota` always answers 1 per second.
/// Dev tokens (`infra token`) are on in LocalStack; SQS fair queues are off (LocalStack 4.4
/// rejects `MessageGroupId` on a standard queue). A plan queue's mapping has a batching
/// window of 20 s: LocalStack's poller long-polls only for the window (`WaitTimeSeconds`,
/// answered at the first message up to 20 s; above 20 it waits for a full batch) and sleeps
/// 0.5–1.5 s after each empty poll, so with 1 s an idle plan queue was blind half the time
/// and a lone plan waited up to 1.5 s; with 20 s about one time in twenty. The page is served
/// from LocalStack's own origin, which may upload to the input bucket.
pub const LOCALSTACK_PARAMETERS: [(&str, &str); 8] = [
    ("WorkerTimeout", "10"),
    ("WorkerBatchSize", "5"),
    ("PlanBatchingWindow", "20"),
    ("PageOrigins", "http://127.0.0.1:4566,http://localhost:4566"),
    ("WorkQueueVisibilityTimeout", "60"),
    ("SesMaxSendRate", "100"),
    ("DevTokens", "true"),
    ("SqsFairQueues", "false"),
];

pub struct DeployOptions<'a> {
    pub stack: &'a str,
    pub artifacts_bucket: &'a str,
    pub architecture: &'a str,
    pub token_secret: &'a str,
    /// `--param Name=Value` overrides, applied last.
    pub overrides: &'a [(String, String)],
}

/// What `sam package` does: each function's `CodeUri` (a crate folder) becomes the S3
/// location of its uploaded zip.
pub fn packaged_template(template: &str, bucket: &str, built: &[Built]) -> String {
    template
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            match trimmed.strip_prefix("CodeUri:").map(str::trim) {
                Some(uri) => match built.iter().find(|b| b.function.code_uri == uri) {
                    Some(b) => format!(
                        "{indent}CodeUri: s3://{bucket}/{}/{}.zip",
                        b.function.package, b.sha256
                    ),
                    None => line.to_string(),
                },
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn deploy(
    target: &Target,
    template: &str,
    built: &[Built],
    options: &DeployOptions<'_>,
) -> Result<()> {
    let started = Instant::now();
    // Read before deploying, so that a template this check cannot read stops the deploy
    // before it changes anything. Only LocalStack needs it (crate::tables).
    let tables = if target.endpoint.is_some() {
        crate::tables::tables_with_indexes(template)?
    } else {
        Vec::new()
    };
    upload_code(target, options.artifacts_bucket, built).await?;
    let body = packaged_template(template, options.artifacts_bucket, built);
    let template_url = upload_template(target, options.artifacts_bucket, &body).await?;
    let cfn = target.cloudformation();
    let mut parameters = vec![
        Parameter::builder()
            .parameter_key("Architecture")
            .parameter_value(options.architecture)
            .build(),
        Parameter::builder()
            .parameter_key("TokenSecret")
            .parameter_value(options.token_secret)
            .build(),
    ];
    if target.endpoint.is_some() {
        parameters.push(
            Parameter::builder()
                .parameter_key("ReleaseWindow")
                .parameter_value(LOCALSTACK_RELEASE_WINDOW.to_string())
                .build(),
        );
        for (key, value) in LOCALSTACK_PARAMETERS {
            parameters.push(
                Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build(),
            );
        }
    }
    for (key, value) in options.overrides {
        parameters.retain(|p| p.parameter_key() != Some(key.as_str()));
        parameters.push(
            Parameter::builder()
                .parameter_key(key)
                .parameter_value(value)
                .build(),
        );
    }
    let capabilities = [Capability::CapabilityIam, Capability::CapabilityAutoExpand];
    let existing = current_status(target, options.stack).await?;
    if let Some(status) = existing.as_ref().filter(|s| is_in_progress(s)) {
        // AWS would refuse the update; LocalStack accepts it, and two updates at once leave
        // the stack broken.
        bail!(
            "stack {} is {} (another deploy is running): wait for it, then deploy again",
            options.stack,
            status.as_str()
        );
    }
    if existing == Some(StackStatus::RollbackComplete) {
        eprintln!(
            "stack {} is ROLLBACK_COMPLETE from a failed create; deleting it first",
            options.stack
        );
        destroy(target, options.stack).await?;
    }
    let since = aws_sdk_cloudformation::primitives::DateTime::from(std::time::SystemTime::now());
    match current_status(target, options.stack).await? {
        None => {
            eprintln!("creating stack {}", options.stack);
            cfn.create_stack()
                .stack_name(options.stack)
                .template_url(&template_url)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities.to_vec()))
                .send()
                .await
                .map_err(|err| {
                    anyhow::anyhow!(
                        "CreateStack: {}",
                        aws_sdk_cloudformation::error::DisplayErrorContext(&err)
                    )
                })?;
        }
        Some(_) => {
            eprintln!("updating stack {}", options.stack);
            let update = cfn
                .update_stack()
                .stack_name(options.stack)
                .template_url(&template_url)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities.to_vec()))
                .send()
                .await;
            if let Err(err) = update {
                let text = format!(
                    "{}",
                    aws_sdk_cloudformation::error::DisplayErrorContext(&err)
                );
                if text.contains("No updates are to be performed") {
                    eprintln!("stack is up to date");
                    // An earlier update that LocalStack reported as done may still have
                    // left an index out: the template has it, so no update comes again.
                    return crate::tables::create_missing_indexes(target, options.stack, &tables)
                        .await;
                }
                bail!("UpdateStack: {text}");
            }
        }
    }
    wait(target, options.stack, since, false).await?;
    crate::tables::create_missing_indexes(target, options.stack, &tables).await?;
    eprintln!("deployed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Puts the packaged template beside the code (`templates/<sha256>.yaml`) and answers its
/// URL: CloudFormation takes at most 51,200 bytes as `TemplateBody`, 1 MB from S3 (AWS
/// CloudFormation User Guide, "CloudFormation quotas"), as `sam deploy` does.
async fn upload_template(target: &Target, bucket: &str, body: &str) -> Result<String> {
    let key = format!(
        "templates/{}.yaml",
        jobs_core::domain::record::sha256_hex(&[body.as_bytes()])
    );
    target
        .s3()
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
    Ok(match &target.endpoint {
        Some(endpoint) => format!("{endpoint}/{bucket}/{key}"),
        None => {
            let region = target
                .config
                .region()
                .map_or_else(|| "us-east-1".to_string(), |r| r.to_string());
            format!("https://{bucket}.s3.{region}.amazonaws.com/{key}")
        }
    })
}

async fn upload_code(target: &Target, bucket: &str, built: &[Built]) -> Result<()> {
    let s3 = target.s3();
    if s3.head_bucket().bucket(bucket).send().await.is_err() {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .with_context(|| format!("creating bucket {bucket}"))?;
    }
    for b in built {
        let key = format!("{}/{}.zip", b.function.package, b.sha256);
        let body = ByteStream::from_path(&b.zip)
            .await
            .with_context(|| format!("reading {}", b.zip.display()))?;
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(body)
            .send()
            .await
            .with_context(|| format!("uploading {key}"))?;
        eprintln!("uploaded s3://{bucket}/{key}");
    }
    Ok(())
}

/// A status in which CloudFormation is still working on the stack (`*_IN_PROGRESS`).
fn is_in_progress(status: &StackStatus) -> bool {
    status.as_str().ends_with("_IN_PROGRESS")
}

async fn current_status(target: &Target, stack: &str) -> Result<Option<StackStatus>> {
    match target
        .cloudformation()
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .stacks()
            .first()
            .and_then(|s| s.stack_status().cloned())
            .filter(|s| *s != StackStatus::DeleteComplete)),
        Err(err) => {
            let text = format!(
                "{}",
                aws_sdk_cloudformation::error::DisplayErrorContext(&err)
            );
            if text.contains("does not exist") {
                Ok(None)
            } else {
                bail!("DescribeStacks: {text}")
            }
        }
    }
}

/// Polls until the stack settles, printing each new resource event; fails with the
/// reasons CloudFormation gave.
async fn wait(
    target: &Target,
    stack: &str,
    since: aws_sdk_cloudformation::primitives::DateTime,
    deleting: bool,
) -> Result<()> {
    let cfn = target.cloudformation();
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    loop {
        if let Ok(events) = cfn.describe_stack_events().stack_name(stack).send().await {
            let mut fresh: Vec<_> = events
                .stack_events()
                .iter()
                .filter(|e| e.timestamp().is_some_and(|t| t.secs() >= since.secs()))
                .filter(|e| seen.insert(e.event_id().unwrap_or_default().to_string()))
                .collect();
            fresh.reverse();
            for e in fresh {
                let status = e.resource_status().map(|s| s.as_str()).unwrap_or("");
                let reason = e.resource_status_reason().unwrap_or("");
                eprintln!(
                    "  {:<28} {:<24} {}",
                    e.logical_resource_id().unwrap_or(""),
                    status,
                    reason
                );
                if status.ends_with("FAILED") && !reason.is_empty() {
                    failures.push(format!(
                        "{}: {reason}",
                        e.logical_resource_id().unwrap_or("")
                    ));
                }
            }
        }
        let status = current_status(target, stack).await?;
        match status {
            None if deleting => return Ok(()),
            None => bail!("stack {stack} disappeared"),
            Some(s) => {
                let name = s.as_str();
                if name.ends_with("_COMPLETE")
                    && !name.contains("ROLLBACK")
                    && !(deleting && name != "DELETE_COMPLETE")
                {
                    return Ok(());
                }
                if name.contains("ROLLBACK_COMPLETE") || name.ends_with("FAILED") {
                    bail!("stack {stack} ended {name}: {}", failures.join("; "));
                }
            }
        }
        if Instant::now() > deadline {
            bail!("stack {stack} did not settle in 20 minutes");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Empties the input bucket (CloudFormation cannot delete a non-empty bucket), then
/// deletes the stack and waits.
pub async fn destroy(target: &Target, stack: &str) -> Result<()> {
    if current_status(target, stack).await?.is_none() {
        eprintln!("stack {stack} does not exist");
        return Ok(());
    }
    if let Ok(outputs) = target.outputs(stack).await
        && let Some(bucket) = outputs.get("InputBucketName")
    {
        empty_bucket(target, bucket).await?;
    }
    let since = aws_sdk_cloudformation::primitives::DateTime::from(std::time::SystemTime::now());
    target
        .cloudformation()
        .delete_stack()
        .stack_name(stack)
        .send()
        .await
        .context("DeleteStack")?;
    wait(target, stack, since, true).await?;
    eprintln!("stack {stack} deleted");
    Ok(())
}

async fn empty_bucket(target: &Target, bucket: &str) -> Result<()> {
    let s3 = target.s3();
    let mut token = None;
    loop {
        let page = match s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
        {
            Ok(page) => page,
            Err(_) => return Ok(()), // already gone
        };
        for object in page.contents() {
            if let Some(key) = object.key() {
                s3.delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .with_context(|| format!("deleting {key}"))?;
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_still_being_changed_is_not_deployed_over() {
        assert!(is_in_progress(&StackStatus::UpdateInProgress));
        assert!(is_in_progress(
            &StackStatus::UpdateCompleteCleanupInProgress
        ));
        assert!(is_in_progress(&StackStatus::CreateInProgress));
        assert!(!is_in_progress(&StackStatus::UpdateComplete));
        assert!(!is_in_progress(&StackStatus::RollbackComplete));
    }
    use crate::package::FunctionCode;

    #[test]
    fn packaging_points_code_uris_at_uploaded_zips() {
        let template = "Resources:\n  Fn:\n    Properties:\n      CodeUri: functions/api\n      Handler: bootstrap";
        let built = vec![Built {
            function: FunctionCode {
                code_uri: "functions/api".into(),
                package: "jobs-api".into(),
            },
            zip: "x.zip".into(),
            sha256: "abc".into(),
        }];
        let packaged = packaged_template(template, "bucket", &built);
        assert!(packaged.contains("\n      CodeUri: s3://bucket/jobs-api/abc.zip\n"));
        assert!(packaged.ends_with("Handler: bootstrap"));
    }
}
