//! Adapters from the ports to AWS, and the one place clients are configured.

mod batch_write;
mod dynamo;
mod eventbridge;
#[cfg(test)]
mod fake_http;
mod https;
mod lazy;
mod s3;
mod ses;
#[cfg(any(test, feature = "test-support"))]
pub(crate) use ses::identities_of;
mod sqs;

pub use batch_write::{batch_write, put};
pub use dynamo::{DynamoAuditLog, DynamoJobStore};
pub use eventbridge::EventBridgeBus;
use https::aws_https_client;
pub use lazy::LazyClient;
pub use s3::S3InputStore;
pub use ses::SesSenderIdentities;
pub use sqs::SqsWorkQueue;

/// Loads the SDK configuration of a Lambda function. Region and credentials come from the
/// variables Lambda sets (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`); naming those providers spares each cold start the default chains
/// (profile files, SSO, web identity, container and IMDS providers, and the STS client they
/// build). `AWS_ENDPOINT_URL` still points every client at LocalStack. Call once per process.
pub async fn load_config() -> aws_config::SdkConfig {
    use aws_config::environment::{
        EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
    };
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(EnvironmentVariableRegionProvider::new())
        .credentials_provider(EnvironmentVariableCredentialsProvider::new());
    match aws_https_client() {
        Some(client) => loader.http_client(client).load().await,
        None => loader.load().await,
    }
}

/// S3 needs path-style addressing behind a custom endpoint: bucket sub-domains of
/// `127.0.0.1` or `localhost` do not resolve.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let builder =
        aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// The AWS adapters of the jobs service's ports.
pub struct AwsPorts;

impl crate::ports::ServicePorts for AwsPorts {
    type Senders = SesSenderIdentities;
}

impl crate::ports::WorkerPorts for AwsPorts {
    type Store = DynamoJobStore;
    type Inputs = S3InputStore;
    type Queue = SqsWorkQueue;
    type Audit = DynamoAuditLog;
    type Bus = EventBridgeBus;
}
