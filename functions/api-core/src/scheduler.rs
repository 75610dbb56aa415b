//! The scheduler's tick, once a minute (the scheduler function): the schedules due now,
//! each started once per due time through the same path as `POST /jobs`, then the job ends
//! left pending ([`jobs_core::domain::ended::Observers::sweep`]). Runs over the jobs service alone
//! ([`Jobs`]): no token is verified here.

use serde::Serialize;
use time::OffsetDateTime;

use crate::api::schedules::{job_request, refused_run, run_key, timing, timing_error};
use crate::api::{JobLinks, Jobs};
use jobs_core::clock;
use jobs_core::domain::audit::Origin;
use jobs_core::domain::auth::{Caller, Role};
use jobs_core::domain::record::{DUE_SHARDS, RunOutcome, RunTrigger, ScheduleRecord, ScheduleRun};
use jobs_core::error::{ApiError, StoreError};
use jobs_core::ports::{JobStore, ScheduleStore, ServicePorts};

/// Due schedules read per `Query`, and at most per shard and tick: a backlog larger than
/// this is worked off over the next ticks.
const DUE_PAGE: u32 = 25;
const MAX_DUE_PER_SHARD: usize = 100;

/// What one tick of the scheduler did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Schedules read as due.
    pub due: u32,
    pub started: u32,
    pub skipped: u32,
    pub refused: u32,
    /// Runs left for the next tick: a backing service failed, or an edit came in between.
    pub deferred: u32,
    /// Job ends whose hook the tick finished ([`jobs_core::domain::ended::Observers::sweep`]).
    pub ends_handled: u32,
}

/// Who a due run of `schedule` acts as: the owner in the schedule's tenant, with the
/// schedule as the audit trail's actor.
fn run_caller(schedule: &ScheduleRecord) -> Caller {
    Caller {
        user: schedule.owner.clone(),
        tenant: schedule.tenant.clone(),
        role: Role::Operator,
        origin: Origin {
            user_agent: Some("jobs-scheduler".into()),
            schedule_id: Some(schedule.id.clone()),
            ..Origin::default()
        },
    }
}

impl<P: ServicePorts> Jobs<P> {
    /// One tick of the scheduler function: the schedules due at `now`
    /// ([`Self::run_due_schedules`]), then the job ends left pending
    /// ([`jobs_core::domain::ended::Observers::sweep`]).
    pub async fn tick(&self, now: OffsetDateTime) -> Result<TickReport, StoreError> {
        let mut report = self.run_due_schedules(now).await?;
        report.ends_handled = self.observers.sweep(&self.store, &self.queue, now).await?;
        Ok(report)
    }

