#!/usr/bin/env bash
# Side-by-side load test: tollgate vs nginx as a reverse proxy in front of the same nginx origin,
# on loopback, one proxy worker pinned to core 0, origin and load generator on the last core.
# Prints a markdown table and writes it to loadtest/out/results.md. See loadtest/README.md.
#
# Env knobs: DURATION (s, default 10), CONNS (default 64), IDLE_CONNS (default 10000),
# DRIVER (io_uring | epoll | auto, default io_uring), WARMUP (s, default 2), THREADS (wrk -t,
# default 1), PORT_BASE (default 18000: origin PORT_BASE, tollgate +80, nginx proxy +81),
# SKIP_BUILD=1 (use the existing target/release/tollgate), KEEP_TMP=1 (keep the temp dir),
# LIMITS=0 / OBS=0 (skip the limits-on / metrics-and-access-log-on tollgate runs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$HERE/out"
LT="$HERE/lt.py"
# shellcheck source=features.sh
. "$HERE/features.sh"

DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}   # large enough that allocator growth steps amortize
DRIVER=${DRIVER:-io_uring}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-1}
PORT_BASE=${PORT_BASE:-18000}

# Keep the script's own stdout/stderr on fds 3/4: the traps can fire while a step's output is
# redirected to a file, and cleanup restores these before it reports.
exec 3>&1 4>&2

log() { printf '[loadtest] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in DURATION CONNS IDLE_CONNS WARMUP THREADS PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
case "$DRIVER" in io_uring | epoll | auto) ;; *) die "DRIVER must be io_uring, epoll or auto" ;; esac
(( THREADS <= CONNS )) || die "THREADS must not exceed CONNS"
(( PORT_BASE + 81 < 65536 )) || die "PORT_BASE too high"

ORIGIN_PORT=$PORT_BASE
TG_PORT=$((PORT_BASE + 80))
NGX_PORT=$((PORT_BASE + 81))

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
WORKER_CONNS=$((IDLE_CONNS + 1024))   # client + upstream connections per proxy worker
RLIMIT_NOFILE=$((WORKER_CONNS + 256))
if [[ $NOFILE != unlimited ]]; then
    (( RLIMIT_NOFILE <= NOFILE )) || RLIMIT_NOFILE=$NOFILE
    (( WORKER_CONNS <= RLIMIT_NOFILE - 64 )) || WORKER_CONNS=$((RLIMIT_NOFILE - 64))
fi

