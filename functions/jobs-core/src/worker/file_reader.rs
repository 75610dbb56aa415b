//! Reads an uploaded file as a stream of rows ([`crate::domain::file`]): gzip decoded as it
//! arrives, CSV records or JSON lines, with the file's [`FileLimits`] checked on the bytes
//! as they pass (a row over `max_row_bytes`, more than `max_decompressed_bytes` decoded) so
//! that no input, however large or hostile, is held whole. Memory: one row, plus the readers'
//! buffers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::GzipDecoder;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader, ReadBuf};

use crate::domain::file::{FileLimits, FileRows, JobFile, Row};
use crate::ports::ByteReader;

/// One row read: its line (1-based, where it starts), and its item or why it is not one.
pub struct ReadRow {
    pub line: u64,
    pub item: Result<Value, String>,
}

/// Why a file cannot be read at all: what the job's failure says.
#[derive(Debug)]
pub enum FileError {
    /// The file is not what it says (no header, unknown columns, not UTF-8, not gzip,
    /// over a limit): ends the job `failed` with this reason.
    Refused(String),
    /// Reading failed for a reason a retry may not meet (the network).
    Io(io::Error),
}

/// A limit met by the bytes passing through [`Guard`].
#[derive(Debug, thiserror::Error)]
enum Limit {
    #[error("line {line}: a row over {most} bytes")]
    RowTooLong { line: u64, most: u64 },
    #[error("the file holds more than {0} bytes once decompressed")]
    TooLarge(u64),
}

/// Counts the bytes passing through: the decoded total, and the bytes since the last row
/// boundary (a line break outside CSV quotes), each against its limit.
struct Guard {
    inner: ByteReader,
    limits: FileLimits,
    csv: bool,
    in_quotes: bool,
    total: u64,
    row_bytes: u64,
    /// Line breaks passed, and the line the current row starts on (1-based).
    line: u64,
    row_line: u64,
}

impl AsyncRead for Guard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                this.total += fresh.len() as u64;
                if this.total > this.limits.max_decompressed_bytes {
                    return Poll::Ready(Err(io::Error::other(Limit::TooLarge(
                        this.limits.max_decompressed_bytes,
                    ))));
                }
                for &b in fresh {
                    if this.csv && b == b'"' {
                        this.in_quotes = !this.in_quotes;
                    }
                    if b == b'\n' {
                        this.line += 1;
                        if !this.in_quotes {
                            this.row_bytes = 0;
                            this.row_line = this.line + 1;
                            continue;
                        }
                    }
                    this.row_bytes += 1;
                    if this.row_bytes > this.limits.max_row_bytes {
                        return Poll::Ready(Err(io::Error::other(Limit::RowTooLong {
                            line: this.row_line,
                            most: this.limits.max_row_bytes,
                        })));
                    }
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// What an I/O error while reading means for the job.
fn io_error(err: io::Error, gzip: bool) -> FileError {
    if let Some(limit) = err.get_ref().and_then(|e| e.downcast_ref::<Limit>()) {
        return FileError::Refused(limit.to_string());
    }
    match err.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
            if gzip =>
        {
            FileError::Refused(format!("the file is not valid gzip: {err}"))
        }
        _ => FileError::Io(err),
    }
}

/// CSV records are split by `csv_core` (RFC 4180) after the reader has gathered a whole
/// record of lines (a line break inside quotes continues it), so each row's line is known.
struct Csv {
    parser: csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
}

impl Csv {
    /// The fields of one record (its bytes, terminator included); `None` when not UTF-8.
    fn split<'a>(&'a mut self, record: &[u8]) -> Option<Vec<&'a str>> {
        self.parser.reset();
        self.fields.resize(record.len().max(1), 0);
        if self.ends.is_empty() {
            self.ends.resize(16, 0);
        }
        let (mut input, mut out, mut end) = (record, 0, 0);
        let mut eof = false;
        loop {
            let (result, read, written, ended) =
                self.parser
                    .read_record(input, &mut self.fields[out..], &mut self.ends[end..]);
            input = &input[read..];
            out += written;
            end += ended;
            match result {
                csv_core::ReadRecordResult::InputEmpty if !eof => eof = true,
                csv_core::ReadRecordResult::OutputFull => {
                    let len = self.fields.len() * 2;
                    self.fields.resize(len, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    self.ends.resize(len, 0);
                }
                _ => break,
            }
        }
        let text = std::str::from_utf8(&self.fields[..out]).ok()?;
        let mut start = 0;
        Some(
            self.ends[..end]
                .iter()
                .map(|&stop| {
                    let field = text.get(start..stop).unwrap_or_default();
                    start = stop;
                    field
                })
                .collect(),
        )
    }
}

