//! Request validation (pipeline phase 7): required parameters and a JSON Schema for the body,
//! checked before the request can reach a cache or an origin. A failure is a 400 that lists
//! what was wrong; the origin receives nothing.
//!
//! Schemas are compiled once, when config loads ([`BodySchema::compile`]). The draft comes from
//! the schema's `$schema`; a schema without one is read as draft 4, the draft API Gateway
//! models use.

pub mod params;

use std::sync::Arc;

use http::request::Parts;
use jsonschema::Draft;

use crate::validation::params::RequestParam;

/// At most this many body errors are reported to the client.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// Which checks a route runs, as API Gateway's request validators
/// (`validateRequestBody` / `validateRequestParameters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateMode {
    All,
    Body,
    Parameters,
}

impl ValidateMode {
    fn parameters(self) -> bool {
        matches!(self, Self::All | Self::Parameters)
    }

    fn body(self) -> bool {
        matches!(self, Self::All | Self::Body)
    }
}

/// A route's validation (`validation`).
#[derive(Debug, Clone)]
pub struct RequestValidation {
    pub mode: ValidateMode,
    /// Parameters that must be present and non-empty.
    pub required: Vec<RequestParam>,
    /// The schema the body must match.
    pub body: Option<Arc<BodySchema>>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationFailure {
    /// Required parameters are missing; their bare names, and one error line each.
    #[error("missing required request parameters: {}", .errors.join(", "))]
    Parameters {
        names: Vec<String>,
        errors: Vec<String>,
    },
    /// The body is not JSON or does not match the schema.
    #[error("invalid request body: {}", .0.join("; "))]
    Body(Vec<String>),
}

impl RequestValidation {
    /// True when the body has to be read before [`check_body`](Self::check_body).
    pub fn needs_body(&self) -> bool {
        self.mode.body() && self.body.is_some()
    }

    /// Checks the required parameters; `path_values` are the route's path parameter values.
    pub fn check_parameters(
        &self,
        parts: &Parts,
        path_values: &[&str],
    ) -> Result<(), ValidationFailure> {
        if !self.mode.parameters() {
            return Ok(());
        }
        let missing: Vec<&RequestParam> = self
            .required
            .iter()
            .filter(|p| p.value(parts, path_values).is_none_or(|v| v.is_empty()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(ValidationFailure::Parameters {
            names: missing.iter().map(|p| p.name().to_owned()).collect(),
            errors: missing
                .iter()
                .map(|p| match p {
                    RequestParam::Query(name) => format!("missing query parameter {name}"),
                    RequestParam::Header(name) => format!("missing header {name}"),
                    RequestParam::Path { name, .. } => format!("missing path parameter {name}"),
                })
                .collect(),
        })
    }

    /// Checks `body` against the route's schema, if it has one.
    pub fn check_body(&self, body: &[u8]) -> Result<(), ValidationFailure> {
        match &self.body {
            Some(schema) if self.mode.body() => schema.check(body),
            _ => Ok(()),
        }
    }
}

/// Why a schema cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("unsupported $schema \"{uri}\"; expected draft 4, 6, 7, 2019-09 or 2020-12")]
    UnsupportedDraft { uri: String },
    #[error("$schema must be a string, not {value}")]
    DraftNotAString { value: serde_json::Value },
    /// The schema breaks its draft's metaschema, here or at a JSON pointer inside it.
    #[error("not a valid JSON Schema{at}: {0}", at = at_pointer(.0))]
    Invalid(#[source] jsonschema::ValidationError<'static>),
}

/// ` at /properties/x`, or nothing when the schema's root is at fault.
fn at_pointer(error: &jsonschema::ValidationError<'_>) -> String {
    let at = error.instance_path().to_string();
    if at.is_empty() {
        String::new()
    } else {
        format!(" at {at}")
    }
}

/// A compiled JSON Schema.
pub struct BodySchema {
    /// Where it came from (`model Pet`, a file, `inline`), for logs.
    pub origin: String,
    pub draft: Draft,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for BodySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodySchema")
            .field("origin", &self.origin)
            .field("draft", &self.draft)
            .finish_non_exhaustive()
    }
}

impl BodySchema {
    /// Compiles `schema` in the draft its `$schema` names (draft 4 without one). Remote
    /// `$ref`s are not fetched: a schema must be whole.
    pub fn compile(origin: String, schema: &serde_json::Value) -> Result<Self, SchemaError> {
        let draft = match schema.get("$schema") {
            None => Draft::Draft4,
            Some(serde_json::Value::String(uri)) => {
                draft_of(uri).ok_or_else(|| SchemaError::UnsupportedDraft { uri: uri.clone() })?
            }
            Some(other) => {
                return Err(SchemaError::DraftNotAString {
                    value: other.clone(),
                });
            }
        };
        let validator = jsonschema::options()
            .with_draft(draft)
            .build(schema)
            .map_err(SchemaError::Invalid)?;
        Ok(Self {
            origin,
            draft,
            validator,
        })
    }

