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
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), field: None }
    }

    pub fn field(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), field: Some(field.into()) }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::field(ErrorCode::ValidationFailed, field, message)
    }

    pub fn bad_param(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::field(ErrorCode::InvalidParameter, field, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such job")
    }

    pub fn unavailable() -> Self {
        Self::new(ErrorCode::ServiceUnavailable, "a backing service failed; retry later")
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

/// Failures of a backing service (DynamoDB, SQS, S3). Always the server's problem.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{operation} failed: {detail}")]
    Aws { operation: &'static str, detail: String },
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Keeps the SDK's full error context (service code, message, request id) for the log.
    pub fn aws(operation: &'static str, source: impl std::error::Error) -> Self {
        StoreError::Aws { operation, detail: aws_sdk_dynamodb::error::DisplayErrorContext(source).to_string() }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "backing service failure");
        ApiError::unavailable()
    }
}
