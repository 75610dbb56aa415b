//! Running a chunk: its unsettled items, [`Processor::STEP`] at a time. An item that meets
//! throttling or a transient failure is retried inside the invocation after a back-off;
//! the items that settled are committed and never run again. A running chunk commits at
//! most every checkpoint interval, stops at a checkpoint when its job is cancelled, and
//! hands itself on as a continuation before the invocation's deadline.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::commit::{ChunkProgress, Settle};
use super::{DEADLINE_MARGIN, Delivery, Disposition, Worker, near, valid_job_id};
use crate::clock;
use crate::domain::chunk::Settled;
use crate::domain::job::JobStatus;
use crate::domain::record::{JobRecord, MAX_ERROR_SAMPLE};
use crate::ports::{ProgressStore, WorkMessage, WorkQueue, WorkerPorts};
use crate::worker::{ItemOutcome, Processor, WorkError};

/// The first wait before retrying items that all failed; it doubles up to [`MAX_BACKOFF`]
/// and starts again once an item settles.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How a chunk's run ended.
enum RunEnd {
    Settled,
    HandedOn,
}

impl<P: Processor, W: WorkerPorts> Worker<P, W> {
    pub(super) async fn chunk(
        &self,
        job_id: &str,
        tenant: &str,
        chunk: u64,
        items: Vec<Value>,
        delivery: Delivery,
    ) -> Result<Disposition, WorkError> {
        if !valid_job_id(job_id) {
            return Ok(Disposition::Ack);
        }
        // The job and the chunk's ledger in one request.
        let (job, ledger) = self.store.chunk_start(job_id, chunk).await?;
        let Some(job) = Self::job_of(job, tenant) else {
            return Ok(Disposition::Ack);
        };
        if job.chunks_total.is_none_or(|total| chunk >= total) {
            tracing::warn!("chunk number outside the job's plan; acknowledged");
            return Ok(Disposition::Ack);
        }
        if ledger.as_ref().is_some_and(|l| l.done) {
            tracing::info!("chunk already settled (duplicate delivery)");
            self.pass_on(&job, chunk).await?;
            self.finish_if_done(job_id).await?;
            return Ok(Disposition::Ack);
        }
        let settled = ledger.map(|l| l.settled);
        let unsettled = items
            .len()
            .saturating_sub(settled.as_ref().map_or(0, Settled::len))
            as u64;
        // Chunks come only from this worker's plan (the queue accepts nothing else, by IAM), so
        // more items than the job has unsettled is a forged or corrupt message: counting it
        // would push progress past 100 %.
        if job.succeeded + job.failed + job.cancelled + unsettled > job.total {
            tracing::warn!(
                items = items.len(),
                "chunk holds more items than the job has unsettled; acknowledged"
            );
            return Ok(Disposition::Ack);
        }
        let mut progress = ChunkProgress {
            settled: settled.clone().unwrap_or_default(),
            before: settled,
            uncommitted: Vec::new(),
            sample_room: MAX_ERROR_SAMPLE.saturating_sub(job.errors.len()),
            paced_at: None,
            items: items.len(),
            last_commit: Instant::now(),
            started: Instant::now(),
            passed: None,
            cancelling: false,
        };
        let end = if job.cancel_requested_at.is_some() || job.status == JobStatus::Cancelled {
            self.cancel_rest(&job, chunk, &mut progress, &[]).await?;
            RunEnd::Settled
        } else {
            self.run(&job, chunk, &items, &mut progress, delivery)
                .await?
        };
        if let RunEnd::HandedOn = end {
            return Ok(Disposition::Ack);
        }
        match &progress.passed {
            Some(decided) => self.send_passed(decided).await?,
            None => self.pass_on(&job, chunk).await?,
        }
        self.finish_if_done(job_id).await?;
        Ok(Disposition::Ack)
    }

