#!/usr/bin/env bash
# The AWS tooling venv (aws-sam-cli, cargo-lambda, zig: infra/aws-requirements.txt) in
# .artifacts/aws-venv, installed on first use and again whenever the requirements change.
# Prints the venv's bin folder; progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/infra/aws-requirements.txt"
venv="$root/.artifacts/aws-venv"

if ! cmp -s "$requirements" "$venv/aws-requirements.txt" || [ ! -x "$venv/bin/sam" ]; then
  echo "installing aws-sam-cli, cargo-lambda and zig into .artifacts/aws-venv (infra/aws-requirements.txt)" >&2
  started=$(date +%s)
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$requirements" >&2
  cp "$requirements" "$venv/aws-requirements.txt"
  echo "installed in $(( $(date +%s) - started )) s" >&2
fi
echo "$venv/bin"
