# The helpers the load scripts (ws.sh, h3.sh, tls.sh) share: a scratch directory cleaned up
# on exit with every process started through `start`, and the readings they take.
# Sourced after the script defines `die`.

RUNDIR=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$RUNDIR"
}
trap cleanup EXIT

# start NAME CPU CMD...: CMD pinned to CPU, output in $RUNDIR/NAME.{out,err}; sets PID.
start() {
    local name=$1 cpu=$2
    shift 2
    # Emptied here, not by the background shell: a caller reading them at once must never see
    # the last round's.
    : >"$RUNDIR/$name.out"
    : >"$RUNDIR/$name.err"
    taskset -c "$cpu" "$@" >>"$RUNDIR/$name.out" 2>>"$RUNDIR/$name.err" </dev/null &
    PID=$!
    PIDS+=("$PID")
}

stop() { pkill -TERM -P "$1" 2>/dev/null || true; kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# wait_for FILE SED: the first match of the sed expression in FILE, within 60 s.
wait_for() {
    local value="" i
    for ((i = 0; i < 1200; i++)); do
        value=$(sed -n "$2" "$1" 2>/dev/null | head -n 1)
        [[ -n $value ]] && { echo "$value"; return 0; }
        sleep 0.05
    done
    die "nothing matched '$2' in $1 within 60 s: $(tail -n 5 "$1")"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# cpu_ticks PID: user+system ticks of PID and its children (nginx's master and worker).
cpu_ticks() {
    local total=0 p stat rest
    local -a f
    for p in "$1" $(pgrep -P "$1" || true); do
        { read -r stat <"/proc/$p/stat"; } 2>/dev/null || continue
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# rss_kib PID: resident KiB of PID and its children.
rss_kib() {
    local total=0 p kib
    for p in "$1" $(pgrep -P "$1" || true); do
        kib=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}
