#!/usr/bin/env bash
# Edgeway load benchmark: the same fixed-response origin behind Edgeway, nginx and HAProxy, each
# proxy pinned to one core with one worker, loaded by wrk from the other core. Prints a markdown
# table: requests/s, p50/p99 latency and the proxy's CPU time per request.
#
#   bench/run.sh                                  # everything, 10 s per row, 64 connections
#   DURATION=30 CONNECTIONS=128 bench/run.sh
#   ROWS="origin edgeway" bench/run.sh            # a subset of rows, in that order
#   ROWS="edgeway edgeway-authorizer edgeway-authorizer-cached" REPEAT=5 bench/run.sh
#                                                 # the WASM authorizer against the plain route
#   ROWS="edgeway-cache nginx-cache" REPEAT=5 bench/run.sh
#                                                 # cache hits: Edgeway's stage cache against
#                                                 # nginx's proxy_cache
#
# Environment (defaults in brackets):
#   DURATION      seconds of measured load per row [10]
#   WARMUP        seconds of unmeasured load per row before that [2]
#   CONNECTIONS   wrk connections [64]
#   THREADS       wrk threads [1]
#   REPEAT        rounds over all rows; each row reports its median round by CPU µs/req, which
#                 evens out other work on the machine (a compile, say), and the median of its
#                 rounds' p99s with their range (one round's p99 is often one stall of the
#                 machine's, landing on whichever row was running) [1]
#   ROWS          rows to run, space separated [origin edgeway edgeway-canary edgeway-domain edgeway-api-key
#                 edgeway-authorizer edgeway-authorizer-cached edgeway-cache edgeway-mock edgeway-mapped
#                 edgeway-function edgeway-function-proxy (and edgeway-function-proxy-small,
#                 edgeway-metrics-off, edgeway-access-custom, edgeway-tracing and
#                 edgeway-tracing-1pct, on request) nginx
#                 nginx-cache haproxy]; edgeway-api-key needs an API key of a usage plan (per-key
#                 throttle and quota) on the plain route; the two -cache rows are cache-hit rows: the probe fills the cache and
#                 checks that the next response is a hit, and from then on the origin sees no
#                 requests; edgeway-mock answers from config, the floor under a hit
#   BEFORE_BIN    another edgeway binary (the build before a change): a row named ROW@before
#                 (edgeway@before, edgeway-cache@before) is ROW run with it, in the same rounds
#                 as ROW, so before and after compare within one run: ROWS="edgeway
#                 edgeway@before" RATIOS="edgeway:edgeway@before" BEFORE_BIN=/tmp/old/edgeway
#   RATIOS        "ROW:BASELINE" pairs, space separated: under the table, ROW's CPU µs/req over
#                 BASELINE's in the same round, for the pairs whose rows both ran
#                 [edgeway-canary:edgeway edgeway-domain:edgeway edgeway-api-key:edgeway edgeway-authorizer:edgeway
#                 edgeway-authorizer-cached:edgeway edgeway-cache:nginx-cache
#                 edgeway-cache:edgeway-mock edgeway-mapped:edgeway edgeway-function-proxy:edgeway-function]
#   PROXY_CPU     core the proxy under test is pinned to [0]
#   LOAD_CPU      core wrk and the origin are pinned to [1]
#   ACCESS_LOG    file | off: every proxy writes one access-log line per request to a file, or
#                 none does (Edgeway's stdout then goes to /dev/null) [file]
#   BODY_BYTES    origin response body size in bytes [~100-byte JSON]
#   NO_INSTALL=1  don't apt-get install missing nginx/haproxy/wrk (fail instead)
#   NO_BUILD=1    use the binaries already in the target directory (the plugin rows still
#                 need target/plugins/token_authorizer.wasm; without NO_BUILD the script runs
#                 scripts/build-plugins.sh when that file is missing)
#   KEEP_RUNDIR=1 keep the scratch directory (configs, logs) after the run
#   RESULTS       also write the table to this file
#
# How it measures, per row: start the server(s), check one request answers 200, run wrk for
# WARMUP seconds, then read utime+stime of the measured processes (a process and all its
# descendants, e.g. nginx's master and worker) from /proc/PID/stat, run wrk for DURATION seconds,
# read them again. CPU µs/request = ticks delta / CLK_TCK / requests wrk completed. "proxy CPU %"
# is that CPU time over the wall time: near 100 % means the proxy's core was the bottleneck,
# lower means the load side (wrk + origin sharing one core) was. "proxy core busy %" and "load
# core busy %" are how busy each core was in all (from /proc/stat): the proxy core's busy time
# beyond the proxy's own CPU is someone else's work (a compile, say) stealing from the proxy.
# "origin µs/req" is the origin's own CPU per request (it jumps if a proxy doesn't reuse its
# origin connections).
#
# Adding a row: write a function `row_<name>` (dashes in the name become underscores) that starts
# what it needs with `spawn`, then sets ROW_URL (the URL wrk loads), ROW_PIDS (the processes whose
# CPU is counted; their descendants are added) and ROW_DESC (one line for the table's notes);
# optionally ROW_HEADERS, an array of "Name: value" request headers that wrk and the probe send,
# and ROW_HIT, a "Name: value" response header that marks a cache hit: the probe then sends a
# second request, which must carry it, and the round fails if the origin was busy during it.
# Everything `spawn`ed is stopped after the row and, whatever happens, when the script exits.
# Row functions and traps are called indirectly; PID lists are split on purpose.
# shellcheck disable=SC2317,SC2086
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"

