//! API keys in the Jobs table ([`ApiKeyStore`]): a conditional put per new key, a
//! consistent `GetItem` per request that presents one, conditional updates to revoke and
//! to note the last use, one `Query` of the `owned_by_tenant` index per listing.

use std::collections::HashMap;

use super::{DynamoJobStore, Item, conditional, from_item, s, to_item};
use crate::domain::api_key::{
    API_KEY_SK, ApiKeyRecord, MAX_API_KEYS, OWNED_INDEX, api_key_pk, owned_by,
};
use crate::error::StoreError;
use crate::ports::ApiKeyStore;

fn key_of(id: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), s(api_key_pk(id))),
        ("sk".to_string(), s(API_KEY_SK)),
    ])
}

impl ApiKeyStore for DynamoJobStore {
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(key)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:PutItem")
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OWNED_INDEX)
            .key_condition_expression("#owned = :owned")
            .expression_attribute_names("#owned", "owned_by")
            .expression_attribute_values(":owned", s(owned_by(tenant, "api_key")))
            .limit(MAX_API_KEYS as i32 + 1)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn revoke_api_key(
        &self,
        id: &str,
        tenant: &str,
        at: &str,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .update_expression("SET #revoked = :at, #ttl = :ttl REMOVE #owned")
            .condition_expression("#tenant = :tenant AND attribute_not_exists(#revoked)")
            .expression_attribute_names("#revoked", "revoked_at")
            .expression_attribute_names("#ttl", "expires_at")
            .expression_attribute_names("#owned", "owned_by")
            .expression_attribute_names("#tenant", "tenant")
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":ttl", super::n(ttl.max(0) as u64))
            .expression_attribute_values(":tenant", s(tenant))
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:UpdateItem")
    }

    async fn touch_api_key(&self, id: &str, at: &str, since: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .update_expression("SET #used = :at")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(#revoked) AND (attribute_not_exists(#used) OR #used < :since)",
            )
            .expression_attribute_names("#used", "last_used_at")
            .expression_attribute_names("#revoked", "revoked_at")
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":since", s(since))
            .send()
            .await;
        conditional(result.map(|_| ()), "dynamodb:UpdateItem")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_client::{TABLE, condition_failed, sent, store, store_answering};
    use super::*;
    use crate::domain::auth::Role;

    fn key() -> ApiKeyRecord {
        ApiKeyRecord {
            pk: api_key_pk("0123456789ab"),
            sk: API_KEY_SK.into(),
            owned_by: Some(owned_by("acme", "api_key")),
            id: "0123456789ab".into(),
            tenant: "acme".into(),
            name: "billing".into(),
            role: Role::Operator,
            hash: "ab".repeat(32),
            created_by: "tara".into(),
            created_at: "2026-12-01T00:00:00.000Z".into(),
            key_expires_at: None,
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn a_new_key_is_a_put_that_never_overwrites() {
        let (store, http) = store();
        assert!(store.create_api_key(&key()).await.unwrap());
        let (operation, body) = sent(http);
        assert_eq!(operation, "PutItem");
        assert_eq!(body["ConditionExpression"], "attribute_not_exists(pk)");
        assert_eq!(body["Item"]["pk"], json!({"S": "APIKEY#0123456789ab"}));
        assert_eq!(body["Item"]["owned_by"], json!({"S": "acme#api_key"}));
        assert_eq!(body["Item"]["role"], json!({"S": "operator"}));
        assert!(body["Item"].get("expires_at").is_none());
        let (store, _) = store_answering(400, condition_failed());
        assert!(!store.create_api_key(&key()).await.unwrap(), "id taken");
    }

    #[tokio::test]
    async fn a_presented_key_is_one_consistent_read() {
        let (store, http) = store();
        assert_eq!(store.get_api_key("0123456789ab").await.unwrap(), None);
        let (operation, body) = sent(http);
        assert_eq!(operation, "GetItem");
        assert_eq!(
            body,
            json!({"TableName": TABLE, "Key": {"pk": {"S": "APIKEY#0123456789ab"}, "sk": {"S": "APIKEY"}}, "ConsistentRead": true})
        );
    }

    #[tokio::test]
    async fn a_listing_is_one_query_of_the_tenants_partition() {
        let (store, http) = store_answering(200, json!({"Items": []}));
        assert!(store.list_api_keys("acme").await.unwrap().is_empty());
        let (_, body) = sent(http);
        assert_eq!(
            body,
            json!({
                "TableName": TABLE,
                "IndexName": "owned_by_tenant",
                "KeyConditionExpression": "#owned = :owned",
                "ExpressionAttributeNames": {"#owned": "owned_by"},
                "ExpressionAttributeValues": {":owned": {"S": "acme#api_key"}},
                "Limit": 51
            })
        );
    }

    #[tokio::test]
    async fn a_revocation_guards_the_tenant_and_leaves_the_index() {
        let (store, http) = store();
        assert!(
            store
                .revoke_api_key(
                    "0123456789ab",
                    "acme",
                    "2026-12-01T01:00:00.000Z",
                    1_800_000_000
                )
                .await
                .unwrap()
        );
        let (operation, body) = sent(http);
        assert_eq!(operation, "UpdateItem");
        assert_eq!(
            body["UpdateExpression"],
            "SET #revoked = :at, #ttl = :ttl REMOVE #owned"
        );
        assert_eq!(
            body["ConditionExpression"],
            "#tenant = :tenant AND attribute_not_exists(#revoked)"
        );
        assert_eq!(
            body["ExpressionAttributeValues"][":tenant"],
            json!({"S": "acme"})
        );
        assert_eq!(
            body["ExpressionAttributeValues"][":ttl"],
            json!({"N": "1800000000"})
        );
        let (store, _) = store_answering(400, condition_failed());
        assert!(
            !store
                .revoke_api_key("0123456789ab", "globex", "2026-12-01T01:00:00.000Z", 0)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_last_use_is_written_only_when_older_than_since() {
        let (store, http) = store();
        assert!(
            store
                .touch_api_key(
                    "0123456789ab",
                    "2026-12-01T01:00:00.000Z",
                    "2026-12-01T00:59:00.000Z"
                )
                .await
                .unwrap()
        );
        let (_, body) = sent(http);
        assert_eq!(
            body["ConditionExpression"],
            "attribute_exists(pk) AND attribute_not_exists(#revoked) AND (attribute_not_exists(#used) OR #used < :since)"
        );
        assert_eq!(
            body["ExpressionAttributeValues"][":since"],
            json!({"S": "2026-12-01T00:59:00.000Z"})
        );
        let (store, _) = store_answering(400, condition_failed());
        assert!(!store.touch_api_key("0123456789ab", "b", "a").await.unwrap());
    }
}
