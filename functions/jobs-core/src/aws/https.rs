//! The HTTPS client every SDK client of a function shares.

use aws_sdk_dynamodb::config::{ConfigBag, HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};

/// The roots AWS endpoints chain to (Amazon Trust Services and the Starfield root that
/// cross-signs it), from Mozilla's store.
const AMAZON_TRUST_SERVICES: &str = include_str!("../../certs/amazon-trust-services.pem");

/// An HTTPS client that trusts only the Amazon Trust Services roots. The default client
/// loads and parses every system root at start-up, most of a cold start (figures in
/// docs/performance.md); a function only ever talks to AWS. An `https://` custom endpoint
/// (another CA) keeps the default client.
pub(super) fn aws_https_client() -> Option<SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let custom_https =
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|url| url.starts_with("https://"));
    if custom_https {
        return None;
    }
    let roots = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_SERVICES.as_bytes());
    let context = TlsContext::builder().with_trust_store(roots).build().ok()?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    Some(SharedHttpClient::new(ConnectorOnFirstRequest(client)))
}

/// The hyper client's `validate_base_client_config` builds a TLS connector (parsing the
/// roots, building the rustls config) and drops it; the first request builds and caches
/// its own anyway. Every `Client::new` ran that throw-away build inside the cold start.
/// Delegating everything but that check leaves one build, on the first request.
#[derive(Debug)]
struct ConnectorOnFirstRequest(SharedHttpClient);

impl HttpClient for ConnectorOnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;

    use super::*;
    use crate::aws::fake_http::FakeHttp;

    #[tokio::test]
    async fn building_a_client_skips_the_inner_validation_and_requests_still_go_through_the_inner_client()
     {
        let inner = FakeHttp::answering(200, json!({"TableNames": []}));
        let client = FakeHttp::dynamodb(SharedHttpClient::new(ConnectorOnFirstRequest(
            SharedHttpClient::new(inner.clone()),
        )));
        assert_eq!(inner.validations.load(Ordering::SeqCst), 0);

        let tables = client
            .list_tables()
            .send()
            .await
            .map(|out| out.table_names().len());
        assert!(matches!(tables, Ok(0)), "{tables:?}");
        assert_eq!(inner.requests().len(), 1);
    }

    #[test]
    fn the_inner_client_alone_is_validated_by_every_client_build() {
        let inner = FakeHttp::answering(200, json!({}));
        FakeHttp::dynamodb(SharedHttpClient::new(inner.clone()));
        FakeHttp::dynamodb(SharedHttpClient::new(inner.clone()));
        assert_eq!(inner.validations.load(Ordering::SeqCst), 2);
    }
}