DURATION=${DURATION:-10}; DURATION=${DURATION%s}
WARMUP=${WARMUP:-2}; WARMUP=${WARMUP%s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
REPEAT=${REPEAT:-1}
ROWS=${ROWS:-"origin edgeway edgeway-canary edgeway-domain edgeway-api-key edgeway-authorizer edgeway-authorizer-cached edgeway-cache edgeway-mock edgeway-mapped edgeway-function edgeway-function-proxy nginx nginx-cache haproxy"}
RATIOS=${RATIOS-"edgeway-canary:edgeway edgeway-domain:edgeway edgeway-api-key:edgeway edgeway-authorizer:edgeway edgeway-authorizer-cached:edgeway edgeway-cache:nginx-cache edgeway-cache:edgeway-mock edgeway-mapped:edgeway edgeway-function-proxy:edgeway-function"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ACCESS_LOG=${ACCESS_LOG:-file}
BODY_BYTES=${BODY_BYTES:-}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-15}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for v in DURATION WARMUP CONNECTIONS THREADS REPEAT PROXY_CPU LOAD_CPU STARTUP_TIMEOUT BUILD_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ -z $BODY_BYTES || $BODY_BYTES =~ ^[0-9]+$ ]] || die "BODY_BYTES must be a whole number"
case $ACCESS_LOG in file | off) ;; *) die "ACCESS_LOG must be 'file' or 'off'" ;; esac
((DURATION > 0)) || die "DURATION must be at least 1"
((REPEAT > 0)) || die "REPEAT must be at least 1"
for pair in $RATIOS; do
    [[ $pair =~ ^[a-z0-9@-]+:[a-z0-9@-]+$ ]] || die "RATIOS: '$pair' is not ROW:BASELINE (e.g. edgeway-cache:nginx-cache)"
done

# ---------------------------------------------------------------------------------------------
# Processes: everything started goes through `spawn` and is stopped by `stop_all` on exit.

STARTED=()      # every PID spawned, for the EXIT trap
ROW_STARTED=()  # PIDs spawned by the current row
RUNDIR=""

