//! Embeds the built-in `mapping-template` component (plugins/mapping-template, built for
//! wasm32-wasip2 by scripts/build-plugins.sh into target/plugins/) when it has been built,
//! so a config with mapping templates needs no plugin of its own. Without it the gateway
//! still builds; a config that uses templates is then refused with what to run.
//!
//! `EDGEWAY_MAPPER_WASM` names another component file to embed.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(edgeway_builtin_mapper)");
    println!("cargo::rerun-if-env-changed=EDGEWAY_MAPPER_WASM");
    let path = match std::env::var_os("EDGEWAY_MAPPER_WASM") {
        Some(path) => PathBuf::from(path),
        None => {
            let manifest =
                PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
            manifest.join("../target/plugins/mapping_template.wasm")
        }
    };
    println!("cargo::rerun-if-changed={}", path.display());
    if path.is_file() {
        println!("cargo::rustc-cfg=edgeway_builtin_mapper");
        println!(
            "cargo::rustc-env=EDGEWAY_MAPPER_WASM_PATH={}",
            path.display()
        );
    }
}
