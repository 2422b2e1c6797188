#!/usr/bin/env bash
# Installs the tools the OpenAPI and AWS integration tests run, each pinned, into folders under target/:
#   target/test-venv        openapi-spec-validator, schemathesis, openapi-python-client,
#                           moto (server mode, with boto3) (PyPI)
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
