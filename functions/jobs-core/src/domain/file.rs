//! Jobs whose items come from an uploaded file (`POST /jobs` with `input.upload_id`).
//!
//! A file is a CSV with a header row (RFC 4180 quoting, UTF-8) or one JSON object per line
//! (NDJSON, string values), optionally gzip-compressed. Its rows are the job's items, in file
//! order: each type's registry entry says which columns its rows have ([`FileRows`]) and
//! how a row becomes an item. A row that is not a valid item becomes an *invalid item*
//! ([`invalid_item`]): it fails with the reason `line N: …` when its chunk runs, so bad rows
//! are counted and reported like any failure. Rows are not de-duplicated: a key that
//! repeats is a second item, processed again.
//!
//! The plan reads the file once, as a stream, and writes the items it finds as JSON lines
//! into *segments* (`<input>.items/<n>.ndjson`, about [`SEGMENT_BYTES`] each, never
//! splitting a chunk) and a *chunk index* (`<input>.items/index`): for chunk `n`, at byte
//! `16 n`, where it starts ([`ChunkStart`]), followed by one closing entry. Chunk `n` is
//! then two ranged reads: its two index entries, then its bytes of one segment.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use std::collections::BTreeMap;

use crate::domain::params::{
    MAX_DOCUMENT_CHARS, MAX_DOCUMENT_ID_CHARS, MAX_FIELD_VALUE_CHARS, MAX_USER_ID_CHARS,
    ProfileTarget, Recipient, is_email, is_user_id,
};
use crate::error::StoreError;
use crate::ports::InputStore;

/// Most items one file may hold.
pub const MAX_FILE_ITEMS: u64 = 10_000_000;
/// Most bytes one uploaded file may hold (S3's limit for a single-part `PUT`).
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Most bytes a file may hold once decompressed: a gzip file that expands past it is
/// refused when the plan reaches that point, before any item runs.
pub const MAX_DECOMPRESSED_BYTES: u64 = MAX_FILE_BYTES;
/// Most bytes of one row (a CSV record, quoted line breaks included, or a JSON line). An
/// AI Text Embedding row holds up to 8,000 characters of text (32,000 bytes of UTF-8).
pub const MAX_ROW_BYTES: usize = 64 * 1024;
/// The most `FILE_MAX_ROW_BYTES` may raise [`MAX_ROW_BYTES`] to: the plan holds one row.
pub const ROW_BYTES_CEILING: usize = 1024 * 1024;

/// The limits a job's file is read under: the API's settings when the job was created
/// (template parameters `FileMaxBytes`, `FileMaxRows`, `FileMaxRowBytes`,
/// `FileMaxDecompressedBytes`), kept with the job so that a plan that continues across
/// invocations reads the whole file under the same ones. Each defaults to the largest
/// value allowed, the bound the design is measured at (`make bench BENCH=large`), except
/// the row size, which may go up to [`ROW_BYTES_CEILING`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLimits {
    /// Bytes of the file as uploaded, 1 to [`MAX_FILE_BYTES`].
    pub max_bytes: u64,
    /// Rows, 1 to [`MAX_FILE_ITEMS`].
    pub max_rows: u64,
    /// Bytes of one row, 1 to [`ROW_BYTES_CEILING`] ([`MAX_ROW_BYTES`] by default).
    pub max_row_bytes: u64,
    /// Bytes once decompressed, 1 to [`MAX_DECOMPRESSED_BYTES`].
    pub max_decompressed_bytes: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_bytes: MAX_FILE_BYTES,
            max_rows: MAX_FILE_ITEMS,
            max_row_bytes: MAX_ROW_BYTES as u64,
            max_decompressed_bytes: MAX_DECOMPRESSED_BYTES,
        }
    }
}

impl FileLimits {
    /// Reads `FILE_MAX_BYTES`, `FILE_MAX_ROWS`, `FILE_MAX_ROW_BYTES` and
    /// `FILE_MAX_DECOMPRESSED_BYTES` (each absent: its default); the error names the
    /// variable that is not a whole number in its range.
    pub fn from_env() -> Result<FileLimits, crate::env::SettingError> {
        FileLimits::from_vars(|name| std::env::var(name).ok())
    }

