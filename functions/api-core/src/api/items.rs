//! A job's items and their outcomes (`GET /jobs/{id}/items`, JSON pages or CSV), and a
//! retry of the ones that did not succeed (`POST /jobs/{id}/retry`).
//!
//! A job's items are its type's item list ([`ItemSource`]: a params field, or the list its
//! worker stored) cut into chunks exactly as the worker cut them; each chunk's ledger item
//! names its failed items (with reasons) and its cancelled items by position, and the rest
//! of its settled items succeeded. No item is written anywhere per item.

use serde::Serialize;
use serde_json::Value;

use super::create::{CreateRequest, Created};
use super::{Jobs, JobsApi};
use jobs_core::domain::audit::EventKind;
use jobs_core::domain::auth::Caller;
use jobs_core::domain::chunk::{MAX_CHUNK_BYTES, chunk_items};
use jobs_core::domain::file::{self, JobFile, RetriedItems};
use jobs_core::domain::job::JobStatus;
use jobs_core::domain::record::{JobRecord, snapshot_key};
use jobs_core::domain::registry::ItemSource;
use jobs_core::error::{ApiError, ErrorCode};
use jobs_core::ports::{ChunkOutcomes, InputStore, JobStore, ProgressStore, ServicePorts};

/// Most rows in one JSON page.
pub const MAX_ITEMS_PAGE: usize = 1_000;
const DEFAULT_ITEMS_PAGE: usize = 100;
/// Most chunks of a file job one page reads (each one ranged read of its item list): a
/// page can end short of `limit`, with a `next_cursor`.
const FILE_CHUNKS_PER_PAGE: usize = 50;

/// A job's chunks, as the item report reads them.
enum Chunks {
    /// Inline items, cut as the worker cuts them.
    Inline(Vec<Vec<Value>>),
    /// A file job's chunk index ([`file::ChunkStart`]), closing entry included.
    File(Vec<file::ChunkStart>),
}

pub use jobs_core::domain::chunk::{Outcome, outcome_of};

/// One item of a job: its position in the job's item list, how it is named, its outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemRow {
    pub position: u64,
    pub item: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ItemsPage {
    pub items: Vec<ItemRow>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
    /// False while the job's item list is not known yet (a type whose worker finds the
    /// items, before its plan): `items` is then empty and `next_cursor` is the requested
    /// cursor, to ask again later.
    pub listed: bool,
}

/// Rows (each with its item's value), the position to continue from when more may follow,
/// and whether the job's item list is known.
type Outcomes = (Vec<(ItemRow, Value)>, Option<u64>, bool);

/// `GET /jobs/{id}/items` query: `outcome`, `cursor` (a position), `limit` (1–1000, default
/// 100), `format` (`json` or `csv`).
#[derive(Debug, Default, PartialEq)]
pub struct ItemsQuery {
    pub outcome: Option<Outcome>,
    pub cursor: u64,
    pub limit: usize,
    pub csv: bool,
}

impl ItemsQuery {
    /// Parses the query; the error names the parameter.
    pub fn parse(query: &[(String, String)], accept: Option<&str>) -> Result<ItemsQuery, ApiError> {
        let mut parsed = ItemsQuery {
            limit: DEFAULT_ITEMS_PAGE,
            csv: accept.is_some_and(|a| a.contains("text/csv")),
            ..ItemsQuery::default()
        };
        for (name, value) in
            crate::query::checked(query, &["outcome", "cursor", "limit", "format"])?
        {
            match name {
                "outcome" => {
                    parsed.outcome = Some(Outcome::parse(value).ok_or_else(|| {
                        ApiError::bad_param(
                            "outcome",
                            "must be succeeded, failed, cancelled or pending",
                        )
                    })?);
                }
                "cursor" => {
                    parsed.cursor = value
                        .parse()
                        .ok()
                        .filter(|_| value.len() <= 12)
                        .ok_or_else(|| {
                            ApiError::bad_param("cursor", "is not a cursor of this list")
                        })?;
                }
                "limit" => {
                    parsed.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_ITEMS_PAGE).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_param("limit", format!("must be 1 to {MAX_ITEMS_PAGE}"))
                        })?;
                }
                "format" => match value {
                    "csv" => parsed.csv = true,
                    "json" => parsed.csv = false,
                    _ => return Err(ApiError::bad_param("format", "must be json or csv")),
                },
                _ => {} // refused by query::checked
            }
        }
        Ok(parsed)
    }
}

