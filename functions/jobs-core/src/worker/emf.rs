//! CloudWatch embedded metric format (EMF): after each chunk commit a worker prints one JSON
//! line on stdout, which CloudWatch Logs turns into metrics with no API call (namespace
//! `jobs`, dimension `JobType`): `ItemsSucceeded` and `ItemsFailed` (Count) for the
//! commit, and `ChunkDuration` (Milliseconds, from the delivery's start) when the commit
//! settles the chunk. Specification: CloudWatch User Guide, "Embedded metric format
//! specification".

use serde_json::{Value, json};

use crate::domain::job::JobType;

pub const NAMESPACE: &str = "jobs";

/// The EMF line of one commit; `chunk_ms` when the commit settled the chunk.
pub fn commit_line(
    job_type: JobType,
    succeeded: u64,
    failed: u64,
    chunk_ms: Option<u64>,
    timestamp_ms: i64,
) -> String {
    let mut metrics = vec![
        json!({"Name": "ItemsSucceeded", "Unit": "Count"}),
        json!({"Name": "ItemsFailed", "Unit": "Count"}),
    ];
    let mut line = json!({
        "JobType": job_type.key(),
        "ItemsSucceeded": succeeded,
        "ItemsFailed": failed,
    });
    if let (Some(ms), Some(map)) = (chunk_ms, line.as_object_mut()) {
        metrics.push(json!({"Name": "ChunkDuration", "Unit": "Milliseconds"}));
        map.insert("ChunkDuration".into(), Value::from(ms));
    }
    if let Some(map) = line.as_object_mut() {
        map.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["JobType"]], "Metrics": metrics}]}),
        );
    }
    line.to_string()
}

/// Prints [`commit_line`] on stdout, where Lambda's log capture picks it up.
pub fn emit_commit(job_type: JobType, succeeded: u64, failed: u64, chunk_ms: Option<u64>) {
    let now_ms = (crate::clock::now().unix_timestamp_nanos() / 1_000_000) as i64;
    println!(
        "{}",
        commit_line(job_type, succeeded, failed, chunk_ms, now_ms)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_line_is_one_emf_document() {
        let line: Value = serde_json::from_str(&commit_line(
            JobType::BulkMessageSending,
            9,
            1,
            Some(850),
            1_796_032_800_000,
        ))
        .unwrap();
        assert_eq!(
            line,
            json!({
                "_aws": {"Timestamp": 1_796_032_800_000i64, "CloudWatchMetrics": [{"Namespace": "jobs", "Dimensions": [["JobType"]], "Metrics": [
                    {"Name": "ItemsSucceeded", "Unit": "Count"}, {"Name": "ItemsFailed", "Unit": "Count"}, {"Name": "ChunkDuration", "Unit": "Milliseconds"}
                ]}]},
                "JobType": "bulk_message_sending", "ItemsSucceeded": 9, "ItemsFailed": 1, "ChunkDuration": 850
            })
        );
        let partial: Value =
            serde_json::from_str(&commit_line(JobType::AiTextEmbedding, 3, 0, None, 0)).unwrap();
        assert!(partial.get("ChunkDuration").is_none());
        assert_eq!(
            partial["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
