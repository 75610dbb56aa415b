//! Schedules in the Jobs table ([`ScheduleStore`]): whole-record puts conditional on the
//! version read, and one `Query` per listing page or page of a due-index shard.

use super::{DynamoJobStore, SortRange, conditional, from_item, n, s, to_item};
use crate::domain::record::{DUE_INDEX, SCHEDULE_SK, SCHEDULES_INDEX, ScheduleRecord, schedule_pk};
use crate::error::StoreError;
use crate::ports::{IdPage, IndexKey, ScheduleStore};

impl ScheduleStore for DynamoJobStore {
    async fn save_schedule(
        &self,
        schedule: &ScheduleRecord,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(schedule)?));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("#version = :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", n(version)),
        };
        conditional(request.send().await.map(|_| ()), "dynamodb:PutItem")
    }

    async fn get_schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(schedule_pk(id)))
            .key("sk", s(SCHEDULE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn list_schedules(
        &self,
        tenant: &str,
        start: Option<IndexKey>,
        limit: u32,
    ) -> Result<(Vec<ScheduleRecord>, Option<IndexKey>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SCHEDULES_INDEX)
            .key_condition_expression("#tenant = :tenant")
            .expression_attribute_names("#tenant", "sched_tenant")
            .expression_attribute_values(":tenant", s(tenant))
            .set_exclusive_start_key(
                start.map(|key| key.into_iter().map(|(k, v)| (k, s(v))).collect()),
            )
            .limit(limit.max(1) as i32)
            .send()
            .await
            .map_err(|e| StoreError::aws("dynamodb:Query", e))?;
        let last = out.last_evaluated_key.map(|key| {
            key.into_iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|v| (k, v.clone())))
                .collect()
        });
        let schedules = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((schedules, last))
    }

    async fn due_schedules(
        &self,
        shard: u32,
        now: &str,
        start: Option<IndexKey>,
        limit: u32,
    ) -> Result<IdPage, StoreError> {
        let range = SortRange {
            attribute: "next_run_at",
            op: "<=",
            bound: now,
        };
        self.ids_in_index(
            DUE_INDEX,
            ("sched_due", &shard.to_string()),
            range,
            start,
            limit,
            "SCHED#",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_client::{TABLE, condition_failed, sent, store, store_answering};
    use super::*;
    use crate::domain::job::JobType;
    use crate::domain::record::NewSchedule;

    fn schedule() -> ScheduleRecord {
        ScheduleRecord::new(NewSchedule {
            id: "01JDSCHED00000000000000001".into(),
            name: "idle sessions".into(),
            job_type: JobType::SessionTermination,
            tenant: "acme".into(),
            owner: "alice".into(),
            params: r#"{"idle_minutes":30}"#.into(),
            cron: Some("0 * * * *".into()),
            rate: None,
            timezone: "UTC".into(),
            enabled: true,
            created_at: "2026-11-30T10:00:00.000Z".into(),
            next_run_at: Some("2026-11-30T11:00:00.000Z".into()),
        })
    }

    #[tokio::test]
    async fn a_new_schedule_never_overwrites_and_an_edit_is_conditional_on_its_version() {
        let (new, http) = store();
        assert!(new.save_schedule(&schedule(), None).await.unwrap());
        let (operation, body) = sent(http);
        assert_eq!(operation, "PutItem");
        assert_eq!(body["ConditionExpression"], "attribute_not_exists(pk)");
        assert_eq!(
            body["Item"]["pk"],
            json!({"S": "SCHED#01JDSCHED00000000000000001"})
        );
        assert_eq!(body["Item"]["sched_tenant"], json!({"S": "acme"}));
        assert_eq!(
            body["Item"]["sched_due"],
            json!({"S": "1"}),
            "the id's last byte (b'1' = 49) mod 4"
        );
        assert_eq!(
            body["Item"]["next_run_at"],
            json!({"S": "2026-11-30T11:00:00.000Z"})
        );
        assert_eq!(
            body["Item"]["list_sk"],
            json!({"S": "2026-11-30T10:00:00.000Z#01JDSCHED00000000000000001"})
        );

        let (edit, http) = store();
        assert!(edit.save_schedule(&schedule(), Some(1)).await.unwrap());
        let (_, body) = sent(http);
        assert_eq!(body["ConditionExpression"], "#version = :version");
        assert_eq!(
            body["ExpressionAttributeNames"],
            json!({"#version": "version"})
        );
        assert_eq!(
            body["ExpressionAttributeValues"],
            json!({":version": {"N": "1"}})
        );

        let (store, _http) = store_answering(400, condition_failed());
        assert!(
            !store.save_schedule(&schedule(), Some(1)).await.unwrap(),
            "someone wrote in between"
        );
    }

    #[tokio::test]
    async fn a_disabled_or_deleted_schedule_leaves_the_due_index_and_a_deleted_one_the_list() {
        let mut disabled = schedule();
        disabled.enabled = false;
        disabled.index();
        assert_eq!(
            (
                disabled.sched_due.as_deref(),
                disabled.sched_tenant.as_deref()
            ),
            (None, Some("acme"))
        );
        let mut deleted = schedule();
        deleted.deleted_at = Some("2026-11-30T12:00:00.000Z".into());
        deleted.index();
        assert_eq!(
            (deleted.sched_due, deleted.sched_tenant, deleted.list_sk),
            (None, None, None)
        );
    }

    #[tokio::test]
    async fn due_schedules_are_one_query_of_a_shard_up_to_now() {
        let entry = json!({"pk": {"S": "SCHED#01JDSCHED00000000000000002"}, "sk": {"S": "SCHED"}, "sched_due": {"S": "2"}, "next_run_at": {"S": "2026-11-30T11:00:00.000Z"}});
        let (store, http) = store_answering(
            200,
            json!({"Items": [entry.clone()], "LastEvaluatedKey": entry}),
        );
        let start = IndexKey::from([(
            "pk".to_string(),
            "SCHED#01JDSCHED00000000000000001".to_string(),
        )]);
        let (ids, last) = store
            .due_schedules(2, "2026-11-30T11:00:30.000Z", Some(start), 25)
            .await
            .unwrap();
        assert_eq!(ids, ["01JDSCHED00000000000000002"]);
        assert_eq!(
            last.and_then(|k| k.get("next_run_at").cloned()).as_deref(),
            Some("2026-11-30T11:00:00.000Z"),
            "the key to continue after"
        );
        let (operation, body) = sent(http);
        assert_eq!(operation, "Query");
        assert_eq!(
            body,
            json!({
                "TableName": TABLE,
                "IndexName": "schedules_due",
                "KeyConditionExpression": "#p = :p AND #s <= :bound",
                "ExpressionAttributeNames": {"#p": "sched_due", "#s": "next_run_at"},
                "ExpressionAttributeValues": {":p": {"S": "2"}, ":bound": {"S": "2026-11-30T11:00:30.000Z"}},
                "ExclusiveStartKey": {"pk": {"S": "SCHED#01JDSCHED00000000000000001"}},
                "Limit": 25
            })
        );
    }

    #[tokio::test]
    async fn a_tenants_schedules_are_a_keyset_page_of_its_index_partition() {
        let key = json!({"pk": {"S": "SCHED#1"}, "sk": {"S": "SCHED"}, "sched_tenant": {"S": "acme"}, "list_sk": {"S": "x#1"}});
        let (store, http) = store_answering(200, json!({"Items": [], "LastEvaluatedKey": key}));
        let start = IndexKey::from([("pk".to_string(), "SCHED#0".to_string())]);
        let (_, last) = store.list_schedules("acme", Some(start), 20).await.unwrap();
        assert_eq!(
            last.and_then(|k| k.get("list_sk").cloned()).as_deref(),
            Some("x#1")
        );
        let (_, body) = sent(http);
        assert_eq!(body["IndexName"], "schedules_by_tenant");
        assert_eq!(body["KeyConditionExpression"], "#tenant = :tenant");
        assert_eq!(body["ExclusiveStartKey"], json!({"pk": {"S": "SCHED#0"}}));
        assert_eq!(body["Limit"], 20);
    }
}
