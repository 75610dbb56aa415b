//! The Jobs API as plain functions over the ports: what each operation does, independent of
//! how requests arrive. `http` maps requests and responses onto these.

mod api_keys;
mod audit;
mod bulk;
mod create;
mod export;
pub mod http;
mod items;
mod limits;
mod list;
mod metrics;
mod queues;
pub(crate) mod schedules;
mod senders;
mod uploads;

use crate::cursor::CursorCodec;
use crate::oidc::{Fetch, HttpFetch, OidcSettings, OidcVerifier};
use crate::tokens::{TokenVerifier, bearer_token};
use http::page::{PageConfig, PageOidc};
use jobs_core::clock;
use jobs_core::domain::audit::{EventKind, Origin};
use jobs_core::domain::auth::Caller;
use jobs_core::domain::ended::Observers;
use jobs_core::domain::job::JobView;
use jobs_core::domain::limits::TenantLimits;
use jobs_core::domain::record::JobRecord;
use jobs_core::env::{self, SettingError};
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::{InputStore, JobStore, ServicePorts};

pub use api_keys::{ApiKeyRequest, ApiKeysPage, CreatedApiKey, MAX_KEY_NAME_CHARS};
pub use audit::{AuditQuery, EventsPage};
pub use bulk::{BulkAction, BulkAnswer, BulkOutcome, BulkRequest, MAX_BULK_JOBS, TIME_BUDGET};
pub use create::{CreateRequest, Created, JobLinks};
pub use export::{
    CSV_HEADER, EXPORT_URL_EXPIRY, Export, ExportStatus, export_csv_key, export_key, export_outcome,
};
pub use items::{ItemRow, ItemsPage, ItemsQuery, Outcome, csv_field, item_label, to_csv};
pub use limits::{LimitsPatch, LimitsView};
pub use list::ListPage;
pub use metrics::{MetricsAnswer, MetricsQuery};
pub use queues::{QueueHealth, TypeHealth};
pub use schedules::{
    MAX_SCHEDULE_PARAMS_BYTES, PREVIEW_RUNS, Preview, ScheduleListQuery, SchedulePatch,
    ScheduleRequest, ScheduleView, SchedulesPage, parse_preview, run_key, timing,
};
pub use senders::{SenderRequest, SendersPage};
pub use uploads::{CreatedUpload, UPLOAD_CONTENT_TYPES, UPLOAD_EXPIRY, UploadRequest, upload_key};

pub struct Settings {
    /// Secret that signs dev tokens (and, derived, cursors).
    pub token_secret: Vec<u8>,
    /// Days a job record is kept (DynamoDB TTL); also how far back listings look.
    pub retention_days: u32,
    /// Whether HS256 tokens signed with `token_secret` are accepted (development only).
    pub dev_tokens: bool,
    /// The identity provider whose tokens are accepted; `None`: OIDC is off.
    pub oidc: Option<OidcSettings>,
    /// The page's client id at the provider (`OIDC_CLIENT_ID`) and the scopes it asks for
    /// (`OIDC_SCOPES`); without a client id the page offers no provider sign-in.
    pub page_client: Option<(String, String)>,
}

/// Shortest accepted token secret: HS256 keys shorter than the hash are weak.
pub const MIN_SECRET_BYTES: usize = 32;

impl Settings {
    /// Dev tokens signed with `token_secret`, no identity provider (tests and benches).
    pub fn dev_tokens(token_secret: &[u8], retention_days: u32) -> Settings {
        Settings {
            token_secret: token_secret.to_vec(),
            retention_days,
            dev_tokens: true,
            oidc: None,
            page_client: None,
        }
    }

    /// Reads `TOKEN_SECRET` (at least [`MIN_SECRET_BYTES`]), `RETENTION_DAYS` (default 90),
    /// `DEV_TOKENS` (`true` or `false`, default `false`) and the `OIDC_*` settings
    /// ([`OidcSettings::from_env`]); the error names the variable.
    pub fn from_env() -> Result<Settings, SettingError> {
        let token_secret = env::required("TOKEN_SECRET")?;
        if token_secret.len() < MIN_SECRET_BYTES {
            return Err(SettingError::Invalid {
                name: "TOKEN_SECRET".into(),
                reason: format!("must be at least {MIN_SECRET_BYTES} bytes"),
            });
        }
        Ok(Settings {
            token_secret: token_secret.into_bytes(),
            retention_days: env::parsed_or("RETENTION_DAYS", 90)?,
            dev_tokens: env::parsed_or("DEV_TOKENS", false)?,
            oidc: OidcSettings::from_env()?,
            page_client: std::env::var("OIDC_CLIENT_ID")
                .ok()
                .filter(|id| !id.trim().is_empty())
                .map(|id| {
                    let scopes = std::env::var("OIDC_SCOPES")
                        .ok()
                        .filter(|s| !s.trim().is_empty())
                        .unwrap_or_else(|| "openid profile".into());
                    (id, scopes)
                }),
        })
    }
}

