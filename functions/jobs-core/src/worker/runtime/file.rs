//! Jobs whose items come from an uploaded file ([`crate::domain::file`]): the plan reads the
//! file once, as a stream, and writes the item list in segments with a chunk index; the
//! items of chunk `n` are then two ranged reads, whatever the file's size.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Worker;
use crate::domain::chunk::{ChunkCutter, MAX_CHUNK_BYTES};
use crate::domain::file::{
    ChunkStart, FileRows, JobFile, ReadError, chunk_bounds, index_key, invalid_item, read_chunk,
    segment_key,
};
use crate::domain::record::JobRecord;
use crate::ports::{InputStore, WorkerPorts};
use crate::worker::file_reader::{FileError, FileReader, Position};

/// Time kept back from the invocation's deadline by a plan reading a file: enough to write
/// a segment (8 MiB), the index so far and the checkpoint, and to send the next message.
const PLAN_MARGIN: Duration = Duration::from_secs(8);
use crate::worker::{Processor, WorkError};

/// A file job's item list, as its plan wrote it ([`write_item_list`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemList {
    /// Items (rows), valid or not.
    pub total: u64,
    pub chunks: u64,
    /// Segments written (`PutObject`s besides the index).
    pub segments: u32,
}

/// Where a plan that could not read its whole file in one invocation stopped, stored
/// beside the item list (`…items/plan.json`, with the index so far in
/// `…items/index.partial`): the next row's position, the counts so far, the next segment
/// number and the CSV header. `done` once the index is complete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub at: Position,
    pub total: u64,
    pub chunks: u64,
    pub segment: u32,
    #[serde(default)]
    pub header: Vec<String>,
    #[serde(default)]
    pub done: bool,
}

/// What one run of [`write_item_list`] ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// The item list is complete.
    Done(ItemList),
    /// The file is not what it says: the job fails with this reason.
    Refused(String),
    /// `stop_at` came first: the plan continues from this checkpoint (stored).
    Paused(Checkpoint),
}

fn checkpoint_key(input_key: &str) -> String {
    format!("{}.items/plan.json", input_key.trim_end_matches(".json"))
}

fn partial_index_key(input_key: &str) -> String {
    format!(
        "{}.items/index.partial",
        input_key.trim_end_matches(".json")
    )
}

/// Reads `file` (a stream: one `GetObject`) as rows of `rows` and writes its item list
/// beside `input_key`: segments of about `segment_bytes`, then the chunk index
/// ([`crate::domain::file`]); chunks hold at most `chunk_size` items. Past `stop_at` it
/// stops at the next chunk boundary, writes what it has and a [`Checkpoint`], and the next
/// run continues from there (a gzip file is decoded again from its start, and the bytes
/// before the checkpoint dropped). Memory: one segment, the index (16 bytes per chunk) and
/// one row, whatever the file's size. Runs from the same checkpoint write the same bytes
/// up to where they stop; the caller lets one run at a time ([`crate::ports::ProgressStore::lease_plan`]).
pub async fn write_item_list<I: InputStore>(
    inputs: &I,
    file: &JobFile,
    rows: &'static FileRows,
    input_key: &str,
    chunk_size: usize,
    segment_bytes: usize,
    stop_at: Option<Instant>,
) -> Result<Planned, WorkError> {
    let index = index_key(input_key);
    let saved: Option<Checkpoint> = match inputs.get(&checkpoint_key(input_key)).await? {
        Some(bytes) => Some(
            serde_json::from_slice(&bytes)
                .map_err(|e| WorkError::Rejected(format!("unreadable plan checkpoint: {e}")))?,
        ),
        None => None,
    };
    if let Some(done) = saved.as_ref().filter(|c| c.done) {
        return Ok(Planned::Done(ItemList {
            total: done.total,
            chunks: done.chunks,
            segments: done.segment,
        }));
    }
    let from = saved.clone().unwrap_or_default();
    let mut entries = match &saved {
        Some(_) => inputs
            .get(&partial_index_key(input_key))
            .await?
            .ok_or_else(|| WorkError::Transient("the plan's partial index is missing".into()))?,
        None => Vec::new(),
    };
    let start = if saved.is_some() && !file.is_gzip() {
        from.at.consumed
    } else {
        0
    };
    let Some(body) = inputs.open(&file.key, start).await? else {
        return Ok(Planned::Refused("the uploaded file is gone".into()));
    };
    let opened = match &saved {
        Some(c) => FileReader::resume(body, file, rows, c.at, c.total, c.header.clone()).await,
        None => FileReader::open(body, file, rows).await,
    };
    let mut reader = match opened {
        Ok(reader) => reader,
        Err(err) => return refused(err),
    };
    let mut cutter = ChunkCutter::new(chunk_size, MAX_CHUNK_BYTES);
    let mut segment = Vec::with_capacity(segment_bytes + MAX_CHUNK_BYTES);
    let mut number = from.segment;
    let (mut total, mut chunks) = (from.total, from.chunks);
    loop {
        let before = reader.position();
        let row = match reader.next().await {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(err) => return refused(err),
        };
        let item = row
            .item
            .unwrap_or_else(|reason| invalid_item(row.line, &reason));
        let line = serde_json::to_vec(&item).map_err(|e| WorkError::Rejected(e.to_string()))?;
        if cutter.starts_chunk(line.len()) {
            // Each run writes at least one chunk, so a run always moves the plan on.
            if chunks > from.chunks && stop_at.is_some_and(|at| Instant::now() >= at) {
                if !segment.is_empty() {
                    inputs.put(&segment_key(input_key, number), segment).await?;
                    number += 1;
                }
                let checkpoint = Checkpoint {
                    at: before,
                    total,
                    chunks,
                    segment: number,
                    header: reader.header().to_vec(),
                    done: false,
                };
                save(inputs, input_key, entries, &checkpoint).await?;
                tracing::info!(total, chunks, "plan paused at a chunk boundary");
                return Ok(Planned::Paused(checkpoint));
            }
            if segment.len() >= segment_bytes {
                inputs
                    .put(
                        &segment_key(input_key, number),
                        std::mem::take(&mut segment),
                    )
                    .await?;
                number += 1;
            }
            ChunkStart {
                position: total,
                segment: number,
                offset: u32::try_from(segment.len()).unwrap_or(u32::MAX),
            }
            .encode(&mut entries);
            chunks += 1;
        }
        segment.extend_from_slice(&line);
        segment.push(b'\n');
        total += 1;
    }
    if total == 0 {
        return Ok(Planned::Refused("the file holds no rows".into()));
    }
    if !segment.is_empty() {
        inputs.put(&segment_key(input_key, number), segment).await?;
        number += 1;
    }
    ChunkStart {
        position: total,
        segment: number,
        offset: 0,
    }
    .encode(&mut entries);
    inputs.put(&index, entries).await?;
    if saved.is_some() {
        let done = Checkpoint {
            total,
            chunks,
            segment: number,
            done: true,
            ..Checkpoint::default()
        };
        let bytes = serde_json::to_vec(&done).map_err(|e| WorkError::Rejected(e.to_string()))?;
        inputs.put(&checkpoint_key(input_key), bytes).await?;
    }
    tracing::info!(total, chunks, segments = number, "file read");
    Ok(Planned::Done(ItemList {
        total,
        chunks,
        segments: number,
    }))
}

