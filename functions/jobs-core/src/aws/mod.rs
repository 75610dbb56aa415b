//! Adapters from the ports to AWS, and the one place clients are configured.

mod batch_write;
mod dynamo;
mod s3;
mod sqs;

pub use batch_write::{batch_write, put};
pub use dynamo::DynamoJobStore;
pub use s3::S3InputStore;
pub use sqs::SqsWorkQueue;

/// Loads the SDK configuration from the environment (region, credentials, and
/// `AWS_ENDPOINT_URL` when pointed at LocalStack). Call once per process.
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// S3 needs path-style addressing behind a custom endpoint: bucket sub-domains of
/// `127.0.0.1` or `localhost` do not resolve.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(builder.build())
}
