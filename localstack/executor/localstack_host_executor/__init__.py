"""Run LocalStack Lambda functions (runtime ``provided.*``) as host processes.

LocalStack 4.4 runs functions in Docker containers only. This plugin is selected with
``LAMBDA_RUNTIME_EXECUTOR=host`` and serves the Lambda Runtime API itself, so a
function's ``bootstrap`` (e.g. a Rust binary built with cargo-lambda) runs directly on
the machine. Module map:

- ``plugin``       the entry point LocalStack loads
- ``executor``     LocalStack's ``RuntimeExecutor`` contract: one instance per environment
- ``sandbox``      one running ``bootstrap`` process: spawn, init, invoke, kill
- ``runtime_api``  the HTTP Runtime API that one process talks to
- ``output``       captures the process's stdout/stderr and hands it out per invocation
- ``environment``  builds the process environment (endpoint rewrite, HOME/TMPDIR)
- ``reports``      AWS-shaped log lines (START/END/REPORT) and error payloads
- ``cloudwatch``   stores logs of environments that failed to start
"""
