//! The job-type registry: the one place a job type is declared.
//!
//! A job type is its worker crate (`functions/<worker_crate>`), one [`JobTypeSpec`] here,
//! and one block in `template.yaml` (its work queue, dead-letter queue, worker role, log
//! group, worker function and DLQ alarm). Everything else follows from this table or is
//! checked against it by a test: the API's dispatch of `POST /jobs` and its error text,
//! listing search, the OpenAPI `type` enums (`openapi_lists_every_registered_type`), the
//! page's type filter (served from this table), the template's blocks and the demo seed
//! (infra tests), and the deployed IAM expectation (tests/security, via the OpenAPI enum).
//! `docs/adding-a-job-type.md` walks through the steps.

use serde_json::Value;

use crate::domain::file::{self, FileRows};
use crate::domain::job::JobType;
use crate::domain::params::{self, ValidParams};
use crate::error::ApiError;

/// What the service knows about one job type.
#[derive(Debug)]
pub struct JobTypeSpec {
    pub job_type: JobType,
    /// The wire name: the API's `type`, the Jobs table's `job_type`, and the suffix of the
    /// type's work queue name (`<stack>-work-<key>`). Lower-case snake_case.
    pub key: &'static str,
    /// What the Jobs page shows.
    pub label: &'static str,
    /// Most items in one chunk: one SQS message, one progress write. Chosen so a chunk's
    /// work fits well inside the worker timeout (60 s) at the downstream's pace.
    pub chunk_size: usize,
    /// Most items one job may name (`params` limits; the OpenAPI document states the same).
    pub max_items: usize,
    /// Decodes `params` as this type's params type and checks its limits; the error names
    /// the offending field (`params.recipients[3]`).
    pub validate: fn(Value) -> Result<ValidParams, ApiError>,
    /// The same for a job whose items come from an uploaded file: every param but the
    /// item list ([`params::validate_for_file`] leaves the item field empty).
    pub validate_file: fn(Value) -> Result<ValidParams, ApiError>,
    /// Where the job's items are, for its item report and a retry of its failed items.
    pub items: ItemSource,
    /// How a file's rows become this type's items ([`crate::domain::file`]).
    pub file: &'static FileRows,
    /// The crate under `functions/` whose binary is this type's worker.
    pub worker_crate: &'static str,
}

