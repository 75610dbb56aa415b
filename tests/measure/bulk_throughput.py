#!/usr/bin/env python3
"""Measures a 10,000-recipient Bulk Message Sending job in LocalStack (host mode):
items/second from created_at to completed_at, and DynamoDB write requests per item,
counted from LocalStack's request log while nothing else runs.

    localstack/.run/venv/bin/python tests/measure/bulk_throughput.py [recipients]

Needs the stack deployed (`make up`) and LocalStack's venv (for boto3). Not part of the
test run.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "localstack/.run/localstack.log"
WRITES = re.compile(r"AWS dynamodb\.(PutItem|UpdateItem|DeleteItem|BatchWriteItem|TransactWriteItems) =>")


def infra(*args: str) -> str:
    return subprocess.run(["bash", "infra/run.sh", *args], cwd=ROOT, check=True, capture_output=True, text=True,
                          env={**os.environ, "INFRA_QUIET": "1"}).stdout.strip()


def call(method: str, url: str, token: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read() or b"null")


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    outputs = json.loads(infra("outputs", "--json"))
    api = outputs["ApiUrl"]
    tenant = f"bench-{int(time.time())}"
    token = infra("token", "--tenant", tenant, "--user", "bench")
    sender = f"bench@{tenant}.example.com"
    import boto3  # from LocalStack's venv
    boto3.client("ses", endpoint_url="http://127.0.0.1:4566", region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test").verify_email_identity(EmailAddress=sender)
    # The tenant's own sender: a bulk job sends from nothing else.
    admin = infra("token", "--tenant", tenant, "--user", "bench-admin", "--role", "tenant_admin")
    call("POST", f"{api}/senders", admin, {"address": sender})
    log_start = LOG.stat().st_size
    job = call("POST", f"{api}/jobs", token, {"type": "bulk_message_sending", "params": {
        "channel": "email", "from": sender, "subject": "bench", "body": "bench",
        "recipients": [f"r{i}@example.org" for i in range(n)]}})
    while job["status"] in ("queued", "running"):
        time.sleep(0.5)
        job = call("GET", f"{api}/jobs/{job['id']}", token)
    time.sleep(2)  # let the last log lines land
    with LOG.open() as f:
        f.seek(log_start)
        writes = {}
        for line in f:
            m = WRITES.search(line)
            if m:
                writes[m.group(1)] = writes.get(m.group(1), 0) + 1
    seconds = ts(job["completed_at"]) - ts(job["created_at"])
    total_writes = sum(writes.values())
    print(json.dumps({
        "items": n, "status": job["status"], "progress": job["progress"],
        "seconds": round(seconds, 1), "items_per_second": round(n / seconds, 1),
        "dynamodb_write_requests": writes, "write_requests_per_item": round(total_writes / n, 4),
    }, indent=1))


if __name__ == "__main__":
    main()
