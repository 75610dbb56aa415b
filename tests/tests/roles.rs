//! The role table end to end: every operation of the OpenAPI document × every role × the
//! caller's own tenant and another one, against the deployed stack. A role below an
//! operation's least role gets 403 before anything is read; another tenant's object is 404;
//! naming another tenant is 403; a platform admin reaches every tenant. Refused calls write
//! nothing. An operation added to the document without a case here fails this test.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{Stack, embedding_job, fresh_tenant};
use jobs_api_core::api::http::OPENAPI_JSON;
use jobs_core::domain::auth::{Operation, Role};
use serde_json::{Value, json};

/// The objects a case acts on, in the tenant it targets.
struct Fixtures {
    tenant: String,
    job: String,
    schedule: String,
    /// A live API key's id.
    api_key: String,
    /// A registered sender (an address).
    sender: String,
    /// An item report of `job` (shared fixtures only).
    export: String,
}

/// What a case expects of the caller's call.
#[derive(Debug, PartialEq)]
enum Expect {
    Status(u16),
    /// `200` with the one job of a bulk call reported `not_found`.
    BulkNotFound,
}

/// Whose objects or tenant an operation reaches, which decides the answer to a caller of
/// another tenant.
enum Reach {
    /// An object by id: another tenant's is 404.
    Object,
    /// A tenant named in the query or body: another one is 403.
    NamesTenant,
    /// Jobs by id in a bulk body: another tenant's are reported `not_found`.
    BulkIds,
    /// Nothing of a tenant's (who am I, a preview, the platform-wide views).
    Nothing,
}

fn reach(operation: Operation) -> Reach {
    use Operation::*;
    match operation {
        GetJob | ListJobItems | ExportJobItems | GetJobItemsExport | ListJobEvents | CancelJob
        | HideJob | UnhideJob | RetryJob | GetSchedule | UpdateSchedule | DeleteSchedule
        | RunSchedule | RevokeApiKey | DeleteSender => Reach::Object,
        ListJobs | GetMetrics | ListSchedules | CreateJob | CreateSchedule | ListAuditEvents
        | CreateApiKey | ListApiKeys | CreateSender | ListSenders | GetTenantLimits
        | SetTenantLimits => Reach::NamesTenant,
        BulkJobs => Reach::BulkIds,
        // An upload lands in the caller's own tenant; it names nothing of another's.
        GetMe | PreviewSchedule | GetQueueHealth | CreateUpload => Reach::Nothing,
    }
}

/// The least role of each operation as docs/api.md's Roles table states it, written apart from the
/// server's table (`Operation::required_role`) so that a wrong row there fails here.
fn least_role(operation: Operation) -> Role {
    use Operation::*;
    match operation {
        // viewer: read its tenant's jobs, items (and their reports), events, metrics and
        // schedules
        GetMe | ListJobs | GetJob | ListJobItems | ExportJobItems | GetJobItemsExport
        | ListJobEvents | GetMetrics | ListSchedules | GetSchedule | PreviewSchedule
        | GetTenantLimits => Role::Viewer,
        // operator: + create, cancel, hide/unhide, retry, bulk actions, uploads, schedules
        CreateJob | CancelJob | HideJob | UnhideJob | RetryJob | BulkJobs | CreateUpload
        | CreateSchedule | UpdateSchedule | DeleteSchedule | RunSchedule => Role::Operator,
        // tenant_admin: + its tenant's audit trail, API keys and senders
        ListAuditEvents | CreateApiKey | ListApiKeys | RevokeApiKey | CreateSender
        | ListSenders | DeleteSender => Role::TenantAdmin,
        // platform_admin: queue health, tenant settings (and every tenant)
        GetQueueHealth | SetTenantLimits => Role::PlatformAdmin,
    }
}

/// The status of an allowed call.
fn success(operation: Operation) -> u16 {
    use Operation::*;
    match operation {
        CreateJob | CancelJob | RetryJob | RunSchedule | ExportJobItems => 202,
        CreateSchedule | CreateApiKey | CreateSender | CreateUpload => 201,
        HideJob | DeleteSchedule | RevokeApiKey | DeleteSender => 204,
        _ => 200,
    }
}

fn writes(operation: Operation) -> bool {
    least_role(operation) > Role::Viewer
        && !matches!(
            operation,
            Operation::ListAuditEvents
                | Operation::GetQueueHealth
                | Operation::ListApiKeys
                | Operation::ListSenders
        )
}

