//! The exact requests of the exactly-once protocol.

use serde_json::{Value, json};

use super::super::test_client::{
    ID, TABLE, condition_failed, job_key, sent, store, store_answering, transaction_cancelled,
};
use crate::aws::fake_http::FakeHttp;
use crate::domain::job::{ItemError, JobStatus};
use crate::ports::{ChunkCommit, ChunkLedger, ItemFailure, JobEnds, ProgressStore, Settled, Tally};

fn settled(positions: &[usize]) -> Settled {
    let mut set = Settled::default();
    for &p in positions {
        set.insert(p);
    }
    set
}

#[tokio::test]
async fn a_first_commit_creates_the_ledger_item_and_adds_to_the_counters_in_one_transaction() {
    let (db, http) = store();
    let commit = ChunkCommit {
        before: None,
        after: settled(&[0, 1, 2, 9]),
        tally: Tally {
            succeeded: 3,
            failed: 1,
            cancelled: 0,
        },
        failures: vec![ItemFailure {
            position: 9,
            reason: "MessageRejected".into(),
        }],
        cancelled: vec![],
        errors: vec![ItemError {
            item: "b@x.io".into(),
            reason: "MessageRejected".into(),
        }],
        done: false,
        paced_at: Some("2026-11-30T10:00:00.000Z".into()),
        pass: None,
        chain_rest: Default::default(),
    };
    assert!(
        db.commit_chunk(ID, 7, &commit, 1_800_000_000)
            .await
            .unwrap()
    );
    let (operation, mut body) = sent(http);
    assert_eq!(operation, "TransactWriteItems");
    // The SDK adds an idempotency token of its own to each transaction.
    assert!(
        body.as_object_mut()
            .and_then(|b| b.remove("ClientRequestToken"))
            .is_some()
    );
    assert_eq!(
        body,
        json!({"TransactItems": [
            {"Update": {
                "TableName": TABLE,
                "Key": {"pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "CHUNK#00000007"}},
                "UpdateExpression": "SET #settled = :after, #done = :done, #expires = :expires, #failures = list_append(if_not_exists(#failures, :none), :failures) ADD #succeeded :s, #failed :f, #cancelled :c",
                "ConditionExpression": "attribute_not_exists(pk)",
                "ExpressionAttributeNames": {
                    "#settled": "settled", "#done": "done", "#expires": "expires_at", "#failures": "failures",
                    "#succeeded": "succeeded", "#failed": "failed", "#cancelled": "cancelled"
                },
                "ExpressionAttributeValues": {
                    // Positions 0, 1, 2 and 9 as bits: bytes 0b0000_0111, 0b0000_0010.
                    ":after": {"B": "BwI="}, ":done": {"BOOL": false}, ":expires": {"N": "1800000000"},
                    ":s": {"N": "3"}, ":f": {"N": "1"}, ":c": {"N": "0"}, ":none": {"L": []},
                    ":failures": {"L": [{"M": {"position": {"N": "9"}, "reason": {"S": "MessageRejected"}}}]}
                }
            }},
            {"Update": {
                "TableName": TABLE,
                "Key": job_key(),
                "UpdateExpression": "ADD #succeeded :s, #failed :f, #cancelled :c SET #errors = list_append(if_not_exists(#errors, :none), :errors), #paced = :paced",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": {
                    "#succeeded": "succeeded", "#failed": "failed", "#cancelled": "cancelled",
                    "#errors": "errors", "#paced": "paced_at"
                },
                "ExpressionAttributeValues": {
                    ":s": {"N": "3"}, ":f": {"N": "1"}, ":c": {"N": "0"},
                    ":none": {"L": []},
                    ":errors": {"L": [{"M": {"item": {"S": "b@x.io"}, "reason": {"S": "MessageRejected"}}}]},
                    ":paced": {"S": "2026-11-30T10:00:00.000Z"}
                }
            }}
        ]})
    );
}

