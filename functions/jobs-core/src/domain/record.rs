//! How jobs are stored: the items of the one Jobs table and their keys.
//!
//! | item        | pk                         | sk      |
//! |-------------|----------------------------|---------|
//! | job         | `JOB#<id>`                 | `JOB`   |
//! | chunk ledger | `JOB#<id>`                | `CHUNK#<n, 8 digits>` |
//! | idempotency | `IDEM#<sha256(tenant, user, key)>` | `IDEM` |
//! | schedule    | `SCHED#<id>`               | `SCHED` |
//!
//! A visible job also carries the list-index attributes (`list_sk` plus one partition
//! attribute per index). Hiding a job removes them, which drops it from every list index;
//! nothing else ever writes them, so progress updates cannot bring a hidden job back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::job::{ItemError, JobStatus, JobType, JobView, Progress, Waiting};

pub const JOB_SK: &str = "JOB";
/// Item failures kept on a job for its details view.
pub const MAX_ERROR_SAMPLE: usize = 20;
pub const IDEMPOTENCY_SK: &str = "IDEM";

/// The list indexes. Each is sparse (only visible jobs have its partition attribute),
/// sorted by `list_sk` = `<created_at>#<id>`, and projects only what list filters read,
/// so progress writes never touch an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListIndex {
    /// Partition `list_tenant` = tenant: a tenant's jobs.
    ByTenant,
    /// Partition `list_tenant_user` = `<tenant>#<user>`: one user's jobs in a tenant.
    ByTenantUser,
    /// Partition `list_month` = `yyyy-mm`: every tenant's jobs, one bucket per month.
    ByMonth,
    /// Hidden jobs: partition `hidden_tenant` = tenant.
    HiddenByTenant,
    /// Hidden jobs: partition `hidden_month` = `yyyy-mm`.
    HiddenByMonth,
}

impl ListIndex {
    pub fn name(self) -> &'static str {
        match self {
            ListIndex::ByTenant => "by_tenant",
            ListIndex::ByTenantUser => "by_tenant_user",
            ListIndex::ByMonth => "by_month",
            ListIndex::HiddenByTenant => "hidden_by_tenant",
            ListIndex::HiddenByMonth => "hidden_by_month",
        }
    }

    pub fn partition_attribute(self) -> &'static str {
        match self {
            ListIndex::ByTenant => "list_tenant",
            ListIndex::ByTenantUser => "list_tenant_user",
            ListIndex::ByMonth => "list_month",
            ListIndex::HiddenByTenant => "hidden_tenant",
            ListIndex::HiddenByMonth => "hidden_month",
        }
    }
}

pub const LIST_SORT_ATTRIBUTE: &str = "list_sk";
/// Attributes projected into every list index: what filters and search read.
pub const LIST_PROJECTION: [&str; 6] = ["id", "job_type", "tenant", "user", "user_lc", "status"];
/// The list indexes' partition attributes of a visible job, and of a hidden one: hiding
/// moves a job's partitions from the first to the second, unhiding back. `list_sk` stays.
pub const LIST_PARTITIONS: [&str; 3] = ["list_tenant", "list_tenant_user", "list_month"];
pub const HIDDEN_PARTITIONS: [&str; 3] = ["hidden_tenant", "hidden_tenant_user", "hidden_month"];

pub fn chunk_sk(chunk: u64) -> String {
    format!("CHUNK#{chunk:08}")
}

/// Where the plan stores the item list a worker found (types whose items are not in their
/// params): beside the job's input, `inputs/<tenant>/<id>.items.json`.
pub fn snapshot_key(input_key: &str) -> String {
    format!("{}.items.json", input_key.trim_end_matches(".json"))
}

/// Partitions per job type of the `active_by_type` index: every job's start and end write
/// it, so a type's jobs are spread over four (DynamoDB: 1,000 writes/s per partition).
pub const ACTIVE_SHARDS: u32 = 4;
pub const ACTIVE_INDEX: &str = "active_by_type";

