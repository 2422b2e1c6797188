#!/usr/bin/env bash
# Runs Edgeway's whole test suite, from a clean clone, on a machine with only rustup and cargo:
# builds the gateway and every plugin (Rust for wasm32-wasip2, JavaScript with componentize-js,
# Python with componentize-py), then runs unit tests, the plugin SDK's doc tests, the plugins'
# own unit tests, end-to-end tests (the real binary against real origins on loopback), config
# golden tests, and each criterion bench once as a test.
#
# Anything the tests need that the machine lacks is installed here; an install that fails
# stops the run with an error, so a missing piece never turns into a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_tool_package() { # need_tool_package DEBIAN_PACKAGE
    echo "test.sh: installing $1" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "$1" >/dev/null
}

need_tool() { # need_tool COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "test.sh: installing $2 (for $1)" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "$2" >/dev/null
    command -v "$1" >/dev/null 2>&1 || { echo "test.sh: $1 is still missing after installing $2" >&2; exit 1; }
}
need_tool curl curl
# tests/tests/metrics.rs scrapes a node with a real Prometheus.
need_tool prometheus prometheus
# The JavaScript and Python authorizers are built from npm and PyPI packages.
need_tool node nodejs
need_tool npm npm
need_tool python3 python3
python3 -c 'import ensurepip, venv' 2>/dev/null || need_tool_package python3-venv

# Adds the wasm32-wasip2 target if missing and builds every component into target/plugins/.
scripts/build-plugins.sh
# The OpenAPI tests' tools (spec validator, contract tester, client generators, Chromium).
scripts/test-tools.sh

# One profile (release) for the binary, the tests and the benches: built once, shared.
cargo build --release --locked -p edgeway
cargo test --release --locked --workspace --all-targets
# The plugins' own unit tests run on the host target.
(cd plugins && cargo test --release --locked --target "$(rustc -vV | sed -n 's/^host: //p')")