    /// Parses `body` as JSON and validates it, listing up to [`MAX_REPORTED_ERRORS`] errors as
    /// `<instance path>: <what is wrong>`.
    pub fn check(&self, body: &[u8]) -> Result<(), ValidationFailure> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ValidationFailure::Body(vec!["the body is empty".into()]));
        }
        let instance: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ValidationFailure::Body(vec![format!("the body is not JSON: {e}")]))?;
        if self.validator.is_valid(&instance) {
            return Ok(());
        }
        let errors: Vec<String> = self
            .validator
            .iter_errors(&instance)
            .take(MAX_REPORTED_ERRORS)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                };
                format!("{path}: {e}")
            })
            .collect();
        Err(ValidationFailure::Body(errors))
    }
}

fn draft_of(uri: &str) -> Option<Draft> {
    let uri = uri.trim_end_matches('#');
    [
        ("draft-04", Draft::Draft4),
        ("draft-06", Draft::Draft6),
        ("draft-07", Draft::Draft7),
        ("2019-09", Draft::Draft201909),
        ("2020-12", Draft::Draft202012),
    ]
    .into_iter()
    .find(|(tag, _)| uri.contains(tag))
    .map(|(_, draft)| draft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draft4_is_the_default_and_2020_12_is_detected() {
        // Draft 4's boolean exclusiveMinimum; in 2020-12 it must be a number.
        let d4 = json!({"type": "number", "minimum": 0, "exclusiveMinimum": true});
        let schema = BodySchema::compile("inline".into(), &d4).unwrap();
        assert_eq!(schema.draft, Draft::Draft4);
        assert!(schema.check(b"1").is_ok());
        assert!(schema.check(b"0").is_err());

        let d2020 = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "array",
            "prefixItems": [{"type": "string"}, {"type": "integer"}]
        });
        let schema = BodySchema::compile("inline".into(), &d2020).unwrap();
        assert_eq!(schema.draft, Draft::Draft202012);
        assert!(schema.check(br#"["a", 1]"#).is_ok());
        let Err(ValidationFailure::Body(errors)) = schema.check(br#"["a", "b"]"#) else {
            panic!("expected a body failure");
        };
        assert!(errors[0].starts_with("/1: "), "{errors:?}");
    }

    #[test]
    fn bad_schemas_and_bodies_say_what_is_wrong() {
        let err = BodySchema::compile("inline".into(), &json!({"type": 12}))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not a valid JSON Schema"), "{err}");
        let err = BodySchema::compile("inline".into(), &json!({"$schema": "http://x/y"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported $schema"), "{err}");

        let schema = BodySchema::compile("inline".into(), &json!({"type": "object"})).unwrap();
        assert_eq!(
            schema.check(b"  "),
            Err(ValidationFailure::Body(vec!["the body is empty".into()]))
        );
        let Err(ValidationFailure::Body(errors)) = schema.check(b"{nope") else {
            panic!("expected a body failure");
        };
        assert!(errors[0].starts_with("the body is not JSON"), "{errors:?}");
    }
}
