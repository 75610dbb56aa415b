//! `infra seed`: demo data for every job type (a verified sender, sessions, profiles), the
//! demo tenants' senders and a few demo jobs across tenants, created through the API. The helpers are shared with
//! the end-to-end tests.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

/// SES (like LocalStack's) rejects mail from unverified senders.
pub async fn verify_sender(ses: &aws_sdk_ses::Client, address: &str) -> Result<()> {
    ses.verify_email_identity()
        .email_address(address)
        .send()
        .await
        .with_context(|| format!("verifying {address}"))?;
    Ok(())
}

/// Writes items in batches of 25, retrying what DynamoDB leaves unprocessed.
pub async fn put_items(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<()> {
    let requests = items.into_iter().filter_map(jobs_core::aws::put).collect();
    jobs_core::aws::batch_write(dynamo, table, requests)
        .await
        .map_err(|failure| anyhow::anyhow!("writing to {table}: {failure:?}"))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

/// A session row of the Sessions table.
pub fn session(
    tenant: &str,
    session_id: &str,
    user: &str,
    last_seen: i64,
) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("tenant".to_string(), s(tenant)),
        ("session_id".to_string(), s(session_id)),
        ("user_id".to_string(), s(user)),
        ("tenant_user".to_string(), s(&format!("{tenant}#{user}"))),
        (
            "last_seen".to_string(),
            AttributeValue::N(last_seen.to_string()),
        ),
    ])
}

/// A profile row of the Profiles table.
pub fn profile(tenant: &str, user: &str, name: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("tenant".to_string(), s(tenant)),
        ("user_id".to_string(), s(user)),
        ("name".to_string(), s(name)),
    ])
}

/// Senders, sessions and profiles for the demo jobs.
/// The demo's sender domain: after `make up`, any address at it may send (SES, LocalStack).
pub const DEMO_SENDER_DOMAIN: &str = "example.com";

pub async fn seed_data(
    config: &aws_config::SdkConfig,
    outputs: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let ses = aws_sdk_ses::Client::new(config);
    ses.verify_domain_identity()
        .domain(DEMO_SENDER_DOMAIN)
        .send()
        .await
        .with_context(|| format!("verifying {DEMO_SENDER_DOMAIN}"))?;
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
                sessions.push(session(
                    tenant,
                    &format!("{tenant}-s-{user}-{n}"),
                    &format!("u-{user}"),
                    last_seen,
                ));
            }
        }
    }
    put_items(
        &dynamo,
        outputs
            .get("SessionsTableName")
            .context("no SessionsTableName output")?,
        sessions,
    )
    .await?;
    let profiles = ["acme", "globex"]
        .iter()
        .flat_map(|tenant| {
            (1..=10).map(move |user| profile(tenant, &format!("u-{user}"), &format!("User {user}")))
        })
        .collect();
    put_items(
        &dynamo,
        outputs
            .get("ProfilesTableName")
            .context("no ProfilesTableName output")?,
        profiles,
    )
    .await?;
    println!("seeded: verified senders, 60 sessions, 20 profiles");
    Ok(())
}

/// Each demo tenant's sender domain (a subdomain of [`DEMO_SENDER_DOMAIN`], which SES
/// verifies): its bulk jobs send from addresses there.
pub const DEMO_SENDERS: [(&str, &str); 2] = [
    ("acme", "acme.example.com"),
    ("globex", "globex.example.com"),
];

/// The demo jobs: (tenant, user, body).
pub fn demo_jobs() -> Vec<(&'static str, &'static str, Value)> {
    let emails: Vec<String> = (1..=25)
        .map(|i| format!("customer{i}@example.com"))
        .collect();
    vec![
        (
            "acme",
            "alice",
            json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": "news@acme.example.com", "subject": "November newsletter", "body": "Hello from Acme!", "recipients": emails}}),
        ),
        (
            "acme",
            "alice",
            json!({"type": "session_termination", "params": {"idle_for_seconds": 3600}}),
        ),
        (
            "acme",
            "bob",
            json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "faq-1", "text": "How do I reset my password?"}, {"id": "faq-2", "text": "Where is my invoice?"}]}}),
        ),
        (
            "globex",
            "carol",
            json!({"type": "profile_field_update", "params": {"field": "locale", "value": "de-DE", "user_ids": ["u-1", "u-2", "u-3"]}}),
        ),
        (
            "globex",
            "carol",
            json!({"type": "session_termination", "params": {"user_ids": ["u-1", "u-2"]}}),
        ),
        (
            "initech",
            "dave",
            json!({"type": "ai_text_embedding", "params": {"documents": [{"id": "memo", "text": "TPS reports are due on Friday."}]}}),
        ),
    ]
}

