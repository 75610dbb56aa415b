//! Structured logs: one JSON line per event, with the span fields (request id, job id,
//! tenant) on every line. Level from `RUST_LOG` (default `info`).

pub fn init() {
    // RUST_LOG is a level (the template's LogLevel); a level filter, not EnvFilter, keeps the
    // regex engine out of every binary.
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    // A second init (e.g. in tests) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}
