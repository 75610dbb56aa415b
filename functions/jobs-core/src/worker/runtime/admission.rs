//! Tenant limits at the plan ([`crate::domain::limits`]): a counted job starts only with a
//! running slot of its tenant and type; otherwise it joins its tenant's line and its plan
//! message is acknowledged. Joining is followed by one more attempt, so a slot freed
//! between the refusal and the join is not missed: the job that ends decrements the count
//! and then reads the line, the joining job writes the line and then reads the count, so
//! one of the two sees the other.

use super::Worker;
use crate::domain::job::JobStatus;
use crate::domain::limits::{Admission, TenantLimits, wake_first};
use crate::domain::record::JobRecord;
use crate::ports::{LimitsStore, ProgressStore, UsageStore, WorkerPorts};
use crate::worker::{Processor, WorkError};

/// Attempts at an admission whose job keeps changing under concurrent deliveries.
const ATTEMPTS: usize = 4;

impl<P: Processor, W: WorkerPorts> Worker<P, W> {
    async fn limits_of(&self, tenant: &str) -> Result<TenantLimits, WorkError> {
        Ok(self
            .store
            .get_limits(tenant)
            .await?
            .map_or(self.settings.default_limits, |record| record.limits))
    }

    /// Whether `job` may be planned now: true once it holds a running slot, is not counted,
    /// or is no longer queued (the plan's own conditions then decide); false when it waits
    /// in line (its plan is woken later) or has gone.
    pub(super) async fn admitted(&self, job: &JobRecord) -> Result<bool, WorkError> {
        if !job.counted {
            return Ok(true);
        }
        let limits = self.limits_of(&job.tenant).await?;
        let mut job = job.clone();
        for _ in 0..ATTEMPTS {
            if job.admitted {
                // Only the delivery that admits wakes others: a duplicate plan (a job waits
                // in its release window's line as `queued`, and jobs ending together wake
                // the same job) would wake the same jobs again and again.
                return Ok(true);
            }
            if job.status != JobStatus::Queued {
                // Started or ended since: the plan's own conditions decide.
                return Ok(true);
            }
            match self.store.admit(&job, limits.max_running_jobs).await? {
                Admission::Admitted => {
                    tracing::info!("job admitted under its tenant's limit");
                    self.wake_if_room(&job, limits).await?;
                    return Ok(true);
                }
                Admission::Full if job.limit_wait => {
                    tracing::info!(
                        max_running_jobs = limits.max_running_jobs,
                        "job waits for its tenant's limit"
                    );
                    return Ok(false);
                }
                Admission::Full => {
                    self.store.join_line(&job).await?;
                }
                Admission::Changed => {}
            }
            let Some(now) = self.store.load(&job.id).await? else {
                return Ok(false);
            };
            job = now;
        }
        Err(WorkError::Transient(
            "the job kept changing under its admission".into(),
        ))
    }

