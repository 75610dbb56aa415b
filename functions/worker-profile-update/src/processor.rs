//! Sets (or, for `null`, removes) one field on each user's profile in the Profiles table
//! (`tenant`, `user_id`): the job's `value`, or the user's own from a file's `value`
//! column. A user without a profile is a failed item; nothing is created.

use aws_sdk_dynamodb::types::AttributeValue;
use jobs_core::JobType;
use jobs_core::domain::params::{ProfileFieldParams, ProfileTarget, is_user_id};
use jobs_core::domain::record::JobRecord;
use jobs_core::worker::{ItemOutcome, ItemResult, Processor, WorkError, in_order};
use serde_json::Value;

const CONCURRENCY: usize = 10;

pub struct ProfileUpdates {
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
}

impl ProfileUpdates {
    pub fn new(dynamo: aws_sdk_dynamodb::Client, table: String) -> ProfileUpdates {
        ProfileUpdates { dynamo, table }
    }

    async fn update(
        &self,
        tenant: &str,
        params: &ProfileFieldParams,
        value: &Option<AttributeValue>,
        target: &ProfileTarget,
    ) -> ItemResult {
        let user = target.user_id();
        // A file's row may carry its own value (a string) for this user.
        let own;
        let value = match target {
            ProfileTarget::WithValue { value, .. } => {
                own = Some(AttributeValue::S(value.clone()));
                &own
            }
            ProfileTarget::User(_) => value,
        };
        if !is_user_id(user) {
            return Ok(ItemOutcome::Rejected("not a valid user id".into()));
        }
        let mut request = self
            .dynamo
            .update_item()
            .table_name(&self.table)
            .key("tenant", AttributeValue::S(tenant.into()))
            .key("user_id", AttributeValue::S(user.into()))
            .condition_expression("attribute_exists(user_id)")
            .expression_attribute_names("#field", &params.field);
        request = match value {
            Some(v) => request
                .update_expression("SET #field = :value")
                .expression_attribute_values(":value", v.clone()),
            None => request.update_expression("REMOVE #field"),
        };
        match request.send().await {
            Ok(_) => Ok(ItemOutcome::Succeeded),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(ItemOutcome::Rejected("no profile for this user".into()))
            }
            Err(err) => ItemOutcome::of(Err::<(), _>(err)),
        }
    }
}

/// The DynamoDB form of a validated value; None removes the field.
pub fn attribute(value: &Value) -> Result<Option<AttributeValue>, WorkError> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(AttributeValue::Bool(*b))),
        Value::Number(n) => Ok(Some(AttributeValue::N(n.to_string()))),
        Value::String(s) => Ok(Some(AttributeValue::S(s.clone()))),
        _ => Err(WorkError::Rejected(
            "value must be a string, number, bool or null".into(),
        )),
    }
}

impl Processor for ProfileUpdates {
    const JOB_TYPE: JobType = JobType::ProfileFieldUpdate;
    const STEP: usize = CONCURRENCY;
    type Params = ProfileFieldParams;
    type Item = ProfileTarget;

    async fn items(
        &self,
        _job: &JobRecord,
        params: &ProfileFieldParams,
    ) -> Result<Vec<ProfileTarget>, WorkError> {
        Ok(params
            .user_ids
            .iter()
            .cloned()
            .map(ProfileTarget::User)
            .collect())
    }

    fn label(target: &ProfileTarget) -> String {
        target.user_id().to_string()
    }

    async fn process(
        &self,
        job: &JobRecord,
        params: &ProfileFieldParams,
        users: &[ProfileTarget],
    ) -> Vec<ItemResult> {
        match attribute(&params.value) {
            Ok(value) => {
                in_order(
                    users
                        .iter()
                        .map(|u| self.update(&job.tenant, params, &value, u))
                        .collect(),
                    CONCURRENCY,
                )
                .await
            }
            Err(err) => vec![Err(err); users.len()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_map_to_attributes() {
        assert_eq!(attribute(&Value::Null).unwrap(), None);
        assert_eq!(
            attribute(&serde_json::json!(true)).unwrap(),
            Some(AttributeValue::Bool(true))
        );
        assert_eq!(
            attribute(&serde_json::json!(2.5)).unwrap(),
            Some(AttributeValue::N("2.5".into()))
        );
        assert_eq!(
            attribute(&serde_json::json!("de")).unwrap(),
            Some(AttributeValue::S("de".into()))
        );
        assert!(attribute(&serde_json::json!([1])).is_err());
    }
}
