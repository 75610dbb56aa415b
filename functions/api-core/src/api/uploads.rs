//! `POST /uploads`: a presigned S3 `PUT` for a job's input file, so a file of any size goes
//! from the client straight to the input bucket, never through API Gateway (10 MB) or the
//! API function (6 MB).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobsApi;
use jobs_core::clock;
use jobs_core::domain::auth::Caller;
use jobs_core::domain::limits::seconds_to_next_day;
use jobs_core::error::ApiError;
use jobs_core::ports::{InputStore, LimitsStore, ServicePorts, UploadFormat};

/// How long an upload URL stays valid.
pub const UPLOAD_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// The media types a job's file may have: a CSV with a header row (RFC 4180), or one JSON
/// object per line.
pub const UPLOAD_CONTENT_TYPES: [&str; 2] = ["text/csv", "application/x-ndjson"];

/// `POST /uploads`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// One of [`UPLOAD_CONTENT_TYPES`].
    pub content_type: String,
    /// `gzip` when the file is compressed; left out when not (`null` is refused).
    #[serde(default, deserialize_with = "not_null")]
    pub content_encoding: Option<String>,
}

/// A field that, when given, is a string.
fn not_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    String::deserialize(deserializer).map(Some)
}

/// `201`: where and how to `PUT` the file. The `headers` are signed: the `PUT` must send
/// each of them as given. A second `PUT` to the same URL is `412` (`If-None-Match: *`).
#[derive(Debug, Serialize)]
pub struct CreatedUpload {
    pub upload_id: String,
    pub method: String,
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
    /// RFC 3339, [`UPLOAD_EXPIRY`] after the call.
    pub expires_at: String,
    /// The largest file a job takes (`FileMaxBytes`; at most 5 GiB, S3's limit for a
    /// single `PutObject`).
    pub max_bytes: u64,
}

/// Where an upload of `tenant` lands in the input bucket: under the tenant's prefix, so an
/// upload id names a file of its own tenant only.
pub fn upload_key(tenant: &str, upload_id: &str) -> String {
    format!("uploads/{tenant}/{upload_id}")
}

impl UploadRequest {
    fn format(self) -> Result<UploadFormat, ApiError> {
        if !UPLOAD_CONTENT_TYPES.contains(&self.content_type.as_str()) {
            return Err(ApiError::invalid(
                "content_type",
                format!("must be one of {}", UPLOAD_CONTENT_TYPES.join(", ")),
            ));
        }
        if let Some(encoding) = &self.content_encoding
            && encoding != "gzip"
        {
            return Err(ApiError::invalid(
                "content_encoding",
                "must be gzip, or absent for an uncompressed file",
            ));
        }
        Ok(UploadFormat {
            content_type: self.content_type,
            content_encoding: self.content_encoding,
        })
    }
}

impl<P: ServicePorts> JobsApi<P> {
    /// A presigned `PUT` for one file of the caller's tenant (operators and up). `422`
    /// naming `content_type` or `content_encoding` when they are not ones a job reads;
    /// `429` with `Retry-After` (seconds to the next UTC day) past the tenant's uploads per
    /// day (`TENANT_UPLOADS_PER_DAY`, counted by a conditional `ADD`).
    pub async fn create_upload(
        &self,
        caller: &Caller,
        request: UploadRequest,
    ) -> Result<CreatedUpload, ApiError> {
        let format = request.format()?;
        let now = clock::now();
        let day = clock::format(now);
        let day = day.get(..10).unwrap_or(&day);
        let ttl = now.unix_timestamp() + 2 * 86_400;
        if !self
            .store
            .count_upload(&caller.tenant, day, self.uploads_per_day, ttl)
            .await?
        {
            let wait = seconds_to_next_day(now);
            tracing::info!(limit = self.uploads_per_day, "upload refused: tenant limit");
            return Err(ApiError::too_many(
                format!(
                    "tenant {} made {} uploads today (UTC), its limit; retry in {wait} s",
                    caller.tenant, self.uploads_per_day
                ),
                wait,
            ));
        }
        let upload_id = ulid::Ulid::from_datetime(std::time::SystemTime::from(now)).to_string();
        let put = self
            .inputs
            .presign_put(
                &upload_key(&caller.tenant, &upload_id),
                &format,
                UPLOAD_EXPIRY,
            )
            .await?;
        tracing::info!(upload_id = %upload_id, content_type = %format.content_type, "upload presigned");
        Ok(CreatedUpload {
            upload_id,
            method: put.method,
            url: put.url,
            headers: put.headers,
            expires_at: clock::format(now + UPLOAD_EXPIRY),
            max_bytes: self.file_limits.max_bytes,
        })
    }
}
