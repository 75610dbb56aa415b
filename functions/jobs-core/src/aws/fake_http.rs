//! A fake HTTP client for adapter tests: it records each request the SDK sends (operation
//! and JSON body) and answers every one with the same canned status and body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, HttpClient, Region, RuntimeComponents,
    RuntimeComponentsBuilder, SharedHttpClient,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::Value;

/// One request as sent: its operation (from `X-Amz-Target`, e.g. `DynamoDB_20120810.UpdateItem`
/// → `UpdateItem`) and its JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    pub operation: String,
    pub body: Value,
}

#[derive(Clone, Debug)]
pub struct FakeHttp {
    status: u16,
    body: String,
    pub sent: Arc<Mutex<Vec<Sent>>>,
    /// How often the SDK validated this client while building one on it.
    pub validations: Arc<AtomicUsize>,
}

impl FakeHttp {
    pub fn answering(status: u16, body: Value) -> FakeHttp {
        FakeHttp {
            status,
            body: body.to_string(),
            sent: Arc::default(),
            validations: Arc::default(),
        }
    }

    /// The requests sent so far.
    pub fn requests(&self) -> Vec<Sent> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// An SQS client over `http`.
    pub fn sqs(http: SharedHttpClient) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .http_client(http)
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// A DynamoDB client over `http` (this fake, or a wrapper of it).
    pub fn dynamodb(http: SharedHttpClient) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .http_client(http)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

impl HttpConnector for FakeHttp {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = operation.rsplit('.').next().unwrap_or_default().to_string();
        let body = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(Sent { operation, body });
        }
        let status = StatusCode::try_from(self.status)
            .unwrap_or_else(|_| StatusCode::try_from(500).expect("500 is a status code"));
        HttpConnectorFuture::ready(Ok(HttpResponse::new(
            status,
            SdkBody::from(self.body.clone()),
        )))
    }
}

impl HttpClient for FakeHttp {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }

    fn validate_base_client_config(
        &self,
        _: &RuntimeComponentsBuilder,
        _: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.validations.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
