# The two commands of the README, and their parts.
#   make up    LocalStack + the local identity provider + the deployed stack + demo jobs; prints the
#              API URL, Jobs page URL, the demo users and a dev token
#   make test  everything CI runs: template and Rust lint, executor tests, deploy, unit + end-to-end + browser
#              tests, then the API fuzz and the IAM check (security-test)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
INFRA := bash infra/run.sh

.PHONY: up test localstack oidc lint rust-lint executor-test deploy cargo-test browser-test security-test bench aws-build valgrind seed token down destroy

up: localstack deploy seed token

test: localstack lint rust-lint executor-test deploy cargo-test browser-test security-test

localstack:
	bash localstack/start.sh

# The local OpenID Connect provider (localstack/oidc) the stack's OidcIssuer points at.
oidc:
	bash localstack/oidc/oidc.sh start

# cfn-lint comes from LocalStack's pinned venv in host mode; otherwise from a venv of its own.
# Then `sam validate --lint` (SAM's transform + cfn-lint) from the AWS tooling venv
# (infra/aws-venv.sh); offline: no AWS credentials, region given.
lint:
	@lint=localstack/.run/venv/bin/cfn-lint; \
	if [ ! -x "$$lint" ]; then \
	  lint=.artifacts/lint-venv/bin/cfn-lint; \
	  [ -x "$$lint" ] || { python3 -m venv .artifacts/lint-venv && .artifacts/lint-venv/bin/pip install -q "$$(grep '^cfn-lint==' localstack/requirements.txt)"; }; \
	fi; \
	echo "cfn-lint template.yaml"; "$$lint" template.yaml
	@sam="$$(bash infra/aws-venv.sh)/sam"; \
	echo "sam validate --lint template.yaml"; SAM_CLI_TELEMETRY=0 "$$sam" validate --lint --region us-east-1 --template-file template.yaml

executor-test:
	bash localstack/test.sh

# Deploys with the local provider as OidcIssuer (dev tokens stay on in LocalStack), then
# registers the Jobs page's URL (it holds the API id) as the provider's redirect URI.
OIDC_PARAMS := --param OidcIssuer=http://127.0.0.1:4580 --param OidcAudience=jobs-api --param OidcClientId=jobs-page --param OidcLeewaySeconds=1
deploy: oidc
	$(INFRA) deploy $(OIDC_PARAMS)
	bash localstack/oidc/oidc.sh register "$$(INFRA_QUIET=1 $(INFRA) outputs --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).JobsPageUrl))')"

# rustfmt (rustfmt.toml) and clippy with every warning an error, over every target.
rust-lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked --profile local -- -D warnings

# The `local` profile: the dependencies built for the deployed functions serve the tests too.
cargo-test:
	$(CARGO) test --workspace --locked --profile local

# The Jobs page in Debian's Chromium (playwright-core): installs what it needs, runs node --test.
browser-test:
	bash tests/browser/run.sh

# schemathesis over every operation (>= 1,000 requests) and the deployed IAM roles.
security-test:
	bash tests/security/run.sh

# Not part of `make test`: the design against its naive alternatives, printed as a table
# (needs the stack: make up). BENCH=pipeline|listing|fairness|metrics|init|cpu runs one.
bench: valgrind
	$(CARGO) run -q --profile bench-tools --locked -p jobs-bench -- $(or $(BENCH),all)

# Not part of `make test`: `sam build --beta-features` of every function for AWS (cargo-lambda,
# zig and SAM from infra/aws-requirements.txt; Cargo.toml's `release` profile, ~15 min on
# 2 cores), into .aws-sam/; prints each bootstrap's size, zip size and glibc need.
# ARCH=arm64 needs `rustup target add aarch64-unknown-linux-gnu` on a machine that can fetch
# it (these cannot): only x86_64 builds here.
aws-build:
	bash infra/aws-build.sh

valgrind:
	@command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }

seed:
	$(INFRA) seed

token:
	@echo "Admin dev token (1 h; paste it into the Jobs page, or: curl -H \"Authorization: Bearer <token>\" <ApiUrl>/jobs):"
	@INFRA_QUIET=1 $(INFRA) token --tenant acme --user alice --admin

destroy:
	$(INFRA) destroy

down:
	bash localstack/oidc/oidc.sh stop
	bash localstack/stop.sh
