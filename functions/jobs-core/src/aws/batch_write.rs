use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use crate::worker::WorkError;

/// BatchWriteItem takes at most 25 requests.
const BATCH: usize = 25;
const ATTEMPTS: u32 = 5;

/// Runs write requests in batches of 25, retrying (with backoff) what DynamoDB leaves
/// unprocessed under load.
pub async fn batch_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    requests: Vec<WriteRequest>,
) -> Result<(), WorkError> {
    for batch in requests.chunks(BATCH) {
        let mut pending = batch.to_vec();
        for attempt in 0..ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
            }
            let out = client
                .batch_write_item()
                .request_items(table, std::mem::take(&mut pending))
                .send()
                .await?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(WorkError::Transient(format!(
                "{} writes left unprocessed",
                pending.len()
            )));
        }
    }
    Ok(())
}

/// A put request for one item.
pub fn put(item: HashMap<String, AttributeValue>) -> Option<WriteRequest> {
    Some(
        WriteRequest::builder()
            .put_request(PutRequest::builder().set_item(Some(item)).build().ok()?)
            .build(),
    )
}