/// Reads the next record's lines into `buf` (emptied first): a line, and the lines after
/// it while a quote is open. Blank lines are skipped. Returns the line it starts on;
/// `None` at the end.
async fn next_record(
    reader: &mut BufReader<Guard>,
    buf: &mut Vec<u8>,
    at: &mut Position,
    gzip: bool,
) -> Result<Option<u64>, FileError> {
    loop {
        buf.clear();
        let mut quotes = 0usize;
        let start = at.line + 1;
        loop {
            let from = buf.len();
            let n = reader
                .read_until(b'\n', buf)
                .await
                .map_err(|e| io_error(e, gzip))?;
            if n == 0 {
                break;
            }
            at.line += 1;
            at.consumed += n as u64;
            quotes += buf[from..].iter().filter(|b| **b == b'"').count();
            if quotes.is_multiple_of(2) {
                break;
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        if buf.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            continue;
        }
        return Ok(Some(start));
    }
}

/// Where a file's next row starts: the decoded bytes and the lines before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub consumed: u64,
    pub line: u64,
}

struct Source {
    reader: BufReader<Guard>,
    /// Where the next row starts.
    at: Position,
    buf: Vec<u8>,
    /// For a CSV file: its parser and header; JSON lines have neither.
    csv: Option<Csv>,
    header: Vec<String>,
}

/// The rows of one file, read one at a time.
pub struct FileReader {
    source: Source,
    rows: &'static FileRows,
    gzip: bool,
    read: u64,
    max_rows: u64,
}

impl FileReader {
    /// Starts reading `body`, the bytes of `file`, as rows of `rows`' type; a CSV's header
    /// is read and checked here.
    pub async fn open(
        body: ByteReader,
        file: &JobFile,
        rows: &'static FileRows,
    ) -> Result<FileReader, FileError> {
        let mut reader = FileReader::start(body, file, rows, Position::default(), 0);
        if file.is_csv() {
            reader.read_header().await?;
        }
        Ok(reader)
    }

    /// Continues reading `file` where [`FileReader::position`] said the next row starts,
    /// after `rows_read` rows. `body` is the file from byte `at.consumed` on (a ranged read)
    /// when it is not gzip; a gzip file cannot be entered in its middle, so `body` is then
    /// the whole file and the bytes before `at` are decoded again and dropped. `header` is
    /// the CSV's, as [`FileReader::header`] gave it.
    pub async fn resume(
        body: ByteReader,
        file: &JobFile,
        rows: &'static FileRows,
        at: Position,
        rows_read: u64,
        header: Vec<String>,
    ) -> Result<FileReader, FileError> {
        if !file.is_gzip() {
            let mut reader = FileReader::start(body, file, rows, at, rows_read);
            reader.source.header = header;
            return Ok(reader);
        }
        let mut reader = FileReader::open(body, file, rows).await?;
        let skip = at.consumed.saturating_sub(reader.source.at.consumed);
        let mut before = (&mut reader.source.reader).take(skip);
        tokio::io::copy(&mut before, &mut tokio::io::sink())
            .await
            .map_err(|e| io_error(e, true))?;
        let guard = reader.source.reader.get_mut();
        (guard.line, guard.row_line) = (at.line, at.line + 1);
        reader.source.at = at;
        reader.read = rows_read;
        Ok(reader)
    }

    /// Where the next row starts.
    pub fn position(&self) -> Position {
        self.source.at
    }

    /// A CSV's header row (empty for JSON lines).
    pub fn header(&self) -> &[String] {
        &self.source.header
    }

