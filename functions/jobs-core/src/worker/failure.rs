//! Deciding, for any AWS SDK error, whether retrying can help.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// An item's call failed either for now (retry the chunk) or for good (the item failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Transient(String),
    Rejected(String),
}

const TRANSIENT_CODES: [&str; 9] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
];

/// Network failures, timeouts, throttling and 5xx answers are transient; any other
/// service error is the item's own failure, reported with the service's code and message.
pub fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(err: &SdkError<E, HttpResponse>) -> Failure {
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("");
            let status = service.raw().status().as_u16();
            if TRANSIENT_CODES.contains(&code) || status >= 500 {
                Failure::Transient(format!("{code}: {message}"))
            } else {
                Failure::Rejected(if message.is_empty() { code.to_string() } else { format!("{code}: {message}") })
            }
        }
        other => Failure::Transient(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()),
    }
}