/// How an item is named in reports: a string item is itself; an object with an `id` is its
/// id, with an `email` its address; a file's row that is not an item is `line N`; a
/// one-key object `{"user": "u1"}` is `user u1`.
pub fn item_label(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        Value::Object(map) => match (map.get("id"), map.iter().next()) {
            (Some(Value::String(id)), _) => id.clone(),
            // A recipient with its fields, or a user with its own value (jobs from files).
            _ if map.get("email").is_some_and(Value::is_string) => {
                map["email"].as_str().unwrap_or_default().to_string()
            }
            _ if map.get("user_id").is_some_and(Value::is_string) => {
                map["user_id"].as_str().unwrap_or_default().to_string()
            }
            // A row that is not an item: its line.
            _ if map.contains_key("invalid") => file::invalid_label(item).unwrap_or_default(),
            (_, Some((key, Value::String(value)))) if map.len() == 1 => format!("{key} {value}"),
            _ => item.to_string(),
        },
        other => other.to_string(),
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a value a
/// spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`, tab or CR) gets a
/// leading `'` (OWASP, CSV injection).
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The rows as CSV, with a header line; lines end with CRLF.
pub fn to_csv(rows: &[ItemRow]) -> String {
    let mut out = String::from(super::export::CSV_HEADER);
    for row in rows {
        out.push_str(&row_line(
            row.position,
            &row.item,
            row.outcome,
            row.reason.as_deref(),
        ));
    }
    out
}

/// One CSV line (CRLF-terminated) of the item at `position`.
pub(crate) fn csv_line(
    position: u64,
    item: &Value,
    outcome: Outcome,
    reason: Option<&str>,
) -> String {
    row_line(position, &item_label(item), outcome, reason)
}

fn row_line(position: u64, label: &str, outcome: Outcome, reason: Option<&str>) -> String {
    format!(
        "{position},{},{},{}\r\n",
        csv_field(label),
        outcome.key(),
        csv_field(reason.unwrap_or(""))
    )
}

impl<P: ServicePorts> JobsApi<P> {
    /// The items of a job the caller may see, from `query.cursor` on, of `query.outcome`
    /// (all when `None`); for CSV, every such item (`next_cursor` is then `None`).
    pub async fn job_items(
        &self,
        caller: &Caller,
        id: &str,
        query: &ItemsQuery,
    ) -> Result<ItemsPage, ApiError> {
        let job = self.visible_job(caller, id).await?;
        if query.csv && job.file.is_some() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "a job from a file has no CSV report in one response: read its JSON pages",
            ));
        }
        let wanted = if query.csv { usize::MAX } else { query.limit };
        let (rows, next, listed) = self
            .outcomes(&job, query.cursor, query.outcome, wanted)
            .await?;
        if !listed && query.csv {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the job's items are not listed yet: its worker lists them when the job starts",
            ));
        }
        let next = if listed { next } else { Some(query.cursor) };
        Ok(ItemsPage {
            items: rows.into_iter().map(|(row, _)| row).collect(),
            next_cursor: next.map(|n| n.to_string()),
            listed,
        })
    }

    /// Creates a job of the same type and tenant over the items of `id` that failed (and,
    /// for a cancelled job, were cancelled), with its other params; the two are linked
    /// (`retry_of`, `retries`). 409 when the job has not ended or has nothing to retry.
    pub async fn retry_job(
        &self,
        caller: &Caller,
        id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Created, ApiError> {
        let job = self.visible_job(caller, id).await?;
        match self.retry(caller, &job, idempotency_key).await {
            Ok(created) if created.replayed => Ok(created),
            Ok(created) => {
                let new_id = created.job.id.clone();
                self.audited(caller, &job, EventKind::Retried, Ok(created), Some(&new_id))
                    .await
            }
            Err(err) => {
                self.audited(caller, &job, EventKind::Retried, Err(err), None)
                    .await
            }
        }
    }

    async fn retry(
        &self,
        caller: &Caller,
        job: &JobRecord,
        idempotency_key: Option<&str>,
    ) -> Result<Created, ApiError> {
        if !job.status.is_terminal() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "the job has not ended ({}): retry it once it has",
                    job.status.key()
                ),
            ));
        }
        if let Some(file) = &job.file {
            return self.retry_file(caller, job, file, idempotency_key).await;
        }
        let retried = |o: Outcome| {
            o == Outcome::Failed || (job.status == JobStatus::Cancelled && o == Outcome::Cancelled)
        };
        let (rows, _, _) = self.outcomes(job, 0, None, usize::MAX).await?;
        let items: Vec<Value> = rows
            .into_iter()
            .filter(|(row, _)| retried(row.outcome))
            .map(|(_, item)| item)
            .collect();
        if items.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the job has no failed items to retry",
            ));
        }
        let mut params = self.stored_params(job).await?;
        let params = match job.job_type.spec().items {
            ItemSource::Param(field) => {
                if let Some(map) = params.as_object_mut() {
                    map.insert(field.to_string(), Value::Array(items));
                }
                params
            }
            ItemSource::Snapshot { retry } => {
                retry(items).map_err(|e| ApiError::new(ErrorCode::Conflict, e))?
            }
        };
        self.create_retry(caller, job, params, None, idempotency_key)
            .await
    }

    /// The retry of a file job: a job whose plan reads the items to run again from `job`'s
    /// item list and ledger ([`RetriedItems`]) and writes them as its own, so that a job
    /// of any size is retried without the API reading its items.
    async fn retry_file(
        &self,
        caller: &Caller,
        job: &JobRecord,
        file: &JobFile,
        idempotency_key: Option<&str>,
    ) -> Result<Created, ApiError> {
        let cancelled = job.status == JobStatus::Cancelled;
        let Some(chunks) = job.chunks_total.filter(|n| *n > 0) else {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the job ended before its file was read: create a job from a new upload of the file",
            ));
        };
        if self
            .inputs
            .head(&file::index_key(&job.input_key))
            .await?
            .is_none()
        {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the job's item list is gone (its file was refused, or the list expired): create a job from a new upload of the file",
            ));
        }
        let unrun = job
            .total
            .saturating_sub(job.succeeded + job.failed + job.cancelled);
        let again = job.failed + if cancelled { job.cancelled + unrun } else { 0 };
        if again == 0 {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the job has no failed items to retry",
            ));
        }
        let file = JobFile {
            retry: Some(RetriedItems {
                job_id: job.id.clone(),
                input_key: job.input_key.clone(),
                chunks,
                cancelled,
            }),
            ..file.clone()
        };
        // As stored, with the (empty) item field the plan fills from the file.
        let mut params = self.stored_params(job).await?;
        if let ItemSource::Param(field) = job.job_type.spec().items
            && let Some(map) = params.as_object_mut()
        {
            map.remove(field);
        }
        self.create_retry(caller, job, params, Some(file), idempotency_key)
            .await
    }

    /// Creates the retry of `job` with `params` (and, for a file job, its `file`), and
    /// links the two.
    async fn create_retry(
        &self,
        caller: &Caller,
        job: &JobRecord,
        params: Value,
        file: Option<JobFile>,
        idempotency_key: Option<&str>,
    ) -> Result<Created, ApiError> {
        let request = CreateRequest {
            job_type: job.job_type.key().to_string(),
            tenant: Some(job.tenant.clone()),
            params,
            input: None,
        };
        let created = self
            .create(
                caller,
                request,
                idempotency_key,
                super::create::JobLinks {
                    retry_of: Some(job.id.clone()),
                    schedule_id: None,
                    file,
                },
            )
            .await?;
        if !created.replayed {
            self.store.add_retry(&job.id, &created.job.id).await?;
        }
        Ok(created)
    }

    /// Up to `wanted` rows (with each item's value) from position `from` on, of `outcome`
    /// (all when `None`), the position to continue from when more may follow, and whether
    /// the item list is known. An item of a chunk with no ledger item yet is pending, or
    /// cancelled when the job was cancelled before its plan (its chunks never ran).
    async fn outcomes(
        &self,
        job: &JobRecord,
        from: u64,
        outcome: Option<Outcome>,
        wanted: usize,
    ) -> Result<Outcomes, ApiError> {
        let unrun = if job.status == JobStatus::Cancelled {
            Outcome::Cancelled
        } else {
            Outcome::Pending
        };
        // A file job's chunks are read from its item list as the page reaches them, at most
        // FILE_CHUNKS_PER_PAGE per page; inline items are cut here as the worker cut them.
        let (chunks, starts, scan) = if job.file.is_some() {
            let Some(index) = self.inputs.get(&file::index_key(&job.input_key)).await? else {
                return Ok((Vec::new(), None, false));
            };
            let entries = file::ChunkStart::decode_all(&index);
            let starts = entries.iter().map(|e| e.position).collect::<Vec<u64>>();
            (Chunks::File(entries), starts, FILE_CHUNKS_PER_PAGE)
        } else {
            let Some(items) = self.item_list(job).await? else {
                return Ok((Vec::new(), None, false));
            };
            let chunks = chunk_items(&items, job.job_type.spec().chunk_size, MAX_CHUNK_BYTES)
                .map_err(|e| ApiError::new(ErrorCode::Conflict, e.to_string()))?;
            let starts: Vec<u64> = chunks
                .iter()
                .scan(0u64, |at, c| {
                    let start = *at;
                    *at += c.len() as u64;
                    Some(start)
                })
                .collect();
            (Chunks::Inline(chunks), starts, usize::MAX)
        };
        let count = match &chunks {
            Chunks::Inline(c) => c.len(),
            // The closing entry starts no chunk.
            Chunks::File(entries) => entries.len().saturating_sub(1),
        };
        let first = starts[..count]
            .iter()
            .rposition(|s| *s <= from)
            .unwrap_or(0);
        let last = first.saturating_add(scan).min(count);
        // The ledger items of the chunks this page reads.
        let mut ledgers = std::collections::HashMap::new();
        let mut next = first as u64;
        // An unplanned job has no ledger items.
        while job.chunks_total.is_some() && next < last as u64 {
            let (page, more) = self
                .store
                .chunk_outcomes(&job.id, next, jobs_core::item_list::LEDGER_PAGE)
                .await?;
            next = page.last().map_or(next, |l| l.chunk + 1);
            let empty = page.is_empty();
            ledgers.extend(page.into_iter().map(|l| (l.chunk, l)));
            if !more || empty {
                break;
            }
        }
        let mut rows = Vec::new();
        for n in first..last {
            let read;
            let chunk: &[Value] = match &chunks {
                Chunks::Inline(c) => &c[n],
                Chunks::File(entries) => {
                    read =
                        file::read_chunk(&self.inputs, &job.input_key, entries[n], entries[n + 1])
                            .await
                            .map_err(|e| match e {
                                file::ReadError::Store(e) => ApiError::from(e),
                                other => ApiError::new(ErrorCode::Conflict, other.to_string()),
                            })?
                            .unwrap_or_default();
                    &read
                }
            };
            let ledger: Option<&ChunkOutcomes> = ledgers.get(&(n as u64));
            for (i, item) in chunk.iter().enumerate() {
                let position = starts[n] + i as u64;
                if position < from {
                    continue;
                }
                let (kind, reason) = outcome_of(ledger, i, unrun);
                if outcome.is_some_and(|o| o != kind) {
                    continue;
                }
                if rows.len() == wanted {
                    return Ok((rows, Some(position), true));
                }
                rows.push((
                    ItemRow {
                        position,
                        item: item_label(item),
                        outcome: kind,
                        reason,
                    },
                    item.clone(),
                ));
            }
        }
        if last < count {
            return Ok((rows, Some(starts[last]), true));
        }
        Ok((rows, None, true))
    }
}

