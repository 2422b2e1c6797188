//! Configuration: the YAML file → a validated, typed [`Config`].
//!
//! Two stages, as everywhere in Edgeway: `raw` (serde types that reject unknown keys) and
//! `validate` (checks every value, fills defaults, loads certificates, compiles integration
//! URIs). Errors carry the key path and line, e.g.
//! `edgeway.yaml:12: apis[0].routes[1].route: unknown method "FETCH" ...`.

pub(crate) use crate::suggest::did_you_mean;

pub mod deploy;
mod export;
mod model;
mod openapi;
pub mod raw;
mod redact;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use export::{Definitions, ExportOptions, export};
pub use model::*;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path, e.g. `apis[0].routes[1].route`; empty for the whole file.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    pub message: String,
}

/// Every problem found in a config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            if !e.path.is_empty() {
                write!(f, ": {}", e.path)?;
            }
            write!(f, ": {}", e.message)?;
        }
        Ok(())
    }
}

/// Reads and validates a config file.
pub fn load(file: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigErrors {
        file: file.to_owned(),
        errors: vec![ConfigError {
            path: String::new(),
            line: None,
            message: format!("cannot read the config file: {e}"),
        }],
    })?;
    parse(&text, file)
}

/// Validates config text; `file` names it in errors and anchors relative paths.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        file: file.to_owned(),
        errors,
    };
    if let Some(error) = too_large(text.len(), max_config_bytes()) {
        return Err(fail(vec![error]));
    }
    let mut raw = parse_raw(text).map_err(|e| fail(vec![e]))?;
    let redacted = serde_saphyr::from_str_with_options::<serde_json::Value>(text, yaml_options())
        .map(redact::redact)
        .unwrap_or(serde_json::Value::Null);
    let base_dir = file.parent().unwrap_or(Path::new("."));
    let expanded = openapi::expand(&mut raw, base_dir).map_err(fail)?;
    let mut config = validate::validate(&raw, base_dir, redacted).map_err(|mut errors| {
        openapi::annotate(&mut errors, &expanded);
        fail(errors)
    })?;
    config.definitions = raw.apis.into_iter().map(std::sync::Arc::new).collect();
    config.origin = raw.origin.map(|o| o.value);
    config.base_dir = base_dir.to_owned();
    config.sources = expanded.files;
    config.warnings = expanded.warnings;
    Ok(config)
}

/// The largest config file (or stored definition) read, unless `EDGEWAY_MAX_CONFIG_BYTES`
/// says otherwise: 16 MiB, about 150,000 routes written as the examples write them.
pub const DEFAULT_MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// The environment variable that raises (or lowers) [`DEFAULT_MAX_CONFIG_BYTES`].
pub const MAX_CONFIG_BYTES_VAR: &str = "EDGEWAY_MAX_CONFIG_BYTES";

/// The bound on a config file's size: `EDGEWAY_MAX_CONFIG_BYTES`, else the default.
pub fn max_config_bytes() -> usize {
    std::env::var(MAX_CONFIG_BYTES_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_CONFIG_BYTES)
}

/// A file over the size bound, refused before it is parsed, with the setting that raises it.
fn too_large(bytes: usize, max: usize) -> Option<ConfigError> {
    (bytes > max).then(|| ConfigError {
        path: String::new(),
        line: None,
        message: format!(
            "the file is {bytes} bytes, over the {max}-byte bound on config size; raise it with the environment variable {MAX_CONFIG_BYTES_VAR}"
        ),
    })
}

fn yaml_options() -> serde_saphyr::Options {
    // The parser's own budget (nodes, events) follows from the size bound: every node takes
    // at least a byte, so a file within the bound stays within the budget, and the bound is
    // the one setting an operator raises. Aliases keep the parser's limits (alias bombs).
    let max = max_config_bytes();
    // Only `true`/`false` are booleans: `y`, `no` and `on` stay strings, as a user means them.
    serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_nodes: max.max(250_000),
            max_events: max.saturating_mul(2).max(1_000_000),
            max_total_scalar_bytes: max.max(64 * 1024 * 1024),
        },
    }
}

