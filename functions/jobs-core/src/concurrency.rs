//! Bounded concurrency for the calls an operation fans out (reads of many shards or jobs,
//! a chunk's items).

use std::future::Future;

/// Runs futures at most `limit` at a time, returning their outputs in order. (Taking a
/// `Vec` keeps the closures that made them out of the stream, which `Send` inference for
/// trait futures cannot see through.)
pub async fn in_order<F: Future>(futures: Vec<F>, limit: usize) -> Vec<F::Output> {
    use futures_util::StreamExt;
    futures_util::stream::iter(futures)
        .buffered(limit.max(1))
        .collect()
        .await
}
