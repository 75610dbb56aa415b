//! The workers' side of the Jobs table ([`ProgressStore`]): begin a job, commit a chunk's
//! outcomes exactly once (ledger item + counters in one transaction, conditional on the
//! ledger's `settled` bit set), complete a job exactly once.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{
    DynamoJobStore, Item, condition_failed_at, conditional, from_item, job_key, n,
    refused_or_conflicted, s,
};
use crate::domain::job::JobStatus;
use crate::domain::record::{JobRecord, MAX_ERROR_SAMPLE, chunk_sk, job_pk};
use crate::domain::window::Passed;
use crate::error::StoreError;
use crate::ports::{ChunkCommit, ChunkLedger, ChunkOutcomes, ItemFailure, ProgressStore, Settled};

/// The highest chunk number a sort key can hold (8 digits).
const LAST_CHUNK: u64 = 99_999_999;

/// A ledger item's outcomes; a number that does not fit is a corrupt item.
fn chunk_outcomes(item: &Item) -> Result<ChunkOutcomes, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("ledger item: {what}"));
    let number = |v: &AttributeValue| v.as_n().ok().and_then(|n| n.parse::<u32>().ok());
    let chunk = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| sk.strip_prefix("CHUNK#"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| corrupt("sk"))?;
    let settled = match item.get("settled") {
        Some(AttributeValue::B(bytes)) => Settled::from_bytes(bytes.clone().into_inner()),
        _ => Settled::default(),
    };
    let failures = match item.get("failures") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|f| {
                let m = f.as_m().map_err(|_| corrupt("failures"))?;
                Ok(ItemFailure {
                    position: m
                        .get("position")
                        .and_then(number)
                        .ok_or_else(|| corrupt("failures.position"))?,
                    reason: m
                        .get("reason")
                        .and_then(|r| r.as_s().ok())
                        .cloned()
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?,
        _ => Vec::new(),
    };
    let cancelled = match item.get("cancelled_items") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|p| number(p).ok_or_else(|| corrupt("cancelled_items")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok(ChunkOutcomes {
        chunk,
        settled,
        failures,
        cancelled,
    })
}

/// A chunk's ledger from its item (`settled`, `done`, `passed_to`, `woke`).
fn ledger_of(item: &HashMap<String, AttributeValue>) -> ChunkLedger {
    let passed = item
        .get("passed_to")
        .and_then(|p| p.as_s().ok())
        .and_then(|p| Passed::decode(p));
    let woke = match item.get("woke") {
        Some(AttributeValue::Ss(ids)) => ids.clone(),
        _ => Vec::new(),
    };
    match item.get("settled") {
        Some(AttributeValue::B(bytes)) => ChunkLedger {
            settled: Settled::from_bytes(bytes.clone().into_inner()),
            done: matches!(item.get("done"), Some(AttributeValue::Bool(true))),
            passed,
            woke,
        },
        // A ledger item from before partial commits: written once, when the chunk settled.
        _ => ChunkLedger {
            settled: Settled::default(),
            done: true,
            passed,
            woke,
        },
    }
}

impl ProgressStore for DynamoJobStore {
    async fn chunk_outcomes(
        &self,
        id: &str,
        from: u64,
        limit: u32,
    ) -> Result<(Vec<ChunkOutcomes>, bool), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :last")
            .projection_expression("#sk, #settled, #done, #failures, #cancelled_items")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_names("#settled", "settled")
            .expression_attribute_names("#done", "done")
            .expression_attribute_names("#failures", "failures")
            .expression_attribute_names("#cancelled_items", "cancelled_items")
            .expression_attribute_values(":pk", s(job_pk(id)))
            .expression_attribute_values(":from", s(chunk_sk(from)))
            .expression_attribute_values(":last", s(chunk_sk(LAST_CHUNK)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX).max(1))
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        let chunks = out
            .items
            .unwrap_or_default()
            .iter()
            .map(chunk_outcomes)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((chunks, out.last_evaluated_key.is_some()))
    }

    async fn load(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.job(id, true).await
    }

    async fn load_many(&self, ids: &[String]) -> Result<Vec<JobRecord>, StoreError> {
        self.batch_get(ids.iter().map(|id| job_key(id)).collect(), true)
            .await
    }

    async fn begin(
        &self,
        id: &str,
        total: u64,
        chunks_total: u64,
        at: &str,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #st = :running, #total = :total, #chunks = :chunks, #started = if_not_exists(#started, :at)")
            .condition_expression("#st IN (:queued, :running)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#total", "total")
            .expression_attribute_names("#chunks", "chunks_total")
            .expression_attribute_names("#started", "started_at")
            .expression_attribute_values(":running", s(JobStatus::Running.key()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.key()))
            .expression_attribute_values(":total", AttributeValue::N(total.to_string()))
            .expression_attribute_values(":chunks", AttributeValue::N(chunks_total.to_string()))
            .expression_attribute_values(":at", s(at));
        conditional(request.send().await.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn lease_plan(&self, id: &str, until: i64, now: i64) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #lease = :until")
            .condition_expression(
                "#st = :queued AND (attribute_not_exists(#lease) OR #lease < :now)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#lease", "plan_lease")
            .expression_attribute_values(":queued", s(JobStatus::Queued.key()))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        conditional(request.send().await.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn plan_paused(&self, id: &str, rows: u64) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #rows = :rows REMOVE #lease")
            .condition_expression("#st = :queued")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#rows", "planned_rows")
            .expression_attribute_names("#lease", "plan_lease")
            .expression_attribute_values(":queued", s(JobStatus::Queued.key()))
            .expression_attribute_values(":rows", AttributeValue::N(rows.to_string()));
        // A job cancelled meanwhile keeps its status; its next plan message ends it.
        conditional(request.send().await.map(|_| ()), "dynamodb:UpdateItem").map(drop)
    }

    async fn chunk_ledger(&self, id: &str, chunk: u64) -> Result<Option<ChunkLedger>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(id)))
            .key("sk", s(chunk_sk(chunk)))
            .projection_expression("#settled, #done, #passed, #woke")
            .expression_attribute_names("#settled", "settled")
            .expression_attribute_names("#done", "done")
            .expression_attribute_names("#passed", "passed_to")
            .expression_attribute_names("#woke", "woke")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        Ok(out.item.as_ref().map(ledger_of))
    }

    async fn chunk_start(
        &self,
        id: &str,
        chunk: u64,
    ) -> Result<(Option<JobRecord>, Option<ChunkLedger>), StoreError> {
        let ledger_key = HashMap::from([
            ("pk".to_string(), s(job_pk(id))),
            ("sk".to_string(), s(chunk_sk(chunk))),
        ]);
        let (mut job, mut ledger) = (None, None);
        for item in self
            .batch_get_items(vec![job_key(id), ledger_key], true)
            .await?
        {
            if item.get("sk").and_then(|sk| sk.as_s().ok()) == Some(&chunk_sk(chunk)) {
                ledger = Some(ledger_of(&item));
            } else {
                job = Some(from_item(item)?);
            }
        }
        Ok((job, ledger))
    }

    async fn commit_chunk(
        &self,
        id: &str,
        chunk: u64,
        commit: &ChunkCommit,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let tally = &commit.tally;
        // Every attribute goes through a name placeholder: several (`total`, ...) are
        // DynamoDB reserved words.
        let mut ledger_set =
            "SET #settled = :after, #done = :done, #expires = :expires".to_string();
        let mut ledger = Update::builder()
            .table_name(&self.table)
            .key("pk", s(job_pk(id)))
            .key("sk", s(chunk_sk(chunk)))
            .expression_attribute_names("#settled", "settled")
            .expression_attribute_names("#done", "done")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#succeeded", "succeeded")
            .expression_attribute_names("#failed", "failed")
            .expression_attribute_names("#cancelled", "cancelled")
            .expression_attribute_values(
                ":after",
                AttributeValue::B(Blob::new(commit.after.as_bytes())),
            )
            .expression_attribute_values(":done", AttributeValue::Bool(commit.done))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .expression_attribute_values(":s", n(tally.succeeded))
            .expression_attribute_values(":f", n(tally.failed))
            .expression_attribute_values(":c", n(tally.cancelled));
        ledger = match &commit.before {
            None => ledger.condition_expression("attribute_not_exists(pk)"),
            Some(before) => ledger
                .condition_expression("#settled = :before")
                .expression_attribute_values(
                    ":before",
                    AttributeValue::B(Blob::new(before.as_bytes())),
                ),
        };
        if !commit.failures.is_empty() {
            let failures: Vec<AttributeValue> = commit
                .failures
                .iter()
                .map(|f| {
                    AttributeValue::M(HashMap::from([
                        ("position".to_string(), n(u64::from(f.position))),
                        ("reason".to_string(), s(&f.reason)),
                    ]))
                })
                .collect();
            ledger_set
                .push_str(", #failures = list_append(if_not_exists(#failures, :none), :failures)");
            ledger = ledger
                .expression_attribute_names("#failures", "failures")
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":failures", AttributeValue::L(failures));
        }
        if !commit.cancelled.is_empty() {
            ledger_set.push_str(", #cancelled_items = list_append(if_not_exists(#cancelled_items, :none), :cancelled_items)");
            ledger = ledger
                .expression_attribute_names("#cancelled_items", "cancelled_items")
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(
                    ":cancelled_items",
                    AttributeValue::L(commit.cancelled.iter().map(|p| n(u64::from(*p))).collect()),
                );
        }
        if let Some((_, pass)) = &commit.pass {
            ledger_set.push_str(", #passed = :passed");
            ledger = ledger
                .expression_attribute_names("#passed", "passed_to")
                .expression_attribute_values(":passed", s(pass.to.encode()));
            if !pass.woken().is_empty() {
                ledger_set.push_str(", #woke = :woke");
                ledger = ledger
                    .expression_attribute_names("#woke", "woke")
                    .expression_attribute_values(
                        ":woke",
                        AttributeValue::Ss(pass.woken().to_vec()),
                    );
            }
        }
        let ledger = ledger
            .update_expression(format!(
                "{ledger_set} ADD #succeeded :s, #failed :f, #cancelled :c"
            ))
            .build()
            .map_err(|e| StoreError::encode("an Update", e))?;

        let mut job_add = "ADD #succeeded :s, #failed :f, #cancelled :c".to_string();
        let mut job_set = Vec::new();
        let mut job = Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#succeeded", "succeeded")
            .expression_attribute_names("#failed", "failed")
            .expression_attribute_names("#cancelled", "cancelled")
            .expression_attribute_values(":s", n(tally.succeeded))
            .expression_attribute_values(":f", n(tally.failed))
            .expression_attribute_values(":c", n(tally.cancelled + commit.chain_rest.items));
        if commit.done {
            job_add.push_str(", #chunks_done :chunks");
            job = job
                .expression_attribute_names("#chunks_done", "chunks_done")
                .expression_attribute_values(":chunks", n(1 + commit.chain_rest.chunks));
        }
        if !commit.errors.is_empty() {
            let sample: Vec<AttributeValue> = commit
                .errors
                .iter()
                .take(MAX_ERROR_SAMPLE)
                .map(|e| {
                    AttributeValue::M(HashMap::from([
                        ("item".to_string(), s(&e.item)),
                        ("reason".to_string(), s(&e.reason)),
                    ]))
                })
                .collect();
            job_set.push("#errors = list_append(if_not_exists(#errors, :none), :errors)");
            job = job
                .expression_attribute_names("#errors", "errors")
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":errors", AttributeValue::L(sample));
        }
        if let Some(paced_at) = &commit.paced_at {
            job_set.push("#paced = :paced");
            job = job
                .expression_attribute_names("#paced", "paced_at")
                .expression_attribute_values(":paced", s(paced_at));
        }
        // The pass's changes to this job's `held` go in this update; another job's, and the
        // window's, are more items of the transaction.
        let mut others = Vec::new();
        let mut job_remove = None;
        if let Some((key, pass)) = &commit.pass {
            match &pass.take {
                Some((job_id, head)) if job_id == id => {
                    job_remove = Some("#held.#take");
                    job = job
                        .condition_expression(
                            "attribute_exists(pk) AND attribute_exists(#held.#take)",
                        )
                        .expression_attribute_names("#held", "held")
                        .expression_attribute_names("#take", head.to_string());
                }
                Some((job_id, head)) => {
                    others.push(super::window::take(&self.table, job_id, &[*head])?);
                }
                None => {}
            }
            if let Some(head) = pass.hold {
                job_set.push("#held.#hold = :true");
                job = job
                    .expression_attribute_names("#held", "held")
                    .expression_attribute_names("#hold", head.to_string())
                    .expression_attribute_values(":true", AttributeValue::Bool(true));
            }
            if let Some(change) = &pass.window {
                others.push(super::window::window_update(&self.table, key, change)?);
            }
        }
        let mut expression = if job_set.is_empty() {
            job_add
        } else {
            format!("{job_add} SET {}", job_set.join(", "))
        };
        if let Some(path) = job_remove {
            expression.push_str(&format!(" REMOVE {path}"));
        }
        let job = job
            .update_expression(expression)
            .build()
            .map_err(|e| StoreError::encode("an Update", e))?;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(ledger).build())
            .transact_items(TransactWriteItem::builder().update(job).build());
        for item in others {
            request = request.transact_items(item);
        }
        match request.send().await.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(true),
            // The first item is the ledger entry: another delivery committed to it since it
            // was read. Any other refusal is the slot's pass (the job moved on, or the window
            // changed): the caller reads again either way.
            Err(error) if condition_failed_at(&error, 0) => Ok(false),
            Err(error) if commit.pass.is_some() && refused_or_conflicted(&error) => Ok(false),
            Err(error) => Err(StoreError::aws("dynamodb:TransactWriteItems", error)),
        }
    }

    async fn complete(&self, id: &str, status: JobStatus, at: &str) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(id)))
            .update_expression("SET #st = :final, #completed = :at, #pending = :at, #ending = :shard REMOVE #active")
            .expression_attribute_names("#active", "active")
            .expression_attribute_names("#ending", "ending")
            .expression_attribute_values(":shard", s(crate::domain::record::end_shard(id)))
            .condition_expression("#st = :running AND #done = #chunks")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#completed", "completed_at")
            .expression_attribute_names("#pending", "end_pending")
            .expression_attribute_names("#done", "chunks_done")
            .expression_attribute_names("#chunks", "chunks_total")
            .expression_attribute_values(":final", s(status.key()))
            .expression_attribute_values(":running", s(JobStatus::Running.key()))
            .expression_attribute_values(":at", s(at));
        conditional(request.send().await.map(|_| ()), "dynamodb:UpdateItem")
    }
}

#[cfg(test)]
mod tests;
