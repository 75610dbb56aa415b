//! Global secondary indexes that LocalStack's CloudFormation did not apply.
//!
//! LocalStack 4.4's CloudFormation does not implement updates of an `AWS::DynamoDB::Table`:
//! the provider raises NotImplementedError, the engine logs a warning and reports the update
//! as successful with the old table. A stack created before an index was added to
//! template.yaml then silently lacks that index. So after a deploy to LocalStack,
//! `infra deploy` compares each table's `GlobalSecondaryIndexes` in the template with the
//! deployed table (DescribeTable) and creates the missing ones with UpdateTable, one at a
//! time, waiting for each to become ACTIVE.
//!
//! On AWS this never runs: CloudFormation applies index changes to a table itself, and a
//! second writer next to it would only race it.
//!
//! The template is read with a YAML parser (serde_norway, the maintained fork of serde_yaml)
//! rather than line by line: the indexes share a projection through a YAML anchor
//! (`&ListProjection` / `*ListProjection`), and the rest of the template is full of
//! CloudFormation tags (`!Ref`, `!GetAtt`, ...), which it keeps as tagged values.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::operation::update_table::UpdateTableInput;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ProvisionedThroughput,
    ScalarAttributeType, TableDescription, TableStatus,
};
use serde::Deserialize;

use crate::target::Target;

/// An `AWS::DynamoDB::Table` of the template that has global secondary indexes.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateTable {
    pub logical_id: String,
    pub properties: TableProperties,
}

