//! The exporter function: the export queue invokes it with [`ExportMessage`]s, and each is
//! one item report written to S3 ([`jobs_api_core::api::Jobs::write_export`]). A message
//! that fails (S3 or DynamoDB unavailable) is reported back for SQS to deliver again; on
//! its last delivery (`MAX_RECEIVE_COUNT`) the export ends `failed` instead of staying
//! `pending` while the message goes to the dead-letter queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use jobs_api_core::api::Jobs;
use jobs_api_core::aws::{AwsJobs, jobs};
use jobs_core::aws::load_config;
use jobs_core::ports::{ExportMessage, ServicePorts};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    jobs_core::logging::init();
    let config = load_config().await;
    let retention_days = jobs_core::env::parsed_or("RETENTION_DAYS", 90)?;
    let max_receives = jobs_core::env::parsed_or("MAX_RECEIVE_COUNT", 3)?;
    let jobs: &'static AwsJobs = Box::leak(Box::new(jobs(&config, retention_days)?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // Boxed: the export's future is deep enough to overflow the compiler's layout
        // recursion limit when nested in the Lambda runtime's.
        Ok::<_, Error>(Box::pin(export_batch(jobs, max_receives, event.payload)).await)
    }))
    .await
}

/// Writes each message's export, one after another; the messages to deliver again.
async fn export_batch<P: ServicePorts>(
    jobs: &Jobs<P>,
    max_receives: u32,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        if !export_one(jobs, max_receives, &message).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// False when the message should be delivered again.
async fn export_one<P: ServicePorts>(
    jobs: &Jobs<P>,
    max_receives: u32,
    message: &SqsMessage,
) -> bool {
    let parsed = message
        .body
        .as_deref()
        .map(serde_json::from_str::<ExportMessage>);
    let Some(Ok(export)) = parsed else {
        // Only the API sends here: a body that is not an export message never becomes one.
        tracing::warn!(message_id = ?message.message_id, "not an export message: dropped");
        return true;
    };
    let span = tracing::info_span!(
        "export",
        job_id = %export.job_id,
        tenant = %export.tenant,
        export_id = %export.export_id
    );
    async {
        match jobs.write_export(&export).await {
            Ok(Some(done)) => {
                tracing::info!(status = ?done.status, rows = ?done.rows, bytes = ?done.bytes, error = ?done.error, "export ended");
                true
            }
            Ok(None) => {
                tracing::warn!("no such export: dropped");
                true
            }
            Err(err) => {
                let receives: u32 = message
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                tracing::warn!(error = %err, receives, "export not written");
                receives >= max_receives
                    && jobs
                        .fail_export(&export, "the report could not be written: ask for it again")
                        .await
                        .is_ok()
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_api_core::api::{ExportStatus, export_key};
    use jobs_core::memory::{MemoryInputs, MemoryPorts, MemoryQueue, MemorySenders, MemoryStore};
    use jobs_core::ports::InputStore;

    fn event() -> SqsEvent {
        serde_json::from_str(include_str!("../tests/fixtures/export-event.json")).unwrap()
    }

    fn service(inputs: MemoryInputs) -> Jobs<MemoryPorts> {
        Jobs::new(
            MemoryStore::default(),
            inputs,
            MemoryQueue::default(),
            MemorySenders::default(),
            jobs_core::memory::observers(),
            90,
        )
    }

    #[test]
    fn the_queue_s_event_carries_an_export_message() {
        let body = event().records[0].body.clone().unwrap();
        let message: ExportMessage = serde_json::from_str(&body).unwrap();
        assert_eq!(message.job_id, "01JBQ3Z5V9W8X7Y6Z5A4B3C2D1");
    }

    #[tokio::test]
    async fn a_message_with_no_export_behind_it_is_dropped_not_retried() {
        let response = export_batch(&service(MemoryInputs::default()), 3, event()).await;
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn an_export_of_a_job_that_is_gone_ends_failed_with_the_reason() {
        let inputs = MemoryInputs::default();
        let pending = serde_json::json!({
            "export_id": "01JBQ40000000000000000EXPT",
            "job_id": "01JBQ3Z5V9W8X7Y6Z5A4B3C2D1",
            "outcome": "failed",
            "status": "pending",
            "requested_at": "2026-12-06T03:00:00.000Z",
            "requested_by": "olga"
        });
        inputs
            .put(
                &export_key("01JBQ3Z5V9W8X7Y6Z5A4B3C2D1", "01JBQ40000000000000000EXPT"),
                serde_json::to_vec(&pending).unwrap(),
            )
            .await
            .unwrap();
        let jobs = service(inputs);
        let response = export_batch(&jobs, 3, event()).await;
        assert!(response.batch_item_failures.is_empty());
        let message: ExportMessage =
            serde_json::from_str(&event().records[0].body.clone().unwrap()).unwrap();
        let ended = jobs.write_export(&message).await.unwrap().unwrap();
        assert_eq!(ended.status, ExportStatus::Failed);
        assert_eq!(ended.error.as_deref(), Some("the job no longer exists"));
    }
}