/// Stores a paused plan's index so far, then its checkpoint (the checkpoint names only
/// what is written).
async fn save<I: InputStore>(
    inputs: &I,
    input_key: &str,
    entries: Vec<u8>,
    checkpoint: &Checkpoint,
) -> Result<(), WorkError> {
    inputs.put(&partial_index_key(input_key), entries).await?;
    let bytes = serde_json::to_vec(checkpoint).map_err(|e| WorkError::Rejected(e.to_string()))?;
    inputs.put(&checkpoint_key(input_key), bytes).await?;
    Ok(())
}

impl<P: Processor, W: WorkerPorts> Worker<P, W> {
    /// Writes the item list of `job` from its `file` ([`write_item_list`]), stopping
    /// `DEADLINE_MARGIN` before `deadline`. A plan delivered again after the job began reads
    /// the index's closing entry instead.
    pub(super) async fn plan_file(
        &self,
        job: &JobRecord,
        file: &JobFile,
        deadline: Option<Instant>,
    ) -> Result<Planned, WorkError> {
        // Begun: the index is written; the entry after the last chunk's holds the total.
        if let Some(chunks) = job.chunks_total.filter(|n| *n > 0)
            && let Some((_, closing)) =
                chunk_bounds(&self.inputs, &job.input_key, chunks - 1).await?
        {
            return Ok(Planned::Done(ItemList {
                total: closing.position,
                chunks,
                segments: closing.segment,
            }));
        }
        write_item_list(
            &self.inputs,
            file,
            P::JOB_TYPE.spec().file,
            &job.input_key,
            self.settings.chunk_size,
            self.settings.segment_bytes,
            deadline.map(|d| d.checked_sub(PLAN_MARGIN).unwrap_or(d)),
        )
        .await
    }

    /// The items of chunk `n` of a file job: its index entry and the next one (where it
    /// ends), then its bytes of one segment. `None` when the index has no chunk `n`.
    pub(super) async fn file_chunk(
        &self,
        job: &JobRecord,
        n: u64,
    ) -> Result<Option<Vec<Value>>, WorkError> {
        let missing = || WorkError::Rejected("the job's item list is missing".into());
        let Some((from, to)) = chunk_bounds(&self.inputs, &job.input_key, n).await? else {
            return Ok(None);
        };
        read_chunk(&self.inputs, &job.input_key, from, to)
            .await?
            .ok_or_else(missing)
            .map(Some)
    }
}

impl From<ReadError> for WorkError {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::Store(err) => err.into(),
            ReadError::Unreadable(_) => WorkError::Rejected(err.to_string()),
        }
    }
}

fn refused(err: FileError) -> Result<Planned, WorkError> {
    match err {
        FileError::Refused(reason) => Ok(Planned::Refused(reason)),
        FileError::Io(err) => Err(WorkError::Transient(format!("reading the file: {err}"))),
    }
}