/// The parts of a table's `Properties` that creating one of its indexes needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableProperties {
    /// CloudFormation's default is PROVISIONED.
    #[serde(default)]
    pub billing_mode: Option<String>,
    #[serde(default)]
    pub attribute_definitions: Vec<TemplateAttribute>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<TemplateIndex>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateAttribute {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateIndex {
    pub index_name: String,
    pub key_schema: Vec<TemplateKey>,
    pub projection: TemplateProjection,
    #[serde(default)]
    pub provisioned_throughput: Option<TemplateThroughput>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateKey {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateProjection {
    #[serde(default)]
    pub projection_type: Option<String>,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateThroughput {
    pub read_capacity_units: i64,
    pub write_capacity_units: i64,
}

/// Every `AWS::DynamoDB::Table` of the template with `GlobalSecondaryIndexes`, in template
/// order. Fails when a table's indexes are not literal values (an intrinsic function in a key
/// schema, say): then they cannot be compared with the deployed table.
pub fn tables_with_indexes(template: &str) -> Result<Vec<TemplateTable>> {
    let doc: serde_norway::Value =
        serde_norway::from_str(template).context("parsing template.yaml as YAML")?;
    let Some(resources) = doc
        .get("Resources")
        .and_then(serde_norway::Value::as_mapping)
    else {
        bail!("template.yaml has no Resources");
    };
    let mut tables = Vec::new();
    for (logical_id, resource) in resources {
        if resource.get("Type").and_then(serde_norway::Value::as_str)
            != Some("AWS::DynamoDB::Table")
        {
            continue;
        }
        let Some(logical_id) = logical_id.as_str() else {
            continue;
        };
        let Some(properties) = resource.get("Properties") else {
            continue;
        };
        if properties.get("GlobalSecondaryIndexes").is_none() {
            continue;
        }
        // serde_norway drops a tag when it reads a tagged value as a plain one (`!Ref X` would
        // become the string "X"), so refuse intrinsic functions before reading.
        let mut relevant = serde_norway::Mapping::new();
        for key in [
            "BillingMode",
            "AttributeDefinitions",
            "GlobalSecondaryIndexes",
        ] {
            if let Some(value) = properties.get(key) {
                if let Some(tag) = first_tag(value) {
                    bail!(
                        "{logical_id}: {key} uses {tag}; only literal values can be compared with the deployed table"
                    );
                }
                relevant.insert(key.into(), value.clone());
            }
        }
        let properties: TableProperties = serde_norway::from_value(serde_norway::Value::Mapping(
            relevant,
        ))
        .with_context(|| {
            format!("reading {logical_id}'s AttributeDefinitions and GlobalSecondaryIndexes")
        })?;
        if !properties.global_secondary_indexes.is_empty() {
            tables.push(TemplateTable {
                logical_id: logical_id.to_string(),
                properties,
            });
        }
    }
    Ok(tables)
}

/// The first YAML tag (a CloudFormation intrinsic function such as `!Ref`) in `value`.
fn first_tag(value: &serde_norway::Value) -> Option<String> {
    match value {
        serde_norway::Value::Tagged(tagged) => Some(tagged.tag.to_string()),
        serde_norway::Value::Sequence(items) => items.iter().find_map(first_tag),
        serde_norway::Value::Mapping(map) => map
            .iter()
            .find_map(|(k, v)| first_tag(k).or_else(|| first_tag(v))),
        _ => None,
    }
}

/// What bringing one deployed table in line with the template takes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexPlan {
    /// One UpdateTable per missing index (DynamoDB creates one index per call), in template order.
    pub creates: Vec<(String, UpdateTableInput)>,
    /// Differences this tool does not repair (reported only).
    pub notes: Vec<String>,
}

/// Compares the template's indexes of `table` with the deployed table `described`: each
/// index missing from the table becomes an UpdateTable input that creates it (its key
/// attributes' definitions, key schema, projection and, for a provisioned table, its
/// throughput). An index that exists with another key schema or projection, and an index
/// that the template does not have, are only noted: changing them means deleting an index,
/// which is left to a person (or to recreating the stack).
pub fn plan_indexes(table: &TemplateTable, described: &TableDescription) -> Result<IndexPlan> {
    let id = &table.logical_id;
    let table_name = described
        .table_name()
        .with_context(|| format!("{id}: DescribeTable returned no table name"))?;
    let on_demand = table.properties.billing_mode.as_deref() == Some("PAY_PER_REQUEST");
    let deployed = described.global_secondary_indexes();
    let mut plan = IndexPlan::default();
    for index in &table.properties.global_secondary_indexes {
        let name = &index.index_name;
        if let Some(existing) = deployed
            .iter()
            .find(|d| d.index_name() == Some(name.as_str()))
        {
            let keys: Vec<(&str, &str)> = existing
                .key_schema()
                .iter()
                .map(|k| (k.attribute_name(), k.key_type().as_str()))
                .collect();
            let wanted_keys: Vec<(&str, &str)> = index
                .key_schema
                .iter()
                .map(|k| (k.attribute_name.as_str(), k.key_type.as_str()))
                .collect();
            let projection = existing.projection();
            let mut attrs: Vec<&str> = projection
                .map(|p| p.non_key_attributes().iter().map(String::as_str).collect())
                .unwrap_or_default();
            let mut wanted_attrs: Vec<&str> = index
                .projection
                .non_key_attributes
                .iter()
                .map(String::as_str)
                .collect();
            attrs.sort_unstable();
            wanted_attrs.sort_unstable();
            let projection_type = projection
                .and_then(|p| p.projection_type())
                .map(|t| t.as_str())
                .unwrap_or("ALL");
            let wanted_type = index.projection.projection_type.as_deref().unwrap_or("ALL");
            if keys != wanted_keys || attrs != wanted_attrs || projection_type != wanted_type {
                plan.notes.push(format!(
                    "index {name} differs from the template (keys {keys:?}, projection {projection_type} {attrs:?}; \
                     template: keys {wanted_keys:?}, projection {wanted_type} {wanted_attrs:?}); left as it is: \
                     delete the index (or the stack) and deploy again to apply the template"
                ));
            }
            continue;
        }
        let mut definitions = Vec::new();
        let mut key_schema = Vec::new();
        for key in &index.key_schema {
            let Some(attribute) = table
                .properties
                .attribute_definitions
                .iter()
                .find(|a| a.attribute_name == key.attribute_name)
            else {
                bail!(
                    "{id}: index {name} keys on {}, which is not in the table's AttributeDefinitions",
                    key.attribute_name
                );
            };
            if !definitions
                .iter()
                .any(|d: &AttributeDefinition| d.attribute_name() == attribute.attribute_name)
            {
                definitions.push(
                    AttributeDefinition::builder()
                        .attribute_name(&attribute.attribute_name)
                        .attribute_type(ScalarAttributeType::from(
                            attribute.attribute_type.as_str(),
                        ))
                        .build()?,
                );
            }
            key_schema.push(
                KeySchemaElement::builder()
                    .attribute_name(&key.attribute_name)
                    .key_type(KeyType::from(key.key_type.as_str()))
                    .build()?,
            );
        }
        let projection = Projection::builder()
            .set_projection_type(
                index
                    .projection
                    .projection_type
                    .as_deref()
                    .map(ProjectionType::from),
            )
            .set_non_key_attributes(
                (!index.projection.non_key_attributes.is_empty())
                    .then(|| index.projection.non_key_attributes.clone()),
            )
            .build();
        let throughput = match (&index.provisioned_throughput, on_demand) {
            (_, true) => None,
            (Some(t), false) => Some(
                ProvisionedThroughput::builder()
                    .read_capacity_units(t.read_capacity_units)
                    .write_capacity_units(t.write_capacity_units)
                    .build()?,
            ),
            (None, false) => {
                bail!(
                    "{id} is a provisioned table (no BillingMode: PAY_PER_REQUEST) but index {name} has no ProvisionedThroughput"
                )
            }
        };
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(name)
            .set_key_schema(Some(key_schema))
            .projection(projection)
            .set_provisioned_throughput(throughput)
            .build()?;
        let input = UpdateTableInput::builder()
            .table_name(table_name)
            .set_attribute_definitions(Some(definitions))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .build()?;
        plan.creates.push((name.clone(), input));
    }
    for extra in deployed.iter().filter_map(|d| d.index_name()) {
        if !table
            .properties
            .global_secondary_indexes
            .iter()
            .any(|i| i.index_name == extra)
        {
            plan.notes.push(format!(
                "index {extra} is not in the template; left as it is"
            ));
        }
    }
    Ok(plan)
}

/// After a deploy to LocalStack: creates the indexes of `tables` that the deployed tables
/// lack, one at a time, and says so. Does nothing on AWS (see the module docs). Tables whose
/// resource is not in the stack (a false `Condition`) are skipped.
pub async fn create_missing_indexes(
    target: &Target,
    stack: &str,
    tables: &[TemplateTable],
) -> Result<()> {
    if target.endpoint.is_none() {
        // AWS: CloudFormation has applied the template's indexes itself.
        return Ok(());
    }
    if tables.is_empty() {
        return Ok(());
    }
    let physical = physical_ids(target, stack).await?;
    let dynamo = aws_sdk_dynamodb::Client::new(&target.config);
    for table in tables {
        let id = &table.logical_id;
        let Some((_, name)) = physical.iter().find(|(logical, _)| logical == id) else {
            continue;
        };
        let described = describe(&dynamo, name).await?;
        let plan = plan_indexes(table, &described)?;
        for note in &plan.notes {
            eprintln!("{id}: {note}");
        }
        for (index, input) in plan.creates {
            eprintln!("{id}: table {name} lacks index {index}; creating it");
            dynamo
                .update_table()
                .set_table_name(input.table_name)
                .set_attribute_definitions(input.attribute_definitions)
                .set_global_secondary_index_updates(input.global_secondary_index_updates)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
                .with_context(|| format!("UpdateTable {name}: creating index {index}"))?;
            wait_for_index(&dynamo, name, &index).await?;
            eprintln!("{id}: created missing index {index} (LocalStack did not apply it)");
        }
    }
    Ok(())
}

/// (logical id, physical id) of every resource of the stack.
async fn physical_ids(target: &Target, stack: &str) -> Result<Vec<(String, String)>> {
    let cfn = target.cloudformation();
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = cfn
            .list_stack_resources()
            .stack_name(stack)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(e))
            })
            .with_context(|| format!("ListStackResources {stack}"))?;
        for r in page.stack_resource_summaries() {
            if let (Some(logical), Some(physical)) =
                (r.logical_resource_id(), r.physical_resource_id())
            {
                found.push((logical.to_string(), physical.to_string()));
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(found);
        }
    }
}

