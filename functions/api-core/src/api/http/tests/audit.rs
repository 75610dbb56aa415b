//! The audit trail through the HTTP API: every operator action is recorded with who, from
//! where and its outcome; every way a job ends writes one `ended` entry; the timeline and
//! the admins' listing read them back.

use super::*;
use jobs_core::domain::audit::{AuditRecord, EventKind};
use jobs_core::ports::ProgressStore;

fn from(mut req: HttpRequest, request_id: &str) -> HttpRequest {
    req.request_id = Some(request_id.into());
    req.source_ip = Some("203.0.113.9".into());
    req.headers
        .push(("user-agent".into(), "ops-console/2.1".into()));
    req
}

fn entries_of(api: &Api, id: &str) -> Vec<AuditRecord> {
    api.observers
        .audit()
        .log()
        .entries()
        .into_iter()
        .filter(|r| r.event.job_id.as_deref() == Some(id))
        .collect()
}

fn kinds(entries: &[AuditRecord]) -> Vec<(EventKind, String)> {
    entries
        .iter()
        .map(|r| (r.event.kind, r.event.outcome.clone()))
        .collect()
}

async fn events(api: &Api, auth: &str, id: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = get_with(api, auth, &format!("/jobs/{id}/events"), query).await;
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn each_action_is_recorded_with_who_where_and_outcome() {
    let api = api();
    let mut create = request("POST", "/jobs", Some(&member()));
    create.body = serde_json::to_vec(&embedding_job()).unwrap();
    let (_, job) = call(&api, from(create, "req-create")).await;
    let id = job["id"].as_str().unwrap().to_string();
    // Planned: running, so cancel only asks.
    api.store
        .begin(&id, 1, 1, &clock::format(clock::now()))
        .await
        .unwrap();
    for (method, path, request_id) in [
        ("POST", format!("/jobs/{id}/cancel"), "req-cancel"),
        ("DELETE", format!("/jobs/{id}"), "req-hide"),
        ("POST", format!("/jobs/{id}/unhide"), "req-unhide"),
    ] {
        let (status, body) = call(
            &api,
            from(request(method, &path, Some(&member())), request_id),
        )
        .await;
        assert!(status < 300, "{path}: {status} {body}");
    }
    let entries = entries_of(&api, &id);
    assert_eq!(
        kinds(&entries),
        [
            (EventKind::Created, "ok".into()),
            (EventKind::CancelRequested, "ok".into()),
            (EventKind::Hidden, "ok".into()),
            (EventKind::Unhidden, "ok".into())
        ]
    );
    for (entry, request_id) in
        entries
            .iter()
            .zip(["req-create", "req-cancel", "req-hide", "req-unhide"])
    {
        let actor = entry.event.actor.as_ref().unwrap();
        assert_eq!(
            (actor.sub.as_str(), actor.role, actor.tenant.as_str()),
            ("alice", Role::Operator, "acme")
        );
        assert_eq!(entry.event.origin.request_id.as_deref(), Some(request_id));
        assert_eq!(entry.event.origin.source_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(
            entry.event.origin.user_agent.as_deref(),
            Some("ops-console/2.1")
        );
        assert_eq!(entry.event.tenant, "acme");
    }

    // Refusals are recorded with their code; another tenant's attempt is a 404 and leaves
    // nothing on this job.
    let ended = settled_profile_job(&api, &["u0"], &[], jobs_core::JobStatus::Completed).await;
    assert_eq!(
        call(
            &api,
            request("POST", &format!("/jobs/{ended}/cancel"), Some(&member()))
        )
        .await
        .0,
        409
    );
    assert_eq!(
        call(
            &api,
            request("POST", &format!("/jobs/{ended}/retry"), Some(&member()))
        )
        .await
        .0,
        409
    );
    let before = entries_of(&api, &ended).len();
    assert_eq!(
        call(
            &api,
            request(
                "DELETE",
                &format!("/jobs/{ended}"),
                Some(&token("globex", "mallory", Role::Operator))
            )
        )
        .await
        .0,
        404
    );
    let entries = entries_of(&api, &ended);
    assert_eq!(entries.len(), before);
    assert!(
        kinds(&entries).contains(&(EventKind::CancelRequested, "conflict".into())),
        "{:?}",
        kinds(&entries)
    );
    assert!(kinds(&entries).contains(&(EventKind::Retried, "conflict".into())));
}

#[tokio::test]
async fn a_retry_is_recorded_on_both_jobs_and_a_bulk_action_on_each_job() {
    let api = api();
    let id = settled_profile_job(
        &api,
        &["u0", "u1"],
        &[1],
        jobs_core::JobStatus::CompletedWithErrors,
    )
    .await;
    let (status, retry) = call(
        &api,
        request("POST", &format!("/jobs/{id}/retry"), Some(&member())),
    )
    .await;
    assert_eq!(status, 202);
    let retry_id = retry["id"].as_str().unwrap();
    let retried = entries_of(&api, &id)
        .into_iter()
        .find(|r| r.event.kind == EventKind::Retried)
        .unwrap();
    assert_eq!(retried.event.related_job.as_deref(), Some(retry_id));
    let created = entries_of(&api, retry_id)
        .into_iter()
        .find(|r| r.event.kind == EventKind::Created)
        .unwrap();
    assert_eq!(created.event.related_job.as_deref(), Some(id.as_str()));

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            post(&api, &member(), embedding_job()).await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut req = request("POST", "/jobs/bulk", Some(&member()));
    req.body = serde_json::to_vec(&json!({"action": "hide", "ids": ids})).unwrap();
    assert_eq!(call(&api, from(req, "req-bulk")).await.0, 200);
    for id in &ids {
        let hidden: Vec<_> = entries_of(&api, id)
            .into_iter()
            .filter(|r| r.event.kind == EventKind::Hidden)
            .collect();
        assert_eq!(hidden.len(), 1);
        assert_eq!(
            hidden[0].event.origin.request_id.as_deref(),
            Some("req-bulk")
        );
    }
}

#[tokio::test]
async fn every_way_a_job_ends_writes_one_ended_entry_and_clears_the_mark() {
    let api = api();
    // 1. Cancel of a queued job.
    let (_, job) = post(&api, &member(), embedding_job()).await;
    let queued = job["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &api,
            request("POST", &format!("/jobs/{queued}/cancel"), Some(&member()))
        )
        .await
        .0,
        202
    );
    // 2. A plan that cannot be enqueued.
    api.queue.broken.store(true, Ordering::Relaxed);
    let (status, _) = post(&api, &member(), embedding_job()).await;
    assert_eq!(status, 503);
    api.queue.broken.store(false, Ordering::Relaxed);
    let unqueued = api
        .store
        .job_ids()
        .into_iter()
        .find(|id| *id != queued)
        .unwrap();
    for (id, status) in [
        (&queued, jobs_core::JobStatus::Cancelled),
        (&unqueued, jobs_core::JobStatus::Failed),
    ] {
        let ended: Vec<_> = entries_of(&api, id)
            .into_iter()
            .filter(|r| r.event.kind == EventKind::Ended)
            .collect();
        assert_eq!(ended.len(), 1, "{id}");
        assert_eq!(
            (ended[0].event.status, ended[0].event.actor.is_none()),
            (Some(status), true)
        );
        let job = api.store.job(id).unwrap();
        assert_eq!(ended[0].event.at, job.completed_at.unwrap());
        assert!(job.end_pending.is_none(), "the hook ran to its end");
        let events: Vec<_> = api
            .observers
            .bus()
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.id == *id)
            .cloned()
            .collect();
        assert_eq!(events.len(), 1, "one event on the bus");
        assert_eq!(
            (events[0].status, events[0].event_id.clone()),
            (status, format!("{id}:{}", status.key()))
        );
    }
}