/// The tenant a request body names in `tenant` (a create's), as the caller may use it:
/// `422` when it is not a tenant id, `403` when it is another tenant and the caller is not
/// a platform admin; the caller's own tenant when none is named.
pub(crate) fn requested_tenant(caller: &Caller, named: Option<&str>) -> Result<String, ApiError> {
    if named.is_some_and(|t| !jobs_core::domain::auth::is_tenant(t)) {
        return Err(ApiError::invalid(
            "tenant",
            "must be a tenant id (lower-case letters, digits, - and _)",
        ));
    }
    Ok(caller
        .tenant_scope(named, "tenant")?
        .unwrap_or_else(|| caller.tenant.clone()))
}

/// The jobs service: the ports every operation works over, and how long records are kept.
/// Creating a job (`create.rs`) and the scheduler's tick (`crate::scheduler`) need nothing
/// more; the scheduler function runs it on its own, with no token or cursor key.
pub struct Jobs<P: ServicePorts> {
    pub(crate) store: P::Store,
    pub(crate) inputs: P::Inputs,
    pub(crate) queue: P::Queue,
    pub(crate) senders: P::Senders,
    pub(crate) observers: Observers<P::Audit, P::Bus>,
    /// Days a job record is kept (DynamoDB TTL); also how far back listings look.
    pub(crate) retention_days: u32,
    /// The limits of a tenant that has none of its own.
    pub(crate) default_limits: TenantLimits,
    /// `POST /uploads` per tenant per UTC day (`TENANT_UPLOADS_PER_DAY`).
    pub(crate) uploads_per_day: u32,
    /// What a new job's file is read under (`FILE_*`), kept with the job.
    pub(crate) file_limits: jobs_core::domain::file::FileLimits,
    /// The workers' release windows, by which a new job's plan is deferred when its
    /// tenant's window is full; `None`: every new job's plan is sent at once.
    pub(crate) release: Option<jobs_core::domain::window::ReleaseSettings>,
}

impl<P: ServicePorts> Jobs<P> {
    /// The same service with `limits` as every tenant's default.
    pub fn with_default_limits(mut self, limits: TenantLimits) -> Self {
        self.default_limits = limits;
        self
    }

    /// The same service with `limit` uploads per tenant per UTC day.
    pub fn with_uploads_per_day(mut self, limit: u32) -> Self {
        self.uploads_per_day = limit;
        self
    }

    /// The same service with `limits` for the files of new jobs.
    pub fn with_file_limits(mut self, limits: jobs_core::domain::file::FileLimits) -> Self {
        self.file_limits = limits;
        self
    }

    /// The same service deferring new jobs' plans by the workers' release windows `release`.
    pub fn with_release(mut self, release: jobs_core::domain::window::ReleaseSettings) -> Self {
        self.release = Some(release);
        self
    }

    pub fn new(
        store: P::Store,
        inputs: P::Inputs,
        queue: P::Queue,
        senders: P::Senders,
        observers: Observers<P::Audit, P::Bus>,
        retention_days: u32,
    ) -> Self {
        Jobs {
            store,
            inputs,
            queue,
            senders,
            observers,
            retention_days,
            default_limits: TenantLimits::default(),
            uploads_per_day: jobs_core::domain::limits::DEFAULT_UPLOADS_PER_DAY,
            file_limits: jobs_core::domain::file::FileLimits::default(),
            release: None,
        }
    }
}

/// The Jobs API: the jobs service, with the verifier of callers' tokens and the key of
/// listings' cursors. Dereferences to [`Jobs`], whose operations it serves too.
pub struct JobsApi<P: ServicePorts> {
    jobs: Jobs<P>,
    /// HS256 dev tokens, when `DevTokens` is on.
    dev_tokens: Option<TokenVerifier>,
    /// The identity provider's tokens, when `OidcIssuer` is set.
    oidc: Option<OidcVerifier>,
    cursors: CursorCodec,
    /// How the page signs in.
    page: PageConfig,
    /// Where the page's file uploads go, once known ([`JobsApi::upload_origin`]).
    upload_origin: std::sync::OnceLock<Option<String>>,
}

