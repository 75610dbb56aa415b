"""Reads the deployed roles of every function (IAM in LocalStack, or AWS) and checks each
grants exactly the actions on exactly the resources the function uses: the list below is
written by hand from the code, so a policy that widens (or a SAM default that sneaks in a
managed policy) fails here. A job type added to the registry without its entry here fails
`test_every_registered_type_has_an_expectation` (the served OpenAPI enum is the registry's,
checked by jobs-core's tests)."""
import json
import os
import pathlib
import re
import urllib.request

import boto3
import pytest

STACK = os.environ.get("JOBS_STACK", "jobs")
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")

LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
# DeleteItem and Query on the table itself: a tenant's line of jobs waiting for its limit.
JOB_PROGRESS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query")
OWN_QUEUE = ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def grants(actions, *resources):
    return {(a, r) for a in actions for r in resources}


def worker(key, *target):
    """A worker's grants: its own log group (`<stack>-<key with dashes>`), job progress, job
    inputs, its own work and plan queues (`<stack>-work-<key>`, `<stack>-work-<key>-plans`),
    and what its type acts on."""
    return (
        grants(LOGS, f"log-group:{key.replace('_', '-')}:*")
        | grants(JOB_PROGRESS, "JobsTable")
        | grants(["s3:GetObject"], "InputBucket/inputs/*", "InputBucket/uploads/*")
        # a job's item list, written by its plan from the job's uploaded file
        | grants(["s3:PutObject"], "InputBucket/inputs/*")
        # so that a missing object (a plan's checkpoint before the first) is 404, not 403
        | grants(["s3:ListBucket"], "InputBucket")
        | grants(OWN_QUEUE, f"work-queue:{key}", f"work-queue:{key}-plans")
        | grants(["dynamodb:PutItem"], "AuditTable")
        | grants(["events:PutEvents"], "JobsEventBus")
        | set().union(*target)
    )


