"""Store the logs of an environment that failed to start.

LocalStack stores an invocation's logs itself (from ``InvocationResult.logs``). When
``start()`` fails there is no invocation result to carry them, yet the init output is
exactly what one needs to see (AWS shows it with an INIT_REPORT line), so the
executor writes it to the function's log stream itself.
"""

import logging
import threading
import time

LOG = logging.getLogger(__name__)


def store_in_background(*, region: str, role_arn: str, group: str, stream: str, text: str) -> None:
    # Called from start(): do not hold up LocalStack's error handling on a logs call.
    threading.Thread(
        target=_store, args=(region, role_arn, group, stream, text), name="init-failure-logs", daemon=True
    ).start()


def _store(region: str, role_arn: str, group: str, stream: str, text: str) -> None:
    from localstack.aws.connect import connect_to
    from localstack.utils.aws.client_types import ServicePrincipal
    from localstack.utils.bootstrap import is_api_enabled

    if not is_api_enabled("logs"):
        return
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in text.splitlines() if line.strip()]
    if not events:
        return
    try:
        # The same client LocalStack's own log handler uses: the function's role, so the
        # logs land in the function's account.
        logs = connect_to.with_assumed_role(
            region_name=region, role_arn=role_arn, service_principal=ServicePrincipal.lambda_
        ).logs
        for create in (
            lambda: logs.create_log_group(logGroupName=group),
            lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream),
        ):
            try:
                create()
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    except Exception as e:  # logging must never break the Lambda service
        LOG.warning("Could not store init-failure logs in %s: %s", group, e)
