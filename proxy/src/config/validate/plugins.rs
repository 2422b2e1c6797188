//! `plugins`: where components live, where compiled code is cached, and each plugin's role
//! and limits. The components themselves are compiled when the gateway is built, not here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Errors, millis};
use crate::config::raw::*;
use crate::plugins::{
    DEFAULT_HTTP_TIMEOUT, DEFAULT_PLUGIN_MEMORY, DEFAULT_PLUGIN_TIMEOUT, HeaderSelection,
    MAX_PLUGIN_MEMORY, PluginRole, PluginSpec, PluginsConfig,
};

/// Default for `plugins.cache_dir`, relative to the config file's folder.
pub const DEFAULT_CACHE_DIR: &str = ".edgeway-cache";

/// Plugin names appear in routes, logs and admin URLs.
fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn validate_plugins(
    errors: &mut Errors,
    raw: Option<&RawPlugins>,
    base_dir: &Path,
) -> PluginsConfig {
    let Some(raw) = raw else {
        return PluginsConfig {
            cache_dir: base_dir.join(DEFAULT_CACHE_DIR),
            ..PluginsConfig::default()
        };
    };
    let dir = raw.dir.as_ref().map(|d| base_dir.join(&d.value));
    if let (Some(dir), Some(at)) = (&dir, &raw.dir)
        && !dir.is_dir()
    {
        errors.add(
            "plugins.dir",
            Some(at),
            format!("{} is not a folder", dir.display()),
        );
    }
    let cache_dir = raw.cache_dir.as_ref().map_or_else(
        || base_dir.join(DEFAULT_CACHE_DIR),
        |c| base_dir.join(&c.value),
    );
    let files_from: PathBuf = dir.clone().unwrap_or_else(|| base_dir.to_owned());

    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut load = Vec::new();
    for (i, p) in raw.load.iter().enumerate() {
        let path = format!("plugins.load[{i}]");
        let name = p.name.value.trim();
        if !valid_plugin_name(name) {
            errors.add(
                format!("{path}.name"),
                Some(&p.name),
                format!("plugin name \"{name}\" must be non-empty and use only letters, digits, '_' and '-'"),
            );
        } else if let Some(first) = names.insert(name, i) {
            errors.add(
                format!("{path}.name"),
                Some(&p.name),
                format!("plugin \"{name}\" is already defined at plugins.load[{first}]"),
            );
        }
        let Some(role) = PluginRole::parse(p.role.value.trim()) else {
            errors.add(
                format!("{path}.role"),
                Some(&p.role),
                format!(
                    "unknown role \"{}\"; expected authorizer, transformer, handler or lambda",
                    p.role.value
                ),
            );
            continue;
        };
        let file = match &p.file {
            Some(f) => files_from.join(&f.value),
            None => files_from.join(format!("{name}.wasm")),
        };
        if !file.is_file() {
            let message = format!("component file {} does not exist", file.display());
            match &p.file {
                Some(f) => errors.add(format!("{path}.file"), Some(f), message),
                None => errors.add(format!("{path}.file"), Some(&p.name), message),
            }
        }
        let timeout = millis(
            errors,
            &format!("{path}.timeout_ms"),
            p.timeout_ms.as_ref(),
            DEFAULT_PLUGIN_TIMEOUT,
        );
        let memory_bytes = match &p.memory_mib {
            None => DEFAULT_PLUGIN_MEMORY,
            Some(m) if m.value == 0 || m.value > MAX_PLUGIN_MEMORY >> 20 => {
                errors.add(
                    format!("{path}.memory_mib"),
                    Some(m),
                    format!("must be between 1 and {}", MAX_PLUGIN_MEMORY >> 20),
                );
                DEFAULT_PLUGIN_MEMORY
            }
            Some(m) => m.value << 20,
        };
        let mut allowed_hosts = Vec::new();
        for (h, host) in p.allowed_hosts.iter().enumerate() {
            let text = host.value.trim().to_ascii_lowercase();
            if text.is_empty() || text.contains(['/', '@', ' ']) {
                errors.add(
                    format!("{path}.allowed_hosts[{h}]"),
                    Some(host),
                    format!("\"{}\" is not a host or host:port", host.value),
                );
            } else {
                allowed_hosts.push(text);
            }
        }
        let http_timeout = millis(
            errors,
            &format!("{path}.http_timeout_ms"),
            p.http_timeout_ms.as_ref(),
            DEFAULT_HTTP_TIMEOUT,
        );
        let headers = match (&p.headers, role) {
            (None, PluginRole::Authorizer) => HeaderSelection::Only(Vec::new()),
            (None, _) => HeaderSelection::All,
            (Some(list), _) if list.value.iter().any(|h| h.trim() == "*") => HeaderSelection::All,
            (Some(list), PluginRole::Transformer) => {
                errors.add(
                    format!("{path}.headers"),
                    Some(list),
                    "a transformer is given every header (the headers it returns replace the request's); use [\"*\"] or leave `headers` out",
                );
                HeaderSelection::All
            }
            (Some(list), _) => {
                let mut names = Vec::new();
                for (h, name) in list.value.iter().enumerate() {
                    match http::HeaderName::from_bytes(name.trim().as_bytes()) {
                        Ok(n) => names.push(n),
                        Err(_) => errors.add(
                            format!("{path}.headers[{h}]"),
                            Some(list),
                            format!("\"{name}\" is not a valid header name"),
                        ),
                    }
                }
                HeaderSelection::Only(names)
            }
        };
        let config_json = p
            .config
            .as_ref()
            .map_or_else(|| "null".to_owned(), serde_json::Value::to_string);
        load.push(PluginSpec {
            name: name.to_owned(),
            role,
            file,
            timeout: timeout.max(Duration::from_millis(1)),
            memory_bytes,
            body: p.body,
            headers,
            allowed_hosts,
            http_timeout,
            config_json,
        });
    }
    PluginsConfig {
        dir,
        cache_dir,
        load,
    }
}

/// Adds the built-in mapper (`mapping-template`) unless a plugin of that name is configured:
/// config that uses mapping templates needs no plugin entry of its own.
pub(super) fn add_builtin_mapper(plugins: &mut PluginsConfig) {
    use crate::mapping::builtin;
    if plugins.load.iter().any(|p| p.name == builtin::NAME) {
        return;
    }
    plugins.load.push(PluginSpec {
        name: builtin::NAME.to_owned(),
        role: PluginRole::Mapper,
        file: PathBuf::from(builtin::FILE),
        timeout: builtin::TIMEOUT,
        memory_bytes: DEFAULT_PLUGIN_MEMORY,
        body: true,
        headers: HeaderSelection::All,
        allowed_hosts: Vec::new(),
        http_timeout: DEFAULT_HTTP_TIMEOUT,
        config_json: "null".to_owned(),
    });
}
