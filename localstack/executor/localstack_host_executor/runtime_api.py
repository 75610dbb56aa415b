"""The Lambda Runtime API served to ONE bootstrap process.

Each process gets its own server on a free loopback port, so a request from a killed
or replaced process can never be mistaken for one from its successor.

The runtime's side (HTTP handler threads) and LocalStack's side (the sandbox) meet in
one condition variable; every state change notifies it.

Endpoints (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):
  GET  /2018-06-01/runtime/invocation/next             long poll for the next event
  POST /2018-06-01/runtime/invocation/{id}/response    the function's result
  POST /2018-06-01/runtime/invocation/{id}/error       the function's error
  POST /2018-06-01/runtime/init/error                  init failed; the runtime exits
"""

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, TypeVar

LOG = logging.getLogger(__name__)

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"

_RESULT_PATH = re.compile(rf"^{API_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")

T = TypeVar("T")


@dataclass(frozen=True)
class Invocation:
    request_id: str
    function_arn: str
    trace_id: str
    payload: bytes
    deadline_ms: int  # epoch milliseconds, as the Runtime API reports it


@dataclass(frozen=True)
class FunctionResult:
    """What the runtime posted for an invocation (a response or an error)."""

    body: bytes
    is_error: bool
    error_type: str | None = None


@dataclass(frozen=True)
class InitError:
    """What the runtime posted to /init/error."""

    body: bytes
    error_type: str | None = None


@dataclass(frozen=True)
class Exited:
    """The process ended; ``status`` as in ``Popen.returncode`` (negative = signal)."""

    status: int


class Ready:
    """The runtime finished its init: it asked for its first event."""


class Closed:
    """The server was closed (the environment is being stopped)."""


class RuntimeApiServer:
    def __init__(self, label: str) -> None:
        self._cond = threading.Condition()
        self._pending: Invocation | None = None  # waiting for the runtime's next poll
        self._current_id: str | None = None  # handed out, result not yet posted
        self._result: FunctionResult | None = None
        self._polls = 0  # how many times the runtime called /next
        self._poll_of_current = 0  # the poll that took the current event
        self._init_error: InitError | None = None
        self._exited: Exited | None = None
        self._closed = False

        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.api = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"runtime-api-{label}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port`` for AWS_LAMBDA_RUNTIME_API."""
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    # ----- LocalStack's side -------------------------------------------------------

    def wait_until_ready(self, timeout: float) -> Ready | InitError | Exited | Closed | None:
        """Wait for the first /next; None means the timeout passed."""

        def state():
            if self._init_error:
                return self._init_error
            if self._polls > 0:
                return Ready()
            return self._exited or (Closed() if self._closed else None)

        return self._wait(state, timeout)

    def dispatch(self, invocation: Invocation) -> None:
        """Hand an event to the runtime's current (or next) poll."""
        with self._cond:
            self._result = None
            self._pending = invocation
            self._current_id = invocation.request_id
            self._cond.notify_all()

    def wait_for_result(self, timeout: float) -> FunctionResult | Exited | Closed | None:
        """Wait for the dispatched event's result; None means the timeout passed.

        A posted result wins over a process exit: a runtime may answer and then exit."""

        def state():
            if self._result:
                return self._result
            return self._exited or (Closed() if self._closed else None)

        return self._wait(state, timeout)

    def wait_for_next_poll(self, timeout: float) -> None:
        """Wait until the runtime asks for its next event after answering one.

        Anything it printed for the answered event is in the output pipe by then."""
        self._wait(
            lambda: self._polls > self._poll_of_current or self._exited or self._closed,
            timeout,
        )

    def process_exited(self, status: int) -> None:
        with self._cond:
            self._exited = Exited(status)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()  # releases handler threads blocked in /next
        # shutdown() blocks until serve_forever's next poll (up to 0.5 s): do not make
        # the invocation that retires this process wait for that.
        threading.Thread(target=self._shutdown_server, name="runtime-api-close", daemon=True).start()

    def _shutdown_server(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _wait(self, state: Callable[[], T], timeout: float) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = state()
                remaining = deadline - time.monotonic()
                if value or remaining <= 0:
                    return value
                self._cond.wait(remaining)

    # ----- the runtime's side (called from HTTP handler threads) -------------------

    def _next_invocation(self) -> Invocation | None:
        with self._cond:
            self._polls += 1
            self._cond.notify_all()
            while self._pending is None and not self._closed:
                self._cond.wait()
            invocation, self._pending = self._pending, None
            self._poll_of_current = self._polls
            return invocation

    def _post_result(self, request_id: str, result: FunctionResult) -> bool:
        with self._cond:
            if request_id != self._current_id or self._result is not None:
                return False
            self._result = result
            self._current_id = None
            self._cond.notify_all()
            return True

    def _post_init_error(self, error: InitError) -> None:
        with self._cond:
            self._init_error = error
            self._cond.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: RuntimeApiServer

    def handle_error(self, request, client_address):
        # A runtime killed mid-request (timeout, crash, stop) breaks its connection;
        # that is expected here, not worth a traceback on LocalStack's stderr.
        LOG.debug("runtime api connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: runtime clients (e.g. the Rust runtime's hyper client)
    # reuse one connection for the /next long poll and the result posts.
    protocol_version = "HTTP/1.1"
    server_version = "localstack-host-executor"
    # Headers and body go out in separate writes; with Nagle's algorithm the body
    # would wait for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True

    @property
    def api(self) -> RuntimeApiServer:
        return self.server.api

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        LOG.debug("runtime api: " + format, *args)

    def do_GET(self):
        if self.path != f"{API_PREFIX}/invocation/next":
            return self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
        invocation = self.api._next_invocation()
        if invocation is None:  # closed while polling
            self.close_connection = True
            return self._reply(410, {"errorType": "Closed", "errorMessage": "environment stopped"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", invocation.trace_id)
        self.send_header("Content-Length", str(len(invocation.payload)))
        self.end_headers()
        self.wfile.write(invocation.payload)

    def do_POST(self):
        body = self._read_body()
        error_type = self.headers.get(ERROR_TYPE_HEADER)
        if self.path == f"{API_PREFIX}/init/error":
            self.api._post_init_error(InitError(body, error_type))
            return self._reply(202, {"status": "OK"})
        match = _RESULT_PATH.match(self.path)
        if not match:
            return self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
        is_error = match["kind"] == "error"
        result = FunctionResult(body, is_error, error_type if is_error else None)
        if not self.api._post_result(match["id"], result):
            return self._reply(
                400,
                {"errorType": "InvalidRequestID", "errorMessage": f"unknown request id {match['id']}"},
            )
        self._reply(202, {"status": "OK"})

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        # Buffered responses normally carry Content-Length; chunked bodies are accepted
        # so that a client which streams a small body still works (trailers ignored).
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _reply(self, status: int, document: dict) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
