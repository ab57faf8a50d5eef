#!/usr/bin/env bash
# TLS side by side: tollgate and nginx (Debian package, OpenSSL) terminating TLS with the same
# ECDSA P-256 certificate and proxying to the same plain nginx origin as run.sh, one worker each
# pinned to core 0, measured in alternating pairs (tollgate, nginx, tollgate, nginx, ...):
#   (a) keep-alive small GETs over https: CPU per request
#   (b) a new TLS connection per request, full handshakes: CPU per handshake
#   (c) RSS per idle TLS keep-alive connection
# Prints a markdown table (also loadtest/out/tls-results.md; raw KEY=VALUE lines in
# loadtest/out/tls-results.kv, raw tool output in loadtest/out/tls/). See loadtest/README.md.
#
#   loadtest/tls.sh [--only tollgate|nginx]
#
# Env knobs: PAIRS (default 3), DURATION (s per measured wrk run, default 8), WARMUP (s, default
# 2), CONNS (keep-alive connections for (a), default 64), HS_CONNS (connections for (b), default
# 32), IDLE_CONNS (default 2000), DRIVER (io_uring | epoll | auto, default io_uring), PORT_BASE
# (default 18600), TOLLGATE (binary to use; default target/release/tollgate, built unless
# SKIP_BUILD=1), KEEP_TMP=1 (keep the temp dir).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$HERE/out"
RAW="$OUT/tls"
LT="$HERE/lt.py"

