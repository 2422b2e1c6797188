#!/usr/bin/env bash
# WebSocket load: messages per second, p50/p99 latency and the proxy's CPU µs per message for
# Edgeway's two-way routes, `mock` (an echo answered from config) and `http_proxy` (each message
# POSTed to the bench origin), beside nginx passing WebSockets through to an echo origin; then
# IDLE idle connections held open on Edgeway (and nginx), with the RSS each adds and the time
# to open them. Each proxy is pinned to core PROXY_CPU; the load client and the origins share
# core LOAD_CPU. Loopback only.
#
#   bench/ws.sh                              # load rows, then 10,000 idle connections
#   REPEAT=5 DURATION=10 bench/ws.sh
#   ROWS="edgeway-ws-mock nginx-ws" IDLE=0 bench/ws.sh
#
# Environment (defaults in brackets):
#   ROWS          [edgeway-ws-mock edgeway-ws-proxy nginx-ws origin-ws]
#   DURATION      seconds of load per row [5]
#   CONNECTIONS   clients, each sending a message and waiting for its reply [64]
#   BYTES         message size [100]
#   REPEAT        rounds over the rows; each row reports its median round by CPU µs/message [1]
#   IDLE          idle connections for the memory row; 0 skips it [10000]
#   NO_BUILD=1    use the release binaries as they are
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
ROWS=${ROWS:-"edgeway-ws-mock edgeway-ws-proxy nginx-ws origin-ws"}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
BYTES=${BYTES:-100}
REPEAT=${REPEAT:-1}
IDLE=${IDLE:-10000}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BIN=$ROOT/target/release
TICKS=$(getconf CLK_TCK)

log() { printf '[ws-bench] %s\n' "$*" >&2; }
die() { printf '[ws-bench] error: %s\n' "$*" >&2; exit 1; }
for v in DURATION CONNECTIONS BYTES REPEAT IDLE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done

if [[ ${NO_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked -p edgeway -p edgeway-bench-origin -p edgeway-bench-ws) >&2
fi
command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx)"
command -v taskset >/dev/null || die "taskset is not installed (util-linux)"

source "$BENCH/lib.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# A file-descriptor limit for this script's children that fits IDLE connections.
(( $(ulimit -n) > IDLE + 1000 )) || die "ulimit -n is $(ulimit -n); IDLE=$IDLE needs more"


# The origins: the bench HTTP origin (for the http_proxy route) and the WebSocket echo origin.
start origin "$LOAD_CPU" "$BIN/edgeway-bench-origin" --addr 127.0.0.1:0
HTTP_ORIGIN=$(wait_for "$RUNDIR/origin.out" 's/^listening on //p')
ECHO_PORT=$(free_port)
start echo "$LOAD_CPU" "$BIN/edgeway-bench-ws" echo "127.0.0.1:$ECHO_PORT"
ECHO_ADDR=127.0.0.1:$ECHO_PORT

# proxy_up ROW: starts ROW's proxy; sets ROW_PID, ROW_URL and the message's action.
proxy_up() {
    ACTION=echo
    case $1 in
        edgeway-ws-mock | edgeway-ws-proxy | edgeway-idle)
            sed "s|^origin: .*|origin: http://$HTTP_ORIGIN|" "$BENCH/ws-config/edgeway-ws.yaml" >"$RUNDIR/edgeway.yaml"
            [[ $1 == edgeway-ws-proxy ]] && ACTION=proxy
            start "$1" "$PROXY_CPU" "$BIN/edgeway" serve --config "$RUNDIR/edgeway.yaml" --no-watch
            ROW_PID=$PID
            local addr
            addr=$(wait_for "$RUNDIR/$1.err" 's/.*"message":"listening".*"name":"listen\[0\]".*"addr":"\([^"]*\)".*/\1/p; s/.*"addr":"\([^"]*\)".*"message":"listening".*"name":"listen\[0\]".*/\1/p')
            ROW_URL="ws://$addr/bench"
            ;;
        nginx-ws | nginx-idle)
            local port
            port=$(free_port)
            mkdir -p "$RUNDIR/nginx-tmp"
            sed -e "s|@RUNDIR@|$RUNDIR|g" -e "s|@LISTEN@|127.0.0.1:$port|" -e "s|@ORIGIN@|$ECHO_ADDR|" \
                "$BENCH/ws-config/nginx-ws.conf" >"$RUNDIR/nginx-ws.conf"
            start "$1" "$PROXY_CPU" nginx -p "$RUNDIR" -c "$RUNDIR/nginx-ws.conf" -e "$RUNDIR/nginx-ws-error.log"
            ROW_PID=$PID
            sleep 0.5
            ROW_URL="ws://127.0.0.1:$port/"
            ;;
        origin-ws)
            ROW_PID=""
            ROW_URL="ws://$ECHO_ADDR/"
            ;;
        *) die "unknown row $1" ;;
    esac
}