pub fn active_partition(job_type: JobType, shard: u32) -> String {
    format!("{}#{shard}", job_type.key())
}

/// The shard (`0..shards`) of an item keyed by `id` (a ULID, whose last character is
/// random) in a sharded index or aggregate partition: its last byte mod `shards`. One rule
/// for every sharded key (active jobs, pending ends, due schedules, audit days, metrics),
/// so an id's shard is the same wherever it is written and read.
pub fn shard_of(id: &str, shards: u32) -> u32 {
    id.bytes()
        .last()
        .map_or(0, |b| u32::from(b) % shards.max(1))
}

fn active_shard(id: &str) -> u32 {
    shard_of(id, ACTIVE_SHARDS)
}

/// Jobs whose end is pending (the on-job-end hook has not finished): partition `ending` =
/// shard `0`..`3`, sorted by `end_pending`. Sparse: the write that ends a job sets both,
/// the hook's last step removes both. The scheduler's tick sweeps the entries older than a
/// few minutes (a job whose hook failed with no message left to run it again).
pub const ENDS_PENDING_INDEX: &str = "ends_pending";

/// The `ends_pending` shard of job `id` (as for `active_by_type`).
pub fn end_shard(id: &str) -> String {
    active_shard(id).to_string()
}

pub fn job_pk(id: &str) -> String {
    format!("JOB#{id}")
}

pub fn list_sort_key(created_at: &str, id: &str) -> String {
    format!("{created_at}#{id}")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub job_type: JobType,
    pub tenant: String,
    pub user: String,
    pub user_lc: String,
    pub status: JobStatus,
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Items not processed because the job was cancelled.
    #[serde(default)]
    pub cancelled: u64,
    /// Set by the plan step: how many chunks the job was split into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_total: Option<u64>,
    /// Chunks whose outcome is committed; the job completes when this reaches `chunks_total`.
    #[serde(default)]
    pub chunks_done: u64,
    /// The job's held chain heads ([`crate::domain::window`]): chunks waiting for a slot of
    /// the job's release window, by chunk number (decimal) → `true`. The plan sets the heads
    /// of the W chains, `0..min(W, chunks_total)`; a slot taken for a head removes it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub held: BTreeMap<String, bool>,
    /// The deferred jobs this job's woken plan woke at its end (release windows): a
    /// redelivery of its plan sends their plans again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub woke: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub summary: Value,
    /// Where the full, validated params are stored (the input store).
    pub input_key: String,
    /// The uploaded file the job's items come from, when not from its params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<crate::domain::file::JobFile>,
    /// Rows of its file a queued job's plan has read so far (set at each pause of a plan
    /// that runs over several invocations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_rows: Option<u64>,
    /// Until when (epoch seconds) a plan holds the reading of the job's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_lease: Option<i64>,
    #[serde(default)]
    pub errors: Vec<ItemError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_at: Option<String>,
    /// The job whose failed (or cancelled) items this job retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// The jobs created to retry this job's items, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<String>,
    /// The schedule that started the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
    /// When a chunk of the job last met a downstream rate limit (set by its next commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paced_at: Option<String>,
    /// Set by the write that gives the job its final status, removed once the on-job-end
    /// hook ([`crate::domain::ended`]) has run: while present, whoever next sees the job runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_pending: Option<String>,
    /// While `end_pending` is set: its `ends_pending` shard ([`end_shard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<String>,
    /// When a caller took the handling of the pending end ([`crate::ports::JobEnds::claim_end`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_claimed_at: Option<String>,
    /// While the job is queued or running: `<type key>#<shard 0-3>`, the partition of the
    /// sparse `active_by_type` index (queue health). The writes that end a job remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    /// The job counts against its tenant's limits ([`crate::domain::limits`]): set by the
    /// API's create; jobs written otherwise (fixtures, jobs from before the limits) do not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counted: bool,
    /// A counted job has taken one of its tenant's running slots (`max_running_jobs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admitted: bool,
    /// A counted job is in its tenant's line for a running slot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub limit_wait: bool,
    /// A counted job's end has been taken off its tenant's usage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub usage_released: bool,
    /// Epoch seconds after which DynamoDB TTL removes the record.
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_tenant_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_month: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_tenant_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_month: Option<String>,
}

