"""LocalStack's ``RuntimeExecutor`` contract, fulfilled with host processes.

LocalStack creates one executor per execution environment and never sends it two
invocations at once; concurrent invocations get separate environments, hence
separate processes. Within an environment the executor keeps one sandbox (process)
and replaces it after a timeout, a crash or an exit, so the next invocation always
gets a working process (a cold start, as on AWS).

Error paths, and how they reach the caller:
- unsupported runtime / missing bootstrap / init failure in ``start()``:
  ``StatusErrorException(payload)``; LocalStack returns the payload with
  FunctionError=Unhandled and stops the environment.
- timeout / crash / init failure of a replacement process in ``invoke()``: an error
  ``InvocationResult`` with AWS's error shape; the environment stays usable.
- ``prepare_version`` never raises: a version that fails to prepare becomes
  State=Failed, which LocalStack 4.4 then cannot delete (500 on DeleteFunction).
"""

import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor
from localstack.utils.strings import to_bytes

from localstack_host_executor import cloudwatch, reports
from localstack_host_executor.environment import build_environment
from localstack_host_executor.runtime_api import Invocation
from localstack_host_executor.sandbox import InitFailed, InvokeOutcome, Sandbox

LOG = logging.getLogger(__name__)

SUPPORTED_RUNTIME_PREFIX = "provided"  # provided, provided.al2, provided.al2023
NAMESPACE = "/_localstack_lambda"  # LocalStack's internal executor routes (unused here)


def gateway_host_and_port() -> tuple[str, int]:
    """Where a host process reaches LocalStack: its gateway, on loopback if it listens on all."""
    listen = config.GATEWAY_LISTEN[0]
    host = listen.host if listen.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return host, listen.port


class HostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        # start()/invoke() run on LocalStack's invocation thread, stop() may come from a
        # timer thread (startup timeout, keep-alive) while they run.
        self._lock = threading.Lock()
        self._sandbox: Sandbox | None = None
        self._stopped = False
        self._env_vars: dict = {}
        self._workdir: Path | None = None
        self._init_ms: float | None = None  # reported with the first invocation after an init
        self._last_history = ""

    # ----- lifecycle -----------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        unsupported = self._unsupported_reason()
        if unsupported:
            payload = reports.error_payload(reports.UNSUPPORTED_RUNTIME, unsupported)
            raise StatusErrorException(unsupported, payload=payload)
        self._env_vars = dict(env_vars)
        self._workdir = Path(tempfile.mkdtemp(prefix=f"lambda-{self._name()}-{self.id[:8]}-"))
        for folder in ("home", "tmp"):
            (self._workdir / folder).mkdir()
        try:
            self._start_sandbox()
        except InitFailed as failure:
            self._record_start_failure(failure)
            raise StatusErrorException(str(failure), payload=failure.payload) from None

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            sandbox, self._sandbox = self._sandbox, None
        if sandbox:
            self._retire(sandbox)
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        with self._lock:
            sandbox = self._sandbox
        if sandbox is None or not sandbox.alive:
            # The previous process timed out, crashed or exited: start a fresh one.
            if sandbox:
                self._retire(sandbox)
            try:
                sandbox = self._start_sandbox()
            except InitFailed as failure:
                return self._init_failure_result(request_id, failure)

        timeout_s = float(self.function_version.config.timeout)
        invocation = Invocation(
            request_id=request_id,
            function_arn=payload["invoked-function-arn"],
            trace_id=payload.get("trace-id") or "",
            payload=to_bytes(payload.get("payload") or ""),
            deadline_ms=int((time.time() + timeout_s) * 1000),
        )
        init_ms, self._init_ms = self._init_ms, None
        earlier_output = sandbox.take_output()  # init output, or late output of the last event
        outcome = sandbox.invoke(invocation, timeout_s)
        if outcome.sandbox_lost:
            self._retire(sandbox)
        logs = self._invocation_logs(request_id, outcome, init_ms, earlier_output)
        return InvocationResult(request_id, outcome.payload, outcome.is_error, logs)

    # ----- addresses -----------------------------------------------------------------

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        # LocalStack builds LOCALSTACK_HOSTNAME and AWS_ENDPOINT_URL from this.
        return gateway_host_and_port()[0]

    def get_runtime_endpoint(self) -> str:
        host, port = gateway_host_and_port()
        return f"http://{host}:{port}{NAMESPACE}/{self.id}"

    def get_logs(self) -> str:
        with self._lock:
            sandbox = self._sandbox
        return sandbox.history() if sandbox else self._last_history

    # ----- versions --------------------------------------------------------------------

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        try:
            code = function_version.config.code
            if not code:
                return  # container image: reported by start()
            code.prepare_for_execution()  # unzips once per code object
            bootstrap = Path(code.get_unzipped_code_location()) / "bootstrap"
            if bootstrap.is_file() and not code.is_hot_reloading():
                # Zip tools drop the exec bit more often than not.
                bootstrap.chmod(bootstrap.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except Exception:
            LOG.exception("Preparing %s for the host executor failed", function_version.qualified_arn)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # nothing beyond LocalStack's own code store, which cleans up itself

    @classmethod
    def validate_environment(cls) -> bool:
        return os.name == "posix"  # process groups, /proc

    # ----- internals -------------------------------------------------------------------

    def _name(self) -> str:
        return self.function_version.id.function_name

    def _code_dir(self) -> Path:
        return Path(self.function_version.config.code.get_unzipped_code_location())

    def _unsupported_reason(self) -> str | None:
        fn_config = self.function_version.config
        if fn_config.package_type == PackageType.Image or not fn_config.code:
            return (
                "The host Lambda executor runs zip functions only; container images need "
                "LocalStack in Docker (LOCALSTACK_MODE=docker)."
            )
        if not str(fn_config.runtime or "").startswith(SUPPORTED_RUNTIME_PREFIX):
            return (
                f"The host Lambda executor runs only provided.* runtimes (a bootstrap executable); "
                f"function {self._name()} uses {fn_config.runtime}. Use runtime provided.al2023, "
                "or LocalStack in Docker (LOCALSTACK_MODE=docker) for other runtimes."
            )
        return None

    def _start_sandbox(self) -> Sandbox:
        """Start a process and wait for its first /next; raises InitFailed."""
        code_dir = self._code_dir()
        bootstrap = code_dir / "bootstrap"
        if not bootstrap.is_file():
            message = f"Error: Couldn't find valid bootstrap(s): [{bootstrap}]"
            raise InitFailed(
                reports.error_payload(reports.INVALID_ENTRYPOINT, message),
                reports.INVALID_ENTRYPOINT,
                output="",
                init_ms=0.0,
            )
        with self._lock:
            if self._stopped:
                raise InitFailed(
                    reports.error_payload(reports.EXIT_ERROR, "Error: environment stopped"),
                    reports.EXIT_ERROR,
                    output="",
                    init_ms=0.0,
                )
            sandbox = Sandbox(bootstrap, code_dir, self._make_env, label=f"{self._name()}-{self.id[:8]}")
            # Published before waiting, so that a concurrent stop() can kill it.
            self._sandbox = sandbox
        try:
            self._init_ms = sandbox.wait_ready(config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT + 1)
        except InitFailed:
            self._retire(sandbox)
            raise
        return sandbox

    def _retire(self, sandbox: Sandbox) -> None:
        sandbox.close()
        self._last_history = sandbox.history()
        with self._lock:
            if self._sandbox is sandbox:
                self._sandbox = None

    def _make_env(self, runtime_api: str) -> dict[str, str]:
        host, port = gateway_host_and_port()
        return build_environment(
            self._env_vars,
            runtime_api=runtime_api,
            code_dir=self._code_dir(),
            home=self._workdir / "home",
            tmp=self._workdir / "tmp",
            gateway_url=f"http://{host}:{port}",
        )

    def _init_logs(self, failure: InitFailed) -> list[str]:
        return [
            reports.init_start_line(self.function_version.config.runtime),
            failure.output,
            reports.init_report_line(failure.init_ms, failure.error_type),
        ]

    def _record_start_failure(self, failure: InitFailed) -> None:
        LOG.warning(
            "Lambda %s failed to start: %s\n%s",
            self._name(),
            failure,
            failure.output[-4000:],
        )
        cloudwatch.store_in_background(
            region=self.function_version.id.region,
            role_arn=self.function_version.config.role,
            group=self._env_vars.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{self._name()}"),
            stream=self._env_vars.get("AWS_LAMBDA_LOG_STREAM_NAME", self.id),
            text=reports.join_lines(self._init_logs(failure)),
        )

    def _init_failure_result(self, request_id: str, failure: InitFailed) -> InvocationResult:
        version = self.function_version.id.qualifier
        logs = self._init_logs(failure) + [
            reports.start_line(request_id, version),
            reports.end_line(request_id),
            reports.report_line(
                request_id,
                duration_ms=failure.init_ms,
                memory_size_mb=self.function_version.config.memory_size,
                max_memory_used_mb=0,
                status="error",
                error_type=failure.error_type,
            ),
        ]
        return InvocationResult(request_id, failure.payload, True, reports.join_lines(logs))

    def _invocation_logs(
        self, request_id: str, outcome: InvokeOutcome, init_ms: float | None, earlier_output: str
    ) -> str:
        lines = []
        if init_ms is not None:
            lines.append(reports.init_start_line(self.function_version.config.runtime))
        lines += [
            earlier_output,
            reports.start_line(request_id, self.function_version.id.qualifier),
            outcome.output,
            reports.end_line(request_id),
            reports.report_line(
                request_id,
                duration_ms=outcome.duration_ms,
                memory_size_mb=self.function_version.config.memory_size,
                max_memory_used_mb=outcome.max_memory_used_mb,
                init_ms=init_ms,
                status=outcome.status,
                error_type=outcome.error_type,
            ),
        ]
        return reports.join_lines(lines)