# descendants PID...: the PIDs and all their descendants, from /proc.
descendants() {
    local -A keep=() parent=()
    local p f stat rest
    local -a fields
    for f in /proc/[0-9]*/stat; do
        { read -r stat <"$f"; } 2>/dev/null || continue
        rest=${stat##*) }
        read -r -a fields <<<"$rest"
        parent[${stat%% *}]=${fields[1]}
    done
    for p in "$@"; do [[ -n ${parent[$p]:-} ]] && keep[$p]=1; done
    local changed=1
    while ((changed)); do
        changed=0
        for p in "${!parent[@]}"; do
            if [[ -z ${keep[$p]:-} && -n ${keep[${parent[$p]}]:-} ]]; then keep[$p]=1; changed=1; fi
        done
    done
    echo "${!keep[@]}"
}

# running PID: whether the process exists and is not a zombie.
running() {
    local stat rest
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    rest=${stat##*) }
    [[ ${rest:0:1} != Z ]]
}

# stop_pids PID...: SIGTERM the processes and their descendants, SIGKILL what's left after 5 s.
stop_pids() {
    (($#)) || return 0
    local pids p i alive
    pids=$(descendants "$@")
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for p in $pids; do running "$p" && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in $pids; do running "$p" && kill -KILL "$p" 2>/dev/null; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
    forget "$@"
}

# forget PID...: drop stopped processes from STARTED, so that the EXIT trap never signals a
# process that later got the same PID.
forget() {
    local remaining=() p q gone
    for p in "${STARTED[@]}"; do
        gone=0
        for q in "$@"; do [[ $p == "$q" ]] && gone=1; done
        ((gone)) || remaining+=("$p")
    done
    STARTED=("${remaining[@]}")
}

stop_all() {
    local status=$?
    trap - EXIT INT TERM
    stop_pids "${STARTED[@]}"
    if [[ -n $RUNDIR && -d $RUNDIR ]]; then
        if [[ ${KEEP_RUNDIR:-0} == 1 || $status -ne 0 ]]; then
            log "configs and logs kept in $RUNDIR"
        else
            rm -rf "$RUNDIR"
        fi
    fi
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn CPU NAME CMD...: start CMD pinned to core CPU, stdout to $RUNDIR/NAME.out and stderr to
# $RUNDIR/NAME.err (unless the caller sets SPAWN_STDOUT), and set SPAWNED to its PID.
spawn() {
    local cpu=$1 name=$2
    shift 2
    local out=${SPAWN_STDOUT:-$RUNDIR/$name.out}
    # Empty the logs here, not in the background shell below: a caller that reads them at once
    # (edgeway_row, for its address) must never see the last round's.
    : >"$out" 2>/dev/null || true
    : >"$RUNDIR/$name.err"
    taskset -c "$cpu" "$@" >"$out" 2>"$RUNDIR/$name.err" </dev/null &
    SPAWNED=$!
    STARTED+=("$SPAWNED")
    ROW_STARTED+=("$SPAWNED")
}

# alive PID NAME: fail with the process's stderr if it has exited.
alive() {
    if ! kill -0 "$1" 2>/dev/null; then
        log "$2 exited early; its stderr:"
        tail -n 20 "$RUNDIR/$2.err" >&2 || true
        return 1
    fi
}

# port_in_use PORT: whether something on 127.0.0.1 accepts connections on PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a port that nothing listens on, below the kernel's ephemeral range so that no
# client socket (wrk's, a proxy's connection to the origin) can be holding it.
free_port() {
    local i port low=32768
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    ((low > 11000)) || die "the ephemeral port range starts at $low; no room for fixed ports below it"
    for ((i = 0; i < 100; i++)); do
        port=$((10000 + RANDOM % (low - 10000)))
        port_in_use "$port" || { echo "$port"; return 0; }
    done
    die "no free port found"
}

# wait_port PID NAME PORT: wait until PORT accepts connections (or the process dies).
wait_port() {
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    while ! port_in_use "$3"; do
        alive "$1" "$2" || return 1
        ((SECONDS < deadline)) || { log "$2 did not listen on 127.0.0.1:$3 within ${STARTUP_TIMEOUT}s"; return 1; }
        sleep 0.05
    done
}

# render TEMPLATE OUT KEY=VALUE...: copy TEMPLATE to OUT with each @KEY@ replaced by VALUE.
render() {
    local template=$1 out=$2 kv
    shift 2
    local text
    text=$(<"$template")
    for kv in "$@"; do text=${text//@${kv%%=*}@/${kv#*=}}; done
    printf '%s\n' "$text" >"$out"
}

# ---------------------------------------------------------------------------------------------
# Rows. Each sets ROW_URL, ROW_PIDS and ROW_DESC; see "Adding a row" above.

ORIGIN_PID=""
ORIGIN_ADDR=""

start_origin() {
    local args=(--addr 127.0.0.1:0)
    [[ -n $BODY_BYTES ]] && args+=(--body-bytes "$BODY_BYTES")
    ROW_STARTED=()
    spawn "$LOAD_CPU" origin "$ORIGIN_BIN" "${args[@]}"
    ROW_STARTED=()  # the origin outlives the rows
    ORIGIN_PID=$SPAWNED
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    until ORIGIN_ADDR=$(sed -n 's/^listening on //p' "$RUNDIR/origin.out" 2>/dev/null) && [[ -n $ORIGIN_ADDR ]]; do
        alive "$ORIGIN_PID" origin || die "the origin did not start"
        ((SECONDS < deadline)) || die "the origin did not report its address within ${STARTUP_TIMEOUT}s"
        sleep 0.05
    done
    log "origin listening on $ORIGIN_ADDR (pid $ORIGIN_PID, core $LOAD_CPU)"
}

row_origin() {
    ROW_URL="http://$ORIGIN_ADDR/bench/hello"
    ROW_PIDS="$ORIGIN_PID"
    ROW_DESC="the origin alone, no proxy (shares core $LOAD_CPU with wrk; CPU is the origin's)"
}

# edgeway_row NAME CONFIG: Edgeway with CONFIG (its `origin:` line pointed at the bench origin,
# and relative `dir:` / `cache_dir:` paths of its `plugins:` section made absolute against
# CONFIG's folder, since the copy runs from the scratch directory); the building block for
# Edgeway rows with other configs (plugins, cache, ...).
edgeway_row() {
    local name=$1 config="$RUNDIR/$1.yaml" from
    from=$(cd "$(dirname "$2")" && pwd)
    sed -e "s|^origin: .*|origin: http://$ORIGIN_ADDR|" \
        -e "s|^\([[:space:]]*\)\(\(cache_\)\{0,1\}dir\):[[:space:]]*\([^/[:space:]\"'][^[:space:]]*\)[[:space:]]*$|\1\2: $from/\4|" \
        "$2" >"$config"
    local out=/dev/null
    [[ $ACCESS_LOG == file ]] && out="$RUNDIR/$name-access.log"
    SPAWN_STDOUT=$out spawn "$PROXY_CPU" "$name" "$EDGEWAY_BIN" serve --config "$config" --no-watch
    local pid=$SPAWNED addr="" deadline=$((SECONDS + STARTUP_TIMEOUT))
    # Edgeway binds port 0 and logs {"fields":{"message":"listening","name":"listen[0]","addr":...}}.
    until [[ -n $addr ]]; do
        alive "$pid" "$name" || return 1
        ((SECONDS < deadline)) || { log "$name logged no 'listening' for listen[0] within ${STARTUP_TIMEOUT}s"; return 1; }
        sleep 0.05
        addr=$(grep '"message":"listening"' "$RUNDIR/$name.err" | grep -F '"name":"listen[0]"' |
            sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' | head -n 1 || true)
    done
    ROW_URL="http://$addr/bench/hello"
    ROW_PIDS="$pid"
}

edgeway_log_desc() {
    [[ $ACCESS_LOG == file ]] && echo "stdout → a file (one JSON line per request)" ||
        echo "stdout → /dev/null (still written: Edgeway has no switch)"
}

row_edgeway() {
    edgeway_row edgeway "$BENCH/edgeway/proxy.yaml" || return 1
    ROW_DESC="Edgeway, workers: 1, bench/edgeway/proxy.yaml; access log: $(edgeway_log_desc)"
}

# The plain row with `metrics: { enabled: false }`: what counting for GET /metrics costs.
row_edgeway_metrics_off() {
    local config="$RUNDIR/proxy-metrics-off.yaml"
    { cat "$BENCH/edgeway/proxy.yaml"; echo "metrics: { enabled: false }"; } >"$config"
    edgeway_row edgeway-metrics-off "$config" || return 1
    ROW_DESC="as edgeway, with \`metrics: { enabled: false }\` (no request counted for GET /metrics); access log: $(edgeway_log_desc)"
}

# The plain row with an access-log format of the user's (`$context` variables, the user agent
# among them): what compiling formats costs against Edgeway's own line.
BENCH_ACCESS_FORMAT='$context.requestId $context.identity.sourceIp [$context.requestTime] "$context.httpMethod $context.resourcePath $context.protocol" $context.status $context.responseLength $context.responseLatency $context.integrationLatency "$context.identity.userAgent"'
row_edgeway_access_custom() {
    local config="$RUNDIR/proxy-access-custom.yaml"
    { cat "$BENCH/edgeway/proxy.yaml"; echo "access_log: { format: '$BENCH_ACCESS_FORMAT' }"; } >"$config"
    edgeway_row edgeway-access-custom "$config" || return 1
    ROW_DESC="as edgeway, with \`access_log: { format: '$BENCH_ACCESS_FORMAT' }\`; access log: $(edgeway_log_desc | sed 's/JSON line/line in that format/')"
}

# The plain row with its stage in traces: sampling RATIO of new traces, spans (the request's and
# the integration's) exported over OTLP/HTTP to the bench origin, which answers the collector's
# POSTs as it answers everything.
tracing_row() {
    local name=$1 ratio=$2 config="$RUNDIR/proxy-$1.yaml"
    {
        sed "s|^      bench: {}|      bench: { tracing: { sampling: $ratio } }|" "$BENCH/edgeway/proxy.yaml"
        echo "tracing: { endpoint: 'http://$ORIGIN_ADDR/v1/traces' }"
    } >"$config"
    edgeway_row "$name" "$config" || return 1
    ROW_DESC="as edgeway, with \`tracing: { sampling: $ratio }\` on the stage: a traceparent to the origin on every request, the sampled ones' two spans exported to the origin (OTLP/HTTP, batches of up to 512); access log: $(edgeway_log_desc)"
}
row_edgeway_tracing() { tracing_row edgeway-tracing 1; }
row_edgeway_tracing_1pct() { tracing_row edgeway-tracing-1pct 0.01; }

# The same route with the token-authorizer WASM plugin as its authorizer; wrk sends the token.
BENCH_TOKEN_HEADER="Authorization: Bearer bench-token"

row_edgeway_authorizer() {
    edgeway_row edgeway-authorizer "$BENCH/edgeway/authorizer.yaml" || return 1
    ROW_HEADERS=("$BENCH_TOKEN_HEADER")
    ROW_DESC="as edgeway, with the token-authorizer plugin called on every request (result_ttl_s: 0), bench/edgeway/authorizer.yaml; wrk sends \`$BENCH_TOKEN_HEADER\`; access log: $(edgeway_log_desc)"
}

row_edgeway_authorizer_cached() {
    edgeway_row edgeway-authorizer-cached "$BENCH/edgeway/authorizer-cached.yaml" || return 1
    ROW_HEADERS=("$BENCH_TOKEN_HEADER")
    ROW_DESC="as edgeway-authorizer with the result cache on (default result_ttl_s, 300 s): one plugin call, then cache hits, bench/edgeway/authorizer-cached.yaml; access log: $(edgeway_log_desc)"
}

# A WASM handler answers (no origin): Edgeway's request record in, a response out.
row_edgeway_function() {
    edgeway_row edgeway-function "$BENCH/edgeway/function.yaml" || return 1
    ROW_DESC="as edgeway, answered by the echo-function handler plugin (the request record echoed as JSON), no origin, bench/edgeway/function.yaml; access log: $(edgeway_log_desc)"
}

# A Lambda-style handler answers through API Gateway's 2.0 proxy event.
row_edgeway_function_proxy() {
    edgeway_row edgeway-function-proxy "$BENCH/edgeway/function-proxy.yaml" || return 1
    ROW_DESC="as edgeway-function, answered by the Rust lambda-echo handler through \`payload: aws-proxy-2.0\` (the event echoed in a Lambda response object), bench/edgeway/function-proxy.yaml; access log: $(edgeway_log_desc)"
}

# The same handler answering a small fixed JSON value (`?shape=bare`, 2.0's bare-value rule):
# the event still goes in whole, the answer out is ~30 bytes.
row_edgeway_function_proxy_small() {
    edgeway_row edgeway-function-proxy-small "$BENCH/edgeway/function-proxy.yaml" || return 1
    ROW_URL="$ROW_URL?shape=bare"
    ROW_DESC="as edgeway-function-proxy, but the handler answers a bare ~30-byte JSON value (\`?shape=bare\`): the event's cost without the echo, bench/edgeway/function-proxy.yaml; access log: $(edgeway_log_desc)"
}

# edgeway_admin NAME: the admin address row NAME's Edgeway logged.
edgeway_admin() {
    grep '"message":"listening"' "$RUNDIR/$1.err" | grep -F '"name":"admin"' |
        sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' | head -n 1 || true
}

# The plain route behind an API key of a usage plan with a per-key throttle and a daily quota:
# what access control and traffic management add to a request. The key is made through the
# admin API before the probe; the state folder is emptied first, so every round starts alike.
BENCH_API_KEY="bench-api-key-0123456789abcdef"
export EDGEWAY_BENCH_ADMIN_TOKEN=bench-admin-token

row_edgeway_api_key() {
    rm -rf "$RUNDIR/edgeway-api-key-state"
    edgeway_row edgeway-api-key "$BENCH/edgeway/api-key.yaml" || return 1
    local admin
    admin=$(edgeway_admin edgeway-api-key)
    [[ -n $admin ]] || { log "edgeway-api-key logged no admin address"; return 1; }
    curl -fsS -o /dev/null -X POST "http://$admin/admin/keys" \
        -H "authorization: Bearer $EDGEWAY_BENCH_ADMIN_TOKEN" -H 'content-type: application/json' \
        -d "{\"name\":\"bench\",\"plan\":\"bench\",\"value\":\"$BENCH_API_KEY\"}" ||
        { log "edgeway-api-key: cannot create the key through the admin API"; return 1; }
    ROW_HEADERS=("x-api-key: $BENCH_API_KEY")
    ROW_DESC="as edgeway, with \`api_key_required\` and a usage plan (per-key throttle and daily quota, limits above the load), bench/edgeway/api-key.yaml; wrk sends \`x-api-key\`; responses carry RateLimit headers; access log: $(edgeway_log_desc)"
}

# The plain route's stage served from a deployment, with a canary at 10% beside it: what the
# split costs a request. Deployed and canaried through the admin API before the probe.
row_edgeway_canary() {
    rm -rf "$RUNDIR/edgeway-canary-state"
    edgeway_row edgeway-canary "$BENCH/edgeway/canary.yaml" || return 1
    local admin
    admin=$(edgeway_admin edgeway-canary)
    [[ -n $admin ]] || { log "edgeway-canary logged no admin address"; return 1; }
    local auth="authorization: Bearer $EDGEWAY_BENCH_ADMIN_TOKEN" json='content-type: application/json'
    curl -fsS -o /dev/null -X POST "http://$admin/admin/apis/bench/deployments" -H "$auth" -H "$json" \
        -d '{"stage":"bench","description":"bench base"}' &&
        curl -fsS -o /dev/null -X PUT "http://$admin/admin/apis/bench/stages/bench/canary" -H "$auth" -H "$json" \
            -d '{"percent":10,"description":"bench canary"}' ||
        { log "edgeway-canary: cannot deploy and start the canary through the admin API"; return 1; }
    ROW_DESC="as edgeway, with the stage served from a deployment and a canary at 10% (a random split per request), bench/edgeway/canary.yaml; access log: $(edgeway_log_desc)"
}

# The plain route through a custom domain: wrk names the domain in Host and the base path in
# the path, so the request pays the domain lookup and the longest-base-path match.
row_edgeway_domain() {
    edgeway_row edgeway-domain "$BENCH/edgeway/domain.yaml" || return 1
    ROW_URL="${ROW_URL%/bench/hello}/v1/hello"
    ROW_HEADERS=("Host: api.bench.test")
    ROW_DESC="as edgeway, through the custom domain api.bench.test (base path v1 of two mappings), bench/edgeway/domain.yaml; wrk sends \`Host: api.bench.test\` to /v1/hello; access log: $(edgeway_log_desc)"
}

# Cache-hit rows: the probe's first request fills the cache, its second must be a hit, and from
# then on the origin sees nothing (run_row fails the round if it was busy).
row_edgeway_cache() {
    edgeway_row edgeway-cache "$BENCH/edgeway/cache.yaml" || return 1
    ROW_HIT="x-cache: hit"
    ROW_DESC="cache-hit row: as edgeway with the stage cache on (ttl_s: 300), bench/edgeway/cache.yaml; hits checked (the probe's second response carries \`$ROW_HIT\`, the origin idle under load); access log: $(edgeway_log_desc)"
}

# The plain route as a non-proxy `http` integration with a request and a response template,
# rendered by the built-in mapping-template component (two plugin calls per request).
row_edgeway_mapped() {
    edgeway_row edgeway-mapped "$BENCH/edgeway/mapped.yaml" || return 1
    ROW_DESC="as edgeway, through an \`http\` integration with a request and a response mapping template (two mapper calls per request), bench/edgeway/mapped.yaml; access log: $(edgeway_log_desc)"
}

# The floor under a cache hit: the same answer from config (a mock integration), no cache.
row_edgeway_mock() {
    edgeway_row edgeway-mock "$BENCH/edgeway/mock.yaml" || return 1
    ROW_DESC="as edgeway, answered from config (mock integration, the origin's body), no origin and no cache: the floor under edgeway-cache, bench/edgeway/mock.yaml; access log: $(edgeway_log_desc)"
}

# nginx_row NAME TEMPLATE: nginx from TEMPLATE (placeholders: see bench/nginx/nginx.conf); the
# building block for nginx rows with other configs (proxy_cache, ...).
nginx_row() {
    local name=$1 port
    port=$(free_port)
    # Empty, so that a row with a proxy_cache (in $name-tmp/cache) starts cold in every round.
    rm -rf "$RUNDIR/$name-tmp"
    mkdir -p "$RUNDIR/$name-tmp"
    local access="off"
    [[ $ACCESS_LOG == file ]] && access="$RUNDIR/$name-access.log bench"
    render "$2" "$RUNDIR/$name.conf" "RUNDIR=$RUNDIR" "NAME=$name" \
        "LISTEN=127.0.0.1:$port" "ORIGIN=$ORIGIN_ADDR" "ACCESS_LOG=$access"
    spawn "$PROXY_CPU" "$name" nginx -p "$RUNDIR" -c "$RUNDIR/$name.conf" -e "$RUNDIR/$name-error.log"
    wait_port "$SPAWNED" "$name" "$port" || return 1
    ROW_URL="http://127.0.0.1:$port/bench/hello"
    ROW_PIDS="$SPAWNED"
}

row_nginx() {
    nginx_row nginx "$BENCH/nginx/nginx.conf" || return 1
    ROW_DESC="nginx $(nginx_version), worker_processes 1 (master + worker counted), upstream keepalive 64; access log: $(access_log_desc)"
}

row_nginx_cache() {
    nginx_row nginx-cache "$BENCH/nginx/nginx-cache.conf" || return 1
    ROW_HIT="X-Cache-Status: HIT"
    ROW_DESC="cache-hit row: as nginx with proxy_cache (proxy_cache_valid 200 300s, proxy_cache_lock on, open_file_cache; master, worker, cache manager and loader counted), bench/nginx/nginx-cache.conf; hits checked (the probe's second response carries \`$ROW_HIT\`, the origin idle under load); access log: $(access_log_desc)"
}

nginx_version() { nginx -v 2>&1 | sed 's|.*nginx/||'; }

# haproxy_row NAME TEMPLATE: HAProxy from TEMPLATE (placeholders: see bench/haproxy/haproxy.cfg).
haproxy_row() {
    local name=$1 port
    port=$(free_port)
    local logline=""
    [[ $ACCESS_LOG == file ]] && logline="log stdout format raw local0 info"
    render "$2" "$RUNDIR/$name.cfg" "RUNDIR=$RUNDIR" "NAME=$name" \
        "LISTEN=127.0.0.1:$port" "ORIGIN=$ORIGIN_ADDR" "LOG=$logline"
    haproxy -c -q -f "$RUNDIR/$name.cfg" >"$RUNDIR/$name-check.err" 2>&1 ||
        { log "haproxy rejected its config:"; cat "$RUNDIR/$name-check.err" >&2; return 1; }
    local out=/dev/null
    [[ $ACCESS_LOG == file ]] && out="$RUNDIR/$name-access.log"
    SPAWN_STDOUT=$out spawn "$PROXY_CPU" "$name" haproxy -db -f "$RUNDIR/$name.cfg"
    wait_port "$SPAWNED" "$name" "$port" || return 1
    ROW_URL="http://127.0.0.1:$port/bench/hello"
    ROW_PIDS="$SPAWNED"
}

row_haproxy() {
    haproxy_row haproxy "$BENCH/haproxy/haproxy.cfg" || return 1
    ROW_DESC="HAProxy $(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p'), nbthread 1, http-reuse always; access log: $(access_log_desc)"
}

access_log_desc() { [[ $ACCESS_LOG == file ]] && echo "a file (one JSON line per request)" || echo "off"; }

# ---------------------------------------------------------------------------------------------
# Measurement.

CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID...: utime+stime (clock ticks) summed over the processes, threads included.
cpu_ticks() {
    local user sys
    read -r user sys <<<"$(cpu_split_ticks "$@")"
    echo $((user + sys))
}

# cpu_split_ticks PID...: "utime stime" (clock ticks) summed over the processes.
cpu_split_ticks() {
    local p stat rest user=0 sys=0
    local -a f
    for p in "$@"; do
        { read -r stat <"/proc/$p/stat"; } 2>/dev/null || continue
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        # Fields after "comm)": f[0] is field 3 (state), so utime (14) is f[11], stime (15) f[12].
        user=$((user + f[11])) sys=$((sys + f[12]))
    done
    echo "$user $sys"
}

# thread_ticks PID...: "name ticks" per thread name (threads of the same name summed), over all
# threads of the processes, for the CPU-by-thread note.
thread_ticks() {
    local p t stat comm rest
    local -a f
    local -A by=()
    for p in "$@"; do
        for t in "/proc/$p/task/"[0-9]*; do
            { read -r stat <"$t/stat"; } 2>/dev/null || continue
            comm=${stat#*(}; comm=${comm%) *}; comm=${comm// /_}
            rest=${stat##*) }
            read -r -a f <<<"$rest"
            by[$comm]=$(( ${by[$comm]:-0} + f[11] + f[12] ))
        done
    done
    for comm in "${!by[@]}"; do echo "$comm ${by[$comm]}"; done
}

# core_ticks CPU: "busy total" jiffies of one core from /proc/stat.
core_ticks() {
    local line
    local -a f
    line=$(grep "^cpu$1 " /proc/stat)
    read -r -a f <<<"$line"
    local idle=$((f[4] + f[5])) total=0 i
    for ((i = 1; i <= 8 && i < ${#f[@]}; i++)); do total=$((total + f[i])); done
    echo "$((total - idle)) $total"
}

# to_ms VALUE: a wrk latency ("301.00us", "1.06ms", "2.00s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# wrk_run SECONDS URL OUT: load URL from the load core, wrk's report to OUT. Run in the background
# and waited for, so that a signal to the script stops it at once rather than after wrk ends.
wrk_run() {
    local seconds=$1 url=$2 out=$3 pid status=0 h
    local headers=()
    for h in "${ROW_HEADERS[@]}"; do headers+=(-H "$h"); done
    timeout --kill-after=5 $((seconds + 30)) taskset -c "$LOAD_CPU" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --timeout 5s --latency "${headers[@]}" "$url" >"$out" 2>&1 </dev/null &
    pid=$!
    STARTED+=("$pid")
    wait "$pid" || status=$?
    forget "$pid"
    return "$status"
}

# Per row name: its measured rounds, one per line, tab-separated
# "cpu_us rps p50 p99 proxy_cpu% proxy_core% load_core% origin_us errors"; its last failure; its note.
declare -A MEASURED=() FAILURE=() NOTE=()
declare -A ROUND_CPU=()  # "NAME ROUND" → CPU µs/req of that round, for the RATIOS
FAILED=0
ROUND=1

fail_row() {
    log "row $1 FAILED: $2"
    FAILURE[$1]=$2
    FAILED=1
}

# table_row NAME FIELDS RANGE: one markdown row from a round's tab-separated fields.
# table_row NAME MEASURED_ROW CPU_RANGE [P99]: P99, when given, replaces the row's own.
table_row() {
    local cpu rps p50 p99 pcpu pcore lcore ocpu errors user sys
    IFS=$'\t' read -r cpu rps p50 p99 pcpu pcore lcore ocpu errors user sys <<<"$2"
    [[ -z ${4:-} ]] || p99=$4
    echo "| $1 | $rps | $p50 | $p99 | $cpu$3 | $user | $sys | $pcpu % | $pcore % | $lcore % | $ocpu | $errors |"
}

# probe_hit NAME CURL_ARGS...: whether a GET of ROW_URL answers 200 with the ROW_HIT header
# (name case-insensitive, as HTTP has it; value case-insensitive too, "HIT" and "hit" alike).
probe_hit() {
    local name=$1 status
    shift
    status=$(curl -s -o /dev/null -D "$RUNDIR/$name.probe-hit.headers" -w '%{http_code}' --max-time 5 "$@" "$ROW_URL" || true)
    [[ $status == 200 ]] &&
        tr -d '\r' <"$RUNDIR/$name.probe-hit.headers" | sed 's/^\([^:]*\):[[:space:]]*/\1: /' | grep -qixF "$ROW_HIT"
}

# Cache-hit rows: a round fails when the origin spent more than this much CPU per request under
# load (the origin alone costs ~7 µs a request, so this is more than 1 request in 14 or so
# reaching it; with every request a hit it is 0).
HIT_ORIGIN_MAX_US=0.5

# run_row NAME: start the row's servers, load them, record a table row, stop them.
ROW_HEADERS=()
ROW_HIT=""
run_row() {
    local name=$1 base=${1%@before} bin=$EDGEWAY_BIN
    local fn="row_${base//-/_}"
    declare -F "$fn" >/dev/null || { fail_row "$name" "no function $fn in bench/run.sh"; return 1; }
    if [[ $name != "$base" ]]; then
        [[ -x ${BEFORE_BIN:-} ]] || { fail_row "$name" "BEFORE_BIN is not an executable"; return 1; }
        bin=$BEFORE_BIN
    fi
    ROW_URL="" ROW_PIDS="" ROW_DESC="" ROW_STARTED=() ROW_HEADERS=() ROW_HIT=""
    log "── $name"
    if ! EDGEWAY_BIN=$bin "$fn" || [[ -z $ROW_URL || -z $ROW_PIDS ]]; then
        stop_pids "${ROW_STARTED[@]}"
        fail_row "$name" "did not start (see $RUNDIR/$base.err)"
        return 1
    fi
    [[ $name == "$base" ]] || ROW_DESC="$ROW_DESC; with BEFORE_BIN ($bin)"
    local status h
    local headers=()
    for h in "${ROW_HEADERS[@]}"; do headers+=(-H "$h"); done
    rm -f "$RUNDIR/$name.probe"
    status=$(curl -sS -o "$RUNDIR/$name.probe" -w '%{http_code}' --max-time 5 "${headers[@]}" "$ROW_URL" 2>"$RUNDIR/$name.probe.err" || true)
    if [[ $status != 200 ]]; then
        log "GET $ROW_URL answered '$status': $(head -c 300 "$RUNDIR/$name.probe" 2>/dev/null) $(head -c 300 "$RUNDIR/$name.probe.err" 2>/dev/null)"
        stop_pids "${ROW_STARTED[@]}"
        fail_row "$name" "GET $ROW_URL answered $status"
        return 1
    fi
    # A cache-hit row: the probe above filled the cache, so the next response must be a hit.
    if [[ -n $ROW_HIT ]] && ! probe_hit "$name" "${headers[@]}"; then
        log "second GET $ROW_URL was not a 200 with '$ROW_HIT'; its head:"
        sed 's/^/    /' "$RUNDIR/$name.probe-hit.headers" >&2 || true
        stop_pids "${ROW_STARTED[@]}"
        fail_row "$name" "the second GET was not a cache hit ($ROW_HIT)"
        return 1
    fi

    if ((WARMUP > 0)); then
        wrk_run "$WARMUP" "$ROW_URL" "$RUNDIR/$name.$ROUND.warmup.txt" ||
            log "warm-up wrk exited non-zero (see $RUNDIR/$name.$ROUND.warmup.txt)"
    fi

    local pids
    pids=$(descendants $ROW_PIDS)
    local threads_before threads_after split
    local origin_before cpu_before core_before pcore_before t0 t1 split_before split_after
    cpu_before=$(cpu_ticks $pids)
    split_before=$(cpu_split_ticks $pids)
    threads_before=$(thread_ticks $pids)
    origin_before=$(cpu_ticks "$ORIGIN_PID")
    core_before=$(core_ticks "$LOAD_CPU")
    pcore_before=$(core_ticks "$PROXY_CPU")
    t0=$(date +%s.%N)
    if ! wrk_run "$DURATION" "$ROW_URL" "$RUNDIR/$name.$ROUND.wrk.txt"; then
        cat "$RUNDIR/$name.$ROUND.wrk.txt" >&2 || true
        stop_pids "${ROW_STARTED[@]}"
        fail_row "$name" "wrk failed"
        return 1
    fi
    t1=$(date +%s.%N)
    local cpu_after origin_after core_after pcore_after
    cpu_after=$(cpu_ticks $pids)
    split_after=$(cpu_split_ticks $pids)
    threads_after=$(thread_ticks $pids)
    origin_after=$(cpu_ticks "$ORIGIN_PID")
    core_after=$(core_ticks "$LOAD_CPU")
    pcore_after=$(core_ticks "$PROXY_CPU")
    stop_pids "${ROW_STARTED[@]}"

    local w="$RUNDIR/$name.$ROUND.wrk.txt"
    sed 's/^/    /' "$w" >&2
    local requests rps p50 p99 errors non2xx
    requests=$(awk '/ requests in / {print $1}' "$w")
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$w")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$w")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$w")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$w")
    errors=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$w")
    errors=$(( ${errors:-0} + ${non2xx:-0} ))
    [[ -n $requests && $requests -gt 0 ]] || { fail_row "$name" "wrk completed no requests"; return 1; }
    local origin_us
    origin_us=$(awk -v t=$((origin_after - origin_before)) -v tck="$CLK_TCK" -v req="$requests" \
        'BEGIN { printf "%.2f", t / tck * 1e6 / req }')
    if [[ -n $ROW_HIT ]] && awk -v u="$origin_us" -v max="$HIT_ORIGIN_MAX_US" 'BEGIN { exit !(u > max) }'; then
        fail_row "$name" "the origin used $origin_us µs/req under load: requests reached it, not all were cache hits"
        return 1
    fi

    local row
    row=$(awk -v req="$requests" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
        -v cpu=$((cpu_after - cpu_before)) -v ocpu=$((origin_after - origin_before)) \
        -v tck="$CLK_TCK" -v t0="$t0" -v t1="$t1" -v errors="$errors" \
        -v cb="$core_before" -v ca="$core_after" -v pb="$pcore_before" -v pa="$pcore_after" \
        -v sb="$split_before" -v sa="$split_after" '
        function busy(before, after,   b, a) {
            split(before, b, " "); split(after, a, " ")
            return (a[2] - b[2]) > 0 ? 100 * (a[1] - b[1]) / (a[2] - b[2]) : 0
        }
        BEGIN {
            split(sb, b, " "); split(sa, a, " ")
            printf "%.1f\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.1f\t%d\t%.1f\t%.1f\n",
                cpu / tck * 1e6 / req, rps, p50, p99, 100 * cpu / tck / (t1 - t0),
                busy(pb, pa), busy(cb, ca), ocpu / tck * 1e6 / req, errors,
                (a[1] - b[1]) / tck * 1e6 / req, (a[2] - b[2]) / tck * 1e6 / req }')
    # Where the proxy's CPU went, by thread (or process) name, as a share of the proxy's CPU
    # (only when there is more than one name).
    split=$(awk -v total=$((cpu_after - cpu_before)) '
        NR == FNR { before[$1] = $2; next }
        { n++; d = $2 - before[$1]; if (total > 0 && d > 0) { out = out sep sprintf("%s %.0f %%", $1, 100 * d / total); sep = ", " } }
        END { if (n > 1) print out }' \
        <(echo "$threads_before") <(echo "$threads_after" | sort -k2,2nr))
    MEASURED[$name]+="$row"$'\n'
    ROUND_CPU["$name $ROUND"]=${row%%$'\t'*}
    NOTE[$name]="$ROW_DESC${split:+; CPU by thread: $split}"
    log "$name (round $ROUND): $(table_row "$name" "$row" "")"
}

# ---------------------------------------------------------------------------------------------
# Setup: tools, build, scratch directory.

need_edgeway=0 need_plugins=0
for r in $ROWS; do
    [[ $r == edgeway* ]] && need_edgeway=1
    [[ $r == edgeway-authorizer* || $r == edgeway-function* ]] && need_plugins=1
done

ensure_tools() {
    local missing=() pkgs=()
    command -v wrk >/dev/null || { missing+=(wrk); pkgs+=(wrk); }
    [[ " $ROWS " == *" nginx"* ]] && ! command -v nginx >/dev/null && { missing+=(nginx); pkgs+=(nginx); }
    [[ " $ROWS " == *" haproxy"* ]] && ! command -v haproxy >/dev/null && { missing+=(haproxy); pkgs+=(haproxy); }
    for t in taskset curl getconf; do command -v "$t" >/dev/null || die "$t is required (Debian: util-linux, curl, libc-bin)"; done
    ((${#missing[@]})) || return 0
    [[ ${NO_INSTALL:-0} != 1 ]] || die "missing: ${missing[*]} (NO_INSTALL=1 set)"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    log "installing ${pkgs[*]} with apt-get"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
        die "apt-get update failed"
    # The Debian packages try to start system services; there is no init here, and we want none.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 ||
        die "apt-get install ${pkgs[*]} failed"
    for t in "${missing[@]}"; do command -v "$t" >/dev/null || die "$t still missing after apt-get install"; done
}

ensure_tools

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ORIGIN_BIN="$TARGET_DIR/release/edgeway-bench-origin"
EDGEWAY_BIN="$TARGET_DIR/release/edgeway"
if [[ ${NO_BUILD:-0} != 1 ]]; then
    packages=(-p edgeway-bench-origin)
    ((need_edgeway)) && packages=(-p edgeway "${packages[@]}")
    log "cargo build --release ${packages[*]}"
    (cd "$ROOT" && timeout "$BUILD_TIMEOUT" cargo build --release "${packages[@]}") ||
        die "cargo build --release ${packages[*]} failed"
fi
[[ -x $ORIGIN_BIN ]] || die "$ORIGIN_BIN not built"
# The plugin rows' configs load components from $ROOT/target/plugins (plugins.dir).
PLUGIN_DIR="$ROOT/target/plugins"
BENCH_PLUGINS=(token_authorizer echo_function lambda_echo)
plugins_missing() {
    local p
    for p in "${BENCH_PLUGINS[@]}"; do [[ -f $PLUGIN_DIR/$p.wasm ]] || return 0; done
    return 1
}
if ((need_plugins)) && plugins_missing; then
    [[ ${NO_BUILD:-0} != 1 ]] || die "a component of ${BENCH_PLUGINS[*]} is missing from $PLUGIN_DIR (NO_BUILD=1 set; run scripts/build-plugins.sh)"
    log "scripts/build-plugins.sh (a component of ${BENCH_PLUGINS[*]} is missing)"
    EDGEWAY_PLUGIN_OUT="$PLUGIN_DIR" EDGEWAY_PLUGINS=rust timeout "$BUILD_TIMEOUT" "$ROOT/scripts/build-plugins.sh" >&2 ||
        die "scripts/build-plugins.sh failed"
    ! plugins_missing || die "scripts/build-plugins.sh did not build ${BENCH_PLUGINS[*]}"
fi
((need_edgeway == 0)) || [[ -x $EDGEWAY_BIN ]] || die "$EDGEWAY_BIN not built"

ncpu=$(nproc --all)
((PROXY_CPU < ncpu && LOAD_CPU < ncpu)) || die "PROXY_CPU=$PROXY_CPU / LOAD_CPU=$LOAD_CPU: this machine has $ncpu core(s)"
((PROXY_CPU != LOAD_CPU)) || log "warning: PROXY_CPU and LOAD_CPU are the same core"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/edgeway-bench.XXXXXX")
chmod 755 "$RUNDIR"  # nginx's worker may run as another user
log "scratch directory: $RUNDIR"

start_origin

for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
    ((REPEAT == 1)) || log "════ round $ROUND of $REPEAT"
    for r in $ROWS; do
        run_row "$r" || true
    done
done

# ---------------------------------------------------------------------------------------------
# Report.

table() {
    local rounds=""
    ((REPEAT == 1)) || rounds="; each row the median of $REPEAT rounds by CPU µs/req (min–max in brackets), but p99: the median of the rounds' own p99s (min–max), since one round's p99 is one stall of the machine's"
    echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency (after ${WARMUP}s warm-up); proxy on core $PROXY_CPU, wrk + origin on core $LOAD_CPU; $(nproc --all) cores, $(uname -r)$rounds"
    echo
    echo "| row | req/s | p50 ms | p99 ms | CPU µs/req | user µs/req | sys µs/req | proxy CPU % | proxy core busy % | load core busy % | origin µs/req | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local r sorted n range p99s p99
    for r in $ROWS; do
        if [[ -z ${MEASURED[$r]:-} ]]; then
            echo "| $r | FAILED: ${FAILURE[$r]:-not run} | | | | | | | | | | |"
            continue
        fi
        sorted=$(printf '%s' "${MEASURED[$r]}" | sort -t$'\t' -k1,1n)
        n=$(wc -l <<<"$sorted")
        range=""
        ((n == 1)) || range=" ($(head -n 1 <<<"$sorted" | cut -f1)–$(tail -n 1 <<<"$sorted" | cut -f1))"
        p99s=$(cut -f4 <<<"$sorted" | sort -n)
        p99=$(sed -n "$(((n + 1) / 2))p" <<<"$p99s")
        ((n == 1)) || p99+=" ($(head -n 1 <<<"$p99s")–$(tail -n 1 <<<"$p99s"))"
        table_row "$r" "$(sed -n "$(((n + 1) / 2))p" <<<"$sorted")" "$range" "$p99"
    done
    echo
    for r in $ROWS; do
        [[ -z ${NOTE[$r]:-} ]] || echo "- **$r**: ${NOTE[$r]}"
        [[ -z ${FAILURE[$r]:-} || -z ${MEASURED[$r]:-} ]] || echo "- **$r**: a round failed: ${FAILURE[$r]}"
    done
    ratios
}

# ratios: for each RATIOS pair "ROW:BASELINE" whose rows both ran, ROW's CPU µs/req over
# BASELINE's in the same round; the median over the rounds, min–max in brackets.
ratios() {
    local pair r base i list out=""
    for pair in $RATIOS; do
        r=${pair%%:*} base=${pair#*:}
        list=""
        for ((i = 1; i <= REPEAT; i++)); do
            [[ -n ${ROUND_CPU["$r $i"]:-} && -n ${ROUND_CPU["$base $i"]:-} ]] || continue
            list+="$(awk -v a="${ROUND_CPU["$r $i"]}" -v b="${ROUND_CPU["$base $i"]}" 'BEGIN { if (b > 0) printf "%.3f", a / b }')"$'\n'
        done
        [[ -n $list ]] || continue
        out+=$(sort -n <<<"${list%$'\n'}" | awk -v r="$r" -v base="$base" '
            { v[NR] = $1 }
            END { printf "- **%s / %s**: %.2f×", r, base, v[int((NR + 1) / 2)]
                  if (NR > 1) printf " (%.2f–%.2f)", v[1], v[NR]
                  printf "\n" }')$'\n'
    done
    [[ -n $out ]] || return 0
    echo
    echo "CPU µs/req of one row over another's in the same round (median over rounds, min–max in brackets):"
    echo
    printf '%s' "$out"
}

echo
table
[[ -z ${RESULTS:-} ]] || table >"$RESULTS"
exit "$FAILED"