/// What a new job is made of; the record adds keys and the list-index attributes.
pub struct NewJob {
    pub id: String,
    pub job_type: JobType,
    pub tenant: String,
    pub user: String,
    pub created_at: String,
    pub month: String,
    pub total: u64,
    pub summary: Value,
    pub input_key: String,
    pub expires_at: i64,
}

impl JobRecord {
    pub fn new(job: NewJob) -> JobRecord {
        let list_sk = list_sort_key(&job.created_at, &job.id);
        let active = active_partition(job.job_type, active_shard(&job.id));
        JobRecord {
            pk: job_pk(&job.id),
            sk: JOB_SK.to_string(),
            list_sk: Some(list_sk),
            list_tenant: Some(job.tenant.clone()),
            list_tenant_user: Some(format!("{}#{}", job.tenant, job.user)),
            list_month: Some(job.month),
            hidden_tenant: None,
            hidden_tenant_user: None,
            hidden_month: None,
            user_lc: job.user.to_lowercase(),
            id: job.id,
            job_type: job.job_type,
            tenant: job.tenant,
            user: job.user,
            status: JobStatus::Queued,
            total: job.total,
            succeeded: 0,
            failed: 0,
            cancelled: 0,
            chunks_total: None,
            chunks_done: 0,
            held: BTreeMap::new(),
            woke: Vec::new(),
            cancel_requested_at: None,
            created_at: job.created_at,
            started_at: None,
            completed_at: None,
            summary: job.summary,
            input_key: job.input_key,
            file: None,
            planned_rows: None,
            plan_lease: None,
            errors: Vec::new(),
            hidden_at: None,
            retry_of: None,
            retries: Vec::new(),
            schedule_id: None,
            paced_at: None,
            end_pending: None,
            ending: None,
            end_claimed_at: None,
            active: Some(active),
            counted: false,
            admitted: false,
            limit_wait: false,
            usage_released: false,
            expires_at: job.expires_at,
        }
    }

    pub fn is_hidden(&self) -> bool {
        self.hidden_at.is_some()
    }

    /// The job's list-index keys, from its own fields: `list_sk`, then the partitions in
    /// [`LIST_PARTITIONS`] order (tenant, `tenant#user`, month of `created_at`).
    pub fn list_keys(&self) -> (String, [String; 3]) {
        let month = self.created_at.get(..7).unwrap_or_default().to_string();
        (
            list_sort_key(&self.created_at, &self.id),
            [
                self.tenant.clone(),
                format!("{}#{}", self.tenant, self.user),
                month,
            ],
        )
    }

    /// The held chain heads, smallest first.
    pub fn held_heads(&self) -> Vec<u64> {
        let mut heads: Vec<u64> = self.held.keys().filter_map(|k| k.parse().ok()).collect();
        heads.sort_unstable();
        heads
    }

    /// What the job is waiting for at `now`: only an active job, not being cancelled, waits.
    pub fn waiting_for(&self, now: time::OffsetDateTime) -> Option<Waiting> {
        if !matches!(self.status, JobStatus::Queued | JobStatus::Running)
            || self.cancel_requested_at.is_some()
        {
            return None;
        }
        if self.limit_wait && self.status == JobStatus::Queued {
            return Some(Waiting::TenantLimit);
        }
        let paced = self.paced_at.as_deref().and_then(crate::clock::parse);
        if paced.is_some_and(|at| (now - at).whole_seconds() < Waiting::PACED_FOR_SECONDS) {
            Some(Waiting::RateLimit)
        } else if self.succeeded + self.failed + self.cancelled == 0 {
            Some(Waiting::Capacity)
        } else {
            None
        }
    }

