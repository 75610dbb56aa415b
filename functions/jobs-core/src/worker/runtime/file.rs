//! Jobs whose items come from an uploaded file ([`crate::domain::file`]): the plan reads the
//! file once, as a stream, and writes the item list in segments with a chunk index; the
//! items of chunk `n` are then two ranged reads, whatever the file's size.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Worker;
use crate::domain::chunk::{ChunkCutter, MAX_CHUNK_BYTES};
use crate::domain::chunk::{Outcome, outcome_of};
use crate::domain::file::{
    ChunkStart, FileRows, JobFile, ReadError, RetriedItems, chunk_bounds, index_key, invalid_item,
    read_chunk, segment_key,
};
use crate::domain::record::JobRecord;
use crate::item_list::{FileItems, ListedChunk};
use crate::ports::{InputStore, ProgressStore, WorkerPorts};
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
    /// A retry's plan: the retried job's next item to look at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_at: Option<ItemAt>,
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
    let (saved, entries) = match earlier(inputs, input_key).await? {
        Earlier::Done(list) => return Ok(Planned::Done(list)),
        Earlier::Paused(checkpoint, entries) => (Some(checkpoint), entries),
        Earlier::None => (None, Vec::new()),
    };
    let start = match &saved {
        Some(c) if !file.is_gzip() => c.at.consumed,
        _ => 0,
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
        Err(err) => return file_error(err).map(Planned::Refused),
    };
    let list = ListWriter {
        inputs,
        input_key,
        chunk_size,
        segment_bytes,
        stop_at,
    };
    list.write(&mut reader, saved, entries, "the file holds no rows")
        .await
}

/// Writes the item list of a retry of a file job ([`RetriedItems`]) beside `input_key`, as
/// [`write_item_list`] writes a file's: the retried job's items to run again, read from its
/// item list and ledger ([`FileItems`]). Memory: a segment of each list, the index, one
/// page of ledger items.
pub async fn write_retry_list<I: InputStore, S: ProgressStore>(
    inputs: &I,
    store: &S,
    retried: &RetriedItems,
    input_key: &str,
    chunk_size: usize,
    segment_bytes: usize,
    stop_at: Option<Instant>,
) -> Result<Planned, WorkError> {
    let (saved, entries) = match earlier(inputs, input_key).await? {
        Earlier::Done(list) => return Ok(Planned::Done(list)),
        Earlier::Paused(checkpoint, entries) => (Some(checkpoint), entries),
        Earlier::None => (None, Vec::new()),
    };
    let at = saved
        .as_ref()
        .and_then(|c| c.retried_at)
        .unwrap_or_default();
    let mut source = Retried {
        walk: FileItems::new(
            inputs,
            store,
            &retried.job_id,
            &retried.input_key,
            retried.chunks,
            at.chunk,
        ),
        cancelled: retried.cancelled,
        chunk: None,
        skip: at.item as usize,
        next: 0,
    };
    let list = ListWriter {
        inputs,
        input_key,
        chunk_size,
        segment_bytes,
        stop_at,
    };
    list.write(
        &mut source,
        saved,
        entries,
        "the retried job has no items to run again",
    )
    .await
}

/// What an earlier run of a plan left: nothing, a complete item list, or a checkpoint
/// with the index so far.
enum Earlier {
    None,
    Done(ItemList),
    Paused(Checkpoint, Vec<u8>),
}

async fn earlier<I: InputStore>(inputs: &I, input_key: &str) -> Result<Earlier, WorkError> {
    let Some(bytes) = inputs.get(&checkpoint_key(input_key)).await? else {
        return Ok(Earlier::None);
    };
    let saved: Checkpoint = serde_json::from_slice(&bytes)
        .map_err(|e| WorkError::Rejected(format!("unreadable plan checkpoint: {e}")))?;
    if saved.done {
        return Ok(Earlier::Done(ItemList {
            total: saved.total,
            chunks: saved.chunks,
            segments: saved.segment,
        }));
    }
    let entries = inputs
        .get(&partial_index_key(input_key))
        .await?
        .ok_or_else(|| WorkError::Transient("the plan's partial index is missing".into()))?;
    Ok(Earlier::Paused(saved, entries))
}