#[tokio::test]
async fn an_action_the_trail_cannot_hold_fails_and_a_create_leaves_no_job_to_run() {
    let api = api();
    api.observers
        .audit()
        .log()
        .broken
        .store(true, Ordering::Relaxed);
    let (status, body) = post(&api, &member(), embedding_job()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("service_unavailable"))
    );
    assert!(
        api.queue.sent.lock().unwrap().is_empty(),
        "nothing enqueued"
    );
    let id = api.store.job_ids().pop().unwrap();
    let job = api.store.job(&id).unwrap();
    assert_eq!(job.status, jobs_core::JobStatus::Failed);
    assert!(job.end_pending.is_some(), "its end is still to be recorded");
}

#[tokio::test]
async fn the_timeline_lists_a_job_s_events_in_order_with_started_and_pages() {
    let api = api();
    let id = settled_profile_job(&api, &["u0", "u1"], &[1], jobs_core::JobStatus::Running).await;
    for _ in 0..3 {
        call(
            &api,
            request("DELETE", &format!("/jobs/{id}"), Some(&member())),
        )
        .await;
        call(
            &api,
            request("POST", &format!("/jobs/{id}/unhide"), Some(&member())),
        )
        .await;
    }
    let (status, all) = events(&api, &member(), &id, &[]).await;
    assert_eq!(status, 200, "{all}");
    let kinds: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "created", "started", "hidden", "unhidden", "hidden", "unhidden", "hidden", "unhidden"
        ]
    );
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(
        all["items"][0]["actor"],
        json!({"sub": "alice", "role": "operator", "tenant": "acme"})
    );
    assert!(
        all["items"][1].get("actor").is_none(),
        "the service's own event"
    );

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "3")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let (status, page) = events(&api, &member(), &id, &query).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["kind"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, kinds, "every event once, in order, across pages");

    assert_eq!(
        events(&api, &token("globex", "mallory", Role::Operator), &id, &[])
            .await
            .0,
        404
    );
    assert_eq!(
        events(
            &api,
            &token("globex", "root", Role::PlatformAdmin),
            &id,
            &[]
        )
        .await
        .0,
        200
    );
    assert_eq!(events(&api, &member(), &id, &[("limit", "0")]).await.0, 400);
    assert_eq!(
        events(&api, &member(), &id, &[("cursor", "forged")])
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn admins_list_the_trail_by_time_range_across_shards_and_tenants() {
    let api = api();
    let admin = token("ops", "root", Role::PlatformAdmin);
    let mut created = Vec::new();
    for n in 0..14 {
        let auth = if n % 2 == 0 {
            member()
        } else {
            token("globex", "bob", Role::Operator)
        };
        created.push(
            post(&api, &auth, embedding_job()).await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let shards: std::collections::HashSet<String> = api
        .observers
        .audit()
        .log()
        .entries()
        .iter()
        .map(|r| r.audit_day.clone())
        .collect();
    assert!(shards.len() > 1, "entries spread over shards: {shards:?}");
    let now = clock::format(clock::now());
    let read_all = |query: Vec<(String, String)>| {
        let api = &api;
        let admin = admin.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut q = query.clone();
                q.push(("limit".into(), "4".into()));
                if let Some(c) = &cursor {
                    q.push(("cursor".into(), c.clone()));
                }
                let mut req = request("GET", "/audit", Some(&admin));
                req.query = q;
                let (status, page) = call(api, req).await;
                assert_eq!(status, 200, "{page}");
                seen.extend(page["items"].as_array().unwrap().iter().map(|e| {
                    (
                        e["at"].as_str().unwrap().to_string(),
                        e["job_id"].as_str().unwrap().to_string(),
                        e["tenant"].as_str().unwrap().to_string(),
                    )
                }));
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_string()),
                    None => return seen,
                }
            }
        }
    };
    let all = read_all(vec![("to".into(), now.clone())]).await;
    let mut listed: Vec<String> = all.iter().map(|(_, id, _)| id.clone()).collect();
    assert!(
        all.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first: {all:?}"
    );
    listed.sort();
    created.sort();
    assert_eq!(listed, created, "each entry once");
    let acme = read_all(vec![
        ("to".into(), now.clone()),
        ("tenant".into(), "acme".into()),
    ])
    .await;
    assert_eq!(acme.len(), 7);
    assert!(acme.iter().all(|(_, _, tenant)| tenant == "acme"));
    let before = read_all(vec![
        ("to".into(), "2000-01-01".into()),
        ("from".into(), "1999-12-01".into()),
    ])
    .await;
    assert!(before.is_empty());

    let mut req = request("GET", "/audit", Some(&member()));
    req.query = vec![("to".into(), now.clone())];
    assert_eq!(
        call(&api, req).await.0,
        403,
        "members do not read across tenants"
    );
    for bad in [
        ("from", "yesterday"),
        ("limit", "101"),
        ("tenant", "Not A Slug"),
        ("colour", "red"),
    ] {
        let mut req = request("GET", "/audit", Some(&admin));
        req.query = vec![(bad.0.into(), bad.1.into())];
        let (status, body) = call(&api, req).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(bad.0)),
            "{bad:?}"
        );
    }
}
