//! The exact requests of the API's writes: idempotent create, hide, cancel.

use serde_json::json;

use super::super::test_client::{
    ID, TABLE, condition_failed, job_key, sent, store, store_answering, transaction_cancelled,
};
use crate::domain::job::{JobStatus, JobType};
use crate::domain::record::{
    IDEMPOTENCY_SK, IDEMPOTENCY_TTL_SECONDS, IdempotencyRecord, JobRecord, NewJob,
};
use crate::ports::{CreateOutcome, JobStore};

fn job() -> JobRecord {
    JobRecord::new(NewJob {
        id: ID.into(),
        job_type: JobType::ProfileFieldUpdate,
        tenant: "acme".into(),
        user: "alice".into(),
        created_at: "2026-11-30T10:00:00.000Z".into(),
        month: "2026-11".into(),
        total: 2,
        summary: json!({}),
        input_key: format!("inputs/acme/{ID}.json"),
        expires_at: 1_800_000_000,
    })
}

fn idempotency() -> IdempotencyRecord {
    IdempotencyRecord {
        pk: "IDEM#abc".into(),
        sk: IDEMPOTENCY_SK.into(),
        job_id: ID.into(),
        request_hash: "hash".into(),
        expires_at: 1_764_500_000 + IDEMPOTENCY_TTL_SECONDS,
    }
}

#[tokio::test]
async fn create_with_a_key_writes_the_job_and_claims_the_key_in_one_transaction() {
    let (db, http) = store();
    assert_eq!(
        db.create(&job(), Some(&idempotency())).await.unwrap(),
        CreateOutcome::Created
    );
    let (operation, body) = sent(http);
    assert_eq!(operation, "TransactWriteItems");
    let items = body["TransactItems"].as_array().expect("TransactItems");
    assert_eq!(items.len(), 2);
    let job_put = &items[0]["Put"];
    assert_eq!(job_put["TableName"], TABLE);
    assert_eq!(job_put["ConditionExpression"], "attribute_not_exists(pk)");
    assert_eq!(job_put["Item"]["pk"], json!({"S": format!("JOB#{ID}")}));
    let key_put = &items[1]["Put"];
    // A record past its expiry that TTL has not swept yet counts as free.
    assert_eq!(
        key_put["ConditionExpression"],
        "attribute_not_exists(pk) OR expires_at < :now"
    );
    assert_eq!(
        key_put["ExpressionAttributeValues"],
        json!({":now": {"N": "1764500000"}})
    );
    assert_eq!(key_put["Item"]["pk"], json!({"S": "IDEM#abc"}));
    assert_eq!(key_put["Item"]["job_id"], json!({"S": ID}));
}

#[tokio::test]
async fn a_taken_key_is_reported_and_a_taken_job_id_is_an_error() {
    let (db, _http) = store_answering(
        400,
        transaction_cancelled(&["None", "ConditionalCheckFailed"]),
    );
    assert_eq!(
        db.create(&job(), Some(&idempotency())).await.unwrap(),
        CreateOutcome::IdempotencyKeyTaken
    );
    let (db, _http) = store_answering(
        400,
        transaction_cancelled(&["ConditionalCheckFailed", "None"]),
    );
    assert!(db.create(&job(), Some(&idempotency())).await.is_err());
}

#[tokio::test]
async fn create_without_a_key_is_one_conditional_put() {
    let (db, http) = store();
    db.create(&job(), None).await.unwrap();
    let (operation, body) = sent(http);
    assert_eq!(operation, "PutItem");
    assert_eq!(body["ConditionExpression"], "attribute_not_exists(pk)");
    assert_eq!(body["Item"]["status"], json!({"S": "queued"}));
}

fn record() -> JobRecord {
    JobRecord::new(NewJob {
        id: ID.into(),
        job_type: crate::domain::job::JobType::AiTextEmbedding,
        tenant: "acme".into(),
        user: "alice".into(),
        created_at: "2026-11-28T10:00:00.000Z".into(),
        month: "2026-11".into(),
        total: 1,
        summary: json!({}),
        input_key: "inputs/acme/x.json".into(),
        expires_at: 1,
    })
}

#[tokio::test]
async fn hiding_moves_the_list_partitions_to_the_hidden_indexes_for_a_member_s_own_job_only() {
    let (db, http) = store();
    assert!(
        db.hide(&record(), Some("acme"), "2026-11-30T10:00:00.000Z")
            .await
            .unwrap()
    );
    let (operation, body) = sent(http);
    assert_eq!(operation, "UpdateItem");
    assert_eq!(
        body,
        json!({
            "TableName": TABLE,
            "Key": job_key(),
            "UpdateExpression": "REMOVE list_tenant, list_tenant_user, list_month SET #hidden = if_not_exists(#hidden, :at), hidden_tenant = :p0, hidden_tenant_user = :p1, hidden_month = :p2",
            "ConditionExpression": "attribute_exists(pk) AND #tenant = :tenant",
            "ExpressionAttributeNames": {"#hidden": "hidden_at", "#tenant": "tenant"},
            "ExpressionAttributeValues": {
                ":at": {"S": "2026-11-30T10:00:00.000Z"}, ":tenant": {"S": "acme"},
                ":p0": {"S": "acme"}, ":p1": {"S": "acme#alice"}, ":p2": {"S": "2026-11"}
            }
        })
    );
    let (db, _http) = store_answering(400, condition_failed());
    assert!(
        !db.hide(&record(), Some("globex"), "2026-11-30T10:00:00.000Z")
            .await
            .unwrap(),
        "another tenant's job is not found"
    );
}

