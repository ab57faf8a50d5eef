#!/usr/bin/env bash
# What a feature costs per request, side by side: tollgate plain and tollgate with VARIANT on,
# alternated PAIRS times in one run (so drift in the VM hits both alike), with the same pinning
# as run.sh: the proxy's one worker on core 0, the nginx origin and wrk on the last core.
# Prints each pair, then the mean, min and max of the overhead in CPU per request.
#
#   loadtest/overhead.sh [VARIANT] [PAIRS]      VARIANT: obs (default) | metrics | limits
#
#   obs      the admin listener (per-request metrics) and a JSON access log to a file
#   metrics  the admin listener only
#   limits   a gateway limit, a route limit and an API key with a plan limit, far above the load
#   ab       no feature: the same plain config on BASE_BIN (another build, e.g. the commit before
#            a refactor: `git worktree add /tmp/base REV && cargo build --release` there) against
#            this build, to show what a change costs per request
#
# Env knobs: DURATION (s per measurement, default 6), CONNS (default 64), DRIVER (default
# io_uring), PORT_BASE (default 18500), SKIP_BUILD=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VARIANT=${1:-obs}
PAIRS=${2:-6}
DURATION=${DURATION:-6}
CONNS=${CONNS:-64}
DRIVER=${DRIVER:-io_uring}
PORT_BASE=${PORT_BASE:-18500}
ORIGIN_PORT=$PORT_BASE
TG_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))
LAST=$(($(nproc) - 1))
# shellcheck source=features.sh
. "$HERE/features.sh"
TCK=$(getconf CLK_TCK)

log() { printf '[overhead] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
case "$VARIANT" in obs | metrics | limits | ab) ;; *) die "VARIANT must be obs, metrics, limits or ab" ;; esac
if [[ $VARIANT == ab ]]; then
    [[ -x ${BASE_BIN:-} ]] || die "ab needs BASE_BIN=path/to/another/tollgate"
fi
for v in PAIRS DURATION CONNS PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || die "$v must be a positive integer"
done
for tool in wrk nginx taskset python3; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y wrk nginx util-linux python3)"
done

TMP=$(mktemp -d /tmp/tollgate-overhead.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

if [[ ${SKIP_BUILD:-} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
BIN="$ROOT/target/release/tollgate"

cat >"$TMP/origin.conf" <<EOF
worker_processes 1;
pid $TMP/origin.pid;
error_log $TMP/origin-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:$ORIGIN_PORT reuseport; location / { return 200 "hello world\n"; } }
}
EOF
taskset -c "$LAST" nginx -c "$TMP/origin.conf" -p "$TMP" -g 'daemon off;' &
PIDS+=($!)

config() { # $1: base | obs | metrics | limits
    local route_extra=""
    [[ $1 == limits ]] && route_extra=$(limits_route_lines)
    cat <<EOF
[server]
listen = ["127.0.0.1:$TG_PORT"]
workers = 1
pin_cores = true
driver = "$DRIVER"

[[upstream]]
name = "origin"
targets = ["127.0.0.1:$ORIGIN_PORT"]
max_idle_per_worker = 256

[[route]]
key = "\$default"
upstream = "origin"
$route_extra
EOF
    case $1 in
        obs) observability_tables "$ADMIN_PORT" "$TMP" ;;
        metrics) observability_tables "$ADMIN_PORT" ;;
        limits) limits_tables ;;
    esac
}

measure() { # $1: base | variant; prints CPU µs per request
    local bin=$BIN
    if [[ $VARIANT == ab ]]; then
        # base: the other build; ab: this one, both on the plain config
        [[ $1 == base ]] && bin=$BASE_BIN
        config base >"$TMP/t.toml"
    else
        config "$1" >"$TMP/t.toml"
    fi
    rm -f "$TMP/access.log"
    "$bin" -c "$TMP/t.toml" 2>"$TMP/tollgate.err" &
    local pid=$!
    for _ in $(seq 100); do
        (echo >"/dev/tcp/127.0.0.1/$TG_PORT") 2>/dev/null && break
        sleep 0.05
    done
    local hdr=()
    [[ $1 == limits ]] && hdr=(-H "x-api-key: $LOADTEST_KEY")
    taskset -c "$LAST" wrk -t1 -c"$CONNS" -d2s "${hdr[@]}" "http://127.0.0.1:$TG_PORT/" >/dev/null
    local a b out req non2xx
    a=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    out=$(taskset -c "$LAST" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "http://127.0.0.1:$TG_PORT/")
    b=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    req=$(awk '/ requests in / { print $1 }' <<<"$out")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
    [[ -z $non2xx ]] || die "$1: $non2xx non-2xx responses"
    python3 -c "print(f'{($b - $a) / $TCK * 1e6 / $req:.3f}')"
}

log "$VARIANT vs plain, $PAIRS alternating pairs of ${DURATION}s wrk runs ($CONNS connections)"
over=()
for i in $(seq "$PAIRS"); do
    base=$(measure base)
    with=$(measure "$VARIANT")
    o=$(python3 -c "print(f'{($with / $base - 1) * 100:+.1f}')")
    over+=("$o")
    echo "pair $i: plain $base µs, $VARIANT $with µs per request: $o %"
done
python3 - "${over[@]}" <<'EOF'
import sys
v = [float(x) for x in sys.argv[1:]]
print(f"overhead: mean {sum(v) / len(v):+.1f} %, min {min(v):+.1f} %, max {max(v):+.1f} % over {len(v)} pairs")
EOF
