#!/usr/bin/env bash
# Builds every plugin component into ${EDGEWAY_PLUGIN_OUT:-<repo>/target/plugins}/:
#
#   - each crate of the plugins/ workspace (Rust, wasm32-wasip2, release) as
#     <crate_name_with_underscores>.wasm: token_authorizer.wasm, header_rewrite.wasm,
#     echo_function.wasm, test_spin.wasm, test_memory_bomb.wasm, test_trap.wasm,
#     test_sandbox.wasm, test_version.wasm, test_kv.wasm, lambda_echo.wasm,
#     lambda_authorizer.wasm;
#   - test-version a second time, built with EDGEWAY_TEST_PLUGIN_VERSION=2:
#     test_version_v1.wasm (= test_version.wasm) and test_version_v2.wasm, for hot-swap tests;
#   - then, when present, the JavaScript and Python plugins through their own
#     plugins/{js-authorizer,py-authorizer,js-lambda,py-lambda}/build.sh OUT_DIR (the lambda
#     ones through the SDK's adapters in plugin-sdk/lambda/).
#
# EDGEWAY_PLUGINS chooses what is built: `all` (the default) or `rust`, which skips the
# JavaScript and Python plugins and so needs neither node nor python3 (scripts/quickstart.sh).
#
# Needs rustup and cargo; adds the wasm32-wasip2 target when missing. The plugins keep their
# own target dir (plugins/target; v2 in plugins/target/v2, so neither build invalidates the
# other) and lock file (built --locked). A run with nothing changed costs two no-op cargo
# invocations, and outputs are rewritten only when their bytes change.
set -euo pipefail

kinds=${EDGEWAY_PLUGINS:-all}
case $kinds in
    all | rust) ;;
    *) echo "build-plugins.sh: EDGEWAY_PLUGINS=$kinds; expected all or rust" >&2; exit 1 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${EDGEWAY_PLUGIN_OUT:-$root/target/plugins}
mkdir -p "$out"
out=$(cd "$out" && pwd)
target=wasm32-wasip2
target_dir=$root/plugins/target

rustup target list --installed | grep -qx "$target" || rustup target add "$target"

cd "$root/plugins"
# v1 is "EDGEWAY_TEST_PLUGIN_VERSION unset"; an inherited value would silently change it.
env -u EDGEWAY_TEST_PLUGIN_VERSION \
    cargo build --release --locked --target "$target" --target-dir "$target_dir"
EDGEWAY_TEST_PLUGIN_VERSION=2 \
    cargo build --release --locked --target "$target" --target-dir "$target_dir/v2" -p test-version

# copy SRC NAME: installs SRC as $out/NAME unless it already has those bytes.
copy() {
    [ -f "$1" ] || { echo "build-plugins.sh: $1 was not built" >&2; exit 1; }
    cmp -s "$1" "$out/$2" || cp "$1" "$out/$2"
    echo "  $out/$2"
}

echo "build-plugins.sh: components:"
release=$target_dir/$target/release
for manifest in "$root"/plugins/*/Cargo.toml; do
    crate=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)
    [ -n "$crate" ] || { echo "build-plugins.sh: no package name in $manifest" >&2; exit 1; }
    copy "$release/${crate//-/_}.wasm" "${crate//-/_}.wasm"
done
copy "$release/test_version.wasm" test_version_v1.wasm
copy "$target_dir/v2/$target/release/test_version.wasm" test_version_v2.wasm

if [ "$kinds" = rust ]; then
    exit 0
fi
for other in js-authorizer py-authorizer js-lambda py-lambda; do
    script=$root/plugins/$other/build.sh
    if [ -f "$script" ]; then
        echo "build-plugins.sh: $other"
        bash "$script" "$out"
    fi
done
