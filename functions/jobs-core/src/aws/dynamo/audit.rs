//! The audit table (`AUDIT_TABLE`): [`AuditLog`] as conditional puts and queries. The
//! functions' roles hold `PutItem` and `Query` on it and nothing else (template.yaml), so
//! an entry, once written, is changed or removed by TTL only.

use aws_sdk_dynamodb::Client;

use super::{conditional, from_item, s, to_item};
use crate::domain::audit::{Audit, AuditRecord, DEFAULT_AUDIT_RETENTION_DAYS};
use crate::domain::record::job_pk;
use crate::env::{self, SettingError};
use crate::error::StoreError;
use crate::ports::AuditLog;

/// The index over every entry by day: partition `audit_day`, sort `sk`.
pub const BY_DAY_INDEX: &str = "by_day";
/// The index over a tenant's entries by day: partition `audit_tenant_day`, sort `sk`.
pub const BY_TENANT_DAY_INDEX: &str = "by_tenant_day";

#[derive(Clone)]
pub struct DynamoAuditLog {
    client: Client,
    table: String,
}

impl DynamoAuditLog {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoAuditLog {
        DynamoAuditLog {
            client,
            table: table.into(),
        }
    }

    /// The trail over `AUDIT_TABLE`, its entries kept `AUDIT_RETENTION_DAYS` (default
    /// [`DEFAULT_AUDIT_RETENTION_DAYS`]); the error names the variable.
    pub fn from_env(client: Client) -> Result<Audit<DynamoAuditLog>, SettingError> {
        let log = DynamoAuditLog::new(client, env::required("AUDIT_TABLE")?);
        Ok(Audit::new(
            log,
            env::parsed_or("AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_RETENTION_DAYS)?,
        ))
    }
}

impl AuditLog for DynamoAuditLog {
    async fn append(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        // The same entry was written before (a retried request, a redelivered message).
        conditional(result.map(|_| ()), "dynamodb:PutItem").map(|_| ())
    }

