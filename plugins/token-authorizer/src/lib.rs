//! An authorizer that looks tokens up in its config.
//!
//! ```json
//! { "tokens": {
//!     "s3cr3t": { "principal": "alice", "context": { "tier": "gold" }, "usage_key": "k-alice" },
//!     "other":  { "principal": "bob" }
//! } }
//! ```
//!
//! It reads the first identity source the route's authorizer config names (typically
//! `header.authorization`) and accepts `Bearer <token>` (the scheme in any case) or a bare
//! token. Decisions:
//!
//! - no identity source, an empty value, or a malformed one (`Bearer` without a token,
//!   another scheme, spaces inside the token) → `Unauthorized` (401): the caller has not
//!   presented a token;
//! - a well-formed token that is not in the config → `Deny("token not recognised")` (403):
//!   the caller presented one, and it is not good here;
//! - a known token → `Allow` with that entry's `principal`, `context` (string values) and
//!   `usage_key` (optional).
//!
//! The config is read once per instance; unknown keys are rejected.

use std::collections::{BTreeMap, HashMap};

use edgeway_plugin_sdk::{
    Allow, Authorizer, Decision, Error, Identity, Request, config, export_authorizer,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    tokens: HashMap<String, TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    principal: String,
    #[serde(default)]
    context: BTreeMap<String, String>,
    #[serde(default)]
    usage_key: Option<String>,
}

/// The tokens, each with the `Allow` it earns, built once.
struct TokenAuthorizer {
    allows: HashMap<String, Allow>,
}

impl TokenAuthorizer {
    fn from_config(config: Config) -> Self {
        let allows = config
            .tokens
            .into_iter()
            .map(|(token, entry)| {
                let allow = Allow {
                    principal_id: entry.principal,
                    context: entry.context.into_iter().collect(),
                    usage_key: entry.usage_key,
                };
                (token, allow)
            })
            .collect();
        TokenAuthorizer { allows }
    }

    fn decide(&self, identity: &Identity) -> Decision {
        let Some(token) = identity.first().and_then(token) else {
            return Decision::Unauthorized;
        };
        match self.allows.get(token) {
            Some(allow) => Decision::Allow(allow.clone()),
            None => Decision::deny("token not recognised"),
        }
    }
}

/// The token in an identity value: `Bearer <token>` (scheme in any case) or a bare token;
/// `None` when the value is empty or malformed.
fn token(value: &str) -> Option<&str> {
    let value = value.trim();
    match value.split_once(|c: char| c.is_ascii_whitespace()) {
        None if value.is_empty() || value.eq_ignore_ascii_case("bearer") => None,
        None => Some(value),
        Some((scheme, rest)) => {
            let token = rest.trim_start();
            let well_formed = scheme.eq_ignore_ascii_case("bearer")
                && !token.is_empty()
                && !token.contains(|c: char| c.is_ascii_whitespace());
            well_formed.then_some(token)
        }
    }
}

impl Authorizer for TokenAuthorizer {
    fn new() -> Result<Self, Error> {
        Ok(Self::from_config(config()?))
    }

    fn authorize(&self, identity: Identity, _request: Request) -> Result<Decision, Error> {
        Ok(self.decide(&identity))
    }
}

export_authorizer!(TokenAuthorizer);

#[cfg(test)]
mod tests {
    use edgeway_plugin_sdk::config_from_json;

    use super::*;

    fn authorizer() -> TokenAuthorizer {
        let config = config_from_json(
            r#"{ "tokens": {
                "s3cr3t": { "principal": "alice", "context": { "tier": "gold" }, "usage_key": "k1" },
                "plain": { "principal": "bob" } } }"#,
        )
        .unwrap();
        TokenAuthorizer::from_config(config)
    }

    fn decide(values: &[&str]) -> Decision {
        let identity: Vec<(String, String)> = values
            .iter()
            .map(|v| ("header.authorization".to_owned(), (*v).to_owned()))
            .collect();
        authorizer().decide(&Identity::from(identity))
    }

    #[test]
    fn bearer_and_bare_tokens_are_allowed() {
        let alice = Decision::Allow(Allow {
            principal_id: "alice".into(),
            context: vec![("tier".into(), "gold".into())],
            usage_key: Some("k1".into()),
        });
        assert_eq!(decide(&["Bearer s3cr3t"]), alice);
        assert_eq!(decide(&["bEaReR   s3cr3t "]), alice);
        assert_eq!(decide(&["s3cr3t"]), alice);
        assert_eq!(decide(&["plain", "ignored"]), Decision::allow("bob"));
    }

    #[test]
    fn missing_or_malformed_identity_is_unauthorized() {
        for values in [
            &[][..],
            &[""],
            &["  "],
            &["Bearer"],
            &["Bearer "],
            &["Basic s3cr3t"],
            &["Bearer a b"],
        ] {
            assert_eq!(decide(values), Decision::Unauthorized, "{values:?}");
        }
    }

    #[test]
    fn unknown_token_is_denied() {
        assert_eq!(
            decide(&["Bearer nope"]),
            Decision::deny("token not recognised")
        );
        assert_eq!(decide(&["nope"]), Decision::deny("token not recognised"));
    }

    #[test]
    fn config_is_strict() {
        let err =
            config_from_json::<Config>(r#"{ "tokens": { "t": { "principal": "a", "x": 1 } } }"#)
                .err()
                .unwrap();
        assert!(err.to_string().contains("tokens.t"), "{err}");
    }
}
