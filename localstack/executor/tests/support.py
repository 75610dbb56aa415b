"""Helpers for the host executor tests (imported by conftest and the tests)."""

import io
import json
import os
import time
import zipfile
from pathlib import Path

ENDPOINT = os.environ.get("LOCALSTACK_ENDPOINT", "http://127.0.0.1:4566")
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/lambda-test-role"  # LocalStack does not enforce IAM
FUNCTIONS = Path(__file__).parent / "functions"


def function_zip(bootstrap: str | None = "bootstrap") -> bytes:
    """A zip with runtime.py and, unless None, ``bootstrap`` (from functions/<bootstrap>)."""
    files = {"runtime.py": "runtime.py"}
    if bootstrap:
        files["bootstrap"] = bootstrap
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # keep the exec bit
            archive.writestr(info, (FUNCTIONS / source).read_bytes())
    return buffer.getvalue()


def invoke(aws, name: str, event: dict, *, tail: bool = False):
    """Invoke synchronously; returns (response, decoded payload)."""
    kwargs = {"LogType": "Tail"} if tail else {}
    response = aws("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    payload = json.loads(response["Payload"].read() or b"null")
    return response, payload


def wait_for(condition, *, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def log_messages(aws, name: str) -> list[str]:
    """All CloudWatch log lines of a function, oldest first (empty before the group exists)."""
    logs = aws("logs")
    group = f"/aws/lambda/{name}"
    try:
        events = logs.filter_log_events(logGroupName=group)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [event["message"].rstrip("\n") for event in events]


def process_gone(pid: int) -> bool:
    """True when no such process runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
