"""Reads the deployed roles of every function (IAM in LocalStack, or AWS) and checks each
grants exactly the actions on exactly the resources the function uses: the list below is
written by hand from the code, so a policy that widens (or a SAM default that sneaks in a
managed policy) fails here."""
import json
import os

import boto3
import pytest

STACK = os.environ.get("JOBS_STACK", "jobs")
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")

LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
JOB_PROGRESS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
OWN_QUEUE = ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def grants(actions, *resources):
    return {(a, r) for a in actions for r in resources}


def worker(short, queue, *target):
    return (
        grants(LOGS, f"log-group:{short}:*")
        | grants(JOB_PROGRESS, "JobsTable")
        | grants(["s3:GetObject"], "InputBucket/inputs/*")
        | grants(OWN_QUEUE, queue)
        | set().union(*target)
    )


EXPECTED = {
    "ApiFunction": grants(LOGS, "log-group:api:*")
    | grants(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"], "JobsTable", "JobsTable/index/*")
    | grants(["s3:PutObject"], "InputBucket/inputs/*")
    | grants(["sqs:SendMessage"], "BulkMessageSendingQueue", "SessionTerminationQueue", "AiTextEmbeddingQueue", "ProfileFieldUpdateQueue"),
    "BulkMessageSendingWorker": worker(
        "bulk-message-sending", "BulkMessageSendingQueue", grants(["ses:SendEmail"], "ses:identity/*")
    ),
    "SessionTerminationWorker": worker(
        "session-termination",
        "SessionTerminationQueue",
        grants(["dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"], "SessionsTable", "SessionsTable/index/by_user"),
        # the item list of a live selection, stored once by the first plan
        grants(["s3:PutObject"], "InputBucket/inputs/*"),
    ),
    "AiTextEmbeddingWorker": worker(
        "ai-text-embedding",
        "AiTextEmbeddingQueue",
        grants(["dynamodb:PutItem", "dynamodb:BatchWriteItem"], "EmbeddingsTable"),
        grants(["bedrock:InvokeModel"], "bedrock:foundation-model/amazon.titan-embed-text-v2:0"),
    ),
    "ProfileFieldUpdateWorker": worker(
        "profile-field-update", "ProfileFieldUpdateQueue", grants(["dynamodb:UpdateItem"], "ProfilesTable")
    ),
}


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
    "SessionsTable": "SessionsTableName",
    "EmbeddingsTable": "EmbeddingsTableName",
    "ProfilesTable": "ProfilesTableName",
    "InputBucket": "InputBucketName",
    "BulkMessageSendingQueue": "BulkMessageSendingQueueUrl",
    "SessionTerminationQueue": "SessionTerminationQueueUrl",
    "AiTextEmbeddingQueue": "AiTextEmbeddingQueueUrl",
    "ProfileFieldUpdateQueue": "ProfileFieldUpdateQueueUrl",
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
        for full, logical in sorted(arns.items(), key=lambda kv: -len(kv[0])):
            if arn == full or arn.startswith(full + "/"):
                return logical + arn[len(full):]
        service, rest = arn.split(":")[2], arn.split(":", 5)[5]
        if service == "logs":
            return "log-group:" + rest.removeprefix(f"log-group:/aws/lambda/{STACK}-")
        return f"{service}:{rest}"

    return to_symbol


# The stack's outputs name each function (run.sh passes them; LocalStack can keep a stale
# physical id in the resource list after a function is replaced).
FUNCTION_OUTPUT = {
    "ApiFunction": "ApiFunctionName",
    "BulkMessageSendingWorker": "BulkMessageSendingWorkerName",
    "SessionTerminationWorker": "SessionTerminationWorkerName",
    "AiTextEmbeddingWorker": "AiTextEmbeddingWorkerName",
    "ProfileFieldUpdateWorker": "ProfileFieldUpdateWorkerName",
}


def policy_of(function_logical):
    name = outputs()[FUNCTION_OUTPUT[function_logical]]
    role = client("lambda").get_function_configuration(FunctionName=name)["Role"].split("/")[-1]
    iam = client("iam")
    managed = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    statements = []
    for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        body = doc["Statement"]
        statements += body if isinstance(body, list) else [body]
    return managed, statements


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
                assert resource != "*", f"{function}: {action} on every resource"
                granted.add((action, symbolic(resource)))
    assert granted - EXPECTED[function] == set(), f"{function} grants more than it uses"
    assert EXPECTED[function] - granted == set(), f"{function} lacks what it uses"


def test_the_api_can_remove_nothing():
    """Hiding a job is an update; no API permission deletes a record or an input."""
    _, statements = policy_of("ApiFunction")
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if "Delete" in a or a.endswith("BatchWriteItem")}, actions


def test_the_token_secret_is_no_echo_and_in_no_output():
    stack = client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    secret = open(os.path.join(os.path.dirname(__file__), "../../.artifacts/token-secret")).read().strip()
    shown = json.dumps(stack, default=str)
    assert secret not in shown, "the token secret appears in the stack description"
    template = client("cloudformation").get_template(StackName=STACK)["TemplateBody"]
    template = template if isinstance(template, str) else json.dumps(template)
    assert "NoEcho" in template and secret not in template
