//! Tenants' limits in the Jobs table ([`LimitsStore`]): the limits item read consistently
//! and replaced whole; a minute's create counter as one conditional `ADD` per create.

use std::collections::HashMap;

use super::{DynamoJobStore, Item, conditional, n, s, to_item};
use crate::domain::limits::{LIMITS_SK, LimitsRecord, creates_sk, tenant_pk, uploads_sk};
use crate::error::StoreError;
use crate::ports::LimitsStore;

fn key_of(tenant: &str, sk: String) -> Item {
    HashMap::from([
        ("pk".to_string(), s(tenant_pk(tenant))),
        ("sk".to_string(), s(sk)),
    ])
}

impl DynamoJobStore {
    /// Adds one to the counter item `sk` of `tenant` if it is below `limit`; false at it.
    async fn count_under_limit(
        &self,
        tenant: &str,
        sk: String,
        limit: u32,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(tenant, sk)))
            .update_expression("ADD #count :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", "expires_at")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(u64::from(limit)))
            .expression_attribute_values(":ttl", n(ttl.max(0) as u64))
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:UpdateItem")
    }
}

impl LimitsStore for DynamoJobStore {
    async fn get_limits(&self, tenant: &str) -> Result<Option<LimitsRecord>, StoreError> {
        self.get_consistent(key_of(tenant, LIMITS_SK.into())).await
    }

    async fn put_limits(&self, limits: &LimitsRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(limits)?))
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:PutItem", e))?;
        Ok(())
    }

    async fn count_create(
        &self,
        tenant: &str,
        minute: &str,
        limit: u32,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        self.count_under_limit(tenant, creates_sk(minute), limit, ttl)
            .await
    }

    async fn count_upload(
        &self,
        tenant: &str,
        day: &str,
        limit: u32,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        self.count_under_limit(tenant, uploads_sk(day), limit, ttl)
            .await
    }

    async fn creates_in(&self, tenant: &str, minute: &str) -> Result<u64, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(tenant, creates_sk(minute))))
            .projection_expression("#count")
            .expression_attribute_names("#count", "count")
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        Ok(out
            .item
            .and_then(|item| item.get("count").and_then(|c| c.as_n().ok().cloned()))
            .and_then(|count| count.parse().ok())
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_client::{condition_failed, sent, store, store_answering};
    use super::*;

    #[tokio::test]
    async fn a_create_is_counted_by_one_conditional_add_on_the_tenants_minute() {
        let (store, http) = store();
        assert!(
            store
                .count_create("acme", "2026-12-05T10:42", 3, 1_800_000_000)
                .await
                .unwrap()
        );
        let (operation, body) = sent(http);
        assert_eq!(operation, "UpdateItem");
        assert_eq!(
            body["Key"],
            json!({"pk": {"S": "TENANT#acme"}, "sk": {"S": "CREATES#2026-12-05T10:42"}})
        );
        assert_eq!(body["UpdateExpression"], "ADD #count :one SET #ttl = :ttl");
        assert_eq!(
            body["ConditionExpression"],
            "attribute_not_exists(#count) OR #count < :limit"
        );
        assert_eq!(
            body["ExpressionAttributeValues"][":limit"],
            json!({"N": "3"})
        );
        let (store, _) = store_answering(400, condition_failed());
        assert!(
            !store
                .count_create("acme", "2026-12-05T10:42", 3, 0)
                .await
                .unwrap(),
            "at the limit"
        );
    }

    #[tokio::test]
    async fn limits_are_read_consistently() {
        let (store, http) = store();
        assert_eq!(store.get_limits("acme").await.unwrap(), None);
        let (operation, body) = sent(http);
        assert_eq!(operation, "GetItem");
        assert_eq!(body["ConsistentRead"], true);
        assert_eq!(
            body["Key"],
            json!({"pk": {"S": "TENANT#acme"}, "sk": {"S": "LIMITS"}})
        );
    }
}
