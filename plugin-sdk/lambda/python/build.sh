#!/usr/bin/env bash
# Builds an AWS Lambda handler written in Python into an Edgeway `lambda` component:
#
#   plugin-sdk/lambda/python/build.sh HANDLER.py OUT.wasm [FUNCTION]
#
# HANDLER.py defines the handler (`def handler(event, context): ...`); FUNCTION names it
# (default `handler`). The file is the module; other pure-Python modules beside it are built
# in too. The adapter (_edgeway_app.py beside this script) exports the `lambda` world
# (edgeway:plugin/lambda@0.1.0); componentize-py, pinned in requirements.txt here, makes the
# component.
#
# Needs python3 (>= 3.10) with the venv module. componentize-py is installed into the venv at
# ${EDGEWAY_PY_VENV:-<repo>/target/py-venv}, created when missing; pip runs only when the venv
# was not set up from this requirements.txt. Any failure exits non-zero.
set -euo pipefail

die() { echo "lambda/python/build.sh: $*" >&2; exit 1; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $0 HANDLER.py OUT.wasm [FUNCTION]"
handler=$1
out=$2
name=${3:-handler}
[ -f "$handler" ] || die "$handler: no such file"
[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "$name is not a Python name"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
venv=${EDGEWAY_PY_VENV:-$root/target/py-venv}
python=${PYTHON:-python3}

command -v "$python" >/dev/null 2>&1 || die "$python is not installed (need Python >= 3.10)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$("$python" --version 2>&1) is too old (need >= 3.10)"

stamp=$venv/.edgeway-requirements.txt
if [ ! -x "$venv/bin/python" ]; then
    rm -f "$stamp"
    "$python" -m venv "$venv" || die "cannot create a venv at $venv (is python3-venv installed?)"
fi
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-virtualenv -r "$here/requirements.txt" || die "pip install failed"
    cp "$here/requirements.txt" "$stamp"
fi
cpy=$venv/bin/componentize-py
[ -x "$cpy" ] || die "$cpy is missing after pip install"

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
# The handler's directory (its other modules), then the handler as `lambda_function` and the
# adapter as `_edgeway_app`, built from a copy so componentize-py's bytecode cache stays out of the tree.
cp -R "$(dirname "$handler")"/. "$src/"
cp "$handler" "$src/lambda_function.py"
printf 'NAME = "%s"\n' "$name" > "$src/_edgeway_handler.py"
cp "$here/_edgeway_app.py" "$src/_edgeway_app.py"

(cd "$src" && env -u VIRTUAL_ENV "$cpy" --quiet -d "$root/wit" -w lambda \
    componentize _edgeway_app -p "$src" -o "$src/out.wasm") || die "componentize-py failed"
[ -s "$src/out.wasm" ] || die "componentize-py wrote no component"
mv -f "$src/out.wasm" "$out"
