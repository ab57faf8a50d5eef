#!/usr/bin/env bash
# What a feature costs per request, side by side: tollgate plain and tollgate with VARIANT on,
# ROUNDS times in one run, with the same pinning as run.sh: the proxies' one worker each on
# core 0, the nginx origin and wrk on the last core. Both proxies run for the whole
# measurement (plain on one port, VARIANT on the next), so no start-up is measured. By default
# (MODE=together) each round loads both at once, one wrk each: drift in the VM (which moves a
# run's CPU per request by ±10 % here from one few-second run to the next) then hits both
# sides alike and a round's ratio is good to about ±1 %. MODE=pairs loads one side after the
# other instead, the order swapped every round (the earlier method: fairer to a feature that
# only pays off at full load, noisier here). CPU is the proxy process's scheduler run time
# (nanoseconds, /proc/PID/task/*/schedstat). Prints each round, then the overhead of the
# totals (all CPU over all requests, each side) with the median, min and max of the rounds.
#
#   loadtest/overhead.sh [VARIANT] [ROUNDS]     VARIANT: obs (default) | metrics | limits | jwt | mapping | ab
#
#   obs      the admin listener (per-request metrics) and a JSON access log to a file
#   metrics  the admin listener only
#   limits   a gateway limit, a route limit and an API key with a plan limit, far above the load
#   jwt      a JWT authorizer on the route, every request carrying the same valid RS256 token (a
#            token-cache hit after the first; plain sends the same Authorization field); the key
#            set is served by the nginx origin, key and token made here with openssl
#   mapping  parameter mapping on the route: 3 header/query operations (append x-user from a
#            client header, overwrite x-request-id from $context.requestId, remove the `debug`
#            query parameter); both sides send the same header and query
#   ab       no feature: the same plain config on BASE_BIN (another build, e.g. the commit before
#            a refactor: `git worktree add /tmp/base REV && cargo build --release` there) against
#            this build, to show what a change costs per request
#
# Env knobs: MODE (together | pairs), MAPPING (the mapping variant's request_parameters, a
# TOML inline table), DURATION (s per measurement, default 6), CONNS (default 64), DRIVER (default
# io_uring), PORT_BASE (default 18500), SKIP_BUILD=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VARIANT=${1:-obs}
ROUNDS=${2:-6}
DURATION=${DURATION:-6}
CONNS=${CONNS:-64}
DRIVER=${DRIVER:-io_uring}
MODE=${MODE:-together}
PORT_BASE=${PORT_BASE:-18500}
ORIGIN_PORT=$PORT_BASE
BASE_PORT=$((PORT_BASE + 1))
VARIANT_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))
LAST=$(($(nproc) - 1))
# shellcheck source=features.sh
. "$HERE/features.sh"
TCK=$(getconf CLK_TCK)

log() { printf '[overhead] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
case "$MODE" in together | pairs) ;; *) die "MODE must be together or pairs" ;; esac
case "$VARIANT" in obs | metrics | limits | jwt | mapping | ab) ;; *) die "VARIANT must be obs, metrics, limits, jwt, mapping or ab" ;; esac
if [[ $VARIANT == ab ]]; then
    [[ -x ${BASE_BIN:-} ]] || die "ab needs BASE_BIN=path/to/another/tollgate"
fi
for v in ROUNDS DURATION CONNS PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || die "$v must be a positive integer"
done
for tool in wrk nginx taskset python3 openssl; do
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
BIN="${TOLLGATE:-$ROOT/target/release/tollgate}"

# jwt: an RSA key, its JWKS (served by the origin) and one token valid for a day
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/jwt.pem" 2>/dev/null
python3 - "$TMP" <<'PY'
import base64, json, subprocess, sys
tmp = sys.argv[1]
mod = subprocess.run(["openssl", "rsa", "-in", f"{tmp}/jwt.pem", "-noout", "-modulus"],
                     capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
n = base64.urlsafe_b64encode(bytes.fromhex(mod)).rstrip(b"=").decode()
json.dump({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"}]},
          open(f"{tmp}/jwks.json", "w"))
PY
# nginx's workers (not root) serve the key set out of the temporary directory
chmod 755 "$TMP" && chmod 644 "$TMP/jwks.json"
now=$(date +%s)
claims=$(printf '{"iss":"https://issuer.loadtest/","aud":"loadtest","sub":"user-1","scope":"read","iat":%d,"exp":%d}' \
    "$now" $((now + 86400)))
JWT_INPUT="$(printf '{"alg":"RS256","typ":"JWT","kid":"k1"}' | b64url).$(printf '%s' "$claims" | b64url)"
JWT_TOKEN="$JWT_INPUT.$(printf '%s' "$JWT_INPUT" | openssl dgst -sha256 -sign "$TMP/jwt.pem" | b64url)"

cat >"$TMP/origin.conf" <<EOF
worker_processes 1;
pid $TMP/origin.pid;
error_log $TMP/origin-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$ORIGIN_PORT reuseport;
        location / { return 200 "hello world\n"; }
        location = /jwks.json { default_type application/json; alias $TMP/jwks.json; }
    }
}
EOF
taskset -c "$LAST" nginx -c "$TMP/origin.conf" -p "$TMP" -g 'daemon off;' &
PIDS+=($!)

# the mapping variant's operations (MAPPING overrides them, same TOML inline-table shape)
MAPPING_DEFAULT='{ "append:header.x-user" = "$request.header.x-client", "overwrite:header.x-request-id" = "$context.requestId", "remove:querystring.debug" = "'"''"'" }'

