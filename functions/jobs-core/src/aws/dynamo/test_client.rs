//! The Jobs table store over [`FakeHttp`]: a test calls the store, then asserts the exact
//! request it sent.

use aws_sdk_dynamodb::config::SharedHttpClient;
use serde_json::{Value, json};

use super::DynamoJobStore;
use crate::aws::fake_http::{FakeHttp, Sent};

pub const TABLE: &str = "jobs-table";
/// The job the tests act on.
pub const ID: &str = "01JDEMO0000000000000000000";

/// `ID`'s key, as DynamoDB JSON.
pub fn job_key() -> Value {
    json!({"pk": {"S": format!("JOB#{ID}")}, "sk": {"S": "JOB"}})
}

/// A store whose every request is answered with `status` and the JSON `body`.
pub fn store_answering(status: u16, body: Value) -> (DynamoJobStore, FakeHttp) {
    let http = FakeHttp::answering(status, body);
    (
        DynamoJobStore::new(
            FakeHttp::dynamodb(SharedHttpClient::new(http.clone())),
            TABLE,
        ),
        http,
    )
}

/// A store whose requests are answered with `200 {}`.
pub fn store() -> (DynamoJobStore, FakeHttp) {
    store_answering(200, json!({}))
}

/// DynamoDB's answer when a condition failed.
pub fn condition_failed() -> Value {
    json!({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "The conditional request failed"})
}

/// DynamoDB's answer when a transaction was cancelled, with one reason code per item
/// (`"None"` for items whose condition held).
pub fn transaction_cancelled(codes: &[&str]) -> Value {
    let reasons: Vec<Value> = codes.iter().map(|c| json!({"Code": c})).collect();
    json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled",
        "CancellationReasons": reasons,
    })
}

/// The one request the store sent: its operation and body.
pub fn sent(http: FakeHttp) -> (String, Value) {
    let mut requests = http.requests();
    assert_eq!(requests.len(), 1, "one request: {requests:?}");
    let Sent { operation, body } = requests.remove(0);
    (operation, body)
}
