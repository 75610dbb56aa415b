//! Build script shared by the function binaries (and the init benchmark's hello world and
//! probe, so they are laid out alike): links the code a cold start runs first and together.
//!
//! Up to its first `/next` a function runs ~1,200-1,300 functions scattered over 4 MiB of
//! `.text`, and each 64 KiB window it touches is a page fault: 38 for the API, 4 for hello
//! world. `cold-start.ld` gathers them, by name with the per-build hash left out, into one
//! output section ahead of `.text`. The API then takes 12 text faults and starts ~0.11 ms
//! sooner (README, Performance). `make cold-start-layout` regenerates the script with
//! callgrind; a stale script only leaves new start-up code where it was.

use std::path::PathBuf;

const SCRIPT: &str = "functions/cold-start.ld";

fn main() {
    // The generator builds without it: the layout does not change what runs.
    println!("cargo::rerun-if-env-changed=COLD_START_LAYOUT");
    if std::env::var("COLD_START_LAYOUT").is_ok_and(|v| v == "off") {
        return;
    }
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let Some(script) = manifest_dir.ancestors().map(|dir| dir.join(SCRIPT)).find(|path| path.is_file()) else {
        println!("cargo::warning={SCRIPT} not found: start-up code keeps the default layout");
        return;
    };
    println!("cargo::rerun-if-changed={}", script.display());
    // Lambda runs Linux; the script is in GNU ld syntax, which lld and ld.bfd both read.
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux") {
        println!("cargo::rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
