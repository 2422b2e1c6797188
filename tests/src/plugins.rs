//! The plugin components the tests load, as `scripts/build-plugins.sh` builds them into
//! `target/plugins/`, and the admin API calls plugin tests make.

use std::path::PathBuf;

use serde_json::Value;

use crate::client;

/// The admin token plugin tests give the gateway (`ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The repository root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// `target/plugins/<name>.wasm`; panics with what to run when it is missing.
pub fn plugin_file(name: &str) -> PathBuf {
    let path = workspace()
        .join("target/plugins")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A tool `scripts/test-tools.sh` installed into `target/test-venv`; panics with what to run
/// when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let path = workspace().join("target/test-venv/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test-tools.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// `tests/tools`: the npm tools and the scripts that drive them.
pub fn tools_dir() -> PathBuf {
    let dir = workspace().join("tests/tools");
    assert!(
        dir.join("node_modules/.bin/tsc").is_file(),
        "{}/node_modules is missing: run scripts/test-tools.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// The compile cache all plugin tests share, so each component is compiled once per run.
pub fn plugin_cache_dir() -> PathBuf {
    workspace().join("target/plugin-cache-tests")
}

/// A `plugins:` section loading `entries` (YAML flow mappings without `file`, keyed by the
/// component name they load), with the test cache.
///
/// `plugins_yaml(&[("tokens", "token_authorizer", "role: authorizer, config: {...}")])`
pub fn plugins_yaml(entries: &[(&str, &str, &str)]) -> String {
    let mut yaml = format!(
        "plugins:\n  cache_dir: {}\n  load:\n",
        plugin_cache_dir().display()
    );
    for (name, component, rest) in entries {
        yaml.push_str(&format!(
            "    - {{ name: {name}, file: {}, {rest} }}\n",
            plugin_file(component).display()
        ));
    }
    yaml
}

/// `GET /admin/plugins`, as `name → entry`.
pub async fn admin_plugins(admin_url: &str) -> Value {
    let r = client()
        .get(format!("{admin_url}/admin/plugins"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET /admin/plugins");
    assert_eq!(r.status(), 200);
    let body: Value = crate::json_body(r).await;
    let mut by_name = serde_json::Map::new();
    for p in body["plugins"].as_array().expect("plugins array") {
        by_name.insert(p["name"].as_str().expect("name").to_owned(), p.clone());
    }
    Value::Object(by_name)
}

/// Calls made so far to plugin `name`'s current version.
pub async fn plugin_calls(admin_url: &str, name: &str) -> u64 {
    admin_plugins(admin_url).await[name]["stats"]["calls"]
        .as_u64()
        .unwrap_or_else(|| panic!("no stats for plugin {name}"))
}
