#!/usr/bin/env bash
# Stop the LocalStack that start.sh started.
#
# Host mode: signals only the PID recorded in .run/localstack.pid, its process group,
# and the processes it started (Lambda functions run in process groups of their own).
# SIGTERM first (LocalStack then stops its Lambda environments and DynamoDB Local
# itself), SIGKILL after LOCALSTACK_STOP_TIMEOUT seconds (default 20).
# Docker mode: docker compose down.
set -euo pipefail

LS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$LS_DIR/lib.sh"

STOP_TIMEOUT="${LOCALSTACK_STOP_TIMEOUT:-20}"

# "pid:starttime" of every descendant of $1, read from /proc (no ps needed). The
# start time tells a process from a later one that reuses its PID.
descendants() {
    awk -v root="$1" '
        FNR == 1 {
            pid = FILENAME; gsub(/[^0-9]/, "", pid)
            rest = $0; sub(/^.*\) /, "", rest)   # drop "pid (comm) ": comm may hold spaces
            split(rest, field, " ")             # field[2] = ppid, field[20] = starttime
            parent[pid] = field[2]; started[pid] = field[20]
        }
        END {
            queue[1] = root; head = 1; tail = 1
            while (head <= tail) {
                current = queue[head++]
                for (pid in parent) if (parent[pid] == current) { queue[++tail] = pid; print pid ":" started[pid] }
            }
        }' /proc/[0-9]*/stat 2>/dev/null || true
}

start_time() {
    awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null || true
}

stop_host() {
    local pid
    pid=$(recorded_pid)
    if [ -z "$pid" ]; then
        [ -f "$PID_FILE" ] && say "recorded PID $(cat "$PID_FILE") is not running LocalStack; nothing to stop"
        rm -f "$PID_FILE"
        return
    fi
    local children
    children=$(descendants "$pid")

    say "stopping LocalStack (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(($(date +%s) + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "still running after ${STOP_TIMEOUT}s; SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi

    # Whatever LocalStack started and left behind (e.g. after SIGKILL): kill it, and
    # its process group when it leads one (Lambda bootstraps do).
    local entry child started
    for entry in $children; do
        child=${entry%%:*}
        started=${entry#*:}
        if [ -n "$started" ] && [ "$(start_time "$child")" = "$started" ]; then
            kill -KILL -- "-$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null || true
        fi
    done
    rm -f "$PID_FILE"
    say "stopped"
}

main() {
    local mode
    mode=$(cat "$MODE_FILE" 2>/dev/null || true)
    if [ -f "$PID_FILE" ] || [ "$mode" = host ]; then
        stop_host
    fi
    if [ "$mode" = docker ]; then
        if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
            say "docker compose down"
            compose down
        else
            say "mode was docker, but no Docker engine answers; nothing to stop"
        fi
    fi
    rm -f "$MODE_FILE"
}

main "$@"