#[tokio::test]
async fn a_later_commit_applies_only_to_the_ledger_as_read_and_the_last_counts_the_chunk_done() {
    let (db, http) = store();
    let commit = ChunkCommit {
        before: Some(settled(&[0])),
        after: settled(&[0, 1]),
        tally: Tally {
            succeeded: 1,
            ..Tally::default()
        },
        done: true,
        ..ChunkCommit::default()
    };
    assert!(db.commit_chunk(ID, 0, &commit, 0).await.unwrap());
    let (_, body) = sent(http);
    let ledger = &body["TransactItems"][0]["Update"];
    assert_eq!(ledger["ConditionExpression"], "#settled = :before");
    assert_eq!(
        ledger["ExpressionAttributeValues"][":before"],
        json!({"B": "AQ=="})
    );
    assert_eq!(
        ledger["ExpressionAttributeValues"][":after"],
        json!({"B": "Aw=="})
    );
    assert_eq!(
        ledger["ExpressionAttributeValues"][":done"],
        json!({"BOOL": true})
    );
    let job = &body["TransactItems"][1]["Update"];
    assert_eq!(
        job["UpdateExpression"],
        "ADD #succeeded :s, #failed :f, #cancelled :c, #chunks_done :chunks"
    );
    assert_eq!(
        job["ExpressionAttributeValues"][":chunks"],
        json!({"N": "1"})
    );
}

#[tokio::test]
async fn a_commit_that_ends_a_cancelled_job_s_chain_counts_the_rest_on_the_job_only() {
    let (db, http) = store();
    let commit = ChunkCommit {
        after: settled(&[0, 1]),
        tally: Tally {
            cancelled: 2,
            ..Tally::default()
        },
        cancelled: vec![0, 1],
        done: true,
        chain_rest: crate::domain::chunk::ChainRest {
            chunks: 5,
            items: 480,
        },
        ..ChunkCommit::default()
    };
    assert!(db.commit_chunk(ID, 3, &commit, 0).await.unwrap());
    let (_, body) = sent(http);
    let ledger = &body["TransactItems"][0]["Update"];
    assert_eq!(ledger["ExpressionAttributeValues"][":c"], json!({"N": "2"}));
    let job = &body["TransactItems"][1]["Update"];
    assert_eq!(job["ExpressionAttributeValues"][":c"], json!({"N": "482"}));
    assert_eq!(
        job["ExpressionAttributeValues"][":chunks"],
        json!({"N": "6"})
    );
}

#[tokio::test]
async fn cancelled_items_are_listed_by_position_in_the_ledger() {
    let (db, http) = store();
    let commit = ChunkCommit {
        before: Some(settled(&[0])),
        after: settled(&[0, 1, 2]),
        tally: Tally {
            cancelled: 2,
            ..Tally::default()
        },
        cancelled: vec![1, 2],
        done: true,
        ..ChunkCommit::default()
    };
    assert!(db.commit_chunk(ID, 3, &commit, 0).await.unwrap());
    let (_, body) = sent(http);
    let ledger = &body["TransactItems"][0]["Update"];
    assert_eq!(
        ledger["UpdateExpression"],
        "SET #settled = :after, #done = :done, #expires = :expires, #cancelled_items = list_append(if_not_exists(#cancelled_items, :none), :cancelled_items) ADD #succeeded :s, #failed :f, #cancelled :c"
    );
    assert_eq!(
        ledger["ExpressionAttributeValues"][":cancelled_items"],
        json!({"L": [{"N": "1"}, {"N": "2"}]})
    );
}

