//! The one path every job end takes: the last chunk's commit (worker), the cancel of a
//! queued job and a plan that could not be enqueued (API). Each of those writes sets the
//! job's `end_pending` in the same update that gives it its final status;
//! [`Observers::on_job_end`] does what follows an end and then removes the mark. A crash
//! in between leaves the mark, and whoever next handles the job (a redelivered message, a
//! retried request) runs the hook again: every step is idempotent or carries a stable id.

use serde::Serialize;

use crate::domain::audit::Audit;
use crate::domain::job::{JobStatus, JobType};
use crate::domain::limits::wake_first;
use crate::domain::record::JobRecord;
use crate::error::StoreError;
use crate::ports::{AuditLog, EventBus, JobEnds, MetricsStore, UsageStore, WorkQueue};

/// The `source` of every event the service puts on its bus.
pub const EVENT_SOURCE: &str = "jobs";

/// The event announcing a job's end to other systems: EventBridge `detail`, with
/// `detail-type` from [`JobEndEvent::detail_type`]. Delivery is at least once; `event_id`
/// (`<job id>:<final status>`) is the same on every delivery, so consumers drop repeats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobEndEvent {
    pub event_id: String,
    pub id: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub user: String,
    pub status: JobStatus,
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    /// The job whose items this one retries.
    pub retry_of: Option<String>,
}

impl JobEndEvent {
    pub fn of(job: &JobRecord) -> JobEndEvent {
        JobEndEvent {
            event_id: format!("{}:{}", job.id, job.status.key()),
            id: job.id.clone(),
            tenant: job.tenant.clone(),
            job_type: job.job_type,
            user: job.user.clone(),
            status: job.status,
            total: job.total,
            succeeded: job.succeeded,
            failed: job.failed,
            cancelled: job.cancelled,
            created_at: job.created_at.clone(),
            started_at: job.started_at.clone(),
            completed_at: job.completed_at.clone(),
            retry_of: job.retry_of.clone(),
        }
    }

    /// `Job Completed`, `Job Completed With Errors`, `Job Failed` or `Job Cancelled`.
    pub fn detail_type(&self) -> &'static str {
        match self.status {
            JobStatus::CompletedWithErrors => "Job Completed With Errors",
            JobStatus::Failed => "Job Failed",
            JobStatus::Cancelled => "Job Cancelled",
            _ => "Job Completed",
        }
    }
}

/// How long a job's end may stay pending before [`Observers::sweep`] runs its hook: the
/// write that ends a job is followed by the hook within a second, so this only catches the
/// ends whose hook failed and that have no message to run it again.
pub const SWEEP_AFTER_SECONDS: i64 = 120;
/// How long a claim on a job's end holds ([`JobEnds::claim_end`]): the steps take well
/// under a second; a claim this old belongs to a caller that failed or crashed. Shorter
/// than [`SWEEP_AFTER_SECONDS`], so the sweep always finds the claim stale.
pub const CLAIM_SECONDS: i64 = 60;
/// Pending ends read per `Query`, and at most per `ends_pending` shard and sweep.
const SWEEP_PAGE: u32 = 25;
const MAX_SWEPT_PER_SHARD: usize = 100;

/// What the service tells the world about jobs: the audit trail and the event bus.
pub struct Observers<A, B> {
    audit: Audit<A>,
    bus: B,
}

impl<A: AuditLog, B: EventBus> Observers<A, B> {
    pub fn new(audit: Audit<A>, bus: B) -> Observers<A, B> {
        Observers { audit, bus }
    }