    /// Runs every schedule due at `now`, each once (a late one
    /// once, for its earliest missed due time), and moves it to its next due time. Safe to
    /// call twice for the same minute, or concurrently: a due time creates one job. An
    /// error means a due-index query failed; the schedules it did not reach run next tick.
    pub async fn run_due_schedules(&self, now: OffsetDateTime) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        let until = clock::format(now);
        for shard in 0..DUE_SHARDS {
            // Pages follow the index's own key, so entries that cannot move on now (their
            // run failed and is retried next tick) never hide the ones behind them.
            let (mut read, mut start) = (0, None);
            loop {
                let (due, last) = self
                    .store
                    .due_schedules(shard, &until, start, DUE_PAGE)
                    .await?;
                read += due.len();
                for id in due {
                    report.due += 1;
                    self.run_due(&id, now, &mut report).await;
                }
                match last {
                    Some(key) if read < MAX_DUE_PER_SHARD => start = Some(key),
                    _ => break,
                }
            }
        }
        Ok(report)
    }

    /// Runs schedule `id` if it is due at `now`, on a strongly consistent read.
    async fn run_due(&self, id: &str, now: OffsetDateTime, report: &mut TickReport) {
        let span = tracing::info_span!(
            "schedule_run",
            schedule_id = id,
            tenant = tracing::field::Empty,
            job_id = tracing::field::Empty
        );
        let _entered = span.enter();
        let mut schedule = match self.store.get_schedule(id).await {
            Ok(Some(s)) if s.deleted_at.is_none() && s.enabled => s,
            Ok(Some(stale)) => return self.reindex(stale).await,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(error = %err, "could not read a due schedule");
                report.deferred += 1;
                return;
            }
        };
        span.record("tenant", schedule.tenant.as_str());
        let Some(next_run_at) = schedule.next_run_at.as_deref().and_then(clock::parse) else {
            return;
        };
        let expected = schedule.version;
        let run = match timing(&schedule) {
            Err(err) => {
                // Stored timings were valid when written; one that no longer parses (a time
                // zone gone from the database) stops the schedule, with the reason as its run.
                let due = schedule.next_run_at.take();
                refused_run(due, RunTrigger::Schedule, &timing_error(err))
            }
            Ok(timing) => {
                let Some((due, next)) = timing.catch_up(next_run_at, now) else {
                    return;
                };
                match self.start_due_run(&schedule, &clock::format(due)).await {
                    Ok(run) => {
                        schedule.next_run_at = next.map(clock::format);
                        run
                    }
                    Err(err) => {
                        tracing::error!(code = ?err.code, "a due run could not start; it is retried next tick");
                        report.deferred += 1;
                        return;
                    }
                }
            }
        };
        if let Some(job_id) = &run.job_id {
            span.record("job_id", job_id.as_str());
        }
        let outcome = run.outcome;
        schedule.record_run(run);
        schedule.version += 1;
        schedule.index();
        match self.store.save_schedule(&schedule, Some(expected)).await {
            Ok(true) => {
                match outcome {
                    RunOutcome::Started => report.started += 1,
                    RunOutcome::Skipped => report.skipped += 1,
                    RunOutcome::Refused => report.refused += 1,
                }
                tracing::info!(outcome = ?outcome, next_run_at = ?schedule.next_run_at, "schedule ran");
            }
            // An edit, or another tick, wrote first: that tick recorded this due time, or
            // the next one runs it again, which creates no second job (its idempotency key).
            Ok(false) => report.deferred += 1,
            Err(err) => {
                tracing::error!(error = %err, "could not move a schedule to its next due time");
                report.deferred += 1;
            }
        }
    }

    /// A disabled or deleted schedule that still carries a due-index key (the record was
    /// written outside the API, say by hand): rewritten with the keys its state gives,
    /// so it leaves the index. It starts nothing either way.
    async fn reindex(&self, mut schedule: ScheduleRecord) {
        let (expected, was_due) = (schedule.version, schedule.sched_due.is_some());
        schedule.index();
        if was_due && schedule.sched_due.is_none() {
            schedule.version += 1;
            if let Err(err) = self.store.save_schedule(&schedule, Some(expected)).await {
                tracing::warn!(error = %err, "could not take a stopped schedule out of the due index");
            }
        }
    }

    /// A due time's run: skipped while the previous job is queued or running, else the job
    /// `POST /jobs` would create, under the due time's idempotency key. Only a server
    /// failure is an error (the run is retried); a refusal is the run's outcome.
    async fn start_due_run(
        &self,
        schedule: &ScheduleRecord,
        due: &str,
    ) -> Result<ScheduleRun, ApiError> {
        let at = clock::format(clock::now());
        if let Some(last) = &schedule.last_job_id
            && let Some(job) = self.store.get(last).await?
            && !job.status.is_terminal()
        {
            return Ok(ScheduleRun {
                due_at: Some(due.into()),
                at,
                trigger: RunTrigger::Schedule,
                outcome: RunOutcome::Skipped,
                job_id: Some(last.clone()),
                error: None,
            });
        }
        let links = JobLinks {
            retry_of: None,
            schedule_id: Some(schedule.id.clone()),
            file: None,
        };
        let created = match job_request(schedule) {
            Ok(request) => {
                self.create(
                    &run_caller(schedule),
                    request,
                    Some(&run_key(&schedule.id, due)),
                    links,
                )
                .await
            }
            Err(err) => Err(err),
        };
        match created {
            Ok(created) => Ok(ScheduleRun {
                due_at: Some(due.into()),
                at,
                trigger: RunTrigger::Schedule,
                outcome: RunOutcome::Started,
                job_id: Some(created.job.id),
                error: None,
            }),
            Err(err) if err.status() < 500 => {
                Ok(refused_run(Some(due.into()), RunTrigger::Schedule, &err))
            }
            Err(err) => Err(err),
        }
    }
}
