"""Sets attributes of a job's DynamoDB item, standing in for the workers in browser tests.

stdin: {"endpoint": "...", "table": "...", "id": "<job id>", "set": {attr: value, ...}}
   or: {..., "get": true} to print the item as JSON
   or: {"endpoint", "dead_letter": "<queue name>", "purge": bool} to put one message on a
       dead-letter queue (standing in for a message SQS gave up on), or to purge it
   or: {..., "insert": {"tenant", "user", "type", "total", "summary"}} to write a queued job
       that no worker ever hears of (the API sent no plan for it), so a test can drive its
       progress deterministically; prints the new job's id and created_at.
A value of null removes the attribute. Integers become numbers, strings strings, lists of
objects lists of maps (the `errors` sample).
"""
import json
import os
import sys
import time

import boto3

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid() -> str:
    """A ULID (48-bit ms time + 80 random bits, Crockford base32), as the API's ids."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def insert(table, job: dict) -> None:
    job_id = ulid()
    now = time.time()
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (int(now * 1000) % 1000)
    table.put_item(Item={
        "pk": f"JOB#{job_id}", "sk": "JOB", "id": job_id, "job_type": job["type"],
        "tenant": job["tenant"], "user": job["user"], "user_lc": job["user"].lower(),
        "status": "queued", "total": job["total"], "succeeded": 0, "failed": 0,
        "created_at": created, "summary": job.get("summary", {}), "input_key": f"inputs/{job['tenant']}/{job_id}.json",
        "errors": [], "expires_at": int(now) + 86400,
        "list_sk": f"{created}#{job_id}", "list_tenant": job["tenant"],
        "list_tenant_user": f"{job['tenant']}#{job['user']}", "list_month": created[:7],
    }, ConditionExpression="attribute_not_exists(pk)")
    json.dump({"id": job_id, "created_at": created}, sys.stdout)


def main() -> None:
    req = json.load(sys.stdin)
    if req.get("dead_letter"):
        sqs = boto3.client("sqs", endpoint_url=req["endpoint"], region_name=req.get("region", "us-east-1"),
                           aws_access_key_id="test", aws_secret_access_key="test")
        url = sqs.get_queue_url(QueueName=req["dead_letter"])["QueueUrl"]
        if req.get("purge"):
            sqs.purge_queue(QueueUrl=url)
        else:
            sqs.send_message(QueueUrl=url, MessageBody='{"kind":"plan","job_id":"dead","tenant":"dead"}')
        return
    table = boto3.resource(
        "dynamodb",
        endpoint_url=req["endpoint"],
        region_name=req.get("region", "us-east-1"),
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).Table(req["table"])
    if req.get("insert"):
        insert(table, req["insert"])
        return
    key = {"pk": f"JOB#{req['id']}", "sk": "JOB"}
    if req.get("get"):
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
        if item is None:
            sys.exit(f"no job {req['id']}")
        json.dump(item, sys.stdout, default=lambda n: int(n) if n == int(n) else float(n))
        return
    sets, removes, names, values = [], [], {}, {}
    for i, (attr, value) in enumerate(req["set"].items()):
        names[f"#a{i}"] = attr
        if value is None:
            removes.append(f"#a{i}")
        else:
            values[f":v{i}"] = value
            sets.append(f"#a{i} = :v{i}")
    expression = " ".join(part for part in (
        "SET " + ", ".join(sets) if sets else "",
        "REMOVE " + ", ".join(removes) if removes else "",
    ) if part)
    args = {
        "Key": key,
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        # Only ever touch an existing job: a typo must fail, not create a stray item.
        "ConditionExpression": "attribute_exists(pk)",
    }
    if values:
        args["ExpressionAttributeValues"] = values
    table.update_item(**args)


if __name__ == "__main__":
    main()