    /// [`FileLimits::from_env`] over `var` (a variable's value by name).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<FileLimits, crate::env::SettingError> {
        let defaults = FileLimits::default();
        let read = |name: &str, default: u64, most: u64| {
            let invalid = || crate::env::SettingError::Invalid {
                name: name.into(),
                reason: format!("must be a whole number from 1 to {most}"),
            };
            let value = match var(name).filter(|v| !v.is_empty()) {
                None => default,
                Some(text) => text.parse().map_err(|_| invalid())?,
            };
            if (1..=most).contains(&value) {
                Ok(value)
            } else {
                Err(invalid())
            }
        };
        Ok(FileLimits {
            max_bytes: read("FILE_MAX_BYTES", defaults.max_bytes, MAX_FILE_BYTES)?,
            max_rows: read("FILE_MAX_ROWS", defaults.max_rows, MAX_FILE_ITEMS)?,
            max_row_bytes: read(
                "FILE_MAX_ROW_BYTES",
                defaults.max_row_bytes,
                ROW_BYTES_CEILING as u64,
            )?,
            max_decompressed_bytes: read(
                "FILE_MAX_DECOMPRESSED_BYTES",
                defaults.max_decompressed_bytes,
                MAX_DECOMPRESSED_BYTES,
            )?,
        })
    }
}
/// A segment of the plan's item list ends at the first chunk boundary past this size.
pub const SEGMENT_BYTES: usize = 8 * 1024 * 1024;
/// Bytes of one chunk index entry.
pub const INDEX_ENTRY_BYTES: u64 = 16;

/// The uploaded file a job reads its items from, as `HeadObject` found it at create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    /// The upload's key in the input bucket (`uploads/<tenant>/<upload id>`).
    pub key: String,
    /// `text/csv` or `application/x-ndjson`.
    pub content_type: String,
    /// `gzip`, or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// Its size as uploaded.
    pub bytes: u64,
    /// What it is read under (a job created before the limits were settings: the defaults).
    #[serde(default)]
    pub limits: FileLimits,
    /// Set on a retry of a file job (whose other fields are then the retried job's file):
    /// its items are the retried job's items to run again, not the file's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetriedItems>,
}

/// The items a retry of a file job runs again (`POST /jobs/{id}/retry`): those of job
/// `job_id` that failed and, when that job was cancelled, those cancelled or never run, in
/// its order. Its plan reads them from that job's item list (beside `input_key`, `chunks`
/// chunks) and ledger, and writes them as its own item list: a file written by the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetriedItems {
    pub job_id: String,
    pub input_key: String,
    pub chunks: u64,
    pub cancelled: bool,
}

impl JobFile {
    /// The upload this job uses up (`None` for a retry, whose items another job read).
    pub fn upload(&self) -> Option<&str> {
        self.retry.is_none().then_some(self.key.as_str())
    }

    pub fn is_csv(&self) -> bool {
        self.content_type == "text/csv"
    }

    pub fn is_gzip(&self) -> bool {
        self.content_encoding.as_deref() == Some("gzip")
    }
}

/// Where chunk `n` of a file job starts: its first item's position in the job, and its
/// first byte in one segment of the item list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkStart {
    pub position: u64,
    pub segment: u32,
    pub offset: u32,
}

impl ChunkStart {
    /// 16 bytes, big-endian: position (8), segment (4), offset (4).
    pub fn encode(&self, into: &mut Vec<u8>) {
        into.extend_from_slice(&self.position.to_be_bytes());
        into.extend_from_slice(&self.segment.to_be_bytes());
        into.extend_from_slice(&self.offset.to_be_bytes());
    }

    /// The entries in `bytes` (whole entries only).
    pub fn decode_all(bytes: &[u8]) -> Vec<ChunkStart> {
        bytes
            .chunks_exact(INDEX_ENTRY_BYTES as usize)
            .map(|e| {
                let mut position = [0u8; 8];
                let mut segment = [0u8; 4];
                let mut offset = [0u8; 4];
                position.copy_from_slice(&e[..8]);
                segment.copy_from_slice(&e[8..12]);
                offset.copy_from_slice(&e[12..]);
                ChunkStart {
                    position: u64::from_be_bytes(position),
                    segment: u32::from_be_bytes(segment),
                    offset: u32::from_be_bytes(offset),
                }
            })
            .collect()
    }
}

/// Segment `n` of a file job's item list, beside its input.
pub fn segment_key(input_key: &str, n: u32) -> String {
    format!(
        "{}.items/{n:06}.ndjson",
        input_key.trim_end_matches(".json")
    )
}

/// A file job's chunk index, beside its input.
pub fn index_key(input_key: &str) -> String {
    format!("{}.items/index", input_key.trim_end_matches(".json"))
}

