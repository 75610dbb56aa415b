//! Deciding, for any AWS SDK error, whether retrying can help.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use super::WorkError;

/// Service error codes that mean "not now" rather than "not this": throttling and
/// server-side failures (AWS SDK retry classification, `aws-smithy-runtime`
/// `retries::classifiers`, and the services' documented throttling codes).
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

/// Network failures, timeouts, throttling and 5xx answers are [`WorkError::Transient`];
/// any other service error is [`WorkError::Rejected`], with the service's code and message.
impl<E> From<SdkError<E, HttpResponse>> for WorkError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> WorkError {
        match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("Unknown");
                let message = e.message().unwrap_or("");
                let status = service.raw().status().as_u16();
                if TRANSIENT_CODES.contains(&code) || status >= 500 {
                    WorkError::Transient(format!("{code}: {message}"))
                } else {
                    WorkError::Rejected(if message.is_empty() { code.to_string() } else { format!("{code}: {message}") })
                }
            }
            other => WorkError::Transient(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()),
        }
    }
}