    pub fn audit(&self) -> &Audit<A> {
        &self.audit
    }

    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// Runs the end-of-job steps for `job` if it has ended and they are still pending:
    /// claims them ([`JobEnds::claim_end`]), then the audit trail's `ended` entry (one per
    /// job: a repeat overwrites it), the event on the bus (at least once, one `event_id`),
    /// the job metrics, its tenant's usage (and a running slot it freed to the job first
    /// in line), and the mark's removal. When two callers meet one end at once (the
    /// API's cancel of a queued job and the worker's plan message, say), one claims it and
    /// the other leaves it, so the end is counted once. An error leaves the mark, and its
    /// claim goes stale after [`CLAIM_SECONDS`] for the next caller (a redelivery, the
    /// sweep); only a crash between the metrics and the mark's removal counts an end twice.
    pub async fn on_job_end<E: JobEnds + MetricsStore + UsageStore, Q: WorkQueue>(
        &self,
        ends: &E,
        queue: &Q,
        job: &JobRecord,
    ) -> Result<(), StoreError> {
        let Some(mark) = job
            .end_pending
            .as_deref()
            .filter(|_| job.status.is_terminal())
        else {
            return Ok(());
        };
        let now = crate::clock::now();
        let (at, stale_before) = (
            crate::clock::format(now),
            crate::clock::format(now - time::Duration::seconds(CLAIM_SECONDS)),
        );
        if !ends.claim_end(&job.id, mark, &at, &stale_before).await? {
            tracing::info!(job_id = %job.id, tenant = %job.tenant, "job end handled by another caller");
            return Ok(());
        }
        let steps = async {
            self.audit.ended(job).await?;
            self.bus.put_event(&JobEndEvent::of(job)).await?;
            ends.add_metrics(&crate::domain::metrics::on_ended(
                job,
                self.audit.retention_days(),
            ))
            .await?;
            // The job's place in its tenant's limits; a running slot it freed goes to the
            // job first in line (woken again by a retried hook: a duplicate plan).
            ends.release_usage(job).await?;
            if job.admitted {
                wake_first(ends, queue, &job.tenant, job.job_type, 1).await?;
            }
            ends.end_handled(&job.id).await
        };
        if let Err(err) = steps.await {
            if let Err(release) = ends.release_end(&job.id, &at).await {
                tracing::warn!(job_id = %job.id, tenant = %job.tenant, error = %release, "claim on a job end left to go stale");
            }
            return Err(err);
        }
        tracing::info!(job_id = %job.id, tenant = %job.tenant, status = job.status.key(), "job end handled");
        Ok(())
    }

    /// Runs the hook of the jobs whose end has been pending for over
    /// [`SWEEP_AFTER_SECONDS`] at `now` (e.g. a job the API failed whose hook failed too),
    /// at most 100 per shard of the `ends_pending` index. Returns how many it finished; a
    /// job whose hook fails again stays for the next sweep, and the sweep reads on past it.
    pub async fn sweep<S: crate::ports::JobStore, Q: WorkQueue>(
        &self,
        store: &S,
        queue: &Q,
        now: time::OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let before = crate::clock::format(now - time::Duration::seconds(SWEEP_AFTER_SECONDS));
        let mut handled = 0;
        for shard in 0..crate::domain::record::ACTIVE_SHARDS {
            let (mut read, mut start) = (0, None);
            loop {
                let (ids, last) = store
                    .pending_ends(shard, &before, start, SWEEP_PAGE)
                    .await?;
                read += ids.len();
                for id in ids {
                    let Some(job) = store.get(&id).await? else {
                        continue;
                    };
                    match self.on_job_end(store, queue, &job).await {
                        Ok(()) => handled += 1,
                        Err(err) => {
                            tracing::error!(job_id = %id, tenant = %job.tenant, error = %err, "a pending job end failed again")
                        }
                    }
                }
                match last {
                    Some(key) if read < MAX_SWEPT_PER_SHARD => start = Some(key),
                    _ => break,
                }
            }
        }
        Ok(handled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::NewJob;

    #[test]
    fn the_event_names_the_end_and_its_id_is_stable() {
        let mut job = JobRecord::new(NewJob {
            id: "01JDQ0000000000000000000A1".into(),
            job_type: JobType::BulkMessageSending,
            tenant: "acme".into(),
            user: "alice".into(),
            created_at: "2026-11-30T10:00:00.000Z".into(),
            month: "2026-11".into(),
            total: 3,
            summary: serde_json::json!({}),
            input_key: "inputs/acme/x.json".into(),
            expires_at: 0,
        });
        job.status = JobStatus::CompletedWithErrors;
        (job.succeeded, job.failed) = (2, 1);
        let event = JobEndEvent::of(&job);
        assert_eq!(
            (event.event_id.as_str(), event.detail_type()),
            (
                "01JDQ0000000000000000000A1:completed_with_errors",
                "Job Completed With Errors"
            )
        );
        assert_eq!(
            JobEndEvent::of(&job),
            event,
            "the same id on every delivery"
        );
        let detail = serde_json::to_value(&event).unwrap();
        assert_eq!(
            (
                detail["type"].as_str(),
                detail["tenant"].as_str(),
                detail["succeeded"].as_u64()
            ),
            (Some("bulk_message_sending"), Some("acme"), Some(2))
        );
        for (status, name) in [
            (JobStatus::Completed, "Job Completed"),
            (JobStatus::Failed, "Job Failed"),
            (JobStatus::Cancelled, "Job Cancelled"),
        ] {
            job.status = status;
            assert_eq!(JobEndEvent::of(&job).detail_type(), name);
        }
    }
}