/// The request of `operation` on `fixtures`: method, path, body.
fn request(operation: Operation, f: &Fixtures) -> (&'static str, String, Option<Value>) {
    use Operation::*;
    let (job, schedule, tenant) = (&f.job, &f.schedule, &f.tenant);
    match operation {
        GetMe => ("GET", "/me".into(), None),
        ListJobs => ("GET", format!("/jobs?tenant={tenant}"), None),
        GetJob => ("GET", format!("/jobs/{job}"), None),
        ListJobItems => ("GET", format!("/jobs/{job}/items"), None),
        ExportJobItems => ("POST", format!("/jobs/{job}/items/export"), None),
        GetJobItemsExport => (
            "GET",
            format!("/jobs/{job}/items/export/{}", f.export),
            None,
        ),
        ListJobEvents => ("GET", format!("/jobs/{job}/events"), None),
        GetMetrics => ("GET", format!("/metrics?tenant={tenant}"), None),
        ListSchedules => ("GET", format!("/schedules?tenant={tenant}"), None),
        GetSchedule => ("GET", format!("/schedules/{schedule}"), None),
        PreviewSchedule => ("GET", "/schedules/preview?rate=rate(1%20hour)".into(), None),
        CreateJob => {
            let mut body = embedding_job("matrix");
            body["tenant"] = json!(tenant);
            ("POST", "/jobs".into(), Some(body))
        }
        CancelJob => ("POST", format!("/jobs/{job}/cancel"), None),
        HideJob => ("DELETE", format!("/jobs/{job}"), None),
        UnhideJob => ("POST", format!("/jobs/{job}/unhide"), None),
        RetryJob => ("POST", format!("/jobs/{job}/retry"), None),
        BulkJobs => (
            "POST",
            "/jobs/bulk".into(),
            Some(json!({"action": "hide", "ids": [job]})),
        ),
        CreateSchedule => ("POST", "/schedules".into(), Some(schedule_body(tenant))),
        UpdateSchedule => (
            "PATCH",
            format!("/schedules/{schedule}"),
            Some(json!({"name": "renamed"})),
        ),
        DeleteSchedule => ("DELETE", format!("/schedules/{schedule}"), None),
        RunSchedule => ("POST", format!("/schedules/{schedule}/run"), None),
        ListAuditEvents => ("GET", format!("/audit?tenant={tenant}"), None),
        GetQueueHealth => ("GET", "/queues".into(), None),
        CreateApiKey => (
            "POST",
            "/api-keys".into(),
            Some(json!({"name": "matrix", "role": "viewer", "tenant": tenant})),
        ),
        ListApiKeys => ("GET", format!("/api-keys?tenant={tenant}"), None),
        RevokeApiKey => ("DELETE", format!("/api-keys/{}", f.api_key), None),
        CreateSender => (
            "POST",
            "/senders".into(),
            Some(json!({"address": fresh_address(), "tenant": tenant})),
        ),
        ListSenders => ("GET", format!("/senders?tenant={tenant}"), None),
        DeleteSender => ("DELETE", format!("/senders/{}", f.sender), None),
        GetTenantLimits => ("GET", format!("/tenants/{tenant}/limits"), None),
        CreateUpload => (
            "POST",
            "/uploads".into(),
            Some(json!({"content_type": "text/csv"})),
        ),
        SetTenantLimits => (
            "PUT",
            format!("/tenants/{tenant}/limits"),
            Some(json!({"creates_per_minute": 1000})),
        ),
    }
}

