//! The HTTPS client every SDK client of a function shares.

use aws_sdk_dynamodb::config::{ConfigBag, HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};

/// The roots AWS endpoints chain to (Amazon Trust Services and the Starfield root that
/// cross-signs it), from Mozilla's store.
const AMAZON_TRUST_SERVICES: &str = include_str!("../../certs/amazon-trust-services.pem");

/// An HTTPS client that trusts only the Amazon Trust Services roots. The default client
/// loads and parses every system root at start-up (8 ms of a 13 ms cold start here,
/// measured by `make bench`); a function only ever talks to AWS. An `https://` custom
/// endpoint (another CA) keeps the default client.
pub(super) fn aws_https_client() -> Option<SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let custom_https = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|url| url.starts_with("https://"));
    if custom_https {
        return None;
    }
    let roots = TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_TRUST_SERVICES.as_bytes());
    let context = TlsContext::builder().with_trust_store(roots).build().ok()?;
    let client = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(context).build_https();
    Some(SharedHttpClient::new(ConnectorOnFirstRequest(client)))
}

/// The hyper client's `validate_base_client_config` builds a TLS connector (parsing the
/// roots, building the rustls config) and drops it; the first request builds and caches
/// its own anyway. Every `Client::new` ran that throw-away build inside the cold start:
/// 281 k of the API's 2.19 M instructions before its first `/next` (callgrind).
/// Delegating everything but that check leaves one build, on the first request.
#[derive(Debug)]
struct ConnectorOnFirstRequest(SharedHttpClient);

impl HttpClient for ConnectorOnFirstRequest {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, RuntimeComponentsBuilder};
    use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture};
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// An HTTP client that counts validations and requests, and answers every request with
    /// an empty DynamoDB `ListTables`.
    #[derive(Debug, Default, Clone)]
    struct Counting {
        validations: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
    }

    impl HttpConnector for Counting {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let status = StatusCode::try_from(200).expect("200 is a status code");
            HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(r#"{"TableNames":[]}"#))))
        }
    }

    impl HttpClient for Counting {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }

        fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
            self.validations.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn dynamodb_over(http_client: SharedHttpClient) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .http_client(http_client)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    #[tokio::test]
    async fn building_a_client_skips_the_inner_validation_and_requests_still_go_through_the_inner_client() {
        let inner = Counting::default();
        let client = dynamodb_over(SharedHttpClient::new(ConnectorOnFirstRequest(SharedHttpClient::new(inner.clone()))));
        assert_eq!(inner.validations.load(Ordering::SeqCst), 0);

        let tables = client.list_tables().send().await.map(|out| out.table_names().len());
        assert!(matches!(tables, Ok(0)), "{tables:?}");
        assert_eq!(inner.requests.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_inner_client_alone_is_validated_by_every_client_build() {
        let inner = Counting::default();
        dynamodb_over(SharedHttpClient::new(inner.clone()));
        dynamodb_over(SharedHttpClient::new(inner.clone()));
        assert_eq!(inner.validations.load(Ordering::SeqCst), 2);
    }
}