#[tokio::test]
async fn the_commit_that_settles_a_chunk_passes_its_slot_in_the_same_transaction() {
    use crate::domain::window::{Passed, SlotPass, WindowChange, WindowKey};
    let key = WindowKey {
        pk: "TENANT#acme".into(),
        sk: "WINDOW#profile_field_update".into(),
    };
    let commit = |pass: SlotPass| ChunkCommit {
        after: settled(&[0, 1]),
        tally: Tally {
            succeeded: 2,
            ..Tally::default()
        },
        done: true,
        pass: Some((key.clone(), pass)),
        ..ChunkCommit::default()
    };
    let pass = |to: Passed| SlotPass {
        from_job: ID.into(),
        from_chunk: 3,
        to,
        take: None,
        hold: None,
        window: None,
    };
    // The job goes on with its chain: the same two items and conditions as any commit.
    let (db, http) = store();
    let own = Passed::To {
        job_id: ID.into(),
        chunk: 13,
    };
    assert!(
        db.commit_chunk(ID, 3, &commit(pass(own.clone())), 0)
            .await
            .unwrap()
    );
    let (_, body) = sent(http);
    let items = body["TransactItems"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[0]["Update"]["UpdateExpression"]
            .as_str()
            .unwrap()
            .contains("#passed = :passed")
    );
    assert_eq!(
        items[0]["Update"]["ExpressionAttributeValues"][":passed"],
        json!({"S": format!("{ID}#13")})
    );
    assert_eq!(
        items[1]["Update"]["UpdateExpression"],
        "ADD #succeeded :s, #failed :f, #cancelled :c, #chunks_done :chunks"
    );
    assert_eq!(
        items[1]["Update"]["ConditionExpression"],
        "attribute_exists(pk)"
    );
    // Its chain has ended: it takes one of its held heads, in the same update.
    let (db, http) = store();
    let from_held = SlotPass {
        take: Some((ID.into(), 5)),
        ..pass(Passed::To {
            job_id: ID.into(),
            chunk: 5,
        })
    };
    assert!(db.commit_chunk(ID, 3, &commit(from_held), 0).await.unwrap());
    let (_, body) = sent(http);
    let items = body["TransactItems"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[1]["Update"]["UpdateExpression"],
        "ADD #succeeded :s, #failed :f, #cancelled :c, #chunks_done :chunks REMOVE #held.#take"
    );
    assert_eq!(
        items[1]["Update"]["ConditionExpression"],
        "attribute_exists(pk) AND attribute_exists(#held.#take)"
    );
    // The slot goes to another job in line: its held head and the window join the
    // transaction, and this job holds its chain's next chunk.
    let (db, http) = store();
    let to_other = SlotPass {
        take: Some(("01OTHER".into(), 0)),
        hold: Some(13),
        window: Some(WindowChange {
            version: 4,
            next_turn: 6,
            set: vec![(ID.into(), 5)],
            ..WindowChange::default()
        }),
        ..pass(Passed::To {
            job_id: "01OTHER".into(),
            chunk: 0,
        })
    };
    assert!(
        db.commit_chunk(ID, 3, &commit(to_other.clone()), 0)
            .await
            .unwrap()
    );
    let (_, body) = sent(http);
    let items = body["TransactItems"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(
        items[1]["Update"]["UpdateExpression"],
        "ADD #succeeded :s, #failed :f, #cancelled :c, #chunks_done :chunks SET #held.#hold = :true"
    );
    assert_eq!(items[2]["Update"]["Key"]["pk"], json!({"S": "JOB#01OTHER"}));
    assert_eq!(items[3]["Update"]["Key"]["pk"], json!({"S": "TENANT#acme"}));
    // Refused on the window or the other job: reported, not an error; the caller reads again.
    let (db, _) = store_answering(
        400,
        transaction_cancelled(&["None", "None", "None", "ConditionalCheckFailed"]),
    );
    assert!(!db.commit_chunk(ID, 3, &commit(to_other), 0).await.unwrap());
}

#[tokio::test]
async fn a_ledger_changed_since_it_was_read_is_reported_not_an_error() {
    let (db, _http) = store_answering(
        400,
        transaction_cancelled(&["ConditionalCheckFailed", "None"]),
    );
    assert!(
        !db.commit_chunk(ID, 0, &ChunkCommit::default(), 0)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_chunk_of_a_job_that_is_gone_is_an_error() {
    let (db, _http) = store_answering(
        400,
        transaction_cancelled(&["None", "ConditionalCheckFailed"]),
    );
    assert!(
        db.commit_chunk(ID, 0, &ChunkCommit::default(), 0)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn complete_needs_a_running_job_whose_every_chunk_is_committed() {
    let (db, http) = store();
    assert!(
        db.complete(
            ID,
            JobStatus::CompletedWithErrors,
            "2026-11-30T10:00:00.000Z"
        )
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
            "UpdateExpression": "SET #st = :final, #completed = :at, #pending = :at, #ending = :shard REMOVE #active",
            "ConditionExpression": "#st = :running AND #done = #chunks",
            "ExpressionAttributeNames": {"#st": "status", "#completed": "completed_at", "#pending": "end_pending", "#ending": "ending", "#active": "active", "#done": "chunks_done", "#chunks": "chunks_total"},
            "ExpressionAttributeValues": {
                ":final": {"S": "completed_with_errors"}, ":running": {"S": "running"},
                ":at": {"S": "2026-11-30T10:00:00.000Z"}, ":shard": {"S": "0"}
            }
        })
    );
}

#[tokio::test]
async fn a_handled_end_leaves_the_ends_pending_index_which_the_sweep_reads_by_shard_and_age() {
    let (db, http) = store();
    db.end_handled(ID).await.unwrap();
    let (_, body) = sent(http);
    assert_eq!(body["UpdateExpression"], "REMOVE #pending, #ending, #claim");
    assert_eq!(
        body["ExpressionAttributeNames"],
        json!({"#pending": "end_pending", "#ending": "ending", "#claim": "end_claimed_at"})
    );

    let entry = json!({"pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "JOB"}, "ending": {"S": "3"}, "end_pending": {"S": "2026-11-30T09:00:00.000Z"}});
    let (db, http) = store_answering(200, json!({"Items": [entry]}));
    assert_eq!(
        db.pending_ends(3, "2026-11-30T09:58:00.000Z", None, 25)
            .await
            .unwrap(),
        (vec![ID.to_string()], None)
    );
    let (operation, body) = sent(http);
    assert_eq!(operation, "Query");
    assert_eq!(
        body,
        json!({
            "TableName": TABLE,
            "IndexName": "ends_pending",
            "KeyConditionExpression": "#p = :p AND #s < :bound",
            "ExpressionAttributeNames": {"#p": "ending", "#s": "end_pending"},
            "ExpressionAttributeValues": {":p": {"S": "3"}, ":bound": {"S": "2026-11-30T09:58:00.000Z"}},
            "Limit": 25
        })
    );
}

#[tokio::test]
async fn an_end_is_claimed_while_its_mark_is_the_one_read_and_no_live_claim_holds_it() {
    let (db, http) = store();
    assert!(
        db.claim_end(
            ID,
            "2026-11-30T10:00:00.000Z",
            "2026-11-30T10:00:01.000Z",
            "2026-11-30T09:59:01.000Z"
        )
        .await
        .unwrap()
    );
    let (operation, body) = sent(http);
    assert_eq!(operation, "UpdateItem");
    assert_eq!(
        body,
        json!({
            "TableName": TABLE,
            "Key": {"pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "JOB"}},
            "UpdateExpression": "SET #claim = :at",
            "ConditionExpression": "#pending = :mark AND (attribute_not_exists(#claim) OR #claim < :stale)",
            "ExpressionAttributeNames": {"#pending": "end_pending", "#claim": "end_claimed_at"},
            "ExpressionAttributeValues": {":mark": {"S": "2026-11-30T10:00:00.000Z"}, ":at": {"S": "2026-11-30T10:00:01.000Z"}, ":stale": {"S": "2026-11-30T09:59:01.000Z"}}
        })
    );
    let (db, _http) = store_answering(400, condition_failed());
    assert!(
        !db.claim_end(
            ID,
            "2026-11-30T10:00:00.000Z",
            "2026-11-30T10:00:01.000Z",
            "2026-11-30T09:59:01.000Z"
        )
        .await
        .unwrap(),
        "held or handled by another caller"
    );
}

#[tokio::test]
async fn a_second_finisher_is_told_no() {
    let (db, _http) = store_answering(400, condition_failed());
    assert!(
        !db.complete(ID, JobStatus::Completed, "2026-11-30T10:00:00.000Z")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn begin_moves_only_a_queued_or_running_job_and_keeps_the_first_start_time() {
    let (db, http) = store();
    assert!(
        db.begin(ID, 120, 3, "2026-11-30T10:00:00.000Z")
            .await
            .unwrap()
    );
    let (_, body) = sent(http);
    assert_eq!(
        body["UpdateExpression"],
        "SET #st = :running, #total = :total, #chunks = :chunks, #started = if_not_exists(#started, :at)"
    );
    assert_eq!(body["ConditionExpression"], "#st IN (:queued, :running)");
    assert_eq!(
        body["ExpressionAttributeValues"][":total"],
        json!({"N": "120"})
    );
    assert_eq!(
        body["ExpressionAttributeValues"][":chunks"],
        json!({"N": "3"})
    );
}

#[tokio::test]
async fn workers_read_the_job_and_the_ledger_strongly_consistently() {
    let (db, http) = store();
    assert!(db.load(ID).await.unwrap().is_none());
    let (operation, body) = sent(http);
    assert_eq!(
        (operation.as_str(), &body["ConsistentRead"]),
        ("GetItem", &json!(true))
    );

    let (db, http) = store_answering(
        200,
        json!({"Item": {"settled": {"B": "Aw=="}, "done": {"BOOL": true}, "passed_to": {"S": "01OTHER#4"}}}),
    );
    assert_eq!(
        db.chunk_ledger(ID, 2).await.unwrap(),
        Some(ChunkLedger {
            settled: settled(&[0, 1]),
            done: true,
            passed: Some(crate::domain::window::Passed::To {
                job_id: "01OTHER".into(),
                chunk: 4
            }),
            woke: Vec::new(),
        })
    );
    let (_, body) = sent(http);
    assert_eq!(
        body,
        json!({
            "TableName": TABLE,
            "Key": {"pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "CHUNK#00000002"}},
            "ProjectionExpression": "#settled, #done, #passed, #woke",
            "ExpressionAttributeNames": {"#settled": "settled", "#done": "done", "#passed": "passed_to", "#woke": "woke"},
            "ConsistentRead": true
        })
    );
}

#[tokio::test]
async fn a_ledger_item_without_a_bit_set_was_written_whole_and_is_done() {
    let (db, _http) = store_answering(200, json!({"Item": {"succeeded": {"N": "50"}}}));
    assert!(
        db.chunk_ledger(ID, 0)
            .await
            .unwrap()
            .is_some_and(|l| l.done)
    );
    let (db, _http) = store_answering(200, json!({}));
    assert_eq!(db.chunk_ledger(ID, 0).await.unwrap(), None);
}

/// The one request sent was a strongly consistent `BatchGetItem` of `keys` on the table.
fn assert_one_consistent_batch_get(http: FakeHttp, keys: Value) {
    let (operation, body) = sent(http);
    assert_eq!(operation, "BatchGetItem");
    assert_eq!(
        body["RequestItems"][TABLE],
        json!({"Keys": keys, "ConsistentRead": true})
    );
}

#[tokio::test]
async fn jobs_read_together_are_one_strongly_consistent_batch_get() {
    let (db, http) = store_answering(200, json!({"Responses": {TABLE: []}}));
    let ids = [ID.to_string(), "01OTHER".to_string()];
    assert!(db.load_many(&ids).await.unwrap().is_empty());
    assert_one_consistent_batch_get(
        http,
        json!([job_key(), {"pk": {"S": "JOB#01OTHER"}, "sk": {"S": "JOB"}}]),
    );
}

#[tokio::test]
async fn a_chunk_delivery_reads_its_job_and_ledger_in_one_strongly_consistent_batch_get() {
    let (db, http) = store_answering(
        200,
        json!({"Responses": {TABLE: [{
            "pk": {"S": format!("JOB#{ID}")},
            "sk": {"S": "CHUNK#00000003"},
            "settled": {"B": "Aw=="},
            "done": {"BOOL": false}
        }]}}),
    );
    let (job, ledger) = db.chunk_start(ID, 3).await.unwrap();
    assert_one_consistent_batch_get(
        http,
        json!([job_key(), {"pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "CHUNK#00000003"}}]),
    );
    assert!(job.is_none(), "no job item answered");
    let ledger = ledger.expect("the ledger answered");
    assert_eq!((ledger.settled.len(), ledger.done), (2, false));
}
