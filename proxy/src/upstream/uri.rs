//! Integration URI templates: `${origin}/${stageVariables.version}/pets/{id}`.
//!
//! `${...}` references are filled in when config loads (they are fixed per stage); what is left
//! is compiled into literal parts and path-parameter slots, so a request only concatenates.

use std::collections::BTreeMap;
use std::fmt;

use http::Uri;

/// A compiled integration URI for one route in one stage.
#[derive(Clone)]
pub struct UriTemplate {
    parts: Vec<Part>,
    /// `scheme://authority` of the target: which origin's connection pool serves it.
    origin: String,
    /// Sum of the literal parts, to size the output once.
    literal_len: usize,
    has_query: bool,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    /// Index into the route's parameter values.
    Param(usize),
}

impl fmt::Debug for UriTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UriTemplate")
            .field("origin", &self.origin)
            .field("parts", &self.parts)
            .finish()
    }
}

/// Why `substitute` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstituteError {
    /// `${stageVariables.NAME}` names a variable the stage does not define.
    MissingVariable(String),
    /// Anything else, explained.
    Invalid(String),
}

/// Fills `${origin}` and `${stageVariables.NAME}` in an integration URI.
pub fn substitute(
    template: &str,
    origin: Option<&str>,
    variables: &BTreeMap<String, String>,
) -> Result<String, SubstituteError> {
    use SubstituteError::{Invalid, MissingVariable};
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Invalid(format!("unclosed \"${{\" in \"{template}\"")));
        };
        let reference = &after[..end];
        if reference == "origin" {
            let origin = origin.ok_or_else(|| {
                Invalid(
                    "uses ${origin} but the config has no valid `origin`; add `origin: http://HOST:PORT`"
                        .to_owned(),
                )
            })?;
            out.push_str(origin.trim_end_matches('/'));
        } else if let Some(name) = reference.strip_prefix("stageVariables.") {
            let value = variables
                .get(name)
                .ok_or_else(|| MissingVariable(name.to_owned()))?;
            out.push_str(value);
        } else {
            return Err(Invalid(format!(
                "unknown reference \"${{{reference}}}\"; expected ${{origin}} or ${{stageVariables.NAME}}"
            )));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Why an integration URI cannot be compiled; each names the (substituted) URI.
#[derive(Debug, thiserror::Error)]
pub enum UriTemplateError {
    #[error("\"{text}\" must be an absolute http:// or https:// URL")]
    NotAbsolute { text: String },
    #[error("\"{text}\" must name a fixed host (no parameters or credentials in the host)")]
    NotFixedHost { text: String },
    #[error("unclosed '{{' in \"{text}\"")]
    Unclosed { text: String },
    /// A `{name}` that is none of `route_params`.
    #[error(
        "\"{{{name}}}\" is not a parameter of the route; {}",
        route_params_text(route_params)
    )]
    UnknownParameter {
        name: String,
        route_params: Vec<String>,
    },
    #[error("unbalanced '}}' in \"{text}\"")]
    Unbalanced { text: String },
    #[error("\"{text}\" is not a valid URL: {source}")]
    InvalidUrl {
        text: String,
        source: http::uri::InvalidUri,
    },
    #[error("\"{text}\" has no host")]
    NoHost { text: String },
}

fn route_params_text(params: &[String]) -> String {
    if params.is_empty() {
        "the route has no parameters".to_owned()
    } else {
        let names: Vec<String> = params.iter().map(|p| format!("{{{p}}}")).collect();
        format!("the route's parameters are {}", names.join(", "))
    }
}

impl UriTemplate {
    /// Compiles a substituted URI whose `{name}` / `{name+}` placeholders refer to `params`,
    /// the route's parameter names in match order.
    pub fn compile(text: &str, params: &[&str]) -> Result<Self, UriTemplateError> {
        use UriTemplateError as E;
        let after_scheme = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
            .ok_or_else(|| E::NotAbsolute {
                text: text.to_owned(),
            })?;
        let authority_end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
        let authority = &after_scheme[..authority_end];
        if authority.is_empty() || authority.contains(['{', '}', '@']) {
            return Err(E::NotFixedHost {
                text: text.to_owned(),
            });
        }
        let origin_len = text.len() - after_scheme.len() + authority_end;

        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut probe = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| E::Unclosed {
                text: text.to_owned(),
            })?;
            let name = after[..close].trim_end_matches('+');
            let Some(index) = params.iter().position(|p| *p == name) else {
                return Err(E::UnknownParameter {
                    name: name.to_owned(),
                    route_params: params.iter().map(|p| (*p).to_owned()).collect(),
                });
            };
            probe.push_str(&literal);
            probe.push('x');
            parts.push(Part::Literal(std::mem::take(&mut literal)));
            parts.push(Part::Param(index));
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        probe.push_str(&literal);
        if literal.contains('}') {
            return Err(E::Unbalanced {
                text: text.to_owned(),
            });
        }
        parts.push(Part::Literal(literal));
        // Requests carry the origin form (`/path?query`); the pool knows the origin.
        if let Some(Part::Literal(first)) = parts.first_mut() {
            let rest = first.get(origin_len..).unwrap_or_default();
            *first = if rest.starts_with('/') {
                rest.to_owned()
            } else {
                format!("/{rest}")
            };
        }
        parts.retain(|p| !matches!(p, Part::Literal(s) if s.is_empty()));

