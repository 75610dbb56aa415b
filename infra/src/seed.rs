//! `infra seed`: demo data for every job type (a verified sender, sessions, profiles) and
//! a few demo jobs across tenants, created through the API. The helpers are shared with
//! the end-to-end tests.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

/// SES (like LocalStack's) rejects mail from unverified senders.
pub async fn verify_sender(ses: &aws_sdk_ses::Client, address: &str) -> Result<()> {
    ses.verify_email_identity().email_address(address).send().await.with_context(|| format!("verifying {address}"))?;
    Ok(())
}

/// Writes items in batches of 25, retrying what DynamoDB leaves unprocessed.
pub async fn put_items(dynamo: &aws_sdk_dynamodb::Client, table: &str, items: Vec<HashMap<String, AttributeValue>>) -> Result<()> {
    let requests = items.into_iter().filter_map(jobs_core::aws::put).collect();
    jobs_core::aws::batch_write(dynamo, table, requests).await.map_err(|failure| anyhow::anyhow!("writing to {table}: {failure:?}"))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

/// A session row of the Sessions table.
pub fn session(tenant: &str, session_id: &str, user: &str, last_seen: i64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("tenant".to_string(), s(tenant)),
        ("session_id".to_string(), s(session_id)),
        ("user_id".to_string(), s(user)),
        ("tenant_user".to_string(), s(&format!("{tenant}#{user}"))),
        ("last_seen".to_string(), AttributeValue::N(last_seen.to_string())),
    ])
}

/// A profile row of the Profiles table.
pub fn profile(tenant: &str, user: &str, name: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("tenant".to_string(), s(tenant)), ("user_id".to_string(), s(user)), ("name".to_string(), s(name))])
}

/// Senders, sessions and profiles for the demo jobs.
pub async fn seed_data(config: &aws_config::SdkConfig, outputs: &std::collections::BTreeMap<String, String>) -> Result<()> {
    let ses = aws_sdk_ses::Client::new(config);
    for (_, _, job) in demo_jobs() {
        if let Some(from) = job["params"]["from"].as_str() {
            verify_sender(&ses, from).await?;
        }
    }
    let dynamo = aws_sdk_dynamodb::Client::new(config);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut sessions = Vec::new();
    for tenant in ["acme", "globex"] {
        for user in 1..=10 {
            for n in 0..3 {
                // Every third session has been idle for two hours.
                let last_seen = if n == 2 { now - 7200 } else { now - 60 };
                sessions.push(session(tenant, &format!("{tenant}-s-{user}-{n}"), &format!("u-{user}"), last_seen));
            }
        }
    }
    put_items(&dynamo, outputs.get("SessionsTableName").context("no SessionsTableName output")?, sessions).await?;
    let profiles = ["acme", "globex"]
        .iter()
        .flat_map(|tenant| (1..=10).map(move |user| profile(tenant, &format!("u-{user}"), &format!("User {user}"))))
        .collect();
    put_items(&dynamo, outputs.get("ProfilesTableName").context("no ProfilesTableName output")?, profiles).await?;
    println!("seeded: verified senders, 60 sessions, 20 profiles");
    Ok(())
}

/// The demo jobs: (tenant, user, body).
pub fn demo_jobs() -> Vec<(&'static str, &'static str, Value)> {
    let emails: Vec<String> = (1..=25).map(|i| format!("customer{i}@example.com")).collect();
    vec![
        ("acme", "alice", json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": "news@acme.example.com", "subject": "November newsletter", "body": "Hello from Acme!", "recipients": emails}})),
        ("acme", "alice", json!({"type": "session_termination", "params": {"idle_for_seconds": 3600}})),
        ("acme", "bob", json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "faq-1", "text": "How do I reset my password?"}, {"id": "faq-2", "text": "Where is my invoice?"}]}})),
        ("globex", "carol", json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de-DE", "user_ids": ["u-1", "u-2", "u-3"]}})),
        ("globex", "carol", json!({"type": "session_termination", "params": {"user_ids": ["u-1", "u-2"]}})),
        ("initech", "dave", json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "memo", "text": "TPS reports are due on Friday."}]}})),
    ]
}

/// Creates the demo jobs, each as its own user (a member token of its tenant).
pub async fn seed(api_url: &str, secret: &str) -> Result<Vec<String>> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for (tenant, user, body) in demo_jobs() {
        let token = crate::token::dev_token(secret, tenant, user, false, std::time::Duration::from_secs(600))?;
        let response = client
            .post(format!("{api_url}/jobs"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {api_url}/jobs"))?;
        let status = response.status();
        let created: Value = response.json().await.unwrap_or(Value::Null);
        if status.as_u16() != 202 {
            bail!("creating a demo job failed with {status}: {created}");
        }
        let id = created["id"].as_str().unwrap_or_default().to_string();
        println!("{id}  {tenant:<8} {}", created["type_label"].as_str().unwrap_or(""));
        ids.push(id);
    }
    Ok(ids)
}
