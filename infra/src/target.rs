//! Which AWS the tool talks to: LocalStack on 127.0.0.1:4566 unless told otherwise.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;

pub const LOCALSTACK_ENDPOINT: &str = "http://127.0.0.1:4566";

pub struct Target {
    pub config: SdkConfig,
    /// Set when the target is LocalStack (or another custom endpoint).
    pub endpoint: Option<String>,
}

impl Target {
    /// `aws = false`: the usual AWS env vars, with LocalStack defaults for whatever is unset
    /// (endpoint, region `us-east-1`, credentials `test`/`test`). `aws = true`: the SDK's
    /// own resolution only, for a real account.
    pub async fn load(aws: bool) -> Target {
        if aws {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let endpoint = config.endpoint_url().map(str::to_string);
            return Target { config, endpoint };
        }
        let endpoint =
            std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| LOCALSTACK_ENDPOINT.to_string());
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".to_string());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new(region));
        if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "localstack",
            ));
        }
        Target {
            config: loader.load().await,
            endpoint: Some(endpoint),
        }
    }

    pub fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.config)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(self.endpoint.is_some())
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// The stack's outputs, plus `ApiUrl`/`JobsPageUrl` rewritten to LocalStack's
    /// execute-api path when the target is local (the `*.execute-api.*` host does not resolve).
    pub async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, String>> {
        let described = self
            .cloudformation()
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .with_context(|| format!("stack {stack} not found; run `infra deploy` first"))?;
        let Some(found) = described.stacks().first() else {
            bail!("stack {stack} not found")
        };
        let mut outputs: BTreeMap<String, String> = found
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect();
        if let (Some(endpoint), Some(api), Some(stage)) = (
            &self.endpoint,
            outputs.get("ApiId"),
            outputs.get("StageName"),
        ) {
            let base = format!(
                "{}/_aws/execute-api/{api}/{stage}",
                endpoint.trim_end_matches('/')
            );
            outputs.insert("JobsPageUrl".into(), format!("{base}/"));
            outputs.insert("ApiUrl".into(), base);
        }
        Ok(outputs)
    }
}
