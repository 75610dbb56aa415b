//! Item reports written to S3, for jobs of any size (`POST /jobs/{id}/items/export`,
//! `GET /jobs/{id}/items/export/{export_id}`).
//!
//! A report of millions of rows cannot pass through API Gateway (10 MB) or a Lambda
//! response (6 MB), nor be written inside API Gateway's 29 s. The API records the request
//! as `exports/<job id>/<export id>.json` in the input bucket and sends an
//! [`ExportMessage`]; the exporter function streams the CSV (the rows and escaping of
//! `GET /jobs/{id}/items?format=csv`) into `exports/<job id>/<export id>.csv` by multipart
//! upload, then rewrites the JSON as `ready` (or `failed`). Memory stays bounded whatever
//! the job's size: one part being written, one segment of a file job's item list, one page
//! of ledger items. A second delivery of a message whose export has ended does nothing; one
//! that comes while it is pending writes it again, whole.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::items::{Outcome, csv_line, outcome_of};
use super::{Jobs, JobsApi};
use jobs_core::clock;
use jobs_core::domain::auth::Caller;
use jobs_core::domain::chunk::{MAX_CHUNK_BYTES, chunk_items};
use jobs_core::domain::file::{ReadError, SEGMENT_BYTES};
use jobs_core::domain::job::JobStatus;
use jobs_core::domain::record::JobRecord;
use jobs_core::error::{ApiError, ErrorCode, StoreError};
use jobs_core::item_list::{FileItems, Ledgers};
use jobs_core::ports::{
    ChunkOutcomes, ExportMessage, InputStore, JobStore, ServicePorts, WorkQueue,
};

/// How long a report's download URL stays valid.
pub const EXPORT_URL_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// Bytes of CSV per uploaded part: S3 takes at most 10,000 parts of at least 5 MiB but the
/// last, so 8 MiB parts hold reports up to 78 GiB.
const PART_BYTES: usize = SEGMENT_BYTES;
/// The CSV's first line.
pub const CSV_HEADER: &str = "position,item,outcome,reason\r\n";

/// Where export `export_id` of job `job_id` is described.
pub fn export_key(job_id: &str, export_id: &str) -> String {
    format!("exports/{job_id}/{export_id}.json")
}

/// Where export `export_id` of job `job_id` writes its CSV.
pub fn export_csv_key(job_id: &str, export_id: &str) -> String {
    format!("exports/{job_id}/{export_id}.csv")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Pending,
    Ready,
    Failed,
}

/// An export as stored and as answered. `url` (a presigned `GET`, valid
/// [`EXPORT_URL_EXPIRY`]) and `url_expires_at` are set only in answers about a ready one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    pub export_id: String,
    pub job_id: String,
    /// `succeeded`, `failed`, `cancelled`, `pending`, or `all`.
    pub outcome: String,
    pub status: ExportStatus,
    /// RFC 3339.
    pub requested_at: String,
    pub requested_by: String,
    /// Rows of the CSV, its header left out (when ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Size of the CSV in bytes (when ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// RFC 3339 (when ready or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_expires_at: Option<String>,
}

impl Export {
    /// The outcome the report keeps; `None`: every item.
    fn wanted(&self) -> Option<Outcome> {
        Outcome::parse(&self.outcome)
    }
}

/// The `outcome` query parameter of `POST /jobs/{id}/items/export` (absent: `all`).
pub fn export_outcome(query: &[(String, String)]) -> Result<String, ApiError> {
    let mut outcome = "all".to_string();
    for (name, value) in crate::query::checked(query, &["outcome"])? {
        if name == "outcome" {
            if value != "all" && Outcome::parse(value).is_none() {
                return Err(ApiError::bad_param(
                    "outcome",
                    "must be succeeded, failed, cancelled, pending or all",
                ));
            }
            outcome = value.to_string();
        }
    }
    Ok(outcome)
}

