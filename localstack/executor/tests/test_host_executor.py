"""The host executor, end to end through LocalStack's Lambda API."""

import base64
import json
import os
import re
import threading
import time

from support import invoke, log_messages, process_gone, wait_for

TIMEOUT_ERROR = "Sandbox.Timedout"
EXIT_ERROR = "Runtime.ExitError"


def test_sync_invoke_returns_the_result_and_runtime_headers(aws, make_function):
    name = make_function(timeout=7)
    before_ms = time.time() * 1000

    response, payload = invoke(aws, name, {"action": "echo", "value": 42})

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert payload["event"] == {"action": "echo", "value": 42}
    headers = payload["headers"]
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["Lambda-Runtime-Aws-Request-Id"])
    # The deadline is the function timeout from the start of the invocation.
    assert before_ms + 5_000 < int(headers["Lambda-Runtime-Deadline-Ms"]) < time.time() * 1000 + 7_500
    assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(f":function:{name}")
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=")


def test_environment_variables_and_endpoint_rewrite(aws, make_function):
    name = make_function(
        memory=256,
        env={
            "GREETING": "hello",
            # What a CloudFormation output typically holds; not resolvable offline.
            "QUEUE_URL": "http://localhost.localstack.cloud:4566/queue/us-east-1/000000000000/jobs",
            "AWS_ENDPOINT_URL_SQS": "http://sqs.us-east-1.localhost.localstack.cloud:4566",
        },
    )

    _, payload = invoke(aws, name, {"action": "env"})

    env = payload["env"]
    assert env["GREETING"] == "hello"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["AWS_ENDPOINT_URL_SQS"] == "http://127.0.0.1:4566"
    assert env["QUEUE_URL"] == "http://127.0.0.1:4566/queue/us-east-1/000000000000/jobs"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"  # LocalStack passes an int
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SESSION_TOKEN"]
    assert payload["cwd"] == env["LAMBDA_TASK_ROOT"]
    # HOME and TMPDIR: a fresh per-environment folder, not the host user's.
    assert env["HOME"] != os.environ.get("HOME")
    assert os.path.dirname(env["HOME"]) == os.path.dirname(env["TMPDIR"])
    # LocalStack's own settings do not leak into functions.
    assert "SERVICES" not in env and "GATEWAY_LISTEN" not in env
    # The function reached LocalStack with those credentials and that endpoint.
    assert payload["account"] == "000000000000"


def test_timeout_kills_the_process_group_and_the_next_invoke_gets_a_fresh_process(aws, make_function):
    name = make_function(timeout=1)
    _, first = invoke(aws, name, {"action": "echo"})

    started = time.monotonic()
    response, payload = invoke(aws, name, {"action": "hang_with_child"}, tail=True)
    elapsed = time.monotonic() - started

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == TIMEOUT_ERROR
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert 1.0 <= elapsed < 5.0
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "Task timed out after 1.00 seconds" in tail
    child_pid = int(re.search(r"child pid (\d+)", tail).group(1))
    # The bootstrap and what it started are gone (killed as a process group).
    wait_for(lambda: process_gone(first["pid"]) and process_gone(child_pid), timeout=5, what="killed processes")

    response, second = invoke(aws, name, {"action": "echo"})
    assert "FunctionError" not in response
    assert second["pid"] != first["pid"]


def test_crash_mid_invoke_is_a_clear_error_and_the_next_invoke_works(aws, make_function):
    name = make_function()
    _, first = invoke(aws, name, {"action": "echo"})

    response, payload = invoke(aws, name, {"action": "crash", "code": 7}, tail=True)

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == EXIT_ERROR
    assert "Runtime exited with error: exit status 7" in payload["errorMessage"]
    assert "crashing in" in base64.b64decode(response["LogResult"]).decode()

    response, second = invoke(aws, name, {"action": "echo"})
    assert "FunctionError" not in response
    assert second["pid"] != first["pid"]