    /// Works through a chunk's unsettled items, [`Processor::STEP`] at a time, retrying the
    /// ones that fail for throttling or a transient reason, committing at most every
    /// checkpoint interval and handing the chunk on before the deadline.
    async fn run(
        &self,
        job: &JobRecord,
        chunk: u64,
        raw: &[Value],
        progress: &mut ChunkProgress,
        delivery: Delivery,
    ) -> Result<RunEnd, WorkError> {
        let params = match self.params(job).await {
            Ok(params) => params,
            Err(WorkError::Rejected(reason)) => {
                tracing::error!(%reason, "chunk cannot run; its items fail");
                for position in progress.settled.missing(raw.len()) {
                    progress.settle(position, Settle::Failed(reason.clone()));
                }
                self.commit(job, chunk, progress, raw).await?;
                return Ok(RunEnd::Settled);
            }
            Err(err) => return Err(err),
        };
        let last_delivery = delivery.attempt >= self.settings.max_receive_count;
        let mut retry_since = delivery.retry_since;
        let mut backoff = FIRST_BACKOFF;
        let mut pending: VecDeque<usize> = progress.settled.missing(raw.len()).into();
        while !pending.is_empty() {
            if near(delivery.deadline) {
                self.commit(job, chunk, progress, raw).await?;
                let message = WorkMessage::Chunk {
                    job_id: job.id.clone(),
                    tenant: job.tenant.clone(),
                    chunk,
                    items: raw.to_vec(),
                    retry_since: retry_since.map(clock::format),
                };
                self.queue.send(P::JOB_TYPE, &message).await?;
                tracing::info!(unsettled = pending.len(), "deadline near; chunk handed on");
                return Ok(RunEnd::HandedOn);
            }
            let step: Vec<usize> = pending.drain(..P::STEP.clamp(1, pending.len())).collect();
            let mut positions = Vec::with_capacity(step.len());
            let mut items = Vec::with_capacity(step.len());
            for position in step {
                if let Some(reason) = crate::domain::file::invalid_reason(&raw[position]) {
                    progress.settle(position, Settle::Failed(reason.to_string()));
                    continue;
                }
                match serde_json::from_value::<P::Item>(raw[position].clone()) {
                    Ok(item) => {
                        positions.push(position);
                        items.push(item);
                    }
                    Err(err) => {
                        progress.settle(position, Settle::Failed(format!("unreadable item: {err}")))
                    }
                }
            }
            let mut results = if items.is_empty() {
                Vec::new()
            } else {
                self.processor.process(job, &params, &items).await
            };
            if results.len() != items.len() {
                let reason = format!("{} outcomes for {} items", results.len(), items.len());
                results = vec![Err(WorkError::Rejected(reason)); items.len()];
            }
            let mut progressed = false;
            let mut again = Vec::new();
            let mut last_reason = String::new();
            for (position, result) in positions.into_iter().zip(results) {
                match result {
                    Ok(ItemOutcome::Succeeded) => progress.settle(position, Settle::Succeeded),
                    Ok(ItemOutcome::Rejected(reason)) | Err(WorkError::Rejected(reason)) => {
                        progress.settle(position, Settle::Failed(reason))
                    }
                    Err(WorkError::Throttled(reason)) => {
                        progress.paced_at = Some(clock::format(clock::now()));
                        again.push((position, true));
                        last_reason = reason;
                        continue;
                    }
                    Err(WorkError::Transient(reason)) => {
                        again.push((position, false));
                        last_reason = reason;
                        continue;
                    }
                }
                progressed = true;
            }
            if progressed {
                retry_since = None;
                backoff = FIRST_BACKOFF;
            }
            if !again.is_empty() {
                let since = *retry_since.get_or_insert_with(clock::now);
                let spent = clock::now() - since >= self.settings.retry_budget;
                for (position, throttled) in again {
                    if spent || (last_delivery && !throttled) {
                        let why = if spent {
                            format!(
                                "no progress for {} s",
                                (clock::now() - since).whole_seconds()
                            )
                        } else {
                            format!("delivery {}", delivery.attempt)
                        };
                        progress.settle(
                            position,
                            Settle::Failed(format!("gave up after {why}: {last_reason}")),
                        );
                    } else {
                        pending.push_back(position);
                    }
                }
                if !progressed && !pending.is_empty() {
                    let room = delivery.deadline.map_or(backoff, |d| {
                        d.saturating_duration_since(Instant::now())
                            .saturating_sub(DEADLINE_MARGIN)
                    });
                    tokio::time::sleep(backoff.min(room)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            if !pending.is_empty()
                && progress.last_commit.elapsed() >= self.settings.checkpoint_interval
            {
                self.commit(job, chunk, progress, raw).await?;
                pending.retain(|&position| !progress.settled.contains(position));
                // The job may have been cancelled meanwhile: a long chunk stops at a checkpoint.
                if let Some(now) = self.store.load(&job.id).await?
                    && now.cancel_requested_at.is_some()
                {
                    let rest: Vec<usize> = pending.drain(..).collect();
                    self.cancel_rest(job, chunk, progress, raw).await?;
                    tracing::info!(
                        cancelled = rest.len(),
                        "job cancelled; chunk stopped at a checkpoint"
                    );
                }
            }
        }
        self.commit(job, chunk, progress, raw).await?;
        Ok(RunEnd::Settled)
    }

    /// Settles every item still open as cancelled, and commits; the commit that settles
    /// the chunk ends its chain ([`crate::domain::chunk::ChunkCommit::chain_rest`]).
    pub(super) async fn cancel_rest(
        &self,
        job: &JobRecord,
        chunk: u64,
        progress: &mut ChunkProgress,
        raw: &[Value],
    ) -> Result<(), WorkError> {
        progress.cancelling = true;
        for position in progress.settled.missing(progress.items) {
            progress.settle(position, Settle::Cancelled);
        }
        self.commit(job, chunk, progress, raw).await
    }
}
