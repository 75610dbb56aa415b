//! Splitting a job's items into chunk messages: deterministic (the same items always give
//! the same numbered chunks) and bounded by count and by bytes, so that no chunk message
//! can exceed SQS's 256 KiB whatever the items hold.

use serde::Serialize;
use serde_json::Value;

/// Room for a chunk's items; the envelope (job id, tenant, number) is well under 16 KiB.
pub const MAX_CHUNK_BYTES: usize = 200 * 1024;

/// Groups items into chunks of at most `max_items` items and `max_bytes` of JSON. An item
/// larger than `max_bytes` gets a chunk of its own.
pub fn chunk_items<T: Serialize>(
    items: &[T],
    max_items: usize,
    max_bytes: usize,
) -> Result<Vec<Vec<Value>>, serde_json::Error> {
    let mut chunks: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let value = serde_json::to_value(item)?;
        let size = serde_json::to_vec(&value)?.len() + 1;
        let fits = chunks
            .last()
            .is_some_and(|c| c.len() < max_items.max(1) && bytes + size <= max_bytes);
        if !fits {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
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