/// YAML → raw types, with the key path of the first error (serde stops at the first).
fn parse_raw(text: &str) -> Result<raw::RawConfig, ConfigError> {
    let mut path = String::new();
    let result =
        serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(), |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                path = e.path().to_string();
                e.into_inner()
            })
        });
    result.map_err(|e| {
        let location = e.location();
        let found = location.and_then(|l| scalar_at(text, l.line(), l.column()));
        ConfigError {
            path: clean_path(&path),
            line: location.map(|l| l.line()),
            message: explain(&strip_location(&e.to_string()), found),
        }
    })
}

/// The serde path without the parts only Edgeway's own wrappers add: `Spanned`'s `.value`
/// and the `?` of a key that could not be read.
fn clean_path(path: &str) -> String {
    let path = path
        .replace(".value[", "[")
        .replace(".value.", ".")
        .replace(".?", "");
    let path = path.strip_suffix(".value").unwrap_or(&path);
    match path {
        "." | "?" => String::new(),
        other => other.to_owned(),
    }
}

/// The YAML error text without the location it repeats (the line is reported apart).
fn strip_location(message: &str) -> String {
    let mut message = message.trim().trim_start_matches("error: ");
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((location, after)) = rest.split_once(": ")
        && location.contains("column")
    {
        message = after;
    }
    if let Some(at) = message.rfind(" at line ")
        && message[at..].contains("column")
    {
        message = &message[..at];
    }
    message.to_owned()
}

/// The plain scalar that starts at a 1-based line and column, for "got ..." in messages.
fn scalar_at(text: &str, line: u64, column: u64) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let rest: String = line
        .chars()
        .skip(usize::try_from(column).ok()?.checked_sub(1)?)
        .collect();
    let value = rest.split([',', '}', ']', '#']).next()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Rewrites serde's type-level wording into what a config author needs to read.
