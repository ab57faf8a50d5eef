#!/usr/bin/env bash
# HTTP/2 side by side: tollgate and nginx (Debian package, its http_v2 module) serving HTTP/2 over
# TLS (ALPN h2, the same ECDSA P-256 certificate) and over h2c (prior knowledge), one worker each
# pinned to core 0, measured in alternating pairs (tollgate, nginx, tollgate, nginx, ...):
#   (a) h2load -c CONNS -m STREAMS small GETs over TLS: CPU per request, requests/s, latency,
#       against a mock route (tollgate mock / nginx `return 200`) and proxied to one plain nginx
#       origin (tollgate HTTP integration / nginx proxy_pass with upstream keepalive)
#   (b) the same over h2c
#   (c) RSS per idle HTTP/2 connection (preface, SETTINGS exchange, one GET, then idle), over TLS
#       and over h2c, each on a freshly started process
# Prints a markdown table (also loadtest/out/h2-results.md; raw KEY=VALUE lines in
# loadtest/out/h2-results.kv, raw tool output in loadtest/out/h2/). See loadtest/README.md.
#
#   loadtest/h2.sh [--only tollgate|nginx]
#
# Env knobs: PAIRS (default 3), DURATION (s per measured h2load run, default 8), WARMUP (s of
# h2load before each measured run, default 2), CONNS (h2load -c, default 64), STREAMS (h2load -m,
# default 10), PROXY (1: also the proxied rows, default 1), IDLE_CONNS (default 2000), IDLE_HPACK
# (literal | indexed | both: how (c)'s GET sends :authority, default both), DRIVER (io_uring | epoll |
# auto, default io_uring), PORT_BASE (default 18700), TOLLGATE (binary to use; default
# target/release/tollgate, built unless SKIP_BUILD=1), KEEP_TMP=1 (keep the temp dir),
# IDLE_ONLY=1 (only (c): no h2load runs; idle RSS is meaningful on a busy machine, CPU is not).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$HERE/out"
RAW="$OUT/h2"
LT="$HERE/lt.py"

ONLY=both
while (( $# )); do
    case "$1" in
        --only) ONLY=${2:-}; shift 2 || { echo "--only needs tollgate or nginx" >&2; exit 2; } ;;
        --only=*) ONLY=${1#--only=}; shift ;;
        -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$ONLY" in both | tollgate | nginx) ;; *) echo "--only takes tollgate or nginx" >&2; exit 2 ;; esac

PAIRS=${PAIRS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-10}
PROXY=${PROXY:-1}
IDLE_CONNS=${IDLE_CONNS:-2000}
IDLE_HPACK=${IDLE_HPACK:-both}
DRIVER=${DRIVER:-io_uring}
PORT_BASE=${PORT_BASE:-18700}
IDLE_ONLY=${IDLE_ONLY:-0}

# The script's own stdout/stderr stay on fds 3/4 (the traps can fire while a step's output is
# redirected to a file; cleanup restores them before it reports).
exec 3>&1 4>&2

log() { printf '[h2-loadtest] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in PAIRS DURATION WARMUP CONNS STREAMS IDLE_CONNS PORT_BASE; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || (( ${!v} == 0 )); then die "$v must be a positive integer (got '${!v}')"; fi
done
case "$PROXY" in 0 | 1) ;; *) die "PROXY must be 0 or 1" ;; esac
case "$IDLE_ONLY" in 0 | 1) ;; *) die "IDLE_ONLY must be 0 or 1" ;; esac
case "$IDLE_HPACK" in literal | indexed | both) ;; *) die "IDLE_HPACK must be literal, indexed or both" ;; esac
case "$DRIVER" in io_uring | epoll | auto) ;; *) die "DRIVER must be io_uring, epoll or auto" ;; esac
(( PORT_BASE + 83 < 65536 )) || die "PORT_BASE too high"

# The loads measured on each server run: KIND (tls | h2c) _ TARGET (mock | proxy).
LOADS=(tls_mock)
(( PROXY == 0 )) || LOADS+=(tls_proxy)
LOADS+=(h2c_mock)
(( PROXY == 0 )) || LOADS+=(h2c_proxy)
(( IDLE_ONLY == 0 )) || LOADS=()
# The idle measurements (c), each on a freshly started process: TRANSPORT (tls | h2c), with
# _ix when :authority goes with incremental indexing (IDLE_HPACK). The last one's process then
# carries the loads.
case "$IDLE_HPACK" in
    literal) IDLE_KINDS=(tls h2c) ;;
    indexed) IDLE_KINDS=(tls_ix h2c_ix) ;;
    both) IDLE_KINDS=(tls tls_ix h2c_ix h2c) ;;
