//! The Jobs API function: builds its clients once (S3, SQS and SES on the first create),
//! then serves API Gateway events.

mod gateway;

use jobs_api_core::api::Settings;
use jobs_api_core::aws::jobs_api;
use jobs_core::aws::load_config;

// Lambda hands a process one event at a time and the handler runs as one task: a worker
// thread pool would only lengthen the cold start (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    jobs_core::logging::init();
    let config = load_config().await;
    let api = jobs_api(&config, Settings::from_env()?)?;
    let api: &'static _ = Box::leak(Box::new(api));
    lambda_http::run(lambda_http::service_fn(move |request| {
        gateway::handle(api, request)
    }))
    .await
}
