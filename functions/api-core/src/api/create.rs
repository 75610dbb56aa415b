//! `POST /jobs`: validate, store the input, write the job, enqueue its plan.

use serde::Deserialize;
use serde_json::Value;

use super::Jobs;
use jobs_core::clock;
use jobs_core::domain::audit::EventKind;
use jobs_core::domain::auth::Caller;
use jobs_core::domain::file::JobFile;
use jobs_core::domain::job::{JobType, JobView};
use jobs_core::domain::limits::QUEUE_FULL_RETRY_SECONDS;
use jobs_core::domain::params;
use jobs_core::domain::record::{
    IDEMPOTENCY_SK, IDEMPOTENCY_TTL_SECONDS, IdempotencyRecord, JobRecord, NewJob, idempotency_pk,
    sha256_hex,
};
use jobs_core::domain::window::WindowScope;
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::{
    CreateOutcome, InputStore, JobStore, MetricsStore, SenderIdentities, ServicePorts, UsageStore,
    WindowStore, WorkMessage, WorkQueue,
};

pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    #[serde(rename = "type")]
    pub job_type: String,
    #[serde(default)]
    pub tenant: Option<String>,
    pub params: Value,
    /// Where the items come from when not from `params`: an uploaded file.
    #[serde(default)]
    pub input: Option<JobInput>,
}

/// A job's items from a file: an upload of the caller's tenant (`POST /uploads`), used by
/// one job only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    pub upload_id: String,
}

/// The jobs or schedule a new job comes from.
#[derive(Clone, Debug, Default)]
pub struct JobLinks {
    /// The job whose failed (or cancelled) items it retries.
    pub retry_of: Option<String>,
    /// The schedule that starts it.
    pub schedule_id: Option<String>,
    /// A retry of a file job: where its items come from ([`JobFile::retry`]).
    pub file: Option<JobFile>,
}

#[derive(Debug)]
pub struct Created {
    pub job: JobView,
    /// True when an `Idempotency-Key` matched an earlier request: nothing new was created.
    pub replayed: bool,
}