/// An address no tenant holds yet, at the domain SES verifies.
fn fresh_address() -> String {
    format!(
        "roles-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

fn schedule_body(tenant: &str) -> Value {
    json!({"name": "matrix", "type": "session_termination", "tenant": tenant, "params": {"idle_for_seconds": 1800}, "rate": "rate(1 day)", "enabled": false})
}

/// What `role` (of `own`) gets calling `operation` on objects of `target`.
fn expected(operation: Operation, role: Role, own: bool) -> Expect {
    if role < least_role(operation) {
        return Expect::Status(403);
    }
    if own || role == Role::PlatformAdmin {
        return Expect::Status(success(operation));
    }
    match reach(operation) {
        Reach::Object => Expect::Status(404),
        Reach::NamesTenant => Expect::Status(403),
        Reach::BulkIds => Expect::BulkNotFound,
        Reach::Nothing => Expect::Status(success(operation)),
    }
}

/// Objects for one allowed write in `tenant`, in the state the operation needs.
async fn fresh_fixtures(stack: &Stack, tenant: &str, operation: Operation) -> Fixtures {
    let operator = stack.token_as(tenant, "setup", Role::Operator);
    let job = stack.create(&operator, &embedding_job("fixture")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let prepare = |method: &'static str, path: String| {
        let operator = operator.clone();
        async move {
            let reply = stack.send(method, &path, Some(&operator), None).await;
            assert!(reply.status < 300, "{method} {path}: {}", reply.body);
        }
    };
    match operation {
        Operation::UnhideJob => prepare("DELETE", format!("/jobs/{job}")).await,
        // Cancelled right after its create, before its plan: every item cancelled, so a
        // retry has items to retry.
        Operation::RetryJob => prepare("POST", format!("/jobs/{job}/cancel")).await,
        _ => {}
    }
    let schedule = stack
        .send(
            "POST",
            "/schedules",
            Some(&operator),
            Some(&schedule_body(tenant)),
        )
        .await;
    assert_eq!(schedule.status, 201, "{}", schedule.body);
    // A key and a sender for the calls that remove one, and for the shared fixtures
    // (`GetJob`) that every refused call is tried on.
    let shared = operation == Operation::GetJob;
    let mut api_key = String::new();
    if shared || operation == Operation::RevokeApiKey {
        let tenant_admin = stack.token_as(tenant, "setup", Role::TenantAdmin);
        let key = stack
            .send(
                "POST",
                "/api-keys",
                Some(&tenant_admin),
                Some(&json!({"name": "fixture", "role": "viewer"})),
            )
            .await;
        assert_eq!(key.status, 201, "{}", key.body);
        api_key = key.body["id"].as_str().unwrap().to_string();
    }
    let mut sender = String::new();
    if shared || operation == Operation::DeleteSender {
        sender = fresh_address();
        stack.register_sender(tenant, &sender).await;
    }
    let mut export = String::new();
    if shared {
        let asked = stack
            .send(
                "POST",
                &format!("/jobs/{job}/items/export"),
                Some(&operator),
                None,
            )
            .await;
        assert_eq!(asked.status, 202, "{}", asked.body);
        export = asked.body["export_id"].as_str().unwrap().to_string();
    }
    Fixtures {
        tenant: tenant.into(),
        job,
        schedule: schedule.body["id"].as_str().unwrap().to_string(),
        api_key,
        sender,
        export,
    }
}

/// Both tenants' jobs and schedules as a platform admin sees them.
async fn snapshot(stack: &Stack, admin: &str, fixtures: &[&Fixtures]) -> BTreeMap<String, Value> {
    let mut seen = BTreeMap::new();
    for f in fixtures {
        for path in [
            format!("/jobs/{}", f.job),
            format!("/schedules/{}", f.schedule),
            format!("/jobs?tenant={}&limit=100", f.tenant),
            format!("/jobs?tenant={}&hidden=true&limit=100", f.tenant),
            format!("/schedules?tenant={}", f.tenant),
            format!("/api-keys?tenant={}", f.tenant),
            format!("/senders?tenant={}", f.tenant),
        ] {
            let reply = stack.send("GET", &path, Some(admin), None).await;
            seen.insert(path, json!([reply.status, reply.body]));
        }
    }
    seen
}

#[tokio::test]
async fn every_operation_answers_every_role_in_its_own_and_another_tenant_as_the_table_says() {
    let stack = Stack::load().await;
    let (own, other) = (fresh_tenant("roles-own"), fresh_tenant("roles-other"));
    let admin = stack.token_as(&own, "pat", Role::PlatformAdmin);

    let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    let mut operations = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            match operation["operationId"].as_str() {
                None | Some("openApi") => {}
                Some(id) => operations.push(
                    Operation::from_operation_id(id)
                        .unwrap_or_else(|| panic!("{id} has no row in the role table")),
                ),
            }
        }
    }
    assert_eq!(operations.len(), Operation::ALL.len());

    // Shared objects for reads and refused calls; completed, so that nothing but a call
    // that should have been refused changes them.
    let shared_own = fresh_fixtures(&stack, &own, Operation::GetJob).await;
    let shared_other = fresh_fixtures(&stack, &other, Operation::GetJob).await;
    for f in [&shared_own, &shared_other] {
        stack
            .wait_until_done(&admin, &f.job, Duration::from_secs(120))
            .await;
    }
    let before = snapshot(&stack, &admin, &[&shared_own, &shared_other]).await;

    // Two passes: every call that must change nothing (refusals and reads) on the shared
    // objects, with both tenants compared before and after; then each allowed write on
    // objects of its own.
    let mut failures = Vec::new();
    let mut calls = 0;
    for writes_pass in [false, true] {
        for &operation in &operations {
            for role in Role::ALL {
                let token = stack.token_as(&own, "caller", role);
                for is_own in [true, false] {
                    let expect = expected(operation, role, is_own);
                    let allowed_write =
                        writes(operation) && expect == Expect::Status(success(operation));
                    if allowed_write != writes_pass {
                        continue;
                    }
                    let target = if is_own { &own } else { &other };
                    let fresh;
                    let fixtures = if allowed_write {
                        fresh = fresh_fixtures(&stack, target, operation).await;
                        &fresh
                    } else if is_own {
                        &shared_own
                    } else {
                        &shared_other
                    };
                    let (method, path, body) = request(operation, fixtures);
                    let reply = stack.send(method, &path, Some(&token), body.as_ref()).await;
                    calls += 1;
                    let got = match reply.body["results"][0]["outcome"].as_str() {
                        Some("not_found") if reply.status == 200 => Expect::BulkNotFound,
                        _ => Expect::Status(reply.status),
                    };
                    if got != expect {
                        failures.push(format!(
                            "{} as {} ({} tenant): {method} {path}: expected {expect:?}, got {got:?} {}",
                            operation.operation_id(),
                            role.key(),
                            if is_own { "own" } else { "other" },
                            reply.body
                        ));
                    }
                }
            }
        }
        if !writes_pass {
            let after = snapshot(&stack, &admin, &[&shared_own, &shared_other]).await;
            assert_eq!(before, after, "a refused call or a read changed something");
        }
    }
    assert_eq!(calls, Operation::ALL.len() * Role::ALL.len() * 2);
    assert!(
        failures.is_empty(),
        "{} of {calls} calls:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
