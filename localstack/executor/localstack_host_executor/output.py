"""Capture a process's merged stdout/stderr and hand it out per invocation.

A reader thread keeps the pipe empty (so the function never blocks on a full pipe).
``take()`` first drains whatever is already in the pipe: the sandbox calls it once the
runtime has come back for its next event, and by then everything the function printed
for the previous one has been written, even if the reader thread has not read it yet.
"""

import os
import select
import threading
from typing import BinaryIO

# Per-invocation cap: CloudWatch events are limited anyway, and a runaway loop of
# prints must not eat LocalStack's memory. The newest output is kept.
MAX_PENDING_BYTES = 1024 * 1024
# What get_logs() returns (LocalStack prints it when an environment fails to start).
MAX_HISTORY_BYTES = 64 * 1024


class OutputCapture:
    def __init__(self, pipe: BinaryIO, label: str) -> None:
        # Raw os.read on the fd; the file object is kept only to close it exactly once.
        self._pipe = pipe
        self._fd = pipe.fileno()
        os.set_blocking(self._fd, False)
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._dropped = 0
        self._history = bytearray()
        self._eof = False
        self._thread = threading.Thread(target=self._run, name=f"output-{label}", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """Everything printed since the last call, as text."""
        with self._lock:
            self._read_available()
            data, self._pending = bytes(self._pending), bytearray()
            dropped, self._dropped = self._dropped, 0
        text = data.decode("utf-8", errors="replace")
        if dropped:
            text = f"[... {dropped} bytes of output dropped ...]\n{text}"
        return text

    def history(self) -> str:
        with self._lock:
            return self._history.decode("utf-8", errors="replace")

    def wait_closed(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._eof:
            try:
                readable, _, _ = select.select([self._fd], [], [], 0.5)
            except (OSError, ValueError):  # fd closed underneath us
                return
            if readable:
                with self._lock:
                    self._read_available()
        with self._lock:
            self._pipe.close()

    def _read_available(self) -> None:
        """Read until the pipe is empty (non-blocking). Caller holds the lock."""
        while not self._eof:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True  # every writer (the process group) is gone
                return
            self._append(chunk)

    def _append(self, chunk: bytes) -> None:
        self._pending += chunk
        if len(self._pending) > MAX_PENDING_BYTES:
            excess = len(self._pending) - MAX_PENDING_BYTES
            del self._pending[:excess]
            self._dropped += excess
        self._history += chunk
        if len(self._history) > MAX_HISTORY_BYTES:
            del self._history[: len(self._history) - MAX_HISTORY_BYTES]
