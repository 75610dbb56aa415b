//! `GET /metrics` over the in-memory store: jobs of known outcomes give exactly their counts
//! in the right buckets, per tenant and across tenants, at four aggregate writes per job.

use super::*;
use jobs_core::ports::ProgressStore;

async fn metrics(api: &Api, auth: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = get_with(api, auth, "/metrics", query).await;
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

/// Runs a created job to `status` through the store and the one end hook.
async fn end(api: &Api, id: &str, status: jobs_core::JobStatus, succeeded: u64, failed: u64) {
    use jobs_core::ports::{ChunkCommit, Settled, Tally};
    let at = clock::format(clock::now());
    assert!(
        api.store
            .begin(id, succeeded + failed, 1, &at)
            .await
            .unwrap()
    );
    let mut all = Settled::default();
    (0..(succeeded + failed) as usize).for_each(|p| all.insert(p));
    let commit = ChunkCommit {
        after: all,
        tally: Tally {
            succeeded,
            failed,
            cancelled: 0,
        },
        done: true,
        ..ChunkCommit::default()
    };
    assert!(api.store.commit_chunk(id, 0, &commit, 0).await.unwrap());
    assert!(api.store.complete(id, status, &at).await.unwrap());
    let job = api.store.job(id).unwrap();
    api.observers
        .on_job_end(&api.store, &api.queue, &job)
        .await
        .unwrap();
}

#[tokio::test]
async fn known_outcomes_give_exactly_their_counts_in_the_current_hour() {
    let api = api();
    let globex = token("globex", "gus", Role::Operator);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            post(&api, &member(), embedding_job()).await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let other = post(&api, &globex, embedding_job()).await.1["id"]
        .as_str()
        .unwrap()
        .to_string();
    end(&api, &ids[0], jobs_core::JobStatus::Completed, 5, 0).await;
    end(
        &api,
        &ids[1],
        jobs_core::JobStatus::CompletedWithErrors,
        3,
        2,
    )
    .await;
    end(&api, &other, jobs_core::JobStatus::Failed, 0, 4).await;
    assert_eq!(
        api.store
            .metric_writes
            .lock()
            .unwrap()
            .iter()
            .sum::<usize>(),
        4 * 2 + 3 * 2,
        "two writes at the creation of each of 4 jobs, two at the end of each of 3"
    );

    let (status, acme) = metrics(&api, &member(), &[]).await;
    assert_eq!(status, 200, "{acme}");
    assert_eq!(
        acme["buckets"].as_array().unwrap().len(),
        25,
        "the last 24 hours: the hour of now - 24 h to the current one"
    );
    let now = &acme["buckets"][24];
    assert_eq!(now["created"], 3);
    assert_eq!(
        now["ended"],
        json!({"completed": 1, "completed_with_errors": 1, "failed": 0, "cancelled": 0})
    );
    assert_eq!(now["items"], json!({"succeeded": 8, "failed": 2}));
    assert!(
        now["wait_ms"]["p50"].is_u64() && now["duration_ms"]["p95"].is_u64(),
        "{now}"
    );
    assert_eq!(acme["total"]["created"], 3);
    assert!(
        acme["buckets"].as_array().unwrap()[..24]
            .iter()
            .all(|b| b["created"] == 0)
    );

    let admin = token("ops", "root", Role::PlatformAdmin);
    let (_, all) = metrics(&api, &admin, &[]).await;
    assert_eq!(
        (
            all["total"]["created"].as_u64(),
            all["total"]["items"]["failed"].as_u64(),
            all["tenant"].clone()
        ),
        (Some(4), Some(6), Value::Null)
    );
    let (_, one) = metrics(&api, &admin, &[("tenant", "globex")]).await;
    assert_eq!(one["total"]["ended"]["failed"], 1);
    let (_, by_type) = metrics(&api, &admin, &[("type", "profile_field_update")]).await;
    assert_eq!(by_type["total"]["created"], 0);
    let (_, days) = metrics(&api, &member(), &[("bucket", "day")]).await;
    assert_eq!(
        (
            days["buckets"].as_array().unwrap().len(),
            days["buckets"][30]["created"].as_u64()
        ),
        (31, Some(3))
    );

    assert_eq!(
        metrics(&api, &member(), &[("tenant", "globex")]).await.0,
        403,
        "naming another tenant"
    );
    for bad in [
        ("bucket", "week"),
        ("from", "2026-01-01"),
        ("type", "reboot"),
        ("to", "soon"),
        ("colour", "red"),
    ] {
        let (status, body) = metrics(&api, &member(), &[bad]).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(bad.0)),
            "{bad:?}: {body}"
        );
    }
}
