//! Jobs whose items come from an uploaded file ([`crate::domain::file`]): the plan reads the
//! file once, as a stream, and writes the item list in segments with a chunk index; the
//! items of chunk `n` are then two ranged reads, whatever the file's size.

use serde_json::Value;

use super::Worker;
use crate::domain::chunk::{ChunkCutter, MAX_CHUNK_BYTES};
use crate::domain::file::{
    ChunkStart, INDEX_ENTRY_BYTES, JobFile, ReadError, chunk_bounds, index_key, invalid_item,
    read_chunk, segment_key,
};
use crate::domain::record::JobRecord;
use crate::ports::{InputStore, WorkerPorts};
use crate::worker::file_reader::{FileError, FileReader};
use crate::worker::{Processor, WorkError};

/// A file job's item list, as its plan wrote it.
pub(super) struct FilePlan {
    pub(super) total: u64,
    pub(super) chunks: u64,
}

impl<P: Processor, W: WorkerPorts> Worker<P, W> {
    /// Writes the item list of `job` from its `file`; `Ok(Err(reason))` when the file is
    /// refused (the job then fails with that reason, and nothing of it runs). A plan
    /// delivered again after the job began reads the index's closing entry instead; before
    /// that, writing again writes the same bytes.
    pub(super) async fn plan_file(
        &self,
        job: &JobRecord,
        file: &JobFile,
    ) -> Result<Result<FilePlan, String>, WorkError> {
        let index = index_key(&job.input_key);
        if let Some(chunks) = job.chunks_total {
            // Begun: the index is written; its closing entry holds the total.
            let at = chunks.saturating_mul(INDEX_ENTRY_BYTES);
            let bytes = self
                .inputs
                .get_range(&index, at, Some(at + INDEX_ENTRY_BYTES))
                .await?
                .unwrap_or_default();
            if let [closing] = ChunkStart::decode_all(&bytes)[..] {
                return Ok(Ok(FilePlan {
                    total: closing.position,
                    chunks,
                }));
            }
        }
        let Some(body) = self.inputs.open(&file.key).await? else {
            return Ok(Err("the uploaded file is gone".into()));
        };
        let mut reader = match FileReader::open(body, file, P::JOB_TYPE.spec().file).await {
            Ok(reader) => reader,
            Err(err) => return refused(err),
        };
        let mut cutter = ChunkCutter::new(self.settings.chunk_size, MAX_CHUNK_BYTES);
        let mut entries = Vec::new();
        let mut segment = Vec::with_capacity(self.settings.segment_bytes + MAX_CHUNK_BYTES);
        let mut number = 0u32;
        let (mut total, mut chunks) = (0u64, 0u64);
        loop {
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
                if segment.len() >= self.settings.segment_bytes {
                    self.inputs
                        .put(
                            &segment_key(&job.input_key, number),
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
            return Ok(Err("the file holds no rows".into()));
        }
        self.inputs
            .put(&segment_key(&job.input_key, number), segment)
            .await?;
        ChunkStart {
            position: total,
            segment: number + 1,
            offset: 0,
        }
        .encode(&mut entries);
        self.inputs.put(&index, entries).await?;
        tracing::info!(total, chunks, segments = number + 1, "file read");
        Ok(Ok(FilePlan { total, chunks }))
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

fn refused(err: FileError) -> Result<Result<FilePlan, String>, WorkError> {
    match err {
        FileError::Refused(reason) => Ok(Err(reason)),
        FileError::Io(err) => Err(WorkError::Transient(format!("reading the file: {err}"))),
    }
}