    /// What the API shows of the job. `retries` is oldest first whatever order concurrent
    /// retries were linked in.
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id.clone(),
            job_type: self.job_type,
            type_label: self.job_type.label().to_string(),
            tenant: self.tenant.clone(),
            status: self.status,
            progress: Progress {
                cancelled: self.cancelled,
                ..Progress::of(self.status, self.total, self.succeeded, self.failed)
            },
            user: self.user.clone(),
            created_at: self.created_at.clone(),
            started_at: self.started_at.clone(),
            completed_at: self.completed_at.clone(),
            cancel_requested_at: self.cancel_requested_at.clone(),
            hidden_at: self.hidden_at.clone(),
            waiting_for: self.waiting_for(crate::clock::now()),
            retry_of: self.retry_of.clone(),
            retries: by_creation(&self.retries),
            schedule_id: self.schedule_id.clone(),
            rows_read: self
                .planned_rows
                .filter(|_| self.status == JobStatus::Queued),
            params_summary: self.summary.clone(),
            errors: self.errors.iter().take(MAX_ERROR_SAMPLE).cloned().collect(),
            from_file: self.file.is_some(),
        }
    }
}

pub const SCHEDULE_SK: &str = "SCHED";
/// A tenant's schedules: partition `sched_tenant` = tenant, sorted by `list_sk`
/// (`<created_at>#<id>`). Sparse: a deleted schedule leaves it.
pub const SCHEDULES_INDEX: &str = "schedules_by_tenant";
/// Schedules that will run: partition `sched_due` = shard (`0`..`3`), sorted by
/// `next_run_at`, keys only. Sparse: a disabled or deleted schedule leaves it. The
/// scheduler reads each shard's entries due by now, 25 per `Query`, at most 100 per shard
/// and tick, however late it is.
pub const DUE_INDEX: &str = "schedules_due";
/// Shards of [`DUE_INDEX`]: every run rewrites its schedule's entry, so schedules due at
/// the same minute spread over four partitions.
pub const DUE_SHARDS: u32 = 4;
/// Runs kept on a schedule, newest first.
pub const MAX_SCHEDULE_RUNS: usize = 10;

/// A tenant's live API keys and senders: partition `owned_by` (`<tenant>#api_key`,
/// `<tenant>#sender`), sorted by `pk`. Sparse: a revoked key or a removed sender leaves it.
pub const OWNED_INDEX: &str = "owned_by_tenant";

/// The `owned_by` partition of a tenant's live objects of one kind (`api_key`, `sender`).
pub fn owned_by(tenant: &str, kind: &str) -> String {
    format!("{tenant}#{kind}")
}

pub fn schedule_pk(id: &str) -> String {
    format!("SCHED#{id}")
}

/// What started a run of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// Its due time came (the scheduler).
    Schedule,
    /// `POST /schedules/{id}/run`.
    Manual,
}

/// How a run of a schedule ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// A job was created (`job_id`).
    Started,
    /// The schedule's previous job was still queued or running (`job_id` names it).
    Skipped,
    /// The job was refused, as `POST /jobs` would refuse it (`error`).
    Refused,
}

/// One run of a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRun {
    /// The due time it ran for (RFC 3339 UTC); absent for a manual run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    /// When it ran.
    pub at: String,
    pub trigger: RunTrigger,
    pub outcome: RunOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// On `refused`: the error `POST /jobs` would answer (`code`, `message`, `field`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// A schedule: starts a job of `job_type` with `params` for `tenant` at each due time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub name: String,
    pub job_type: JobType,
    pub tenant: String,
    /// Who created it: the `user` of the jobs it starts.
    pub owner: String,
    /// The job params, as JSON text (validated when stored, and again at each run).
    pub params: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// IANA time zone name.
    pub timezone: String,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The next due time (RFC 3339 UTC); absent while disabled or when it never runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<String>,
    /// The last job a run started: a due time skips while it is queued or running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job_id: Option<String>,
    /// The last [`MAX_SCHEDULE_RUNS`] runs, newest first.
    #[serde(default)]
    pub runs: Vec<ScheduleRun>,
    /// Grows by one with every write: each write is conditional on the version it read.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// Set on deletion: epoch seconds after which DynamoDB TTL removes the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_due: Option<String>,
}

