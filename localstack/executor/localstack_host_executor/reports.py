"""AWS-shaped log lines and error payloads.

Shapes follow what AWS Lambda writes to CloudWatch and returns to callers, so tools and
tests written against AWS read them the same way here.
"""

import json
import math
import signal
from datetime import datetime, timezone

# --- log lines ---------------------------------------------------------------------


def init_start_line(runtime: str) -> str:
    return f"INIT_START Runtime Version: host:{runtime}"


def init_report_line(init_ms: float, error_type: str) -> str:
    return f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error\tError Type: {error_type}"


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
        f"Memory Size: {memory_size_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_ms is not None:
        fields.append(f"Init Duration: {init_ms:.2f} ms")
    if status:
        fields.append(f"Status: {status}")
    if error_type:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields)


def timeout_line(request_id: str, timeout_s: float) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds"


def exit_line(request_id: str, status: int) -> str:
    return f"RequestId: {request_id} Error: Runtime exited with error: {describe_exit(status)}\nRuntime.ExitError"


def join_lines(parts: list[str]) -> str:
    """One part per line (a part may hold several lines); empty parts are skipped."""
    return "".join(part if part.endswith("\n") else part + "\n" for part in parts if part)


# --- error payloads (what the caller of Invoke receives, FunctionError=Unhandled) ----

TIMEOUT_ERROR = "Sandbox.Timedout"
EXIT_ERROR = "Runtime.ExitError"
INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"
UNSUPPORTED_RUNTIME = "Runtime.Unsupported"


def error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def timeout_error(request_id: str, timeout_s: float) -> bytes:
    return error_payload(
        TIMEOUT_ERROR, f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
    )


def exit_error(request_id: str | None, status: int) -> bytes:
    prefix = f"RequestId: {request_id} " if request_id else ""
    return error_payload(EXIT_ERROR, f"{prefix}Error: Runtime exited with error: {describe_exit(status)}")


def init_error_payload(body: bytes, error_type: str | None) -> bytes:
    """The runtime's /init/error body, completed to the {errorType, errorMessage} shape."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        message = body.decode("utf-8", errors="replace") or "init error without a body"
        document = {"errorMessage": message}
    document.setdefault("errorType", error_type or "Runtime.Unknown")
    return json.dumps(document).encode()


def describe_exit(status: int) -> str:
    """Go's wording, as AWS reports it: "exit status 1" or "signal: killed"."""
    if status >= 0:
        return f"exit status {status}"
    try:
        name = signal.strsignal(-status) or f"signal {-status}"
    except ValueError:
        name = f"signal {-status}"
    return f"signal: {name.lower()}"
