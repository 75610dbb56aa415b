#!/usr/bin/env bash
# `make aws-build`: what `sam build` makes for AWS, built here. SAM's
# `BuildMethod: rust-cargolambda` (a beta feature: --beta-features) runs
# `cargo lambda build --release` in each function's crate, so the functions get Cargo.toml's
# `release` profile (opt-level z, fat LTO, one codegen unit), in the workspace's target folder
# (or $CARGO_TARGET_DIR), linked by zig against an old glibc. cargo-lambda and zig come from
# the venv of infra/aws-venv.sh, put first on PATH for the build. The functions land in
# .aws-sam/build/<Function>/bootstrap, with the template SAM rewrote beside them
# (.aws-sam/build/template.yaml: what `sam deploy` takes); then this prints each bootstrap's
# size, the size of the zip `sam deploy` would upload, and the newest glibc symbol it needs.
#
# ARCH=x86_64 (default) or ARCH=arm64 (the template's Architecture parameter). arm64 needs
# Rust's aarch64 standard library: `rustup target add aarch64-unknown-linux-gnu` on a
# machine that can download it (these machines cannot, so only x86_64 builds here).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
arch="${ARCH:-x86_64}"
case "$arch" in
  x86_64) triple=x86_64-unknown-linux-gnu ;;
  arm64) triple=aarch64-unknown-linux-gnu ;;
  *) echo "ARCH must be x86_64 or arm64, not $arch" >&2; exit 2 ;;
esac
if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
  echo "Architecture=$arch needs Rust's $triple standard library: rustup target add $triple" >&2
  exit 1
fi

bin="$(bash infra/aws-venv.sh)"
export PATH="$bin:$PATH"
export SAM_CLI_TELEMETRY=0

started=$(date +%s)
sam build --beta-features --template-file template.yaml --build-dir .aws-sam/build \
  --parameter-overrides "Architecture=$arch"
elapsed=$(( $(date +%s) - started ))

# Zipped the way `sam package` / `sam deploy` zips a function's code for Lambda.
rm -rf .aws-sam/zips && mkdir -p .aws-sam/zips
mib() { awk -v b="$1" 'BEGIN { printf "%d (%.2f MiB)", b, b / 1048576 }'; }
printf '\n%-26s %-24s %-24s %s\n' function bootstrap zip glibc
for dir in .aws-sam/build/*/; do
  fn="$(basename "$dir")"
  [ -f "$dir/bootstrap" ] || continue
  "$bin/python" -c 'import sys; from samcli.lib.package.utils import make_zip_with_lambda_permissions as z; z(sys.argv[1], sys.argv[2])' \
    ".aws-sam/zips/$fn" "$dir"
  glibc="$(objdump -T "$dir/bootstrap" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1 || true)"
  printf '%-26s %-24s %-24s %s\n' "$fn" "$(mib "$(stat -c %s "$dir/bootstrap")")" "$(mib "$(stat -c %s ".aws-sam/zips/$fn.zip")")" "${glibc:-none}"
done
echo "sam build (Architecture=$arch, cargo profile release) took ${elapsed} s; sizes in bytes; zips in .aws-sam/zips"
