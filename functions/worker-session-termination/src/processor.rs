//! Deletes sessions from the Sessions table: `tenant` (pk), `session_id` (sk), `user_id`,
//! `last_seen` (epoch seconds) and `tenant_user` = `<tenant>#<user>`, the key of the
//! `by_user` index. (A platform's own table with that shape can be named instead.)
//!
//! `user_ids` jobs have one item per user (all of that user's sessions; none is fine);
//! `all_users` / `idle_for_seconds` jobs have one item per matching session, found by
//! querying the tenant's partition page by page when the job is planned.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use jobs_core::JobType;
use jobs_core::aws::batch_write;
use jobs_core::domain::params::SessionTerminationParams;
use jobs_core::domain::record::JobRecord;
use jobs_core::worker::{ItemOutcome, ItemResult, Processor, WorkError, in_order};
use serde::{Deserialize, Serialize};

const CONCURRENCY: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Every session of one user.
    User(String),
    /// One session.
    Session(String),
}

pub struct SessionTerminations {
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

impl SessionTerminations {
    pub fn new(dynamo: aws_sdk_dynamodb::Client, table: String) -> SessionTerminations {
        SessionTerminations { dynamo, table }
    }

    /// Session ids of the tenant's sessions, optionally only those idle since `cutoff`.
    async fn sessions(
        &self,
        tenant: &str,
        idle_before: Option<i64>,
    ) -> Result<Vec<String>, WorkError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .dynamo
                .query()
                .table_name(&self.table)
                .key_condition_expression("tenant = :t")
                .expression_attribute_values(":t", s(tenant))
                .projection_expression("session_id")
                .set_exclusive_start_key(start);
            if let Some(cutoff) = idle_before {
                query = query
                    .filter_expression("last_seen < :cutoff")
                    .expression_attribute_values(":cutoff", AttributeValue::N(cutoff.to_string()));
            }
            let page = query.send().await?;
            ids.extend(
                page.items()
                    .iter()
                    .filter_map(|i| i.get("session_id")?.as_s().ok().cloned()),
            );
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(ids);
            }
        }
    }

    async fn user_sessions(&self, tenant: &str, user: &str) -> Result<Vec<String>, WorkError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamo
                .query()
                .table_name(&self.table)
                .index_name("by_user")
                .key_condition_expression("tenant_user = :tu")
                .expression_attribute_values(":tu", s(&format!("{tenant}#{user}")))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            ids.extend(
                page.items()
                    .iter()
                    .filter_map(|i| i.get("session_id")?.as_s().ok().cloned()),
            );
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(ids);
            }
        }
    }

    async fn delete(&self, tenant: &str, session_ids: &[String]) -> Result<(), WorkError> {
        let requests = session_ids
            .iter()
            .filter_map(|id| {
                let key = HashMap::from([
                    ("tenant".to_string(), s(tenant)),
                    ("session_id".to_string(), s(id)),
                ]);
                DeleteRequest::builder().set_key(Some(key)).build().ok()
            })
            .map(|d| WriteRequest::builder().delete_request(d).build())
            .collect();
        batch_write(&self.dynamo, &self.table, requests).await
    }

    async fn terminate(&self, tenant: &str, target: &Target) -> ItemResult {
        let result = match target {
            Target::User(user) => match self.user_sessions(tenant, user).await {
                Ok(ids) => self.delete(tenant, &ids).await,
                Err(e) => Err(e),
            },
            Target::Session(id) => self.delete(tenant, std::slice::from_ref(id)).await,
        };
        ItemOutcome::of(result)
    }
}

impl Processor for SessionTerminations {
    const JOB_TYPE: JobType = JobType::SessionTermination;
    const STEP: usize = CONCURRENCY;
    type Params = SessionTerminationParams;
    type Item = Target;

    async fn items(
        &self,
        job: &JobRecord,
        params: &SessionTerminationParams,
    ) -> Result<Vec<Target>, WorkError> {
        if let Some(ids) = &params.session_ids {
            return Ok(ids.iter().cloned().map(Target::Session).collect());
        }
        let sessions = match (&params.user_ids, params.all_users, params.idle_for_seconds) {
            (Some(users), _, _) => return Ok(users.iter().cloned().map(Target::User).collect()),
            (None, Some(true), _) => self.sessions(&job.tenant, None).await,
            (None, _, Some(idle)) => {
                let cutoff = jobs_core::clock::now().unix_timestamp()
                    - i64::try_from(idle).unwrap_or(i64::MAX);
                self.sessions(&job.tenant, Some(cutoff)).await
            }
            _ => return Err(WorkError::Rejected("no selection in params".into())),
        };
        Ok(sessions?.into_iter().map(Target::Session).collect())
    }

    fn label(target: &Target) -> String {
        match target {
            Target::User(user) => format!("user {user}"),
            Target::Session(id) => format!("session {id}"),
        }
    }

    async fn process(
        &self,
        job: &JobRecord,
        _params: &SessionTerminationParams,
        targets: &[Target],
    ) -> Vec<ItemResult> {
        // Named sessions are one BatchWriteItem a step (a delete of a session already gone
        // succeeds): one request for up to CONCURRENCY items, instead of one each.
        let sessions: Vec<String> = targets
            .iter()
            .filter_map(|t| match t {
                Target::Session(id) => Some(id.clone()),
                Target::User(_) => None,
            })
            .collect();
        if !sessions.is_empty() && sessions.len() == targets.len() {
            let outcome = ItemOutcome::of(self.delete(&job.tenant, &sessions).await);
            return vec![outcome; targets.len()];
        }
        in_order(
            targets
                .iter()
                .map(|t| self.terminate(&job.tenant, t))
                .collect(),
            CONCURRENCY,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_compact_in_chunk_messages() {
        assert_eq!(
            serde_json::to_string(&Target::User("u1".into())).unwrap(),
            r#"{"user":"u1"}"#
        );
        assert_eq!(
            serde_json::from_str::<Target>(r#"{"session":"s1"}"#).unwrap(),
            Target::Session("s1".into())
        );
    }
}
