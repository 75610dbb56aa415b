#!/usr/bin/env python3
"""An SES stand-in with a sending-rate limit, for the pacing tests: an HTTP proxy in front of
LocalStack that refuses `SendEmail` above RATE per second (one token bucket shared by every
caller, holding one second of sends) with the error real SES gives, and forwards
everything else unchanged. A worker reaches it through the SDK's standard
`AWS_ENDPOINT_URL_SES` setting.

    python3 ses_throttle_proxy.py RATE [UPSTREAM]    # prints "listening <port>", then serves

`GET /_proxy/stats` answers {"accepted": n, "throttled": n} (SendEmail calls).
Standard library only.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE = float(sys.argv[1])
UPSTREAM = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:4566"

# SES's answer above the account's sending rate (SES API v1, query protocol).
THROTTLED = (
    b'<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">'
    b"<Error><Type>Sender</Type><Code>Throttling</Code>"
    b"<Message>Maximum sending rate exceeded.</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


class Bucket:
    def __init__(self, rate):
        self.rate, self.tokens, self.at = rate, rate, time.monotonic()
        self.lock = threading.Lock()
        self.accepted = self.throttled = 0

    def take(self):
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                self.accepted += 1
                return True
            self.throttled += 1
            return False


BUCKET = Bucket(RATE)


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="text/xml"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_proxy/stats":
            stats = {"accepted": BUCKET.accepted, "throttled": BUCKET.throttled}
            return self.answer(200, json.dumps(stats).encode(), "application/json")
        self.forward(b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if b"Action=SendEmail" in body and not BUCKET.take():
            return self.answer(400, THROTTLED)
        self.forward(body)

    def forward(self, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        request = urllib.request.Request(UPSTREAM + self.path, data=body or None, method=self.command, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, data, kind = response.status, response.read(), response.headers.get("Content-Type", "text/xml")
        except urllib.error.HTTPError as error:
            status, data, kind = error.code, error.read(), error.headers.get("Content-Type", "text/xml")
        self.answer(status, data, kind)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()
