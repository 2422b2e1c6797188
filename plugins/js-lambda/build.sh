#!/usr/bin/env bash
# Builds the JavaScript Lambda examples with the SDK's adapter (plugin-sdk/lambda/js/build.sh):
#   OUT_DIR/js_lambda_echo.wasm        from echo.mjs
#   OUT_DIR/js_lambda_authorizer.wasm  from authorizer.mjs
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$here/../../plugin-sdk/lambda/js/build.sh
for name in echo authorizer; do
    bash "$build" "$here/$name.mjs" "$1/js_lambda_$name.wasm"
done
