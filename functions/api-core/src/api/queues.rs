//! `GET /queues` (admins): per job type, the jobs waiting and running, the chunks they still
//! have to settle, the age of the oldest waiting job, and the work queue's and dead-letter
//! queue's depths. With windowed releases the SQS depth no longer shows a type's backlog,
//! so the jobs themselves are counted, from the sparse `active_by_type` index (no scan).

use serde::Serialize;

use super::JobsApi;
use jobs_core::clock;
use jobs_core::concurrency::in_order;
use jobs_core::domain::job::{JobStatus, JobType};
use jobs_core::domain::record::{ACTIVE_SHARDS, active_partition};
use jobs_core::error::ApiError;
use jobs_core::ports::{ActiveJob, JobStore, QueueDepths, ServicePorts, WorkQueue};

/// Active jobs counted per type (per shard: a quarter); more are reported as `counts_capped`.
pub const MAX_COUNTED: u32 = 1_000;
/// Running jobs whose remaining chunks are read (oldest first); more make the figure a
/// lower bound (`chunks_remaining_exact` false).
pub const MAX_CHUNK_READS: usize = 25;

#[derive(Debug, Serialize)]
pub struct TypeHealth {
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub type_label: &'static str,
    pub queued: u64,
    pub running: u64,
    /// More than [`MAX_COUNTED`] jobs are active: `queued` and `running` are lower bounds.
    pub counts_capped: bool,
    pub oldest_queued_at: Option<String>,
    pub oldest_queued_age_seconds: Option<i64>,
    /// Chunks of the running jobs not settled yet (released or not).
    pub chunks_remaining: u64,
    pub chunks_remaining_exact: bool,
    #[serde(flatten)]
    pub depths: QueueDepths,
}

#[derive(Debug, Serialize)]
pub struct QueueHealth {
    pub types: Vec<TypeHealth>,
}

impl<P: ServicePorts> JobsApi<P> {
    /// Every job type's health (platform admins: the role table in
    /// `jobs_core::domain::auth`).
    pub async fn queue_health(&self) -> Result<QueueHealth, ApiError> {
        let types = in_order(
            JobType::ALL.iter().map(|t| self.type_health(*t)).collect(),
            JobType::ALL.len(),
        )
        .await;
        Ok(QueueHealth {
            types: types.into_iter().collect::<Result<_, _>>()?,
        })
    }

    async fn type_health(&self, job_type: JobType) -> Result<TypeHealth, ApiError> {
        let partitions: Vec<String> = (0..ACTIVE_SHARDS)
            .map(|s| active_partition(job_type, s))
            .collect();
        let per_shard = MAX_COUNTED / ACTIVE_SHARDS;
        let reads = in_order(
            partitions
                .iter()
                .map(|p| self.store.active_jobs(p, per_shard))
                .collect(),
            partitions.len(),
        )
        .await;
        let mut active: Vec<ActiveJob> = Vec::new();
        let mut counts_capped = false;
        for read in reads {
            let entries = read?;
            counts_capped |= entries.len() as u32 >= per_shard;
            active.extend(entries);
        }
        active.sort_by(|a, b| a.list_sk.cmp(&b.list_sk));
        let queued = active
            .iter()
            .filter(|j| j.status == JobStatus::Queued)
            .count() as u64;
        let running: Vec<String> = active
            .iter()
            .filter(|j| j.status == JobStatus::Running)
            .map(|j| j.id.clone())
            .collect();
        let oldest_queued_at = active
            .iter()
            .find(|j| j.status == JobStatus::Queued)
            .and_then(|j| j.list_sk.split('#').next().map(str::to_string));
        let oldest_queued_age_seconds = oldest_queued_at
            .as_deref()
            .and_then(clock::parse)
            .map(|at| (clock::now() - at).whole_seconds().max(0));
        let read = &running[..running.len().min(MAX_CHUNK_READS)];
        let jobs = if read.is_empty() {
            Vec::new()
        } else {
            self.store.get_many(read).await?
        };
        let chunks_remaining = jobs
            .iter()
            .map(|j| j.chunks_total.unwrap_or(0).saturating_sub(j.chunks_done))
            .sum();
        let depths = self.queue.depths(job_type).await?;
        Ok(TypeHealth {
            job_type,
            type_label: job_type.label(),
            queued,
            running: running.len() as u64,
            counts_capped,
            oldest_queued_at,
            oldest_queued_age_seconds,
            chunks_remaining,
            chunks_remaining_exact: running.len() <= MAX_CHUNK_READS && !counts_capped,
            depths,
        })
    }
}