declare -A RESULT=()
for ((round = 1; round <= REPEAT; round++)); do
    for row in $ROWS; do
        proxy_up "$row"
        # Connections open before the measured window; 1 s of unmeasured load first.
        taskset -c "$LOAD_CPU" "$BIN/edgeway-bench-ws" load "$ROW_URL" "$CONNECTIONS" 1 "$BYTES" "$ACTION" >/dev/null ||
            die "$row: the warm-up failed"
        before=0 after=0
        [[ -n $ROW_PID ]] && before=$(cpu_ticks "$ROW_PID")
        line=$(taskset -c "$LOAD_CPU" "$BIN/edgeway-bench-ws" load "$ROW_URL" "$CONNECTIONS" "$DURATION" "$BYTES" "$ACTION") ||
            die "$row: the load failed"
        [[ -n $ROW_PID ]] && after=$(cpu_ticks "$ROW_PID") && stop "$ROW_PID"
        declare messages=0 per_s=0 p50_us=0 p99_us=0 errors=0
        for kv in $line; do declare "${kv%%=*}=${kv#*=}"; done
        ((errors == 0)) || die "$row: $errors clients failed"
        cpu_us=$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$messages" 'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }')
        RESULT[$row]+="$cpu_us $per_s $p50_us $p99_us;"
        log "round $round, $row: $line, proxy CPU µs/message $cpu_us"
    done
done

echo
echo "WebSocket load: $CONNECTIONS clients, each sending a ${BYTES}-byte text message and waiting for the reply, ${DURATION} s per row, median of $REPEAT round(s) by CPU µs/message."
echo
echo "| row | messages/s | p50 µs | p99 µs | proxy CPU µs/message |"
echo "|---|---:|---:|---:|---:|"
for row in $ROWS; do
    # The median round by CPU µs/message (the origin row's CPU is not measured: it has no proxy).
    median=$(echo "${RESULT[$row]}" | tr ';' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }')
    read -r cpu per_s p50 p99 <<<"$median"
    [[ $row == origin-ws ]] && cpu="—"
    echo "| $row | $per_s | $p50 | $p99 | $cpu |"
done

((IDLE > 0)) || exit 0
echo
echo "Idle connections: $IDLE opened one after another, then held; RSS is the proxy's (all its processes)."
echo
echo "| proxy | RSS before (KiB) | RSS with $IDLE open (KiB) | per connection (KiB) | time to open all (s) |"
echo "|---|---:|---:|---:|---:|"
for row in edgeway-idle nginx-idle; do
    # nginx holds two descriptors per connection (client and origin), the origin one more.
    if [[ $row == nginx-idle ]] && (( 2 * IDLE + 1000 > $(ulimit -n) )); then
        echo "| nginx | — | — | — | needs ulimit -n above $((2 * IDLE + 1000)) (have $(ulimit -n)) |"
        continue
    fi
    proxy_up "$row"
    sleep 0.5
    before=$(rss_kib "$ROW_PID")
    start idle "$LOAD_CPU" "$BIN/edgeway-bench-ws" idle "$ROW_URL" "$IDLE"
    idle_pid=$PID
    opened=$(wait_for "$RUNDIR/idle.out" 's/^opened=[0-9]* seconds=\([0-9.]*\)$/\1/p')
    sleep 1
    after=$(rss_kib "$ROW_PID")
    stop "$idle_pid"
    stop "$ROW_PID"
    per=$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { printf "%.1f", (a - b) / n }')
    echo "| ${row%-idle} | $before | $after | $per | $opened |"
done