    async fn job_entries(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<AuditRecord>, bool), StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", s(job_pk(job_id)))
            .limit(limit.max(1) as i32);
        request = match after {
            Some(after) => request
                .key_condition_expression("#pk = :pk AND #sk > :after")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":after", s(after)),
            None => request.key_condition_expression("#pk = :pk"),
        };
        let out = request
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        let more = out.last_evaluated_key.is_some();
        let entries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<AuditRecord>, _>>()?;
        Ok((entries, more))
    }

    async fn day_entries(
        &self,
        tenant: Option<&str>,
        partition: &str,
        from: &str,
        to: &str,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let (index, attribute) = match tenant {
            Some(_) => (BY_TENANT_DAY_INDEX, "audit_tenant_day"),
            None => (BY_DAY_INDEX, "audit_day"),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#day = :day AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#day", attribute)
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":day", s(partition))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .scan_index_forward(false)
            .limit(limit.max(1) as i32)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::SharedHttpClient;
    use serde_json::{Value, json};

    use super::*;
    use crate::aws::dynamo::test_client::{condition_failed, sent};
    use crate::aws::fake_http::FakeHttp;
    use crate::domain::audit::{AuditEvent, EventKind, Origin};

    const TABLE: &str = "audit-table";

    fn log_answering(status: u16, body: Value) -> (DynamoAuditLog, FakeHttp) {
        let http = FakeHttp::answering(status, body);
        (
            DynamoAuditLog::new(
                FakeHttp::dynamodb(SharedHttpClient::new(http.clone())),
                TABLE,
            ),
            http,
        )
    }

    fn record() -> AuditRecord {
        Audit::new(crate::memory::MemoryAudit::default(), 400).record_of(AuditEvent {
            at: "2026-11-30T10:00:00.000Z".into(),
            kind: EventKind::Created,
            job_id: Some("01JDQ0000000000000000000A1".into()),
            api_key_id: None,
            sender: None,
            tenant: "acme".into(),
            actor: None,
            origin: Origin::default(),
            outcome: "ok".into(),
            status: None,
            related_job: None,
            limits: None,
        })
    }

    #[tokio::test]
    async fn an_append_is_a_put_that_never_overwrites_and_a_repeat_is_no_error() {
        let (log, http) = log_answering(200, json!({}));
        log.append(&record()).await.unwrap();
        let (operation, body) = sent(http);
        assert_eq!(operation, "PutItem");
        assert_eq!(body["TableName"], TABLE);
        assert_eq!(body["ConditionExpression"], "attribute_not_exists(pk)");
        assert_eq!(
            body["Item"]["pk"],
            json!({"S": "JOB#01JDQ0000000000000000000A1"})
        );
        assert_eq!(
            body["Item"]["sk"],
            json!({"S": "2026-11-30T10:00:00.000Z#01JDQ0000000000000000000A1#0#created"})
        );
        assert_eq!(body["Item"]["audit_day"], json!({"S": "2026-11-30#1"}));
        assert_eq!(
            body["Item"]["audit_tenant_day"],
            json!({"S": "acme#2026-11-30#1"})
        );
        assert_eq!(body["Item"]["kind"], json!({"S": "created"}));

        let (log, _http) = log_answering(400, condition_failed());
        log.append(&record())
            .await
            .expect("an entry already there is the same event");
        let (log, _http) = log_answering(500, json!({"__type": "InternalServerError"}));
        assert!(log.append(&record()).await.is_err());
    }

    #[tokio::test]
    async fn a_jobs_entries_are_one_query_of_its_partition_oldest_first() {
        let r = record();
        let item = json!({
            "pk": {"S": r.pk}, "sk": {"S": r.sk}, "audit_day": {"S": r.audit_day}, "audit_tenant_day": {"S": r.audit_tenant_day}, "expires_at": {"N": r.expires_at.to_string()},
            "at": {"S": r.event.at}, "kind": {"S": "created"}, "job_id": {"S": r.event.job_id}, "tenant": {"S": "acme"}, "outcome": {"S": "ok"}
        });
        let (log, http) = log_answering(
            200,
            json!({"Items": [item], "LastEvaluatedKey": {"pk": {"S": "x"}, "sk": {"S": "y"}}}),
        );
        let (entries, more) = log
            .job_entries("01JDQ0000000000000000000A1", Some("2026-11-30T09"), 50)
            .await
            .unwrap();
        assert_eq!((entries, more), (vec![record()], true));
        let (operation, body) = sent(http);
        assert_eq!(operation, "Query");
        assert_eq!(
            body,
            json!({
                "TableName": TABLE,
                "KeyConditionExpression": "#pk = :pk AND #sk > :after",
                "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
                "ExpressionAttributeValues": {":pk": {"S": "JOB#01JDQ0000000000000000000A1"}, ":after": {"S": "2026-11-30T09"}},
                "Limit": 50
            })
        );
    }

    #[tokio::test]
    async fn a_days_entries_are_one_query_of_the_index_newest_first() {
        let (log, http) = log_answering(200, json!({"Items": []}));
        assert!(
            log.day_entries(None, "2026-11-30#2", "2026-11-30T00", "2026-11-30T12~", 21)
                .await
                .unwrap()
                .is_empty()
        );
        let (_, body) = sent(http);
        assert_eq!(
            body,
            json!({
                "TableName": TABLE,
                "IndexName": "by_day",
                "KeyConditionExpression": "#day = :day AND #sk BETWEEN :from AND :to",
                "ExpressionAttributeNames": {"#day": "audit_day", "#sk": "sk"},
                "ExpressionAttributeValues": {":day": {"S": "2026-11-30#2"}, ":from": {"S": "2026-11-30T00"}, ":to": {"S": "2026-11-30T12~"}},
                "ScanIndexForward": false,
                "Limit": 21
            })
        );
        let (log, http) = log_answering(200, json!({"Items": []}));
        log.day_entries(
            Some("acme"),
            "acme#2026-11-30#2",
            "2026-11-30T00",
            "2026-11-30T12~",
            21,
        )
        .await
        .unwrap();
        let (_, body) = sent(http);
        assert_eq!(
            (
                &body["IndexName"],
                &body["ExpressionAttributeNames"]["#day"],
                &body["ExpressionAttributeValues"][":day"]
            ),
            (
                &json!("by_tenant_day"),
                &json!("audit_tenant_day"),
                &json!({"S": "acme#2026-11-30#2"})
            )
        );
    }
}
