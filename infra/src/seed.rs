//! `infra seed`: a few demo jobs of every type across tenants, created through the API.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

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

pub async fn seed(api_url: &str, admin_token: &str) -> Result<Vec<String>> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for (tenant, _user, mut body) in demo_jobs() {
        body["tenant"] = json!(tenant);
        let response = client
            .post(format!("{api_url}/jobs"))
            .bearer_auth(admin_token)
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
