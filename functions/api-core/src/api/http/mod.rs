//! HTTP ⇄ operations: routes, headers, bodies and status codes, over plain request and
//! response types so that it is tested without Lambda or API Gateway.

use serde::Serialize;

use super::{CreateRequest, JobsApi};
use crate::listing::ListRequest;
use jobs_core::domain::audit::Origin;
use jobs_core::domain::auth::Operation;
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::ServicePorts;

pub mod page;

/// Largest accepted request body. Lambda's own limit for a synchronous event is 6 MB;
/// refusing earlier gives a clear 413 instead of a gateway error.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

pub const OPENAPI_JSON: &str = include_str!("../../../openapi.json");

#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    /// Path below the stage, e.g. `/jobs/01J…`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// API Gateway's id of the request (`requestContext.requestId`).
    pub request_id: Option<String>,
    /// The client's address as API Gateway saw it (`requestContext.identity.sourceIp`).
    pub source_ip: Option<String>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn json(status: u16, body: &impl Serialize) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    fn empty(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("cache-control".into(), "no-store".into())],
            body: Vec::new(),
        }
    }

    fn error(err: &ApiError) -> HttpResponse {
        HttpResponse::json(err.status(), &err.body())
    }

    fn with_header(mut self, name: &str, value: impl Into<String>) -> HttpResponse {
        self.headers.push((name.into(), value.into()));
        self
    }
}

