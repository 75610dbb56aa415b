//! Splitting a job's items into chunk messages: deterministic (the same items always give
//! the same numbered chunks) and bounded by count and by bytes, so that no chunk message
//! can exceed SQS's 256 KiB whatever the items hold.

use serde::Serialize;
use serde_json::Value;

/// Room for a chunk's items; the envelope (job id, tenant, number) is well under 16 KiB.
pub const MAX_CHUNK_BYTES: usize = 200 * 1024;

/// Where chunks end, as items arrive one at a time: a chunk holds at most `max_items`
/// items and `max_bytes` of JSON (each item's length plus one); an item larger than
/// `max_bytes` gets a chunk of its own. The one rule for inline items and for files.
#[derive(Debug)]
pub struct ChunkCutter {
    max_items: usize,
    max_bytes: usize,
    items: usize,
    bytes: usize,
}

impl ChunkCutter {
    pub fn new(max_items: usize, max_bytes: usize) -> ChunkCutter {
        ChunkCutter {
            max_items: max_items.max(1),
            max_bytes,
            items: 0,
            bytes: 0,
        }
    }

    /// Takes an item of `json_len` bytes; true when it starts a new chunk (the first item
    /// always does).
    pub fn starts_chunk(&mut self, json_len: usize) -> bool {
        let size = json_len + 1;
        let fits =
            self.items > 0 && self.items < self.max_items && self.bytes + size <= self.max_bytes;
        if !fits {
            self.items = 0;
            self.bytes = 0;
        }
        self.items += 1;
        self.bytes += size;
        !fits
    }
}

/// Groups items into chunks with [`ChunkCutter`]'s rule.
pub fn chunk_items<T: Serialize>(
    items: &[T],
    max_items: usize,
    max_bytes: usize,
) -> Result<Vec<Vec<Value>>, serde_json::Error> {
    let mut chunks: Vec<Vec<Value>> = Vec::new();
    let mut cutter = ChunkCutter::new(max_items, max_bytes);
    for item in items {
        let value = serde_json::to_value(item)?;
        if cutter.starts_chunk(serde_json::to_vec(&value)?.len()) {
            chunks.push(Vec::new());
        }
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(value);
        }
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_by_count_then_by_bytes_deterministically() {
        let items: Vec<u32> = (0..125).collect();
        let chunks = chunk_items(&items, 50, MAX_CHUNK_BYTES).unwrap();
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![50, 50, 25]
        );
        assert_eq!(chunks, chunk_items(&items, 50, MAX_CHUNK_BYTES).unwrap());

        let texts: Vec<String> = (0..5).map(|_| "é".repeat(40_000)).collect(); // 80 KB each
        let chunks = chunk_items(&texts, 16, MAX_CHUNK_BYTES).unwrap();
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        for chunk in chunks {
            assert!(serde_json::to_vec(&chunk).unwrap().len() <= MAX_CHUNK_BYTES);
        }
        assert!(chunk_items::<u8>(&[], 10, 10).unwrap().is_empty());
    }
}
