#!/usr/bin/env bash
# TLS handshake cost: full and resumed (session tickets) TLS 1.3 handshakes per second and the
# proxy's CPU µs per handshake, Edgeway beside nginx, with an ECDSA P-256 and an RSA 2048
# certificate. Each proxy is pinned to core PROXY_CPU; the client (bench/h3's `handshakes`:
# connect, handshake, close, in CONCURRENCY loops) runs on core LOAD_CPU. Loopback only.
#
#   bench/tls.sh
#   REPEAT=3 DURATION=5 bench/tls.sh
#
# Environment (defaults in brackets):
#   DURATION      seconds per row [5]
#   CONCURRENCY   handshake loops [16]
#   REPEAT        rounds; each row reports its median round by CPU µs/handshake [1]
#   NO_BUILD=1    use the release binaries as they are
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-16}
REPEAT=${REPEAT:-1}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BIN=$ROOT/target/release
TICKS=$(getconf CLK_TCK)

log() { printf '[tls-bench] %s\n' "$*" >&2; }
die() { printf '[tls-bench] error: %s\n' "$*" >&2; exit 1; }
for v in DURATION CONCURRENCY REPEAT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
if [[ ${NO_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --locked -p edgeway -p edgeway-bench-h3) >&2
fi
command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx)"
command -v openssl >/dev/null || die "openssl is not installed"

source "$BENCH/lib.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -keyout "$RUNDIR/ecdsa.key" -out "$RUNDIR/ecdsa.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -keyout "$RUNDIR/rsa.key" -out "$RUNDIR/rsa.pem" 2>/dev/null

# proxy_up PROXY KEY: sets ROW_PID and ROW_ADDR.
proxy_up() {
    case $1 in
        edgeway)
            cat >"$RUNDIR/edgeway.yaml" <<YAML
listen:
  - addr: 127.0.0.1:0
    tls:
      certs:
        - { cert: $RUNDIR/$2.pem, key: $RUNDIR/$2.key }
origin: http://127.0.0.1:9
workers: 1
apis:
  - name: bench
    stages: { bench: {} }
    routes:
      - route: GET /hello
        integration: { mock: { status: 200, body: hello } }
YAML
            start edgeway "$PROXY_CPU" "$BIN/edgeway" serve --config "$RUNDIR/edgeway.yaml" --no-watch
            ROW_PID=$PID
            ROW_ADDR=$(wait_for "$RUNDIR/edgeway.err" 's/.*"message":"listening".*"name":"listen\[0\]".*"addr":"\([^"]*\)".*/\1/p; s/.*"addr":"\([^"]*\)".*"message":"listening".*"name":"listen\[0\]".*/\1/p')
            ;;
        nginx)
            local port
            port=$(free_port)
            mkdir -p "$RUNDIR/nginx-tmp"
            cat >"$RUNDIR/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $RUNDIR/nginx.pid;
error_log $RUNDIR/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $RUNDIR/nginx-tmp;
    proxy_temp_path $RUNDIR/nginx-tmp;
    fastcgi_temp_path $RUNDIR/nginx-tmp;
    uwsgi_temp_path $RUNDIR/nginx-tmp;
    scgi_temp_path $RUNDIR/nginx-tmp;
    ssl_protocols TLSv1.3;
    ssl_session_tickets on;
    ssl_session_cache shared:SSL:10m;
    server {
        listen 127.0.0.1:$port ssl http2;
        ssl_certificate $RUNDIR/$2.pem;
        ssl_certificate_key $RUNDIR/$2.key;
        location / { return 200 hello; }
    }
}
CONF
            start nginx "$PROXY_CPU" nginx -p "$RUNDIR" -c "$RUNDIR/nginx.conf"
            ROW_PID=$PID
            sleep 0.5
            ROW_ADDR=127.0.0.1:$port
            ;;
    esac
}

ROWS=()
declare -A RESULT=()
for ((round = 1; round <= REPEAT; round++)); do
    for key in ecdsa rsa; do
        for proxy in edgeway nginx; do
            proxy_up "$proxy" "$key"
            for kind in full resumed; do
                row="$proxy $key $kind"
                ((round == 1)) && ROWS+=("$row")
                taskset -c "$LOAD_CPU" "$BIN/edgeway-bench-h3" handshakes "$ROW_ADDR" bench.test "$kind" "$CONCURRENCY" 1 >/dev/null ||
                    die "$row: the warm-up failed"
                before=$(cpu_ticks "$ROW_PID")
                line=$(taskset -c "$LOAD_CPU" "$BIN/edgeway-bench-h3" handshakes "$ROW_ADDR" bench.test "$kind" "$CONCURRENCY" "$DURATION") ||
                    die "$row: the load failed"
                after=$(cpu_ticks "$ROW_PID")
                declare handshakes=0 per_s=0 p50_us=0 p99_us=0 resumed=0 errors=0
                for kv in $line; do declare "${kv%%=*}=${kv#*=}"; done
                ((errors == 0)) || die "$row: $errors handshakes failed ($line)"
                cpu_us=$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$handshakes" 'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }')
                resumed_pct=$(awk -v r="$resumed" -v n="$handshakes" 'BEGIN { printf "%.0f", n ? 100 * r / n : 0 }')
                RESULT[$row]+="$cpu_us $per_s $p50_us $p99_us $resumed_pct;"
                log "round $round, $row: $line, proxy CPU µs/handshake $cpu_us"
            done
            stop "$ROW_PID"
        done
    done
done

echo
echo "TLS 1.3 handshakes: $CONCURRENCY loops of connect, handshake, close; ${DURATION} s per row, median of $REPEAT round(s) by CPU (p99: the median of the rounds' p99s, min–max) µs/handshake."
echo
echo "| proxy | key | handshake | handshakes/s | p50 µs | p99 µs | resumed % | proxy CPU µs/handshake |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
    median=$(echo "${RESULT[$row]}" | tr ';' '\n' | sed '/^$/d' | sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }')
    read -r cpu per_s p50 p99 pct <<<"$median"
    # p99: the median of the rounds' own p99s, with their range (one round's p99 is often one
    # stall of the machine's, landing on whichever row was running).
    p99s=$(echo "${RESULT[$row]}" | tr ';' '\n' | sed '/^$/d' | awk '{ print $4 }' | sort -n)
    p99=$(echo "$p99s" | awk '{ a[NR] = $0 } END { m = a[int((NR + 1) / 2)]; printf "%s (%s–%s)", m, a[1], a[NR] }')
    read -r proxy key kind <<<"$row"
    echo "| $proxy | $key | $kind | $per_s | $p50 | $p99 | $pct | $cpu |"
done
