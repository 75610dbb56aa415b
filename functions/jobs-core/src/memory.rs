//! In-memory adapters of the ports, with DynamoDB's semantics where the domain relies on
//! them (sparse indexes, descending keyset pages, `Limit` before the filter). For tests and
//! benchmarks of the domain without AWS.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;

use crate::domain::api_key::{ApiKeyRecord, MAX_API_KEYS};
use crate::domain::audit::AuditRecord;
use crate::domain::ended::{JobEndEvent, Observers};
use crate::domain::file::JobFile;
use crate::domain::job::JobStatus;
use crate::domain::job::JobType;
use crate::domain::limits::{Admission, LimitsRecord, UsageCounts};
use crate::domain::metrics::{MetricAdd, MetricItem};
use crate::domain::record::owned_by;
use crate::domain::record::{IdempotencyRecord, JobRecord, ListIndex, ScheduleRecord};
use crate::domain::sender::{MAX_SENDERS, SenderRecord};
use crate::domain::window::{Acquired, ReleaseWindow, SlotPass, WindowKey};
use crate::error::StoreError;
use crate::ports::AuditLog;
use crate::ports::EventBus;
use crate::ports::MetricsStore;
use crate::ports::{
    ActiveJob, ApiKeyStore, ChunkCommit, ChunkLedger, ChunkOutcomes, CreateOutcome, IndexEntry,
    IndexPage, IndexQuery, InputStore, JobEnds, JobStore, LimitsStore, ProgressStore, QueueDepths,
    ScheduleStore, SenderIdentities, SenderStore, UsageStore, WindowStore, WorkMessage, WorkQueue,
};

#[derive(Default)]
pub struct MemoryStore {
    jobs: Mutex<BTreeMap<String, JobRecord>>,
    /// Chunk ledger items, by (job id, chunk number).
    pub ledger: Mutex<BTreeMap<(String, u64), ChunkLedger>>,
    /// What the ledger items say of each item, by (job id, chunk number).
    outcomes: Mutex<BTreeMap<(String, u64), ChunkOutcomes>>,
    /// Successful completions, to assert that exactly one worker finished a job.
    pub completions: Mutex<Vec<(String, JobStatus)>>,
    idempotency: Mutex<BTreeMap<String, IdempotencyRecord>>,
    /// Index queries served, to assert read costs.
    pub queries: Mutex<Vec<IndexQuery>>,
    /// Metric aggregates by (pk, sk).
    metrics: Mutex<BTreeMap<(String, String), BTreeMap<String, u64>>>,
    /// Items written per `add_metrics` call, to assert write costs.
    pub metric_writes: Mutex<Vec<usize>>,
    schedules: Mutex<BTreeMap<String, ScheduleRecord>>,
    api_keys: Mutex<BTreeMap<String, ApiKeyRecord>>,
    senders: Mutex<BTreeMap<String, SenderRecord>>,
    limits: Mutex<BTreeMap<String, LimitsRecord>>,
    /// Creates counted, by (tenant, minute).
    creates: Mutex<BTreeMap<(String, String), u64>>,
    /// Release windows, by key.
    windows: Mutex<BTreeMap<WindowKey, ReleaseWindow>>,
    /// Jobs whose first chain heads were held (`held` exists, even empty).
    held_once: Mutex<HashSet<String>>,
    /// Tenants' usage items, by tenant.
    usage: Mutex<BTreeMap<String, UsageCounts>>,
    /// Tenants' lines of jobs waiting for a running slot, by (tenant, type key): job ids.
    lines: Mutex<BTreeMap<(String, String), BTreeSet<String>>>,
    /// Uploads used by a job, by upload key.
    uploads_used: Mutex<HashSet<String>>,
}

