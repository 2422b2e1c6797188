//! Secrets out of the config before `GET /admin/config` shows it.
//!
//! Values under keys that name secrets (`secret`, `password`, `token`, `private_key`, `key`
//! of a certificate pair, `api_key`, ...) and credentials inside URLs are replaced with
//! `"[redacted]"`. `token_env` stays: it names a variable, not its value.

use serde_json::Value;

const REDACTED: &str = "[redacted]";

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_env") || key.ends_with("_file") {
        return false;
    }
    key == "key"
        || [
            "secret",
            "password",
            "passwd",
            "token",
            "private",
            "api_key",
            "credential",
        ]
        .iter()
        .any(|s| key.contains(s))
}

/// Strips `user:password@` from a URL-looking string.
fn redact_url(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (_, host) = rest[..authority_end].rsplit_once('@')?;
    Some(format!(
        "{scheme}://{REDACTED}@{host}{}",
        &rest[authority_end..]
    ))
}

/// Returns `value` with secrets replaced.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(&k) && !v.is_null() {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::String(s) => Value::String(redact_url(&s).unwrap_or(s)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_secret_keys_and_url_credentials() {
        let out = redact(json!({
            "admin": { "token_env": "T" },
            "origin": "https://user:pw@origin.internal/base",
            "listen": [{ "tls": { "certs": [{ "cert": "a.pem", "key": "a.key" }] } }],
            "plugins": { "jwt": { "client_secret": "s3", "password": "p" } }
        }));
        assert_eq!(out["admin"]["token_env"], "T");
        assert_eq!(out["origin"], "https://[redacted]@origin.internal/base");
        assert_eq!(out["listen"][0]["tls"]["certs"][0]["key"], "[redacted]");
        assert_eq!(out["listen"][0]["tls"]["certs"][0]["cert"], "a.pem");
        assert_eq!(out["plugins"]["jwt"]["client_secret"], "[redacted]");
        assert_eq!(out["plugins"]["jwt"]["password"], "[redacted]");
    }
}