# ---------------------------------------------------------------- dependencies
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
if (( ${#need[@]} )); then
    log "installing ${need[*]} with apt-get"
    SUDO=""
    (( EUID == 0 )) || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
WRK=$(command -v wrk)
OHA=$(command -v oha 2>/dev/null || true)
command -v python3 >/dev/null || die "python3 is required"
command -v taskset >/dev/null || die "taskset (util-linux) is required"
command -v setsid >/dev/null || die "setsid (util-linux) is required"

# ---------------------------------------------------------------- build
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TOLLGATE="$TARGET_DIR/release/tollgate"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building tollgate (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet)
fi
[[ -x $TOLLGATE ]] || die "no binary at $TOLLGATE"

# ---------------------------------------------------------------- process bookkeeping
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-loadtest.XXXXXX")
chmod 755 "$TMP"   # nginx workers may run as an unprivileged user
PIDS=()            # process-group leaders we started (each started with setsid)

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    exec 1>&3 2>&4
    local p
    if [[ -n ${FG_PID:-} ]]; then kill -TERM "$FG_PID" 2>/dev/null || true; wait "$FG_PID" 2>/dev/null || true; fi
    for p in ${PIDS[@]+"${PIDS[@]}"}; do stop_group "$p"; done
    if (( rc != 0 )); then
        mkdir -p "$OUT/logs"
        for p in origin nginx; do cp -f "$TMP/$p/error.log" "$TMP/$p-error.log" 2>/dev/null || true; done
        cp -f "$TMP"/*.log "$TMP"/*.wrk "$TMP"/*.conf "$TMP"/*.toml "$OUT/logs/" 2>/dev/null || true
        local f
        for f in "$TMP"/*.log; do
            [[ -s $f ]] || continue
            log "--- tail of $(basename "$f")"
            tail -n 20 "$f" >&2 || true
        done
        log "failed (exit $rc); logs copied to $OUT/logs/"
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=proc.sh
. "$HERE/proc.sh"
for p in "$ORIGIN_PORT" "$TG_PORT" "$NGX_PORT"; do
    port_in_use "$p" && die "127.0.0.1:$p is already in use (set PORT_BASE)"
done


nginx_common() {   # directives shared by both nginx configs: nginx_common DIR
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

nginx_http_common() {
    local d=$1
    cat <<EOF
    access_log off;
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

# ---------------------------------------------------------------- origin
ODIR="$TMP/origin"
mkdir -p "$ODIR"
{
    nginx_common "$ODIR"
    echo "worker_cpu_affinity $LAST_MASK;"
    echo "events { worker_connections 4096; }"
    echo "http {"
    nginx_http_common "$ODIR"
    cat <<EOF
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        location / { return 200 "hello world\n"; }
    }
}
EOF
} >"$TMP/origin.conf"
"$NGINX" -t -q -p "$ODIR" -e "$ODIR/error.log" -c "$TMP/origin.conf" >"$TMP/origin-check.log" 2>&1 ||
    die "origin nginx config invalid: $(cat "$TMP/origin-check.log")"
start_bg "$TMP/origin.log" "$NGINX" -p "$ODIR" -e "$ODIR/error.log" -c "$TMP/origin.conf"
ORIGIN_PID=$STARTED_PID
python3 "$LT" wait "$ORIGIN_PORT" 10 || die "origin did not start"
log "origin nginx up on 127.0.0.1:$ORIGIN_PORT (worker on core $LAST)"

# ---------------------------------------------------------------- results
RES="$TMP/results.kv"
: >"$RES"
kv() { printf '%s=%s\n' "$1" "$2" >>"$RES"; }

WRK_EXTRA=()
WRK_CMD_BASE="taskset -c $LAST wrk -t$THREADS -c$CONNS -d${DURATION}s --latency"
OHA_JSON=0
if [[ -n $OHA ]] && "$OHA" --help 2>/dev/null | grep -q -- '--json'; then OHA_JSON=1; fi

# measure NAME PORT PID: idle connections first (on the fresh process, so that memory freed by
# the load runs cannot hide their cost), then warm-up, measured wrk run with CPU accounting, oha
measure() {
    local name=$1 port=$2 pid=$3 url="http://127.0.0.1:$2/"
    python3 "$LT" wait "$port" 15 "${WAIT_STATUS:-200}" || die "$name is not answering on 127.0.0.1:$port"

    if [[ ${SKIP_IDLE:-0} != 1 ]]; then
    log "$name: RSS of $IDLE_CONNS idle keep-alive connections"
    run_fg timeout 120 taskset -c "$LAST" python3 "$LT" idle "$pid" "$port" "$IDLE_CONNS" >"$TMP/$name.idle" 2>"$TMP/$name-idle.log" ||
        die "$name: idle-connection measurement failed: $(cat "$TMP/$name-idle.log")"
    sed "s/^/$name./" "$TMP/$name.idle" >>"$RES"
    alive "$pid" || die "$name exited during the idle-connection measurement"
    fi

    log "$name: warm-up ${WARMUP}s"
    run_fg timeout $((WARMUP + 30)) taskset -c "$LAST" "$WRK" "${WRK_EXTRA[@]}" -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$url" \
        >"$TMP/$name-warmup.wrk" 2>&1 || die "$name: warm-up wrk failed"

    log "$name: measured run, wrk -t$THREADS -c$CONNS -d${DURATION}s"
    local c0 c1
    c0=$(cpu_ticks "$pid")
    run_fg timeout $((DURATION + 30)) taskset -c "$LAST" "$WRK" "${WRK_EXTRA[@]}" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url" \
        >"$TMP/$name.wrk" 2>&1 || die "$name: wrk failed: $(cat "$TMP/$name.wrk")"
    c1=$(cpu_ticks "$pid")
    alive "$pid" || die "$name exited during the load run"

    python3 "$LT" wrk "$TMP/$name.wrk" | sed "s/^/$name./" >>"$RES"
    local requests
    requests=$(sed -n "s/^$name\.requests=//p" "$RES")
    (( requests > 0 )) || die "$name: wrk completed no requests"
    kv "$name.cpu_ticks" "$((c1 - c0))"
    kv "$name.cpu_s" "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')"
    kv "$name.cpu_us_per_req" "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$requests" \
        'BEGIN { printf "%.3f", t / hz * 1e6 / n }')"

    if [[ -n $OHA && ${#WRK_EXTRA[@]} -eq 0 ]]; then
        log "$name: oha -z ${DURATION}s -c $CONNS"
        local oha_args=(-z "${DURATION}s" -c "$CONNS" --no-tui)
        (( OHA_JSON )) && oha_args+=(--json)
        if run_fg timeout $((DURATION + 30)) taskset -c "$LAST" "$OHA" "${oha_args[@]}" "$url" >"$TMP/$name.oha" 2>"$TMP/$name-oha.log"; then
            kv "$name.oha_rps" "$(python3 "$LT" oha "$TMP/$name.oha")"
        else
            log "$name: oha failed (see $name-oha.log); skipping its rps"
        fi
    fi
}

# ---------------------------------------------------------------- tollgate
cat >"$TMP/tollgate.toml" <<EOF
[server]
listen = ["127.0.0.1:$TG_PORT"]
workers = 1
pin_cores = true          # worker 0 -> core 0
driver = "$DRIVER"
max_connections = $WORKER_CONNS

[server.timeouts]
keepalive_idle_ms = 75000
shutdown_ms = 1000

[[upstream]]
name = "origin"
targets = ["127.0.0.1:$ORIGIN_PORT"]
max_idle_per_worker = 256

[[route]]
key = "\$default"
upstream = "origin"
EOF
"$TOLLGATE" -c "$TMP/tollgate.toml" check >"$TMP/tollgate-check.log" 2>&1 ||
    die "tollgate config invalid: $(cat "$TMP/tollgate-check.log")"
start_bg "$TMP/tollgate.log" "$TOLLGATE" -c "$TMP/tollgate.toml"
TG_PID=$STARTED_PID
python3 "$LT" wait "$TG_PORT" 15 || die "tollgate did not start"
DRIVER_USED=$(sed -n 's/.*drivers \[\([^]]*\)\].*/\1/p' "$TMP/tollgate.log" | head -n1)
log "tollgate up on 127.0.0.1:$TG_PORT (pid $TG_PID, driver ${DRIVER_USED:-?})"
measure tollgate "$TG_PORT" "$TG_PID"
stop_group "$TG_PID"

# ---------------------------------------------------------------- tollgate with a feature on
# measure_variant NAME CONFIG [WAIT_STATUS]: the same proxy with CONFIG, measured under NAME.
measure_variant() {
    "$TOLLGATE" -c "$2" check >"$TMP/$1-check.log" 2>&1 ||
        die "$1 config invalid: $(cat "$TMP/$1-check.log")"
    start_bg "$TMP/$1.log" "$TOLLGATE" -c "$2"
    local pid=$STARTED_PID
    SKIP_IDLE=1 WAIT_STATUS=${3:-200} measure "$1" "$TG_PORT" "$pid"
    stop_group "$pid"
}

# Limits: a gateway limit, a route limit and an API key whose usage plan has its own limit, all
# far above the offered load: the cost of the throttle decision on every request.
if [[ ${LIMITS:-1} == 1 ]]; then
    {
        awk -v extra="$(limits_route_lines)" '{ print } /^key = "\$default"$/ { print extra }' \
            "$TMP/tollgate.toml"
        limits_tables
    } >"$TMP/tollgate-limits.toml"
    WRK_EXTRA=(-H "x-api-key: $LOADTEST_KEY")
    measure_variant tollgate_limits "$TMP/tollgate-limits.toml" 403
    WRK_EXTRA=()
fi

# Observability: the admin listener (metrics recorded per request) and a JSON access log
# written to a file: the cost of observability on every request (issue target: within 5 %).
if [[ ${OBS:-1} == 1 ]]; then
    {
        cat "$TMP/tollgate.toml"
        observability_tables "$((PORT_BASE + 82))" "$TMP"
    } >"$TMP/tollgate-obs.toml"
    measure_variant tollgate_obs "$TMP/tollgate-obs.toml"
    kv tollgate_obs.log_bytes "$(stat -c %s "$TMP/access.log" 2>/dev/null || echo 0)"
    rm -f "$TMP/access.log"
fi

# ---------------------------------------------------------------- nginx as a reverse proxy
NDIR="$TMP/nginx"
mkdir -p "$NDIR"
{
    nginx_common "$NDIR"
    echo "worker_cpu_affinity $PROXY_MASK;"
    echo "events { worker_connections $WORKER_CONNS; }"
    echo "http {"
    nginx_http_common "$NDIR"
    cat <<EOF
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$NGX_PORT backlog=4096;
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
    die "proxy nginx config invalid: $(cat "$TMP/nginx-check.log")"
start_bg "$TMP/nginx.log" "$NGINX" -p "$NDIR" -e "$NDIR/error.log" -c "$TMP/nginx.conf"
NGX_MASTER=$STARTED_PID
python3 "$LT" wait "$NGX_PORT" 15 || die "proxy nginx did not start"
NGX_WORKER=$(nginx_worker "$NGX_MASTER") || die "no nginx worker process found"
log "nginx proxy up on 127.0.0.1:$NGX_PORT (master $NGX_MASTER, worker $NGX_WORKER)"
measure nginx "$NGX_PORT" "$NGX_WORKER"
stop_group "$NGX_MASTER"

# ---------------------------------------------------------------- report
cp -f "$ODIR/error.log" "$TMP/origin-error.log" 2>/dev/null || true
cp -f "$NDIR/error.log" "$TMP/nginx-error.log" 2>/dev/null || true
kv driver "${DRIVER_USED:-unknown}"
kv driver_requested "$DRIVER"
kv wrk_cmd "$WRK_CMD_BASE http://127.0.0.1:PORT/"
kv warmup "$WARMUP"
if [[ -n $OHA ]]; then kv oha_cmd "taskset -c $LAST oha -z ${DURATION}s -c $CONNS --no-tui"; fi
kv last_core "$LAST"
kv idle_conns "$IDLE_CONNS"
kv nginx_version "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
kv wrk_version "$("$WRK" -v 2>&1 | head -n1 | awk '{ print $2 }' || true)"
kv kernel "$(uname -srm)"
kv cpu_model "$(grep -m1 'model name' /proc/cpuinfo | sed 's/^[^:]*: *//' || echo unknown)"
kv ncpu "$NCPU"
kv date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown ]] && [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    commit="$commit-dirty"
fi
kv commit "$commit"

mkdir -p "$OUT"
python3 "$LT" table "$RES" >"$OUT/results.md"
cp -f "$RES" "$OUT/results.kv"
cat "$OUT/results.md"
