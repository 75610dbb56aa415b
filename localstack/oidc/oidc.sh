#!/usr/bin/env bash
# The local OpenID Connect provider (server.mjs) for development and tests.
#
#   oidc.sh start      installs its npm packages if missing, starts it (idempotent), waits
#                      until its discovery document answers, prints the issuer and demo users
#   oidc.sh stop
#   oidc.sh restart    (new signing keys or redirect URIs are read at start)
#   oidc.sh register URL   makes URL (the Jobs page) a redirect URI; restarts if it is new
#
# State in localstack/.run/oidc (git-ignored): keys.json, redirect-uris.json, pid, log.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN="${OIDC_RUN_DIR:-$HERE/../.run/oidc}"
PORT="${OIDC_PORT:-4580}"
ISSUER="http://127.0.0.1:$PORT"
export OIDC_RUN_DIR="$RUN" OIDC_PORT="$PORT"
mkdir -p "$RUN"
say() { echo "[oidc] $*"; }

healthy() { curl -sf -o /dev/null --max-time 2 "$ISSUER/.well-known/openid-configuration"; }

running() { [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; }

start() {
    if running && healthy; then say "already running: $ISSUER"; return; fi
    if [ ! -d "$HERE/node_modules/oidc-provider" ]; then
        say "installing oidc-provider (npm ci)"
        (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    local started=$SECONDS
    nohup node "$HERE/server.mjs" >>"$RUN/log" 2>&1 &
    echo $! >"$RUN/pid"
    for _ in $(seq 1 60); do
        if healthy; then
            say "issuer $ISSUER (start: $((SECONDS - started)) s, log $RUN/log)"
            say "demo users (password: <name>-demo): vera@acme viewer, oscar@acme operator, tara@acme tenant_admin,"
            say "  gwen@globex viewer, otto@globex operator, tom@globex tenant_admin, pat platform_admin"
            return
        fi
        running || break
        sleep 0.5
    done
    say "did not start; last log lines:"; tail -20 "$RUN/log" >&2; exit 1
}

stop() {
    if running; then kill "$(cat "$RUN/pid")"; fi
    rm -f "$RUN/pid"
    for _ in $(seq 1 20); do healthy || return 0; sleep 0.25; done
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    register)
        url="${2:?usage: oidc.sh register URL}"
        file="$RUN/redirect-uris.json"
        if [ -f "$file" ] && node -e 'process.exit(JSON.parse(require("fs").readFileSync(process.argv[1])).includes(process.argv[2]) ? 0 : 1)' "$file" "$url"; then
            say "redirect URI already registered: $url"; start
        else
            node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify([process.argv[2]]))' "$file" "$url"
            say "redirect URI $url"; stop; start
        fi ;;
    *) echo "usage: oidc.sh start|stop|restart|register URL" >&2; exit 2 ;;
esac