config() { # $1: base | obs | metrics | limits | jwt | mapping; $2: the port
    local route_extra=""
    [[ $1 == limits ]] && route_extra=$(limits_route_lines)
    [[ $1 == jwt ]] && route_extra='authorizer = "users"'
    [[ $1 == mapping ]] && route_extra="request_parameters = ${MAPPING:-$MAPPING_DEFAULT}"
    cat <<EOF
[server]
listen = ["127.0.0.1:$2"]
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
        jwt) jwt_tables ;;
    esac
}

jwt_tables() {
    cat <<EOF

[[authorizer]]
name = "users"
type = "jwt"
issuer = "https://issuer.loadtest/"
audience = ["loadtest"]
jwks_uri = "http://127.0.0.1:$ORIGIN_PORT/jwks.json"
EOF
}

start() { # $1: base | variant; starts that proxy on its port
    local bin=$BIN port=$BASE_PORT cfg=base
    if [[ $1 == variant ]]; then
        port=$VARIANT_PORT
        [[ $VARIANT == ab ]] || cfg=$VARIANT
    elif [[ $VARIANT == ab ]]; then
        bin=$BASE_BIN # base: the other build; variant: this one, both on the plain config
    fi
    config "$cfg" "$port" >"$TMP/$1.toml"
    "$bin" -c "$TMP/$1.toml" 2>"$TMP/$1.err" &
    PIDS+=($!)
    PROXY[$1]=$!
    for _ in $(seq 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
        sleep 0.05
    done
    die "$1 did not start: $(cat "$TMP/$1.err")"
}

cpu_ns() { # $1: pid; the run time of all its threads so far
    cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

wrk_args() { # $1: base | variant; sets ARGS: wrk's headers and URL for that side
    local port=$BASE_PORT
    [[ $1 == variant ]] && port=$VARIANT_PORT
    ARGS=()
    [[ $VARIANT == limits && $1 == variant ]] && ARGS=(-H "x-api-key: $LOADTEST_KEY")
    # jwt: both sides send the token, so only the authorizer differs
    [[ $VARIANT == jwt ]] && ARGS=(-H "authorization: Bearer $JWT_TOKEN")
    # mapping: both sides send the header and query the mapping reads and removes
    if [[ $VARIANT == mapping ]]; then
        ARGS=(-H "x-client: alice" "http://127.0.0.1:$port/?debug=1&page=2")
    else
        ARGS+=("http://127.0.0.1:$port/")
    fi
}

requests() { # $1: wrk's output file; the requests it counted (non-2xx answers are fatal)
    local non2xx
    non2xx=$(awk '/Non-2xx/ { print $NF }' "$1")
    [[ -z $non2xx ]] || die "$non2xx non-2xx responses: $(cat "$1")"
    awk '/ requests in / { print $1 }' "$1"
}

measure_alone() { # $1: base | variant; only that side loaded; prints "CPU-ns requests"
    wrk_args "$1"
    taskset -c "$LAST" wrk -t1 -c"$CONNS" -d1s "${ARGS[@]}" >/dev/null
    local a b
    a=$(cpu_ns "${PROXY[$1]}")
    taskset -c "$LAST" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${ARGS[@]}" >"$TMP/$1.wrk"
    b=$(cpu_ns "${PROXY[$1]}")
    echo "$((b - a)) $(requests "$TMP/$1.wrk")"
}

measure() { # $1: the round; prints "base-ns base-req variant-ns variant-req"
    if [[ $MODE == pairs ]]; then # one side after the other, the order swapped every round
        local b v
        if (($1 % 2)); then
            b=$(measure_alone base)
            v=$(measure_alone variant)
        else
            v=$(measure_alone variant)
            b=$(measure_alone base)
        fi
        echo "$b $v"
        return
    fi
    local s
    for s in base variant; do
        wrk_args $s
        taskset -c "$LAST" wrk -t1 -c"$CONNS" -d1s "${ARGS[@]}" >/dev/null &
    done
    wait
    local a0 a1 b0 b1
    a0=$(cpu_ns "${PROXY[base]}")
    a1=$(cpu_ns "${PROXY[variant]}")
    for s in base variant; do
        wrk_args $s
        taskset -c "$LAST" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${ARGS[@]}" >"$TMP/$s.wrk" &
    done
    wait
    b0=$(cpu_ns "${PROXY[base]}")
    b1=$(cpu_ns "${PROXY[variant]}")
    echo "$((b0 - a0)) $(requests "$TMP/base.wrk") $((b1 - a1)) $(requests "$TMP/variant.wrk")"
}

declare -A PROXY
start base
start variant

log "$VARIANT vs plain, $ROUNDS rounds of ${DURATION}s ($MODE, $CONNS connections each)"
runs=()
for i in $(seq "$ROUNDS"); do
    r=$(measure "$i")
    runs+=("$r")
    python3 - "$i" "$VARIANT" $r <<'EOF'
import sys
i, name = sys.argv[1], sys.argv[2]
b, br, v, vr = map(int, sys.argv[3:7])
print(f"round {i}: plain {b / br / 1e3:.3f} µs, {name} {v / vr / 1e3:.3f} µs per request: "
      f"{((v / vr) / (b / br) - 1) * 100:+.1f} %")
EOF
done
python3 - "${runs[@]}" <<'EOF'
import statistics, sys
runs = [list(map(int, r.split())) for r in sys.argv[1:]]
pairs = [((v / vr) / (b / br) - 1) * 100 for b, br, v, vr in runs]
tb = sum(r[0] for r in runs) / sum(r[1] for r in runs)
tv = sum(r[2] for r in runs) / sum(r[3] for r in runs)
print(f"overhead: {(tv / tb - 1) * 100:+.1f} % of the totals ({tb / 1e3:.3f} vs {tv / 1e3:.3f} µs "
      f"per request); rounds: median {statistics.median(pairs):+.1f} %, min {min(pairs):+.1f} %, "
      f"max {max(pairs):+.1f} % over {len(pairs)}")
EOF