    /// Wakes as many jobs in line as the tenant has free running slots of this type
    /// (several jobs ended together, a raised limit).
    async fn wake_if_room(&self, job: &JobRecord, limits: TenantLimits) -> Result<(), WorkError> {
        let usage = self.store.usage(&job.tenant).await?;
        let room = u64::from(limits.max_running_jobs).saturating_sub(usage.running(job.job_type));
        if usage.waiting(job.job_type) > 0 && room > 0 {
            wake_first(&self.store, &self.queue, &job.tenant, job.job_type, room).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{TestWorker, deliver, job, plan, worker, worker_with_window};
    use crate::domain::job::{JobStatus, Waiting};
    use crate::domain::limits::{LIMITS_SK, LimitsRecord, TenantLimits, tenant_pk};
    use crate::ports::{LimitsStore, UsageStore};
    use crate::worker::Disposition;

    /// A job of `acme` created as the API creates it: counted as queued.
    async fn counted_job(w: &TestWorker, items: &[&str]) -> String {
        let id = job(w, items);
        let mut record = w.store.job(&id).expect("the job");
        record.counted = true;
        w.store.create_counted(&record, None, 100).await.unwrap();
        id
    }

    /// Sets `acme`'s `max_running_jobs`.
    async fn limit_running(w: &TestWorker, max_running_jobs: u32) {
        w.store
            .put_limits(&LimitsRecord {
                pk: tenant_pk("acme"),
                sk: LIMITS_SK.into(),
                tenant: "acme".into(),
                limits: TenantLimits {
                    max_running_jobs,
                    ..TenantLimits::default()
                },
                updated_by: "test".into(),
                updated_at: "2026-12-05T10:00:00.000Z".into(),
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn jobs_that_end_together_start_as_many_in_line_within_two_trips_through_the_queue() {
        let w = worker_with_window(10);
        limit_running(&w, 3).await;
        let mut ids = Vec::new();
        // Two chunks each: a job of one chunk runs it in its plan's delivery.
        for job in ["a", "b", "c", "d", "e", "f"] {
            let items = [1, 2, 3].map(|n| format!("{job}{n}"));
            ids.push(counted_job(&w, &items.each_ref().map(String::as_str)).await);
        }
        for id in &ids {
            deliver(&w, &plan(id), 1).await;
        }
        let admitted = |w: &TestWorker| {
            ids.iter()
                .filter(|id| w.store.job(id).unwrap().admitted)
                .count()
        };
        assert_eq!(admitted(&w), 3);
        // The three running jobs end before anything they send is delivered.
        let chunks = w.queue.drain();
        assert_eq!(chunks.len(), 6, "{chunks:?}");
        for m in &chunks {
            assert_eq!(deliver(&w, m, 1).await, Disposition::Ack);
        }
        // Two trips through the queue: what is queued now, then what that sent.
        for _ in 0..2 {
            for m in w.queue.drain() {
                assert_eq!(deliver(&w, &m, 1).await, Disposition::Ack);
            }
        }
        assert_eq!(admitted(&w), 6, "the three in line started");
    }

    #[tokio::test]
    async fn jobs_beyond_the_running_limit_wait_and_start_in_creation_order_as_others_end() {
        let w = worker();
        limit_running(&w, 1).await;
        let mut ids = Vec::new();
        for items in [&["a1", "a2", "a3"][..], &["b1"], &["c1", "c2"]] {
            ids.push(counted_job(&w, items).await);
        }
        for id in &ids {
            deliver(&w, &plan(id), 1).await;
        }
        let first = ids
            .iter()
            .find(|id| w.store.job(id).unwrap().admitted)
            .cloned()
            .expect("one job started");
        for id in ids.iter().filter(|id| **id != first) {
            let waiting = w.store.job(id).unwrap();
            assert_eq!(
                (waiting.status, waiting.view().waiting_for),
                (JobStatus::Queued, Some(Waiting::TenantLimit))
            );
        }
        // Every message twice: duplicates change neither the order nor the counts.
        let mut order = vec![first];
        loop {
            let pending = w.queue.drain();
            if pending.is_empty() {
                break;
            }
            for m in pending {
                for _ in 0..2 {
                    assert_eq!(deliver(&w, &m, 1).await, Disposition::Ack);
                }
                let running: Vec<&String> = ids
                    .iter()
                    .filter(|id| {
                        let j = w.store.job(id).unwrap();
                        j.admitted && !j.status.is_terminal()
                    })
                    .collect();
                assert!(running.len() <= 1, "more than the limit runs: {running:?}");
                for id in &ids {
                    if w.store.job(id).unwrap().admitted && !order.contains(id) {
                        order.push(id.clone());
                    }
                }
            }
        }
        let mut in_line: Vec<String> = ids.iter().filter(|id| **id != order[0]).cloned().collect();
        in_line.sort();
        assert_eq!(
            order[1..],
            in_line[..],
            "the line starts in creation (id) order"
        );
        for id in &ids {
            assert_eq!(w.store.job(id).unwrap().status, JobStatus::Completed);
        }
        let usage = w.store.usage("acme").await.unwrap();
        assert_eq!(
            (
                usage.queued,
                usage.running.values().sum::<u64>(),
                usage.waiting.values().sum::<u64>()
            ),
            (0, 0, 0),
            "every job counted once and taken off once"
        );
    }
}
