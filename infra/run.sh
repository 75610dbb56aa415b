#!/usr/bin/env bash
# Runs the infra tool (build, deploy, outputs, token, seed, destroy).
#
# It first builds the whole workspace with the `local` cargo profile: one build of the
# dependencies serves the infra tool and the tests. `deploy` and `build` then build the
# functions on their own (`-p`), so jobs-core's test doubles (the `test-support` feature the
# tests enable) never reach a deployed function; only jobs-core and the function crates are
# compiled a second time. Cargo's progress shows while it builds; INFRA_QUIET=1 hides it
# (for commands whose output is parsed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quiet=()
[ "${INFRA_QUIET:-0}" = 1 ] && quiet=(-q)
"${CARGO:-cargo}" build "${quiet[@]}" --locked --workspace --profile local --manifest-path "$root/Cargo.toml"
JOBS_REPO_ROOT="$root" exec "${CARGO_TARGET_DIR:-$root/target}/local/infra" "$@"
