#!/usr/bin/env bash
# Builds an AWS Lambda handler written in JavaScript into an Edgeway `lambda` component:
#
#   plugin-sdk/lambda/js/build.sh HANDLER.mjs OUT.wasm [EXPORT]
#
# HANDLER.mjs is an ES module exporting the handler (`export const handler = async (event,
# context) => ...`); EXPORT names it (default `handler`). The module is one file: bundle one
# that imports npm packages first (esbuild --bundle --format=esm). The adapter (adapter.js
# beside this script) is appended to it and the result is made into a component of world
# edgeway:plugin/lambda@0.1.0 with componentize-js, pinned in package-lock.json here.
#
# Needs node (>= 18) and npm. Runs `npm ci` only when node_modules is missing or was installed
# from a different package-lock.json. Any failure exits non-zero.
set -euo pipefail

die() { echo "lambda/js/build.sh: $*" >&2; exit 1; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $0 HANDLER.mjs OUT.wasm [EXPORT]"
handler=$1
out=$2
name=${3:-handler}
[ -f "$handler" ] || die "$handler: no such file"
[[ $name =~ ^[A-Za-z_$][A-Za-z0-9_$]*$ ]] || die "$name is not a JavaScript name"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)

command -v node >/dev/null 2>&1 || die "node is not installed (need Node.js >= 18)"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]') || die "cannot run node"
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old (need >= 18)"

stamp=$here/node_modules/.edgeway-package-lock.json
if ! cmp -s "$here/package-lock.json" "$stamp"; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
    cp "$here/package-lock.json" "$stamp"
fi
cjs=$here/node_modules/.bin/componentize-js
[ -x "$cjs" ] || die "$cjs is missing after npm ci"

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One module: the handler's own code, then the adapter, which names the handler.
{
    cat "$handler"
    printf '\nconst __EDGEWAY_HANDLER__ = typeof %s === "undefined" ? undefined : %s;\n' "$name" "$name"
    printf 'const __EDGEWAY_HANDLER_NAME__ = %s;\n' "\"$name\""
    cat "$here/adapter.js"
} > "$work/lambda.js"

(cd "$work" && "$cjs" lambda.js \
    --wit "$root/wit" --world-name lambda \
    --disable http fetch-event \
    --out "$work/out.wasm") || die "componentize-js failed"
[ -s "$work/out.wasm" ] || die "componentize-js wrote no component"
mv -f "$work/out.wasm" "$out"