#[tokio::test]
async fn an_admin_hides_any_existing_job() {
    let (db, http) = store();
    assert!(
        db.hide(&record(), None, "2026-11-30T10:00:00.000Z")
            .await
            .unwrap()
    );
    let (_, body) = sent(http);
    assert_eq!(body["ConditionExpression"], "attribute_exists(pk)");
    assert!(body["ExpressionAttributeNames"].get("#tenant").is_none());
}

#[tokio::test]
async fn unhiding_restores_the_list_keys_from_the_job_and_drops_the_hidden_ones() {
    let (db, http) = store();
    assert!(db.unhide(&record(), Some("acme")).await.unwrap());
    let (_, body) = sent(http);
    assert_eq!(
        body["UpdateExpression"],
        "SET list_sk = :sk, list_tenant = :p0, list_tenant_user = :p1, list_month = :p2 REMOVE #hidden, hidden_tenant, hidden_tenant_user, hidden_month"
    );
    assert_eq!(
        body["ExpressionAttributeValues"][":sk"],
        json!({"S": format!("2026-11-28T10:00:00.000Z#{ID}")})
    );
    assert_eq!(
        body["ConditionExpression"],
        "attribute_exists(pk) AND #tenant = :tenant"
    );
}

#[tokio::test]
async fn cancel_of_a_queued_job_ends_it_and_of_a_running_job_asks_once() {
    let (db, http) = store();
    assert!(
        db.cancel(ID, JobStatus::Queued, "2026-11-30T10:00:00.000Z")
            .await
            .unwrap()
    );
    let (_, body) = sent(http);
    assert_eq!(
        body["UpdateExpression"],
        "SET #st = :cancelled, #completed = :at, #pending = :at, #ending = :shard, #cancel = :at, #cancelled = #total REMOVE #active"
    );
    assert_eq!(
        (
            body["ExpressionAttributeNames"]["#cancelled"].as_str(),
            body["ExpressionAttributeNames"]["#total"].as_str()
        ),
        (Some("cancelled"), Some("total")),
        "every item cancelled"
    );
    assert_eq!(
        body["ExpressionAttributeValues"][":shard"],
        json!({"S": "0"}),
        "the id's last byte (b'0' = 48) mod 4"
    );
    assert_eq!(body["ConditionExpression"], "#st = :from");
    assert_eq!(
        body["ExpressionAttributeValues"][":from"],
        json!({"S": "queued"})
    );

    let (db, http) = store();
    assert!(
        db.cancel(ID, JobStatus::Running, "2026-11-30T10:00:00.000Z")
            .await
            .unwrap()
    );
    let (_, body) = sent(http);
    assert_eq!(
        body["UpdateExpression"],
        "SET #cancel = if_not_exists(#cancel, :at)"
    );
    assert_eq!(
        body["ExpressionAttributeValues"][":from"],
        json!({"S": "running"})
    );
}

#[tokio::test]
async fn an_expired_idempotency_record_counts_as_absent() {
    let record = json!({"Item": {
        "pk": {"S": "IDEM#abc"}, "sk": {"S": IDEMPOTENCY_SK}, "job_id": {"S": ID},
        "request_hash": {"S": "hash"}, "expires_at": {"N": "1000"}
    }});
    let (db, http) = store_answering(200, record.clone());
    assert!(
        db.get_idempotency("IDEM#abc", 1001)
            .await
            .unwrap()
            .is_none()
    );
    let (_, body) = sent(http);
    assert_eq!(
        body["ConsistentRead"],
        json!(true),
        "a key is checked against the latest write"
    );
    let (db, _http) = store_answering(200, record);
    assert_eq!(
        db.get_idempotency("IDEM#abc", 1000)
            .await
            .unwrap()
            .map(|r| r.job_id)
            .as_deref(),
        Some(ID)
    );
}

#[tokio::test]
async fn the_api_reads_a_job_eventually_consistently() {
    let (db, http) = store();
    assert!(db.get(ID).await.unwrap().is_none());
    let (operation, body) = sent(http);
    assert_eq!(operation, "GetItem");
    assert_eq!(
        body,
        json!({"TableName": TABLE, "Key": job_key(), "ConsistentRead": false})
    );
}