    /// A reader of `body` whose first byte is at `at`, before any header is read.
    fn start(
        body: ByteReader,
        file: &JobFile,
        rows: &'static FileRows,
        at: Position,
        read: u64,
    ) -> FileReader {
        let gzip = file.is_gzip();
        let decoded: ByteReader = if gzip {
            let mut decoder = GzipDecoder::new(BufReader::new(body));
            decoder.multiple_members(true);
            Box::new(decoder)
        } else {
            body
        };
        let guard = Guard {
            inner: decoded,
            limits: file.limits,
            csv: file.is_csv(),
            in_quotes: false,
            total: at.consumed,
            row_bytes: 0,
            line: at.line,
            row_line: at.line + 1,
        };
        FileReader {
            source: Source {
                reader: BufReader::new(guard),
                at,
                buf: Vec::new(),
                csv: file.is_csv().then(|| Csv {
                    parser: csv_core::Reader::new(),
                    fields: Vec::new(),
                    ends: Vec::new(),
                }),
                header: Vec::new(),
            },
            rows,
            gzip,
            read,
            max_rows: file.limits.max_rows,
        }
    }

    /// Reads and checks a CSV's header row.
    async fn read_header(&mut self) -> Result<(), FileError> {
        let no_header = || {
            FileError::Refused("line 1: no header row (the first line names the columns)".into())
        };
        let source = &mut self.source;
        let start = next_record(
            &mut source.reader,
            &mut source.buf,
            &mut source.at,
            self.gzip,
        )
        .await?
        .ok_or_else(no_header)?;
        let Some(csv) = source.csv.as_mut() else {
            return Ok(());
        };
        if start != 1 {
            return Err(no_header());
        }
        let header: Vec<String> = csv
            .split(&source.buf)
            .ok_or_else(|| FileError::Refused("line 1: not UTF-8".into()))?
            .into_iter()
            .map(str::to_string)
            .collect();
        let names: Vec<&str> = header.iter().map(String::as_str).collect();
        (self.rows.columns)(&names).map_err(|why| FileError::Refused(format!("line 1: {why}")))?;
        source.header = header;
        Ok(())
    }

