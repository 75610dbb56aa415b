//! The exact requests of the exactly-once protocol.

use serde_json::json;

use super::super::test_client::{ID, TABLE, job_key, condition_failed, sent, store, store_answering, transaction_cancelled};
use crate::job::{ItemError, JobStatus};
use crate::ports::{ProgressStore, Tally};


#[tokio::test]
async fn commit_chunk_writes_the_ledger_item_and_the_counters_in_one_transaction() {
    let (db, http) = store();
    let tally = Tally { succeeded: 3, failed: 1, cancelled: 0 };
    let errors = [ItemError { item: "b@x.io".into(), reason: "MessageRejected".into() }];
    assert!(db.commit_chunk(ID, 7, &tally, &errors, 1_800_000_000).await.unwrap());
    let (operation, mut body) = sent(http);
    assert_eq!(operation, "TransactWriteItems");
    // The SDK adds an idempotency token of its own to each transaction.
    assert!(body.as_object_mut().and_then(|b| b.remove("ClientRequestToken")).is_some());
    assert_eq!(
        body,
        json!({"TransactItems": [
            {"Put": {
                "TableName": TABLE,
                "Item": {
                    "pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "CHUNK#00000007"},
                    "succeeded": {"N": "3"}, "failed": {"N": "1"}, "cancelled": {"N": "0"},
                    "expires_at": {"N": "1800000000"}
                },
                "ConditionExpression": "attribute_not_exists(pk)"
            }},
            {"Update": {
                "TableName": TABLE,
                "Key": job_key(),
                "UpdateExpression": "ADD #succeeded :s, #failed :f, #cancelled :c, #done :one SET #errors = list_append(if_not_exists(#errors, :none), :errors)",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": {
                    "#succeeded": "succeeded", "#failed": "failed", "#cancelled": "cancelled",
                    "#done": "chunks_done", "#errors": "errors"
                },
                "ExpressionAttributeValues": {
                    ":s": {"N": "3"}, ":f": {"N": "1"}, ":c": {"N": "0"}, ":one": {"N": "1"},
                    ":none": {"L": []},
                    ":errors": {"L": [{"M": {"item": {"S": "b@x.io"}, "reason": {"S": "MessageRejected"}}}]}
                }
            }}
        ]})
    );
}

#[tokio::test]
async fn a_chunk_whose_ledger_item_exists_is_a_duplicate_not_an_error() {
    let (db, _http) = store_answering(400, transaction_cancelled(&["ConditionalCheckFailed", "None"]));
    assert!(!db.commit_chunk(ID, 0, &Tally::default(), &[], 0).await.unwrap());
}

#[tokio::test]
async fn a_chunk_of_a_job_that_is_gone_is_an_error() {
    let (db, _http) = store_answering(400, transaction_cancelled(&["None", "ConditionalCheckFailed"]));
    assert!(db.commit_chunk(ID, 0, &Tally::default(), &[], 0).await.is_err());
}

#[tokio::test]
async fn complete_needs_a_running_job_whose_every_chunk_is_committed() {
    let (db, http) = store();
    assert!(db.complete(ID, JobStatus::CompletedWithErrors, "2026-11-30T10:00:00.000Z").await.unwrap());
    let (operation, body) = sent(http);
    assert_eq!(operation, "UpdateItem");
    assert_eq!(
        body,
        json!({
            "TableName": TABLE,
            "Key": job_key(),
            "UpdateExpression": "SET #st = :final, #completed = :at",
            "ConditionExpression": "#st = :running AND #done = #chunks",
            "ExpressionAttributeNames": {"#st": "status", "#completed": "completed_at", "#done": "chunks_done", "#chunks": "chunks_total"},
            "ExpressionAttributeValues": {
                ":final": {"S": "completed_with_errors"}, ":running": {"S": "running"},
                ":at": {"S": "2026-11-30T10:00:00.000Z"}
            }
        })
    );
}

#[tokio::test]
async fn a_second_finisher_is_told_no() {
    let (db, _http) = store_answering(400, condition_failed());
    assert!(!db.complete(ID, JobStatus::Completed, "2026-11-30T10:00:00.000Z").await.unwrap());
}

#[tokio::test]
async fn begin_moves_only_a_queued_or_running_job_and_keeps_the_first_start_time() {
    let (db, http) = store();
    assert!(db.begin(ID, 120, 3, "2026-11-30T10:00:00.000Z").await.unwrap());
    let (_, body) = sent(http);
    assert_eq!(body["UpdateExpression"], "SET #st = :running, #total = :total, #chunks = :chunks, #started = if_not_exists(#started, :at)");
    assert_eq!(body["ConditionExpression"], "#st IN (:queued, :running)");
    assert_eq!(body["ExpressionAttributeValues"][":total"], json!({"N": "120"}));
    assert_eq!(body["ExpressionAttributeValues"][":chunks"], json!({"N": "3"}));
}

#[tokio::test]
async fn workers_read_the_job_and_the_ledger_strongly_consistently() {
    let (db, http) = store();
    assert!(db.load(ID).await.unwrap().is_none());
    let (operation, body) = sent(http);
    assert_eq!((operation.as_str(), &body["ConsistentRead"]), ("GetItem", &json!(true)));

    let (db, http) = store_answering(200, json!({"Item": {"pk": {"S": format!("JOB#{ID}")}}}));
    assert!(db.chunk_committed(ID, 2).await.unwrap());
    let (_, body) = sent(http);
    assert_eq!(
        body,
        json!({
            "TableName": TABLE,
            "Key": {"pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "CHUNK#00000002"}},
            "ProjectionExpression": "pk",
            "ConsistentRead": true
        })
    );
}
