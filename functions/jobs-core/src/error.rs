//! The one place where a failure becomes an HTTP status and a machine-readable body.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidParameter,
    ValidationFailed,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    IdempotencyConflict,
    /// The job's state does not allow the operation (e.g. cancelling a finished job).
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// A tenant's limit (e.g. creates per minute) is reached; `Retry-After` says when.
    TooManyRequests,
    ServiceUnavailable,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson | ErrorCode::InvalidParameter => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::IdempotencyConflict | ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::ValidationFailed => 422,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::ServiceUnavailable => 503,
        }
    }
}

/// An error as the client sees it. Server-side causes are logged, never echoed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Seconds after which a `429` may be retried (the `Retry-After` header).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn field(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: Some(field.into()),
            retry_after: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::field(ErrorCode::ValidationFailed, field, message)
    }

    /// A `422` for a body (or part of one) that did not decode, naming the field: the path
    /// where decoding stopped under `root` (`""` for the body's top level, `params` for a
    /// job's params), and for a missing field the field itself, which serde reports at its
    /// parent (serde's `Error::missing_field` wording: ``missing field `text` ``). `root`,
    /// or `body` at the top level, when nothing narrower is known.
    pub fn undecodable(err: serde_path_to_error::Error<serde_json::Error>, root: &str) -> Self {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let parts: Vec<&str> = [Some(root), (path != ".").then_some(path.as_str()), missing]
            .into_iter()
            .flatten()
            .filter(|part| !part.is_empty())
            .collect();
        let field = if parts.is_empty() {
            "body".to_string()
        } else {
            parts.join(".")
        };
        Self::invalid(field, message)
    }

    pub fn bad_param(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::field(ErrorCode::InvalidParameter, field, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// A `429` that may be retried after `seconds`.
    pub fn too_many(message: impl Into<String>, seconds: u64) -> Self {
        ApiError {
            retry_after: Some(seconds),
            ..Self::new(ErrorCode::TooManyRequests, message)
        }
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such job")
    }

    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            "a backing service failed; retry later",
        )
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": { "code": self.code, "message": self.message, "field": self.field }
        })
    }
}

/// Failures of a backing service (DynamoDB, SQS, S3), or of reading what it holds. Always
/// the server's problem: the API answers 503, a worker retries the message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A call failed (network, throttling, a service error); `detail` keeps the SDK's code,
    /// message and request id.
    #[error("{operation} failed: {detail}")]
    Aws {
        operation: &'static str,
        detail: String,
    },
    /// The call succeeded but left part of the work undone (DynamoDB unprocessed keys after
    /// retries, entries SQS refused in a batch).
    #[error("{operation} left {count} of its entries undone: {detail}")]
    Incomplete {
        operation: &'static str,
        count: usize,
        detail: String,
    },
    /// A stored item or object is not in the shape this code writes.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// A value of ours could not be encoded for the service (a bug, not bad data).
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    /// The service is not there (e.g. a test fake told to fail).
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
}

impl StoreError {
    /// Keeps the SDK's full error context (service code, message, request id) for the log.
    pub fn aws(operation: &'static str, source: impl std::error::Error) -> Self {
        StoreError::Aws {
            operation,
            detail: aws_sdk_dynamodb::error::DisplayErrorContext(source).to_string(),
        }
    }

    pub fn encode(what: &'static str, source: impl std::fmt::Display) -> Self {
        StoreError::Encode {
            what,
            detail: source.to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "backing service failure");
        ApiError::unavailable()
    }
}