/// The items of the chunk that starts at `from` and ends where `to` starts (the next
/// index entry): one ranged read of its segment. `Ok(None)` when the segment is gone;
/// `Err` says why its bytes are not an item list.
pub async fn read_chunk<I: InputStore>(
    inputs: &I,
    input_key: &str,
    from: ChunkStart,
    to: ChunkStart,
) -> Result<Option<Vec<Value>>, ReadError> {
    let end = (to.segment == from.segment).then_some(u64::from(to.offset));
    let Some(data) = inputs
        .get_range(
            &segment_key(input_key, from.segment),
            u64::from(from.offset),
            end,
        )
        .await?
    else {
        return Ok(None);
    };
    parse_lines(&data).map(Some)
}

/// The items of a piece of an item list: one JSON value per line.
pub fn parse_lines(data: &[u8]) -> Result<Vec<Value>, ReadError> {
    data.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(serde_json::from_slice)
        .collect::<Result<Vec<Value>, _>>()
        .map_err(|e| ReadError::Unreadable(e.to_string()))
}

/// Chunk `n`'s index entry and the next: one ranged read of the index. `Ok(None)` when the
/// index is gone or has no chunk `n`.
pub async fn chunk_bounds<I: InputStore>(
    inputs: &I,
    input_key: &str,
    n: u64,
) -> Result<Option<(ChunkStart, ChunkStart)>, ReadError> {
    let start = n.saturating_mul(INDEX_ENTRY_BYTES);
    let bytes = inputs
        .get_range(
            &index_key(input_key),
            start,
            Some(start.saturating_add(2 * INDEX_ENTRY_BYTES)),
        )
        .await?;
    Ok(
        bytes.and_then(|bytes| match ChunkStart::decode_all(&bytes)[..] {
            [from, to] => Some((from, to)),
            _ => None,
        }),
    )
}

/// Why a file job's item list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the job's item list is unreadable: {0}")]
    Unreadable(String),
    /// Its segments or index are gone (the input bucket's lifecycle rule removed them).
    #[error("the job's item list has expired")]
    Expired,
}

/// A row that is not a valid item: it fails with `reason` (which names its line).
pub fn invalid_item(line: u64, reason: &str) -> Value {
    json!({"invalid": format!("line {line}: {reason}"), "line": line})
}

/// The reason an item of a file job fails without running, if it is an invalid row.
pub fn invalid_reason(item: &Value) -> Option<&str> {
    item.get("invalid")?.as_str()
}

/// How reports name an invalid row: `line N`.
pub fn invalid_label(item: &Value) -> Option<String> {
    invalid_reason(item)?;
    Some(format!("line {}", item.get("line").unwrap_or(&Value::Null)))
}

/// One row of a file: its values by column name. An empty CSV cell is a missing value.
pub enum Row<'a> {
    Csv {
        header: &'a [String],
        fields: &'a [&'a str],
    },
    Json(&'a serde_json::Map<String, Value>),
}

impl Row<'_> {
    /// The value of column `name`: `Err` names a JSON value that is not a string.
    pub fn get(&self, name: &str) -> Result<Option<&str>, String> {
        match self {
            Row::Csv { header, fields } => Ok(header
                .iter()
                .position(|h| h == name)
                .and_then(|i| fields.get(i).copied())
                .filter(|v| !v.is_empty())),
            Row::Json(object) => match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(format!("{name} must be a string")),
            },
        }
    }

    /// Every column but `except` that has a value, by name.
    pub fn others(&self, except: &str) -> Result<BTreeMap<String, String>, String> {
        let mut fields = BTreeMap::new();
        match self {
            Row::Csv {
                header,
                fields: values,
            } => {
                for (name, value) in header.iter().zip(values.iter()) {
                    if name != except && !value.is_empty() {
                        fields.insert(name.clone(), value.to_string());
                    }
                }
            }
            Row::Json(object) => {
                for name in object.keys().filter(|k| *k != except) {
                    if let Some(value) = self.get(name)? {
                        fields.insert(name.clone(), value.to_string());
                    }
                }
            }
        }
        Ok(fields)
    }

    fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)?.ok_or_else(|| format!("no {name}"))
    }
}

/// How one type reads a file: which columns it has, and how a row becomes an item.
#[derive(Debug)]
pub struct FileRows {
    /// Checks the file's columns (CSV header, or the keys of each JSON line); the error says
    /// what is wrong.
    pub columns: fn(&[&str]) -> Result<(), String>,
    /// The row's item, or why the row is not one.
    pub item: fn(&Row) -> Result<Value, String>,
}