def test_handler_error_is_returned_and_the_process_is_kept(aws, make_function):
    name = make_function()
    _, first = invoke(aws, name, {"action": "echo"})

    response, payload = invoke(aws, name, {"action": "no-such-action"})

    assert response["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "ValueError", "errorMessage": "unknown action 'no-such-action'"}
    _, second = invoke(aws, name, {"action": "echo"})
    assert second["pid"] == first["pid"]


def test_bootstrap_exiting_during_init_is_a_clear_error(aws, make_function):
    name = make_function(bootstrap="bootstrap_exits_early")

    for _ in range(2):  # every attempt fails fast; none hangs
        started = time.monotonic()
        response, payload = invoke(aws, name, {})
        assert time.monotonic() - started < 5
        assert response["FunctionError"] == "Unhandled"
        assert payload["errorType"] == EXIT_ERROR
        assert "Runtime exited with error: exit status 3" in payload["errorMessage"]

    # The init output is in the function's logs, as on AWS.
    messages = wait_for(
        lambda: [m for m in log_messages(aws, name) if "init: cannot start" in m or m.startswith("INIT_REPORT")],
        timeout=10,
        what="init failure logs",
    )
    assert any("Status: error" in m for m in log_messages(aws, name)), messages


def test_init_error_posted_by_the_runtime_is_returned(aws, make_function):
    name = make_function(env={"FAIL_INIT": "1"})

    response, payload = invoke(aws, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "InitConfigError", "errorMessage": "configuration missing"}


def test_missing_bootstrap_is_a_clear_error(aws, make_function):
    name = make_function(bootstrap=None)

    response, payload = invoke(aws, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.InvalidEntrypoint"
    assert "Couldn't find valid bootstrap(s)" in payload["errorMessage"]


def test_unsupported_runtime_is_a_clear_error_and_the_function_can_be_deleted(aws, make_function):
    name = make_function(runtime="python3.12")

    response, payload = invoke(aws, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.Unsupported"
    assert "python3.12" in payload["errorMessage"] and "provided" in payload["errorMessage"]
    aws("lambda").delete_function(FunctionName=name)  # prepare_version did not fail the version


def test_concurrent_invokes_run_in_separate_processes(aws, make_function):
    name = make_function()
    results = {}

    def call(index):
        results[index] = invoke(aws, name, {"action": "sleep", "seconds": 2})[1]

    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert results[0]["pid"] != results[1]["pid"]
    assert elapsed < 3.9, f"took {elapsed:.2f}s: the invocations did not overlap"


def test_start_end_report_and_output_reach_cloudwatch(aws, make_function):
    name = make_function()
    response, _ = invoke(aws, name, {"action": "print"})
    request_id = response["ResponseMetadata"]["RequestId"]

    def lines_for_request():
        messages = log_messages(aws, name)
        wanted = [
            f"START RequestId: {request_id}",
            f"stdout line for {request_id}",
            f"stderr line for {request_id}",
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}",
        ]
        positions = [next((i for i, m in enumerate(messages) if m.startswith(w)), None) for w in wanted]
        return (positions, messages) if None not in positions else None

    positions, messages = wait_for(lines_for_request, timeout=15, what="the invocation's log lines")
    start, out, err, end, report = positions
    assert start < out < end and start < err < end < report, messages
    assert re.search(r"Duration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB", messages[report])
    assert any(m.startswith("INIT_START") for m in messages[:start])  # a cold start
    assert "Init Duration:" in messages[report]


def test_sqs_event_source_mapping_with_report_batch_item_failures(aws, make_function):
    sqs, lam = aws("sqs"), aws("lambda")
    name = make_function(timeout=2)
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{name}-jobs",
        Attributes={
            "VisibilityTimeout": "2",
            # A failed message comes back once more and then moves to the DLQ.
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    try:
        mapping = lam.create_event_source_mapping(
            EventSourceArn=queue_arn,
            FunctionName=name,
            BatchSize=10,
            MaximumBatchingWindowInSeconds=1,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )
        wait_for(
            lambda: lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled",
            timeout=20,
            what="the event source mapping",
        )

        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": "1", "MessageBody": "ok-1"}, {"Id": "2", "MessageBody": "fail-1"}],
        )

        def dead_letters():
            received = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1, MaxNumberOfMessages=10)
            return [m["Body"] for m in received.get("Messages", [])]

        assert wait_for(dead_letters, timeout=40, what="the failed message in the DLQ") == ["fail-1"]
        messages = log_messages(aws, name)
        assert "processing ok-1" in messages and "processing fail-1" in messages
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        # ok-1 was deleted after the partial batch response; nothing is left in flight.
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    finally:
        sqs.delete_queue(QueueUrl=queue_url)
        sqs.delete_queue(QueueUrl=dlq_url)