/// What a new schedule is made of; [`ScheduleRecord::new`] adds its keys, version 1 and
/// its index attributes.
pub struct NewSchedule {
    pub id: String,
    pub name: String,
    pub job_type: JobType,
    pub tenant: String,
    pub owner: String,
    /// The job params as JSON text.
    pub params: String,
    pub cron: Option<String>,
    pub rate: Option<String>,
    pub timezone: String,
    pub enabled: bool,
    /// RFC 3339; also its `updated_at`.
    pub created_at: String,
    pub next_run_at: Option<String>,
}

impl ScheduleRecord {
    /// A new schedule, indexed, at version 1.
    pub fn new(new: NewSchedule) -> ScheduleRecord {
        let mut schedule = ScheduleRecord {
            pk: schedule_pk(&new.id),
            sk: SCHEDULE_SK.into(),
            id: new.id,
            name: new.name,
            job_type: new.job_type,
            tenant: new.tenant,
            owner: new.owner,
            params: new.params,
            cron: new.cron,
            rate: new.rate,
            timezone: new.timezone,
            enabled: new.enabled,
            updated_at: new.created_at.clone(),
            created_at: new.created_at,
            next_run_at: new.next_run_at,
            last_job_id: None,
            runs: Vec::new(),
            version: 1,
            deleted_at: None,
            expires_at: None,
            list_sk: None,
            sched_tenant: None,
            sched_due: None,
        };
        schedule.index();
        schedule
    }

    /// Sets the index attributes from the schedule's state: listed unless deleted, due
    /// while enabled with a next run.
    pub fn index(&mut self) {
        let live = self.deleted_at.is_none();
        self.list_sk = live.then(|| list_sort_key(&self.created_at, &self.id));
        self.sched_tenant = live.then(|| self.tenant.clone());
        let shard = shard_of(&self.id, DUE_SHARDS);
        self.sched_due =
            (live && self.enabled && self.next_run_at.is_some()).then(|| shard.to_string());
    }

    /// Adds `run` as the newest, keeping [`MAX_SCHEDULE_RUNS`].
    pub fn record_run(&mut self, run: ScheduleRun) {
        if run.outcome == RunOutcome::Started {
            self.last_job_id.clone_from(&run.job_id);
        }
        self.runs.insert(0, run);
        self.runs.truncate(MAX_SCHEDULE_RUNS);
    }
}

/// Remembers which job an `Idempotency-Key` created, for 24 hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub pk: String,
    pub sk: String,
    pub job_id: String,
    pub request_hash: String,
    pub expires_at: i64,
}

pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

pub fn idempotency_pk(tenant: &str, user: &str, key: &str) -> String {
    let digest = sha256_hex(&[tenant.as_bytes(), user.as_bytes(), key.as_bytes()]);
    format!("IDEM#{digest}")
}

/// SHA-256 of the parts, each terminated by a NUL so that ("ab","c") ≠ ("a","bc").
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        ctx.update(part);
        ctx.update(&[0]);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Job ids oldest first: an id is a ULID of its job's `created_at`
