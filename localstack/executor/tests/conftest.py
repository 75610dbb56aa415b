"""Fixtures for testing the host executor through a running LocalStack.

LocalStack must already run with LAMBDA_RUNTIME_EXECUTOR=host (localstack/start.sh
in host mode; localstack/test.sh does both). Functions are tiny zips: a shell
``bootstrap`` that runs ``functions/runtime.py`` with this venv's Python.
"""

import json
import sys
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config

from support import ENDPOINT, REGION, ROLE, function_zip, wait_for


def pytest_sessionstart(session):
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=3) as response:
            services = json.load(response)["services"]
    except Exception as e:
        pytest.exit(f"LocalStack is not reachable on {ENDPOINT} ({e}); run localstack/start.sh", returncode=2)
    if services.get("lambda") not in ("available", "running"):
        pytest.exit(f"LocalStack on {ENDPOINT} has no Lambda service", returncode=2)


@pytest.fixture(scope="session")
def aws():
    """aws("lambda") -> a boto3 client for LocalStack."""
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    config = Config(read_timeout=60, retries={"max_attempts": 0})
    clients = {}

    def client(service):
        if service not in clients:
            clients[service] = session.client(service, endpoint_url=ENDPOINT, config=config)
        return clients[service]

    return client


@pytest.fixture
def make_function(aws):
    """make_function(timeout=..., env=..., ...) -> the name of an Active function (deleted after the test)."""
    lam = aws("lambda")
    created = []

    def make(
        *,
        timeout: int = 10,
        env: dict | None = None,
        bootstrap: str | None = "bootstrap",
        memory: int = 128,
        runtime: str = "provided.al2023",
    ) -> str:
        name = f"host-exec-{uuid.uuid4().hex[:10]}"
        lam.create_function(
            FunctionName=name,
            Runtime=runtime,
            Handler="bootstrap",
            Role=ROLE,
            Code={"ZipFile": function_zip(bootstrap)},
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": {"HOST_PYTHON": sys.executable, **(env or {})}},
        )
        created.append(name)
        wait_for(
            lambda: lam.get_function_configuration(FunctionName=name)["State"] == "Active",
            timeout=30,
            what=f"{name} to become Active",
        )
        return name

    yield make
    for name in created:
        for mapping in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            lam.delete_event_source_mapping(UUID=mapping["UUID"])
        try:
            lam.delete_function(FunctionName=name)
        except Exception as e:  # cleanup must not hide the test's own result
            print(f"could not delete {name}: {e}")