/// Checks that `columns` hold every name of `required`, exactly one of `one_of` when it
/// is not empty, and (unless `others` is true) nothing else.
fn columns_are(
    columns: &[&str],
    required: &[&str],
    one_of: &[&str],
    others: bool,
) -> Result<(), String> {
    if let Some(missing) = required.iter().find(|r| !columns.contains(r)) {
        return Err(format!("no {missing} column"));
    }
    if !one_of.is_empty() && one_of.iter().filter(|c| columns.contains(c)).count() != 1 {
        return Err(format!("exactly one of the columns {}", one_of.join(", ")));
    }
    if !others
        && let Some(unknown) = columns
            .iter()
            .find(|c| !required.contains(c) && !one_of.contains(c))
    {
        return Err(format!(
            "unknown column {:?}: the columns are {}",
            unknown.chars().take(64).collect::<String>(),
            [required, one_of].concat().join(", ")
        ));
    }
    if let Some(i) = (1..columns.len()).find(|&i| columns[..i].contains(&columns[i])) {
        return Err(format!("column {:?} appears twice", columns[i]));
    }
    Ok(())
}

/// Bulk Message Sending: `email`, and any other columns: the recipient's fields
/// ([`crate::domain::template`]).
pub static BULK_MESSAGE_ROWS: FileRows = FileRows {
    columns: |c| columns_are(c, &["email"], &[], true),
    item: |row| {
        let email = row.required("email")?;
        if !is_email(email) {
            return Err("email is not an email address".into());
        }
        let fields = row.others("email")?;
        let recipient = if fields.is_empty() {
            Recipient::Address(email.to_string())
        } else {
            Recipient::WithFields {
                email: email.to_string(),
                fields,
            }
        };
        serde_json::to_value(recipient).map_err(|e| e.to_string())
    },
};

/// Session Termination: `user_id` (every session of the user) or `session_id`.
pub static SESSION_ROWS: FileRows = FileRows {
    columns: |c| columns_are(c, &[], &["user_id", "session_id"], false),
    item: |row| {
        let (column, tag) = match row.get("user_id")? {
            Some(_) => ("user_id", "user"),
            None => ("session_id", "session"),
        };
        let id = row.required(column)?;
        if !is_user_id(id) {
            return Err(format!(
                "{column} must be 1 to {MAX_USER_ID_CHARS} printable characters"
            ));
        }
        Ok(json!({ tag: id }))
    },
};

/// AI Text Embedding: `id` and `text`.
pub static EMBEDDING_ROWS: FileRows = FileRows {
    columns: |c| columns_are(c, &["id", "text"], &[], false),
    item: |row| {
        let id = row.required("id")?;
        let text = row.required("text")?;
        if id.chars().count() > MAX_DOCUMENT_ID_CHARS {
            return Err(format!("id is over {MAX_DOCUMENT_ID_CHARS} characters"));
        }
        if text.chars().count() > MAX_DOCUMENT_CHARS {
            return Err(format!("text is over {MAX_DOCUMENT_CHARS} characters"));
        }
        Ok(json!({"id": id, "text": text}))
    },
};

