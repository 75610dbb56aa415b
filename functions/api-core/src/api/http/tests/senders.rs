//! Senders through the HTTP API: each address or domain belongs to one tenant, a bulk
//! job's `from` must be its tenant's (for jobs and schedules alike), domains are a
//! platform admin's to assign, and a domain does not cover its subdomains.

use super::*;
use jobs_core::domain::audit::EventKind;

async fn add(api: &Api, auth: &str, body: Value) -> (u16, Value) {
    let mut req = request("POST", "/senders", Some(auth));
    req.body = serde_json::to_vec(&body).unwrap();
    call(api, req).await
}

fn bulk_from(from: &str) -> Value {
    json!({"type": "bulk_message_sending", "params": {"channel": "email", "from": from, "subject": "Your invoice", "body": "b", "recipients": ["a@example.org"]}})
}

/// An API whose SES verified `example.com` and no tenant owns any sender yet.
fn bare_api() -> Api {
    Api::new(
        MemoryStore::default(),
        MemoryInputs::default(),
        MemoryQueue::default(),
        MemorySenders::default(),
        jobs_core::memory::observers(),
        Settings::dev_tokens(SECRET, 90),
    )
}

#[tokio::test]
async fn a_tenant_sends_only_from_its_own_senders() {
    let api = bare_api();
    let acme_admin = token("acme", "tara", Role::TenantAdmin);
    let platform = token("ops", "pat", Role::PlatformAdmin);
    let (status, domain) = add(
        &api,
        &platform,
        json!({"domain": "ACME.example.com", "tenant": "acme"}),
    )
    .await;
    assert_eq!(status, 201, "{domain}");
    assert_eq!(
        (domain["sender"].as_str(), domain["kind"].as_str()),
        (Some("acme.example.com"), Some("domain"))
    );

    // The case: globex sends as acme's sender.
    let globex = token("globex", "gwen", Role::Operator);
    let (status, err) = post(&api, &globex, bulk_from("news@acme.example.com")).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("params.from")),
        "{err}"
    );
    let mut schedule = request("POST", "/schedules", Some(&globex));
    schedule.body = serde_json::to_vec(&json!({"name": "n", "type": "bulk_message_sending", "params": bulk_from("news@acme.example.com")["params"], "rate": "rate(1 day)"})).unwrap();
    let (status, err) = call(&api, schedule).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("params.from")),
        "a schedule too: {err}"
    );
    // Globex's admin may not claim an address at acme's domain, nor the domain.
    let globex_admin = token("globex", "tom", Role::TenantAdmin);
    let (status, _) = add(
        &api,
        &globex_admin,
        json!({"address": "news@acme.example.com"}),
    )
    .await;
    assert_eq!(status, 409);
    let (status, err) = add(&api, &globex_admin, json!({"domain": "globex.example.com"})).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (403, Some("domain"))
    );

    // Acme sends from its domain, not from a subdomain of it.
    let acme = token("acme", "oscar", Role::Operator);
    assert_eq!(
        post(&api, &acme, bulk_from("news@acme.example.com"))
            .await
            .0,
        202
    );
    let (status, _) = post(&api, &acme, bulk_from("news@eu.acme.example.com")).await;
    assert_eq!(status, 422, "a domain does not cover its subdomains");
    // An address of its own at a domain no tenant holds.
    let (status, added) = add(&api, &acme_admin, json!({"address": "Billing@example.com"})).await;
    assert_eq!(
        (status, added["sender"].as_str()),
        (201, Some("billing@example.com"))
    );
    assert_eq!(
        post(&api, &acme, bulk_from("billing@example.com")).await.0,
        202
    );
    let (status, _) = add(
        &api,
        &globex_admin,
        json!({"address": "billing@example.com"}),
    )
    .await;
    assert_eq!(status, 409, "one tenant at a time");

    let (_, listed) = call(&api, request("GET", "/senders", Some(&acme_admin))).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["sender"].as_str())
        .collect();
    assert_eq!(names, ["acme.example.com", "billing@example.com"]);

    // Removing: the domain is the platform admin's; the address the tenant admin's.
    let path = "/senders/acme.example.com";
    assert_eq!(
        call(&api, request("DELETE", path, Some(&acme_admin)))
            .await
            .0,
        403
    );
    assert_eq!(
        call(&api, request("DELETE", path, Some(&globex_admin)))
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            &api,
            request(
                "DELETE",
                "/senders/billing%40example.com",
                Some(&acme_admin)
            )
        )
        .await
        .0,
        204
    );
    assert_eq!(
        post(&api, &acme, bulk_from("billing@example.com")).await.0,
        422
    );
    let (status, _) = add(
        &api,
        &globex_admin,
        json!({"address": "billing@example.com"}),
    )
    .await;
    assert_eq!(status, 201, "free again once removed");

    let kinds: Vec<EventKind> = api
        .observers
        .audit()
        .log()
        .entries()
        .into_iter()
        .filter(|r| r.event.sender.is_some() && r.event.tenant == "acme")
        .map(|r| r.event.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::SenderAdded)
            .count(),
        2
    );
    assert!(kinds.contains(&EventKind::SenderRemoved));
}

#[tokio::test]
async fn bad_senders_name_the_field() {
    let api = bare_api();
    let admin = token("acme", "tara", Role::TenantAdmin);
    for (body, status, field) in [
        (json!({"address": "not an address"}), 422, "address"),
        (
            json!({"address": "ops@unverified.example.net"}),
            422,
            "address",
        ),
        (json!({}), 422, "body"),
        (
            json!({"address": "a@example.com", "domain": "example.com"}),
            422,
            "body",
        ),
        (
            json!({"address": "a@example.com", "tenant": "globex"}),
            403,
            "tenant",
        ),
        (
            json!({"address": "a@example.com", "tenant": "Not A Tenant"}),
            422,
            "tenant",
        ),
    ] {
        let (got, err) = add(&api, &admin, body.clone()).await;
        assert_eq!(
            (got, err["error"]["field"].as_str()),
            (status, Some(field)),
            "{body}: {err}"
        );
    }
    let platform = token("ops", "pat", Role::PlatformAdmin);
    let (status, err) = add(
        &api,
        &platform,
        json!({"domain": "-bad-.com", "tenant": "acme"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("domain"))
    );
    let (status, err) = add(
        &api,
        &platform,
        json!({"domain": "example.net", "tenant": "acme"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("domain")),
        "not verified"
    );
    for role in [Role::Viewer, Role::Operator] {
        let (status, _) = add(
            &api,
            &token("acme", "o", role),
            json!({"address": "a@example.com"}),
        )
        .await;
        assert_eq!(status, 403, "{role:?}");
    }
    assert_eq!(
        call(&api, request("DELETE", "/senders/%zz", Some(&admin)))
            .await
            .0,
        404
    );
}
