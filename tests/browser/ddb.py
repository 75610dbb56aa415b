"""Sets attributes of a job's DynamoDB item, standing in for the workers in browser tests.

stdin: {"endpoint": "...", "table": "...", "id": "<job id>", "set": {attr: value, ...}}
   or: {..., "get": true} to print the item as JSON.
A value of null removes the attribute. Integers become numbers, strings strings, lists of
objects lists of maps (the `errors` sample).
"""
import json
import sys

import boto3


def main() -> None:
    req = json.load(sys.stdin)
    table = boto3.resource(
        "dynamodb",
        endpoint_url=req["endpoint"],
        region_name=req.get("region", "us-east-1"),
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).Table(req["table"])
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
