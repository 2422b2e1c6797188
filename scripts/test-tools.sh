#!/usr/bin/env bash
# Installs the tools the OpenAPI and AWS integration tests run, each pinned, into folders under target/:
#   target/test-venv        openapi-spec-validator, schemathesis, openapi-python-client,
#                           moto (server mode, with boto3), websockets (PyPI)
#   target/autobahn-venv    autobahntestsuite's fuzzing client (PyPI, on CPython 2.7 from pyenv)
#   tests/tools/node_modules  openapi-typescript, openapi-fetch, typescript, playwright-core (npm)
# and Debian's chromium for the docs page test. Reinstalls only when a pin changes; any
# failure exits non-zero, so a missing tool never becomes a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "test-tools.sh: $*" >&2; exit 1; }

venv=target/test-venv
stamp=$venv/.edgeway-requirements.txt
if [ ! -x "$venv/bin/python" ]; then
    rm -f "$stamp"
    python3 -m venv "$venv" || die "cannot create a venv at $venv (is python3-venv installed?)"
fi
if ! cmp -s tests/tools/requirements.txt "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-virtualenv -r tests/tools/requirements.txt || die "pip install failed"
    cp tests/tools/requirements.txt "$stamp"
fi
for tool in openapi-spec-validator schemathesis openapi-python-client moto_server; do
    [ -x "$venv/bin/$tool" ] || die "$venv/bin/$tool is missing after pip install"
done

# The WebSocket conformance test's Autobahn fuzzing client runs on Python 2.7 only: a
# virtualenv (the last release that makes 2.7 environments) on the machine's CPython 2.7.
ab_venv=target/autobahn-venv
ab_pin="autobahntestsuite==0.8.2"
if [ ! -x "$ab_venv/bin/wstest" ] || [ "$(cat "$ab_venv/.edgeway-pin" 2>/dev/null)" != "$ab_pin" ]; then
    # pyenv's own interpreter, not its shim (which fails unless 2.7 is selected).
    py27=$(ls -1d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python2.7 2>/dev/null | tail -1 || true)
    if [ -z "$py27" ] && python2.7 -c pass 2>/dev/null; then py27=$(command -v python2.7); fi
    [ -n "$py27" ] && [ -x "$py27" ] || die "no CPython 2.7 (python2.7 on PATH, or under pyenv) for autobahntestsuite"
    rm -rf "$ab_venv"
    python3 -m pip install --quiet --disable-pip-version-check --target target/virtualenv-tool \
        "virtualenv<20.22" || die "cannot install virtualenv into target/virtualenv-tool"
    PYTHONPATH=target/virtualenv-tool python3 -m virtualenv --quiet -p "$py27" "$ab_venv" \
        || die "cannot make a Python 2.7 virtualenv at $ab_venv"
    "$ab_venv/bin/pip" install --quiet --disable-pip-version-check "$ab_pin" \
        || die "pip install $ab_pin failed"
    echo "$ab_pin" > "$ab_venv/.edgeway-pin"
fi
[ -x "$ab_venv/bin/wstest" ] || die "$ab_venv/bin/wstest is missing after pip install"

npm_stamp=tests/tools/node_modules/.edgeway-package-lock.json
if ! cmp -s tests/tools/package-lock.json "$npm_stamp"; then
    (cd tests/tools && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
    cp tests/tools/package-lock.json "$npm_stamp"
fi
for tool in openapi-typescript tsc; do
    [ -x "tests/tools/node_modules/.bin/$tool" ] || die "tests/tools/node_modules/.bin/$tool is missing after npm ci"
done

if ! command -v chromium >/dev/null 2>&1; then
    echo "test-tools.sh: installing chromium" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null || die "cannot install chromium"
    command -v chromium >/dev/null 2>&1 || die "chromium is still missing after installing it"
fi