/// The `Idempotency-Key` of a demo job: derived from the demo job itself (tenant, user and
/// body), so every `infra seed` sends the same key for it and no two demo jobs share one.
/// The hash, rather than a counter, makes an edited demo job a new key (the old key with a
/// new body would be refused with a 409 for 24 hours).
pub fn seed_key(tenant: &str, user: &str, body: &Value) -> String {
    let job_type = body["type"].as_str().unwrap_or("job");
    let digest = jobs_core::domain::record::sha256_hex(&[
        tenant.as_bytes(),
        user.as_bytes(),
        body.to_string().as_bytes(),
    ]);
    format!("demo-seed-{job_type}-{}", &digest[..16])
}

/// What one page of `GET /jobs?user=U&type=T` says about a demo job.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// A job of that user and type (the listing's item).
    Found(Value),
    /// Not on this page; the type is a filter, so a page can be empty with more to come.
    NextPage(String),
    NotThere,
}

pub fn lookup(page: &Value, user: &str, job_type: &str) -> Lookup {
    let items = page["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some(job) = items
        .iter()
        .find(|j| j["user"] == user && j["type"] == job_type)
    {
        return Lookup::Found(job.clone());
    }
    match page["next_cursor"].as_str() {
        Some(cursor) => Lookup::NextPage(cursor.to_string()),
        None => Lookup::NotThere,
    }
}

/// A listing with a filter reads at most a few hundred index entries per page.
const MAX_LOOKUP_PAGES: usize = 50;

/// The newest job of `job_type` that `user` (the holder of `token`) has in their tenant.
async fn existing_job(
    client: &reqwest::Client,
    api_url: &str,
    token: &str,
    user: &str,
    job_type: &str,
) -> Result<Option<Value>> {
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_LOOKUP_PAGES {
        let mut query = vec![("user", user), ("type", job_type), ("limit", "1")];
        if let Some(c) = cursor.as_deref() {
            query.push(("cursor", c));
        }
        let response = client
            .get(format!("{api_url}/jobs"))
            .bearer_auth(token)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("GET {api_url}/jobs"))?;
        let status = response.status();
        let page: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("listing {user}'s {job_type} jobs failed with {status}: {page}");
        }
        match lookup(&page, user, job_type) {
            Lookup::Found(job) => return Ok(Some(job)),
            Lookup::NextPage(next) => cursor = Some(next),
            Lookup::NotThere => return Ok(None),
        }
    }
    bail!("listing {user}'s {job_type} jobs: no answer after {MAX_LOOKUP_PAGES} pages")
}