impl<P: ServicePorts> std::ops::Deref for JobsApi<P> {
    type Target = Jobs<P>;

    fn deref(&self) -> &Self::Target {
        &self.jobs
    }
}

impl<P: ServicePorts> JobsApi<P> {
    pub fn new(
        store: P::Store,
        inputs: P::Inputs,
        queue: P::Queue,
        senders: P::Senders,
        observers: Observers<P::Audit, P::Bus>,
        settings: Settings,
    ) -> Self {
        let jobs = Jobs::new(
            store,
            inputs,
            queue,
            senders,
            observers,
            settings.retention_days,
        );
        JobsApi::serving(jobs, settings, None)
    }

    /// `jobs` serving requests: dev tokens verified with the settings' secret (which also
    /// keys the cursors) when they are on, the identity provider's through `oidc` (its
    /// settings, over `fetch`: [`HttpFetch`] unless given).
    pub fn serving(jobs: Jobs<P>, settings: Settings, fetch: Option<Box<dyn Fetch>>) -> Self {
        let page = PageConfig {
            oidc: settings.oidc.as_ref().and_then(|oidc| {
                let (client_id, scopes) = settings.page_client.clone()?;
                Some(PageOidc {
                    issuer: oidc.issuer.clone(),
                    client_id,
                    scopes,
                })
            }),
            dev_tokens: settings.dev_tokens,
        };
        let oidc = settings.oidc.map(|oidc| {
            let fetch = fetch.unwrap_or_else(|| Box::new(HttpFetch::new()));
            OidcVerifier::new(oidc, fetch)
        });
        JobsApi {
            jobs,
            dev_tokens: settings
                .dev_tokens
                .then(|| TokenVerifier::new(&settings.token_secret)),
            oidc,
            cursors: CursorCodec::new(&settings.token_secret),
            page,
            upload_origin: std::sync::OnceLock::new(),
        }
    }

    /// The origin of the input bucket's presigned `PUT`s, where the page uploads job files
    /// (its CSP's `connect-src` gains it): signed once, locally (no request is made).
    /// `None` when signing fails or the URL is not `http(s)`.
    pub async fn upload_origin(&self) -> Option<String> {
        if let Some(origin) = self.upload_origin.get() {
            return origin.clone();
        }
        let format = jobs_core::ports::UploadFormat {
            content_type: "text/csv".into(),
            content_encoding: None,
        };
        let origin = match self
            .inputs
            .presign_put("uploads/page", &format, std::time::Duration::from_secs(60))
            .await
        {
            Ok(put) => http::page::origin_of(&put.url),
            Err(err) => {
                tracing::warn!(error = %err, "the page's CSP names no upload origin");
                return None;
            }
        };
        let _ = self.upload_origin.set(origin.clone());
        origin
    }

    /// How the page signs in.
    pub fn page_config(&self) -> &PageConfig {
        &self.page
    }

    /// The identity provider's verifier, when OIDC is on.
    pub fn oidc(&self) -> Option<&OidcVerifier> {
        self.oidc.as_ref()
    }