    /// The next row; `None` at the end of the file.
    pub async fn next(&mut self) -> Result<Option<ReadRow>, FileError> {
        let source = &mut self.source;
        let row = match &mut source.csv {
            Some(csv) => {
                let Some(line) = next_record(
                    &mut source.reader,
                    &mut source.buf,
                    &mut source.at,
                    self.gzip,
                )
                .await?
                else {
                    return Ok(None);
                };
                let columns = source.header.len();
                let fields = csv
                    .split(&source.buf)
                    .ok_or_else(|| FileError::Refused(format!("line {line}: not UTF-8")))?;
                let item = if fields.len() > columns {
                    Err(format!("{} values for {columns} columns", fields.len()))
                } else {
                    (self.rows.item)(&Row::Csv {
                        header: &source.header,
                        fields: &fields,
                    })
                };
                ReadRow { line, item }
            }
            None => loop {
                let (reader, buf) = (&mut source.reader, &mut source.buf);
                buf.clear();
                let n = reader
                    .read_until(b'\n', buf)
                    .await
                    .map_err(|e| io_error(e, self.gzip))?;
                if n == 0 {
                    return Ok(None);
                }
                source.at.line += 1;
                source.at.consumed += n as u64;
                let line = source.at.line;
                let text = std::str::from_utf8(buf)
                    .map_err(|_| FileError::Refused(format!("line {line}: not UTF-8")))?;
                if text.trim().is_empty() {
                    continue;
                }
                let item = match serde_json::from_str::<serde_json::Map<String, Value>>(text) {
                    Err(_) => Err("not a JSON object".to_string()),
                    Ok(object) => {
                        let names: Vec<&str> = object.keys().map(String::as_str).collect();
                        (self.rows.columns)(&names)
                            .and_then(|()| (self.rows.item)(&Row::Json(&object)))
                    }
                };
                break ReadRow { line, item };
            },
        };
        self.read += 1;
        if self.read > self.max_rows {
            return Err(FileError::Refused(format!(
                "line {}: the file holds more than {} rows",
                row.line, self.max_rows
            )));
        }
        Ok(Some(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::file::{BULK_MESSAGE_ROWS, PROFILE_ROWS};
    use std::io::Write;

    fn file(content_type: &str, gzip: bool) -> JobFile {
        JobFile {
            key: "uploads/t/U".into(),
            content_type: content_type.into(),
            content_encoding: gzip.then(|| "gzip".to_string()),
            bytes: 1,
            limits: FileLimits::default(),
            retry: None,
        }
    }

    async fn read_all(
        bytes: Vec<u8>,
        file: &JobFile,
        rows: &'static FileRows,
    ) -> Result<Vec<(u64, Result<Value, String>)>, String> {
        let mut reader = FileReader::open(Box::new(io::Cursor::new(bytes)), file, rows)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let mut out = Vec::new();
        while let Some(row) = reader.next().await.map_err(|e| format!("{e:?}"))? {
            out.push((row.line, row.item));
        }
        Ok(out)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[tokio::test]
    async fn csv_rows_carry_their_line_and_bad_rows_say_why() {
        let csv = "email,first_name\r\na@example.com,Ann\r\nnot-an-email,Bob\r\n\"c@example.com\",\"Multi\nline\"\r\n,Dee\r\nd@example.com,x,extra\r\n";
        let rows = read_all(csv.into(), &file("text/csv", false), &BULK_MESSAGE_ROWS)
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (
                    2,
                    Ok(
                        serde_json::json!({"email": "a@example.com", "fields": {"first_name": "Ann"}})
                    )
                ),
                (3, Err("email is not an email address".into())),
                (
                    4,
                    Ok(
                        serde_json::json!({"email": "c@example.com", "fields": {"first_name": "Multi\nline"}})
                    )
                ),
                (6, Err("no email".into())),
                (7, Err("3 values for 2 columns".into())),
            ]
        );
        let gz = read_all(
            gzip(csv.as_bytes()),
            &file("text/csv", true),
            &BULK_MESSAGE_ROWS,
        )
        .await
        .unwrap();
        assert_eq!(gz, rows);
    }

    #[tokio::test]
    async fn files_that_are_not_what_they_say_are_refused_with_the_line() {
        let refused = |r: Result<Vec<_>, String>| r.expect_err("refused");
        let csv = file("text/csv", false);
        assert!(
            refused(read_all(b"".to_vec(), &csv, &PROFILE_ROWS).await)
                .contains("line 1: no header")
        );
        assert!(
            refused(read_all(b"u1\nu2\n".to_vec(), &csv, &PROFILE_ROWS).await)
                .contains("line 1: no user_id column")
        );
        assert!(
            refused(read_all(b"user_id,colour\nu1,red\n".to_vec(), &csv, &PROFILE_ROWS).await)
                .contains("unknown column \\\"colour\\\"")
        );
        let latin1 = b"user_id\nu1\nJos\xe9\n".to_vec();
        assert!(refused(read_all(latin1, &csv, &PROFILE_ROWS).await).contains("line 3: not UTF-8"));
        assert!(
            refused(
                read_all(
                    b"user_id\nu1\n".to_vec(),
                    &file("text/csv", true),
                    &PROFILE_ROWS
                )
                .await
            )
            .contains("not valid gzip")
        );
        let long = format!(
            "user_id\nu1\n\"{}\"\n",
            "x\n".repeat(crate::domain::file::MAX_ROW_BYTES)
        );
        let why = refused(read_all(long.into(), &csv, &PROFILE_ROWS).await);
        assert!(why.contains("line 3: a row over 65536 bytes"), "{why}");
    }

    #[tokio::test]
    async fn the_job_s_own_limits_refuse_rows_sizes_and_counts_past_them() {
        let refused = |r: Result<Vec<_>, String>| r.expect_err("refused");
        let limited = |limits: FileLimits| JobFile {
            limits,
            ..file("text/csv", false)
        };
        let small = FileLimits {
            max_rows: 2,
            max_row_bytes: 8,
            max_decompressed_bytes: 40,
            ..FileLimits::default()
        };
        assert_eq!(
            read_all(
                b"user_id\nu1\nu2\n".to_vec(),
                &limited(small),
                &PROFILE_ROWS
            )
            .await
            .map(|rows| rows.len()),
            Ok(2),
            "at the limits"
        );
        let why = refused(
            read_all(
                b"user_id\nu1\nu2\nu3\n".to_vec(),
                &limited(small),
                &PROFILE_ROWS,
            )
            .await,
        );
        assert!(
            why.contains("line 4: the file holds more than 2 rows"),
            "{why}"
        );
        let why = refused(
            read_all(
                b"user_id\nu-1234567\n".to_vec(),
                &limited(small),
                &PROFILE_ROWS,
            )
            .await,
        );
        assert!(why.contains("line 2: a row over 8 bytes"), "{why}");
        let padded = format!("user_id\nu1\nu2\n{}", "\n".repeat(30));
        let why = refused(read_all(padded.into_bytes(), &limited(small), &PROFILE_ROWS).await);
        assert!(
            why.contains("more than 40 bytes once decompressed"),
            "{why}"
        );
    }

    #[test]
    fn limits_come_from_the_environment_within_their_ranges() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            FileLimits::from_vars(vars(&[])).unwrap(),
            FileLimits::default()
        );
        assert_eq!(
            FileLimits::from_vars(vars(&[
                ("FILE_MAX_ROWS", "500"),
                ("FILE_MAX_ROW_BYTES", "131072")
            ]))
            .unwrap(),
            FileLimits {
                max_rows: 500,
                max_row_bytes: 131_072,
                ..FileLimits::default()
            }
        );
        for (name, value) in [
            ("FILE_MAX_ROW_BYTES", "2097152"),
            ("FILE_MAX_ROWS", "0"),
            ("FILE_MAX_BYTES", "6000000000"),
            ("FILE_MAX_DECOMPRESSED_BYTES", "lots"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([(name, value)]));
            let err = FileLimits::from_vars(vars(pairs)).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
    }

    #[tokio::test]
    async fn a_reader_resumes_where_it_stopped_in_plain_and_gzip_files() {
        let csv = "email\r\na@example.com\r\n\r\n\"b@example.com\"\r\nnope\r\nc@example.com\r\n";
        for gzipped in [false, true] {
            let file = file("text/csv", gzipped);
            let bytes = if gzipped {
                gzip(csv.as_bytes())
            } else {
                csv.as_bytes().to_vec()
            };
            let all = read_all(bytes.clone(), &file, &BULK_MESSAGE_ROWS)
                .await
                .unwrap();
            let mut first = FileReader::open(
                Box::new(io::Cursor::new(bytes.clone())),
                &file,
                &BULK_MESSAGE_ROWS,
            )
            .await
            .unwrap();
            first.next().await.unwrap().unwrap();
            first.next().await.unwrap().unwrap();
            let (at, header) = (first.position(), first.header().to_vec());
            let body = if gzipped {
                bytes
            } else {
                bytes[at.consumed as usize..].to_vec()
            };
            let mut rest = FileReader::resume(
                Box::new(io::Cursor::new(body)),
                &file,
                &BULK_MESSAGE_ROWS,
                at,
                2,
                header,
            )
            .await
            .unwrap();
            let mut tail = Vec::new();
            while let Some(row) = rest.next().await.unwrap() {
                tail.push((row.line, row.item));
            }
            assert_eq!(tail, all[2..], "gzip: {gzipped}");
            assert_eq!(tail[0].0, 5, "lines count from the file's start");
        }
    }

    #[tokio::test]
    async fn json_lines_are_objects_of_string_columns() {
        let ndjson = "{\"user_id\":\"u1\"}\n\n{\"user_id\":7}\n[1]\n{\"user_id\":\"u2\",\"x\":\"y\"}\n{\"user_id\":\"u3\"}";
        let rows = read_all(
            ndjson.into(),
            &file("application/x-ndjson", false),
            &PROFILE_ROWS,
        )
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, Ok(Value::from("u1"))),
                (3, Err("user_id must be a string".into())),
                (4, Err("not a JSON object".into())),
                (
                    5,
                    Err(
                        "unknown column \"x\": the columns are user_id (and optionally value)"
                            .into()
                    )
                ),
                (6, Ok(Value::from("u3"))),
            ]
        );
    }
}
