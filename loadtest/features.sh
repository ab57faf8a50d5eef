# Sourced by run.sh and overhead.sh: the TOML each measured feature adds to a plain tollgate
# proxy config, so both scripts measure exactly the same thing.

# The API key the limits variant requires (sent by the load generator).
LOADTEST_KEY="loadtest-key-0123456789abcdef"

# Lines for the `$default` route: it requires an API key and has its own limit.
limits_route_lines() {
    printf 'api_key_required = true\nthrottle = { rate = 1e9, burst = 1000000000 }\n'
}

# A gateway limit and an API key whose usage plan has a limit, all far above the offered load,
# so every request pays for the throttle decision and none is refused.
limits_tables() {
    cat <<TOML

[throttle]
rate = 1e9
burst = 1000000000

[[usage_plan]]
name = "load"
throttle = { rate = 1e9, burst = 1000000000 }

[[api_key]]
name = "loadtest"
value = "$LOADTEST_KEY"
plan = "load"
TOML
}

# The admin listener on port $1 (metrics are recorded per request once it exists) and, with a
# directory $2, a JSON access log written to $2/access.log.
observability_tables() {
    printf '\n[admin]\nlisten = "127.0.0.1:%s"\n' "$1"
    if [[ -n ${2:-} ]]; then
        printf '\n[access_log]\npath = "%s/access.log"\nformat = "json"\n' "$2"
    fi
}
