#!/usr/bin/env bash
# Lambda: what a warm local function costs the gateway. One tollgate worker (pinned to core 0)
# serves a mock route and a route to a local Python function run by the official runtime client
# (`python3 -m awslambdaric`, installed with pip when missing), measured with wrk:
#   (a) latency, one connection, one request at a time: the mock route (the gateway alone) and
#       the function route (gateway + functions service + Runtime API + runtime client + handler);
#       "added latency" is the difference of the medians (and of the 99th percentiles)
#   (b) throughput at CONNS connections against the function route (concurrency = CONNS processes,
#       all warm): invocations/s, the gateway's CPU per invocation (tollgate's own threads: the
#       worker and the functions thread), and the runtime clients' CPU per invocation (the
#       function processes, reported apart: that is Python and awslambdaric, not tollgate)
# Prints a markdown table (also loadtest/out/lambda-results.md; raw KEY=VALUE lines in
# loadtest/out/lambda-results.kv, raw tool output in loadtest/out/lambda/). Cold starts are
# excluded: every process is started and warmed before a measured run.
#
#   loadtest/lambda.sh
#
# Env knobs: DURATION (s per measured run, default 10), WARMUP (s, default 3), CONNS (default 4),
# DRIVER (io_uring | epoll, default io_uring), PORT (default 18900), TOLLGATE (binary; default
# target/release/tollgate, built unless SKIP_BUILD=1), KEEP_TMP=1 (keep the temp dir).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$HERE/out"
RAW="$OUT/lambda"
LT="$HERE/lt.py"

case "${1:-}" in
    "") ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-4}
DRIVER=${DRIVER:-io_uring}
PORT=${PORT:-18900}
ADMIN_PORT=$((PORT + 1))

exec 3>&1 4>&2
log() { printf '[lambda-loadtest] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

PIDS=()
# shellcheck source=loadtest/proc.sh
. "$HERE/proc.sh"

TMP=$(mktemp -d /tmp/tollgate-lambda.XXXXXX)
cleanup() {
    local rc=$?
    exec 1>&3 2>&4
    [[ -n $FG_PID ]] && kill "$FG_PID" 2>/dev/null || true
    local p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do stop_group "$p"; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v wrk >/dev/null 2>&1 || {
    log "installing wrk with apt-get"
    SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
}
python3 -c 'import awslambdaric' 2>/dev/null || {
    log "installing awslambdaric with pip"
    python3 -m pip install --quiet --user awslambdaric || die "cannot install awslambdaric"
}

TOLLGATE=${TOLLGATE:-$ROOT/target/release/tollgate}
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building the release binary"
    (cd "$ROOT" && cargo build --release --quiet)
fi
[[ -x $TOLLGATE ]] || die "no binary at $TOLLGATE"
port_in_use "$PORT" && die "port $PORT is in use"
mkdir -p "$RAW"

# the function: returns a small JSON document, as a typical API handler does
mkdir -p "$TMP/fn"
cat >"$TMP/fn/app.py" <<'EOF'
import json


def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"ok": True, "path": event["rawPath"]}),
    }
EOF
cat >"$TMP/tollgate.toml" <<EOF
[server]
listen = ["127.0.0.1:$PORT"]
workers = 1
pin_cores = true
driver = "$DRIVER"

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

[[function]]
name = "bench"
command = ["python3", "-m", "awslambdaric", "app.handler"]
cwd = "$TMP/fn"
timeout_ms = 3000
concurrency = $CONNS
idle_ms = 3600000
queue = 1024

[[route]]
key = "GET /fn"
function = "bench"

[[route]]
key = "GET /mock"
mock = { status = 200, body = '{"ok":true,"path":"/mock"}', headers = { "content-type" = "application/json" } }
EOF

start_bg "$TMP/tollgate.log" "$TOLLGATE" -c "$TMP/tollgate.toml"
TG=$STARTED_PID
for _ in $(seq 100); do port_in_use "$PORT" && break; sleep 0.1; done
alive "$TG" || die "tollgate did not start (see $TMP/tollgate.log)"

