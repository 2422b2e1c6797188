#!/usr/bin/env bash
# Builds the JavaScript token authorizer into OUT_DIR/js_authorizer.wasm, a component of
# world edgeway:plugin/authorizer@0.1.0 made by componentize-js (pinned in package-lock.json).
#
#   plugins/js-authorizer/build.sh OUT_DIR
#
# Needs node (>= 18) and npm. Runs `npm ci` only when node_modules is missing or was
# installed from a different package-lock.json. StarlingMonkey's `http` and `fetch-event`
# features are disabled, so the component imports no wasi:http: only WASI 0.2 cli, io,
# clocks, random (and filesystem types) plus edgeway:plugin imports. Any failure exits
# non-zero.
set -euo pipefail

die() { echo "js-authorizer/build.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"
out_dir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

command -v node >/dev/null 2>&1 || die "node is not installed (need Node.js >= 18)"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]') || die "cannot run node"
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old (need >= 18)"

# Install exactly what package-lock.json pins, unless node_modules already holds it.
stamp=$here/node_modules/.edgeway-package-lock.json
if ! cmp -s "$here/package-lock.json" "$stamp"; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
    cp "$here/package-lock.json" "$stamp"
fi
cjs=$here/node_modules/.bin/componentize-js
[ -x "$cjs" ] || die "$cjs is missing after npm ci"

mkdir -p "$out_dir"
out=$(cd "$out_dir" && pwd)/js_authorizer.wasm
tmp=$out.tmp.$$
trap 'rm -f "$tmp"' EXIT

(cd "$here" && "$cjs" authorizer.js \
    --wit "$root/wit" --world-name authorizer \
    --disable http fetch-event \
    --out "$tmp") || die "componentize-js failed"
[ -s "$tmp" ] || die "componentize-js wrote no component"
mv -f "$tmp" "$out"