fn explain(message: &str, found: Option<String>) -> String {
    let got = found.map(|f| format!(", got {f}")).unwrap_or_default();
    if let Some(kind) = message.strip_prefix("invalid ") {
        let expected = match kind {
            "u8" | "u16" | "u32" | "u64" | "usize" => Some("a whole number (0 or more)"),
            "i8" | "i16" | "i32" | "i64" | "isize" => Some("a whole number"),
            "f32" | "f64" => Some("a number"),
            "bool" | "boolean" => Some("true or false"),
            _ => None,
        };
        if let Some(expected) = expected {
            return format!("expected {expected}{got}");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once("`, expected ")
    {
        let valid: Vec<&str> = expected
            .trim_start_matches("one of ")
            .split([',', ' '])
            .map(|v| v.trim_matches('`'))
            .filter(|v| !v.is_empty() && *v != "or")
            .collect();
        let hint = did_you_mean(field, valid.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return format!(
            "unknown key `{field}`{hint} (valid keys: {})",
            valid.join(", ")
        );
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        match parse(yaml, Path::new("t.yaml")) {
            Ok(_) => vec![],
            Err(e) => e.to_string().lines().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn minimal_config_is_valid_with_defaults() {
        let config = parse(
            "listen: [{ addr: 127.0.0.1:0 }]\napis:\n  - name: a\n    stages: { prod: {} }\n    routes:\n      - route: GET /x\n        integration: { mock: { body: hi } }\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        assert_eq!(config.limits.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(
            config.limits.integration_timeout,
            DEFAULT_INTEGRATION_TIMEOUT
        );
        assert_eq!(config.apis[0].routes[0].key, "GET /x");
    }

    #[test]
    fn unknown_key_names_key_path_and_line() {
        let e = errors("listen: [{ addr: 127.0.0.1:0 }]\nlimits:\n  max_body: 5\n");
        assert_eq!(
            e,
            vec![
                "t.yaml:3: limits.max_body: unknown key `max_body`; did you mean `max_body_bytes`? (valid keys: max_body_bytes, max_header_bytes, integration_timeout_ms, header_read_timeout_ms, linger_timeout_ms, linger_max_bytes, max_connections, max_connections_per_ip, max_in_flight, max_memory_mib, max_streams_per_connection, max_headers, body_read_timeout_ms)"
            ]
        );
    }

    #[test]
    fn all_semantic_errors_are_reported() {
        let e = errors(
            "listen: [{ addr: nope }]\norigin: ftp://x\napis:\n  - name: a\n    stages: { prod: {} }\n    routes:\n      - route: FETCH /x\n        integration: { mock: {} }\n      - route: GET /y\n        integration: { http_proxy: \"${stageVariables.v}/y\" }\n",
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(
            e[0].starts_with("t.yaml:1: listen[0].addr: invalid address"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("t.yaml:2: origin: invalid origin"),
            "{e:?}"
        );
        assert!(
            e[2].contains("apis[0].routes[0].route: unknown method \"FETCH\""),
            "{e:?}"
        );
        assert!(
            e[3].contains("stage variable \"v\" is not defined in stage \"prod\""),
            "{e:?}"
        );
    }

    #[test]
    fn strips_yaml_location() {
        assert_eq!(
            strip_location("error: line 3 column 7: invalid u16"),
            "invalid u16"
        );
        assert_eq!(strip_location("bad thing at line 9, column 5"), "bad thing");
        assert_eq!(strip_location("something else"), "something else");
    }

    #[test]
    fn wrong_type_says_what_was_expected_and_found() {
        let e = errors("listen: [{ addr: 127.0.0.1:0 }]\nlimits:\n  max_body_bytes: lots\n");
        assert_eq!(
            e,
            vec!["t.yaml:3: limits.max_body_bytes: expected a whole number (0 or more), got lots"]
        );
    }

    #[test]
    fn a_file_over_the_size_bound_names_the_setting() {
        let error = too_large(DEFAULT_MAX_CONFIG_BYTES + 1, DEFAULT_MAX_CONFIG_BYTES).unwrap();
        assert!(
            error.message.contains(MAX_CONFIG_BYTES_VAR),
            "{}",
            error.message
        );
        assert!(too_large(10, 10).is_none());
    }

    #[test]
    fn more_nodes_than_the_parsers_default_budget_load() {
        // 300,000 nodes: over the YAML parser's own default of 250,000.
        let mut yaml = String::from(
            "listen: [{ addr: 127.0.0.1:0 }]\napis:\n  - name: a\n    stages: { prod: {} }\n    routes:\n",
        );
        for i in 0..30_000 {
            yaml.push_str(&format!("      - {{ route: GET /r{i}, integration: {{ mock: {{ status: 200, body: x }} }} }}\n"));
        }
        let config = parse(&yaml, Path::new("t.yaml")).unwrap();
        assert_eq!(config.apis[0].routes.len(), 30_000);
    }

    #[test]
    fn typo_suggestions() {
        let e = errors("listen: [{ addr: 127.0.0.1:0 }]\nlimts: {}\n");
        assert!(
            e[0].starts_with(
                "t.yaml:2: limts: unknown key `limts`; did you mean `limits`? (valid keys: listen,"
            ),
            "{e:?}"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever the file holds, loading it answers with a config or with errors.
        #[test]
        fn arbitrary_text_never_panics(text in "(.|\n){0,200}") {
            let _ = parse(&text, Path::new("p.yaml"));
        }

        /// A valid config with one value changed to arbitrary YAML scalars still answers.
        #[test]
        fn arbitrary_values_never_panic(value in "[ -~]{0,24}") {
            let yaml = format!(
                "listen: [{{ addr: 127.0.0.1:0 }}]\nlimits: {{ max_body_bytes: {value} }}\napis:\n  - name: a\n    stages: {{ prod: {{}} }}\n    routes:\n      - route: GET /x\n        integration: {{ mock: {{ status: 200, body: \"{value}\" }} }}\n"
            );
            let _ = parse(&yaml, Path::new("p.yaml"));
        }
    }
}
