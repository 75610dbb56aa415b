//! Schedules: recurring jobs (docs/design.md "Schedules"). The `/schedules` operations keep
//! the definitions; the scheduler's tick ([`crate::scheduler`]) starts the jobs that are due
//! through the same path as `POST /jobs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::create::{CreateRequest, Created, JobLinks};
use super::{Jobs, JobsApi};
use crate::cursor::Position;
use crate::schedule::{Timing, TimingError};
use jobs_core::clock;
use jobs_core::domain::auth::{Caller, is_tenant};
use jobs_core::domain::job::JobType;
use jobs_core::domain::record::{NewSchedule, RunOutcome, RunTrigger, ScheduleRecord, ScheduleRun};
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::{ScheduleStore, ServicePorts};

/// Largest params a schedule keeps (JSON bytes): the record is rewritten at every run.
/// Larger inputs (long recipient lists) belong in a job of their own.
pub const MAX_SCHEDULE_PARAMS_BYTES: usize = 16 * 1024;
pub const MAX_SCHEDULE_NAME_CHARS: usize = 100;
/// Runs a preview lists.
pub const PREVIEW_RUNS: usize = 5;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;
/// Attempts of a conditional write that loses to a concurrent one.
const WRITE_ATTEMPTS: usize = 3;

/// `POST /schedules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: String,
    #[serde(default)]
    pub tenant: Option<String>,
    pub params: Value,
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default)]
    pub rate: Option<String>,
    /// IANA name; default `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /schedules/{id}`: the fields to change. A `cron` replaces a `rate` and the
/// other way round; the type and tenant never change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub params: Option<Value>,
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default)]
    pub rate: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A schedule as the API returns it.
#[derive(Debug, Serialize)]
pub struct ScheduleView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub type_label: String,
    pub tenant: String,
    /// Who created it; the `user` of the jobs its due times start.
    pub owner: String,
    pub params: Value,
    pub cron: Option<String>,
    pub rate: Option<String>,
    pub timezone: String,
    pub enabled: bool,
    /// RFC 3339 UTC; `null` while disabled.
    pub next_run_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The last runs, newest first (at most 10).
    pub runs: Vec<ScheduleRun>,
}

#[derive(Debug, Serialize)]
pub struct SchedulesPage {
    pub items: Vec<ScheduleView>,
    pub next_cursor: Option<String>,
}

/// `GET /schedules/preview`: the next runs of a timing, RFC 3339 UTC.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub next_runs: Vec<String>,
}

pub(crate) fn timing_error(err: TimingError) -> ApiError {
    ApiError::invalid(err.field, err.message)
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_SCHEDULE_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "name",
            format!(
                "must be 1 to {MAX_SCHEDULE_NAME_CHARS} characters, without control characters"
            ),
        ));
    }
    Ok(name.to_string())
}

fn check_params_size(params: &Value) -> Result<String, ApiError> {
    let text =
        serde_json::to_string(params).map_err(|e| ApiError::invalid("params", e.to_string()))?;
    if text.len() > MAX_SCHEDULE_PARAMS_BYTES {
        return Err(ApiError::invalid(
            "params",
            format!(
                "a schedule keeps params up to {} KiB; start larger jobs with POST /jobs",
                MAX_SCHEDULE_PARAMS_BYTES / 1024
            ),
        ));
    }
    Ok(text)
}

fn schedule_not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such schedule")
}

impl From<&ScheduleRecord> for ScheduleView {
    fn from(schedule: &ScheduleRecord) -> ScheduleView {
        ScheduleView {
            id: schedule.id.clone(),
            name: schedule.name.clone(),
            job_type: schedule.job_type,
            type_label: schedule.job_type.label().to_string(),
            tenant: schedule.tenant.clone(),
            owner: schedule.owner.clone(),
            params: serde_json::from_str(&schedule.params).unwrap_or(Value::Null),
            cron: schedule.cron.clone(),
            rate: schedule.rate.clone(),
            timezone: schedule.timezone.clone(),
            enabled: schedule.enabled,
            next_run_at: schedule.next_run_at.clone(),
            created_at: schedule.created_at.clone(),
            updated_at: schedule.updated_at.clone(),
            runs: schedule.runs.clone(),
        }
    }
}

