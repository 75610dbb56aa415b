"""One running ``bootstrap`` process and the Runtime API it talks to.

A sandbox lives until its process dies, times out, or its environment stops; the
executor then replaces it with a fresh one (as AWS does with a sandbox).
The process runs in its own process group so that killing it also kills anything
it started, and nothing of it survives a timeout.
"""

import json
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from localstack_host_executor import reports
from localstack_host_executor.output import OutputCapture
from localstack_host_executor.runtime_api import (
    Closed,
    Exited,
    FunctionResult,
    InitError,
    Invocation,
    Ready,
    RuntimeApiServer,
)

LOG = logging.getLogger(__name__)

# After answering, a runtime normally asks for its next event within a millisecond;
# waiting for that request is how we know its output for the event is complete. A
# runtime that does work after answering only delays the log hand-over this much.
POST_RESPONSE_GRACE_S = 0.2
# How long to wait for the pipe to close after killing the process group.
OUTPUT_CLOSE_WAIT_S = 1.0


class InitFailed(Exception):
    """The process did not reach its first /next."""

    def __init__(self, payload: bytes, error_type: str, output: str, init_ms: float) -> None:
        super().__init__(payload.decode("utf-8", errors="replace"))
        self.payload = payload
        self.error_type = error_type
        self.output = output
        self.init_ms = init_ms


@dataclass
class InvokeOutcome:
    payload: bytes
    is_error: bool
    output: str  # what the process printed while handling the event
    duration_ms: float
    max_memory_used_mb: int
    status: str | None = None  # REPORT "Status:" ("timeout", "error") when the sandbox failed
    error_type: str | None = None
    sandbox_lost: bool = False  # the process was killed or died: replace the sandbox


class Sandbox:
    def __init__(
        self,
        bootstrap: Path,
        code_dir: Path,
        make_env: Callable[[str], dict[str, str]],
        label: str,
    ) -> None:
        """Start ``bootstrap``; ``make_env(runtime_api_address)`` gives its environment."""
        self._label = label
        self._started = time.monotonic()
        self._closed = False
        self.api = RuntimeApiServer(label)
        try:
            self.process = subprocess.Popen(
                [str(bootstrap)],
                cwd=code_dir,
                env=make_env(self.api.address),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # one stream keeps stdout/stderr in order
                start_new_session=True,  # own process group, see kill()
                close_fds=True,
            )
        except OSError as e:  # not executable, bad interpreter line, wrong architecture
            self.api.close()
            message = f"Error: fork/exec {bootstrap}: {e.strerror or e}"
            raise InitFailed(
                reports.error_payload(reports.INVALID_ENTRYPOINT, message),
                reports.INVALID_ENTRYPOINT,
                output="",
                init_ms=0.0,
            ) from e
        self.output = OutputCapture(self.process.stdout, label)
        threading.Thread(target=self._watch_exit, name=f"exit-{label}", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> float:
        """Wait for the first /next. Returns the init duration in ms; raises InitFailed."""
        state = self.api.wait_until_ready(timeout_s)
        init_ms = (time.monotonic() - self._started) * 1000
        if isinstance(state, Ready):
            return init_ms

        self.kill()  # after /init/error the runtime should exit; make sure it does
        if isinstance(state, InitError):
            payload = reports.init_error_payload(state.body, state.error_type)
            error_type = _error_type_of(payload)
        elif isinstance(state, Exited):
            payload, error_type = reports.exit_error(None, state.status), reports.EXIT_ERROR
        elif isinstance(state, Closed):
            payload = reports.error_payload(reports.EXIT_ERROR, "Error: environment stopped during init")
            error_type = reports.EXIT_ERROR
        else:
            error_type = "Runtime.InitTimeout"
            payload = reports.error_payload(
                error_type, f"Error: runtime did not ask for an event within {timeout_s:.0f} s of starting"
            )
        self.output.wait_closed(OUTPUT_CLOSE_WAIT_S)
        raise InitFailed(payload, error_type, self.output.take(), init_ms)

    def take_output(self) -> str:
        """Output not yet attributed to an invocation (e.g. printed during init)."""
        return self.output.take()

    def invoke(self, invocation: Invocation, timeout_s: float) -> InvokeOutcome:
        started = time.monotonic()
        self.api.dispatch(invocation)
        result = self.api.wait_for_result(timeout_s)
        duration_ms = (time.monotonic() - started) * 1000
        memory_mb = self.max_memory_used_mb()

        if isinstance(result, FunctionResult):
            self.api.wait_for_next_poll(POST_RESPONSE_GRACE_S)
            return InvokeOutcome(
                payload=result.body,
                is_error=result.is_error,
                output=self.output.take(),
                duration_ms=duration_ms,
                max_memory_used_mb=memory_mb,
            )

        # No answer: the process timed out, crashed, or is being stopped. Either way
        # it must go, with everything it started.
        self.kill()
        self.output.wait_closed(OUTPUT_CLOSE_WAIT_S)
        output = self.output.take()
        request_id = invocation.request_id
        if result is None:
            payload = reports.timeout_error(request_id, timeout_s)
            error_line, status, error_type = reports.timeout_line(request_id, timeout_s), "timeout", None
        elif isinstance(result, Exited):
            payload = reports.exit_error(request_id, result.status)
            error_line, status, error_type = reports.exit_line(request_id, result.status), "error", reports.EXIT_ERROR
        else:  # Closed
            payload = reports.error_payload(reports.EXIT_ERROR, f"RequestId: {request_id} Error: environment stopped")
            error_line, status, error_type = "environment stopped", "error", reports.EXIT_ERROR
        return InvokeOutcome(
            payload=payload,
            is_error=True,
            output=reports.join_lines([output, error_line]),
            duration_ms=duration_ms,
            max_memory_used_mb=memory_mb,
            status=status,
            error_type=error_type,
            sandbox_lost=True,
        )

    def max_memory_used_mb(self) -> int:
        """Peak resident memory of the bootstrap process (VmHWM), 0 if unknown."""
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return max(1, round(int(line.split()[1]) / 1024))
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def history(self) -> str:
        return self.output.history()

    def kill(self) -> None:
        # Kill by the process group our child leads (its own pid), never by name.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        if self._closed:  # stop() and a failing invoke may both retire a sandbox
            return
        self._closed = True
        self.kill()
        self.api.close()
        self.output.wait_closed(OUTPUT_CLOSE_WAIT_S)

    def _watch_exit(self) -> None:
        status = self.process.wait()
        LOG.debug("bootstrap of %s exited: %s", self._label, reports.describe_exit(status))
        self.api.process_exited(status)


def _error_type_of(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("errorType") or "Runtime.Unknown")
    except (ValueError, AttributeError):
        return "Runtime.Unknown"

