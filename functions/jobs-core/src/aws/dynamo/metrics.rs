//! The job metrics' aggregates in the Jobs table ([`MetricsStore`]): `UpdateItem ADD` per
//! item, `Query` of one partition's hours.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::{DynamoJobStore, s};
use crate::domain::metrics::{MetricAdd, MetricItem};
use crate::error::StoreError;
use crate::ports::MetricsStore;

impl MetricsStore for DynamoJobStore {
    async fn add_metrics(&self, adds: &[MetricAdd]) -> Result<(), StoreError> {
        for add in adds {
            let mut names = HashMap::from([("#ttl".to_string(), "expires_at".to_string())]);
            let mut values = HashMap::from([(
                ":ttl".to_string(),
                AttributeValue::N(add.expires_at.to_string()),
            )]);
            let mut terms = Vec::new();
            for (i, (name, value)) in add.adds.iter().enumerate() {
                names.insert(format!("#a{i}"), name.clone());
                values.insert(format!(":a{i}"), AttributeValue::N(value.to_string()));
                terms.push(format!("#a{i} :a{i}"));
            }
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&add.pk))
                .key("sk", s(&add.sk))
                .update_expression(format!("ADD {} SET #ttl = :ttl", terms.join(", ")))
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await
                .map_err(|e| StoreError::aws("dynamodb:UpdateItem", e))?;
        }
        Ok(())
    }

    async fn read_metrics(
        &self,
        pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<MetricItem>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
            for item in out.items.unwrap_or_default() {
                let sk = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                let counters: BTreeMap<String, u64> = item
                    .iter()
                    .filter(|(name, _)| name.contains(':'))
                    .filter_map(|(name, v)| Some((name.clone(), v.as_n().ok()?.parse().ok()?)))
                    .collect();
                items.push((sk, counters));
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::aws::dynamo::test_client::{TABLE, sent, store, store_answering};

    #[tokio::test]
    async fn an_addition_is_one_update_that_adds_every_counter_and_renews_the_ttl() {
        let (db, http) = store();
        let add = MetricAdd {
            pk: "METRIC#acme#3".into(),
            sk: "2026-11-30T10".into(),
            adds: BTreeMap::from([
                ("created:ai_text_embedding".to_string(), 1),
                ("succeeded:ai_text_embedding".to_string(), 40),
            ]),
            expires_at: 1_800_000_000,
        };
        db.add_metrics(&[add]).await.unwrap();
        let (operation, body) = sent(http);
        assert_eq!(operation, "UpdateItem");
        assert_eq!(
            body,
            json!({
                "TableName": TABLE,
                "Key": {"pk": {"S": "METRIC#acme#3"}, "sk": {"S": "2026-11-30T10"}},
                "UpdateExpression": "ADD #a0 :a0, #a1 :a1 SET #ttl = :ttl",
                "ExpressionAttributeNames": {"#ttl": "expires_at", "#a0": "created:ai_text_embedding", "#a1": "succeeded:ai_text_embedding"},
                "ExpressionAttributeValues": {":ttl": {"N": "1800000000"}, ":a0": {"N": "1"}, ":a1": {"N": "40"}}
            })
        );
    }

    #[tokio::test]
    async fn a_read_is_one_query_of_the_partition_s_hours() {
        let answer = json!({"Items": [{"pk": {"S": "METRIC#*#0"}, "sk": {"S": "2026-11-30T10"}, "expires_at": {"N": "1"}, "created:ai_text_embedding": {"N": "5"}}]});
        let (db, http) = store_answering(200, answer);
        let items = db
            .read_metrics("METRIC#*#0", "2026-11-29T11", "2026-11-30T10")
            .await
            .unwrap();
        assert_eq!(
            items,
            vec![(
                "2026-11-30T10".to_string(),
                BTreeMap::from([("created:ai_text_embedding".to_string(), 5)])
            )]
        );
        let (operation, body) = sent(http);
        assert_eq!(operation, "Query");
        assert_eq!(
            body["KeyConditionExpression"],
            "#pk = :pk AND #sk BETWEEN :from AND :to"
        );
        assert_eq!(
            body["ExpressionAttributeValues"][":from"],
            json!({"S": "2026-11-29T11"})
        );
    }
}