/// Why an export could not be written: the store failed (the message is retried), or the
/// job cannot be reported (the export ends `failed` with the reason).
#[derive(Debug)]
enum ExportError {
    Store(StoreError),
    Refused(String),
}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        ExportError::Store(e)
    }
}

impl From<ReadError> for ExportError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Store(e) => ExportError::Store(e),
            other => ExportError::Refused(other.to_string()),
        }
    }
}

impl<P: ServicePorts> JobsApi<P> {
    /// Asks for the report of job `id`'s items of `outcome` (`all`: every item), written
    /// by the exporter; answers the pending export. Any role that sees the job may.
    pub async fn start_export(
        &self,
        caller: &Caller,
        id: &str,
        outcome: String,
    ) -> Result<Export, ApiError> {
        let job = self.visible_job(caller, id).await?;
        let now = clock::now();
        let export = Export {
            export_id: ulid::Ulid::from_datetime(std::time::SystemTime::from(now)).to_string(),
            job_id: job.id.clone(),
            outcome,
            status: ExportStatus::Pending,
            requested_at: clock::format(now),
            requested_by: caller.user.clone(),
            rows: None,
            bytes: None,
            completed_at: None,
            error: None,
            url: None,
            url_expires_at: None,
        };
        self.save_export(&export).await?;
        self.queue
            .send_export(&ExportMessage {
                job_id: job.id.clone(),
                tenant: job.tenant.clone(),
                export_id: export.export_id.clone(),
            })
            .await?;
        Ok(export)
    }

    /// Export `export_id` of job `id`; when ready, with a download URL.
    pub async fn get_export(
        &self,
        caller: &Caller,
        id: &str,
        export_id: &str,
    ) -> Result<Export, ApiError> {
        let job = self.visible_job(caller, id).await?;
        if ulid::Ulid::from_string(export_id).is_err() {
            return Err(ApiError::not_found());
        }
        let Some(mut export) = self.read_export(&job.id, export_id).await? else {
            return Err(ApiError::not_found());
        };
        if export.status == ExportStatus::Ready {
            let name = format!("job-{}-{}.csv", job.id, export.outcome);
            export.url = Some(
                self.inputs
                    .presign_get(
                        &export_csv_key(&job.id, export_id),
                        &name,
                        EXPORT_URL_EXPIRY,
                    )
                    .await?,
            );
            export.url_expires_at = Some(clock::format(clock::now() + EXPORT_URL_EXPIRY));
        }
        Ok(export)
    }
}