ONLY=both
while (( $# )); do
    case "$1" in
        --only) ONLY=${2:-}; shift 2 || { echo "--only needs tollgate or nginx" >&2; exit 2; } ;;
        --only=*) ONLY=${1#--only=}; shift ;;
        -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$ONLY" in both | tollgate | nginx) ;; *) echo "--only takes tollgate or nginx" >&2; exit 2 ;; esac

PAIRS=${PAIRS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
HS_CONNS=${HS_CONNS:-32}
IDLE_CONNS=${IDLE_CONNS:-2000}
DRIVER=${DRIVER:-io_uring}
PORT_BASE=${PORT_BASE:-18600}

# The script's own stdout/stderr stay on fds 3/4 (the traps can fire while a step's output is
# redirected to a file; cleanup restores them before it reports).
exec 3>&1 4>&2

log() { printf '[tls-loadtest] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in PAIRS DURATION WARMUP CONNS HS_CONNS IDLE_CONNS PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
case "$DRIVER" in io_uring | epoll | auto) ;; *) die "DRIVER must be io_uring, epoll or auto" ;; esac
(( PORT_BASE + 83 < 65536 )) || die "PORT_BASE too high"
# A bound on the whole run: each server of each pair needs about 2 s to start and settle, the
# idle measurement, two warm-ups and two measured runs.
EST=$(( PAIRS * 2 * (4 + IDLE_CONNS / 500 + 2 * (WARMUP + DURATION)) + 15 ))
(( EST <= 660 )) || die "PAIRS/DURATION/WARMUP/IDLE_CONNS would take about ${EST}s; keep the run under ~10 min"

ORIGIN_PORT=$PORT_BASE
TG_PORT=$((PORT_BASE + 80))      # tollgate [tls] listener
NGX_PORT=$((PORT_BASE + 81))     # nginx `listen ... ssl`
TG_PLAIN=$((PORT_BASE + 82))     # tollgate's plain server.listen (unused by the load)
PROBE_PORT=$((PORT_BASE + 83))   # nginx with a $ssl_session_reused access log (resumption probe)

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
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if (( ${#need[@]} )); then
    log "installing ${need[*]} with apt-get"
    SUDO=""
    (( EUID == 0 )) || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
WRK=$(command -v wrk)
command -v python3 >/dev/null || die "python3 is required"
command -v taskset >/dev/null || die "taskset (util-linux) is required"
command -v setsid >/dev/null || die "setsid (util-linux) is required"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_ssl_module' || die "$NGINX has no http_ssl_module"

# ---------------------------------------------------------------- tollgate binary
SERVERS=()
[[ $ONLY == nginx ]] || SERVERS+=(tollgate)
[[ $ONLY == tollgate ]] || SERVERS+=(nginx)
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
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-tls-loadtest.XXXXXX")
chmod 755 "$TMP"   # nginx workers may run as an unprivileged user
PIDS=()            # process-group leaders we started (each started with setsid)

save_raw() {   # raw configs, logs and tool output of this run to loadtest/out/tls/
    rm -rf "$RAW"
    mkdir -p "$RAW"
    local d
    for d in origin nginx probe; do cp -f "$TMP/$d/error.log" "$RAW/$d-error.log" 2>/dev/null || true; done
    cp -f "$TMP"/*.log "$TMP"/*.wrk "$TMP"/*.idle "$TMP"/*.conf "$TMP"/*.toml "$TMP"/*.hs \
        "$TMP"/*.kv "$TMP"/cert.pem "$RAW/" 2>/dev/null || true
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

# shellcheck source=proc.sh
. "$HERE/proc.sh"
for p in "$ORIGIN_PORT" "$TG_PORT" "$NGX_PORT" "$TG_PLAIN" "$PROBE_PORT"; do
    port_in_use "$p" && die "127.0.0.1:$p is already in use (set PORT_BASE)"
done


RES="$TMP/results.kv"
: >"$RES"
kv() { printf '%s=%s\n' "$1" "$2" >>"$RES"; }

# ---------------------------------------------------------------- certificate and client shim
# ONE ECDSA P-256 certificate for `localhost`, used by both servers (and trusted by lt.py).
CERT="$TMP/cert.pem"
KEY="$TMP/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 7 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
    -keyout "$KEY" -out "$CERT" >"$TMP/openssl.out" 2>&1 || die "openssl req failed: $(cat "$TMP/openssl.out")"
chmod 644 "$KEY" "$CERT"   # readable by nginx workers running as another user
kv cert "ECDSA P-256, SAN DNS:localhost, self-signed (openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256)"

# wrk resumes sessions on reconnect; the shim makes every handshake of (b) a full one and counts
# them (see noresume.c).
SHIM="$TMP/noresume.so"
cc -shared -fPIC -O2 -o "$SHIM" "$HERE/noresume.c" -ldl >"$TMP/cc.log" 2>&1 ||
    die "building the wrk shim failed: $(cat "$TMP/cc.log")"

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

# The TLS proxy: nginx_tls_conf DIR PORT ACCESS_LOG_LINE. As run.sh's nginx proxy, plus TLS:
# TLS 1.2 + 1.3 and Mozilla's "intermediate" TLS 1.2 suites (its ECDHE ones: the DHE-RSA ones
# cannot be used with an ECDSA certificate), client's cipher order (ssl_prefer_server_ciphers
# off), Mozilla's curve list. Resumption stays on as deployed: session tickets (nginx's default,
# like tollgate's rotating ticketer); no shared session cache, which would add a shared-memory
# store per handshake that tollgate's TLS 1.3 handshakes do not do.
nginx_tls_conf() {
    local d=$1 port=$2 access=$3
    nginx_common "$d"
    echo "worker_cpu_affinity $PROXY_MASK;"
    echo "events { worker_connections $WORKER_CONNS; }"
    echo "http {"
    nginx_http_common "$d"
    cat <<EOF
    $access
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$port ssl backlog=4096;
        server_name localhost;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers off;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        ssl_session_tickets on;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

NDIR="$TMP/nginx"
mkdir -p "$NDIR"
nginx_tls_conf "$NDIR" "$NGX_PORT" "access_log off;" >"$TMP/nginx.conf"
"$NGINX" -t -q -p "$NDIR" -e "$NDIR/error.log" -c "$TMP/nginx.conf" >"$TMP/nginx-check.log" 2>&1 ||
    die "nginx TLS config invalid: $(cat "$TMP/nginx-check.log")"

# ---------------------------------------------------------------- tollgate config
cat >"$TMP/tollgate.toml" <<EOF
[server]
listen = ["127.0.0.1:$TG_PLAIN"]   # plain listener, not used by the load
workers = 1
pin_cores = true          # worker 0 -> core 0
driver = "$DRIVER"
max_connections = $WORKER_CONNS

[server.timeouts]
keepalive_idle_ms = 75000
shutdown_ms = 1000

[tls]
listen = ["127.0.0.1:$TG_PORT"]
min_version = "1.2"

[[tls.certificate]]
cert = "$CERT"
key = "$KEY"

[[upstream]]
name = "origin"
targets = ["127.0.0.1:$ORIGIN_PORT"]
max_idle_per_worker = 256

[[route]]
key = "\$default"
upstream = "origin"
EOF
if [[ $ONLY != nginx ]]; then
    if ! "$TOLLGATE" -c "$TMP/tollgate.toml" check >"$TMP/tollgate-check.log" 2>&1; then
        if grep -q 'unknown field `tls`' "$TMP/tollgate-check.log"; then
            die "$TOLLGATE has no TLS support ([tls] is an unknown key): $(cat "$TMP/tollgate-check.log")
    build a tollgate with issue 9's TLS termination, or measure the nginx side alone with --only nginx"
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
        location / { return 200 "hello world\n"; }
    }
}
EOF
} >"$TMP/origin.conf"
"$NGINX" -t -q -p "$ODIR" -e "$ODIR/error.log" -c "$TMP/origin.conf" >"$TMP/origin-check.log" 2>&1 ||
    die "origin nginx config invalid: $(cat "$TMP/origin-check.log")"
start_bg "$TMP/origin.log" "$NGINX" -p "$ODIR" -e "$ODIR/error.log" -c "$TMP/origin.conf"
python3 "$LT" wait "$ORIGIN_PORT" 10 || die "origin did not start"
log "origin nginx up on 127.0.0.1:$ORIGIN_PORT (worker on core $LAST)"

# ---------------------------------------------------------------- resumption probe
# Does wrk resume TLS sessions when it reconnects (`Connection: close`), and does the shim stop
# it? Asked of an nginx whose access log records $ssl_session_reused ("r" or "."), and
# cross-checked with the shim's own count. The measured servers run without this log.
PDIR="$TMP/probe"
mkdir -p "$PDIR"
nginx_tls_conf "$PDIR" "$PROBE_PORT" "log_format reuse '\$ssl_protocol \$ssl_session_reused'; access_log $PDIR/access.log reuse;" \
    >"$TMP/probe.conf"
start_bg "$TMP/probe.log" "$NGINX" -p "$PDIR" -e "$PDIR/error.log" -c "$TMP/probe.conf"
PROBE_PID=$STARTED_PID
python3 "$LT" tlswait "$PROBE_PORT" 15 "$CERT" || die "probe nginx did not start"
shim_report() {   # the shim's report file must exist: else it was not active in wrk
    [[ -s $1 ]] || die "the wrk shim wrote no handshake count ($(basename "$1")): it only works on a wrk linked to a shared libssl (ldd $WRK)"
}
probe() {   # probe NAME [ENV...]: 1 s of wrk with Connection: close; sets P_FULL P_RES L_FULL L_RES
    local name=$1; shift
    : >"$PDIR/access.log"
    kill -USR1 "$PROBE_PID"   # reopen the emptied log
    sleep 0.2
    run_fg timeout 30 taskset -c "$LAST" env "$@" NORESUME_REPORT="$TMP/$name.hs" LD_PRELOAD="$SHIM" \
        "$WRK" -t1 -c4 -d1s -H "Connection: close" "https://localhost:$PROBE_PORT/" >"$TMP/$name.wrk" 2>&1 ||
        die "probe wrk failed: $(cat "$TMP/$name.wrk")"
    sleep 0.2
    shim_report "$TMP/$name.hs"
    P_FULL=$(sed -n 's/.*full=\([0-9]*\).*/\1/p' "$TMP/$name.hs")
    P_RES=$(sed -n 's/.*resumed=\([0-9]*\).*/\1/p' "$TMP/$name.hs")
    L_FULL=$(grep -c ' \.$' "$PDIR/access.log" || true)
    L_RES=$(grep -c ' r$' "$PDIR/access.log" || true)
    [[ -n $P_FULL && -n $P_RES ]] || die "no handshake count from the shim ($name)"
}
probe probe-plain NORESUME_COUNT_ONLY=1
kv probe.plain "client: full=$P_FULL resumed=$P_RES; nginx log: full=$L_FULL reused=$L_RES"
PLAIN_NOTE="plain wrk resumed $P_RES of $((P_FULL + P_RES)) handshakes (nginx \$ssl_session_reused: $L_RES of $((L_FULL + L_RES)))"
probe probe-shim
kv probe.shim "client: full=$P_FULL resumed=$P_RES; nginx log: full=$L_FULL reused=$L_RES"
(( P_RES == 0 && L_RES == 0 && P_FULL > 0 && L_FULL > 0 )) ||
    die "wrk with the shim still resumed (client: $P_RES, nginx log: $L_RES of $((L_FULL + L_RES)))"
kv resumption_note "$PLAIN_NOTE; with loadtest/noresume.c preloaded: 0 of $L_FULL (nginx log agrees); every measured (b) run checks resumed=0 on the client side"
log "resumption probe: $PLAIN_NOTE; with the shim: 0 resumed of $P_FULL"
stop_group "$PROBE_PID"

# ---------------------------------------------------------------- measurements
KA_CMD="taskset -c $LAST wrk -t1 -c$CONNS -d${DURATION}s https://localhost:PORT/"
HS_CMD="LD_PRELOAD=noresume.so taskset -c $LAST wrk -t1 -c$HS_CONNS -d${DURATION}s -H 'Connection: close' https://localhost:PORT/"

WRK_ENV=()    # NAME=VALUE settings for wrk itself (not for its timeout/taskset wrappers)
wrk_run() {   # wrk_run OUTFILE SECONDS CONNS URL [wrk args...]: bounded wrk on the last core
    local outf=$1 secs=$2 conns=$3 url=$4; shift 4
    run_fg timeout $((secs + 30)) taskset -c "$LAST" env ${WRK_ENV[@]+"${WRK_ENV[@]}"} "$WRK" -t1 -c"$conns" -d"${secs}s" "$@" "$url" >"$outf" 2>&1
}

# measure NAME PAIR PORT PID: (c) on the fresh process, then (a), then (b)
measure() {
    local name=$1 i=$2 port=$3 pid=$4 tag="$1.$2" url="https://localhost:$3/"
    python3 "$LT" tlswait "$port" 15 "$CERT" "$TMP/$tag.negotiated" || die "$name is not answering on https://localhost:$port"
    if [[ $i == 1 ]]; then
        # What an OpenSSL 3 client (wrk's library) negotiates: version, suite and key exchange group.
        local brief
        brief=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost -brief </dev/null 2>&1 |
            sed -n 's/^\(Protocol version\|Ciphersuite\|Server Temp Key\): *//p' | paste -sd' ' - || true)
        kv "$name.negotiated" "${brief:-$(cat "$TMP/$tag.negotiated")}"
    fi

    log "$tag: (c) RSS of $IDLE_CONNS idle TLS keep-alive connections"
    run_fg timeout 180 taskset -c "$LAST" python3 "$LT" tlsidle "$pid" "$port" "$IDLE_CONNS" "$CERT" \
        >"$TMP/$tag.idle" 2>"$TMP/$tag-idle.log" ||
        die "$tag: idle-connection measurement failed: $(cat "$TMP/$tag-idle.log")"
    sed "s/^/$tag./" "$TMP/$tag.idle" >>"$RES"
    alive "$pid" || die "$name exited during the idle-connection measurement"

    local c0 c1 requests
    log "$tag: (a) keep-alive: warm-up ${WARMUP}s, measured ${DURATION}s, wrk -c$CONNS"
    wrk_run "$TMP/$tag-ka-warmup.wrk" "$WARMUP" "$CONNS" "$url" || die "$tag: warm-up wrk failed"
    c0=$(cpu_ticks "$pid")
    wrk_run "$TMP/$tag-ka.wrk" "$DURATION" "$CONNS" "$url" || die "$tag: wrk failed: $(cat "$TMP/$tag-ka.wrk")"
    c1=$(cpu_ticks "$pid")
    alive "$pid" || die "$name exited during the keep-alive run"
    python3 "$LT" wrk "$TMP/$tag-ka.wrk" | sed "s/^/$tag.ka_/" >>"$RES"
    requests=$(sed -n "s/^$tag\.ka_requests=//p" "$RES")
    (( requests > 0 )) || die "$tag: wrk completed no keep-alive requests"
    kv "$tag.ka_cpu_ticks" "$((c1 - c0))"
    kv "$tag.ka_cpu_us" "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')"

    log "$tag: (b) new connection per request: warm-up ${WARMUP}s, measured ${DURATION}s, wrk -c$HS_CONNS"
    WRK_ENV=(LD_PRELOAD="$SHIM" NORESUME_REPORT="$TMP/$tag-hs-warmup.hs")
    wrk_run "$TMP/$tag-hs-warmup.wrk" "$WARMUP" "$HS_CONNS" "$url" -H "Connection: close" ||
        die "$tag: handshake warm-up wrk failed"
    WRK_ENV=(LD_PRELOAD="$SHIM" NORESUME_REPORT="$TMP/$tag-hs.hs")
    c0=$(cpu_ticks "$pid")
    wrk_run "$TMP/$tag-hs.wrk" "$DURATION" "$HS_CONNS" "$url" -H "Connection: close" ||
        die "$tag: handshake wrk failed: $(cat "$TMP/$tag-hs.wrk")"
    c1=$(cpu_ticks "$pid")
    WRK_ENV=()
    alive "$pid" || die "$name exited during the handshake run"
    python3 "$LT" wrk "$TMP/$tag-hs.wrk" | sed "s/^/$tag.hs_/" >>"$RES"
    requests=$(sed -n "s/^$tag\.hs_requests=//p" "$RES")
    (( requests > 0 )) || die "$tag: wrk completed no requests on new connections"
    local full resumed
    shim_report "$TMP/$tag-hs.hs"
    full=$(sed -n 's/.*full=\([0-9]*\).*/\1/p' "$TMP/$tag-hs.hs")
    resumed=$(sed -n 's/.*resumed=\([0-9]*\).*/\1/p' "$TMP/$tag-hs.hs")
    [[ -n $full && -n $resumed ]] || die "$tag: no handshake count from the shim"
    (( resumed == 0 )) || die "$tag: $resumed handshakes were resumptions (expected only full handshakes)"
    kv "$tag.hs_full" "$full"
    kv "$tag.hs_resumed" "$resumed"
    kv "$tag.hs_cpu_ticks" "$((c1 - c0))"
    kv "$tag.hs_cpu_us" "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')"
    log "$tag: (a) $(sed -n "s/^$tag\.ka_cpu_us=//p" "$RES") µs/request, (b) $(sed -n "s/^$tag\.hs_cpu_us=//p" "$RES") µs/handshake ($full full, 0 resumed), (c) $(sed -n "s/^$tag\.rss_per_conn_kib=//p" "$RES") KiB/conn"
}

run_tollgate() {   # run_tollgate PAIR
    start_bg "$TMP/tollgate.$1.log" "$TOLLGATE" -c "$TMP/tollgate.toml"
    local pid=$STARTED_PID
    python3 "$LT" tlswait "$TG_PORT" 15 "$CERT" || die "tollgate did not start (see tollgate.$1.log)"
    DRIVER_USED=$(sed -n 's/.*drivers \[\([^]]*\)\].*/\1/p' "$TMP/tollgate.$1.log" | head -n1)
    log "tollgate up on https://localhost:$TG_PORT (pid $pid, driver ${DRIVER_USED:-?})"
    measure tollgate "$1" "$TG_PORT" "$pid"
    stop_group "$pid"
}

run_nginx() {   # run_nginx PAIR
    start_bg "$TMP/nginx.$1.log" "$NGINX" -p "$NDIR" -e "$NDIR/error.log" -c "$TMP/nginx.conf"
    local master=$STARTED_PID worker
    python3 "$LT" tlswait "$NGX_PORT" 15 "$CERT" || die "nginx did not start"
    worker=$(nginx_worker "$master") || die "no nginx worker process found"
    log "nginx up on https://localhost:$NGX_PORT (master $master, worker $worker)"
    measure nginx "$1" "$NGX_PORT" "$worker"
    stop_group "$master"
}

DRIVER_USED=""
log "${SERVERS[*]}: $PAIRS alternating pairs, about ${EST}s in all"
for ((i = 1; i <= PAIRS; i++)); do
    for s in "${SERVERS[@]}"; do "run_$s" "$i"; done
done

# ---------------------------------------------------------------- report
kv pairs "$PAIRS"
[[ $ONLY != nginx ]] || kv tollgate.skipped "--only nginx"
[[ $ONLY != tollgate ]] || kv nginx.skipped "--only tollgate"
kv driver "${DRIVER_USED:-n/a}"
kv driver_requested "$DRIVER"
kv ka_cmd "$KA_CMD"
kv hs_cmd "$HS_CMD"
kv idle_n "$IDLE_CONNS"
kv last_core "$LAST"
kv nginx_version "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
kv wrk_version "$("$WRK" -v 2>&1 | head -n1 | awk '{ print $2 }' || true)"
kv openssl_version "$(openssl version)"
kv kernel "$(uname -srm)"
kv cpu_model "$(grep -m1 'model name' /proc/cpuinfo | sed 's/^[^:]*: *//' || echo unknown)"
kv ncpu "$NCPU"
kv date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown ]] && [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    commit="$commit-dirty"
fi
[[ $ONLY != nginx ]] || commit="n/a (not measured)"
kv commit "$commit"

mkdir -p "$OUT"
python3 "$LT" tlstable "$RES" >"$OUT/tls-results.md"
cp -f "$RES" "$OUT/tls-results.kv"
save_raw
cat "$OUT/tls-results.md"
