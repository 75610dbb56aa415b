//! What a tenant owns in the Jobs table: its API keys ([`ApiKeyStore`]) and its senders
//! ([`SenderStore`]). A conditional put per new one, consistent reads by key, one `Query`
//! of the `owned_by_tenant` index per listing, and a revocation or removal that is a
//! conditional update taking the item out of that index (TTL removes it later).

use std::collections::HashMap;

use super::{DynamoJobStore, Item, conditional, from_item, s, to_item};
use crate::domain::api_key::{API_KEY_SK, ApiKeyRecord, MAX_API_KEYS, api_key_pk};
use crate::domain::record::{OWNED_INDEX, owned_by};
use crate::domain::sender::{MAX_SENDERS, SENDER_SK, SenderRecord, sender_pk};
use crate::error::StoreError;
use crate::ports::{ApiKeyStore, SenderStore};

fn key_of(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

impl DynamoJobStore {
    /// Puts `item` unless its key holds a live one (`live_unless`: the attribute a
    /// released one has; `None`: unless the key exists at all).
    async fn put_owned<T: serde::Serialize>(
        &self,
        item: &T,
        live_unless: Option<&str>,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(item)?));
        let request = match live_unless {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(released) => request
                .condition_expression("attribute_not_exists(pk) OR attribute_exists(#released)")
                .expression_attribute_names("#released", released),
        };
        conditional(request.send().await.map(|_| ()), "dynamodb:PutItem")
    }

    /// The live items of `tenant` of `kind`, at most `limit`: one `Query`.
    async fn list_owned<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &str,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OWNED_INDEX)
            .key_condition_expression("#owned = :owned")
            .expression_attribute_names("#owned", "owned_by")
            .expression_attribute_values(":owned", s(owned_by(tenant, kind)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Marks `tenant`'s live item at `key` released (`released` = `at`), out of the owned
    /// index, removed by TTL at `ttl`; false when there is no such live item.
    async fn release_owned(
        &self,
        key: Item,
        released: &str,
        tenant: &str,
        at: &str,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET #released = :at, #ttl = :ttl REMOVE #owned")
            .condition_expression("#tenant = :tenant AND attribute_not_exists(#released)")
            .expression_attribute_names("#released", released)
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
}

impl ApiKeyStore for DynamoJobStore {
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<bool, StoreError> {
        self.put_owned(key, None).await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_consistent(key_of(api_key_pk(id), API_KEY_SK))
            .await
    }

    async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.list_owned(tenant, "api_key", MAX_API_KEYS + 1).await
    }

    async fn revoke_api_key(
        &self,
        id: &str,
        tenant: &str,
        at: &str,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let key = key_of(api_key_pk(id), API_KEY_SK);
        self.release_owned(key, "revoked_at", tenant, at, ttl).await
    }

    async fn touch_api_key(&self, id: &str, at: &str, since: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(api_key_pk(id), API_KEY_SK)))
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

impl SenderStore for DynamoJobStore {
    async fn add_sender(&self, sender: &SenderRecord) -> Result<bool, StoreError> {
        self.put_owned(sender, Some("removed_at")).await
    }

    async fn get_senders(&self, identities: &[String]) -> Result<Vec<SenderRecord>, StoreError> {
        let keys = identities
            .iter()
            .map(|identity| key_of(sender_pk(identity), SENDER_SK))
            .collect();
        self.batch_get(keys, true).await
    }

    async fn list_senders(&self, tenant: &str) -> Result<Vec<SenderRecord>, StoreError> {
        self.list_owned(tenant, "sender", MAX_SENDERS + 1).await
    }

    async fn remove_sender(
        &self,
        identity: &str,
        tenant: &str,
        at: &str,
        ttl: i64,
    ) -> Result<bool, StoreError> {
        let key = key_of(sender_pk(identity), SENDER_SK);
        self.release_owned(key, "removed_at", tenant, at, ttl).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_client::{TABLE, condition_failed, sent, store, store_answering};
    use super::*;
    use crate::domain::auth::Role;
    use crate::domain::sender::SenderKind;

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
            "SET #released = :at, #ttl = :ttl REMOVE #owned"
        );
        assert_eq!(
            body["ConditionExpression"],
            "#tenant = :tenant AND attribute_not_exists(#released)"
        );
        assert_eq!(body["ExpressionAttributeNames"]["#released"], "revoked_at");
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

    fn sender() -> SenderRecord {
        SenderRecord {
            pk: sender_pk("acme.example.com"),
            sk: SENDER_SK.into(),
            owned_by: Some(owned_by("acme", "sender")),
            identity: "acme.example.com".into(),
            kind: SenderKind::Domain,
            tenant: "acme".into(),
            created_by: "pat".into(),
            created_at: "2026-12-01T00:00:00.000Z".into(),
            removed_at: None,
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn a_sender_is_taken_unless_registered_and_read_in_one_batch() {
        let (store, http) = store();
        assert!(store.add_sender(&sender()).await.unwrap());
        let (operation, body) = sent(http);
        assert_eq!(operation, "PutItem");
        assert_eq!(
            body["ConditionExpression"],
            "attribute_not_exists(pk) OR attribute_exists(#released)"
        );
        assert_eq!(body["ExpressionAttributeNames"]["#released"], "removed_at");
        assert_eq!(body["Item"]["owned_by"], json!({"S": "acme#sender"}));

        let (store, http) = store_answering(200, json!({"Responses": {TABLE: []}}));
        let identities = [
            "ops@acme.example.com".to_string(),
            "acme.example.com".to_string(),
        ];
        assert!(store.get_senders(&identities).await.unwrap().is_empty());
        let (operation, body) = sent(http);
        assert_eq!(operation, "BatchGetItem");
        assert_eq!(
            body["RequestItems"][TABLE],
            json!({"Keys": [
                {"pk": {"S": "SENDER#ops@acme.example.com"}, "sk": {"S": "SENDER"}},
                {"pk": {"S": "SENDER#acme.example.com"}, "sk": {"S": "SENDER"}}
            ], "ConsistentRead": true})
        );
        let (store, _) = store_answering(
            200,
            json!({"Responses": {TABLE: []}, "UnprocessedKeys": {TABLE: {"Keys": [{"pk": {"S": "x"}, "sk": {"S": "y"}}]}}}),
        );
        assert!(
            store.get_senders(&identities).await.is_err(),
            "an unread key is not an absent one"
        );
    }
}