/// Where a plan's items come from, one at a time.
trait ItemSource {
    /// The next item; `None` after the last. `Err(Ok(reason))`: the input is refused and
    /// the job fails with `reason`; `Err(Err(_))`: reading failed (the plan is retried).
    async fn next_item(&mut self) -> Result<Option<Value>, Result<String, WorkError>>;

    /// Where the next item starts, for a checkpoint.
    fn mark(&self) -> Mark;

    /// What else a checkpoint keeps (a CSV's header).
    fn header(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where a plan's next item starts: a file's row, or an item of the retried job.
#[derive(Clone, Copy)]
enum Mark {
    Row(Position),
    Item(ItemAt),
}

/// Item `item` of chunk `chunk` of the job a retry reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemAt {
    pub chunk: u64,
    pub item: u32,
}

impl ItemSource for FileReader {
    async fn next_item(&mut self) -> Result<Option<Value>, Result<String, WorkError>> {
        match self.next().await {
            Ok(Some(row)) => Ok(Some(
                row.item
                    .unwrap_or_else(|reason| invalid_item(row.line, &reason)),
            )),
            Ok(None) => Ok(None),
            Err(err) => Err(file_error(err)),
        }
    }

    fn mark(&self) -> Mark {
        Mark::Row(self.position())
    }

    fn header(&self) -> Vec<String> {
        FileReader::header(self).to_vec()
    }
}

/// The items of a retried job to run again, in its order ([`RetriedItems`]).
struct Retried<'a, I, S> {
    walk: FileItems<'a, I, S>,
    cancelled: bool,
    /// The chunk being read, and the next of its items to look at.
    chunk: Option<ListedChunk>,
    next: usize,
    /// Items of the first chunk read that an earlier run of the plan took already.
    skip: usize,
}

impl<I: InputStore, S: ProgressStore> ItemSource for Retried<'_, I, S> {
    async fn next_item(&mut self) -> Result<Option<Value>, Result<String, WorkError>> {
        let unrun = if self.cancelled {
            Outcome::Cancelled
        } else {
            Outcome::Pending
        };
        loop {
            if let Some(chunk) = self.chunk.as_mut() {
                while self.next < chunk.items.len() {
                    let i = self.next;
                    self.next += 1;
                    let (outcome, _) = outcome_of(chunk.ledger.as_ref(), i, unrun);
                    if outcome == Outcome::Failed
                        || (self.cancelled && outcome == Outcome::Cancelled)
                    {
                        return Ok(Some(std::mem::take(&mut chunk.items[i])));
                    }
                }
            }
            match self.walk.next().await {
                Ok(Some(chunk)) => {
                    self.chunk = Some(chunk);
                    self.next = std::mem::take(&mut self.skip);
                }
                Ok(None) => return Ok(None),
                Err(ReadError::Store(e)) => return Err(Err(e.into())),
                Err(e) => return Err(Ok(format!("the retried job's items: {e}"))),
            }
        }
    }

    fn mark(&self) -> Mark {
        Mark::Item(match &self.chunk {
            Some(chunk) => ItemAt {
                chunk: chunk.n,
                item: u32::try_from(self.next).unwrap_or(u32::MAX),
            },
            None => ItemAt {
                chunk: self.walk.next_chunk(),
                item: u32::try_from(self.skip).unwrap_or(u32::MAX),
            },
        })
    }
}

/// Writes an item list beside `input_key` ([`crate::domain::file`]).
struct ListWriter<'a, I> {
    inputs: &'a I,
    input_key: &'a str,
    chunk_size: usize,
    segment_bytes: usize,
    stop_at: Option<Instant>,
}

