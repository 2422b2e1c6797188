#!/usr/bin/env bash
# Slowloris: N connections that send a partial request head and trickle a header line every
# 5 s, held open against Edgeway and nginx in turn (each pinned to core PROXY_CPU, one worker,
# a mock answer, the head timeout raised to 120 s so the connections stay); the resident
# memory each connection costs, and whether a normal client (a GET every 100 ms) is still
# served and how fast. Loopback only; bench/slowloris.py is the client.
#
#   bench/slowloris.sh
#   N=10000 HOLD=10 bench/slowloris.sh
#
# Environment (defaults in brackets): N [5000], HOLD seconds held before measuring [5],
# NO_BUILD=1 to use the release binary as it is.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
N=${N:-5000}
HOLD=${HOLD:-5}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BIN=$ROOT/target/release

die() { printf '[slowloris] error: %s\n' "$*" >&2; exit 1; }
[[ $N =~ ^[0-9]+$ ]] || die "N must be a whole number"
if [[ ${NO_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked -p edgeway) >&2
fi
command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) > N + 1000 )) || die "ulimit -n is $(ulimit -n); N=$N needs more"

RUNDIR=$(mktemp -d)
PID=""
cleanup() {
    [[ -n $PID ]] && { pkill -TERM -P "$PID" 2>/dev/null || true; kill -TERM "$PID" 2>/dev/null || true; }
    wait 2>/dev/null || true
    rm -rf "$RUNDIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "| server | connections held | RSS before (KiB) | RSS held (KiB) | per connection (KiB) | normal GET p50 ms | normal GET max ms | normal GETs failed |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for server in edgeway nginx; do
    port=$(free_port)
    case $server in
        edgeway)
            cat >"$RUNDIR/edgeway.yaml" <<YAML
listen:
  - addr: 127.0.0.1:$port
origin: http://127.0.0.1:9
workers: 1
limits: { header_read_timeout_ms: 120000 }
apis:
  - name: bench
    stages: { bench: {} }
    routes:
      - route: GET /hello
        integration: { mock: { status: 200, body: hello } }
YAML
            taskset -c "$PROXY_CPU" "$BIN/edgeway" serve --config "$RUNDIR/edgeway.yaml" --no-watch >/dev/null 2>"$RUNDIR/edgeway.err" &
            PID=$!
            ;;
        nginx)
            mkdir -p "$RUNDIR/tmp"
            cat >"$RUNDIR/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile $((N + 2000));
daemon off;
pid $RUNDIR/nginx.pid;
error_log $RUNDIR/nginx-error.log warn;
events { worker_connections $((N + 1000)); }
http {
    access_log off;
    client_body_temp_path $RUNDIR/tmp;
    proxy_temp_path $RUNDIR/tmp;
    fastcgi_temp_path $RUNDIR/tmp;
    uwsgi_temp_path $RUNDIR/tmp;
    scgi_temp_path $RUNDIR/tmp;
    client_header_timeout 120s;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location /bench/hello { return 200 hello; }
    }
}
CONF
            taskset -c "$PROXY_CPU" nginx -p "$RUNDIR" -c "$RUNDIR/nginx.conf" &
            PID=$!
            ;;
    esac
    sleep 1
    pids=$(echo "$PID" $(pgrep -P "$PID" || true) | tr ' ' ',')
    line=$(taskset -c "$LOAD_CPU" python3 "$BENCH/slowloris.py" 127.0.0.1 "$port" "$N" "$HOLD" 5 "$pids")
    pkill -TERM -P "$PID" 2>/dev/null || true
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
    declare open=0 rss_before_kib=0 rss_held_kib=0 per_conn_kib=0 normal_p50_ms=0 normal_max_ms=0 normal_failed=0
    for kv in $line; do declare "${kv%%=*}=${kv#*=}"; done
    echo "| $server | $open | $rss_before_kib | $rss_held_kib | $per_conn_kib | $normal_p50_ms | $normal_max_ms | $normal_failed |"
done