impl<P: ServicePorts> Jobs<P> {
    pub(crate) async fn stored_params(&self, job: &JobRecord) -> Result<Value, ApiError> {
        let bytes = self
            .inputs
            .get(&job.input_key)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "the job's input has expired"))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| ApiError::new(ErrorCode::Conflict, "the job's input is unreadable"))
    }

    /// The job's item list, as its worker chunks it; `None` while a list its worker finds is
    /// not stored yet (before the plan).
    pub(crate) async fn item_list(&self, job: &JobRecord) -> Result<Option<Vec<Value>>, ApiError> {
        match job.job_type.spec().items {
            ItemSource::Param(field) => Ok(Some(
                self.stored_params(job)
                    .await?
                    .get(field)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            )),
            ItemSource::Snapshot { .. } => {
                match self.inputs.get(&snapshot_key(&job.input_key)).await? {
                    Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| {
                        ApiError::new(ErrorCode::Conflict, "the job's item list is unreadable")
                    }),
                    None => Ok(None),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_are_named_as_the_workers_name_them() {
        assert_eq!(item_label(&json!("a@example.com")), "a@example.com");
        assert_eq!(item_label(&json!({"id": "doc-1", "text": "long"})), "doc-1");
        assert_eq!(item_label(&json!({"user": "u1"})), "user u1");
        assert_eq!(item_label(&json!({"session": "s1"})), "session s1");
        assert_eq!(
            item_label(&json!({"email": "a@example.com", "fields": {"first_name": "Ann"}})),
            "a@example.com"
        );
        assert_eq!(item_label(&json!({"user_id": "u1", "value": "fr"})), "u1");
        assert_eq!(
            item_label(&jobs_core::domain::file::invalid_item(12, "no email")),
            "line 12"
        );
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx"] {
            assert!(
                csv_field(formula).trim_start_matches('"').starts_with('\''),
                "{formula:?} → {}",
                csv_field(formula)
            );
        }
        let rows = [ItemRow {
            position: 3,
            item: "=HYPERLINK(\"x\")".into(),
            outcome: Outcome::Failed,
            reason: Some("bad, very".into()),
        }];
        assert_eq!(
            to_csv(&rows),
            "position,item,outcome,reason\r\n3,\"'=HYPERLINK(\"\"x\"\")\",failed,\"bad, very\"\r\n"
        );
    }

    #[test]
    fn the_query_names_the_bad_parameter() {
        let q = |pairs: &[(&str, &str)]| {
            ItemsQuery::parse(
                &pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
                None,
            )
        };
        assert_eq!(
            q(&[]).unwrap(),
            ItemsQuery {
                limit: 100,
                ..ItemsQuery::default()
            }
        );
        assert_eq!(
            q(&[
                ("outcome", "failed"),
                ("cursor", "250"),
                ("limit", "7"),
                ("format", "csv")
            ])
            .unwrap(),
            ItemsQuery {
                outcome: Some(Outcome::Failed),
                cursor: 250,
                limit: 7,
                csv: true
            }
        );
        for (name, value) in [
            ("outcome", "lost"),
            ("cursor", "-1"),
            ("cursor", "9999999999999"),
            ("limit", "0"),
            ("limit", "1001"),
            ("format", "xml"),
            ("sort", "x"),
        ] {
            assert_eq!(
                q(&[(name, value)]).unwrap_err().field.as_deref(),
                Some(name),
                "{name}={value}"
            );
        }
        assert!(ItemsQuery::parse(&[], Some("text/csv")).unwrap().csv);
    }
}
