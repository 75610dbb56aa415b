"""The environment a function's process runs with.

Starts from a short allow-list of the host's variables (not the whole host
environment: the host's AWS profile, credentials or proxies must not leak into a
function), then LocalStack's variables for the environment, then what a Lambda
sandbox provides itself (AWS_LAMBDA_RUNTIME_API, LAMBDA_TASK_ROOT, HOME, TMPDIR).
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

# Host variables a process needs to run at all (find interpreters, pick a locale,
# verify TLS). Everything else a function needs comes from its configuration.
INHERITED_HOST_VARS = ("PATH", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR")

# LocalStack's public hostname resolves to 127.0.0.1 through public DNS, which is not
# reachable offline; inside its own container LocalStack also answers to "localstack".
LOCALSTACK_HOSTNAME = "localhost.localstack.cloud"
_LOCALSTACK_HOST_IN_URL = re.compile(r"(?<=://)localhost\.localstack\.cloud(?=[:/]|$)")


def build_environment(
    localstack_vars: dict,
    *,
    runtime_api: str,
    code_dir: Path,
    home: Path,
    tmp: Path,
    gateway_url: str,
) -> dict[str, str]:
    """Merge the process environment; later sources win over earlier ones."""
    env = {name: os.environ[name] for name in INHERITED_HOST_VARS if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    # Per-environment folders: a function that writes to ~ or $TMPDIR cannot see
    # another environment's files or the host user's (~/.aws, ~/.cargo, ...).
    env["HOME"] = str(home)
    env["TMPDIR"] = str(tmp)
    # LocalStack hands over ints (memory size, timeout) next to strings.
    env.update({key: str(value) for key, value in localstack_vars.items() if value is not None})
    env = rewrite_localstack_endpoints(env, gateway_url)
    env.update(
        AWS_LAMBDA_RUNTIME_API=runtime_api,
        # Lambda runs code from /var/task; here the unzipped code folder plays that role.
        LAMBDA_TASK_ROOT=str(code_dir),
        LAMBDA_RUNTIME_DIR=str(code_dir),
    )
    return env


def rewrite_localstack_endpoints(env: dict[str, str], gateway_url: str) -> dict[str, str]:
    """Point every LocalStack endpoint at the gateway the host process can reach.

    - AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> that name LocalStack by a
      hostname (localhost.localstack.cloud or a subdomain, "localstack") become the
      gateway URL, e.g. http://127.0.0.1:4566.
    - Any other value that contains a URL on exactly localhost.localstack.cloud (e.g.
      a queue URL from a CloudFormation output) gets 127.0.0.1 as host instead; port
      and path are kept. Subdomains are left alone elsewhere: they carry routing
      information (e.g. S3 virtual-host buckets).
    """
    gateway_host = urlsplit(gateway_url).hostname
    rewritten = {}
    for key, value in env.items():
        if _is_endpoint_var(key) and _names_localstack(value):
            value = gateway_url
        else:
            value = _LOCALSTACK_HOST_IN_URL.sub(gateway_host, value)
        rewritten[key] = value
    if "LOCALSTACK_HOSTNAME" in rewritten:
        rewritten["LOCALSTACK_HOSTNAME"] = gateway_host
    return rewritten


def _is_endpoint_var(key: str) -> bool:
    return key == "AWS_ENDPOINT_URL" or key.startswith("AWS_ENDPOINT_URL_")


def _names_localstack(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in (LOCALSTACK_HOSTNAME, "localstack") or host.endswith("." + LOCALSTACK_HOSTNAME)
