//! The Jobs API over AWS: the DynamoDB, S3, SQS, SES and EventBridge adapters of
//! `jobs_core::aws` wired into [`JobsApi`], as the API and the scheduler function run it.

use jobs_core::aws::{
    AwsPorts, DynamoAuditLog, DynamoJobStore, EventBridgeBus, LazyClient, S3InputStore,
    SesSenderIdentities, SqsWorkQueue, s3_client,
};
use jobs_core::domain::ended::Observers;
use jobs_core::domain::limits::TenantLimits;
use jobs_core::env::{SettingError, required};

use crate::api::{Jobs, JobsApi, Settings};

/// The jobs service over AWS, as the scheduler function runs it.
pub type AwsJobs = Jobs<AwsPorts>;

/// The Jobs API over AWS, as the API function runs it.
pub type AwsJobsApi = JobsApi<AwsPorts>;

/// Builds [`AwsJobs`] from the function's environment (`TABLE_NAME`, `INPUT_BUCKET`,
/// `WORK_QUEUE_URL_PREFIX`, `AUDIT_TABLE`, `EVENT_BUS_NAME`, the `TENANT_*` and `FILE_*`
/// limits, `RELEASE_WINDOW` and `RELEASE_WINDOW_SCOPE`); S3, SQS and SES clients are
/// built on first use. The error names the missing or invalid variable.
pub fn jobs(config: &aws_config::SdkConfig, retention_days: u32) -> Result<AwsJobs, SettingError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    Ok(Jobs::new(
        DynamoJobStore::new(dynamodb.clone(), required("TABLE_NAME")?),
        S3InputStore::new(
            LazyClient::new(config, s3_client),
            required("INPUT_BUCKET")?,
        ),
        SqsWorkQueue::new(
            LazyClient::new(config, aws_sdk_sqs::Client::new),
            SqsWorkQueue::url_prefix_from_env()?,
        )
        .with_fair_queues(SqsWorkQueue::fair_queues_from_env()?),
        SesSenderIdentities::new(LazyClient::new(config, aws_sdk_ses::Client::new)),
        Observers::new(
            DynamoAuditLog::from_env(dynamodb)?,
            EventBridgeBus::from_env(config)?,
        ),
        retention_days,
    )
    .with_default_limits(TenantLimits::from_env()?)
    .with_uploads_per_day(jobs_core::env::parsed_or(
        "TENANT_UPLOADS_PER_DAY",
        jobs_core::domain::limits::DEFAULT_UPLOADS_PER_DAY,
    )?)
    .with_file_limits(jobs_core::domain::file::FileLimits::from_env()?)
    .with_release(jobs_core::domain::window::ReleaseSettings::from_env()?))
}

/// Builds [`AwsJobsApi`]: [`jobs`] with the token verifiers and cursor key of `settings`.
pub fn jobs_api(
    config: &aws_config::SdkConfig,
    settings: Settings,
) -> Result<AwsJobsApi, SettingError> {
    Ok(JobsApi::serving(
        jobs(config, settings.retention_days)?,
        settings,
        None,
    ))
}
