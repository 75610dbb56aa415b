//! Release windows in the Jobs table ([`WindowStore`]): a window item (`in_flight`,
//! `waiting` as a map of job id to turn, `next_turn`) read consistently; a slot taken
//! together with the chain head it releases (out of the job's `held`) in one transaction;
//! a slot passed on with the settled chunk's ledger (`passed_to`), the jobs' `held` and the
//! window in one transaction.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{DynamoJobStore, Item, conditional, job_key, n, s};
use crate::domain::record::{chunk_sk, job_pk};
use crate::domain::window::{Acquired, ReleaseWindow, SlotPass, WindowChange, WindowKey};
use crate::error::StoreError;
use crate::ports::WindowStore;

fn key_of(key: &WindowKey) -> Item {
    HashMap::from([
        ("pk".to_string(), s(&key.pk)),
        ("sk".to_string(), s(&key.sk)),
    ])
}

fn number(value: Option<&AttributeValue>) -> u64 {
    value
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The reason codes of a cancelled transaction, by item; empty for any other error.
fn reasons(error: &TransactWriteItemsError) -> Vec<String> {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = error else {
        return Vec::new();
    };
    cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None").to_string())
        .collect()
}

/// The window takes `change`, under the conditions [`WindowChange`] names: a change of the
/// line only at the version read; a free only if nobody waits (and no plan is deferred, when
/// none was); wakes only if every woken job is still deferred.
pub(super) fn window_update(
    table: &str,
    key: &WindowKey,
    change: &WindowChange,
) -> Result<TransactWriteItem, StoreError> {
    let mut window = Update::builder()
        .table_name(table)
        .set_key(Some(key_of(key)));
    let mut conditions: Vec<String> = Vec::new();
    let (mut set, mut remove, mut add, mut delete) = (Vec::new(), Vec::new(), Vec::new(), None);
    if change.versioned() {
        window = window
            .expression_attribute_names("#next_turn", "next_turn")
            .expression_attribute_names("#waiting", "waiting")
            .expression_attribute_values(":version", n(change.version))
            .expression_attribute_values(":next_turn", n(change.next_turn));
        conditions.push(if change.version == 0 {
            "(attribute_not_exists(#next_turn) OR #next_turn = :version)".into()
        } else {
            "#next_turn = :version".into()
        });
        set.push("#next_turn = :next_turn".to_string());
        for (i, (job_id, turn)) in change.set.iter().enumerate() {
            set.push(format!("#waiting.#set{i} = :turn{i}"));
            window = window
                .expression_attribute_names(format!("#set{i}"), job_id)
                .expression_attribute_values(format!(":turn{i}"), n(*turn));
        }
        for (i, job_id) in change.remove.iter().enumerate() {
            remove.push(format!("#waiting.#remove{i}"));
            window = window.expression_attribute_names(format!("#remove{i}"), job_id);
        }
    } else if change.free {
        window = window
            .expression_attribute_names("#waiting", "waiting")
            .expression_attribute_values(":zero", n(0));
        conditions.push("(attribute_not_exists(#waiting) OR size(#waiting) = :zero)".into());
    }
    if change.free {
        if let Some(seen) = change.in_flight_seen.filter(|_| change.free) {
            window = window.expression_attribute_values(":seen", n(seen));
            conditions.push("#in_flight = :seen".into());
        }
        if change.none_deferred {
            window = window.expression_attribute_names("#deferred", "deferred");
            conditions.push("attribute_not_exists(#deferred)".into());
        }
        window = window
            .expression_attribute_names("#in_flight", "in_flight")
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()));
        add.push("#in_flight :minus_one".to_string());
    }
    if !change.wake.is_empty() {
        // String sets: the woken ids move from `deferred` to `woken`, each only if it is
        // still deferred (DynamoDB removes a set emptied by `DELETE`).
        window = window
            .expression_attribute_names("#deferred", "deferred")
            .expression_attribute_names("#woken", "woken")
            .expression_attribute_values(":wake", AttributeValue::Ss(change.wake.clone()));
        for (i, job_id) in change.wake.iter().enumerate() {
            conditions.push(format!("contains(#deferred, :wake{i})"));
            window = window.expression_attribute_values(format!(":wake{i}"), s(job_id));
        }
        add.push("#woken :wake".to_string());
        delete = Some("#deferred :wake");
    }
    let mut clauses = Vec::new();
    for (verb, list) in [("SET", &set), ("REMOVE", &remove), ("ADD", &add)] {
        if !list.is_empty() {
            clauses.push(format!("{verb} {}", list.join(", ")));
        }
    }
    if let Some(delete) = delete {
        clauses.push(format!("DELETE {delete}"));
    }
    if !conditions.is_empty() {
        window = window.condition_expression(conditions.join(" AND "));
    }
    let window = window
        .update_expression(clauses.join(" "))
        .build()
        .map_err(|e| StoreError::encode("an Update", e))?;
    Ok(TransactWriteItem::builder().update(window).build())
}

