//! `POST /jobs/bulk`: hide or cancel many jobs at once, named by id or by the list's
//! filter, at most [`MAX_BULK_JOBS`] per call, with every job's outcome in the answer.
//!
//! The jobs are worked in rounds of [`CONCURRENCY`]; no round starts after
//! [`TIME_BUDGET`], so a call answers inside the API function's timeout whatever the
//! store's latency: jobs named by id that were not reached are `not_attempted`, and a
//! filter's `next_cursor` starts after the last round worked.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobsApi;
use crate::listing::ListRequest;
use jobs_core::concurrency::in_order;
use jobs_core::domain::auth::Caller;
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::ServicePorts;

/// Most jobs one call acts on; with a filter, the answer's `next_cursor` continues.
pub const MAX_BULK_JOBS: usize = 1_000;
/// Jobs acted on at once, a round (each is a read and a conditional write; a cancel also
/// runs the job's end: audit, event, metrics, the tenant's usage and line).
const CONCURRENCY: usize = 10;
/// Time after which a call starts no more rounds. The API function's `Timeout` is 15 s
/// (template.yaml, `Globals`): the budget leaves 5 s for the round in progress and the
/// answer.
pub const TIME_BUDGET: Duration = Duration::from_secs(10);

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
    /// The call's time ran out before this job was reached; send it again.
    NotAttempted,
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
    /// reaches only its tenant), starting no round after [`TIME_BUDGET`].
    pub async fn bulk(
        &self,
        caller: &Caller,
        request: BulkRequest,
    ) -> Result<BulkAnswer, ApiError> {
        self.bulk_within(caller, request, TIME_BUDGET).await
    }

    /// [`Self::bulk`] with its time budget given: the first round always runs.
    pub async fn bulk_within(
        &self,
        caller: &Caller,
        request: BulkRequest,
        budget: Duration,
    ) -> Result<BulkAnswer, ApiError> {
        let started = std::time::Instant::now();
        let in_time = || started.elapsed() < budget;
        let action = request.action;
        let mut results = Vec::new();
        let next_cursor = match (request.ids, request.filter) {
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
                let ids: Vec<String> = ids
                    .into_iter()
                    .filter(|id| seen.insert(id.clone()))
                    .collect();
                for round in ids.chunks(CONCURRENCY) {
                    if results.is_empty() || in_time() {
                        results.extend(self.act_on(caller, action, round).await);
                    } else {
                        results.extend(round.iter().map(|id| BulkResult {
                            id: id.clone(),
                            outcome: BulkOutcome::NotAttempted,
                        }));
                    }
                }
                None
            }
            (None, Some(filter)) => {
                let mut cursor = request.cursor;
                loop {
                    let room = MAX_BULK_JOBS - results.len();
                    let (ids, next) = self
                        .matching(caller, &filter, cursor.as_deref(), room.min(CONCURRENCY))
                        .await?;
                    results.extend(self.act_on(caller, action, &ids).await);
                    cursor = next;
                    if cursor.is_none() || results.len() >= MAX_BULK_JOBS || !in_time() {
                        break cursor;
                    }
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    "body",
                    "give exactly one of ids and filter",
                ));
            }
        };
        tracing::info!(action = ?action, jobs = results.len(), "bulk action done");
        Ok(BulkAnswer {
            action,
            results,
            next_cursor,
        })
    }

    /// Acts on `ids` at the same time; their outcomes in the same order.
    async fn act_on(&self, caller: &Caller, action: BulkAction, ids: &[String]) -> Vec<BulkResult> {
        let outcomes = in_order(
            ids.iter().map(|id| self.act(caller, action, id)).collect(),
            CONCURRENCY,
        )
        .await;
        ids.iter()
            .zip(outcomes)
            .map(|(id, outcome)| BulkResult {
                id: id.clone(),
                outcome,
            })
            .collect()
    }

    /// The ids of up to `limit` jobs matching `filter` from `cursor` on (one list page), and
    /// the cursor after them when more may match.
    async fn matching(
        &self,
        caller: &Caller,
        filter: &BulkFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>), ApiError> {
        let request = ListRequest::parse(&filter.query(cursor, limit as u32)).map_err(in_filter)?;
        let page = self.list_jobs(caller, &request).await.map_err(in_filter)?;
        Ok((
            page.items.into_iter().map(|j| j.id).collect(),
            page.next_cursor,
        ))
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
