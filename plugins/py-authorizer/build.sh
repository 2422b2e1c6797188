#!/usr/bin/env bash
# Builds the Python token authorizer into OUT_DIR/py_authorizer.wasm, a component of world
# edgeway:plugin/authorizer@0.1.0 made by componentize-py (pinned in requirements.txt).
#
#   plugins/py-authorizer/build.sh OUT_DIR
#
# Needs python3 (>= 3.10) with the venv module. The tool is installed into the venv at
# ${EDGEWAY_PY_VENV:-<repo>/target/py-venv}, created when missing; pip runs only when the
# venv was not set up from this requirements.txt. Any failure exits non-zero.
set -euo pipefail

die() { echo "py-authorizer/build.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"
out_dir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
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

mkdir -p "$out_dir"
out=$(cd "$out_dir" && pwd)/py_authorizer.wasm
tmp=$out.tmp.$$
# The app is built from a copy, so componentize-py's bytecode cache stays out of the tree.
src=$(mktemp -d)
trap 'rm -rf "$tmp" "$src"' EXIT
cp "$here/app.py" "$src/"

# VIRTUAL_ENV is cleared so a caller's active venv is not searched for modules.
(cd "$src" && env -u VIRTUAL_ENV "$cpy" --quiet -d "$root/wit" -w authorizer \
    componentize app -p "$src" -o "$tmp") || die "componentize-py failed"
[ -s "$tmp" ] || die "componentize-py wrote no component"
mv -f "$tmp" "$out"