/// Chain heads `heads` leave the job's `held`, only if all are there.
pub(super) fn take(
    table: &str,
    job_id: &str,
    heads: &[u64],
) -> Result<TransactWriteItem, StoreError> {
    let paths: Vec<String> = (0..heads.len()).map(|i| format!("#held.#h{i}")).collect();
    let conditions: Vec<String> = paths
        .iter()
        .map(|p| format!("attribute_exists({p})"))
        .collect();
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(job_key(job_id)))
        .update_expression(format!("REMOVE {}", paths.join(", ")))
        .condition_expression(conditions.join(" AND "))
        .expression_attribute_names("#held", "held");
    for (i, head) in heads.iter().enumerate() {
        update = update.expression_attribute_names(format!("#h{i}"), head.to_string());
    }
    let update = update
        .build()
        .map_err(|e| StoreError::encode("an Update", e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Chain head `chunk` joins the job's `held`.
pub(super) fn hold(table: &str, job_id: &str, chunk: u64) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(job_key(job_id)))
        .update_expression("SET #held.#head = :true")
        .expression_attribute_names("#held", "held")
        .expression_attribute_names("#head", chunk.to_string())
        .expression_attribute_values(":true", AttributeValue::Bool(true))
        .build()
        .map_err(|e| StoreError::encode("an Update", e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

impl WindowStore for DynamoJobStore {
    async fn window(&self, key: &WindowKey) -> Result<ReleaseWindow, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(ReleaseWindow::default());
        };
        let waiting = match item.get("waiting") {
            Some(AttributeValue::M(map)) => map
                .iter()
                .map(|(id, turn)| (id.clone(), number(Some(turn))))
                .collect(),
            _ => Default::default(),
        };
        let set = |name: &str| match item.get(name) {
            Some(AttributeValue::Ss(ids)) => ids.iter().cloned().collect(),
            _ => Default::default(),
        };
        Ok(ReleaseWindow {
            in_flight: number(item.get("in_flight")),
            waiting,
            next_turn: number(item.get("next_turn")),
            deferred: set("deferred"),
            woken: set("woken"),
        })
    }

    async fn hold_first(&self, job_id: &str, chains: u64) -> Result<(), StoreError> {
        let heads: HashMap<String, AttributeValue> = (0..chains)
            .map(|c| (c.to_string(), AttributeValue::Bool(true)))
            .collect();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(job_id)))
            .update_expression("SET #held = if_not_exists(#held, :heads)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#held", "held")
            .expression_attribute_values(":heads", AttributeValue::M(heads))
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:UpdateItem").map(drop)
    }

    async fn acquire(
        &self,
        key: &WindowKey,
        limit: u64,
        job_id: &str,
        heads: &[u64],
    ) -> Result<Acquired, StoreError> {
        let Some(room) = limit.checked_sub(heads.len() as u64) else {
            return Ok(Acquired::Full);
        };
        // `waiting` is created empty with the item, so `wait` can set one of its entries.
        let window = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("ADD #in_flight :count SET #waiting = if_not_exists(#waiting, :empty), #next_turn = if_not_exists(#next_turn, :zero)")
            .condition_expression("attribute_not_exists(#in_flight) OR #in_flight <= :room")
            .expression_attribute_names("#in_flight", "in_flight")
            .expression_attribute_names("#waiting", "waiting")
            .expression_attribute_names("#next_turn", "next_turn")
            .expression_attribute_values(":count", n(heads.len() as u64))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .expression_attribute_values(":room", n(room))
            .build()
            .map_err(|e| StoreError::encode("an Update", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(window).build())
            .transact_items(take(&self.table, job_id, heads)?)
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(Acquired::Granted),
            Err(error) => {
                let reasons = reasons(&error);
                match reasons.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    ["ConditionalCheckFailed", _] => Ok(Acquired::Full),
                    // The job moved on, or a concurrent write to either item: read again.
                    [_, "ConditionalCheckFailed"]
                    | ["TransactionConflict", _]
                    | [_, "TransactionConflict"] => Ok(Acquired::Taken),
                    _ => Err(StoreError::aws("dynamodb:TransactWriteItems", error)),
                }
            }
        }
    }

    async fn wait(&self, key: &WindowKey, limit: u64, job_id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("SET #waiting.#job = if_not_exists(#waiting.#job, #next_turn), #next_turn = #next_turn + :one")
            .condition_expression("#in_flight >= :limit")
            .expression_attribute_names("#waiting", "waiting")
            .expression_attribute_names("#job", job_id)
            .expression_attribute_names("#next_turn", "next_turn")
            .expression_attribute_names("#in_flight", "in_flight")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn defer(&self, key: &WindowKey, limit: u64, job_id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("ADD #deferred :job")
            .condition_expression(
                "#in_flight >= :limit OR ((attribute_exists(#deferred) OR attribute_exists(#woken)) AND #in_flight > :zero)",
            )
            .expression_attribute_names("#deferred", "deferred")
            .expression_attribute_names("#woken", "woken")
            .expression_attribute_names("#in_flight", "in_flight")
            .expression_attribute_values(":job", AttributeValue::Ss(vec![job_id.to_string()]))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn wake(&self, key: &WindowKey, by: &str, jobs: &[String]) -> Result<bool, StoreError> {
        let change = WindowChange {
            wake: jobs.to_vec(),
            ..WindowChange::default()
        };
        let record = Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(by)))
            .update_expression("ADD #woke :woke")
            .expression_attribute_names("#woke", "woke")
            .expression_attribute_values(":woke", AttributeValue::Ss(jobs.to_vec()))
            .build()
            .map_err(|e| StoreError::encode("an Update", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(window_update(&self.table, key, &change)?)
            .transact_items(TransactWriteItem::builder().update(record).build())
            .send()
            .await;
        super::written(result)
    }

    async fn leave(
        &self,
        key: &WindowKey,
        job_id: &str,
        seen: Option<(u64, u64)>,
    ) -> Result<bool, StoreError> {
        let me = AttributeValue::Ss(vec![job_id.to_string()]);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression("DELETE #deferred :me, #woken :me")
            .expression_attribute_names("#deferred", "deferred")
            .expression_attribute_names("#woken", "woken")
            .expression_attribute_values(":me", me);
        if let Some((in_flight, woken)) = seen {
            request = request
                .condition_expression(if in_flight == 0 {
                    "(attribute_not_exists(#in_flight) OR #in_flight = :in_flight) AND size(#woken) = :woken"
                } else {
                    "#in_flight = :in_flight AND size(#woken) = :woken"
                })
                .expression_attribute_names("#in_flight", "in_flight")
                .expression_attribute_values(":in_flight", n(in_flight))
                .expression_attribute_values(":woken", n(woken));
        }
        conditional(request.send().await.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn pass(&self, key: &WindowKey, pass: &SlotPass) -> Result<bool, StoreError> {
        let ledger = Update::builder()
            .table_name(&self.table)
            .key("pk", s(job_pk(&pass.from_job)))
            .key("sk", s(chunk_sk(pass.from_chunk)))
            .update_expression(if pass.woken().is_empty() {
                "SET #passed = :passed"
            } else {
                "SET #passed = :passed, #woke = :woke"
            })
            .condition_expression("#done = :true AND attribute_not_exists(#passed)")
            .expression_attribute_names("#passed", "passed_to")
            .expression_attribute_names("#done", "done")
            .expression_attribute_values(":passed", s(pass.to.encode()))
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        let ledger = if pass.woken().is_empty() {
            ledger
        } else {
            ledger
                .expression_attribute_names("#woke", "woke")
                .expression_attribute_values(":woke", AttributeValue::Ss(pass.woken().to_vec()))
        };
        let ledger = ledger
            .build()
            .map_err(|e| StoreError::encode("an Update", e))?;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(ledger).build());
        if let Some((job_id, chunk)) = &pass.take {
            request = request.transact_items(take(&self.table, job_id, &[*chunk])?);
        }
        if let Some(chunk) = pass.hold {
            request = request.transact_items(hold(&self.table, &pass.from_job, chunk)?);
        }
        if let Some(change) = &pass.window {
            request = request.transact_items(window_update(&self.table, key, change)?);
        }
        super::written(request.send().await)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_client::{
        ID, TABLE, condition_failed, job_key as job_key_json, sent, store, store_answering,
        transaction_cancelled,
    };
    use super::*;
    use crate::domain::window::Passed;

    fn tenant_window() -> WindowKey {
        WindowKey {
            pk: "TENANT#acme".into(),
            sk: "WINDOW#ai_text_embedding".into(),
        }
    }

    #[tokio::test]
    async fn slots_are_taken_with_the_jobs_held_heads_in_one_transaction() {
        let (store, http) = store();
        assert_eq!(
            store
                .acquire(&tenant_window(), 10, ID, &[3, 4])
                .await
                .unwrap(),
            Acquired::Granted
        );
        let (operation, body) = sent(http);
        assert_eq!(operation, "TransactWriteItems");
        let items = body["TransactItems"].as_array().unwrap();
        assert_eq!(
            items[0]["Update"]["Key"],
            json!({"pk": {"S": "TENANT#acme"}, "sk": {"S": "WINDOW#ai_text_embedding"}})
        );
        assert_eq!(
            items[0]["Update"]["ConditionExpression"],
            "attribute_not_exists(#in_flight) OR #in_flight <= :room"
        );
        assert_eq!(
            items[0]["Update"]["ExpressionAttributeValues"][":room"],
            json!({"N": "8"})
        );
        assert_eq!(
            items[0]["Update"]["ExpressionAttributeValues"][":count"],
            json!({"N": "2"})
        );
        assert_eq!(items[1]["Update"]["Key"], job_key_json());
        assert_eq!(items[1]["Update"]["TableName"], TABLE);
        assert_eq!(
            items[1]["Update"]["UpdateExpression"],
            "REMOVE #held.#h0, #held.#h1"
        );
        assert_eq!(
            items[1]["Update"]["ConditionExpression"],
            "attribute_exists(#held.#h0) AND attribute_exists(#held.#h1)"
        );
        assert_eq!(
            items[1]["Update"]["ExpressionAttributeNames"],
            json!({"#held": "held", "#h0": "3", "#h1": "4"})
        );
        for (codes, expected) in [
            (["ConditionalCheckFailed", "None"], Acquired::Full),
            (["None", "ConditionalCheckFailed"], Acquired::Taken),
        ] {
            let (store, _) = store_answering(400, transaction_cancelled(&codes));
            assert_eq!(
                store.acquire(&tenant_window(), 10, ID, &[3]).await.unwrap(),
                expected
            );
        }
    }

    #[tokio::test]
    async fn a_job_waits_only_while_the_window_is_full_and_keeps_its_turn() {
        let (store, http) = store();
        assert!(store.wait(&tenant_window(), 10, ID).await.unwrap());
        let (_, body) = sent(http);
        assert_eq!(
            body["UpdateExpression"],
            "SET #waiting.#job = if_not_exists(#waiting.#job, #next_turn), #next_turn = #next_turn + :one"
        );
        assert_eq!(body["ConditionExpression"], "#in_flight >= :limit");
        assert_eq!(body["ExpressionAttributeNames"]["#job"], ID);
    }

    #[tokio::test]
    async fn a_pass_writes_the_ledger_both_jobs_held_heads_and_the_window_at_once() {
        let (store, http) = store();
        let pass = SlotPass {
            from_job: ID.into(),
            from_chunk: 2,
            to: Passed::To {
                job_id: "01OTHER".into(),
                chunk: 0,
            },
            take: Some(("01OTHER".into(), 0)),
            hold: Some(12),
            window: Some(WindowChange {
                version: 5,
                next_turn: 7,
                set: vec![(ID.into(), 5), ("01OTHER".into(), 6)],
                remove: vec![],
                free: false,
                ..WindowChange::default()
            }),
        };
        assert!(store.pass(&tenant_window(), &pass).await.unwrap());
        let (_, body) = sent(http);
        let items = body["TransactItems"].as_array().unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0]["Update"]["Key"],
            json!({"pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "CHUNK#00000002"}})
        );
        assert_eq!(
            items[0]["Update"]["ConditionExpression"],
            "#done = :true AND attribute_not_exists(#passed)"
        );
        assert_eq!(
            items[0]["Update"]["ExpressionAttributeValues"][":passed"],
            json!({"S": "01OTHER#0"})
        );
        assert_eq!(items[1]["Update"]["Key"]["pk"], json!({"S": "JOB#01OTHER"}));
        assert_eq!(items[1]["Update"]["UpdateExpression"], "REMOVE #held.#h0");
        assert_eq!(items[2]["Update"]["Key"], job_key_json());
        assert_eq!(
            items[2]["Update"]["UpdateExpression"],
            "SET #held.#head = :true"
        );
        assert_eq!(
            items[3]["Update"]["UpdateExpression"],
            "SET #next_turn = :next_turn, #waiting.#set0 = :turn0, #waiting.#set1 = :turn1"
        );
        assert_eq!(
            items[3]["Update"]["ConditionExpression"],
            "#next_turn = :version"
        );
        let freed = SlotPass {
            from_job: ID.into(),
            from_chunk: 2,
            to: Passed::Freed,
            take: None,
            hold: None,
            window: Some(WindowChange {
                version: 0,
                next_turn: 1,
                remove: vec!["01GONE".into()],
                free: true,
                ..WindowChange::default()
            }),
        };
        let (store, http) = store_answering(200, json!({}));
        assert!(store.pass(&tenant_window(), &freed).await.unwrap());
        let (_, body) = sent(http);
        let items = body["TransactItems"].as_array().unwrap();
        assert_eq!(items.len(), 2, "the ledger and the window: no job released");
        assert_eq!(
            items[1]["Update"]["UpdateExpression"],
            "SET #next_turn = :next_turn REMOVE #waiting.#remove0 ADD #in_flight :minus_one"
        );
        let lone_free = SlotPass {
            window: Some(WindowChange {
                version: 7,
                next_turn: 7,
                free: true,
                ..WindowChange::default()
            }),
            ..freed.clone()
        };
        let (store, http) = store_answering(200, json!({}));
        assert!(store.pass(&tenant_window(), &lone_free).await.unwrap());
        let (_, body) = sent(http);
        let window = &body["TransactItems"][1]["Update"];
        assert_eq!(
            (
                window["UpdateExpression"].as_str(),
                window["ConditionExpression"].as_str()
            ),
            (
                Some("ADD #in_flight :minus_one"),
                Some("(attribute_not_exists(#waiting) OR size(#waiting) = :zero)")
            ),
            "a lone free is not versioned: it needs only an empty line"
        );
        let (store, _) = store_answering(
            400,
            transaction_cancelled(&["ConditionalCheckFailed", "None"]),
        );
        assert!(
            !store.pass(&tenant_window(), &freed).await.unwrap(),
            "passed already: read again"
        );
    }

    #[tokio::test]
    async fn deferral_wake_and_leave_are_set_operations_on_the_window() {
        let (store, http) = store_answering(200, json!({}));
        assert!(store.defer(&tenant_window(), 10, ID).await.unwrap());
        let (operation, body) = sent(http);
        assert_eq!(operation, "UpdateItem");
        assert_eq!(
            (
                body["UpdateExpression"].as_str(),
                body["ConditionExpression"].as_str(),
                &body["ExpressionAttributeValues"][":job"],
                &body["ExpressionAttributeValues"][":limit"],
            ),
            (
                Some("ADD #deferred :job"),
                Some(
                    "#in_flight >= :limit OR ((attribute_exists(#deferred) OR attribute_exists(#woken)) AND #in_flight > :zero)"
                ),
                &json!({"SS": [ID]}),
                &json!({"N": "10"}),
            ),
            "no version: a deferral commutes with every pass"
        );
        let (store, http) = store_answering(200, json!({}));
        let jobs = ["01A".to_string(), "01B".to_string()];
        assert!(store.wake(&tenant_window(), ID, &jobs).await.unwrap());
        let (_, body) = sent(http);
        let (window, record) = (
            &body["TransactItems"][0]["Update"],
            &body["TransactItems"][1]["Update"],
        );
        assert_eq!(
            (
                window["UpdateExpression"].as_str(),
                window["ConditionExpression"].as_str(),
                &window["ExpressionAttributeValues"][":wake"],
            ),
            (
                Some("ADD #woken :wake DELETE #deferred :wake"),
                Some("contains(#deferred, :wake0) AND contains(#deferred, :wake1)"),
                &json!({"SS": ["01A", "01B"]}),
            )
        );
        assert_eq!(
            (
                &record["Key"],
                record["UpdateExpression"].as_str(),
                &record["ExpressionAttributeValues"][":woke"]
            ),
            (
                &job_key_json(),
                Some("ADD #woke :woke"),
                &json!({"SS": ["01A", "01B"]})
            ),
            "the waker records what it woke"
        );
        let (store, http) = store_answering(200, json!({}));
        assert!(
            store
                .leave(&tenant_window(), ID, Some((3, 2)))
                .await
                .unwrap()
        );
        let (_, body) = sent(http);
        assert_eq!(
            (
                body["UpdateExpression"].as_str(),
                body["ConditionExpression"].as_str()
            ),
            (
                Some("DELETE #deferred :me, #woken :me"),
                Some("#in_flight = :in_flight AND size(#woken) = :woken")
            ),
            "a leave that woke nobody holds only on the window it read"
        );
        let (store, _) = store_answering(400, condition_failed());
        assert!(
            !store.defer(&tenant_window(), 10, ID).await.unwrap(),
            "the window has room: plan now"
        );
    }
}
