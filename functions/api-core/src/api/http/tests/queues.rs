//! `GET /queues` over the in-memory adapters: per type, the jobs waiting and running from
//! the active index, the oldest waiting job, the chunks left, and the queue depths.

use super::*;
use jobs_core::ports::ProgressStore;

#[tokio::test]
async fn admins_see_each_type_s_waiting_and_running_jobs_and_queue_depths() {
    let api = api();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            post(&api, &member(), embedding_job()).await.1["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // One starts (4 chunks, 1 done); one is cancelled while queued: no longer active.
    let at = clock::format(clock::now());
    assert!(api.store.begin(&ids[1], 400, 4, &at).await.unwrap());
    let mut running = api.store.job(&ids[1]).unwrap();
    running.chunks_done = 1;
    api.store.insert(running);
    assert_eq!(
        call(
            &api,
            request("POST", &format!("/jobs/{}/cancel", ids[2]), Some(&member()))
        )
        .await
        .0,
        202
    );
    api.queue
        .dead
        .lock()
        .unwrap()
        .push(JobType::AiTextEmbedding);

    let admin = token("ops", "root", Role::PlatformAdmin);
    let (status, health) = call(&api, request("GET", "/queues", Some(&admin))).await;
    assert_eq!(status, 200, "{health}");
    let types = health["types"].as_array().unwrap();
    assert_eq!(types.len(), 4, "every registered type");
    let embedding = types
        .iter()
        .find(|t| t["type"] == "ai_text_embedding")
        .unwrap();
    assert_eq!(
        (
            embedding["queued"].as_u64(),
            embedding["running"].as_u64(),
            embedding["counts_capped"].as_bool()
        ),
        (Some(1), Some(1), Some(false))
    );
    assert_eq!(
        embedding["oldest_queued_at"],
        api.store.job(&ids[0]).unwrap().created_at.as_str()
    );
    assert!(
        embedding["oldest_queued_age_seconds"]
            .as_i64()
            .is_some_and(|s| s >= 0)
    );
    assert_eq!(
        (
            embedding["chunks_remaining"].as_u64(),
            embedding["chunks_remaining_exact"].as_bool()
        ),
        (Some(3), Some(true))
    );
    assert_eq!(
        (
            embedding["messages_visible"].as_u64(),
            embedding["dlq_messages"].as_u64()
        ),
        (Some(3), Some(1)),
        "three plans sent, one dead letter"
    );
    let other = types
        .iter()
        .find(|t| t["type"] == "bulk_message_sending")
        .unwrap();
    assert_eq!(
        (
            other["queued"].as_u64(),
            other["running"].as_u64(),
            other["dlq_messages"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );

    let (status, body) = call(&api, request("GET", "/queues", Some(&member()))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
}