impl<P: ServicePorts> Jobs<P> {
    async fn read_export(&self, job_id: &str, export_id: &str) -> Result<Option<Export>, ApiError> {
        match self.inputs.get(&export_key(job_id, export_id)).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| {
                ApiError::new(ErrorCode::Conflict, "the export's record is unreadable")
            }),
            None => Ok(None),
        }
    }

    async fn save_export(&self, export: &Export) -> Result<(), StoreError> {
        let body = serde_json::to_vec(export).map_err(|e| StoreError::encode("an export", e))?;
        self.inputs
            .put(&export_key(&export.job_id, &export.export_id), body)
            .await
    }

    /// The exporter's work for one message: writes the CSV and marks the export `ready`, or
    /// `failed` with the reason when the job cannot be reported (gone, its item list expired
    /// or unreadable). `None` when no such export was asked for. An error of the store is
    /// returned, for the message to be delivered again.
    pub async fn write_export(&self, message: &ExportMessage) -> Result<Option<Export>, ApiError> {
        let Some(mut export) = self
            .read_export(&message.job_id, &message.export_id)
            .await?
        else {
            return Ok(None);
        };
        if export.status != ExportStatus::Pending {
            return Ok(Some(export));
        }
        let written = match self.store.get(&message.job_id).await? {
            Some(job) if job.tenant == message.tenant => self.write_csv(&job, &export).await,
            _ => Err(ExportError::Refused("the job no longer exists".into())),
        };
        match written {
            Ok((rows, bytes)) => {
                export.status = ExportStatus::Ready;
                export.rows = Some(rows);
                export.bytes = Some(bytes);
            }
            Err(ExportError::Refused(reason)) => {
                export.status = ExportStatus::Failed;
                export.error = Some(reason);
            }
            Err(ExportError::Store(e)) => return Err(e.into()),
        }
        export.completed_at = Some(clock::format(clock::now()));
        self.save_export(&export).await?;
        Ok(Some(export))
    }

    /// Ends a pending export `failed` with `reason` (its message's last delivery failed).
    pub async fn fail_export(&self, message: &ExportMessage, reason: &str) -> Result<(), ApiError> {
        if let Some(mut export) = self
            .read_export(&message.job_id, &message.export_id)
            .await?
            && export.status == ExportStatus::Pending
        {
            export.status = ExportStatus::Failed;
            export.error = Some(reason.to_string());
            export.completed_at = Some(clock::format(clock::now()));
            self.save_export(&export).await?;
        }
        Ok(())
    }

    /// Streams the job's rows of the export's outcome into its CSV; (rows, bytes).
    async fn write_csv(&self, job: &JobRecord, export: &Export) -> Result<(u64, u64), ExportError> {
        let unrun = if job.status == JobStatus::Cancelled {
            Outcome::Cancelled
        } else {
            Outcome::Pending
        };
        let wanted = export.wanted();
        let mut out = PartWriter::start(
            &self.inputs,
            export_csv_key(&job.id, &export.export_id),
            "text/csv; charset=utf-8",
            PART_BYTES,
        )
        .await?;
        out.buffer.extend_from_slice(CSV_HEADER.as_bytes());
        let not_listed =
            || ExportError::Refused("the job's items are not listed yet: export it later".into());
        if job.file.is_none() {
            let items = self.item_list(job).await.map_err(|e| match e.code {
                ErrorCode::ServiceUnavailable => {
                    ExportError::Store(StoreError::Unavailable("the job's input"))
                }
                _ => ExportError::Refused(e.message),
            })?;
            let items = items.ok_or_else(not_listed)?;
            let chunks = chunk_items(&items, job.job_type.spec().chunk_size, MAX_CHUNK_BYTES)
                .map_err(|e| ExportError::Refused(e.to_string()))?;
            let mut ledgers = Ledgers::new(&self.store, &job.id, job.chunks_total.is_some());
            let mut position = 0u64;
            for (n, chunk) in chunks.iter().enumerate() {
                let ledger = ledgers.take(n as u64).await?;
                out.rows(chunk, position, ledger.as_ref(), unrun, wanted);
                out.flush_full().await?;
                position += chunk.len() as u64;
            }
        } else {
            let chunks = job.chunks_total.ok_or_else(not_listed)?;
            let mut walk = FileItems::new(
                &self.inputs,
                &self.store,
                &job.id,
                &job.input_key,
                chunks,
                0,
            );
            while let Some(chunk) = walk.next().await? {
                out.rows(
                    &chunk.items,
                    chunk.position,
                    chunk.ledger.as_ref(),
                    unrun,
                    wanted,
                );
                out.flush_full().await?;
            }
        }
        Ok(out.complete().await?)
    }
}

/// A CSV written to S3 in parts of at least `part_bytes` but the last.
struct PartWriter<'a, I> {
    inputs: &'a I,
    key: String,
    upload_id: String,
    part_bytes: usize,
    etags: Vec<String>,
    buffer: Vec<u8>,
    rows: u64,
    bytes: u64,
}