KV="$OUT/lambda-results.kv"
: >"$KV"
kv() { echo "$1=$2" >>"$KV"; }
kv driver "$DRIVER"
kv conns "$CONNS"
kv duration_s "$DURATION"

fn_pids() { pgrep -P "$TG" 2>/dev/null || true; }
sum_ticks() { local t=0 p; for p in "$@"; do [[ -r /proc/$p/stat ]] && t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }

# warm every process: CONNS parallel connections for WARMUP seconds start them all
log "warming $CONNS function processes"
run_fg taskset -c 1 wrk -t1 -c "$CONNS" -d "${WARMUP}s" "http://127.0.0.1:$PORT/fn" >"$RAW/warm.wrk" 2>&1 || die "warm-up failed"
mapfile -t FNS < <(fn_pids)
log "function processes: ${#FNS[@]}"
kv processes "${#FNS[@]}"

latency_run() {   # latency_run NAME PATH: one connection, sequential requests
    local name=$1 path=$2
    run_fg taskset -c 1 wrk -t1 -c1 -d "${WARMUP}s" "http://127.0.0.1:$PORT$path" >/dev/null 2>&1 || true
    run_fg taskset -c 1 wrk -t1 -c1 -d "${DURATION}s" --latency "http://127.0.0.1:$PORT$path" >"$RAW/$name.wrk" 2>&1 \
        || die "wrk $name failed"
    python3 "$LT" wrk "$RAW/$name.wrk" | sed "s/^/$name./" >>"$KV"
}
log "(a) latency, 1 connection: mock route"
latency_run mock1 /mock
log "(a) latency, 1 connection: function route"
latency_run fn1 /fn

log "(b) throughput, $CONNS connections: function route"
t0=$(cpu_ticks "$TG"); f0=$(sum_ticks "${FNS[@]}")
run_fg taskset -c 1 wrk -t1 -c "$CONNS" -d "${DURATION}s" --latency "http://127.0.0.1:$PORT/fn" >"$RAW/fnN.wrk" 2>&1 \
    || die "wrk fnN failed"
t1=$(cpu_ticks "$TG"); f1=$(sum_ticks "${FNS[@]}")
python3 "$LT" wrk "$RAW/fnN.wrk" | sed "s/^/fnN./" >>"$KV"
kv fnN.gateway_ticks $((t1 - t0))
kv fnN.runtime_ticks $((f1 - f0))
kv clk_tck "$(getconf CLK_TCK)"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep '^tollgate_function_' >"$RAW/metrics.txt" || true

python3 - "$KV" <<'EOF' | tee "$OUT/lambda-results.md"
import sys
kv = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().partition("=")
    kv[k] = v
f = lambda k: float(kv[k])
tck = f("clk_tck")
n = f("fnN.requests")
gw_us = f("fnN.gateway_ticks") / tck / n * 1e6
rt_us = f("fnN.runtime_ticks") / tck / n * 1e6
print(f"| measure ({kv['driver']}, 1 worker, {kv['conns']} warm processes) | value |")
print("|---|---|")
print(f"| mock route p50 / p99, 1 connection | {f('mock1.p50_us'):.0f} µs / {f('mock1.p99_us'):.0f} µs |")
print(f"| function route p50 / p99, 1 connection | {f('fn1.p50_us'):.0f} µs / {f('fn1.p99_us'):.0f} µs |")
print(f"| added latency of a warm function, p50 / p99 | {f('fn1.p50_us') - f('mock1.p50_us'):.0f} µs / {f('fn1.p99_us') - f('mock1.p99_us'):.0f} µs |")
print(f"| invocations/s, {kv['conns']} connections | {f('fnN.rps'):.0f} |")
print(f"| gateway CPU per invocation (worker + functions thread) | {gw_us:.1f} µs |")
print(f"| runtime client CPU per invocation (Python awslambdaric + handler, apart) | {rt_us:.1f} µs |")
print(f"| non-2xx responses | {int(f('fnN.non2xx')) + int(f('fn1.non2xx'))} |")
EOF
