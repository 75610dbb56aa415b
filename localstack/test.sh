#!/usr/bin/env bash
# Test the host Lambda executor end to end: starts LocalStack with start.sh if it is
# not already healthy, then runs executor/tests with the venv's pytest.
# Extra arguments go to pytest (e.g. -k timeout). Exits non-zero on failure.
set -euo pipefail

LS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$LS_DIR/lib.sh"

bash "$LS_DIR/start.sh"

if [ "$(cat "$MODE_FILE" 2>/dev/null || true)" = docker ]; then
    # In Docker mode functions run in Lambda containers, not through this executor.
    say "LocalStack runs in Docker mode: the host executor tests do not apply (LOCALSTACK_MODE=host to run them)"
    exit 0
fi
[ -x "$VENV/bin/python" ] || die "no venv at $VENV; run LOCALSTACK_MODE=host localstack/start.sh first"

t0=$(now_ms)
cd "$LS_DIR/executor"
# -p no:cacheprovider: no .pytest_cache in the repo.
"$VENV/bin/python" -m pytest tests -p no:cacheprovider -q "$@"
say "tests: $(seconds_since "$t0")"