esac
# A bound on the whole run: per server and pair two fresh starts (~2 s each), two idle
# measurements (1 s settle + 1 s idle + connection setup, ~400 connections/s with TLS here) and a
# warm-up plus a measured run per load.
EST=$(( PAIRS * 2 * (${#IDLE_KINDS[@]} * (4 + IDLE_CONNS / 400) + ${#LOADS[@]} * (WARMUP + DURATION)) + 15 ))
(( EST <= 660 )) || die "PAIRS/DURATION/WARMUP/IDLE_CONNS would take about ${EST}s; keep the run under ~10 min"

ORIGIN_PORT=$PORT_BASE
TG_TLS=$((PORT_BASE + 80))   # tollgate [tls] listener (ALPN h2)
NGX_TLS=$((PORT_BASE + 81))  # nginx `listen ... ssl http2`
TG_H2C=$((PORT_BASE + 82))   # tollgate server.listen with server.h2c = true
NGX_H2C=$((PORT_BASE + 83))  # nginx `listen ... http2` (no ssl: prior knowledge)

MOCK_PATH=/mock
MOCK_BODY='hello world\n'    # as the origin's: the same 12 bytes whether mocked or proxied
PROXY_PATH=/

NCPU=$(nproc)
LAST=$((NCPU - 1))
PROXY_CORE=0
# nginx worker_cpu_affinity takes a bit mask written in binary, rightmost digit = CPU 0.
mask_for_core() { local m=1 i; for ((i = 0; i < $1; i++)); do m="${m}0"; done; echo "$m"; }
LAST_MASK=$(mask_for_core "$LAST")
PROXY_MASK=$(mask_for_core "$PROXY_CORE")
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- file descriptors
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited ]] && (( IDLE_CONNS + 512 > NOFILE )); then
    die "IDLE_CONNS=$IDLE_CONNS needs more than the open-files limit ($NOFILE) allows"
fi
WORKER_CONNS=$((IDLE_CONNS + 1024))   # client + upstream connections per server worker
RLIMIT_NOFILE=$((WORKER_CONNS + 256))
if [[ $NOFILE != unlimited ]]; then
    (( RLIMIT_NOFILE <= NOFILE )) || RLIMIT_NOFILE=$NOFILE
    (( WORKER_CONNS <= RLIMIT_NOFILE - 64 )) || WORKER_CONNS=$((RLIMIT_NOFILE - 64))
fi

# ---------------------------------------------------------------- dependencies
need=()
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if (( ${#need[@]} )); then
    log "installing ${need[*]} with apt-get"
    SUDO=""
    (( EUID == 0 )) || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
H2LOAD=$(command -v h2load)
command -v python3 >/dev/null || die "python3 is required"
command -v taskset >/dev/null || die "taskset (util-linux) is required"
command -v setsid >/dev/null || die "setsid (util-linux) is required"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_ssl_module' || die "$NGINX has no http_ssl_module"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_v2_module' || die "$NGINX has no http_v2_module"

# ---------------------------------------------------------------- tollgate binary
SERVERS=()
[[ $ONLY == nginx ]] || SERVERS+=(tollgate)
[[ $ONLY == tollgate ]] || SERVERS+=(nginx)
TOLLGATE_GIVEN=${TOLLGATE:-}
if [[ $ONLY != nginx ]]; then
    if [[ -n ${TOLLGATE:-} ]]; then
        :
    else
        TOLLGATE="${CARGO_TARGET_DIR:-$ROOT/target}/release/tollgate"
        if [[ ${SKIP_BUILD:-0} != 1 ]]; then
            log "building tollgate (cargo build --release)"
            (cd "$ROOT" && cargo build --release --quiet)
        fi
    fi
    [[ -x $TOLLGATE ]] || die "no tollgate binary at $TOLLGATE (set TOLLGATE=, or --only nginx)"
fi

# ---------------------------------------------------------------- process bookkeeping
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-h2-loadtest.XXXXXX")
chmod 755 "$TMP"   # nginx workers may run as an unprivileged user
PIDS=()            # process-group leaders we started (each started with setsid)

save_raw() {   # raw configs, logs and tool output of this run to loadtest/out/h2/
    rm -rf "$RAW"
    mkdir -p "$RAW"
    local d
    for d in origin nginx; do cp -f "$TMP/$d/error.log" "$RAW/$d-error.log" 2>/dev/null || true; done
    cp -f "$TMP"/*.log "$TMP"/*.h2load "$TMP"/*.idle "$TMP"/*.conf "$TMP"/*.toml "$TMP"/*.kv \
        "$TMP"/cert.pem "$RAW/" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    exec 1>&3 2>&4
    local p
    if [[ -n ${FG_PID:-} ]]; then kill -TERM "$FG_PID" 2>/dev/null || true; wait "$FG_PID" 2>/dev/null || true; fi
    for p in ${PIDS[@]+"${PIDS[@]}"}; do stop_group "$p"; done
    if (( rc != 0 )); then
        save_raw
        local f
        for f in "$TMP"/*.log; do
            [[ -s $f ]] || continue
            log "--- tail of $(basename "$f")"
            tail -n 20 "$f" >&2 || true
        done
        log "failed (exit $rc); logs copied to $RAW/"
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source-path=SCRIPTDIR source=proc.sh
. "$HERE/proc.sh"
for p in "$ORIGIN_PORT" "$TG_TLS" "$NGX_TLS" "$TG_H2C" "$NGX_H2C"; do
    port_in_use "$p" && die "127.0.0.1:$p is already in use (set PORT_BASE)"
done

RES="$TMP/results.kv"
: >"$RES"
kv() { printf '%s=%s\n' "$1" "$2" >>"$RES"; }

# ---------------------------------------------------------------- certificate
# ONE ECDSA P-256 certificate for `localhost`, used by both servers (and trusted by lt.py).
CERT="$TMP/cert.pem"
KEY="$TMP/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 7 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
    -keyout "$KEY" -out "$CERT" >"$TMP/openssl.out" 2>&1 || die "openssl req failed: $(cat "$TMP/openssl.out")"
chmod 644 "$KEY" "$CERT"   # readable by nginx workers running as another user

# ---------------------------------------------------------------- nginx configs
nginx_common() {   # directives shared by every nginx config here: nginx_common DIR
    local d=$1
    mkdir -p "$d/tmp"
    cat <<EOF
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_processes 1;
worker_rlimit_nofile $RLIMIT_NOFILE;
EOF
}

# keepalive_requests / keepalive_timeout also bound HTTP/2 connections since nginx 1.19.7 (they
# replace http2_max_requests / http2_idle_timeout, which 1.22 still accepts with an "obsolete"
# warning): raised so that no connection is closed mid-run.
nginx_http_common() {
    local d=$1
    cat <<EOF
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    default_type text/plain;
EOF
}

# The measured nginx: one server block with both listeners. nginx 1.22 (Debian) has no
# `http2 on;`: HTTP/2 is the `http2` parameter of `listen`, with `ssl` for ALPN h2 and without
# it for h2c with prior knowledge. TLS as tls.sh's nginx (TLS 1.2 + 1.3 (1.22's default has no
# 1.3), Mozilla intermediate ECDHE suites, tickets on, no shared session cache); HTTP/2 settings
# are nginx's defaults (128 concurrent streams, ...).
NDIR="$TMP/nginx"
mkdir -p "$NDIR"
{
    nginx_common "$NDIR"
    echo "worker_cpu_affinity $PROXY_MASK;"
    echo "events { worker_connections $WORKER_CONNS; }"
    echo "http {"
    echo "    access_log off;"
    nginx_http_common "$NDIR"
    cat <<EOF
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$NGX_TLS ssl http2 backlog=4096;
        listen 127.0.0.1:$NGX_H2C http2 backlog=4096;
        server_name localhost;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers off;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        ssl_session_tickets on;
        location = $MOCK_PATH { return 200 "$MOCK_BODY"; }
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$TMP/nginx.conf"
"$NGINX" -t -q -p "$NDIR" -e "$NDIR/error.log" -c "$TMP/nginx.conf" >"$TMP/nginx-check.log" 2>&1 ||
    die "nginx config invalid: $(cat "$TMP/nginx-check.log")"

# ---------------------------------------------------------------- tollgate config
# tls.sh's tollgate plus HTTP/2: ALPN h2 is on by default on [tls] listeners (tls.alpn defaults
# to ["h2", "http/1.1"]); server.h2c = true takes HTTP/2 with prior knowledge on the plain
# listener. HTTP/2 limits are the defaults ([server.http2] not set).
cat >"$TMP/tollgate.toml" <<EOF
[server]
listen = ["127.0.0.1:$TG_H2C"]
h2c = true
workers = 1
pin_cores = true          # worker 0 -> core 0
driver = "$DRIVER"
max_connections = $WORKER_CONNS

[server.timeouts]
keepalive_idle_ms = 75000
shutdown_ms = 1000

[tls]
listen = ["127.0.0.1:$TG_TLS"]
min_version = "1.2"

[[tls.certificate]]
cert = "$CERT"
key = "$KEY"

[[upstream]]
name = "origin"
targets = ["127.0.0.1:$ORIGIN_PORT"]
max_idle_per_worker = 256

[[route]]
key = "GET $MOCK_PATH"
mock = { status = 200, body = "$MOCK_BODY", headers = { "content-type" = "text/plain" } }

[[route]]
key = "\$default"
upstream = "origin"
EOF
if [[ $ONLY != nginx ]]; then
    if ! "$TOLLGATE" -c "$TMP/tollgate.toml" check >"$TMP/tollgate-check.log" 2>&1; then
        if grep -q 'h2c' "$TMP/tollgate-check.log"; then
            die "$TOLLGATE has no HTTP/2 (server.h2c is refused): $(cat "$TMP/tollgate-check.log")
    build a tollgate with issue 10's HTTP/2, or measure the nginx side alone with --only nginx"
        fi
        die "tollgate config invalid: $(cat "$TMP/tollgate-check.log")"
    fi
fi

# ---------------------------------------------------------------- origin (as run.sh)
ODIR="$TMP/origin"
mkdir -p "$ODIR"
{
    nginx_common "$ODIR"
    echo "worker_cpu_affinity $LAST_MASK;"
    echo "events { worker_connections 4096; }"
    echo "http {"
    echo "    access_log off;"
    nginx_http_common "$ODIR"
    cat <<EOF
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        location / { return 200 "$MOCK_BODY"; }
    }
}
EOF
} >"$TMP/origin.conf"
"$NGINX" -t -q -p "$ODIR" -e "$ODIR/error.log" -c "$TMP/origin.conf" >"$TMP/origin-check.log" 2>&1 ||
    die "origin nginx config invalid: $(cat "$TMP/origin-check.log")"
if (( PROXY == 1 )); then
    start_bg "$TMP/origin.log" "$NGINX" -p "$ODIR" -e "$ODIR/error.log" -c "$TMP/origin.conf"
    python3 "$LT" wait "$ORIGIN_PORT" 10 || die "origin did not start"
    log "origin nginx up on 127.0.0.1:$ORIGIN_PORT (worker on core $LAST)"
fi

# ---------------------------------------------------------------- measurements
LOAD_CMD="taskset -c $LAST h2load -t1 -c$CONNS -m$STREAMS -D DURATION URL"

h2load_run() {   # h2load_run OUTFILE SECONDS URL: bounded h2load on the last core
    local outf=$1 secs=$2 url=$3
    run_fg timeout $((secs + 30)) taskset -c "$LAST" "$H2LOAD" -t1 -c"$CONNS" -m"$STREAMS" -D "$secs" "$url" \
        >"$outf" 2>&1
}

url_for() {   # url_for LOAD TLS_PORT H2C_PORT
    local path=$MOCK_PATH
    [[ $1 == *_proxy ]] && path=$PROXY_PATH
    if [[ $1 == tls_* ]]; then echo "https://localhost:$2$path"; else echo "http://127.0.0.1:$3$path"; fi
}

# idle NAME PAIR KIND PORT PID: (c) on a fresh process; KIND tls | h2c | tls_ix | h2c_ix
idle() {
    local name=$1 i=$2 kind=$3 port=$4 pid=$5 tag="$1.$2.idle_$3" ca=() hpack=literal
    [[ $kind == tls* ]] && ca=("$CERT")
    [[ $kind == *_ix ]] && hpack=indexed
    python3 "$LT" h2wait "$port" 15 "$MOCK_PATH" ${ca[@]+"${ca[@]}"} ||
        die "$name answers no HTTP/2 GET $MOCK_PATH on port $port ($kind)"
    log "$name.$i: (c) RSS of $IDLE_CONNS idle HTTP/2 connections over ${kind%_ix} (HPACK $hpack)"
    run_fg timeout 180 taskset -c "$LAST" python3 "$LT" h2idle "$pid" "$port" "$IDLE_CONNS" "$MOCK_PATH" \
        "$hpack" ${ca[@]+"${ca[@]}"} >"$TMP/$tag.idle" 2>"$TMP/$tag.log" ||
        die "$name.$i: idle-connection measurement ($kind) failed: $(cat "$TMP/$tag.log")"
    sed "s/^/$name.$i.idle_${kind}_/" "$TMP/$tag.idle" >>"$RES"
    alive "$pid" || die "$name exited during the idle-connection measurement ($kind)"
    local failed
    failed=$(sed -n 's/^idle_failed=//p' "$TMP/$tag.idle")
    (( failed == 0 )) || log "warning: $name.$i: $failed of the idle connections' GETs did not answer 200"
    log "$name.$i: (c) $kind: $(sed -n 's/^rss_per_conn_kib=//p' "$TMP/$tag.idle") KiB/conn"
}

# loads NAME PAIR TLS_PORT H2C_PORT PID: (a) and (b), each a warm-up run and a measured run
loads() {
    local name=$1 i=$2 tls_port=$3 h2c_port=$4 pid=$5 load
    for load in ${LOADS[@]+"${LOADS[@]}"}; do
        local tag="$name.$i.$load" url c0 c1 requests proto cpu_us want=h2c
        [[ $load == tls_* ]] && want=h2
        url=$(url_for "$load" "$tls_port" "$h2c_port")
        log "$name.$i: $load: warm-up ${WARMUP}s, measured ${DURATION}s, h2load -c$CONNS -m$STREAMS $url"
        h2load_run "$TMP/$tag-warmup.h2load" "$WARMUP" "$url" ||
            die "$tag: warm-up h2load failed: $(tail -n 5 "$TMP/$tag-warmup.h2load")"
        c0=$(cpu_ticks "$pid")
        h2load_run "$TMP/$tag.h2load" "$DURATION" "$url" ||
            die "$tag: h2load failed: $(tail -n 5 "$TMP/$tag.h2load")"
        c1=$(cpu_ticks "$pid")
        alive "$pid" || die "$name exited during $load"
        python3 "$LT" h2load "$TMP/$tag.h2load" >"$TMP/$tag.kv" || die "$tag: unparsable h2load output"
        sed "s/^/${tag}_/" "$TMP/$tag.kv" >>"$RES"
        proto=$(sed -n 's/^protocol=//p' "$TMP/$tag.kv")
        [[ $proto == "$want" ]] || die "$tag: h2load spoke '$proto', not $want"
        requests=$(sed -n 's/^requests=//p' "$TMP/$tag.kv")
        (( requests > 0 )) || die "$tag: h2load completed no 2xx requests: $(tail -n 8 "$TMP/$tag.h2load")"
        kv "${tag}_cpu_ticks" "$((c1 - c0))"
        cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
        kv "${tag}_cpu_us" "$cpu_us"
        log "$tag: $cpu_us µs/request, $(sed -n 's/^rps=//p' "$TMP/$tag.kv") req/s, mean latency $(sed -n 's/^lat_mean_us=//p' "$TMP/$tag.kv") µs"
    done
}

tollgate_start() {   # tollgate_start PAIR STEP: sets SERVER_PID
    start_bg "$TMP/tollgate.$1.$2.log" "$TOLLGATE" -c "$TMP/tollgate.toml"
    SERVER_PID=$STARTED_PID
    python3 "$LT" h2wait "$TG_H2C" 15 "$MOCK_PATH" || die "tollgate did not start (see tollgate.$1.$2.log)"
    DRIVER_USED=$(sed -n 's/.*drivers \[\([^]]*\)\].*/\1/p' "$TMP/tollgate.$1.$2.log" | head -n1)
    log "tollgate up (pid $SERVER_PID, driver ${DRIVER_USED:-?})"
}

nginx_start() {   # nginx_start PAIR STEP: sets SERVER_PID (the worker) and NGINX_MASTER
    start_bg "$TMP/nginx.$1.$2.log" "$NGINX" -p "$NDIR" -e "$NDIR/error.log" -c "$TMP/nginx.conf"
    NGINX_MASTER=$STARTED_PID
    python3 "$LT" h2wait "$NGX_H2C" 15 "$MOCK_PATH" || die "nginx did not start"
    SERVER_PID=$(nginx_worker "$NGINX_MASTER") || die "no nginx worker process found"
    log "nginx up (master $NGINX_MASTER, worker $SERVER_PID)"
}

# run_server NAME PAIR: each (c) on its own freshly started process (TLS, then h2c), then (a)
# and (b) on the last one
run_server() {
    local name=$1 i=$2 leader kind n=0 tls_port=$NGX_TLS h2c_port=$NGX_H2C port
    if [[ $name == tollgate ]]; then tls_port=$TG_TLS; h2c_port=$TG_H2C; fi
    for kind in "${IDLE_KINDS[@]}"; do
        n=$((n + 1))
        "${name}_start" "$i" "idle_$kind"
        leader=$STARTED_PID
        port=$h2c_port
        [[ $kind == tls* ]] && port=$tls_port
        idle "$name" "$i" "$kind" "$port" "$SERVER_PID"
        (( n == ${#IDLE_KINDS[@]} )) || stop_group "$leader"
    done
    loads "$name" "$i" "$tls_port" "$h2c_port" "$SERVER_PID"
    stop_group "$leader"
}

DRIVER_USED=""
SERVER_PID=""
NGINX_MASTER=""
log "${SERVERS[*]}: $PAIRS alternating pairs, loads ${LOADS[*]:-none (IDLE_ONLY=1)}, about ${EST}s in all"
for ((i = 1; i <= PAIRS; i++)); do
    for s in "${SERVERS[@]}"; do run_server "$s" "$i"; done
done

# ---------------------------------------------------------------- report
kv pairs "$PAIRS"
[[ $ONLY != nginx ]] || kv tollgate.skipped "--only nginx"
[[ $ONLY != tollgate ]] || kv nginx.skipped "--only tollgate"
kv driver "${DRIVER_USED:-n/a}"
kv driver_requested "$DRIVER"
kv load_cmd "$LOAD_CMD"
kv warmup "$WARMUP"
kv duration "$DURATION"
kv mock_note "GET $MOCK_PATH, tollgate mock route / nginx location = $MOCK_PATH { return 200 \"hello world\\n\"; }"
if (( PROXY == 1 )); then
    kv proxy_note "GET $PROXY_PATH to one plain nginx origin (tollgate \$default route, pool of 256 / nginx proxy_pass, upstream keepalive 256, HTTP/1.1)"
else
    kv proxy_note "not measured (PROXY=0)"
fi
kv idle_n "$IDLE_CONNS"
kv idle_hpack "$IDLE_HPACK"
kv last_core "$LAST"
kv nginx_version "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
kv h2load_version "$("$H2LOAD" --version 2>&1 | head -n1 | sed 's/^h2load //' || true)"
kv openssl_version "$(openssl version)"
kv kernel "$(uname -srm)"
kv cpu_model "$(grep -m1 'model name' /proc/cpuinfo | sed 's/^[^:]*: *//' || echo unknown)"
kv ncpu "$NCPU"
kv date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown ]] && [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    commit="$commit-dirty"
fi
# A binary given with TOLLGATE= need not be this tree's build: say which file was measured.
[[ -z $TOLLGATE_GIVEN ]] || commit="$commit (this tree; binary measured: $TOLLGATE_GIVEN)"
[[ $ONLY != nginx ]] || commit="n/a (not measured)"
kv commit "$commit"

mkdir -p "$OUT"
python3 "$LT" h2table "$RES" >"$OUT/h2-results.md"
cp -f "$RES" "$OUT/h2-results.kv"
save_raw
cat "$OUT/h2-results.md"
