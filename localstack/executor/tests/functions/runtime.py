"""A tiny Lambda runtime for the tests: the Runtime API loop plus a few behaviours.

The event's "action" picks what the handler does; SQS events (with "Records") get a
partial batch response. The bootstrap next to this file runs it with the test venv's
Python (HOST_PYTHON, set on the function).
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"
HEADERS = (
    "Lambda-Runtime-Aws-Request-Id",
    "Lambda-Runtime-Deadline-Ms",
    "Lambda-Runtime-Invoked-Function-Arn",
    "Lambda-Runtime-Trace-Id",
)


def call(method, path, document=None, headers=None):
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(API + path, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(request) as response:  # no timeout: /next is a long poll
        return response.headers, response.read()


def handle(event, headers):
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    if isinstance(event, dict) and "Records" in event:
        return sqs_batch(event["Records"])
    action = event.get("action", "echo")
    if action == "echo":
        return {"event": event, "pid": os.getpid(), "headers": {h: headers.get(h) for h in HEADERS}}
    if action == "env":
        return {"env": dict(os.environ), "cwd": os.getcwd(), "account": sts_account()}
    if action == "sleep":
        time.sleep(event["seconds"])
        return {"pid": os.getpid(), "slept": event["seconds"]}
    if action == "hang_with_child":
        child = subprocess.Popen(["sleep", "300"])
        print(f"child pid {child.pid}")
        time.sleep(300)
    if action == "crash":
        print(f"crashing in {request_id}")
        os._exit(event.get("code", 7))
    if action == "print":
        print(f"stdout line for {request_id}")
        print(f"stderr line for {request_id}", file=sys.stderr)
        return {"ok": True}
    raise ValueError(f"unknown action {action!r}")


def sqs_batch(records):
    failures = []
    for record in records:
        print(f"processing {record['body']}")
        if record["body"].startswith("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def sts_account():
    # Proves the function reaches LocalStack with the credentials and endpoint it was given.
    import boto3

    return boto3.client("sts").get_caller_identity()["Account"]


def main():
    if os.environ.get("FAIL_INIT"):
        print("init: configuration missing")
        call(
            "POST",
            "/init/error",
            {"errorType": "InitConfigError", "errorMessage": "configuration missing"},
            {"Lambda-Runtime-Function-Error-Type": "InitConfigError"},
        )
        sys.exit(1)
    print(f"init done in pid {os.getpid()}")
    while True:
        headers, body = call("GET", "/invocation/next")
        request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        try:
            result = handle(json.loads(body or b"{}"), headers)
        except Exception as e:
            call(
                "POST",
                f"/invocation/{request_id}/error",
                {"errorType": type(e).__name__, "errorMessage": str(e)},
                {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
            )
            continue
        call("POST", f"/invocation/{request_id}/response", result)


if __name__ == "__main__":
    main()
