"""Schemathesis hooks (loaded by schemathesis.toml): rules of the API that no OpenAPI
schema can state, applied to generated requests so that the checks stay strict elsewhere."""
import re
from urllib.parse import urlencode
import uuid

import schemathesis

IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def filter_body(context, body):
    """Document ids are unique within a job (a repeat is a documented 422 naming the
    field); JSON Schema can only require whole items to differ."""
    if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
        return True
    documents = body["params"].get("documents")
    if not isinstance(documents, list):
        return True
    ids = [d.get("id") for d in documents if isinstance(d, dict) and isinstance(d.get("id"), str)]
    return len(ids) == len(set(ids))


# SES verifies its parent, example.com (run.sh, as the end-to-end tests do), and run.sh
# assigns it to the fuzz's tenant as a sender domain.
VERIFIED_SENDER_DOMAIN = "fuzz.example.com"


def verified_sender(body):
    """A bulk job's sender must be a verified SES identity and one of its tenant's senders
    (a documented 422 on `params.from` otherwise; tests/tests/workers.rs and the API's
    sender tests cover both): a generated address keeps its local part and moves to the
    tenant's domain."""
    params = body.get("params") if isinstance(body, dict) else None
    sender = params.get("from") if isinstance(params, dict) else None
    if isinstance(sender, str) and "@" in sender:
        params["from"] = sender.rsplit("@", 1)[0] + "@" + VERIFIED_SENDER_DOMAIN


@schemathesis.hook
def before_call(context, case, kwargs):
    """A fresh Idempotency-Key per request (a valid key stays valid): a generated key
    that repeats replays the first job, which may have been hidden (DELETE) in between;
    that replay and the 409 of a changed body are tested in tests/tests/jobs_api.rs.
    And every phase's bulk job sends from the verified domain (`verified_sender`)."""
    verified_sender(case.body)
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and isinstance(headers[name], str) and IDEMPOTENCY_KEY.match(headers[name]):
            headers[name] = uuid.uuid4().hex


@schemathesis.hook
def filter_query(context, query):
    """API Gateway refuses URLs over 8,192 characters before any function runs (and
    LocalStack's server drops them): such queries test the gateway, not this API."""
    if not isinstance(query, dict):
        return True
    return len(urlencode(query, doseq=True)) <= 7_000
