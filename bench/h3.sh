#!/usr/bin/env bash
# HTTP/3 load: requests/s, p50/p99 latency and the proxy's CPU µs per request for Edgeway
# serving the same proxied route over HTTP/3 (QUIC) and over HTTP/2 with TLS, with one client
# for both (bench/h3: quinn + h3, hyper + rustls), beside nginx over HTTP/2 with TLS (this
# machine's nginx has no HTTP/3). The proxy is pinned to core PROXY_CPU; the client and the
# bench origin share core LOAD_CPU. Loopback only.
#
#   bench/h3.sh
#   REPEAT=5 DURATION=10 bench/h3.sh
#   ROWS="edgeway-h3 edgeway-h2" bench/h3.sh
#
# Environment (defaults in brackets):
#   ROWS          [edgeway-h3 edgeway-h2 nginx-h2]
#   DURATION      seconds of load per row [5]
#   CONNECTIONS   client connections [8]
#   STREAMS       requests in flight on each connection [8]
#   REPEAT        rounds over the rows; each row reports its median round by CPU µs/request [1]
#   NO_BUILD=1    use the release binaries as they are
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
ROWS=${ROWS:-"edgeway-h3 edgeway-h2 nginx-h2"}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-8}
STREAMS=${STREAMS:-8}
REPEAT=${REPEAT:-1}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BIN=$ROOT/target/release
TICKS=$(getconf CLK_TCK)

log() { printf '[h3-bench] %s\n' "$*" >&2; }
die() { printf '[h3-bench] error: %s\n' "$*" >&2; exit 1; }
for v in DURATION CONNECTIONS STREAMS REPEAT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done

if [[ ${NO_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked -p edgeway -p edgeway-bench-origin -p edgeway-bench-h3) >&2
fi
command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx)"
command -v openssl >/dev/null || die "openssl is not installed"
command -v taskset >/dev/null || die "taskset is not installed (util-linux)"

source "$BENCH/lib.sh"

# A throwaway ECDSA P-256 certificate for bench.test (the client does not check it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
    -keyout "$RUNDIR/bench.key" -out "$RUNDIR/bench.pem" 2>/dev/null

start origin "$LOAD_CPU" "$BIN/edgeway-bench-origin" --addr 127.0.0.1:0
ORIGIN=$(wait_for "$RUNDIR/origin.out" 's/^listening on //p')

# proxy_up ROW: starts ROW's proxy; sets ROW_PID, ROW_ADDR and ROW_PROTOCOL.
proxy_up() {
    case $1 in
        edgeway-h3 | edgeway-h2)
            sed -e "s|^origin: .*|origin: http://$ORIGIN|" -e "s|bench.pem|$RUNDIR/bench.pem|; s|bench.key|$RUNDIR/bench.key|" \
                "$BENCH/h3-config/edgeway-h3.yaml" >"$RUNDIR/edgeway.yaml"
            start "$1" "$PROXY_CPU" "$BIN/edgeway" serve --config "$RUNDIR/edgeway.yaml" --no-watch
            ROW_PID=$PID
            ROW_ADDR=$(wait_for "$RUNDIR/$1.err" 's/.*"message":"listening".*"name":"listen\[0\]".*"addr":"\([^"]*\)".*/\1/p; s/.*"addr":"\([^"]*\)".*"message":"listening".*"name":"listen\[0\]".*/\1/p')
            ROW_PROTOCOL=${1#edgeway-}
            : >"$RUNDIR/access.log"
            ;;
        nginx-h2)
            local port
            port=$(free_port)
            mkdir -p "$RUNDIR/nginx-tmp"
            sed -e "s|@RUNDIR@|$RUNDIR|g" -e "s|@NAME@|nginx|g" -e "s|@ORIGIN@|$ORIGIN|" \
                -e "s|@ACCESS_LOG@|$RUNDIR/nginx-access.log bench|" \
                -e "s|listen @LISTEN@ backlog=4096;|listen 127.0.0.1:$port ssl http2 backlog=4096; ssl_certificate $RUNDIR/bench.pem; ssl_certificate_key $RUNDIR/bench.key;|" \
                "$BENCH/nginx/nginx.conf" >"$RUNDIR/nginx.conf"
            start "$1" "$PROXY_CPU" nginx -p "$RUNDIR" -c "$RUNDIR/nginx.conf" -e "$RUNDIR/nginx-error.log"
            ROW_PID=$PID
            sleep 0.5
            ROW_ADDR=127.0.0.1:$port
            ROW_PROTOCOL=h2
            ;;
        *) die "unknown row $1" ;;
    esac
}

load() { taskset -c "$LOAD_CPU" "$BIN/edgeway-bench-h3" "$ROW_PROTOCOL" "$ROW_ADDR" bench.test /bench/hello "$CONNECTIONS" "$STREAMS" "$1"; }

declare -A RESULT=()
for ((round = 1; round <= REPEAT; round++)); do
    for row in $ROWS; do
        proxy_up "$row"
        load 1 >/dev/null || die "$row: the warm-up failed"
        before=$(cpu_ticks "$ROW_PID")
        line=$(load "$DURATION") || die "$row: the load failed"
        after=$(cpu_ticks "$ROW_PID")
        stop "$ROW_PID"
        declare requests=0 per_s=0 p50_us=0 p99_us=0 errors=0
        for kv in $line; do declare "${kv%%=*}=${kv#*=}"; done
        ((errors == 0)) || die "$row: $errors requests failed ($line)"
        cpu_us=$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$requests" 'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }')
        RESULT[$row]+="$cpu_us $per_s $p50_us $p99_us;"
        log "round $round, $row: $line, proxy CPU µs/request $cpu_us"
    done
done

echo
echo "HTTP/3 and HTTP/2 over TLS: $CONNECTIONS connections × $STREAMS requests in flight, GET /bench/hello proxied to the bench origin, ${DURATION} s per row, median of $REPEAT round(s) by CPU (p99: the median of the rounds' p99s, min–max) µs/request."
echo
echo "| row | requests/s | p50 µs | p99 µs | proxy CPU µs/request |"
echo "|---|---:|---:|---:|---:|"
for row in $ROWS; do
    median=$(echo "${RESULT[$row]}" | tr ';' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }')
    read -r cpu per_s p50 p99 <<<"$median"
    # p99: the median of the rounds' own p99s, with their range (one round's p99 is often one
    # stall of the machine's, landing on whichever row was running).
    p99s=$(echo "${RESULT[$row]}" | tr ';' '\n' | sed '/^$/d' | awk '{ print $4 }' | sort -n)
    p99=$(echo "$p99s" | awk '{ a[NR] = $0 } END { m = a[int((NR + 1) / 2)]; printf "%s (%s–%s)", m, a[1], a[NR] }')
    echo "| $row | $per_s | $p50 | $p99 | $cpu |"
done
