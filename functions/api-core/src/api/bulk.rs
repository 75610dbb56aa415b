//! `POST /jobs/bulk`: hide or cancel many jobs at once, named by id or by the list's
//! filter, at most [`MAX_BULK_JOBS`] per call, with every job's outcome in the answer.

use serde::{Deserialize, Serialize};

use super::JobsApi;
use crate::listing::{ListRequest, MAX_LIMIT};
use jobs_core::concurrency::in_order;
use jobs_core::domain::auth::Caller;
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::ServicePorts;

/// Most jobs one call acts on; with a filter, the answer's `next_cursor` continues.
pub const MAX_BULK_JOBS: usize = 1_000;
/// Jobs acted on at once (each is a read and a conditional write).
const CONCURRENCY: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Hide,
    Cancel,
}

/// The list query's filters, as a JSON object of the same names and values.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkFilter {
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    pub status: Option<String>,
    pub user: Option<String>,
    pub tenant: Option<String>,
    pub q: Option<String>,
    pub created_from: Option<String>,
    pub created_to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub action: BulkAction,
    pub ids: Option<Vec<String>>,
    pub filter: Option<BulkFilter>,
    /// With `filter`: the `next_cursor` of the previous call.
    pub cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkOutcome {
    /// Hidden, or cancel requested.
    Done,
    /// Unknown, hidden already (for cancel), or another tenant's.
    NotFound,
    /// Cancel of a job that had ended.
    AlreadyEnded,
    /// The job could not be acted on now (the store failed); try it again.
    Failed,
}

#[derive(Debug, Serialize)]
pub struct BulkResult {
    pub id: String,
    pub outcome: BulkOutcome,
}

#[derive(Debug, Serialize)]
pub struct BulkAnswer {
    pub action: BulkAction,
    pub results: Vec<BulkResult>,
    /// With a filter, when more jobs match: pass as `cursor` with the same filter.
    pub next_cursor: Option<String>,
}

impl BulkFilter {
    fn query(&self, cursor: Option<&str>, limit: u32) -> Vec<(String, String)> {
        let pairs = [
            ("type", &self.job_type),
            ("status", &self.status),
            ("user", &self.user),
            ("tenant", &self.tenant),
            ("q", &self.q),
            ("created_from", &self.created_from),
            ("created_to", &self.created_to),
        ];
        let mut query: Vec<(String, String)> = pairs
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone())))
            .collect();
        query.push(("limit".into(), limit.to_string()));
        if let Some(cursor) = cursor {
            query.push(("cursor".into(), cursor.to_string()));
        }
        query
    }
}

impl<P: ServicePorts> JobsApi<P> {
    /// Applies `request.action` to the jobs it names: its `ids`, or up to
    /// [`MAX_BULK_JOBS`] jobs matching its `filter` (as `GET /jobs` lists them, so a member
    /// reaches only its tenant).
    pub async fn bulk(
        &self,
        caller: &Caller,
        request: BulkRequest,
    ) -> Result<BulkAnswer, ApiError> {
        let (ids, next_cursor) = match (request.ids, request.filter) {
            (Some(ids), None) => {
                if ids.is_empty() || ids.len() > MAX_BULK_JOBS {
                    return Err(ApiError::invalid(
                        "ids",
                        format!("must name 1 to {MAX_BULK_JOBS} jobs"),
                    ));
                }
                if request.cursor.is_some() {
                    return Err(ApiError::invalid("cursor", "goes with a filter only"));
                }
                let mut seen = std::collections::HashSet::new();
                (
                    ids.into_iter()
                        .filter(|id| seen.insert(id.clone()))
                        .collect::<Vec<_>>(),
                    None,
                )
            }
            (None, Some(filter)) => {
                self.matching(caller, &filter, request.cursor.as_deref())
                    .await?
            }
            _ => {
                return Err(ApiError::invalid(
                    "body",
                    "give exactly one of ids and filter",
                ));
            }
        };
        let action = request.action;
        let outcomes = in_order(
            ids.iter().map(|id| self.act(caller, action, id)).collect(),
            CONCURRENCY,
        )
        .await;
        let results = ids
            .into_iter()
            .zip(outcomes)
            .map(|(id, outcome)| BulkResult { id, outcome })
            .collect();
        tracing::info!(action = ?action, "bulk action done");
        Ok(BulkAnswer {
            action,
            results,
            next_cursor,
        })
    }

    /// The ids of up to [`MAX_BULK_JOBS`] jobs matching `filter` from `cursor` on, and the
    /// cursor after them when more may match.
    async fn matching(
        &self,
        caller: &Caller,
        filter: &BulkFilter,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), ApiError> {
        let mut ids = Vec::new();
        let mut cursor = cursor.map(str::to_string);
        while ids.len() < MAX_BULK_JOBS {
            let limit = (MAX_BULK_JOBS - ids.len()).min(MAX_LIMIT as usize) as u32;
            let request =
                ListRequest::parse(&filter.query(cursor.as_deref(), limit)).map_err(in_filter)?;
            let page = self.list_jobs(caller, &request).await.map_err(in_filter)?;
            ids.extend(page.items.into_iter().map(|j| j.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        Ok((ids, cursor))
    }

    async fn act(&self, caller: &Caller, action: BulkAction, id: &str) -> BulkOutcome {
        let result = match action {
            BulkAction::Hide => self.hide_job(caller, id).await,
            BulkAction::Cancel => self.cancel_job(caller, id).await.map(|_| ()),
        };
        match result {
            Ok(()) => BulkOutcome::Done,
            Err(err) if err.code == ErrorCode::NotFound => BulkOutcome::NotFound,
            Err(err) if err.code == ErrorCode::Conflict => BulkOutcome::AlreadyEnded,
            Err(err) => {
                tracing::warn!(job_id = id, code = ?err.code, "bulk action failed for one job");
                BulkOutcome::Failed
            }
        }
    }
}

/// A list-query error, named as the bulk body's field (`filter.status`, `cursor`).
fn in_filter(err: ApiError) -> ApiError {
    match err.field.as_deref() {
        Some("cursor") => ApiError::invalid("cursor", err.message),
        // Naming another tenant stays a 403.
        Some(field) if err.code == ErrorCode::Forbidden => {
            ApiError::field(err.code, format!("filter.{field}"), err.message)
        }
        Some(field) => ApiError::invalid(format!("filter.{field}"), err.message),
        None => err,
    }
}