/// When `schedule` runs; the anchor of a rate is its creation.
pub fn timing(schedule: &ScheduleRecord) -> Result<Timing, TimingError> {
    let anchor = clock::parse(&schedule.created_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Timing::parse(
        schedule.cron.as_deref(),
        schedule.rate.as_deref(),
        &schedule.timezone,
        anchor,
    )
}

/// The `POST /jobs` request a run of `schedule` makes.
pub(crate) fn job_request(schedule: &ScheduleRecord) -> Result<CreateRequest, ApiError> {
    let params = serde_json::from_str(&schedule.params)
        .map_err(|e| ApiError::invalid("params", format!("stored params are not JSON: {e}")))?;
    Ok(CreateRequest {
        job_type: schedule.job_type.key().to_string(),
        tenant: Some(schedule.tenant.clone()),
        params,
        input: None,
    })
}

/// The idempotency key of a schedule's run for `due`: one job per due time, whoever
/// triggers it and however often.
pub fn run_key(schedule_id: &str, due: &str) -> String {
    format!("schedule:{schedule_id}:{due}")
}

/// `GET /schedules` parameters: `tenant` (admins; default the caller's), `limit` (1–100,
/// default 50), `cursor`.
pub struct ScheduleListQuery {
    pub tenant: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

impl ScheduleListQuery {
    pub fn parse(params: &[(String, String)]) -> Result<ScheduleListQuery, ApiError> {
        let mut query = ScheduleListQuery {
            tenant: None,
            limit: DEFAULT_PAGE,
            cursor: None,
        };
        for (name, value) in crate::query::checked(params, &["tenant", "limit", "cursor"])? {
            match name {
                "tenant" if is_tenant(value) => query.tenant = Some(value.to_string()),
                "tenant" => {
                    return Err(ApiError::bad_param(
                        "tenant",
                        "must be a tenant id (lower-case letters, digits, - and _)",
                    ));
                }
                "limit" => {
                    query.limit = value
                        .parse()
                        .ok()
                        .filter(|l| (1..=MAX_PAGE).contains(l))
                        .ok_or_else(|| {
                            ApiError::bad_param(
                                "limit",
                                format!("must be an integer from 1 to {MAX_PAGE}"),
                            )
                        })?;
                }
                "cursor" => query.cursor = Some(value.to_string()),
                _ => {} // refused by query::checked
            }
        }
        Ok(query)
    }
}

/// `GET /schedules/preview` parameters: `cron` or `rate`, and `timezone` (default UTC).
pub fn parse_preview(
    params: &[(String, String)],
) -> Result<(Option<String>, Option<String>, String), ApiError> {
    let (mut cron, mut rate, mut timezone) = (None, None, "UTC".to_string());
    for (name, value) in crate::query::checked(params, &["cron", "rate", "timezone"])? {
        match name {
            "cron" => cron = Some(value.to_string()),
            "rate" => rate = Some(value.to_string()),
            _ => timezone = value.to_string(),
        }
    }
    Ok((cron, rate, timezone))
}

impl<P: ServicePorts> JobsApi<P> {
    /// Creates a schedule. Its job request is checked as `POST /jobs` checks it (type,
    /// tenant, params, sender), and again at every run. Errors name the field (422).
    pub async fn create_schedule(
        &self,
        caller: &Caller,
        request: ScheduleRequest,
    ) -> Result<ScheduleView, ApiError> {
        let name = check_name(&request.name)?;
        let now = clock::now();
        let timezone = request.timezone.unwrap_or_else(|| "UTC".into());
        let timing = Timing::parse(
            request.cron.as_deref(),
            request.rate.as_deref(),
            &timezone,
            now,
        )
        .map_err(timing_error)?;
        let params = check_params_size(&request.params)?;
        let job = CreateRequest {
            job_type: request.job_type,
            tenant: request.tenant,
            params: request.params,
            input: None,
        };
        let (job_type, tenant, _) = self.validate_request(caller, job, false).await?;
        let enabled = request.enabled.unwrap_or(true);
        let id = ulid::Ulid::from_datetime(std::time::SystemTime::from(now)).to_string();
        let schedule = ScheduleRecord::new(NewSchedule {
            id,
            name,
            job_type,
            tenant,
            owner: caller.user.clone(),
            params,
            cron: request.cron,
            rate: request.rate,
            timezone,
            enabled,
            created_at: clock::format(now),
            next_run_at: if enabled {
                timing.next_after(now).map(clock::format)
            } else {
                None
            },
        });
        if !self.store.save_schedule(&schedule, None).await? {
            tracing::error!(schedule_id = %schedule.id, "a new schedule's id is taken");
            return Err(ApiError::unavailable());
        }
        tracing::info!(schedule_id = %schedule.id, tenant = %schedule.tenant, next_run_at = ?schedule.next_run_at, "schedule created");
        Ok(ScheduleView::from(&schedule))
    }

    pub async fn get_schedule(&self, caller: &Caller, id: &str) -> Result<ScheduleView, ApiError> {
        self.visible_schedule(caller, id)
            .await
            .map(|s| ScheduleView::from(&s))
    }

    /// A tenant's schedules, oldest first, in keyset pages. Members list their own tenant;
    /// admins any (`tenant`, default their own).
    pub async fn list_schedules(
        &self,
        caller: &Caller,
        query: &ScheduleListQuery,
    ) -> Result<SchedulesPage, ApiError> {
        let tenant = caller
            .tenant_scope(query.tenant.as_deref(), "tenant")?
            .unwrap_or_else(|| caller.tenant.clone());
        let scope = format!("schedules|{tenant}|{}", query.limit);
        let start = match &query.cursor {
            Some(cursor) => self.cursors.decode(cursor, &scope)?.start_key,
            None => None,
        };
        let (schedules, last) = self
            .store
            .list_schedules(&tenant, start, query.limit)
            .await?;
        let next_cursor = last.map(|key| {
            self.cursors.encode(
                &Position {
                    month: None,
                    start_key: Some(key),
                },
                &scope,
            )
        });
        Ok(SchedulesPage {
            items: schedules.iter().map(ScheduleView::from).collect(),
            next_cursor,
        })
    }

    /// Applies `patch`. A new timing, or enabling, computes the next run from now;
    /// disabling clears it. Conflicting writes are retried on a fresh read.
    pub async fn update_schedule(
        &self,
        caller: &Caller,
        id: &str,
        patch: SchedulePatch,
    ) -> Result<ScheduleView, ApiError> {
        if patch.cron.is_some() && patch.rate.is_some() {
            return Err(ApiError::invalid(
                "cron",
                "give exactly one of cron and rate",
            ));
        }
        // The type and tenant never change, so new params are checked once, before the loop.
        let params = match &patch.params {
            Some(params) => {
                let current = self.visible_schedule(caller, id).await?;
                let text = check_params_size(params)?;
                let job = CreateRequest {
                    job_type: current.job_type.key().to_string(),
                    tenant: Some(current.tenant.clone()),
                    params: params.clone(),
                    input: None,
                };
                self.validate_request(caller, job, false).await?;
                Some(text)
            }
            None => None,
        };
        let name = patch.name.as_deref().map(check_name).transpose()?;
        let schedule = self
            .edit_schedule(id, Some(caller), |schedule| {
                if let Some(name) = &name {
                    schedule.name.clone_from(name);
                }
                if let Some(params) = &params {
                    schedule.params.clone_from(params);
                }
                let retimed =
                    patch.cron.is_some() || patch.rate.is_some() || patch.timezone.is_some();
                if let Some(cron) = &patch.cron {
                    schedule.cron = Some(cron.clone());
                    schedule.rate = None;
                }
                if let Some(rate) = &patch.rate {
                    schedule.rate = Some(rate.clone());
                    schedule.cron = None;
                }
                if let Some(timezone) = &patch.timezone {
                    schedule.timezone.clone_from(timezone);
                }
                let timing = timing(schedule).map_err(timing_error)?;
                let enabling = patch.enabled == Some(true) && !schedule.enabled;
                if let Some(enabled) = patch.enabled {
                    schedule.enabled = enabled;
                }
                let now = clock::now();
                if !schedule.enabled {
                    schedule.next_run_at = None;
                } else if retimed || enabling || schedule.next_run_at.is_none() {
                    schedule.next_run_at = timing.next_after(now).map(clock::format);
                }
                schedule.updated_at = clock::format(now);
                Ok(())
            })
            .await?
            .ok_or_else(schedule_not_found)?;
        tracing::info!(schedule_id = id, tenant = %schedule.tenant, enabled = schedule.enabled, next_run_at = ?schedule.next_run_at, "schedule updated");
        Ok(ScheduleView::from(&schedule))
    }

    /// Deletes a schedule: it starts nothing from now on and leaves every listing; the
    /// record stays (for its jobs' `schedule_id`) until the job retention passes.
    pub async fn delete_schedule(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        let retention_days = i64::from(self.retention_days);
        let schedule = self
            .edit_schedule(id, Some(caller), |schedule| {
                let now = clock::now();
                schedule.deleted_at = Some(clock::format(now));
                schedule.next_run_at = None;
                schedule.expires_at = Some(now.unix_timestamp() + retention_days * 86_400);
                Ok(())
            })
            .await?
            .ok_or_else(schedule_not_found)?;
        tracing::info!(schedule_id = id, tenant = %schedule.tenant, "schedule deleted");
        Ok(())
    }

    /// Starts one job of the schedule now, as `caller` (its `user`), whether the schedule
    /// is enabled or its previous job still runs; the run is recorded on the schedule. A
    /// refused job is answered as `POST /jobs` answers it, and recorded too.
    pub async fn run_schedule(
        &self,
        caller: &Caller,
        id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Created, ApiError> {
        let schedule = self.visible_schedule(caller, id).await?;
        let links = JobLinks {
            retry_of: None,
            schedule_id: Some(schedule.id.clone()),
            file: None,
        };
        let result = self
            .create(caller, job_request(&schedule)?, idempotency_key, links)
            .await;
        let run = match &result {
            Ok(created) => ScheduleRun {
                due_at: None,
                at: clock::format(clock::now()),
                trigger: RunTrigger::Manual,
                outcome: RunOutcome::Started,
                job_id: Some(created.job.id.clone()),
                error: None,
            },
            Err(err) if err.status() < 500 => refused_run(None, RunTrigger::Manual, err),
            Err(_) => return result,
        };
        if let Err(err) = self.record_run(id, run).await {
            // The job stands either way; only the schedule's list of runs misses it.
            tracing::warn!(schedule_id = id, error = %err, "could not record a manual run on its schedule");
        }
        result
    }

    /// The next [`PREVIEW_RUNS`] runs of a timing from now, computed as the scheduler
    /// computes them. Errors name the query parameter (400).
    pub fn preview_schedule(
        &self,
        cron: Option<&str>,
        rate: Option<&str>,
        timezone: &str,
    ) -> Result<Preview, ApiError> {
        let now = clock::now();
        let timing = Timing::parse(cron, rate, timezone, now)
            .map_err(|e| ApiError::bad_param(e.field, e.message))?;
        Ok(Preview {
            next_runs: timing
                .next_runs(now, PREVIEW_RUNS)
                .into_iter()
                .map(clock::format)
                .collect(),
        })
    }
}

pub(crate) fn refused_run(
    due_at: Option<String>,
    trigger: RunTrigger,
    err: &ApiError,
) -> ScheduleRun {
    ScheduleRun {
        due_at,
        at: clock::format(clock::now()),
        trigger,
        outcome: RunOutcome::Refused,
        job_id: None,
        error: Some(err.body()["error"].clone()),
    }
}

impl<P: ServicePorts> Jobs<P> {
    /// A schedule the caller may see; anything else (unknown, deleted, other tenant) is a 404.
    async fn visible_schedule(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<ScheduleRecord, ApiError> {
        if ulid::Ulid::from_string(id).is_err() {
            return Err(schedule_not_found());
        }
        match self.store.get_schedule(id).await? {
            Some(s) if s.deleted_at.is_none() && caller.can_access(&s.tenant) => Ok(s),
            _ => Err(schedule_not_found()),
        }
    }

    /// Adds `run` to schedule `id`'s runs, on a fresh read per attempt; nothing when the
    /// schedule is gone.
    pub(crate) async fn record_run(&self, id: &str, run: ScheduleRun) -> Result<(), ApiError> {
        self.edit_schedule(id, None, |schedule| {
            schedule.record_run(run.clone());
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Reads schedule `id` (as `caller` sees it, or as stored when `None`), applies `edit`
    /// and saves the result only if the schedule's `version` is still the one read; a lost
    /// race starts over on a fresh read, at most [`WRITE_ATTEMPTS`] times, then `409`.
    /// `Ok(None)` when a stored read finds nothing; a caller's read answers `404` instead.
    /// Returns the schedule as saved.
    async fn edit_schedule(
        &self,
        id: &str,
        caller: Option<&Caller>,
        mut edit: impl FnMut(&mut ScheduleRecord) -> Result<(), ApiError>,
    ) -> Result<Option<ScheduleRecord>, ApiError> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut schedule = match caller {
                Some(caller) => self.visible_schedule(caller, id).await?,
                None => match self.store.get_schedule(id).await? {
                    Some(schedule) => schedule,
                    None => return Ok(None),
                },
            };
            let expected = schedule.version;
            edit(&mut schedule)?;
            schedule.version += 1;
            schedule.index();
            if self.store.save_schedule(&schedule, Some(expected)).await? {
                return Ok(Some(schedule));
            }
        }
        Err(ApiError::new(
            ErrorCode::Conflict,
            "the schedule is changing; retry",
        ))
    }
}
