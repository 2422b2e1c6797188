//! Request parameters a route names by `query.x`, `header.x` or `path.x`: the parts of a
//! request that separate cache entries (`cache.key`) and that request validation requires
//! (`validation.required`). Parsed once when config loads; read per request.

use std::borrow::Cow;

use http::HeaderName;
use http::request::Parts;

/// One named request parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestParam {
    /// A query-string parameter, compared after percent-decoding.
    Query(String),
    Header(HeaderName),
    /// A path parameter of the route, by its position in the route's parameters.
    Path {
        name: String,
        index: usize,
    },
}

/// Why a `cache.key` or `validation.required` entry names no request parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestParamError {
    #[error("invalid parameter \"{text}\"; expected query.NAME, header.NAME or path.NAME")]
    Invalid { text: String },
    #[error("\"{name}\" in \"{text}\" is not a valid header name")]
    HeaderName { name: String, text: String },
    /// `path.NAME` where the route has no `{NAME}`; `route_params` are the ones it has.
    #[error(
        "the route has no path parameter \"{name}\"{}",
        path_param_help(name, route_params)
    )]
    NoPathParameter {
        name: String,
        route_params: Vec<String>,
    },
}

/// What the route has instead, and the nearest name.
fn path_param_help(name: &str, route_params: &[String]) -> String {
    let hint = crate::suggest::did_you_mean(name, route_params.iter().map(String::as_str))
        .map(|d| format!("; did you mean \"path.{d}\"?"))
        .unwrap_or_default();
    let has = if route_params.is_empty() {
        " (it has none)".to_owned()
    } else {
        format!(" (it has: {})", route_params.join(", "))
    };
    format!("{has}{hint}")
}

impl RequestParam {
    /// Parses `query.x`, `header.x` or `path.x` (and API Gateway's
    /// `method.request.querystring.x` / `method.request.header.x` / `method.request.path.x`);
    /// `path_params` are the route's parameter names.
    pub fn parse(text: &str, path_params: &[&str]) -> Result<Self, RequestParamError> {
        let trimmed = text.trim();
        let rest = trimmed.strip_prefix("method.request.").unwrap_or(trimmed);
        let invalid = || RequestParamError::Invalid { text: text.into() };
        let (kind, name) = rest.split_once('.').ok_or_else(invalid)?;
        if name.is_empty() {
            return Err(invalid());
        }
        match kind {
            "query" | "querystring" => Ok(Self::Query(name.to_owned())),
            "header" => HeaderName::from_bytes(name.as_bytes())
                .map(Self::Header)
                .map_err(|_| RequestParamError::HeaderName {
                    name: name.into(),
                    text: text.into(),
                }),
            "path" => {
                let name = name.trim_end_matches('+');
                path_params
                    .iter()
                    .position(|p| *p == name)
                    .map(|index| Self::Path {
                        name: name.to_owned(),
                        index,
                    })
                    .ok_or_else(|| RequestParamError::NoPathParameter {
                        name: name.into(),
                        route_params: path_params.iter().map(|p| (*p).to_owned()).collect(),
                    })
            }
            _ => Err(invalid()),
        }
    }

    /// The parameter as written in config: `query.page`, `header.x-tenant`, `path.id`.
    pub fn label(&self) -> String {
        match self {
            Self::Query(name) => format!("query.{name}"),
            Self::Header(name) => format!("header.{name}"),
            Self::Path { name, .. } => format!("path.{name}"),
        }
    }

    /// The bare name, as API Gateway lists missing parameters.
    pub fn name(&self) -> &str {
        match self {
            Self::Query(name) | Self::Path { name, .. } => name,
            Self::Header(name) => name.as_str(),
        }
    }

    /// The parameter's value in a request, `None` when it is absent. `path_values` are the
    /// route's path parameter values in order. A header sent more than once gives its first
    /// value; a header that is not text is treated as absent.
    pub fn value<'a>(&self, parts: &'a Parts, path_values: &[&'a str]) -> Option<Cow<'a, str>> {
        match self {
            Self::Query(name) => {
                crate::encoding::query_param(parts.uri.query()?, name).map(Cow::Owned)
            }
            Self::Header(name) => parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed),
            Self::Path { index, .. } => path_values.get(*index).map(|v| Cow::Borrowed(*v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RequestParam;

    #[test]
    fn parses_every_form() {
        let params = ["id", "proxy"];
        assert_eq!(
            RequestParam::parse("query.page", &params),
            Ok(RequestParam::Query("page".into()))
        );
        assert_eq!(
            RequestParam::parse("method.request.querystring.page", &params),
            Ok(RequestParam::Query("page".into()))
        );
        assert_eq!(
            RequestParam::parse("header.X-Tenant", &params),
            Ok(RequestParam::Header(http::HeaderName::from_static(
                "x-tenant"
            )))
        );
        assert_eq!(
            RequestParam::parse("path.proxy+", &params),
            Ok(RequestParam::Path {
                name: "proxy".into(),
                index: 1
            })
        );
        let err = RequestParam::parse("path.idd", &params)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean \"path.id\""), "{err}");
        assert!(RequestParam::parse("cookie.x", &params).is_err());
        assert!(RequestParam::parse("query.", &params).is_err());
        assert!(RequestParam::parse("header.bad name", &params).is_err());
    }
}