impl<'a, I: InputStore> PartWriter<'a, I> {
    async fn start(
        inputs: &'a I,
        key: String,
        content_type: &str,
        part_bytes: usize,
    ) -> Result<Self, StoreError> {
        let upload_id = inputs.create_multipart_upload(&key, content_type).await?;
        Ok(PartWriter {
            inputs,
            key,
            upload_id,
            part_bytes,
            etags: Vec::new(),
            buffer: Vec::with_capacity(part_bytes + MAX_CHUNK_BYTES),
            rows: 0,
            bytes: 0,
        })
    }

    /// Appends the CSV lines of a chunk's items of outcome `wanted` (all when `None`); the
    /// chunk's first item is at `start`.
    fn rows(
        &mut self,
        chunk: &[Value],
        start: u64,
        ledger: Option<&ChunkOutcomes>,
        unrun: Outcome,
        wanted: Option<Outcome>,
    ) {
        for (i, item) in chunk.iter().enumerate() {
            let (outcome, reason) = outcome_of(ledger, i, unrun);
            if wanted.is_some_and(|w| w != outcome) {
                continue;
            }
            let line = csv_line(start + i as u64, item, outcome, reason.as_deref());
            self.buffer.extend_from_slice(line.as_bytes());
            self.rows += 1;
        }
    }

    /// Uploads the buffer as a part once it holds `part_bytes`.
    async fn flush_full(&mut self) -> Result<(), StoreError> {
        if self.buffer.len() >= self.part_bytes {
            self.upload().await?;
        }
        Ok(())
    }

    async fn upload(&mut self) -> Result<(), StoreError> {
        let body = std::mem::take(&mut self.buffer);
        self.bytes += body.len() as u64;
        let number = i32::try_from(self.etags.len() + 1)
            .map_err(|_| StoreError::Unavailable("parts of an export"))?;
        let etag = self
            .inputs
            .upload_part(&self.key, &self.upload_id, number, body)
            .await?;
        self.etags.push(etag);
        Ok(())
    }

    /// Uploads the rest as the last part and joins the parts; (rows, bytes).
    async fn complete(mut self) -> Result<(u64, u64), StoreError> {
        self.upload().await?;
        self.inputs
            .complete_multipart_upload(&self.key, &self.upload_id, &self.etags)
            .await?;
        Ok((self.rows, self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_core::memory::MemoryInputs;
    use serde_json::json;

    #[tokio::test]
    async fn a_report_goes_up_in_parts_of_at_least_the_part_size_and_reads_back_whole() {
        let inputs = MemoryInputs::default();
        let mut out = PartWriter::start(&inputs, "exports/j/e.csv".into(), "text/csv", 100)
            .await
            .unwrap();
        out.buffer.extend_from_slice(CSV_HEADER.as_bytes());
        let items: Vec<Value> = (0..50).map(|i| json!(format!("user-{i}"))).collect();
        for (n, chunk) in items.chunks(10).enumerate() {
            out.rows(chunk, n as u64 * 10, None, Outcome::Pending, None);
            out.flush_full().await.unwrap();
        }
        let parts = out.etags.len();
        assert_eq!(out.complete().await.unwrap().0, 50);
        assert!(
            parts >= 5,
            "{parts} parts of at least 100 bytes before the last"
        );
        let body =
            String::from_utf8(inputs.get("exports/j/e.csv").await.unwrap().unwrap()).unwrap();
        let lines: Vec<&str> = body.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 51);
        assert_eq!(lines[50], "49,user-49,pending,");
    }

    #[test]
    fn the_outcome_of_an_export_is_one_of_the_report_s_or_all() {
        let q = |v: &str| export_outcome(&[("outcome".to_string(), v.to_string())]);
        assert_eq!(export_outcome(&[]).unwrap(), "all");
        assert_eq!(q("failed").unwrap(), "failed");
        assert_eq!(q("all").unwrap(), "all");
        assert_eq!(q("lost").unwrap_err().field.as_deref(), Some("outcome"));
        assert_eq!(
            export_outcome(&[("limit".into(), "5".into())])
                .unwrap_err()
                .field
                .as_deref(),
            Some("limit")
        );
    }
}