/// Creates the demo jobs, each as its own user (a member token of its tenant), once: running
/// it again (a second `make up`) adds nothing. Two guards:
/// - a demo job is skipped when its user already has a job of its type in its tenant
///   (GET /jobs?user=&type=, within the retention period; no two demo jobs share a tenant,
///   user and type). This holds for as long as the jobs are kept;
/// - each POST carries the demo job's own `Idempotency-Key` (seed_key), so a seed that the
///   listing cannot yet see (the list indexes are eventually consistent on AWS), or a retried
///   or concurrent one, gets the same job back for 24 hours instead of a second one.
///
/// Returns the ids of the demo jobs, created or found.
pub async fn seed(api_url: &str, secret: &str) -> Result<Vec<String>> {
    let client = crate::http_client().build()?;
    let platform_admin = crate::token::dev_token(
        secret,
        "acme",
        "seed",
        jobs_core::domain::auth::Role::PlatformAdmin,
        std::time::Duration::from_secs(600),
    )?;
    for (tenant, domain) in DEMO_SENDERS {
        let body = json!({"domain": domain, "tenant": tenant});
        let response = client
            .post(format!("{api_url}/senders"))
            .bearer_auth(&platform_admin)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {api_url}/senders"))?;
        match response.status().as_u16() {
            201 => println!("sender {domain}  {tenant}"),
            // Registered by an earlier seed.
            409 => println!("sender {domain}  {tenant}  (already there)"),
            status => bail!(
                "registering {domain} for {tenant} failed with {status}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    let mut ids = Vec::new();
    let (mut created, mut present) = (0, 0);
    for (tenant, user, body) in demo_jobs() {
        let token = crate::token::dev_token(
            secret,
            tenant,
            user,
            jobs_core::domain::auth::Role::Operator,
            std::time::Duration::from_secs(600),
        )?;
        let job_type = body["type"].as_str().unwrap_or_default();
        if let Some(job) = existing_job(&client, api_url, &token, user, job_type).await? {
            let id = job["id"].as_str().unwrap_or_default().to_string();
            println!(
                "{id}  {tenant:<8} {}  (already there: {user} has one; skipped)",
                job["type_label"].as_str().unwrap_or(job_type)
            );
            ids.push(id);
            present += 1;
            continue;
        }
        let response = client
            .post(format!("{api_url}/jobs"))
            .bearer_auth(&token)
            .header("Idempotency-Key", seed_key(tenant, user, &body))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {api_url}/jobs"))?;
        let status = response.status();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let job: Value = response.json().await.unwrap_or(Value::Null);
        if status.as_u16() != 202 {
            bail!("creating a demo job failed with {status}: {job}");
        }
        let id = job["id"].as_str().unwrap_or_default().to_string();
        let label = job["type_label"].as_str().unwrap_or(job_type);
        if replayed {
            println!("{id}  {tenant:<8} {label}  (already there: same Idempotency-Key; skipped)");
            present += 1;
        } else {
            println!("{id}  {tenant:<8} {label}");
            created += 1;
        }
        ids.push(id);
    }
    println!("demo jobs: {created} created, {present} already there");
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_keys_are_stable_distinct_and_valid_header_values() {
        let keys: Vec<String> = demo_jobs()
            .iter()
            .map(|(t, u, b)| seed_key(t, u, b))
            .collect();
        let again: Vec<String> = demo_jobs()
            .iter()
            .map(|(t, u, b)| seed_key(t, u, b))
            .collect();
        assert_eq!(
            keys, again,
            "the same demo job gets the same key on every run"
        );
        let distinct: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        for key in &keys {
            // What the API accepts: 1 to 255 visible ASCII characters.
            assert!(!key.is_empty() && key.len() <= 255, "{key}");
            assert!(key.bytes().all(|b| b.is_ascii_graphic()), "{key}");
        }
        assert!(
            keys[0].starts_with("demo-seed-bulk_message_sending-"),
            "{}",
            keys[0]
        );
        // An edited demo job is a new key (the old key with another body would be a 409).
        let (tenant, user, mut body) = demo_jobs().remove(1);
        let before = seed_key(tenant, user, &body);
        body["params"]["idle_for_seconds"] = json!(7200);
        assert_ne!(seed_key(tenant, user, &body), before);
    }

    #[test]
    fn no_two_demo_jobs_share_tenant_user_and_type() {
        // The skip rule looks a demo job up by its user and type.
        let mut seen = std::collections::HashSet::new();
        for (tenant, user, body) in demo_jobs() {
            let job_type = body["type"].as_str().unwrap_or_default().to_string();
            assert!(
                seen.insert((tenant, user, job_type.clone())),
                "{tenant} {user} {job_type}"
            );
        }
    }

    #[test]
    fn the_demo_covers_every_registered_type() {
        for spec in &jobs_core::domain::registry::REGISTRY {
            assert!(
                demo_jobs()
                    .iter()
                    .any(|(_, _, body)| body["type"] == spec.key),
                "no demo job of type {}",
                spec.key
            );
        }
    }

    #[test]
    fn demo_jobs_are_valid_requests() {
        for (_, _, body) in demo_jobs() {
            let job_type = body["type"]
                .as_str()
                .and_then(jobs_core::JobType::parse)
                .unwrap();
            assert!(
                jobs_core::domain::params::validate(job_type, body["params"].clone()).is_ok(),
                "{body}"
            );
        }
    }

    #[test]
    fn lookup_finds_the_users_job_or_follows_the_cursor() {
        let job = json!({"id": "01J", "type": "session_termination", "user": "alice", "type_label": "Session Termination"});
        let page = json!({"items": [job], "next_cursor": "c2"});
        assert_eq!(
            lookup(&page, "alice", "session_termination"),
            Lookup::Found(job)
        );
        // Only a job of that user and type counts, whatever the API returned.
        assert_eq!(
            lookup(&page, "bob", "session_termination"),
            Lookup::NextPage("c2".into())
        );
        assert_eq!(
            lookup(&page, "alice", "ai_text_embedding"),
            Lookup::NextPage("c2".into())
        );
        assert_eq!(
            lookup(
                &json!({"items": [], "next_cursor": null}),
                "alice",
                "session_termination"
            ),
            Lookup::NotThere
        );
        assert_eq!(
            lookup(&Value::Null, "alice", "session_termination"),
            Lookup::NotThere
        );
    }
}
