//! The plugin's own config: the `config` value given to it in the Edgeway config.

use serde::de::DeserializeOwned;

use crate::bindings::imports::config as host;

/// Why the plugin's config could not be read into the plugin's type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No config was given (`null`) and the type needs one.
    #[error("plugin config: none was given and this plugin needs one ({0})")]
    Missing(String),
    /// The config does not fit the type.
    #[error("plugin config: at `{path}`: {message}")]
    Invalid {
        /// Where in the config, as `tokens.abc.principal`; `.` for the whole value.
        path: String,
        /// What is wrong there, from serde.
        message: String,
    },
}

/// The plugin's config deserialized into `T`; see [`config_from_json`] for the rules.
///
/// It asks the host each time, so call it once per instance, in the role trait's `new`, and
/// keep the result.
///
/// ```no_run
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config {
///     #[serde(default)]
///     greeting: Option<String>,
/// }
///
/// let config: Config = edgeway_plugin_sdk::config()?;
/// # Ok::<(), edgeway_plugin_sdk::ConfigError>(())
/// ```
pub fn config<T: DeserializeOwned>() -> Result<T, ConfigError> {
    config_from_json(&host::get())
}

/// The plugin's config as the JSON text the host gives: `null` when none was given.
pub fn config_text() -> String {
    host::get()
}

/// Deserializes config JSON text into `T`, as [`config`] does with the host's text; use it to
/// test a plugin's config handling off wasm.
///
/// When no config was given (`null`), `T` is built from `null` if it accepts that (an
/// `Option`, `()`), else from `{}` (so a struct whose fields all have defaults needs no
/// config), else the result is [`ConfigError::Missing`].
///
/// ```
/// use edgeway_plugin_sdk::{ConfigError, config_from_json};
///
/// #[derive(serde::Deserialize, Debug)]
/// struct Config {
///     #[serde(default)]
///     limit: u32,
/// }
///
/// assert_eq!(config_from_json::<Config>(r#"{"limit": 3}"#).unwrap().limit, 3);
/// assert_eq!(config_from_json::<Config>("null").unwrap().limit, 0);
/// let err = config_from_json::<Config>(r#"{"limit": "x"}"#).unwrap_err();
/// assert!(matches!(err, ConfigError::Invalid { ref path, .. } if path == "limit"));
/// ```
pub fn config_from_json<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    if text.trim() == "null" {
        if let Ok(value) = parse::<T>("null") {
            return Ok(value);
        }
        return parse::<T>("{}").map_err(|e| match e {
            ConfigError::Invalid { message, .. } => ConfigError::Missing(message),
            other => other,
        });
    }
    parse(text)
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| ConfigError::Invalid {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    de.end().map_err(|e| ConfigError::Invalid {
        path: ".".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Tokens {
        tokens: BTreeMap<String, Entry>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        principal: String,
    }

    #[test]
    fn errors_name_the_key() {
        let err =
            config_from_json::<Tokens>(r#"{"tokens": {"abc": {"principal": 1}}}"#).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("plugin config: at `tokens.abc.principal`: invalid type"),
            "{text}"
        );
    }

    #[test]
    fn null_needs_a_type_that_accepts_it() {
        assert_eq!(config_from_json::<Option<Tokens>>("null").unwrap(), None);
        let err = config_from_json::<Tokens>("null").unwrap_err();
        assert!(
            matches!(err, ConfigError::Missing(ref m) if m.contains("tokens")),
            "{err}"
        );
    }

    #[test]
    fn trailing_garbage_and_bad_json_are_invalid() {
        assert!(config_from_json::<Option<u8>>("1 2").is_err());
        assert!(config_from_json::<Tokens>("{").is_err());
    }
}
