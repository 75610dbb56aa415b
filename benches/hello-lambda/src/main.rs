//! Hello world on `lambda_runtime`: what a Rust function costs before it does anything.
//! By default it runs on the multi-thread runtime, as `#[tokio::main]` in the
//! lambda_runtime examples does; `HELLO_FLAVOR=current_thread` gives the functions' runtime,
//! for a like-for-like comparison.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

fn main() -> Result<(), Error> {
    let mut runtime = match std::env::var("HELLO_FLAVOR").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all().build()?.block_on(lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<Value, Error>(event.payload) })))
}