        let uri: Uri = probe.parse().map_err(|source| E::InvalidUrl {
            text: text.to_owned(),
            source,
        })?;
        if uri.host().is_none() {
            return Err(E::NoHost {
                text: text.to_owned(),
            });
        }
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.len(),
                Part::Param(_) => 0,
            })
            .sum();
        Ok(Self {
            parts,
            origin: text[..origin_len].to_owned(),
            literal_len,
            has_query: uri.query().is_some(),
        })
    }

    /// `scheme://authority` of the target.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The origin-form URI (`/path?query`) for one request: parameters filled in, the client's
    /// query string appended.
    pub fn render(&self, params: &[&str], query: Option<&str>) -> Result<Uri, http::Error> {
        let mut len = self.literal_len + query.map_or(0, |q| q.len() + 1);
        for part in &self.parts {
            if let Part::Param(i) = part {
                len += params.get(*i).map_or(0, |p| p.len());
            }
        }
        let mut out = String::with_capacity(len);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Param(i) => out.push_str(params.get(*i).copied().unwrap_or_default()),
            }
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            out.push(if self.has_query { '&' } else { '?' });
            out.push_str(query);
        }
        Ok(Uri::try_from(out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_origin_and_stage_variables() {
        let vars = BTreeMap::from([("version".to_owned(), "v1".to_owned())]);
        let s = substitute(
            "${origin}/${stageVariables.version}/pets/{id}",
            Some("http://127.0.0.1:9000/"),
            &vars,
        )
        .unwrap();
        assert_eq!(s, "http://127.0.0.1:9000/v1/pets/{id}");
        assert_eq!(
            substitute("${stageVariables.nope}", None, &vars),
            Err(SubstituteError::MissingVariable("nope".into()))
        );
        assert!(matches!(
            substitute("${origin}/x", None, &vars),
            Err(SubstituteError::Invalid(_))
        ));
        assert!(matches!(
            substitute("${foo}", None, &vars),
            Err(SubstituteError::Invalid(_))
        ));
    }

    #[test]
    fn renders_params_and_query() {
        let t =
            UriTemplate::compile("http://o:9000/v1/pets/{id}/{proxy+}", &["id", "proxy"]).unwrap();
        assert_eq!(t.origin(), "http://o:9000");
        let uri = t.render(&["7", "a/b"], Some("x=1&y=2")).unwrap();
        assert_eq!(uri.to_string(), "/v1/pets/7/a/b?x=1&y=2");
        let t = UriTemplate::compile("https://o/search?fixed=1", &[]).unwrap();
        assert_eq!(
            t.render(&[], Some("q=a")).unwrap().to_string(),
            "/search?fixed=1&q=a"
        );
        assert_eq!(t.render(&[], None).unwrap().to_string(), "/search?fixed=1");
    }

    #[test]
    fn origin_only_targets_the_root() {
        for text in ["http://o:9000", "http://o:9000/"] {
            let t = UriTemplate::compile(text, &[]).unwrap();
            assert_eq!(t.render(&[], Some("a=1")).unwrap().to_string(), "/?a=1");
        }
        let t = UriTemplate::compile("http://o?x=1", &[]).unwrap();
        assert_eq!(t.render(&[], None).unwrap().to_string(), "/?x=1");
    }

    #[test]
    fn rejects_bad_templates() {
        for (text, needle) in [
            ("ftp://o/x", "absolute http"),
            ("/x", "absolute http"),
            ("http://{id}/x", "fixed host"),
            ("http://o/{nope}", "not a parameter"),
            ("http://o/{id", "unclosed"),
            ("http://o/id}", "unbalanced"),
            ("http:///x", "fixed host"),
        ] {
            let err = UriTemplate::compile(text, &["id"]).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn compile_and_render_never_panic(text in ".{0,80}", value in "[^/]{0,16}") {
            if let Ok(t) = UriTemplate::compile(&text, &["id"]) {
                let _ = t.render(&[value.as_str()], Some("q=1"));
            }
        }

        #[test]
        fn parameters_land_verbatim(prefix in "(/[a-z0-9]{1,6}){0,3}", value in "[a-zA-Z0-9%._~-]{1,16}") {
            let t = UriTemplate::compile(&format!("http://o:9000{prefix}/{{id}}"), &["id"]).unwrap();
            let uri = t.render(&[value.as_str()], None).unwrap();
            prop_assert_eq!(uri.to_string(), format!("{prefix}/{value}"));
        }
    }
}
