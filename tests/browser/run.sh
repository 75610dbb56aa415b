#!/usr/bin/env bash
# Real-browser tests of the System → Jobs page against the deployed stack.
#
#   bash tests/browser/run.sh            # stack from JOBS_STACK (default: jobs) on LocalStack
#   JOBS_STACK=jobs-page bash tests/browser/run.sh
#   bash tests/browser/run.sh tests/list.test.mjs   # one file (paths relative to tests/browser)
#
# Installs what is missing (Debian's Chromium, node_modules from package-lock.json:
# playwright-core, and axe-core for the accessibility checks; boto3
# for the DynamoDB writes that stand in for workers), reads the stack's outputs, mints
# tokens for fresh tenants, seeds the demo jobs if the stack has none, and runs
# `node --test`. Screenshots land in tests/browser/screenshots/ (git-ignored).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
infra() { INFRA_QUIET=1 bash "$ROOT/infra/run.sh" "$@"; }
say() { echo "[browser] $*" >&2; }
started=$(date +%s)

# --- Chromium (Debian's; playwright-core never downloads a browser here) -------------------
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
# An emoji font, so that the ❌ of the page renders in screenshots.
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- playwright-core and axe-core, pinned by package-lock.json ----------------------------
if [ ! -d "$HERE/node_modules/playwright-core" ] || [ ! -f "$HERE/node_modules/axe-core/axe.min.js" ]; then
    say "npm ci"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- Python with boto3 (LocalStack's venv has it; else a small venv of our own) -----------
python="${BROWSER_TEST_PYTHON:-$ROOT/localstack/.run/venv/bin/python}"
if ! "$python" -c 'import boto3' >/dev/null 2>&1; then
    python="$ROOT/.artifacts/browser-venv/bin/python"
    if ! "$python" -c 'import boto3' >/dev/null 2>&1; then
        say "creating .artifacts/browser-venv with boto3"
        python3 -m venv "$ROOT/.artifacts/browser-venv"
        "$python" -m pip install -q "$(grep '^boto3==' localstack/requirements.txt)"
    fi
fi

# --- the stack ----------------------------------------------------------------------------
outputs="$(infra outputs --json)" || { say "stack ${JOBS_STACK:-jobs} not found: start LocalStack and deploy first (make up)"; exit 1; }
output() { node -e 'const o = JSON.parse(process.argv[1]); if (!o[process.argv[2]]) process.exit(1); console.log(o[process.argv[2]])' "$outputs" "$1"; }
page_url="$(output JobsPageUrl)"
api_url="$(output ApiUrl)"
table="$(output JobsTableName)"

# --- tokens: fresh tenants per run, so runs never see each other's jobs --------------------
run="bt$(date +%y%m%d%H%M%S)$((RANDOM % 100))"
token() { infra token --ttl 2h "$@"; }
admin="$(token --tenant acme --user alice --admin)"
lister="$(token --tenant "$run-list" --user pat)"
live="$(token --tenant "$run-live" --user lou)"
member_a="$(token --tenant "$run-a" --user ann)"
member_b="$(token --tenant "$run-b" --user ben)"
markup="$(token --tenant "$run-x" --user '<img src=x onerror=alert(1)>')"
metrics="$(token --tenant "$run-m" --user mia)"
scheduler="$(token --tenant "$run-s" --user sam)"
viewer="$(token --tenant "$run-b" --user vic --role viewer)"
markup_admin="$(token --tenant "$run-x" --user xena --role tenant_admin)"

# --- demo jobs (infra seed) unless acme already has some -----------------------------------
acme_jobs="$(curl -sf -H "Authorization: Bearer $admin" "$api_url/jobs?tenant=acme&limit=1" \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).items.length))')" \
    || { say "the API at $api_url did not answer GET jobs; is the stack deployed with this token secret?"; exit 1; }
if [ "$acme_jobs" = 0 ]; then
    say "seeding demo jobs"
    infra seed >/dev/null
fi

JOBS_BROWSER_ENV="$(node -e 'console.log(JSON.stringify({
    pageUrl: process.argv[1], apiUrl: process.argv[2], table: process.argv[3],
    endpoint: process.env.AWS_ENDPOINT_URL || "http://127.0.0.1:4566", python: process.argv[4], run: process.argv[5], stack: process.env.JOBS_STACK || "jobs",
    tenants: { list: process.argv[5] + "-list", live: process.argv[5] + "-live", a: process.argv[5] + "-a", b: process.argv[5] + "-b", x: process.argv[5] + "-x", m: process.argv[5] + "-m", s: process.argv[5] + "-s" },
    tokens: { admin: process.argv[6], lister: process.argv[7], live: process.argv[8], memberA: process.argv[9], memberB: process.argv[10], markup: process.argv[11], metrics: process.argv[12], scheduler: process.argv[13], viewerB: process.argv[14], markupAdmin: process.argv[15] },
  }))' "$page_url" "$api_url" "$table" "$python" "$run" "$admin" "$lister" "$live" "$member_a" "$member_b" "$markup" "$metrics" "$scheduler" "$viewer" "$markup_admin")"
export JOBS_BROWSER_ENV

say "page $page_url (run $run)"
cd "$HERE"
status=0
# Files run one after another: each drives its own Chromium, and two at once on a small
# machine (with LocalStack) make the timing-based assertions flaky.
if [ $# -gt 0 ]; then files=("$@"); else files=(tests/*.test.mjs); fi
node --test --test-concurrency=1 "${files[@]}" || status=$?
say "finished in $(( $(date +%s) - started )) s; screenshots in tests/browser/screenshots/"
exit $status
