#!/usr/bin/env bash
# What a feature costs per request, side by side: tollgate plain and tollgate with VARIANT on,
# alternated PAIRS times in one run (so drift in the VM hits both alike), with the same pinning
# as run.sh: the proxy's one worker on core 0, the nginx origin and wrk on the last core.
# Prints each pair, then the mean, min and max of the overhead in CPU per request.
#
#   loadtest/overhead.sh [VARIANT] [PAIRS]      VARIANT: obs (default) | metrics | limits | jwt | mapping | ab
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
case "$VARIANT" in obs | metrics | limits | jwt | mapping | ab) ;; *) die "VARIANT must be obs, metrics, limits, jwt, mapping or ab" ;; esac
if [[ $VARIANT == ab ]]; then
    [[ -x ${BASE_BIN:-} ]] || die "ab needs BASE_BIN=path/to/another/tollgate"
fi
for v in PAIRS DURATION CONNS PORT_BASE; do
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

config() { # $1: base | obs | metrics | limits
    local route_extra=""
    [[ $1 == limits ]] && route_extra=$(limits_route_lines)
    [[ $1 == jwt ]] && route_extra='authorizer = "users"'
    [[ $1 == mapping ]] && route_extra='request_parameters = { "append:header.x-user" = "$request.header.x-client", "overwrite:header.x-request-id" = "$context.requestId", "remove:querystring.debug" = "'"''"'" }'
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
    # jwt: both sides send the token, so only the authorizer differs
    [[ $VARIANT == jwt ]] && hdr=(-H "authorization: Bearer $JWT_TOKEN")
    # mapping: both sides send the header and query the mapping reads and removes
    local url="http://127.0.0.1:$TG_PORT/"
    if [[ $VARIANT == mapping ]]; then
        hdr=(-H "x-client: alice")
        url="http://127.0.0.1:$TG_PORT/?debug=1&page=2"
    fi
    taskset -c "$LAST" wrk -t1 -c"$CONNS" -d2s "${hdr[@]}" "$url" >/dev/null
    local a b out req non2xx
    a=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    out=$(taskset -c "$LAST" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "$url")
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
