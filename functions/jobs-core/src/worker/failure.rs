//! Deciding, for any AWS SDK error, whether retrying can help.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use super::WorkError;

/// Service error codes that mean "slow down" (the AWS SDK's throttling classification,
/// `aws-smithy-types` `retry::ErrorKind::ThrottlingError` codes, and the services'
/// documented throttling codes; SES answers `Throttling`, "Maximum sending rate exceeded.").
const THROTTLING_CODES: [&str; 7] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
];

/// Service error codes of server-side failures that a later attempt may not meet.
const TRANSIENT_CODES: [&str; 3] = [
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
];

/// Throttling codes (and HTTP 429) are [`WorkError::Throttled`]; network failures, timeouts
/// and 5xx answers [`WorkError::Transient`]; any other service error is
/// [`WorkError::Rejected`], with the service's code and message.
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
                if THROTTLING_CODES.contains(&code) || status == 429 {
                    WorkError::Throttled(format!("{code}: {message}"))
                } else if TRANSIENT_CODES.contains(&code) || status >= 500 {
                    WorkError::Transient(format!("{code}: {message}"))
                } else {
                    WorkError::Rejected(if message.is_empty() {
                        code.to_string()
                    } else {
                        format!("{code}: {message}")
                    })
                }
            }
            other => WorkError::Transient(
                aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string(),
            ),
        }
    }
}
