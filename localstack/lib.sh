# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared by start.sh, stop.sh and test.sh (sourced, not run).
# Callers set -euo pipefail and define LS_DIR (this folder).

RUN_DIR="$LS_DIR/.run"  # all local state; git-ignored
PID_FILE="$RUN_DIR/localstack.pid"
LOG_FILE="$RUN_DIR/localstack.log"
MODE_FILE="$RUN_DIR/mode"
VENV="$RUN_DIR/venv"
ENDPOINT="http://127.0.0.1:4566"
COMPOSE_FILE="$LS_DIR/docker-compose.yml"

say() { printf '[localstack] %s\n' "$*"; }
die() { printf '[localstack] ERROR: %s\n' "$*" >&2; exit 1; }

# Export the settings shared with docker-compose.yml.
load_env() {
    set -a
    # shellcheck source=localstack.env
    . "$LS_DIR/localstack.env"
    set +a
}

# Milliseconds since the epoch, for timings.
now_ms() { date +%s%3N; }
seconds_since() {
    local elapsed=$(($(now_ms) - $1))
    printf '%d.%d s' $((elapsed / 1000)) $((elapsed % 1000 / 100))
}

# True when every service in $SERVICES is "available" or "running" on the health endpoint.
# Uses the system python3 (stdlib only): present on every machine this runs on, unlike curl.
healthy() {
    python3 - "$ENDPOINT/_localstack/health" "$SERVICES" <<'PY' 2>/dev/null
import json, sys, urllib.request
url, wanted = sys.argv[1], [s for s in sys.argv[2].split(",") if s]
try:
    with urllib.request.urlopen(url, timeout=2) as response:
        services = json.load(response).get("services", {})
except Exception:
    sys.exit(1)
missing = [s for s in wanted if services.get(s) not in ("available", "running")]
sys.exit(1 if missing else 0)
PY
}

# docker compose v2, or the old docker-compose binary.
compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose -f "$COMPOSE_FILE" "$@"
    elif command -v docker-compose >/dev/null 2>&1; then
        docker-compose -f "$COMPOSE_FILE" "$@"
    else
        die "Docker is running but neither 'docker compose' nor 'docker-compose' is installed"
    fi
}

# The PID in $PID_FILE if that process is alive and still LocalStack; empty otherwise.
# (A stale PID may belong to an unrelated process by now: never signal that one.)
recorded_pid() {
    [ -f "$PID_FILE" ] || return 0
    local pid
    pid=$(cat "$PID_FILE")
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] \
        && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'localstack.runtime.main'; then
        echo "$pid"
    fi
}
