#!/usr/bin/env bash
# Edgeway quickstart, on a machine with only rustup and cargo:
#
#   ./scripts/quickstart.sh
#
# builds the Rust plugins (token-authorizer, header-rewrite, echo-function, ...) into
# target/plugins/ (scripts/build-plugins.sh with EDGEWAY_PLUGINS=rust: no node, no python),
# then builds and runs the quickstart: a demo origin on 127.0.0.1:9000 and Edgeway on
# 127.0.0.1:8080 with examples/quickstart/edgeway.yaml, whose plugins.dir is target/plugins.
# Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The quickstart config loads its plugins from target/plugins, so an inherited
# EDGEWAY_PLUGIN_OUT must not send them elsewhere.
env -u EDGEWAY_PLUGIN_OUT EDGEWAY_PLUGINS=rust bash scripts/build-plugins.sh
exec cargo run --release --locked -p edgeway-quickstart
