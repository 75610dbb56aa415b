"""Counts the HTTP requests in schemathesis NDJSON reports (argv: report files)."""
import json
import sys


def count(path: str) -> int:
    n = 0
    with open(path, encoding="utf-8") as report:
        for line in report:
            n += line.count('"request"')
    return n


print(sum(count(p) for p in sys.argv[1:]))