impl<P: ServicePorts> Jobs<P> {
    pub async fn create_job(
        &self,
        caller: &Caller,
        request: CreateRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Created, ApiError> {
        self.create(caller, request, idempotency_key, JobLinks::default())
            .await
    }

    /// What `POST /jobs` checks before anything is written: the type, the tenant the
    /// caller may create in, the params (those of a job whose items come from a file when
    /// `from_file`), and a bulk job's sender (verified by SES and one of the tenant's
    /// senders). Errors name the field.
    pub(crate) async fn validate_request(
        &self,
        caller: &Caller,
        request: CreateRequest,
        from_file: bool,
    ) -> Result<(JobType, String, params::ValidParams), ApiError> {
        let job_type = JobType::parse(&request.job_type).ok_or_else(|| {
            ApiError::invalid(
                "type",
                format!("must be one of {}", jobs_core::domain::registry::keys()),
            )
        })?;
        let tenant = super::requested_tenant(caller, request.tenant.as_deref())?;
        let valid = if from_file {
            params::validate_for_file(job_type, request.params)?
        } else {
            params::validate(job_type, request.params)?
        };
        if let Some(sender) = &valid.sender {
            if !self.senders.is_verified(sender).await? {
                return Err(ApiError::invalid(
                    "params.from",
                    "is not a verified SES identity: verify the address or its domain first",
                ));
            }
            if !self.may_send_from(&tenant, sender).await? {
                return Err(ApiError::invalid(
                    "params.from",
                    format!(
                        "is not one of tenant {tenant}'s senders: a tenant admin registers it (POST /senders)"
                    ),
                ));
            }
        }
        Ok((job_type, tenant, valid))
    }

    /// Creates a job; `links` names the job whose items it retries or the schedule that
    /// starts it.
    pub(crate) async fn create(
        &self,
        caller: &Caller,
        request: CreateRequest,
        idempotency_key: Option<&str>,
        links: JobLinks,
    ) -> Result<Created, ApiError> {
        let upload_id = request.input.as_ref().map(|i| i.upload_id.clone());
        let from_file = upload_id.is_some() || links.file.is_some();
        let (job_type, tenant, valid) = self.validate_request(caller, request, from_file).await?;
        let file = match &upload_id {
            Some(id) => Some(self.uploaded_file(&tenant, id).await?),
            None => links.file,
        };
        let stored_params = serde_json::to_vec(&valid.params)
            .map_err(|e| ApiError::invalid("params", e.to_string()))?;
        let mut hashed: Vec<&[u8]> =
            vec![job_type.key().as_bytes(), tenant.as_bytes(), &stored_params];
        if let Some(id) = &upload_id {
            hashed.push(id.as_bytes());
        }
        if let Some(original) = &links.retry_of {
            hashed.push(original.as_bytes());
        }
        if let Some(schedule) = &links.schedule_id {
            hashed.push(schedule.as_bytes());
        }
        let request_hash = sha256_hex(&hashed);

        let now = clock::now();
        let idempotency = match idempotency_key {
            None => None,
            Some(key) => {
                if key.is_empty()
                    || key.len() > MAX_IDEMPOTENCY_KEY_LEN
                    || !key.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(ApiError::bad_param(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    ));
                }
                let pk = idempotency_pk(&tenant, &caller.user, key);
                if let Some(earlier) = self
                    .store
                    .get_idempotency(&pk, now.unix_timestamp())
                    .await?
                {
                    return self.replay(caller, &earlier, &request_hash).await;
                }
                Some(pk)
            }
        };

        let limits = self.count_create(&tenant, now).await?;

        // The id's time is `created_at`'s, so the listing order (`<created_at>#<id>`) is the
        // id order, also for jobs created in the same millisecond.
        let id = ulid::Ulid::from_datetime(std::time::SystemTime::from(now)).to_string();
        let span = tracing::info_span!("create_job", job_id = %id, tenant = %tenant, job_type = job_type.key());
        let _entered = span.enter();
        let input_key = format!("inputs/{tenant}/{id}.json");
        self.inputs.put(&input_key, stored_params).await?;
        let mut record = JobRecord::new(NewJob {
            id: id.clone(),
            job_type,
            tenant: tenant.clone(),
            user: caller.user.clone(),
            created_at: clock::format(now),
            month: clock::month_of(now),
            total: valid.total,
            summary: valid.summary,
            input_key,
            expires_at: now.unix_timestamp() + i64::from(self.retention_days) * 86_400,
        });
        record.file = file;
        record.retry_of = links.retry_of;
        record.schedule_id = links.schedule_id;
        record.counted = true;
        let idempotency_record = idempotency.map(|pk| IdempotencyRecord {
            pk,
            sk: IDEMPOTENCY_SK.to_string(),
            job_id: id.clone(),
            request_hash: request_hash.clone(),
            expires_at: now.unix_timestamp() + IDEMPOTENCY_TTL_SECONDS,
        });
        match self
            .store
            .create_counted(&record, idempotency_record.as_ref(), limits.max_queued_jobs)
            .await?
        {
            CreateOutcome::Created => {}
            CreateOutcome::QueueFull => {
                tracing::info!(
                    max_queued_jobs = limits.max_queued_jobs,
                    "create refused: tenant limit"
                );
                return Err(ApiError::too_many(
                    format!(
                        "tenant {tenant} has {} jobs queued, its limit; retry in {QUEUE_FULL_RETRY_SECONDS} s",
                        limits.max_queued_jobs
                    ),
                    QUEUE_FULL_RETRY_SECONDS,
                ));
            }
            CreateOutcome::UploadUsed => {
                return Err(ApiError::field(
                    ErrorCode::Conflict,
                    "input.upload_id",
                    "this upload has already given a job its items: upload the file again",
                ));
            }
            CreateOutcome::IdempotencyKeyTaken => {
                // A concurrent request with the same key won the race: answer as it did.
                let pk = idempotency_record.map(|r| r.pk).unwrap_or_default();
                let earlier = self
                    .store
                    .get_idempotency(&pk, now.unix_timestamp())
                    .await?
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::IdempotencyConflict,
                            "a request with this Idempotency-Key is in progress; retry",
                        )
                    })?;
                return self.replay(caller, &earlier, &request_hash).await;
            }
        }
        let recorded = self
            .observers
            .audit()
            .action(
                &record,
                EventKind::Created,
                caller,
                &record.created_at,
                "ok",
                record.retry_of.as_deref(),
            )
            .await;
        if let Err(err) = recorded {
            tracing::error!(error = %err, "could not record the job's creation; failing it");
            self.fail_queued(&record, "the job's creation could not be recorded")
                .await;
            return Err(ApiError::unavailable());
        }
        // Counted before it is enqueued, so a fast worker's end never precedes its creation;
        // a failure here loses one count, not the job.
        if let Err(err) = self
            .store
            .add_metrics(&jobs_core::domain::metrics::on_created(
                &record,
                self.observers.audit().retention_days(),
            ))
            .await
        {
            tracing::warn!(error = %err, "could not count the job's creation in the metrics");
        }
        self.enqueue(&record).await?;
        tracing::info!(total = record.total, "job created");
        Ok(Created {
            job: record.view(),
            replayed: false,
        })
    }

    /// The file of upload `upload_id` of `tenant`: `422` naming `input.upload_id` when it
    /// is not an upload id, nothing was uploaded under it in this tenant (or the URL
    /// expired unused), or the file is empty or over the `FileMaxBytes` limit. The job
    /// keeps the service's file limits.
    pub(crate) async fn uploaded_file(
        &self,
        tenant: &str,
        upload_id: &str,
    ) -> Result<JobFile, ApiError> {
        let refused = |why: &str| ApiError::invalid("input.upload_id", why.to_string());
        if ulid::Ulid::from_string(upload_id).is_err() {
            return Err(refused("is not an upload id (POST /uploads answers one)"));
        }
        let key = super::upload_key(tenant, upload_id);
        let head = self.inputs.head(&key).await?.ok_or_else(|| {
            refused("names no uploaded file of this tenant: upload the file first")
        })?;
        let most = self.file_limits.max_bytes;
        if head.bytes == 0 || head.bytes > most {
            return Err(refused(&format!(
                "the file holds {} bytes: it must hold 1 to {most}",
                head.bytes
            )));
        }
        let content_type = head
            .content_type
            .filter(|t| super::UPLOAD_CONTENT_TYPES.contains(&t.as_str()))
            .ok_or_else(|| refused("the file is neither text/csv nor application/x-ndjson"))?;
        Ok(JobFile {
            key,
            bytes: head.bytes,
            content_type,
            content_encoding: head.content_encoding,
            limits: self.file_limits,
            retry: None,
        })
    }

    async fn replay(
        &self,
        caller: &Caller,
        earlier: &IdempotencyRecord,
        request_hash: &str,
    ) -> Result<Created, ApiError> {
        if earlier.request_hash != request_hash {
            return Err(ApiError::field(
                ErrorCode::IdempotencyConflict,
                "Idempotency-Key",
                "this key was used with a different request in the last 24 hours",
            ));
        }
        let job = self.store.get(&earlier.job_id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::IdempotencyConflict,
                "the job created with this key no longer exists",
            )
        })?;
        // The first attempt may have stored the job and then failed to record or enqueue it;
        // both are idempotent, so a replay of a still-queued job does them again.
        if job.status == jobs_core::domain::job::JobStatus::Queued {
            self.observers
                .audit()
                .action(
                    &job,
                    EventKind::Created,
                    caller,
                    &job.created_at,
                    "ok",
                    job.retry_of.as_deref(),
                )
                .await?;
            self.enqueue(&job).await?;
        }
        Ok(Created {
            job: job.view(),
            replayed: true,
        })
    }

    /// Sends the plan of `job`, unless it is deferred ([`Self::deferred`]); a job whose plan
    /// cannot be sent ends `failed` and the request is `503`.
    async fn enqueue(&self, job: &JobRecord) -> Result<(), ApiError> {
        if self.deferred(job).await {
            return Ok(());
        }
        let message = WorkMessage::Plan {
            job_id: job.id.clone(),
            tenant: job.tenant.clone(),
            woken: false,
        };
        if let Err(err) = self.queue.send(job.job_type, &message).await {
            tracing::error!(job_id = %job.id, error = %err, "could not enqueue the job's plan");
            self.fail_queued(job, "the job could not be queued").await;
            return Err(ApiError::unavailable());
        }
        Ok(())
    }

    /// Puts off the plan of new job `job` when its tenant's release window of the type is
    /// full, or holds plans put off before it and a chunk in flight
    /// ([`WindowStore::defer`], the workers' own rule): the pass that frees a slot sends the
    /// plan (a woken plan), so a tenant's burst of creates does not put a burst of plans on
    /// the queue ahead of other tenants' messages. The window item takes one conditional
    /// write per create, which `creates_per_minute` bounds per tenant. Only with the tenant
    /// scope (a job's own window is empty before its plan). Best effort: when the write
    /// fails the plan is sent, and the worker applies the same rule.
    async fn deferred(&self, job: &JobRecord) -> bool {
        let Some(release) = self.release.filter(|r| r.scope == WindowScope::Tenant) else {
            return false;
        };
        let key = release.scope.key(&job.tenant, job.job_type, &job.id);
        match self.store.defer(&key, release.limit, &job.id).await {
            Ok(deferred) => {
                if deferred {
                    tracing::info!(job_id = %job.id, "release window full; plan deferred");
                }
                deferred
            }
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "could not defer the job's plan; sending it");
                false
            }
        }
    }

    /// Ends a job that cannot start (`failed`, with `reason`), through the on-job-end
    /// path. Best effort: the request is failing already, and a job left queued is
    /// enqueued again by a replay of the request.
    async fn fail_queued(&self, job: &JobRecord, reason: &str) {
        let at = clock::format(clock::now());
        let ended = async {
            self.store.fail_queued(&job.id, reason, &at).await?;
            if let Some(now) = self.store.get(&job.id).await? {
                self.observers
                    .on_job_end(&self.store, &self.queue, &now)
                    .await?;
            }
            Ok::<(), jobs_core::error::StoreError>(())
        };
        if let Err(err) = ended.await {
            tracing::error!(job_id = %job.id, error = %err, "could not mark the job failed");
        }
    }
}
