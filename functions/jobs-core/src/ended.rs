//! The one path every job end takes: the last chunk's commit (worker), the cancel of a
//! queued job and a plan that could not be enqueued (API). Each of those writes sets the
//! job's `end_pending` in the same update that gives it its final status; [`on_job_end`]
//! does what follows an end and then removes the mark. A crash in between leaves the mark,
//! and whoever next handles the job (a redelivered message, a retried request) runs the
//! hook again: every step is idempotent.

use crate::audit::{Audit, AuditLog};
use crate::error::StoreError;
use crate::ports::JobEnds;
use crate::record::JobRecord;

/// Runs the end-of-job steps for `job` if it has ended and they are still pending: the
/// audit trail's `ended` entry, then the mark's removal. Errors leave the mark in place.
pub async fn on_job_end<A: AuditLog, E: JobEnds>(audit: &Audit<A>, ends: &E, job: &JobRecord) -> Result<(), StoreError> {
    if !job.status.is_terminal() || job.end_pending.is_none() {
        return Ok(());
    }
    audit.ended(job).await?;
    ends.end_handled(&job.id).await?;
    tracing::info!(job_id = %job.id, tenant = %job.tenant, status = job.status.key(), "job end handled");
    Ok(())
}