# Per function: the API, then one worker per job type, keyed by the type's registry key.
API = grants(LOGS, "log-group:api:*") \
    | grants(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"], "JobsTable", "JobsTable/index/*") \
    | grants(["dynamodb:DeleteItem"], "JobsTable") \
    | grants(["s3:PutObject", "s3:GetObject"], "InputBucket/inputs/*") \
    | grants(["s3:PutObject", "s3:GetObject"], "InputBucket/uploads/*") \
    | grants(["s3:PutObject", "s3:GetObject"], "InputBucket/exports/*") \
    | grants(["s3:ListBucket"], "InputBucket") \
    | grants(["sqs:SendMessage"], "work-queue:*", "export-queue") \
    | grants(["sqs:GetQueueAttributes"], "work-queue:*", "dlq:*") \
    | grants(["ses:ListIdentities", "ses:GetIdentityVerificationAttributes"], "*") \
    | grants(["dynamodb:PutItem", "dynamodb:Query"], "AuditTable", "AuditTable/index/by_day", "AuditTable/index/by_tenant_day") \
    | grants(["events:PutEvents"], "JobsEventBus")
# The scheduler creates jobs as POST /jobs does, from the due index only: no reads of job
# reports (s3:GetObject), no audit queries, no queue inspection, no BatchGetItem.
SCHEDULER = grants(LOGS, "log-group:scheduler:*") \
    | grants(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DeleteItem"], "JobsTable") \
    | grants(["dynamodb:Query"], "JobsTable/index/schedules_due", "JobsTable/index/ends_pending") \
    | grants(["s3:PutObject"], "InputBucket/inputs/*") \
    | grants(["sqs:SendMessage"], "work-queue:*") \
    | grants(["ses:ListIdentities", "ses:GetIdentityVerificationAttributes"], "*") \
    | grants(["dynamodb:PutItem"], "AuditTable") \
    | grants(["events:PutEvents"], "JobsEventBus")
# The exporter reads a job and its items and writes only under exports/; it writes no
# audit entry and sends no message.
EXPORTER = grants(LOGS, "log-group:exporter:*") \
    | grants(["dynamodb:GetItem", "dynamodb:Query"], "JobsTable") \
    | grants(["s3:GetObject"], "InputBucket/inputs/*") \
    | grants(["s3:GetObject", "s3:PutObject"], "InputBucket/exports/*") \
    | grants(["s3:ListBucket"], "InputBucket") \
    | grants(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], "export-queue")
# Actions that take no resource-level permissions (Service Authorization Reference): the
# only grants allowed on every resource.
NO_RESOURCE_TYPES = {"ses:ListIdentities", "ses:GetIdentityVerificationAttributes", "ses:GetSendQuota"}
WORKERS = {
    "bulk_message_sending": worker(
        "bulk_message_sending", grants(["ses:SendEmail"], "ses:identity/*") | grants(["ses:GetSendQuota"], "*")
    ),
    "session_termination": worker(
        "session_termination",
        grants(["dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"], "SessionsTable", "SessionsTable/index/by_user"),
    ),
    "ai_text_embedding": worker(
        "ai_text_embedding",
        grants(["dynamodb:PutItem", "dynamodb:BatchWriteItem"], "EmbeddingsTable"),
        grants(["bedrock:InvokeModel"], "bedrock:foundation-model/amazon.titan-embed-text-v2:0"),
    ),
    "profile_field_update": worker("profile_field_update", grants(["dynamodb:UpdateItem"], "ProfilesTable")),
}
# Function name (as the template names it) -> expected grants.
EXPECTED = {f"{STACK}-api": API, f"{STACK}-scheduler": SCHEDULER, f"{STACK}-exporter": EXPORTER} | {f"{STACK}-{key.replace('_', '-')}": grants_ for key, grants_ in WORKERS.items()}


def client(name):
    return boto3.client(
        name,
        endpoint_url=ENDPOINT,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


# Logical resource -> the stack output that names it (LocalStack can list stale physical
# ids for replaced resources; the outputs are always current).
NAMED_BY_OUTPUT = {
    "JobsTable": "JobsTableName",
    "AuditTable": "AuditTableName",
    "SessionsTable": "SessionsTableName",
    "EmbeddingsTable": "EmbeddingsTableName",
    "ProfilesTable": "ProfilesTableName",
    "InputBucket": "InputBucketName",
}


def outputs():
    return json.loads(os.environ["JOBS_STACK_OUTPUTS"])


@pytest.fixture(scope="module")
def symbolic():
    """Turns an ARN back into the logical name it was written with in template.yaml."""
    sqs, ddb = client("sqs"), client("dynamodb")
    arns = {}
    for logical, output in NAMED_BY_OUTPUT.items():
        physical = outputs()[output]
        if logical.endswith("Table"):
            arns[ddb.describe_table(TableName=physical)["Table"]["TableArn"]] = logical
        elif logical.endswith("Queue"):
            arns[sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]] = logical
        else:
            arns[f"arn:aws:s3:::{physical}"] = logical

    def to_symbol(arn):
        if arn == "*":
            return "*"
        for full, logical in sorted(arns.items(), key=lambda kv: -len(kv[0])):
            if arn == full or arn.startswith(full + "/"):
                return logical + arn[len(full):]
        service, rest = arn.split(":")[2], arn.split(":", 5)[5]
        if service == "logs":
            return "log-group:" + rest.removeprefix(f"log-group:/aws/lambda/{STACK}-")
        if service == "events" and rest == f"event-bus/{STACK}-jobs":
            return "JobsEventBus"
        if service == "sqs" and rest.startswith(f"{STACK}-dlq-"):
            return "dlq:" + rest.removeprefix(f"{STACK}-dlq-")
        if service == "sqs" and rest == f"{STACK}-exports":
            return "export-queue"
        if service == "sqs" and rest.startswith(f"{STACK}-work-"):
            return "work-queue:" + rest.removeprefix(f"{STACK}-work-")
        return f"{service}:{rest}"

    return to_symbol


def policy_of(function_name):
    role = client("lambda").get_function_configuration(FunctionName=function_name)["Role"].split("/")[-1]
    iam = client("iam")
    managed = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    statements = []
    for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        body = doc["Statement"]
        statements += body if isinstance(body, list) else [body]
    return managed, statements


def template_leading_keys(sid):
    """The `dynamodb:LeadingKeys` of every template statement `sid`, if all have the same."""
    text = (pathlib.Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    found = set()
    for block in re.split(r"\n\s*- Sid: ", text)[1:]:
        name, _, rest = block.partition("\n")
        if name.strip() != sid:
            continue
        statement = re.split(r"\n\s*(?:- Sid: |#)", rest)[0]
        match = re.search(r"dynamodb:LeadingKeys: \[([^\]]*)\]", statement)
        found.add(match.group(1).replace('"', "").strip() if match else None)
    return [found.pop()] if len(found) == 1 and None not in found else None


def as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("function", sorted(EXPECTED))
def test_each_function_grants_exactly_what_it_uses(symbolic, function):
    managed, statements = policy_of(function)
    assert managed == [], f"{function}: managed policies grant more than it uses: {managed}"
    granted = set()
    for statement in statements:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{function}: wildcard action {action}"
            for resource in as_list(statement["Resource"]):
                assert resource != "*" or action in NO_RESOURCE_TYPES, f"{function}: {action} on every resource"
                granted.add((action, symbolic(resource)))
    assert granted - EXPECTED[function] == set(), f"{function} grants more than it uses"
    assert EXPECTED[function] - granted == set(), f"{function} lacks what it uses"


@pytest.mark.parametrize("function", ["api", "scheduler"])
def test_the_api_and_the_scheduler_can_remove_nothing(function):
    """Hiding a job and deleting a schedule are updates; neither function holds a
    permission that deletes a record or an input. The one delete they hold is of items in a
    tenant's partition (`TENANT#...`: a job's place in its tenant's line), by condition."""
    _, statements = policy_of(f"{STACK}-{function}")
    removing = set()
    for statement in statements:
        keys = statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        if keys is None:
            # LocalStack 4.4 returns the deployed statement without its Condition: read it
            # from the template's statement of the same Sid.
            keys = template_leading_keys(statement.get("Sid", ""))
        tenant_only = keys is not None and as_list(keys) == ["TENANT#*"]
        for action in as_list(statement["Action"]):
            if "Delete" in action or action.endswith("BatchWriteItem"):
                if action == "dynamodb:DeleteItem" and tenant_only:
                    continue
                removing.add(action)
    assert not removing, removing


def test_the_audit_trail_is_append_only_for_every_role(symbolic):
    """No function can change or remove an audit entry: on the audit table, every role
    holds at most PutItem (written only with attribute_not_exists) and Query (the exporter,
    which changes nothing, holds neither)."""
    for function in EXPECTED:
        _, statements = policy_of(function)
        on_audit = {
            action
            for s in statements
            for action in as_list(s["Action"])
            for resource in as_list(s["Resource"])
            if symbolic(resource).startswith("AuditTable")
        }
        assert on_audit or function == f"{STACK}-exporter", f"{function} does not write the audit trail"
        assert on_audit <= {"dynamodb:PutItem", "dynamodb:Query"}, f"{function}: {on_audit}"


def test_the_token_secret_is_no_echo_and_in_no_output():
    stack = client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    secret = open(os.path.join(os.path.dirname(__file__), "../../.artifacts/token-secret")).read().strip()
    shown = json.dumps(stack, default=str)
    assert secret not in shown, "the token secret appears in the stack description"
    template = client("cloudformation").get_template(StackName=STACK)["TemplateBody"]
    template = template if isinstance(template, str) else json.dumps(template)
    if not template:
        # LocalStack 4.4 answers an empty body for a stack created from a TemplateURL: read
        # the packaged template infra deploy put in the artifacts bucket, the newest one.
        s3 = client("s3")
        bucket = os.environ.get("JOBS_ARTIFACTS_BUCKET", "jobs-artifacts")
        newest = max(s3.list_objects_v2(Bucket=bucket, Prefix="templates/")["Contents"], key=lambda o: o["LastModified"])
        template = s3.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read().decode()
    assert "NoEcho" in template and secret not in template


def test_every_registered_type_has_an_expectation():
    """The registry's types, as the deployed API's OpenAPI document lists them."""
    with urllib.request.urlopen(outputs()["ApiUrl"] + "/openapi.json", timeout=30) as response:
        document = json.load(response)
    registered = document["components"]["schemas"]["JobType"]["enum"]
    assert sorted(registered) == sorted(WORKERS), "a job type without an IAM expectation here, or one too many"