enum Route<'a> {
    Page,
    OpenApi,
    Jobs,
    Bulk,
    Job(&'a str),
    Cancel(&'a str),
    Items(&'a str),
    /// `/jobs/{id}/items/export`
    Export(&'a str),
    /// `/jobs/{id}/items/export/{export_id}`
    ExportState(&'a str, &'a str),
    Retry(&'a str),
    Unhide(&'a str),
    Events(&'a str),
    Audit,
    Metrics,
    Queues,
    Schedules,
    SchedulePreview,
    Schedule(&'a str),
    ScheduleRun(&'a str),
    Me,
    ApiKeys,
    ApiKey(&'a str),
    Senders,
    Sender(&'a str),
    TenantLimits(&'a str),
    Uploads,
}

impl Route<'_> {
    /// The `Allow` header of a 405 (RFC 9110 §15.5.6).
    fn allowed_methods(&self) -> &'static str {
        match self {
            Route::Page | Route::OpenApi => "GET, HEAD",
            Route::Jobs | Route::Schedules | Route::ApiKeys | Route::Senders => "GET, POST",
            Route::ApiKey(_) | Route::Sender(_) => "DELETE",
            Route::TenantLimits(_) => "GET, PUT",
            Route::Job(_) => "GET, DELETE",
            Route::Schedule(_) => "GET, PATCH, DELETE",
            Route::Bulk
            | Route::Uploads
            | Route::Cancel(_)
            | Route::Retry(_)
            | Route::Unhide(_)
            | Route::Export(_)
            | Route::ScheduleRun(_) => "POST",
            Route::Items(_)
            | Route::ExportState(..)
            | Route::Events(_)
            | Route::Audit
            | Route::Metrics
            | Route::Queues
            | Route::Me
            | Route::SchedulePreview => "GET",
        }
    }
}

fn route(path: &str) -> Option<Route<'_>> {
    let trimmed = path.trim_end_matches('/');
    if let Some(rest) = trimmed.strip_prefix("/schedules") {
        return match rest.strip_prefix('/') {
            None if rest.is_empty() => Some(Route::Schedules),
            None => None,
            Some("preview") => Some(Route::SchedulePreview),
            Some(rest) => match rest.split_once('/') {
                None if !rest.is_empty() => Some(Route::Schedule(rest)),
                Some((id, "run")) if !id.is_empty() => Some(Route::ScheduleRun(id)),
                _ => None,
            },
        };
    }
    if let Some(rest) = trimmed.strip_prefix("/api-keys") {
        return match rest.strip_prefix('/') {
            None if rest.is_empty() => Some(Route::ApiKeys),
            Some(id) if !id.is_empty() && !id.contains('/') => Some(Route::ApiKey(id)),
            _ => None,
        };
    }
    if let Some(rest) = trimmed.strip_prefix("/tenants/") {
        return match rest.split_once('/') {
            Some((tenant, "limits")) if !tenant.is_empty() => Some(Route::TenantLimits(tenant)),
            _ => None,
        };
    }
    if let Some(rest) = trimmed.strip_prefix("/senders") {
        return match rest.strip_prefix('/') {
            None if rest.is_empty() => Some(Route::Senders),
            Some(sender) if !sender.is_empty() && !sender.contains('/') => {
                Some(Route::Sender(sender))
            }
            _ => None,
        };
    }
    match trimmed.strip_prefix("/jobs") {
        _ if page::is_page_path(path) => Some(Route::Page),
        _ if trimmed == "/openapi.json" => Some(Route::OpenApi),
        _ if trimmed == "/audit" => Some(Route::Audit),
        _ if trimmed == "/metrics" => Some(Route::Metrics),
        _ if trimmed == "/queues" => Some(Route::Queues),
        _ if trimmed == "/me" => Some(Route::Me),
        _ if trimmed == "/uploads" => Some(Route::Uploads),
        Some("") => Some(Route::Jobs),
        Some("/bulk") => Some(Route::Bulk),
        Some(rest) => {
            let rest = rest.strip_prefix('/')?;
            match rest.split_once('/') {
                None if !rest.is_empty() => Some(Route::Job(rest)),
                Some((id, "cancel")) if !id.is_empty() => Some(Route::Cancel(id)),
                Some((id, "items")) if !id.is_empty() => Some(Route::Items(id)),
                Some((id, "items/export")) if !id.is_empty() => Some(Route::Export(id)),
                Some((id, rest)) if !id.is_empty() && rest.starts_with("items/export/") => {
                    let export_id = &rest["items/export/".len()..];
                    (!export_id.is_empty() && !export_id.contains('/'))
                        .then_some(Route::ExportState(id, export_id))
                }
                Some((id, "retry")) if !id.is_empty() => Some(Route::Retry(id)),
                Some((id, "unhide")) if !id.is_empty() => Some(Route::Unhide(id)),
                Some((id, "events")) if !id.is_empty() => Some(Route::Events(id)),
                _ => None,
            }
        }
        None => None,
    }
}

/// The operation a request calls (`None`: the route has no such method), for the role
/// table ([`Operation`]).
fn operation_of(route: &Route<'_>, method: &str) -> Option<Operation> {
    use Operation::*;
    Some(match (route, method) {
        (Route::Me, "GET") => GetMe,
        (Route::Jobs, "GET") => ListJobs,
        (Route::Jobs, "POST") => CreateJob,
        (Route::Bulk, "POST") => BulkJobs,
        (Route::Job(_), "GET") => GetJob,
        (Route::Job(_), "DELETE") => HideJob,
        (Route::Cancel(_), "POST") => CancelJob,
        (Route::Items(_), "GET") => ListJobItems,
        (Route::Export(_), "POST") => ExportJobItems,
        (Route::ExportState(..), "GET") => GetJobItemsExport,
        (Route::Retry(_), "POST") => RetryJob,
        (Route::Unhide(_), "POST") => UnhideJob,
        (Route::Events(_), "GET") => ListJobEvents,
        (Route::Audit, "GET") => ListAuditEvents,
        (Route::Metrics, "GET") => GetMetrics,
        (Route::Queues, "GET") => GetQueueHealth,
        (Route::Schedules, "GET") => ListSchedules,
        (Route::Schedules, "POST") => CreateSchedule,
        (Route::SchedulePreview, "GET") => PreviewSchedule,
        (Route::Schedule(_), "GET") => GetSchedule,
        (Route::Schedule(_), "PATCH") => UpdateSchedule,
        (Route::Schedule(_), "DELETE") => DeleteSchedule,
        (Route::ScheduleRun(_), "POST") => RunSchedule,
        (Route::ApiKeys, "GET") => ListApiKeys,
        (Route::ApiKeys, "POST") => CreateApiKey,
        (Route::ApiKey(_), "DELETE") => RevokeApiKey,
        (Route::Senders, "GET") => ListSenders,
        (Route::Senders, "POST") => CreateSender,
        (Route::Uploads, "POST") => CreateUpload,
        (Route::Sender(_), "DELETE") => DeleteSender,
        (Route::TenantLimits(_), "GET") => GetTenantLimits,
        (Route::TenantLimits(_), "PUT") => SetTenantLimits,
        _ => return None,
    })
}

/// `GET /me`: who the caller is and the operations its role may call (the page shows only
/// those).
#[derive(Debug, Serialize)]
struct Me {
    user: String,
    tenant: String,
    role: &'static str,
    operations: Vec<&'static str>,
}

impl<P: ServicePorts> JobsApi<P> {
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        match self.dispatch(&request).await {
            Ok(response) => response,
            Err(err) => {
                if err.status() >= 500 {
                    tracing::error!(code = ?err.code, "request failed");
                } else {
                    tracing::info!(status = err.status(), code = ?err.code, field = ?err.field, reason = %err.message, "request refused");
                }
                let response = HttpResponse::error(&err);
                if let Some(seconds) = err.retry_after {
                    return response.with_header("retry-after", seconds.to_string());
                }
                if err.status() == 401 {
                    return response.with_header(
                        "www-authenticate",
                        www_authenticate(request.header("authorization").is_some(), &err.message),
                    );
                }
                match route(&request.path) {
                    Some(route) if err.code == ErrorCode::MethodNotAllowed => {
                        response.with_header("allow", route.allowed_methods())
                    }
                    _ => response,
                }
            }
        }
    }

    async fn dispatch(&self, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
        let method = request.method.as_str();
        let route = route(&request.path)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such resource"))?;
        if let Route::Page = route {
            return match method {
                "GET" | "HEAD" => page::serve(
                    &request.path,
                    self.page_config(),
                    self.upload_origin().await.as_deref(),
                )
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such resource")),
                _ => Err(method_not_allowed()),
            };
        }
        if let Route::OpenApi = route {
            return match method {
                "GET" | "HEAD" => Ok(HttpResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: OPENAPI_JSON.as_bytes().to_vec(),
                }),
                _ => Err(method_not_allowed()),
            };
        }
        if request
            .headers
            .iter()
            .any(|(n, v)| n.len() + v.len() > MAX_HEADER_BYTES)
        {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                "a request header is larger than 8 KiB",
            ));
        }
        let origin = Origin::new(
            request.request_id.clone(),
            request.source_ip.clone(),
            request.header("user-agent"),
        );
        let caller = self
            .authenticate(request.header("authorization"), origin)
            .await?;
        let span = tracing::info_span!("request", tenant = %caller.tenant, user = %caller.user, method, job_id = tracing::field::Empty);
        let _entered = span.enter();
        // The role table, before anything is read or written.
        caller.check(operation_of(&route, method).ok_or_else(method_not_allowed)?)?;
        match (route, method) {
            (Route::Me, "GET") => Ok(HttpResponse::json(
                200,
                &Me {
                    user: caller.user.clone(),
                    tenant: caller.tenant.clone(),
                    role: caller.role.key(),
                    operations: caller.operations(),
                },
            )),
            (Route::Jobs, "POST") => {
                let body = json_body::<CreateRequest>(request)?;
                let created = self
                    .create_job(&caller, body, request.header("idempotency-key"))
                    .await?;
                span.record("job_id", created.job.id.as_str());
                let response = HttpResponse::json(202, &created.job)
                    .with_header("location", job_location(&created.job.id));
                Ok(if created.replayed {
                    response.with_header("idempotent-replayed", "true")
                } else {
                    response
                })
            }
            (Route::Uploads, "POST") => {
                let body = json_body::<super::UploadRequest>(request)?;
                Ok(HttpResponse::json(
                    201,
                    &self.create_upload(&caller, body).await?,
                ))
            }
            (Route::Bulk, "POST") => {
                let body = json_body::<super::BulkRequest>(request)?;
                Ok(HttpResponse::json(200, &self.bulk(&caller, body).await?))
            }
            (Route::Jobs, "GET") => {
                let list = ListRequest::parse(&request.query)?;
                Ok(HttpResponse::json(
                    200,
                    &self.list_jobs(&caller, &list).await?,
                ))
            }
            (Route::Job(id), "GET") => {
                span.record("job_id", id);
                Ok(HttpResponse::json(200, &self.get_job(&caller, id).await?))
            }
            (Route::Cancel(id), "POST") => {
                span.record("job_id", id);
                Ok(HttpResponse::json(
                    202,
                    &self.cancel_job(&caller, id).await?,
                ))
            }
            (Route::Items(id), "GET") => {
                span.record("job_id", id);
                let query = super::ItemsQuery::parse(&request.query, request.header("accept"))?;
                let page = self.job_items(&caller, id, &query).await?;
                if !query.csv {
                    return Ok(HttpResponse::json(200, &page));
                }
                let name = format!(
                    "job-{id}-{}.csv",
                    query.outcome.map_or("items", |o| o.key())
                );
                Ok(HttpResponse {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "text/csv; charset=utf-8".into()),
                        (
                            "content-disposition".into(),
                            format!("attachment; filename=\"{name}\""),
                        ),
                        ("cache-control".into(), "no-store".into()),
                    ],
                    body: super::to_csv(&page.items).into_bytes(),
                })
            }
            (Route::Export(id), "POST") => {
                span.record("job_id", id);
                let outcome = super::export_outcome(&request.query)?;
                let export = self.start_export(&caller, id, outcome).await?;
                let location = format!("export/{}", export.export_id);
                Ok(HttpResponse::json(202, &export).with_header("location", location))
            }
            (Route::ExportState(id, export_id), "GET") => {
                span.record("job_id", id);
                Ok(HttpResponse::json(
                    200,
                    &self.get_export(&caller, id, export_id).await?,
                ))
            }
            (Route::Retry(id), "POST") => {
                span.record("job_id", id);
                let created = self
                    .retry_job(&caller, id, request.header("idempotency-key"))
                    .await?;
                let response = HttpResponse::json(202, &created.job)
                    .with_header("location", format!("../{}", created.job.id));
                Ok(if created.replayed {
                    response.with_header("idempotent-replayed", "true")
                } else {
                    response
                })
            }
            (Route::Events(id), "GET") => {
                span.record("job_id", id);
                Ok(HttpResponse::json(
                    200,
                    &self.job_events(&caller, id, &request.query).await?,
                ))
            }
            (Route::Queues, "GET") => Ok(HttpResponse::json(200, &self.queue_health().await?)),
            (Route::Metrics, "GET") => {
                let query = super::MetricsQuery::parse(&request.query, jobs_core::clock::now())?;
                Ok(HttpResponse::json(
                    200,
                    &self.metrics(&caller, &query).await?,
                ))
            }
            (Route::Audit, "GET") => {
                let query = super::AuditQuery::parse(&request.query, jobs_core::clock::now())?;
                Ok(HttpResponse::json(
                    200,
                    &self.audit_events(&caller, &query).await?,
                ))
            }
            (Route::Schedules, "POST") => {
                let body = json_body::<super::ScheduleRequest>(request)?;
                let schedule = self.create_schedule(&caller, body).await?;
                Ok(HttpResponse::json(201, &schedule)
                    .with_header("location", format!("schedules/{}", schedule.id)))
            }
            (Route::Schedules, "GET") => {
                let query = super::ScheduleListQuery::parse(&request.query)?;
                Ok(HttpResponse::json(
                    200,
                    &self.list_schedules(&caller, &query).await?,
                ))
            }
            (Route::SchedulePreview, "GET") => {
                let (cron, rate, timezone) = super::parse_preview(&request.query)?;
                Ok(HttpResponse::json(
                    200,
                    &self.preview_schedule(cron.as_deref(), rate.as_deref(), &timezone)?,
                ))
            }
            (Route::Schedule(id), "GET") => Ok(HttpResponse::json(
                200,
                &self.get_schedule(&caller, id).await?,
            )),
            (Route::Schedule(id), "PATCH") => {
                let body = json_body::<super::SchedulePatch>(request)?;
                Ok(HttpResponse::json(
                    200,
                    &self.update_schedule(&caller, id, body).await?,
                ))
            }
            (Route::Schedule(id), "DELETE") => {
                self.delete_schedule(&caller, id).await?;
                Ok(HttpResponse::empty(204))
            }
            (Route::ScheduleRun(id), "POST") => {
                let created = self
                    .run_schedule(&caller, id, request.header("idempotency-key"))
                    .await?;
                span.record("job_id", created.job.id.as_str());
                let response = HttpResponse::json(202, &created.job)
                    .with_header("location", format!("../../jobs/{}", created.job.id));
                Ok(if created.replayed {
                    response.with_header("idempotent-replayed", "true")
                } else {
                    response
                })
            }
            (Route::Unhide(id), "POST") => {
                span.record("job_id", id);
                Ok(HttpResponse::json(
                    200,
                    &self.unhide_job(&caller, id).await?,
                ))
            }
            (Route::Job(id), "DELETE") => {
                span.record("job_id", id);
                self.hide_job(&caller, id).await?;
                Ok(HttpResponse::empty(204))
            }
            (Route::ApiKeys, "POST") => {
                let body = json_body::<super::ApiKeyRequest>(request)?;
                let created = self.create_api_key(&caller, body).await?;
                Ok(HttpResponse::json(201, &created)
                    .with_header("location", format!("api-keys/{}", created.api_key.id)))
            }
            (Route::ApiKeys, "GET") => Ok(HttpResponse::json(
                200,
                &self.list_api_keys(&caller, &request.query).await?,
            )),
            (Route::ApiKey(id), "DELETE") => {
                self.revoke_api_key(&caller, id).await?;
                Ok(HttpResponse::empty(204))
            }
            (Route::Senders, "POST") => {
                let body = json_body::<super::SenderRequest>(request)?;
                Ok(HttpResponse::json(
                    201,
                    &self.create_sender(&caller, body).await?,
                ))
            }
            (Route::Senders, "GET") => Ok(HttpResponse::json(
                200,
                &self.list_senders(&caller, &request.query).await?,
            )),
            (Route::Sender(sender), "DELETE") => {
                self.remove_sender(&caller, sender).await?;
                Ok(HttpResponse::empty(204))
            }
            (Route::TenantLimits(tenant), "GET") => Ok(HttpResponse::json(
                200,
                &self.tenant_limits(&caller, tenant).await?,
            )),
            (Route::TenantLimits(tenant), "PUT") => {
                let body = json_body::<super::LimitsPatch>(request)?;
                Ok(HttpResponse::json(
                    200,
                    &self.set_tenant_limits(&caller, tenant, body).await?,
                ))
            }
            _ => Err(method_not_allowed()),
        }
    }
}

/// The challenge of a `401` (RFC 6750 §3): no error code when the request carried no
/// credentials, else `invalid_token` with the reason (quotes and backslashes dropped, as a
/// quoted-string allows them only escaped).
fn www_authenticate(had_credentials: bool, reason: &str) -> String {
    if !had_credentials {
        return "Bearer".into();
    }
    let reason: String = reason
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect();
    format!("Bearer error=\"invalid_token\", error_description=\"{reason}\"")
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this resource",
    )
}

/// Decodes a JSON body: 415 unless it is declared JSON, 413 when too large, 400 when not
/// JSON at all, 422 naming the field when well-formed but of the wrong shape.
fn json_body<T: serde::de::DeserializeOwned>(request: &HttpRequest) -> Result<T, ApiError> {
    let content_type = request.header("content-type").unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type != "application/json" {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json",
        ));
    }
    if request.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the body is larger than 5 MiB",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&request.body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|err| ApiError::undecodable(err, ""))
}

#[cfg(test)]
mod tests;

/// The new job's URL, relative to the request's (`POST <stage>/jobs` → `<stage>/jobs/<id>`,
/// RFC 3986 §5.2): the API does not know the stage path a client sees.
fn job_location(id: &str) -> String {
    format!("jobs/{id}")
}