/// A keys-only index page as DynamoDB reads it: entries `(sort value, pk)` in sort order,
/// those after `start`, at most `limit`, and the last one's key when the page is full.
fn key_page(
    entries: impl Iterator<Item = (String, String)>,
    sort: &str,
    start: Option<crate::ports::IndexKey>,
    limit: u32,
    prefix: &str,
) -> crate::ports::IdPage {
    let after = start.and_then(|k| Some((k.get(sort)?.clone(), k.get("pk")?.clone())));
    let mut sorted: Vec<(String, String)> = entries
        .filter(|e| after.as_ref().is_none_or(|a| e > a))
        .collect();
    sorted.sort();
    sorted.truncate(limit.max(1) as usize);
    let last = (sorted.len() == limit.max(1) as usize)
        .then(|| {
            sorted.last().map(|(at, pk)| {
                BTreeMap::from([
                    (sort.to_string(), at.clone()),
                    ("pk".to_string(), pk.clone()),
                ])
            })
        })
        .flatten();
    (
        sorted
            .into_iter()
            .filter_map(|(_, pk)| pk.strip_prefix(prefix).map(str::to_string))
            .collect(),
        last,
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryStore {
    pub fn insert(&self, job: JobRecord) {
        lock(&self.jobs).insert(job.id.clone(), job);
    }

    /// Registers `identity` (an address or a domain, lower case) as `tenant`'s sender, as
    /// `POST /senders` would (test setup).
    pub fn register_sender(&self, tenant: &str, identity: &str) {
        use crate::domain::sender::{SENDER_SK, SenderKind, sender_pk};
        let kind = if identity.contains('@') {
            SenderKind::Address
        } else {
            SenderKind::Domain
        };
        lock(&self.senders).insert(
            identity.to_string(),
            SenderRecord {
                pk: sender_pk(identity),
                sk: SENDER_SK.into(),
                owned_by: Some(owned_by(tenant, "sender")),
                identity: identity.into(),
                kind,
                tenant: tenant.into(),
                created_by: "setup".into(),
                created_at: crate::clock::format(crate::clock::now()),
                removed_at: None,
                expires_at: None,
            },
        );
    }

    pub fn job(&self, id: &str) -> Option<JobRecord> {
        lock(&self.jobs).get(id).cloned()
    }

    /// Every job's id, in id (creation) order.
    pub fn job_ids(&self) -> Vec<String> {
        lock(&self.jobs).keys().cloned().collect()
    }

    pub fn job_count(&self) -> usize {
        lock(&self.jobs).len()
    }

    fn partition_of(job: &JobRecord, index: ListIndex) -> Option<&String> {
        match index {
            ListIndex::ByTenant => job.list_tenant.as_ref(),
            ListIndex::ByTenantUser => job.list_tenant_user.as_ref(),
            ListIndex::ByMonth => job.list_month.as_ref(),
            ListIndex::HiddenByTenant => job.hidden_tenant.as_ref(),
            ListIndex::HiddenByMonth => job.hidden_month.as_ref(),
        }
    }

    fn matches(job: &JobRecord, q: &IndexQuery) -> bool {
        let f = &q.filter;
        f.status.is_none_or(|s| s == job.status)
            && f.job_type.is_none_or(|t| t == job.job_type)
            && f.user.as_ref().is_none_or(|u| *u == job.user)
            && f.search.as_ref().is_none_or(|s| {
                s.types.contains(&job.job_type)
                    || job.tenant.starts_with(&s.term)
                    || job.user_lc.starts_with(&s.term)
            })
    }
}

impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<bool, StoreError> {
        let mut keys = lock(&self.api_keys);
        if keys.contains_key(&key.id) {
            return Ok(false);
        }
        keys.insert(key.id.clone(), key.clone());
        Ok(true)
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(lock(&self.api_keys).get(id).cloned())
    }

    async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let partition = owned_by(tenant, "api_key");
        Ok(lock(&self.api_keys)
            .values()
            .filter(|k| k.owned_by.as_ref() == Some(&partition))
            .take(MAX_API_KEYS + 1)
            .cloned()
            .collect())
    }

    async fn revoke_api_key(
        &self,
        id: &str,
        tenant: &str,
        at: &str,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let mut keys = lock(&self.api_keys);
        match keys.get_mut(id) {
            Some(key) if key.tenant == tenant && key.revoked_at.is_none() => {
                key.revoked_at = Some(at.to_string());
                key.owned_by = None;
                key.expires_at = Some(ttl);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_api_key(&self, id: &str, at: &str, since: &str) -> Result<bool, StoreError> {
        let mut keys = lock(&self.api_keys);
        match keys.get_mut(id) {
            Some(key)
                if key.revoked_at.is_none()
                    && key.last_used_at.as_deref().is_none_or(|last| last < since) =>
            {
                key.last_used_at = Some(at.to_string());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl SenderStore for MemoryStore {
    async fn add_sender(&self, sender: &SenderRecord) -> Result<bool, StoreError> {
        let mut senders = lock(&self.senders);
        if senders
            .get(&sender.identity)
            .is_some_and(SenderRecord::is_registered)
        {
            return Ok(false);
        }
        senders.insert(sender.identity.clone(), sender.clone());
        Ok(true)
    }

    async fn get_senders(&self, identities: &[String]) -> Result<Vec<SenderRecord>, StoreError> {
        let senders = lock(&self.senders);
        Ok(identities
            .iter()
            .filter_map(|identity| senders.get(identity).cloned())
            .collect())
    }

    async fn list_senders(&self, tenant: &str) -> Result<Vec<SenderRecord>, StoreError> {
        let partition = owned_by(tenant, "sender");
        let mut listed: Vec<SenderRecord> = lock(&self.senders)
            .values()
            .filter(|s| s.owned_by.as_ref() == Some(&partition))
            .cloned()
            .collect();
        listed.sort_by(|a, b| a.pk.cmp(&b.pk));
        listed.truncate(MAX_SENDERS + 1);
        Ok(listed)
    }

    async fn remove_sender(
        &self,
        identity: &str,
        tenant: &str,
        at: &str,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        match lock(&self.senders).get_mut(identity) {
            Some(sender) if sender.tenant == tenant && sender.is_registered() => {
                sender.removed_at = Some(at.to_string());
                sender.owned_by = None;
                sender.expires_at = Some(ttl);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl LimitsStore for MemoryStore {
    async fn get_limits(&self, tenant: &str) -> Result<Option<LimitsRecord>, StoreError> {
        Ok(lock(&self.limits).get(tenant).cloned())
    }

    async fn put_limits(&self, limits: &LimitsRecord) -> Result<(), StoreError> {
        lock(&self.limits).insert(limits.tenant.clone(), limits.clone());
        Ok(())
    }

    async fn count_create(
        &self,
        tenant: &str,
        minute: &str,
        limit: u32,
        _ttl: i64,
    ) -> Result<bool, StoreError> {
        let mut creates = lock(&self.creates);
        let count = creates
            .entry((tenant.to_string(), minute.to_string()))
            .or_default();
        if *count >= u64::from(limit) {
            return Ok(false);
        }
        *count += 1;
        Ok(true)
    }

    async fn count_upload(
        &self,
        tenant: &str,
        day: &str,
        limit: u32,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        self.count_create(tenant, &crate::domain::limits::uploads_sk(day), limit, ttl)
            .await
    }

    async fn creates_in(&self, tenant: &str, minute: &str) -> Result<u64, StoreError> {
        Ok(lock(&self.creates)
            .get(&(tenant.to_string(), minute.to_string()))
            .copied()
            .unwrap_or(0))
    }
}

impl UsageStore for MemoryStore {
    async fn usage(&self, tenant: &str) -> Result<UsageCounts, StoreError> {
        Ok(lock(&self.usage).get(tenant).cloned().unwrap_or_default())
    }

    async fn create_counted(
        &self,
        job: &JobRecord,
        idem: Option<&IdempotencyRecord>,
        max_queued: u32,
    ) -> Result<CreateOutcome, StoreError> {
        // Locks in one order everywhere: jobs, usage, lines, idempotency.
        let mut jobs = lock(&self.jobs);
        let mut usage = lock(&self.usage);
        let counts = usage.entry(job.tenant.clone()).or_default();
        if counts.queued >= u64::from(max_queued) {
            return Ok(CreateOutcome::QueueFull);
        }
        let mut records = lock(&self.idempotency);
        if idem.is_some_and(|idem| records.contains_key(&idem.pk)) {
            return Ok(CreateOutcome::IdempotencyKeyTaken);
        }
        let mut used = lock(&self.uploads_used);
        if let Some(upload) = job.file.as_ref().and_then(JobFile::upload) {
            if used.contains(upload) {
                return Ok(CreateOutcome::UploadUsed);
            }
            used.insert(upload.to_string());
        }
        if let Some(idem) = idem {
            records.insert(idem.pk.clone(), idem.clone());
        }
        counts.queued += 1;
        jobs.insert(job.id.clone(), job.clone());
        Ok(CreateOutcome::Created)
    }

    async fn admit(&self, job: &JobRecord, max_running: u32) -> Result<Admission, StoreError> {
        let mut jobs = lock(&self.jobs);
        let mut usage = lock(&self.usage);
        let mut lines = lock(&self.lines);
        let Some(stored) = jobs.get_mut(&job.id).filter(|j| {
            j.status == JobStatus::Queued && !j.admitted && j.limit_wait == job.limit_wait
        }) else {
            return Ok(Admission::Changed);
        };
        let counts = usage.entry(job.tenant.clone()).or_default();
        let key = job.job_type.key().to_string();
        if counts.running(job.job_type) >= u64::from(max_running)
            || (!job.limit_wait && counts.waiting(job.job_type) > 0)
        {
            return Ok(Admission::Full);
        }
        stored.admitted = true;
        stored.limit_wait = false;
        *counts.running.entry(key.clone()).or_default() += 1;
        counts.queued = counts.queued.saturating_sub(1);
        if job.limit_wait {
            let waiting = counts.waiting.entry(key.clone()).or_default();
            *waiting = waiting.saturating_sub(1);
            if let Some(line) = lines.get_mut(&(job.tenant.clone(), key)) {
                line.remove(&job.id);
            }
        }
        Ok(Admission::Admitted)
    }

    async fn join_line(&self, job: &JobRecord) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        let Some(stored) = jobs
            .get_mut(&job.id)
            .filter(|j| j.status == JobStatus::Queued && !j.admitted && !j.limit_wait)
        else {
            return Ok(false);
        };
        stored.limit_wait = true;
        let key = job.job_type.key().to_string();
        *lock(&self.usage)
            .entry(job.tenant.clone())
            .or_default()
            .waiting
            .entry(key.clone())
            .or_default() += 1;
        lock(&self.lines)
            .entry((job.tenant.clone(), key))
            .or_default()
            .insert(job.id.clone());
        Ok(true)
    }

    async fn release_usage(&self, job: &JobRecord) -> Result<bool, StoreError> {
        if !job.counted {
            return Ok(false);
        }
        let mut jobs = lock(&self.jobs);
        let Some(stored) = jobs.get_mut(&job.id).filter(|j| !j.usage_released) else {
            return Ok(false);
        };
        stored.usage_released = true;
        let mut usage = lock(&self.usage);
        let counts = usage.entry(job.tenant.clone()).or_default();
        let key = job.job_type.key().to_string();
        let less = |n: &mut u64| *n = n.saturating_sub(1);
        if job.admitted {
            less(counts.running.entry(key).or_default());
        } else {
            less(&mut counts.queued);
            if job.limit_wait {
                less(counts.waiting.entry(key.clone()).or_default());
                if let Some(line) = lock(&self.lines).get_mut(&(job.tenant.clone(), key)) {
                    line.remove(&job.id);
                }
            }
        }
        Ok(true)
    }

    async fn first_waiting(
        &self,
        tenant: &str,
        job_type: JobType,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        Ok(lock(&self.lines)
            .get(&(tenant.to_string(), job_type.key().to_string()))
            .map(|line| line.iter().take(count).cloned().collect())
            .unwrap_or_default())
    }
}

impl ScheduleStore for MemoryStore {
    async fn save_schedule(
        &self,
        schedule: &ScheduleRecord,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut schedules = lock(&self.schedules);
        let stored = schedules.get(&schedule.id).map(|s| s.version);
        if stored != expected {
            return Ok(false);
        }
        schedules.insert(schedule.id.clone(), schedule.clone());
        Ok(true)
    }

    async fn get_schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        Ok(lock(&self.schedules).get(id).cloned())
    }

    async fn list_schedules(
        &self,
        tenant: &str,
        start: Option<crate::ports::IndexKey>,
        limit: u32,
    ) -> Result<(Vec<ScheduleRecord>, Option<crate::ports::IndexKey>), StoreError> {
        let schedules = lock(&self.schedules);
        let after = start.as_ref().and_then(|k| k.get("list_sk")).cloned();
        let mut listed: Vec<&ScheduleRecord> = schedules
            .values()
            .filter(|s| s.sched_tenant.as_deref() == Some(tenant))
            .filter(|s| after.as_ref().is_none_or(|a| s.list_sk.as_ref() > Some(a)))
            .collect();
        listed.sort_by(|a, b| a.list_sk.cmp(&b.list_sk));
        listed.truncate(limit.max(1) as usize);
        let last = (listed.len() == limit.max(1) as usize)
            .then(|| {
                listed.last().map(|s| {
                    BTreeMap::from([
                        ("pk".to_string(), s.pk.clone()),
                        ("sk".to_string(), s.sk.clone()),
                        ("list_sk".to_string(), s.list_sk.clone().unwrap_or_default()),
                        ("sched_tenant".to_string(), tenant.to_string()),
                    ])
                })
            })
            .flatten();
        Ok((listed.into_iter().cloned().collect(), last))
    }

    async fn due_schedules(
        &self,
        shard: u32,
        now: &str,
        start: Option<crate::ports::IndexKey>,
        limit: u32,
    ) -> Result<crate::ports::IdPage, StoreError> {
        let schedules = lock(&self.schedules);
        let due = schedules
            .values()
            .filter(|s| s.sched_due.as_deref() == Some(shard.to_string().as_str()))
            .filter_map(|s| {
                s.next_run_at
                    .clone()
                    .filter(|at| at.as_str() <= now)
                    .map(|at| (at, s.pk.clone()))
            });
        Ok(key_page(due, "next_run_at", start, limit, "SCHED#"))
    }
}

impl JobStore for MemoryStore {
    async fn create(
        &self,
        job: &JobRecord,
        idem: Option<&IdempotencyRecord>,
    ) -> Result<CreateOutcome, StoreError> {
        let mut records = lock(&self.idempotency);
        if idem.is_some_and(|idem| records.contains_key(&idem.pk)) {
            return Ok(CreateOutcome::IdempotencyKeyTaken);
        }
        if let Some(upload) = job.file.as_ref().and_then(JobFile::upload)
            && !lock(&self.uploads_used).insert(upload.to_string())
        {
            return Ok(CreateOutcome::UploadUsed);
        }
        if let Some(idem) = idem {
            records.insert(idem.pk.clone(), idem.clone());
        }
        drop(records);
        self.insert(job.clone());
        Ok(CreateOutcome::Created)
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.job(id))
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<JobRecord>, StoreError> {
        let jobs = lock(&self.jobs);
        Ok(ids.iter().filter_map(|id| jobs.get(id).cloned()).collect())
    }

    async fn get_idempotency(
        &self,
        pk: &str,
        now: i64,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(lock(&self.idempotency)
            .get(pk)
            .filter(|r| r.expires_at >= now)
            .cloned())
    }

    async fn hide(
        &self,
        job: &JobRecord,
        tenant: Option<&str>,
        at: &str,
    ) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs.get_mut(&job.id) {
            Some(stored) if tenant.is_none_or(|t| t == stored.tenant) => {
                let (_, [t, tu, m]) = stored.list_keys();
                stored.hidden_at.get_or_insert_with(|| at.to_string());
                (
                    stored.list_tenant,
                    stored.list_tenant_user,
                    stored.list_month,
                ) = (None, None, None);
                (
                    stored.hidden_tenant,
                    stored.hidden_tenant_user,
                    stored.hidden_month,
                ) = (Some(t), Some(tu), Some(m));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn unhide(&self, job: &JobRecord, tenant: Option<&str>) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs.get_mut(&job.id) {
            Some(stored) if tenant.is_none_or(|t| t == stored.tenant) => {
                let (sk, [t, tu, m]) = stored.list_keys();
                stored.hidden_at = None;
                stored.list_sk = Some(sk);
                (
                    stored.list_tenant,
                    stored.list_tenant_user,
                    stored.list_month,
                ) = (Some(t), Some(tu), Some(m));
                (
                    stored.hidden_tenant,
                    stored.hidden_tenant_user,
                    stored.hidden_month,
                ) = (None, None, None);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn fail_queued(&self, id: &str, _reason: &str, at: &str) -> Result<(), StoreError> {
        if let Some(job) = lock(&self.jobs)
            .get_mut(id)
            .filter(|j| j.status == crate::domain::job::JobStatus::Queued)
        {
            job.status = crate::domain::job::JobStatus::Failed;
            job.completed_at = Some(at.to_string());
            job.end_pending = Some(at.to_string());
            job.ending = Some(crate::domain::record::end_shard(id));
            job.active = None;
        }
        Ok(())
    }

    async fn active_jobs(&self, partition: &str, limit: u32) -> Result<Vec<ActiveJob>, StoreError> {
        let jobs = lock(&self.jobs);
        let mut active: Vec<ActiveJob> = jobs
            .values()
            .filter(|j| j.active.as_deref() == Some(partition))
            .map(|j| ActiveJob {
                id: j.id.clone(),
                status: j.status,
                list_sk: j.list_sk.clone().unwrap_or_default(),
            })
            .collect();
        active.sort_by(|a, b| a.list_sk.cmp(&b.list_sk));
        active.truncate(limit.max(1) as usize);
        Ok(active)
    }

    async fn add_retry(&self, id: &str, retry: &str) -> Result<(), StoreError> {
        let mut jobs = lock(&self.jobs);
        let job = jobs
            .get_mut(id)
            .ok_or_else(|| StoreError::Corrupt(format!("no job {id}")))?;
        job.retries.push(retry.to_string());
        Ok(())
    }

    async fn cancel(&self, id: &str, from: JobStatus, at: &str) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs.get_mut(id).filter(|j| j.status == from) {
            Some(job) => {
                job.cancel_requested_at
                    .get_or_insert_with(|| at.to_string());
                if from == JobStatus::Queued {
                    job.status = JobStatus::Cancelled;
                    job.completed_at = Some(at.to_string());
                    job.end_pending = Some(at.to_string());
                    job.ending = Some(crate::domain::record::end_shard(id));
                    job.active = None;
                    job.cancelled = job.total;
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn query(&self, q: &IndexQuery) -> Result<IndexPage, StoreError> {
        lock(&self.queries).push(q.clone());
        let jobs = lock(&self.jobs);
        let mut in_partition: Vec<&JobRecord> = jobs
            .values()
            .filter(|j| Self::partition_of(j, q.index) == Some(&q.partition))
            .filter(|j| {
                let sk = j.list_sk.as_deref().unwrap_or("");
                q.sort_from.as_deref().is_none_or(|f| sk >= f)
                    && q.sort_to.as_deref().is_none_or(|t| sk <= t)
            })
            .collect();
        in_partition.sort_by(|a, b| b.list_sk.cmp(&a.list_sk));
        let after = q.start_key.as_ref().and_then(|k| k.get("list_sk")).cloned();
        let evaluated: Vec<&JobRecord> = in_partition
            .into_iter()
            .filter(|j| after.as_ref().is_none_or(|a| j.list_sk.as_ref() < Some(a)))
            .take(q.limit as usize)
            .collect();
        // Like DynamoDB: reaching `Limit` yields a LastEvaluatedKey even if nothing follows.
        let more = evaluated.len() == q.limit as usize;
        let key = |j: &JobRecord| {
            BTreeMap::from([
                ("pk".to_string(), j.pk.clone()),
                ("sk".to_string(), j.sk.clone()),
                ("list_sk".to_string(), j.list_sk.clone().unwrap_or_default()),
                (
                    q.index.partition_attribute().to_string(),
                    q.partition.clone(),
                ),
            ])
        };
        Ok(IndexPage {
            entries: evaluated
                .iter()
                .filter(|j| Self::matches(j, q))
                .map(|j| IndexEntry {
                    id: j.id.clone(),
                    key: key(j),
                })
                .collect(),
            last_key: if more {
                evaluated.last().map(|j| key(j))
            } else {
                None
            },
        })
    }
}

impl MemoryStore {
    /// Whether `pass`'s conditions hold: the head it takes is still held and the window at
    /// the version read.
    fn pass_holds(
        jobs: &BTreeMap<String, JobRecord>,
        windows: &BTreeMap<WindowKey, ReleaseWindow>,
        key: &WindowKey,
        pass: &SlotPass,
    ) -> bool {
        if let Some((job_id, chunk)) = &pass.take
            && jobs
                .get(job_id)
                .is_none_or(|j| !j.held.contains_key(&chunk.to_string()))
        {
            return false;
        }
        pass.window.as_ref().is_none_or(|change| {
            let window = windows.get(key).cloned().unwrap_or_default();
            let line = if change.versioned() {
                window.next_turn == change.version
            } else {
                !change.free || window.waiting.is_empty()
            };
            let deferred = !(change.free && change.none_deferred) || window.deferred.is_empty();
            let seen = !change.free
                || change
                    .in_flight_seen
                    .is_none_or(|seen| window.in_flight == seen);
            let wakes = change.wake.iter().all(|id| window.deferred.contains(id));
            line && deferred && wakes && seen
        })
    }

    fn apply_pass(
        jobs: &mut BTreeMap<String, JobRecord>,
        windows: &mut BTreeMap<WindowKey, ReleaseWindow>,
        key: &WindowKey,
        pass: &SlotPass,
    ) {
        if let Some(change) = &pass.window {
            let window = windows.entry(key.clone()).or_default();
            for id in &change.remove {
                window.waiting.remove(id);
            }
            for (id, turn) in &change.set {
                window.waiting.insert(id.clone(), *turn);
            }
            for id in &change.wake {
                window.deferred.remove(id);
                window.woken.insert(id.clone());
            }
            if change.versioned() {
                window.next_turn = change.next_turn;
            }
            if change.free {
                window.in_flight = window.in_flight.saturating_sub(1);
            }
        }
        if let Some((job_id, chunk)) = &pass.take
            && let Some(job) = jobs.get_mut(job_id)
        {
            job.held.remove(&chunk.to_string());
        }
        if let Some(chunk) = pass.hold
            && let Some(job) = jobs.get_mut(&pass.from_job)
        {
            job.held.insert(chunk.to_string(), true);
        }
    }
}

impl WindowStore for MemoryStore {
    async fn window(&self, key: &WindowKey) -> Result<ReleaseWindow, StoreError> {
        Ok(lock(&self.windows).get(key).cloned().unwrap_or_default())
    }

    async fn hold_first(&self, job_id: &str, chains: u64) -> Result<(), StoreError> {
        let mut jobs = lock(&self.jobs);
        let mut held_once = lock(&self.held_once);
        if let Some(job) = jobs.get_mut(job_id)
            && held_once.insert(job_id.to_string())
        {
            job.held = (0..chains).map(|c| (c.to_string(), true)).collect();
        }
        Ok(())
    }

    async fn acquire(
        &self,
        key: &WindowKey,
        limit: u64,
        job_id: &str,
        heads: &[u64],
    ) -> Result<Acquired, StoreError> {
        let mut jobs = lock(&self.jobs);
        let mut windows = lock(&self.windows);
        let window = windows.entry(key.clone()).or_default();
        let count = heads.len() as u64;
        if window.in_flight.saturating_add(count) > limit {
            return Ok(Acquired::Full);
        }
        let Some(job) = jobs
            .get_mut(job_id)
            .filter(|j| heads.iter().all(|h| j.held.contains_key(&h.to_string())))
        else {
            return Ok(Acquired::Taken);
        };
        window.in_flight += count;
        for head in heads {
            job.held.remove(&head.to_string());
        }
        Ok(Acquired::Granted)
    }

    async fn wait(&self, key: &WindowKey, limit: u64, job_id: &str) -> Result<bool, StoreError> {
        let mut windows = lock(&self.windows);
        let window = windows.entry(key.clone()).or_default();
        if window.in_flight < limit {
            return Ok(false);
        }
        let turn = window.next_turn;
        window.waiting.entry(job_id.to_string()).or_insert(turn);
        window.next_turn += 1;
        Ok(true)
    }

    async fn defer(&self, key: &WindowKey, limit: u64, job_id: &str) -> Result<bool, StoreError> {
        let mut windows = lock(&self.windows);
        let window = windows.entry(key.clone()).or_default();
        let behind_others = !(window.deferred.is_empty() && window.woken.is_empty());
        if window.in_flight < limit && !(behind_others && window.in_flight > 0) {
            return Ok(false);
        }
        window.deferred.insert(job_id.to_string());
        Ok(true)
    }

    async fn wake(&self, key: &WindowKey, by: &str, jobs: &[String]) -> Result<bool, StoreError> {
        let mut all = lock(&self.jobs);
        let mut windows = lock(&self.windows);
        let window = windows.entry(key.clone()).or_default();
        if !jobs.iter().all(|id| window.deferred.contains(id)) {
            return Ok(false);
        }
        for id in jobs {
            window.deferred.remove(id);
            window.woken.insert(id.clone());
        }
        if let Some(job) = all.get_mut(by) {
            for id in jobs {
                if !job.woke.contains(id) {
                    job.woke.push(id.clone());
                }
            }
        }
        Ok(true)
    }

    async fn leave(
        &self,
        key: &WindowKey,
        job_id: &str,
        seen: Option<(u64, u64)>,
    ) -> Result<bool, StoreError> {
        let mut windows = lock(&self.windows);
        let window = windows.entry(key.clone()).or_default();
        if seen.is_some_and(|(in_flight, woken)| {
            (window.in_flight, window.woken.len() as u64) != (in_flight, woken)
        }) {
            return Ok(false);
        }
        window.deferred.remove(job_id);
        window.woken.remove(job_id);
        Ok(true)
    }

    async fn pass(&self, key: &WindowKey, pass: &SlotPass) -> Result<bool, StoreError> {
        let mut ledger = lock(&self.ledger);
        let mut jobs = lock(&self.jobs);
        let mut windows = lock(&self.windows);
        let Some(from) = ledger
            .get_mut(&(pass.from_job.clone(), pass.from_chunk))
            .filter(|l| l.done && l.passed.is_none())
        else {
            return Ok(false);
        };
        if !Self::pass_holds(&jobs, &windows, key, pass) {
            return Ok(false);
        }
        Self::apply_pass(&mut jobs, &mut windows, key, pass);
        from.passed = Some(pass.to.clone());
        from.woke = pass.woken().to_vec();
        Ok(true)
    }
}

impl ProgressStore for MemoryStore {
    async fn chunk_outcomes(
        &self,
        id: &str,
        from: u64,
        limit: u32,
    ) -> Result<(Vec<ChunkOutcomes>, bool), StoreError> {
        let outcomes = lock(&self.outcomes);
        let mut all = outcomes
            .range((id.to_string(), from)..=(id.to_string(), u64::MAX))
            .map(|(_, o)| o.clone());
        let page: Vec<ChunkOutcomes> = all.by_ref().take(limit.max(1) as usize).collect();
        Ok((page, all.next().is_some()))
    }

    async fn load(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.job(id))
    }

    async fn load_many(&self, ids: &[String]) -> Result<Vec<JobRecord>, StoreError> {
        Ok(ids.iter().filter_map(|id| self.job(id)).collect())
    }

    async fn begin(
        &self,
        id: &str,
        total: u64,
        chunks_total: u64,
        at: &str,
    ) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs
            .get_mut(id)
            .filter(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running))
        {
            Some(job) => {
                job.status = JobStatus::Running;
                job.total = total;
                job.chunks_total = Some(chunks_total);
                job.started_at.get_or_insert_with(|| at.to_string());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn lease_plan(&self, id: &str, until: i64, now: i64) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs
            .get_mut(id)
            .filter(|j| j.status == JobStatus::Queued && j.plan_lease.is_none_or(|held| held < now))
        {
            Some(job) => {
                job.plan_lease = Some(until);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn plan_paused(&self, id: &str, rows: u64) -> Result<(), StoreError> {
        if let Some(job) = lock(&self.jobs)
            .get_mut(id)
            .filter(|j| j.status == JobStatus::Queued)
        {
            job.planned_rows = Some(rows);
            job.plan_lease = None;
        }
        Ok(())
    }

    async fn chunk_ledger(&self, id: &str, chunk: u64) -> Result<Option<ChunkLedger>, StoreError> {
        Ok(lock(&self.ledger).get(&(id.to_string(), chunk)).cloned())
    }

    async fn chunk_start(
        &self,
        id: &str,
        chunk: u64,
    ) -> Result<(Option<JobRecord>, Option<ChunkLedger>), StoreError> {
        Ok((self.job(id), self.chunk_ledger(id, chunk).await?))
    }

    async fn commit_chunk(
        &self,
        id: &str,
        chunk: u64,
        commit: &ChunkCommit,
        _expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut ledger = lock(&self.ledger);
        let mut jobs = lock(&self.jobs);
        if !jobs.contains_key(id) {
            return Err(StoreError::Corrupt(format!(
                "no job {id} for chunk {chunk}"
            )));
        }
        let key = (id.to_string(), chunk);
        if ledger.get(&key).map(|l| &l.settled) != commit.before.as_ref() {
            return Ok(false);
        }
        if let Some((window_key, pass)) = &commit.pass {
            let mut windows = lock(&self.windows);
            if !Self::pass_holds(&jobs, &windows, window_key, pass) {
                return Ok(false);
            }
            Self::apply_pass(&mut jobs, &mut windows, window_key, pass);
        }
        let Some(job) = jobs.get_mut(id) else {
            return Err(StoreError::Corrupt(format!(
                "no job {id} for chunk {chunk}"
            )));
        };
        let entry = ledger.entry(key).or_default();
        entry.passed = commit.pass.as_ref().map(|(_, pass)| pass.to.clone());
        entry.woke = commit
            .pass
            .as_ref()
            .map(|(_, pass)| pass.woken().to_vec())
            .unwrap_or_default();
        entry.settled = commit.after.clone();
        let mut outcomes = lock(&self.outcomes);
        let outcomes = outcomes
            .entry((id.to_string(), chunk))
            .or_insert_with(|| ChunkOutcomes {
                chunk,
                ..ChunkOutcomes::default()
            });
        outcomes.settled = commit.after.clone();
        outcomes.failures.extend(commit.failures.iter().cloned());
        outcomes.cancelled.extend(commit.cancelled.iter().copied());
        entry.done = commit.done;
        job.succeeded += commit.tally.succeeded;
        job.failed += commit.tally.failed;
        job.cancelled += commit.tally.cancelled + commit.chain_rest.items;
        job.chunks_done += u64::from(commit.done) + commit.chain_rest.chunks;
        job.errors.extend(commit.errors.iter().cloned());
        if commit.paced_at.is_some() {
            job.paced_at.clone_from(&commit.paced_at);
        }
        Ok(true)
    }

    async fn complete(&self, id: &str, status: JobStatus, at: &str) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs
            .get_mut(id)
            .filter(|j| j.status == JobStatus::Running && j.chunks_total == Some(j.chunks_done))
        {
            Some(job) => {
                job.status = status;
                job.completed_at = Some(at.to_string());
                job.end_pending = Some(at.to_string());
                job.ending = Some(crate::domain::record::end_shard(id));
                job.active = None;
                lock(&self.completions).push((id.to_string(), status));
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl JobEnds for MemoryStore {
    async fn claim_end(
        &self,
        id: &str,
        mark: &str,
        at: &str,
        stale_before: &str,
    ) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        let claimable = |job: &&mut JobRecord| {
            job.end_pending.as_deref() == Some(mark)
                && job
                    .end_claimed_at
                    .as_deref()
                    .is_none_or(|c| c < stale_before)
        };
        match jobs.get_mut(id).filter(claimable) {
            Some(job) => {
                job.end_claimed_at = Some(at.to_string());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn release_end(&self, id: &str, claimed_at: &str) -> Result<(), StoreError> {
        if let Some(job) = lock(&self.jobs)
            .get_mut(id)
            .filter(|job| job.end_claimed_at.as_deref() == Some(claimed_at))
        {
            job.end_claimed_at = None;
        }
        Ok(())
    }

    async fn end_handled(&self, id: &str) -> Result<(), StoreError> {
        if let Some(job) = lock(&self.jobs).get_mut(id) {
            job.end_pending = None;
            job.ending = None;
            job.end_claimed_at = None;
        }
        Ok(())
    }

    async fn pending_ends(
        &self,
        shard: u32,
        before: &str,
        start: Option<crate::ports::IndexKey>,
        limit: u32,
    ) -> Result<crate::ports::IdPage, StoreError> {
        let jobs = lock(&self.jobs);
        let pending = jobs
            .values()
            .filter(|j| j.ending.as_deref() == Some(shard.to_string().as_str()))
            .filter_map(|j| {
                j.end_pending
                    .clone()
                    .filter(|at| at.as_str() < before)
                    .map(|at| (at, j.pk.clone()))
            });
        Ok(key_page(pending, "end_pending", start, limit, "JOB#"))
    }
}

impl MetricsStore for MemoryStore {
    async fn add_metrics(&self, adds: &[MetricAdd]) -> Result<(), StoreError> {
        let mut metrics = lock(&self.metrics);
        for add in adds {
            let item = metrics.entry((add.pk.clone(), add.sk.clone())).or_default();
            for (name, value) in &add.adds {
                *item.entry(name.clone()).or_default() += value;
            }
        }
        lock(&self.metric_writes).push(adds.len());
        Ok(())
    }

    async fn read_metrics(
        &self,
        pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<MetricItem>, StoreError> {
        let metrics = lock(&self.metrics);
        Ok(metrics
            .iter()
            .filter(|((p, sk), _)| p == pk && sk.as_str() >= from && sk.as_str() <= to)
            .map(|((_, sk), c)| (sk.clone(), c.clone()))
            .collect())
    }
}

/// The audit table: entries by (pk, sk), and its `by_day` and `by_tenant_day` views.
#[derive(Default)]
pub struct MemoryAudit {
    entries: Mutex<BTreeMap<(String, String), AuditRecord>>,
    /// When set, appends fail (to test that an action's entry is not lost).
    pub broken: std::sync::atomic::AtomicBool,
}

impl MemoryAudit {
    /// Every entry, in key order.
    pub fn entries(&self) -> Vec<AuditRecord> {
        lock(&self.entries).values().cloned().collect()
    }
}

impl AuditLog for MemoryAudit {
    async fn append(&self, record: &AuditRecord) -> Result<(), StoreError> {
        if self.broken.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the audit table"));
        }
        lock(&self.entries)
            .entry((record.pk.clone(), record.sk.clone()))
            .or_insert_with(|| record.clone());
        Ok(())
    }

    async fn job_entries(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<AuditRecord>, bool), StoreError> {
        let pk = crate::domain::record::job_pk(job_id);
        let entries = lock(&self.entries);
        let mut all = entries
            .values()
            .filter(|r| r.pk == pk && after.is_none_or(|a| r.sk.as_str() > a))
            .cloned();
        let page: Vec<AuditRecord> = all.by_ref().take(limit.max(1) as usize).collect();
        Ok((page, all.next().is_some()))
    }

    async fn day_entries(
        &self,
        tenant: Option<&str>,
        partition: &str,
        from: &str,
        to: &str,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let entries = lock(&self.entries);
        let mut found: Vec<AuditRecord> = entries
            .values()
            .filter(|r| match tenant {
                Some(_) => r.audit_tenant_day == partition,
                None => r.audit_day == partition,
            })
            .filter(|r| r.sk.as_str() >= from && r.sk.as_str() <= to)
            .cloned()
            .collect();
        found.sort_by(|a, b| b.sk.cmp(&a.sk));
        found.truncate(limit.max(1) as usize);
        Ok(found)
    }
}

/// The event bus: every event put, in order.
#[derive(Default)]
pub struct MemoryBus {
    pub events: Mutex<Vec<JobEndEvent>>,
    /// When set, puts fail (as when EventBridge refuses an entry).
    pub broken: std::sync::atomic::AtomicBool,
}

impl EventBus for MemoryBus {
    async fn put_event(&self, event: &JobEndEvent) -> Result<(), StoreError> {
        if self.broken.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the event bus"));
        }
        lock(&self.events).push(event.clone());
        Ok(())
    }
}

/// Observers over in-memory adapters, entries kept 400 days.
pub fn observers() -> Observers<MemoryAudit, MemoryBus> {
    Observers::new(
        crate::domain::audit::Audit::new(
            MemoryAudit::default(),
            crate::domain::audit::DEFAULT_AUDIT_RETENTION_DAYS,
        ),
        MemoryBus::default(),
    )
}

#[derive(Default)]
pub struct MemoryInputs {
    pub objects: Mutex<BTreeMap<String, Vec<u8>>>,
    /// The declared `(content_type, content_encoding)` of objects that have one (uploads).
    pub formats: Mutex<BTreeMap<String, crate::ports::UploadFormat>>,
    /// Multipart uploads in progress, by upload id.
    pub multipart: Mutex<BTreeMap<String, PartsOf>>,
}

/// A multipart upload in progress: its key, and its parts by number.
pub type PartsOf = (String, BTreeMap<i32, Vec<u8>>);

impl MemoryInputs {
    /// Stores `body` under `key` as a client's `PUT` to a presigned URL would.
    pub fn upload(&self, key: &str, format: crate::ports::UploadFormat, body: Vec<u8>) {
        lock(&self.objects).insert(key.to_string(), body);
        lock(&self.formats).insert(key.to_string(), format);
    }
}

impl InputStore for MemoryInputs {
    async fn head(&self, key: &str) -> Result<Option<crate::ports::ObjectHead>, StoreError> {
        let Some(bytes) = lock(&self.objects).get(key).map(|b| b.len() as u64) else {
            return Ok(None);
        };
        let format = lock(&self.formats).get(key).cloned();
        Ok(Some(crate::ports::ObjectHead {
            bytes,
            content_type: Some(
                format
                    .as_ref()
                    .map_or("application/json".to_string(), |f| f.content_type.clone()),
            ),
            content_encoding: format.and_then(|f| f.content_encoding),
        }))
    }

    /// A `memory:` URL naming the key and the expiry in seconds; nothing can `PUT` to it.
    async fn presign_put(
        &self,
        key: &str,
        format: &crate::ports::UploadFormat,
        expires_in: std::time::Duration,
    ) -> Result<crate::ports::PresignedPut, StoreError> {
        Ok(crate::ports::PresignedPut {
            method: "PUT".into(),
            url: format!("memory:///{key}?expires={}", expires_in.as_secs()),
            headers: [
                Some(("content-type", format.content_type.clone())),
                Some(("if-none-match", "*".to_string())),
                format
                    .content_encoding
                    .clone()
                    .map(|e| ("content-encoding", e)),
            ]
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        lock(&self.objects).insert(key.to_string(), body);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.objects).get(key).cloned())
    }

    async fn open(
        &self,
        key: &str,
        from: u64,
    ) -> Result<Option<crate::ports::ByteReader>, StoreError> {
        Ok(lock(&self.objects).get(key).map(|bytes| {
            let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
            Box::new(std::io::Cursor::new(bytes[from..].to_vec())) as crate::ports::ByteReader
        }))
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.objects).get(key).map(|bytes| {
            let len = bytes.len() as u64;
            let (start, end) = (
                start.min(len),
                end.unwrap_or(len).clamp(start.min(len), len),
            );
            bytes[start as usize..end as usize].to_vec()
        }))
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        let mut objects = lock(&self.objects);
        if objects.contains_key(key) {
            return Ok(false);
        }
        objects.insert(key.to_string(), body);
        Ok(true)
    }

    async fn create_multipart_upload(
        &self,
        key: &str,
        _content_type: &str,
    ) -> Result<String, StoreError> {
        let id = ulid::Ulid::new().to_string();
        lock(&self.multipart).insert(id.clone(), (key.to_string(), BTreeMap::new()));
        Ok(id)
    }

    /// The ETag is the part's number; S3's 5 MiB minimum is not checked here.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<String, StoreError> {
        match lock(&self.multipart).get_mut(upload_id) {
            Some((of, parts)) if of == key => {
                parts.insert(number, body);
                Ok(number.to_string())
            }
            _ => Err(StoreError::Unavailable("no such multipart upload")),
        }
    }

    async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), StoreError> {
        let Some((of, parts)) = lock(&self.multipart).remove(upload_id) else {
            return Err(StoreError::Unavailable("no such multipart upload"));
        };
        if of != key || etags.len() != parts.len() {
            return Err(StoreError::Unavailable("parts that were not uploaded"));
        }
        let body = parts.into_values().flatten().collect();
        lock(&self.objects).insert(key.to_string(), body);
        Ok(())
    }

    /// A `memory:` URL naming the key, the file name and the expiry in seconds.
    async fn presign_get(
        &self,
        key: &str,
        filename: &str,
        expires_in: std::time::Duration,
    ) -> Result<String, StoreError> {
        Ok(format!(
            "memory:///{key}?filename={filename}&expires={}",
            expires_in.as_secs()
        ))
    }
}

#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<(JobType, WorkMessage)>>,
    /// Messages on each type's dead-letter queue, one entry per message.
    pub dead: Mutex<Vec<JobType>>,
    /// When set, sending fails (to test the enqueue-failure path).
    pub broken: std::sync::atomic::AtomicBool,
    /// Messages sent to the export queue.
    pub exports: Mutex<Vec<crate::ports::ExportMessage>>,
}

impl WorkQueue for MemoryQueue {
    async fn send(&self, job_type: JobType, message: &WorkMessage) -> Result<(), StoreError> {
        if self.broken.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the work queue"));
        }
        lock(&self.sent).push((job_type, message.clone()));
        Ok(())
    }

    async fn send_all(
        &self,
        job_type: JobType,
        messages: &[WorkMessage],
    ) -> Result<(), StoreError> {
        for message in messages {
            self.send(job_type, message).await?;
        }
        Ok(())
    }

    async fn depths(&self, job_type: JobType) -> Result<QueueDepths, StoreError> {
        Ok(QueueDepths {
            messages_visible: self.sent_of(job_type),
            messages_in_flight: 0,
            dlq_messages: lock(&self.dead).iter().filter(|t| **t == job_type).count() as u64,
        })
    }

    async fn send_export(&self, message: &crate::ports::ExportMessage) -> Result<(), StoreError> {
        if self.broken.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the export queue"));
        }
        lock(&self.exports).push(message.clone());
        Ok(())
    }
}

impl MemoryQueue {
    /// Messages of `job_type` sent so far (the memory queue never delivers them).
    pub fn sent_of(&self, job_type: JobType) -> u64 {
        lock(&self.sent)
            .iter()
            .filter(|(t, _)| *t == job_type)
            .count() as u64
    }

    /// Takes every message sent so far.
    pub fn drain(&self) -> Vec<WorkMessage> {
        lock(&self.sent).drain(..).map(|(_, m)| m).collect()
    }
}

/// SES's verified identities (addresses and domains, lower case). An address may send
/// when it, its domain or a parent domain is one, as with SES. The default verifies
/// `example.com`, the domain of the registry's example params.
pub struct MemorySenders {
    pub identities: Mutex<HashSet<String>>,
}

impl Default for MemorySenders {
    fn default() -> MemorySenders {
        MemorySenders {
            identities: Mutex::new(HashSet::from(["example.com".to_string()])),
        }
    }
}

impl SenderIdentities for MemorySenders {
    async fn is_verified(&self, address: &str) -> Result<bool, StoreError> {
        let identities = lock(&self.identities);
        Ok(crate::aws::identities_of(&address.to_ascii_lowercase())
            .iter()
            .any(|i| identities.contains(i)))
    }
}

/// The in-memory doubles of the jobs service's ports.
pub struct MemoryPorts;

impl crate::ports::ServicePorts for MemoryPorts {
    type Senders = MemorySenders;
}

impl crate::ports::WorkerPorts for MemoryPorts {
    type Store = MemoryStore;
    type Inputs = MemoryInputs;
    type Queue = MemoryQueue;
    type Audit = MemoryAudit;
    type Bus = MemoryBus;
}

/// The in-memory doubles hold to the same conformance suites as the AWS adapters.
#[cfg(test)]
mod conformance {
    use super::*;

    #[tokio::test]
    async fn the_job_store_conforms() {
        crate::conformance::job_store(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn job_ends_conform() {
        crate::conformance::job_ends(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_progress_store_conforms() {
        crate::conformance::progress_store(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_schedule_store_conforms() {
        crate::conformance::schedule_store(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_api_key_store_conforms() {
        crate::conformance::api_key_store(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_sender_store_conforms() {
        crate::conformance::sender_store(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_limits_store_conforms() {
        crate::conformance::limits_store(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_window_store_conforms() {
        crate::conformance::window_store(&MemoryStore::default()).await;
        crate::conformance::deferred_plans(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_usage_store_conforms() {
        crate::conformance::usage_store(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_metrics_store_conforms() {
        crate::conformance::metrics_store(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_input_store_conforms() {
        crate::conformance::input_store(&MemoryInputs::default()).await;
    }

    #[tokio::test]
    async fn the_work_queue_conforms() {
        crate::conformance::work_queue(&MemoryQueue::default(), JobType::AiTextEmbedding).await;
    }

    #[tokio::test]
    async fn sender_identities_conform() {
        let senders = MemorySenders::default();
        let (address, domain) = crate::conformance::fresh_sender_identities();
        lock(&senders.identities).extend([address.clone(), domain.clone()]);
        crate::conformance::sender_identities(&senders, &address, &domain).await;
    }

    #[tokio::test]
    async fn the_event_bus_conforms() {
        let bus = MemoryBus::default();
        crate::conformance::event_bus(&bus, "conformance", async || {
            lock(&bus.events)
                .iter()
                .map(|e| serde_json::json!({"detail-type": e.detail_type(), "detail": e}))
                .collect()
        })
        .await;
    }

    #[tokio::test]
    async fn the_audit_log_conforms() {
        crate::conformance::audit_log(MemoryAudit::default()).await;
    }
}
