#!/usr/bin/env bash
# Builds the Python Lambda examples with the SDK's adapter (plugin-sdk/lambda/python/build.sh):
#   OUT_DIR/py_lambda_echo.wasm        from echo.py
#   OUT_DIR/py_lambda_authorizer.wasm  from authorizer.py
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$here/../../plugin-sdk/lambda/python/build.sh
for name in echo authorizer; do
    bash "$build" "$here/$name.py" "$1/py_lambda_$name.wasm"
done
