#!/usr/bin/env bash
# Edgeway with a large definition: APIS × ROUTES routes (default 200 × 50 = 10,000, and
# 1,000 × 50 = 50,000), each API with one stage. Prints, per size: the YAML's size, the time
# `edgeway validate` takes, the serving node's RSS after startup and per route, and the time a
# deploy of one API takes to serve (the admin call returns once the new generation serves).
#
#   bench/scale.sh                  # 10,000 and 50,000 routes
#   SIZES="200 1000" ROUTES=50 bench/scale.sh
#
# Needs the release binary (cargo build --release -p edgeway) and curl. Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${EDGEWAY_BIN:-$ROOT/target/release/edgeway}
SIZES=${SIZES:-"200 1000"}
ROUTES=${ROUTES:-50}
DIR=$(mktemp -d)
PID=""
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
export SCALE_ADMIN_TOKEN=scale-admin-token

# config APIS: a config with APIS APIs of $ROUTES routes.
config() {
    local apis=$1 a r
    {
        printf 'listen: [{ addr: 127.0.0.1:0 }]\nadmin: { addr: 127.0.0.1:0, token_env: SCALE_ADMIN_TOKEN }\n'
        printf 'origin: http://127.0.0.1:9\nstate: { path: %s/state-%s }\napis:\n' "$DIR" "$apis"
        for ((a = 0; a < apis; a++)); do
            printf '  - name: api%d\n    stages: { prod: {} }\n    routes:\n' "$a"
            for ((r = 0; r < ROUTES; r++)); do
                printf '      - route: GET /a%d/r%d/{id}\n        integration: { http_proxy: "${origin}/r%d/{id}" }\n' "$a" "$r" "$r"
            done
        done
    } >"$DIR/edgeway-$apis.yaml"
}

printf '| routes | YAML | validate (s) | RSS after start (MiB) | RSS per route (KiB) | deploy one API, to serving (s) |\n|---|---|---|---|---|---|\n'
for apis in $SIZES; do
    config "$apis"
    file="$DIR/edgeway-$apis.yaml"
    bytes=$(stat -c %s "$file")
    start=$(date +%s.%N)
    "$BIN" validate --config "$file" >/dev/null
    validated=$(echo "$(date +%s.%N) - $start" | bc)
    "$BIN" serve --config "$file" --no-watch >/dev/null 2>"$DIR/serve-$apis.err" &
    PID=$!
    admin=""
    for ((i = 0; i < 600 && ${#admin} == 0; i++)); do
        sleep 0.1
        admin=$(grep '"name":"admin"' "$DIR/serve-$apis.err" | sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' | head -n 1 || true)
    done
    [[ -n $admin ]] || { echo "the node did not start: $(tail -n 5 "$DIR/serve-$apis.err")" >&2; exit 1; }
    sleep 1
    rss_kib=$(awk '/VmRSS/ { print $2 }' "/proc/$PID/status")
    deploy=$(curl -fsS -o /dev/null -w '%{time_total}' -X POST "http://$admin/admin/apis/api0/deployments" \
        -H "authorization: Bearer $SCALE_ADMIN_TOKEN" -H 'content-type: application/json' -d '{"stage":"prod"}')
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
    routes=$((apis * ROUTES))
    printf '| %d (%d × %d) | %.1f MB | %.2f | %.0f | %.1f | %.2f |\n' "$routes" "$apis" "$ROUTES" \
        "$(echo "$bytes / 1000000" | bc -l)" "$validated" "$(echo "$rss_kib / 1024" | bc -l)" \
        "$(echo "$rss_kib / $routes" | bc -l)" "$deploy"
done
