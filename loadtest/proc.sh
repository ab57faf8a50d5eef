# shellcheck shell=bash
# Process bookkeeping shared by run.sh, tls.sh and h2.sh (sourced; they keep the PIDS array of
# what to stop on exit, and define log).

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

FG_PID=""
run_fg() {   # run a bounded foreground step in the background and wait: traps then fire at once
    "$@" 3>&- 4>&- &
    FG_PID=$!
    local rc=0
    wait "$FG_PID" || rc=$?
    FG_PID=""
    return "$rc"
}

start_bg() {   # start_bg LOGFILE CMD...: new session/process group; sets STARTED_PID
    local logf=$1; shift
    setsid "$@" >"$logf" 2>&1 </dev/null 3>&- 4>&- &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

nginx_worker() {   # the single worker process of nginx master $1
    local master=$1 i w
    for ((i = 0; i < 100; i++)); do
        w=$(pgrep -P "$master" 2>/dev/null | head -n1 || true)
        [[ -n $w ]] && { echo "$w"; return 0; }
        sleep 0.1
    done
    return 1
}

cpu_ticks() {   # utime + stime (fields 14, 15 of /proc/PID/stat), in clock ticks
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

alive() {   # a live (not zombie) process
    [[ -r /proc/$1/stat ]] || return 1
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z ]]
}

stop_group() {   # TERM the process group led by $1, KILL it after 5 s
    local pid=$1 i
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        log "pid $pid did not stop on SIGTERM, sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true   # leftover nginx workers share the group
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=(${keep[@]+"${keep[@]}"})
}