impl<I: InputStore> ListWriter<'_, I> {
    /// Writes `source`'s items from `saved` on (with `entries`, the index so far) until
    /// the end, or until `stop_at` at a chunk boundary; `empty`: why a list of no items is
    /// refused.
    async fn write<R: ItemSource>(
        &self,
        source: &mut R,
        saved: Option<Checkpoint>,
        mut entries: Vec<u8>,
        empty: &str,
    ) -> Result<Planned, WorkError> {
        let (inputs, input_key) = (self.inputs, self.input_key);
        let from = saved.clone().unwrap_or_default();
        let mut cutter = ChunkCutter::new(self.chunk_size, MAX_CHUNK_BYTES);
        let mut segment = Vec::with_capacity(self.segment_bytes + MAX_CHUNK_BYTES);
        let mut number = from.segment;
        let (mut total, mut chunks) = (from.total, from.chunks);
        loop {
            let before = source.mark();
            let item = match source.next_item().await {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(Ok(reason)) => return Ok(Planned::Refused(reason)),
                Err(Err(err)) => return Err(err),
            };
            let line = serde_json::to_vec(&item).map_err(|e| WorkError::Rejected(e.to_string()))?;
            if cutter.starts_chunk(line.len()) {
                // Each run writes at least one chunk, so a run always moves the plan on.
                if chunks > from.chunks && self.stop_at.is_some_and(|at| Instant::now() >= at) {
                    if !segment.is_empty() {
                        inputs.put(&segment_key(input_key, number), segment).await?;
                        number += 1;
                    }
                    let mut checkpoint = Checkpoint {
                        total,
                        chunks,
                        segment: number,
                        header: source.header(),
                        ..Checkpoint::default()
                    };
                    match before {
                        Mark::Row(at) => checkpoint.at = at,
                        Mark::Item(at) => checkpoint.retried_at = Some(at),
                    }
                    save(inputs, input_key, entries, &checkpoint).await?;
                    tracing::info!(total, chunks, "plan paused at a chunk boundary");
                    return Ok(Planned::Paused(checkpoint));
                }
                if segment.len() >= self.segment_bytes {
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
            return Ok(Planned::Refused(empty.into()));
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
        inputs.put(&index_key(input_key), entries).await?;
        if saved.is_some() {
            let done = Checkpoint {
                total,
                chunks,
                segment: number,
                done: true,
                ..Checkpoint::default()
            };
            let bytes =
                serde_json::to_vec(&done).map_err(|e| WorkError::Rejected(e.to_string()))?;
            inputs.put(&checkpoint_key(input_key), bytes).await?;
        }
        tracing::info!(total, chunks, segments = number, "item list written");
        Ok(Planned::Done(ItemList {
            total,
            chunks,
            segments: number,
        }))
    }
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
        let stop_at = deadline.map(|d| d.checked_sub(PLAN_MARGIN).unwrap_or(d));
        match &file.retry {
            None => {
                write_item_list(
                    &self.inputs,
                    file,
                    P::JOB_TYPE.spec().file,
                    &job.input_key,
                    self.settings.chunk_size,
                    self.settings.segment_bytes,
                    stop_at,
                )
                .await
            }
            Some(retried) => {
                write_retry_list(
                    &self.inputs,
                    &self.store,
                    retried,
                    &job.input_key,
                    self.settings.chunk_size,
                    self.settings.segment_bytes,
                    stop_at,
                )
                .await
            }
        }
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
            ReadError::Unreadable(_) | ReadError::Expired => WorkError::Rejected(err.to_string()),
        }
    }
}

/// What a file that cannot be read means: refused (the job fails with the reason), or a
/// failed read (the plan is retried).
fn file_error(err: FileError) -> Result<String, WorkError> {
    match err {
        FileError::Refused(reason) => Ok(reason),
        FileError::Io(err) => Err(WorkError::Transient(format!("reading the file: {err}"))),
    }
}