/// (`Ulid::from_datetime`), so id order is creation order.
fn by_creation(ids: &[String]) -> Vec<String> {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JobRecord {
        JobRecord::new(NewJob {
            id: "01JDEMO".into(),
            job_type: JobType::AiTextEmbedding,
            tenant: "acme".into(),
            user: "Alice".into(),
            created_at: "2026-11-28T10:00:00.000Z".into(),
            month: "2026-11".into(),
            total: 3,
            summary: serde_json::json!({"documents": 3}),
            input_key: "inputs/acme/01JDEMO.json".into(),
            expires_at: 1,
        })
    }

    #[test]
    fn new_record_is_queued_and_in_every_list_index() {
        let r = record();
        assert_eq!((r.pk.as_str(), r.sk.as_str()), ("JOB#01JDEMO", "JOB"));
        assert_eq!(
            r.list_sk.as_deref(),
            Some("2026-11-28T10:00:00.000Z#01JDEMO")
        );
        assert_eq!(r.list_tenant_user.as_deref(), Some("acme#Alice"));
        assert_eq!(r.user_lc, "alice");
        assert_eq!(r.status, JobStatus::Queued);
    }

    #[test]
    fn item_has_no_null_index_keys_and_round_trips() {
        let mut r = record();
        r.list_month = None;
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&r).unwrap();
        assert!(
            !item.contains_key("list_month"),
            "absent, not NULL: index keys must be missing"
        );
        assert!(!item.contains_key("hidden_at"));
        let back: JobRecord = serde_dynamo::from_item(item.clone()).unwrap();
        assert_eq!(back, r);
        // `woke` is written as a string set (`ADD`, release windows).
        let mut with_woke = item;
        with_woke.insert(
            "woke".into(),
            aws_sdk_dynamodb::types::AttributeValue::Ss(vec!["01A".into(), "01B".into()]),
        );
        let back: JobRecord = serde_dynamo::from_item(with_woke).unwrap();
        assert_eq!(back.woke, ["01A", "01B"]);
    }

    #[test]
    fn an_active_job_says_what_it_waits_for() {
        let now = crate::clock::parse("2026-11-30T12:00:00.000Z").unwrap();
        let mut job = record();
        job.status = JobStatus::Queued;
        assert_eq!(job.waiting_for(now), Some(Waiting::Capacity), "queued");
        job.limit_wait = true;
        assert_eq!(
            job.waiting_for(now),
            Some(Waiting::TenantLimit),
            "in its tenant's line"
        );
        job.limit_wait = false;
        job.status = JobStatus::Running;
        assert_eq!(
            job.waiting_for(now),
            Some(Waiting::Capacity),
            "running, nothing settled: behind other work"
        );
        job.succeeded = 1;
        assert_eq!(job.waiting_for(now), None, "moving");
        job.paced_at = Some("2026-11-30T11:59:30.000Z".into());
        assert_eq!(
            job.waiting_for(now),
            Some(Waiting::RateLimit),
            "throttled 30 s ago"
        );
        job.paced_at = Some("2026-11-30T11:58:30.000Z".into());
        assert_eq!(job.waiting_for(now), None, "throttled 90 s ago");
        job.paced_at = Some("2026-11-30T11:59:30.000Z".into());
        job.cancel_requested_at = Some("2026-11-30T11:59:59.000Z".into());
        assert_eq!(job.waiting_for(now), None, "being cancelled");
        job.cancel_requested_at = None;
        job.status = JobStatus::Completed;
        assert_eq!(job.waiting_for(now), None, "ended");
    }

    #[test]
    fn view_maps_type_label_and_progress() {
        let mut r = record();
        r.succeeded = 1;
        r.failed = 1;
        let v = serde_json::to_value(r.view()).unwrap();
        assert_eq!(v["type"], "ai_text_embedding");
        assert_eq!(v["type_label"], "AI Text Embedding");
        assert_eq!(
            v["progress"],
            serde_json::json!({"total": 3, "succeeded": 1, "failed": 1, "cancelled": 0, "percent": 66})
        );
        assert_eq!(v["completed_at"], serde_json::Value::Null);
    }

    #[test]
    fn retries_are_listed_oldest_first_whatever_order_they_were_linked_in() {
        let mut r = record();
        let (older, newer) = (
            ulid::Ulid::from_parts(1_764_496_800_000, 9).to_string(),
            ulid::Ulid::from_parts(1_764_496_800_001, 1).to_string(),
        );
        r.retries = vec![newer.clone(), older.clone()];
        assert_eq!(r.view().retries, vec![older, newer]);
    }

    #[test]
    fn idempotency_keys_do_not_collide_across_part_boundaries() {
        assert_ne!(
            idempotency_pk("acme", "ab", "c"),
            idempotency_pk("acme", "a", "bc")
        );
        assert_eq!(
            idempotency_pk("acme", "a", "k"),
            idempotency_pk("acme", "a", "k")
        );
    }
}
