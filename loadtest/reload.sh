#!/usr/bin/env bash
# Hot reload under load: wrk drives tollgate (a proxied route and a mock route, access log on)
# while the config is changed and reloaded RELOADS times through POST /reload. Passes when every
# reload is applied and wrk saw no socket error and no non-2xx response. Loopback only, bounded.
#
# Env knobs: RELOADS (default 20), DURATION (wrk seconds, default 12), CONNS (default 64),
# WORKERS (tollgate workers, default 2), DRIVER (auto | io_uring | epoll, default auto),
# PORT_BASE (default 18300: origin, tollgate +1, admin +2), SKIP_BUILD=1, KEEP_TMP=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RELOADS=${RELOADS:-20}
DURATION=${DURATION:-12}
CONNS=${CONNS:-64}
WORKERS=${WORKERS:-2}
DRIVER=${DRIVER:-auto}
PORT_BASE=${PORT_BASE:-18300}
ORIGIN_PORT=$PORT_BASE
TG_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))

log() { printf '[reload] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in RELOADS DURATION CONNS WORKERS PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || die "$v must be a positive integer"
done
for tool in wrk nginx curl; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y wrk nginx curl)"
done
# the reloads must fit in the run: one every ~0.4 s after a 1 s start
(( DURATION * 10 >= RELOADS * 4 + 20 )) || die "DURATION too short for $RELOADS reloads"

TMP=$(mktemp -d /tmp/tollgate-reload.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ ${KEEP_TMP:-} == 1 ]] || rm -rf "$TMP"
}
trap cleanup EXIT

if [[ ${SKIP_BUILD:-} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
BIN="$ROOT/target/release/tollgate"

# ---------------------------------------------------------------- origin (nginx)
mkdir -p "$TMP/ngx"
cat >"$TMP/ngx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/ngx/nginx.pid;
error_log $TMP/ngx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$ORIGIN_PORT reuseport;
        location / { return 200 "hello from origin\n"; }
    }
}
EOF
nginx -c "$TMP/ngx/nginx.conf" -p "$TMP/ngx" -g 'daemon off;' &
PIDS+=($!)

# ---------------------------------------------------------------- tollgate
config() { # $1: generation
    cat <<EOF
[server]
listen = ["127.0.0.1:$TG_PORT"]
workers = $WORKERS
driver = "$DRIVER"

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

[access_log]
path = "$TMP/access.log"

[[upstream]]
name = "origin"
targets = ["127.0.0.1:$ORIGIN_PORT"]
response_timeout_ms = $((5000 + $1 % 2))

[[route]]
key = "GET /mock"
mock = { status = 200, body = "generation $1" }

[[route]]
key = "GET /gen$1"
mock = { status = 200, body = "only in generation $1" }

[[route]]
key = "\$default"
upstream = "origin"
EOF
}
config 0 >"$TMP/tollgate.toml"
"$BIN" -c "$TMP/tollgate.toml" 2>"$TMP/tollgate.err" &
PIDS+=($!)
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$TG_PORT/" >/dev/null 2>&1 && break
    sleep 0.05
done
curl -sf "http://127.0.0.1:$TG_PORT/" >/dev/null || die "tollgate did not come up: $(cat "$TMP/tollgate.err")"

# ---------------------------------------------------------------- load + reloads
log "wrk: ${DURATION}s, $CONNS connections on the proxied route and 8 on the mock route; $RELOADS reloads"
wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$TG_PORT/" >"$TMP/wrk-proxy.txt" 2>&1 &
WRK1=$!
wrk -t1 -c8 -d"${DURATION}s" "http://127.0.0.1:$TG_PORT/mock" >"$TMP/wrk-mock.txt" 2>&1 &
WRK2=$!
sleep 1
failed_reloads=0
for i in $(seq "$RELOADS"); do
    config "$i" >"$TMP/tollgate.toml.new"
    mv "$TMP/tollgate.toml.new" "$TMP/tollgate.toml"
    code=$(curl -s -o "$TMP/reload-$i.json" -w '%{http_code}' -X POST "http://127.0.0.1:$ADMIN_PORT/reload")
    if [[ $code != 200 ]]; then
        failed_reloads=$((failed_reloads + 1))
        log "reload $i: HTTP $code $(cat "$TMP/reload-$i.json")"
    fi
    body=$(curl -s "http://127.0.0.1:$TG_PORT/gen$i")
    [[ $body == "only in generation $i" ]] || { failed_reloads=$((failed_reloads + 1)); log "reload $i not in effect: $body"; }
    sleep 0.4
done
wait "$WRK1" "$WRK2"

# ---------------------------------------------------------------- verdict
summarize() { # $1: wrk output file; prints "requests non2xx socket_errors"
    awk '
        / requests in / { req = $1 }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/ { gsub(",", ""); se = $4 + $6 + $8 + $10 }
        END { printf "%d %d %d\n", req, bad + 0, se + 0 }' "$1"
}
read -r p_req p_bad p_err < <(summarize "$TMP/wrk-proxy.txt")
read -r m_req m_bad m_err < <(summarize "$TMP/wrk-mock.txt")
generation=$(curl -s "http://127.0.0.1:$ADMIN_PORT/status" | sed -n 's/.*"generation":\([0-9]*\).*/\1/p' | head -1)
kill -TERM "${PIDS[1]}"
wait "${PIDS[1]}" 2>/dev/null || true
sleep 0.2
logged=$(wc -l <"$TMP/access.log")
{
    echo "| reloads applied | generation | requests (proxied / mock) | non-2xx | socket errors | access-log lines |"
    echo "|---|---|---|---|---|---|"
    echo "| $((RELOADS - failed_reloads)) of $RELOADS | $generation | $p_req / $m_req | $((p_bad + m_bad)) | $((p_err + m_err)) | $logged |"
} | { mkdir -p "$HERE/out"; tee "$HERE/out/reload.md"; }
ok=1
(( failed_reloads == 0 )) || ok=0
(( p_bad + m_bad + p_err + m_err == 0 )) || ok=0
[[ $generation == "$RELOADS" ]] || ok=0
# every request answered is logged once (wrk's plus the checks' and startup probes)
(( logged >= p_req + m_req )) || ok=0
if (( ok )); then
    log "PASS: $RELOADS reloads under load, no failed request"
else
    log "FAIL (wrk output and logs in $TMP)"
    KEEP_TMP=1
    exit 1
fi