async fn describe(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Result<TableDescription> {
    let out = dynamo
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
        .with_context(|| format!("DescribeTable {table}"))?;
    out.table
        .with_context(|| format!("DescribeTable {table} returned no table"))
}

/// Polls until the table is ACTIVE and has `index` ACTIVE (seconds on LocalStack; on AWS a
/// backfill can take much longer, hence the generous limit).
async fn wait_for_index(dynamo: &aws_sdk_dynamodb::Client, table: &str, index: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15 * 60);
    loop {
        let described = describe(dynamo, table).await?;
        let status = described
            .global_secondary_indexes()
            .iter()
            .find(|i| i.index_name() == Some(index))
            .and_then(|i| i.index_status().cloned());
        if status == Some(IndexStatus::Active)
            && described.table_status() == Some(&TableStatus::Active)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("index {index} of {table} is not ACTIVE after 15 minutes (status {status:?})");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::GlobalSecondaryIndexDescription;

    const TEMPLATE: &str = r#"
Parameters:
  RetentionDays: {Type: Number, Default: 90}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: !Ref RetentionDays
  PlainTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  JobsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-jobs"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: list_sk, AttributeType: S}
        - {AttributeName: list_tenant, AttributeType: S}
        - {AttributeName: list_month, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: by_tenant
          KeySchema:
            - {AttributeName: list_tenant, KeyType: HASH}
            - {AttributeName: list_sk, KeyType: RANGE}
          Projection: &ListProjection
            ProjectionType: INCLUDE
            NonKeyAttributes: [id, status]
        - IndexName: by_month
          KeySchema:
            - {AttributeName: list_month, KeyType: HASH}
            - {AttributeName: list_sk, KeyType: RANGE}
          Projection: *ListProjection
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
"#;

    fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .unwrap()
    }

    fn string_attribute(name: &str) -> AttributeDefinition {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    }

    fn list_projection() -> Projection {
        Projection::builder()
            .projection_type(ProjectionType::Include)
            .non_key_attributes("id")
            .non_key_attributes("status")
            .build()
    }

    fn deployed_index(name: &str, hash: &str) -> GlobalSecondaryIndexDescription {
        GlobalSecondaryIndexDescription::builder()
            .index_name(name)
            .key_schema(key(hash, KeyType::Hash))
            .key_schema(key("list_sk", KeyType::Range))
            .projection(list_projection())
            .index_status(IndexStatus::Active)
            .build()
    }

    fn jobs_table() -> TemplateTable {
        let tables = tables_with_indexes(TEMPLATE).unwrap();
        assert_eq!(tables.len(), 1, "only tables with indexes: {tables:?}");
        tables.into_iter().next().unwrap()
    }

    #[test]
    fn reads_table_indexes_through_anchors_and_tags() {
        let table = jobs_table();
        assert_eq!(table.logical_id, "JobsTable");
        assert_eq!(
            table.properties.billing_mode.as_deref(),
            Some("PAY_PER_REQUEST")
        );
        let names: Vec<&str> = table
            .properties
            .global_secondary_indexes
            .iter()
            .map(|i| i.index_name.as_str())
            .collect();
        assert_eq!(names, ["by_tenant", "by_month"]);
        let by_month = &table.properties.global_secondary_indexes[1];
        let shared = TemplateProjection {
            projection_type: Some("INCLUDE".into()),
            non_key_attributes: vec!["id".into(), "status".into()],
        };
        assert_eq!(by_month.projection, shared);
    }

    #[test]
    fn the_real_template_has_the_jobs_table_list_indexes() {
        let template = std::fs::read_to_string(crate::repo_root().join("template.yaml")).unwrap();
        let tables = tables_with_indexes(&template).unwrap();
        let jobs = tables
            .iter()
            .find(|t| t.logical_id == "JobsTable")
            .expect("JobsTable in template.yaml");
        let names: Vec<&str> = jobs
            .properties
            .global_secondary_indexes
            .iter()
            .map(|i| i.index_name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "by_tenant",
                "by_tenant_user",
                "by_month",
                "hidden_by_tenant",
                "hidden_by_month",
                "active_by_type",
                "schedules_by_tenant",
                "schedules_due",
                "ends_pending",
                "owned_by_tenant"
            ]
        );
        assert_eq!(
            jobs.properties.billing_mode.as_deref(),
            Some("PAY_PER_REQUEST")
        );
        let audit = tables
            .iter()
            .find(|t| t.logical_id == "AuditTable")
            .expect("AuditTable in template.yaml");
        assert_eq!(
            audit
                .properties
                .global_secondary_indexes
                .iter()
                .map(|i| i.index_name.as_str())
                .collect::<Vec<_>>(),
            ["by_day", "by_tenant_day"]
        );
        // Every job index projects only what its readers need: progress writes never rewrite
        // an entry. Schedule items hold no progress; the due index holds only keys.
        for index in jobs.properties.global_secondary_indexes.iter().filter(|i| {
            !i.index_name.starts_with("schedules_")
                && !["ends_pending", "owned_by_tenant"].contains(&i.index_name.as_str())
        }) {
            assert_eq!(
                index.projection.projection_type.as_deref(),
                Some("INCLUDE"),
                "{}",
                index.index_name
            );
            assert!(
                !index
                    .projection
                    .non_key_attributes
                    .iter()
                    .any(|a| a == "chunks_done" || a == "succeeded"),
                "{}",
                index.index_name
            );
        }
        let due = jobs
            .properties
            .global_secondary_indexes
            .iter()
            .find(|i| i.index_name == "schedules_due")
            .unwrap();
        assert_eq!(due.projection.projection_type.as_deref(), Some("KEYS_ONLY"));
        let ends = jobs
            .properties
            .global_secondary_indexes
            .iter()
            .find(|i| i.index_name == "ends_pending")
            .unwrap();
        assert_eq!(
            ends.projection.projection_type.as_deref(),
            Some("KEYS_ONLY")
        );
    }

    #[test]
    fn a_missing_index_becomes_one_update_table_create() {
        let described = TableDescription::builder()
            .table_name("jobs-JobsTable-ABC")
            .table_status(TableStatus::Active)
            .global_secondary_indexes(deployed_index("by_tenant", "list_tenant"))
            .build();
        let plan = plan_indexes(&jobs_table(), &described).unwrap();
        let expected = UpdateTableInput::builder()
            .table_name("jobs-JobsTable-ABC")
            .attribute_definitions(string_attribute("list_month"))
            .attribute_definitions(string_attribute("list_sk"))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder()
                    .create(
                        CreateGlobalSecondaryIndexAction::builder()
                            .index_name("by_month")
                            .key_schema(key("list_month", KeyType::Hash))
                            .key_schema(key("list_sk", KeyType::Range))
                            .projection(list_projection())
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
            .unwrap();
        assert_eq!(
            plan,
            IndexPlan {
                creates: vec![("by_month".into(), expected)],
                notes: vec![]
            }
        );
    }

    #[test]
    fn every_missing_index_is_its_own_call_in_template_order() {
        let described = TableDescription::builder().table_name("t").build();
        let plan = plan_indexes(&jobs_table(), &described).unwrap();
        let names: Vec<&str> = plan.creates.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["by_tenant", "by_month"]);
        for (name, input) in &plan.creates {
            assert_eq!(input.global_secondary_index_updates().len(), 1, "{name}");
            assert_eq!(
                input.billing_mode(),
                None,
                "{name}: the table's billing mode stays as it is"
            );
        }
    }

    #[test]
    fn a_table_in_line_needs_nothing_and_differences_are_only_reported() {
        let in_line = TableDescription::builder()
            .table_name("t")
            .global_secondary_indexes(deployed_index("by_tenant", "list_tenant"))
            .global_secondary_indexes(deployed_index("by_month", "list_month"))
            .build();
        assert_eq!(
            plan_indexes(&jobs_table(), &in_line).unwrap(),
            IndexPlan::default()
        );

        let drifted = TableDescription::builder()
            .table_name("t")
            .global_secondary_indexes(deployed_index("by_tenant", "list_month"))
            .global_secondary_indexes(deployed_index("by_month", "list_month"))
            .global_secondary_indexes(deployed_index("by_old", "list_tenant"))
            .build();
        let plan = plan_indexes(&jobs_table(), &drifted).unwrap();
        assert!(plan.creates.is_empty());
        assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
        assert!(
            plan.notes[0].starts_with("index by_tenant differs from the template"),
            "{}",
            plan.notes[0]
        );
        assert_eq!(
            plan.notes[1],
            "index by_old is not in the template; left as it is"
        );
    }

    #[test]
    fn provisioned_tables_pass_the_index_throughput_and_need_it() {
        // JobsTable without its BillingMode (PlainTable keeps its own), by_month with a throughput.
        let provisioned = TEMPLATE.replace(
            "      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions:\n        - {AttributeName: pk",
            "      AttributeDefinitions:\n        - {AttributeName: pk",
        );
        let provisioned = provisioned.replace(
            "          Projection: *ListProjection\n",
            "          Projection: *ListProjection\n          ProvisionedThroughput: {ReadCapacityUnits: 5, WriteCapacityUnits: 2}\n",
        );
        let table = tables_with_indexes(&provisioned).unwrap().remove(0);
        assert_eq!(table.properties.billing_mode, None);
        let described = TableDescription::builder()
            .table_name("t")
            .global_secondary_indexes(deployed_index("by_tenant", "list_tenant"))
            .build();
        let plan = plan_indexes(&table, &described).unwrap();
        let create = plan.creates[0].1.global_secondary_index_updates()[0]
            .create()
            .unwrap();
        let throughput = ProvisionedThroughput::builder()
            .read_capacity_units(5)
            .write_capacity_units(2)
            .build()
            .unwrap();
        assert_eq!(create.provisioned_throughput(), Some(&throughput));
        let err =
            plan_indexes(&table, &TableDescription::builder().table_name("t").build()).unwrap_err();
        assert!(
            err.to_string()
                .contains("index by_tenant has no ProvisionedThroughput"),
            "{err}"
        );
    }

    #[test]
    fn an_index_key_without_an_attribute_definition_is_an_error() {
        let broken = TEMPLATE.replace(
            "        - {AttributeName: list_month, AttributeType: S}\n",
            "",
        );
        let table = tables_with_indexes(&broken).unwrap().remove(0);
        let err =
            plan_indexes(&table, &TableDescription::builder().table_name("t").build()).unwrap_err();
        assert!(
            err.to_string().contains("by_month keys on list_month"),
            "{err}"
        );
    }

    #[test]
    fn indexes_given_by_intrinsic_functions_are_refused_with_the_table_named() {
        // serde_norway alone would read `!Ref MonthIndex` as the string "MonthIndex".
        let with_ref = TEMPLATE.replace("IndexName: by_month", "IndexName: !Ref MonthIndex");
        let err = tables_with_indexes(&with_ref).unwrap_err();
        assert_eq!(
            err.to_string(),
            "JobsTable: GlobalSecondaryIndexes uses !Ref; only literal values can be compared with the deployed table"
        );
        // Tags elsewhere in the table (TableName: !Sub ...) and the template are fine.
        assert!(TEMPLATE.contains("TableName: !Sub") && tables_with_indexes(TEMPLATE).is_ok());
    }
}
