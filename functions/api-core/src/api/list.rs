//! `GET /jobs`: keyset pagination over the list indexes, then one batch read of the jobs.

use std::collections::HashMap;

use serde::Serialize;

use super::JobsApi;
use crate::cursor::Position;
use crate::listing::{self, ListRequest, Partitions};
use jobs_core::clock;
use jobs_core::domain::auth::Caller;
use jobs_core::domain::job::JobView;
use jobs_core::error::ApiError;
use jobs_core::ports::{IndexQuery, JobStore, ServicePorts};

/// Index queries one listing request may make before it returns what it has (with a
/// cursor): bounds the latency and read cost of sparse filters and empty months.
const MAX_QUERIES_PER_PAGE: usize = 12;
/// With a filter, read ahead this many index entries per wanted row (capped), since the
/// filter drops some; entries past the page are not lost: the cursor restarts after the last
/// one returned.
const FILTER_READ_AHEAD: u32 = 4;
const MAX_EVALUATED_PER_QUERY: u32 = 400;

#[derive(Debug, Serialize)]
pub struct ListPage {
    pub items: Vec<JobView>,
    pub next_cursor: Option<String>,
}

impl<P: ServicePorts> JobsApi<P> {
    pub async fn list_jobs(
        &self,
        caller: &Caller,
        request: &ListRequest,
    ) -> Result<ListPage, ApiError> {
        let plan = listing::plan(caller, request, clock::now(), self.retention_days)?;
        let mut position = match &request.cursor {
            Some(cursor) => self.cursors.decode(cursor, &plan.scope)?,
            None => Position::default(),
        };
        let limit = request.limit as usize;
        let mut ids: Vec<String> = Vec::with_capacity(limit);
        let mut exhausted = false;
        for _ in 0..MAX_QUERIES_PER_PAGE {
            let partition = match &plan.partitions {
                Partitions::One(p) => p.clone(),
                Partitions::Months { newest, oldest } => match &position.month {
                    Some(m) if m <= newest && m >= oldest => m.clone(),
                    Some(_) => {
                        return Err(ApiError::bad_param(
                            "cursor",
                            "invalid cursor; start again without one",
                        ));
                    }
                    None => newest.clone(),
                },
            };
            let wanted = (limit - ids.len()) as u32;
            let evaluate = if plan.filter.is_empty() {
                wanted
            } else {
                wanted
                    .saturating_mul(FILTER_READ_AHEAD)
                    .clamp(wanted, MAX_EVALUATED_PER_QUERY.max(wanted))
            };
            let page = self
                .store
                .query(&IndexQuery {
                    index: plan.index,
                    partition: partition.clone(),
                    sort_from: plan.sort_from.clone(),
                    sort_to: plan.sort_to.clone(),
                    filter: plan.filter.clone(),
                    start_key: position.start_key.take(),
                    limit: evaluate,
                })
                .await?;
            position.month =
                matches!(plan.partitions, Partitions::Months { .. }).then(|| partition.clone());
            let overshoot = page.entries.len() > wanted as usize;
            let mut entries = page.entries;
            if overshoot {
                entries.truncate(wanted as usize);
                position.start_key = entries.last().map(|e| e.key.clone());
            } else {
                position.start_key = page.last_key;
            }
            ids.extend(entries.into_iter().map(|e| e.id));
            if position.start_key.is_none() {
                // This partition is done: step to the previous month, or stop.
                match &plan.partitions {
                    Partitions::Months { oldest, .. } if partition > *oldest => {
                        position.month = clock::previous_month(&partition);
                    }
                    _ => {
                        exhausted = true;
                        break;
                    }
                }
            }
            if ids.len() >= limit {
                break;
            }
        }
        let items = self.load_in_order(&ids, request.hidden).await?;
        let next_cursor = (!exhausted).then(|| self.cursors.encode(&position, &plan.scope));
        Ok(ListPage { items, next_cursor })
    }

    /// Loads the listed jobs in index order, skipping any hidden (or, for the hidden list,
    /// restored) since the index was read.
    async fn load_in_order(&self, ids: &[String], hidden: bool) -> Result<Vec<JobView>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_id: HashMap<String, _> = self
            .store
            .get_many(ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        Ok(ids
            .iter()
            .filter_map(|id| by_id.remove(id))
            .filter(|r| r.is_hidden() == hidden)
            .map(|r| r.view())
            .collect())
    }
}