    /// The caller an `Authorization` header names, its request from `origin`: an API key
    /// (`jobs_…`) is looked up, an HS256 token goes to the dev verifier (when dev tokens are
    /// on), anything else to the identity provider's (when OIDC is on). A refusal is a
    /// `401` whose message is the reason, a `403` for a token without a role of ours, or a
    /// `503` when the provider's keys cannot be fetched.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        origin: Origin,
    ) -> Result<Caller, ApiError> {
        let token = bearer_token(authorization)?;
        if token.starts_with("jobs_") {
            return self.api_key_caller(token, origin).await;
        }
        let hs256 = jsonwebtoken::decode_header(token)
            .is_ok_and(|h| h.alg == jsonwebtoken::Algorithm::HS256);
        let caller = match (&self.dev_tokens, &self.oidc) {
            (Some(dev), _) if hs256 => dev.verify(token),
            (_, Some(oidc)) => oidc.verify(token).await.map_err(ApiError::from),
            (Some(dev), None) => dev.verify(token),
            (None, None) => Err(ApiError::unauthorized(
                "this stack accepts no tokens: set OidcIssuer or DevTokens",
            )),
        };
        caller.map(|caller| Caller { origin, ..caller })
    }

    /// A job the caller may see; anything else (unknown, hidden, other tenant) is a 404.
    pub async fn get_job(&self, caller: &Caller, id: &str) -> Result<JobView, ApiError> {
        Ok(self.visible_job(caller, id).await?.view())
    }

    /// Cancels a queued or running job: chunks not yet processed are recorded as
    /// cancelled and the job ends `cancelled`. A finished job is a 409. Recorded in the
    /// audit trail either way.
    pub async fn cancel_job(&self, caller: &Caller, id: &str) -> Result<JobView, ApiError> {
        let mut job = self.visible_job(caller, id).await?;
        // The status may move under us (queued → running); each retry re-reads it.
        for _ in 0..3 {
            if job.status.is_terminal() {
                let refused = ApiError::new(
                    ErrorCode::Conflict,
                    format!("the job already ended ({})", job.status.key()),
                );
                return self
                    .audited(caller, &job, EventKind::CancelRequested, Err(refused), None)
                    .await;
            }
            let at = clock::format(clock::now());
            if self.store.cancel(id, job.status, &at).await? {
                tracing::info!(job_id = id, tenant = %job.tenant, "cancel requested");
                let now = self.visible_job(caller, id).await?;
                let view = self
                    .audited_at(
                        caller,
                        &now,
                        EventKind::CancelRequested,
                        &at,
                        Ok(now.view()),
                        None,
                    )
                    .await?;
                // A queued job ended here: its end takes the one on-job-end path.
                self.observers
                    .on_job_end(&self.store, &self.queue, &now)
                    .await?;
                return Ok(view);
            }
            job = self.visible_job(caller, id).await?;
        }
        Err(ApiError::new(
            ErrorCode::Conflict,
            "the job is changing state; retry",
        ))
    }

    /// Records `caller`'s action on `job` with the outcome of `result` (a refusal is
    /// recorded by its error code; a server error is not an outcome), then passes
    /// `result` on. If the entry cannot be written the request fails (503), so that an
    /// action the trail does not hold is one the client was told failed.
    async fn audited<T>(
        &self,
        caller: &Caller,
        job: &JobRecord,
        kind: EventKind,
        result: Result<T, ApiError>,
        related: Option<&str>,
    ) -> Result<T, ApiError> {
        self.audited_at(
            caller,
            job,
            kind,
            &clock::format(clock::now()),
            result,
            related,
        )
        .await
    }

    /// [`Self::audited`] for an action that happened at `at`.
    async fn audited_at<T>(
        &self,
        caller: &Caller,
        job: &JobRecord,
        kind: EventKind,
        at: &str,
        result: Result<T, ApiError>,
        related: Option<&str>,
    ) -> Result<T, ApiError> {
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(err) if err.status() < 500 => serde_json::to_value(err.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            Err(_) => return result,
        };
        self.observers
            .audit()
            .action(job, kind, caller, at, &outcome, related)
            .await?;
        result
    }

    async fn visible_job(&self, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
        if ulid::Ulid::from_string(id).is_err() {
            return Err(ApiError::not_found());
        }
        match self.store.get(id).await? {
            Some(job) if !job.is_hidden() && caller.can_access(&job.tenant) => Ok(job),
            _ => Err(ApiError::not_found()),
        }
    }

    /// A job the caller may act on, hidden or not; anything else is a 404.
    async fn own_job(&self, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
        if ulid::Ulid::from_string(id).is_err() {
            return Err(ApiError::not_found());
        }
        match self.store.get(id).await? {
            Some(job) if caller.can_access(&job.tenant) => Ok(job),
            _ => Err(ApiError::not_found()),
        }
    }

    /// Hides a job from every listing (it is then listed with `hidden=true`). The work and
    /// its record go on; hiding twice is fine.
    pub async fn hide_job(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        let job = self.own_job(caller, id).await?;
        let guard = (!caller.is_platform_admin()).then_some(caller.tenant.as_str());
        if self
            .store
            .hide(&job, guard, &clock::format(clock::now()))
            .await?
        {
            tracing::info!(job_id = id, "job hidden");
            self.audited(caller, &job, EventKind::Hidden, Ok(()), None)
                .await
        } else {
            Err(ApiError::not_found())
        }
    }

    /// Puts a hidden job back in every listing, in its place; a job not hidden is
    /// answered as it is.
    pub async fn unhide_job(&self, caller: &Caller, id: &str) -> Result<JobView, ApiError> {
        let mut job = self.own_job(caller, id).await?;
        if job.is_hidden() {
            let guard = (!caller.is_platform_admin()).then_some(caller.tenant.as_str());
            if !self.store.unhide(&job, guard).await? {
                return Err(ApiError::not_found());
            }
            job.hidden_at = None;
            tracing::info!(job_id = id, "job restored to the lists");
            return self
                .audited(caller, &job, EventKind::Unhidden, Ok(job.view()), None)
                .await;
        }
        Ok(job.view())
    }
}
