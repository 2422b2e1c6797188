#!/usr/bin/env bash
# Instructions per proxied request in Edgeway, counted by callgrind: a steady number for
# comparing two builds of the hot path, where CPU time on a shared machine wobbles by several
# percent. (Callgrind counts a `rep movsb` copy as a few instructions whatever its length, so
# large memory copies are undercounted; confirm such changes with bench/run.sh.)
#
#   bench/instructions.sh              # 3000 requests after a 500-request warm-up
#   REQUESTS=10000 bench/instructions.sh
#   BIN_DIR=/tmp/old CONFIG=bench/edgeway/cache.yaml bench/instructions.sh
#                                      # another build's edgeway and edgeway-bench-origin (not
#                                      # built here), and another config
#
# Needs valgrind and python3 (installed with apt-get when missing). Traffic stays on 127.0.0.1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQUESTS=${REQUESTS:-3000}
RUNDIR=$(mktemp -d /tmp/edgeway-instructions.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$RUNDIR"; }
trap cleanup EXIT

for tool in valgrind callgrind_control python3 curl; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind python3 curl >/dev/null; break; }
done
if [[ -n ${BIN_DIR:-} ]]; then
    TARGET=$BIN_DIR
else
    cargo build --release --quiet -p edgeway -p edgeway-bench-origin --manifest-path "$ROOT/Cargo.toml"
    TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ORIGIN_PORT=$(free_port)
PROXY_PORT=$(free_port)
"$TARGET/edgeway-bench-origin" --addr "127.0.0.1:$ORIGIN_PORT" >/dev/null 2>&1 &
PIDS+=($!)
sed "s|origin: http://127.0.0.1:9000|origin: http://127.0.0.1:$ORIGIN_PORT|; s|addr: 127.0.0.1:0|addr: 127.0.0.1:$PROXY_PORT|" \
    "${CONFIG:-$ROOT/bench/edgeway/proxy.yaml}" >"$RUNDIR/proxy.yaml"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$RUNDIR/callgrind.out" \
    "$TARGET/edgeway" serve --no-watch --config "$RUNDIR/proxy.yaml" >/dev/null 2>"$RUNDIR/valgrind.err" &
EDGEWAY=$!
PIDS+=($EDGEWAY)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/bench/hello" && break
    sleep 0.2
done

# Four keep-alive connections taking turns, like a small client pool.
cat >"$RUNDIR/load.py" <<'PY'
import http.client, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(4)]
for i in range(n):
    c = conns[i % 4]
    c.request("GET", "/bench/hello")
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
PY
python3 "$RUNDIR/load.py" 500 "$PROXY_PORT"
callgrind_control -i on "$EDGEWAY" >/dev/null
python3 "$RUNDIR/load.py" "$REQUESTS" "$PROXY_PORT"
callgrind_control -i off "$EDGEWAY" >/dev/null
callgrind_control -d "$EDGEWAY" >/dev/null
sleep 1
out=$(ls -S "$RUNDIR"/callgrind.out* | head -n 1)
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen {gsub(",", "", $1); print $1; seen = 1}')
echo "edgeway: $((total / REQUESTS)) instructions per proxied request ($REQUESTS requests)"