/// Profile Field Update: `user_id`, and optionally `value` (a string), which overrides the
/// job's `value` for that user; an empty `value` leaves the job's.
pub static PROFILE_ROWS: FileRows = FileRows {
    columns: |c| {
        let plain: Vec<&str> = c.iter().copied().filter(|n| *n != "value").collect();
        columns_are(&plain, &["user_id"], &[], false).map_err(|why| {
            if why.starts_with("unknown") {
                format!("{why} (and optionally value)")
            } else {
                why
            }
        })
    },
    item: |row| {
        let id = row.required("user_id")?;
        if !is_user_id(id) {
            return Err(format!(
                "user_id must be 1 to {MAX_USER_ID_CHARS} printable characters"
            ));
        }
        let target = match row.get("value")? {
            None => ProfileTarget::User(id.to_string()),
            Some(value) if value.chars().count() > MAX_FIELD_VALUE_CHARS => {
                return Err(format!("value is over {MAX_FIELD_VALUE_CHARS} characters"));
            }
            Some(value) => ProfileTarget::WithValue {
                user_id: id.to_string(),
                value: value.to_string(),
            },
        };
        serde_json::to_value(target).map_err(|e| e.to_string())
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_row<'a>(header: &'a [String], fields: &'a [&'a str]) -> Row<'a> {
        Row::Csv { header, fields }
    }

    #[test]
    fn columns_name_what_is_missing_unknown_or_twice() {
        let check = |rows: &FileRows, c: &[&str]| (rows.columns)(c);
        assert_eq!(check(&BULK_MESSAGE_ROWS, &["email", "first_name"]), Ok(()));
        assert_eq!(
            check(&BULK_MESSAGE_ROWS, &["name"]),
            Err("no email column".into())
        );
        assert_eq!(check(&SESSION_ROWS, &["session_id"]), Ok(()));
        assert!(check(&SESSION_ROWS, &["user_id", "session_id"]).is_err());
        assert_eq!(
            check(&PROFILE_ROWS, &["user_id", "colour"]),
            Err("unknown column \"colour\": the columns are user_id (and optionally value)".into())
        );
        assert_eq!(
            check(&EMBEDDING_ROWS, &["id", "text", "id"]),
            Err("column \"id\" appears twice".into())
        );
        assert_eq!(
            check(&BULK_MESSAGE_ROWS, &["email", "x", "x"]),
            Err("column \"x\" appears twice".into())
        );
    }

    #[test]
    fn rows_become_items_or_say_why_not() {
        let header = vec!["email".to_string(), "first_name".to_string()];
        assert_eq!(
            (BULK_MESSAGE_ROWS.item)(&csv_row(&header, &["a@example.com", "Ann"])),
            Ok(json!({"email": "a@example.com", "fields": {"first_name": "Ann"}}))
        );
        assert_eq!(
            (BULK_MESSAGE_ROWS.item)(&csv_row(&header, &["a@example.com", ""])),
            Ok(json!("a@example.com")),
            "no other value: a plain address"
        );
        assert_eq!(
            (BULK_MESSAGE_ROWS.item)(&csv_row(&header, &["", "Ann"])),
            Err("no email".into())
        );
        assert_eq!(
            (BULK_MESSAGE_ROWS.item)(&csv_row(&header, &["nope", "Ann"])),
            Err("email is not an email address".into())
        );
        let header = vec!["session_id".to_string()];
        assert_eq!(
            (SESSION_ROWS.item)(&csv_row(&header, &["s1"])),
            Ok(json!({"session": "s1"}))
        );
        let object = json!({"id": "d1", "text": "hello"});
        let object = object.as_object().unwrap();
        assert_eq!(
            (EMBEDDING_ROWS.item)(&Row::Json(object)),
            Ok(json!({"id": "d1", "text": "hello"}))
        );
        let header = vec!["user_id".to_string(), "value".to_string()];
        assert_eq!(
            (PROFILE_ROWS.item)(&csv_row(&header, &["u1", "fr"])),
            Ok(json!({"user_id": "u1", "value": "fr"}))
        );
        assert_eq!(
            (PROFILE_ROWS.item)(&csv_row(&header, &["u1", ""])),
            Ok(json!("u1")),
            "an empty value leaves the job's"
        );
        assert_eq!((PROFILE_ROWS.columns)(&["value", "user_id"]), Ok(()));
        let object = json!({"user_id": 7});
        assert_eq!(
            (PROFILE_ROWS.item)(&Row::Json(object.as_object().unwrap())),
            Err("user_id must be a string".into())
        );
        let long = "x".repeat(MAX_DOCUMENT_CHARS + 1);
        let header = vec!["id".to_string(), "text".to_string()];
        assert!((EMBEDDING_ROWS.item)(&csv_row(&header, &["d", &long])).is_err());
    }

    #[test]
    fn index_entries_round_trip_and_invalid_items_carry_their_line() {
        let entries = [
            ChunkStart {
                position: 0,
                segment: 0,
                offset: 0,
            },
            ChunkStart {
                position: 10_000_000,
                segment: 7,
                offset: 8_388_700,
            },
        ];
        let mut bytes = Vec::new();
        for e in &entries {
            e.encode(&mut bytes);
        }
        assert_eq!(bytes.len() as u64, 2 * INDEX_ENTRY_BYTES);
        assert_eq!(ChunkStart::decode_all(&bytes), entries);
        let item = invalid_item(1234, "no email");
        assert_eq!(invalid_reason(&item), Some("line 1234: no email"));
        assert_eq!(invalid_reason(&json!("a@example.com")), None);
        assert_eq!(
            segment_key("inputs/t/J1.json", 3),
            "inputs/t/J1.items/000003.ndjson"
        );
        assert_eq!(index_key("inputs/t/J1.json"), "inputs/t/J1.items/index");
    }
}