/// Where a job's items are. Chunk `n` of a job is chunk `n` of this list as
/// [`crate::domain::chunk::chunk_items`] cuts it, so a ledger position names one item.
#[derive(Debug)]
pub enum ItemSource {
    /// The params field that lists the items (`recipients`); a retry lists its items there.
    Param(&'static str),
    /// Found by the worker (e.g. idle sessions), which stores the list it chunks beside the
    /// input ([`crate::domain::record::snapshot_key`]); `retry` makes params naming exactly the
    /// given items.
    Snapshot {
        retry: fn(Vec<Value>) -> Result<Value, String>,
    },
}

/// Session Termination items are `{"user": id}` or `{"session": id}`: params that name
/// them (`user_ids` or `session_ids`).
fn session_retry(items: Vec<Value>) -> Result<Value, String> {
    let ids = |key: &str| {
        items
            .iter()
            .map(|i| i[key].as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
    };
    if let Some(users) = ids("user") {
        Ok(serde_json::json!({"user_ids": users}))
    } else if let Some(sessions) = ids("session") {
        Ok(serde_json::json!({"session_ids": sessions}))
    } else {
        Err("the items are neither all users nor all sessions".into())
    }
}

/// Every job type, in [`JobType`] declaration order.
pub static REGISTRY: [JobTypeSpec; 4] = [
    JobTypeSpec {
        job_type: JobType::BulkMessageSending,
        key: "bulk_message_sending",
        label: "Bulk Message Sending",
        chunk_size: 50,
        max_items: params::MAX_RECIPIENTS,
        validate: params::validate_as::<params::BulkMessageParams>,
        validate_file: params::validate_file_as::<params::BulkMessageParams>,
        items: ItemSource::Param("recipients"),
        file: &file::BULK_MESSAGE_ROWS,
        worker_crate: "worker-bulk-message",
    },
    JobTypeSpec {
        job_type: JobType::SessionTermination,
        key: "session_termination",
        label: "Session Termination",
        chunk_size: 100,
        max_items: params::MAX_USER_IDS,
        validate: params::validate_as::<params::SessionTerminationParams>,
        validate_file: params::validate_file_as::<params::SessionTerminationParams>,
        items: ItemSource::Snapshot {
            retry: session_retry,
        },
        file: &file::SESSION_ROWS,
        worker_crate: "worker-session-termination",
    },
    JobTypeSpec {
        job_type: JobType::AiTextEmbedding,
        key: "ai_text_embedding",
        label: "AI Text Embedding",
        chunk_size: 16,
        max_items: params::MAX_DOCUMENTS,
        validate: params::validate_as::<params::EmbeddingParams>,
        validate_file: params::validate_file_as::<params::EmbeddingParams>,
        items: ItemSource::Param("documents"),
        file: &file::EMBEDDING_ROWS,
        worker_crate: "worker-ai-embedding",
    },
    JobTypeSpec {
        job_type: JobType::ProfileFieldUpdate,
        key: "profile_field_update",
        label: "Profile Field Update",
        chunk_size: 100,
        max_items: params::MAX_USER_IDS,
        validate: params::validate_as::<params::ProfileFieldParams>,
        validate_file: params::validate_file_as::<params::ProfileFieldParams>,
        items: ItemSource::Param("user_ids"),
        file: &file::PROFILE_ROWS,
        worker_crate: "worker-profile-update",
    },
];

/// The registered keys, comma-separated (for error messages).
pub fn keys() -> String {
    REGISTRY
        .iter()
        .map(|s| s.key)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key in the PascalCase of the template's logical ids: `bulk_message_sending` →
/// `BulkMessageSending` (`BulkMessageSendingQueue`, `BulkMessageSendingWorker`, …).
pub fn pascal_case(key: &str) -> String {
    key.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_the_enum_and_keys_are_unique_snake_case() {
        assert_eq!(REGISTRY.len(), JobType::ALL.len());
        for (spec, t) in REGISTRY.iter().zip(JobType::ALL) {
            assert_eq!(spec.job_type, t, "REGISTRY is in JobType order");
            assert_eq!(
                t.spec().job_type,
                t,
                "JobType::spec points at its own entry"
            );
            assert!(
                spec.key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                spec.key
            );
            assert!(spec.chunk_size > 0 && spec.chunk_size <= spec.max_items);
            assert_eq!(
                REGISTRY
                    .iter()
                    .filter(|s| s.key == spec.key || s.label == spec.label)
                    .count(),
                1
            );
        }
    }

    #[test]
    fn pascal_case_names_template_resources() {
        assert_eq!(pascal_case("bulk_message_sending"), "BulkMessageSending");
        assert_eq!(pascal_case("ai_text_embedding"), "AiTextEmbedding");
    }

    /// The resource `logical_id` of template.yaml, as text: its line and the lines under it,
    /// up to the next key at its indentation (2 spaces) or less.
    fn resource<'t>(template: &'t str, logical_id: &str) -> Option<&'t str> {
        let start = template.find(&format!("\n  {logical_id}:\n"))? + 1;
        let rest = &template[start..];
        let mut end = 0;
        for (n, line) in rest.split_inclusive('\n').enumerate() {
            let indent = line.len() - line.trim_start_matches(' ').len();
            let key = !line.trim().is_empty() && !line.trim_start().starts_with('#');
            if n > 0 && key && indent <= 2 {
                break;
            }
            end += line.len();
        }
        Some(&rest[..end])
    }

    /// Each registered type has its block in template.yaml: work and plan queues (named for
    /// the API's `WORK_QUEUE_URL_PREFIX`), dead-letter queue, worker (its crate, fed by both
    /// queues), role, log group and DLQ alarm; and the template has no worker of an
    /// unregistered type.
    #[test]
    fn template_has_one_block_per_registered_type() {
        let template = include_str!("../../../../template.yaml");
        for spec in &REGISTRY {
            let p = pascal_case(spec.key);
            for (queue, name) in [
                ("Queue", spec.key.to_string()),
                ("PlanQueue", format!("{}-plans", spec.key)),
            ] {
                let block = resource(template, &format!("{p}{queue}"))
                    .unwrap_or_else(|| panic!("template.yaml lacks {p}{queue}"));
                assert!(
                    block.contains(&format!(
                        "QueueName: !Sub \"${{AWS::StackName}}-work-{name}\""
                    )),
                    "{p}{queue}'s QueueName"
                );
                assert!(
                    block.contains(&format!("!GetAtt {p}DLQ.Arn")),
                    "{p}{queue} redrives to {p}DLQ"
                );
            }
            let worker = resource(template, &format!("{p}Worker"))
                .unwrap_or_else(|| panic!("template.yaml lacks {p}Worker"));
            assert!(
                worker.contains(&format!("CodeUri: functions/{}\n", spec.worker_crate)),
                "{p}Worker's CodeUri"
            );
            for queue in ["Queue", "PlanQueue"] {
                assert!(
                    worker.contains(&format!("Queue: !GetAtt {p}{queue}.Arn")),
                    "{p}Worker is fed by {p}{queue}"
                );
            }
            assert!(
                worker.contains(&format!(
                    "FunctionName: !Sub \"${{AWS::StackName}}-{}\"",
                    spec.key.replace('_', "-")
                )),
                "{p}Worker's FunctionName"
            );
            for part in ["DLQ", "WorkerRole", "WorkerLogs", "DLQAlarm"] {
                assert!(
                    resource(template, &format!("{p}{part}")).is_some(),
                    "template.yaml lacks {p}{part}"
                );
            }
        }
        let first = resource(template, "BulkMessageSendingQueue").unwrap_or_default();
        assert!(
            first.starts_with("  BulkMessageSendingQueue:\n")
                && !first.contains("\n  SessionTermination"),
            "one resource only: {first}"
        );
        let workers = template
            .matches("FunctionResponseTypes: [ReportBatchItemFailures]")
            .count();
        assert_eq!(
            workers,
            2 * REGISTRY.len() + 1,
            "two SQS mappings (work and plan queues) per registered type, and the exporter's"
        );
    }
}
