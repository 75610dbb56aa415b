#!/usr/bin/env bash
# Hostile-input checks against the deployed stack (`make security-test`):
#   1. schemathesis fuzzes every operation of the served /openapi.json as a tenant admin
#      signed in at the local identity provider (>= 1,000 requests; config in schemathesis.toml) and fails on any 5xx, any
#      response outside the documented statuses/schemas, or fewer requests than required;
#   2. pytest reads the deployed IAM roles and checks them against test_least_privilege.py.
#
#   bash tests/security/run.sh                # fixed seed (CI: reproducible)
#   FUZZ_SEED=random bash tests/security/run.sh   # explore: a new seed each run
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
infra() { INFRA_QUIET=1 bash "$ROOT/infra/run.sh" "$@"; }
say() { echo "[security] $*" >&2; }
started=$(date +%s)

venv="$ROOT/.artifacts/security-venv"
if ! cmp -s "$HERE/requirements.txt" "$venv/requirements.txt"; then
    say "installing $venv from tests/security/requirements.txt"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$venv/requirements.txt"
fi

outputs="$(infra outputs --json)" || { say "stack not found: start LocalStack and deploy first (make up)"; exit 1; }
export JOBS_STACK_OUTPUTS="$outputs"
api_url="$("$venv/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["ApiUrl"])' "$outputs")"
# The caller is the local identity provider's tenant admin of tenant `fuzz` (an RS256 token
# through its login form, valid 1 h), so every operation up to a tenant admin's runs.
tenant=fuzz
export JOBS_API_URL="$api_url" JOBS_FUZZ_TOKEN="$(node "$ROOT/localstack/oidc/token.mjs" --user fiona@fuzz --password fiona-demo)"

# The senders of generated bulk jobs are moved to fuzz.example.com (hooks.py): SES verifies
# its parent domain, and a platform admin assigns it to the tenant (201, or 409 when an
# earlier run did).
"$venv/bin/python" -c 'import boto3, os; boto3.client("ses", endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"), region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test").verify_domain_identity(Domain="example.com")'
assigned="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api_url/senders" \
    -H "Authorization: Bearer $(infra token --tenant ops --user fuzz-setup --admin)" \
    -H 'Content-Type: application/json' -d "{\"domain\": \"fuzz.example.com\", \"tenant\": \"$tenant\"}")"
case "$assigned" in 201|409) ;; *) say "assigning fuzz.example.com to $tenant answered $assigned"; exit 1 ;; esac

seed="${FUZZ_SEED:-20261128}"
seed_args=(--seed "$seed")
[ "$seed" = random ] && seed_args=()
reports="$ROOT/.artifacts/schemathesis"
rm -rf "$reports"
say "fuzzing $api_url as tenant admin fiona@fuzz of $tenant (seed $seed)"
cd "$HERE"
status=0
"$venv/bin/st" run "$api_url/openapi.json" "${seed_args[@]}" --no-color \
    --report ndjson --report-dir "$reports" || status=$?
requests="$("$venv/bin/python" "$HERE/count_requests.py" "$reports"/*.ndjson)"
say "schemathesis sent $requests requests (exit $status)"
if [ "$requests" -lt "${FUZZ_MIN_REQUESTS:-1000}" ]; then
    say "fewer than ${FUZZ_MIN_REQUESTS:-1000} requests: raise generation.max-examples"
    status=1
fi

"$venv/bin/python" -m pytest -q -p no:cacheprovider "$HERE/test_least_privilege.py" || status=$?
say "finished in $(( $(date +%s) - started )) s"
exit "$status"
