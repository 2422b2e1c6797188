//! Parameter mapping expressions (`request_parameters`, `response_parameters`), as API
//! Gateway REST APIs write them: `integration.request.header.x-user` ←
//! `method.request.querystring.user`, `'static'`, `context.requestId`, ...

use http::{HeaderMap, HeaderName};

use edgeway_velocity::Value;
use edgeway_velocity::jsonpath::Path;

/// Where a mapped value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamSource {
    /// `method.request.path.NAME`
    Path(String),
    /// `method.request.querystring.NAME`: the last value of a repeated name.
    Query(String),
    /// `method.request.multivaluequerystring.NAME`: every value.
    MultiQuery(String),
    /// `method.request.header.NAME`: the last value.
    Header(HeaderName),
    /// `method.request.multivalueheader.NAME`: every value.
    MultiHeader(HeaderName),
    /// `method.request.body`, or `method.request.body.JSONPATH`.
    Body(Option<Path>),
    /// `integration.response.header.NAME`
    IntegrationHeader(HeaderName),
    /// `integration.response.multivalueheader.NAME`
    IntegrationMultiHeader(HeaderName),
    /// `integration.response.body`, or `integration.response.body.JSONPATH`.
    IntegrationBody(Option<Path>),
    /// `stageVariables.NAME`
    StageVariable(String),
    /// `context.NAME[.NAME...]`: a `$context` variable.
    Context(Vec<String>),
    /// `'value'`
    Static(String),
}

/// Where a mapped value goes.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamTarget {
    /// `integration.request.header.NAME`
    Header(HeaderName),
    /// `integration.request.path.NAME`: fills `{NAME}` in the integration URI.
    Path(String),
    /// `integration.request.querystring.NAME`
    Query(String),
}

/// Why a mapping expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error(
        "{0:?} is not a source: expected method.request.(path|querystring|multivaluequerystring|header|multivalueheader).NAME, method.request.body[.JSONPath], stageVariables.NAME, context.NAME or 'static'"
    )]
    UnknownRequestSource(String),
    #[error(
        "{0:?} is not a source: expected integration.response.(header|multivalueheader).NAME, integration.response.body[.JSONPath], stageVariables.NAME, context.NAME or 'static'"
    )]
    UnknownResponseSource(String),
    #[error(
        "{0:?} is not a target: expected integration.request.header.NAME, integration.request.path.NAME or integration.request.querystring.NAME"
    )]
    UnknownRequestTarget(String),
    #[error("{0:?} is not a target: expected method.response.header.NAME")]
    UnknownResponseTarget(String),
    #[error("{0:?}: the name is empty or not a valid header name")]
    BadName(String),
    #[error("{text:?}: {why}")]
    BadPath { text: String, why: String },
}

/// Which side of the integration an expression is read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

fn name(text: &str, rest: &str) -> Result<String, ParamError> {
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParamError::BadName(text.to_owned()));
    }
    Ok(rest.to_owned())
}

fn header(text: &str, rest: &str) -> Result<HeaderName, ParamError> {
    HeaderName::from_bytes(rest.as_bytes()).map_err(|_| ParamError::BadName(text.to_owned()))
}

fn body_path(text: &str, rest: Option<&str>) -> Result<Option<Path>, ParamError> {
    rest.map(|p| {
        Path::parse(&format!("$.{p}")).map_err(|why| ParamError::BadPath {
            text: text.to_owned(),
            why,
        })
    })
    .transpose()
}

impl ParamSource {
    /// Parses a source as written on `side`.
    pub fn parse(text: &str, side: Side) -> Result<Self, ParamError> {
        let text = text.trim();
        if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
            return Ok(Self::Static(text[1..text.len() - 1].to_owned()));
        }
        if let Some(rest) = text.strip_prefix("stageVariables.") {
            return Ok(Self::StageVariable(name(text, rest)?));
        }
        if let Some(rest) = text.strip_prefix("context.") {
            let parts: Vec<String> = rest.split('.').map(str::to_owned).collect();
            if parts.iter().any(String::is_empty) {
                return Err(ParamError::BadName(text.to_owned()));
            }
            return Ok(Self::Context(parts));
        }
        let unknown = || match side {
            Side::Request => ParamError::UnknownRequestSource(text.to_owned()),
            Side::Response => ParamError::UnknownResponseSource(text.to_owned()),
        };
        let prefix = match side {
            Side::Request => "method.request.",
            Side::Response => "integration.response.",
        };
        let rest = text.strip_prefix(prefix).ok_or_else(unknown)?;
        let body = |path| {
            Ok(match side {
                Side::Request => Self::Body(body_path(text, path)?),
                Side::Response => Self::IntegrationBody(body_path(text, path)?),
            })
        };
        if rest == "body" {
            return body(None);
        }
        if let Some(path) = rest.strip_prefix("body.") {
            return body(Some(path));
        }
        let (kind, rest) = rest.split_once('.').ok_or_else(unknown)?;
        match (side, kind) {
            (Side::Request, "path") => Ok(Self::Path(name(text, rest)?)),
            (Side::Request, "querystring") => Ok(Self::Query(name(text, rest)?)),
            (Side::Request, "multivaluequerystring") => Ok(Self::MultiQuery(name(text, rest)?)),
            (Side::Request, "header") => Ok(Self::Header(header(text, rest)?)),
            (Side::Request, "multivalueheader") => Ok(Self::MultiHeader(header(text, rest)?)),
            (Side::Response, "header") => Ok(Self::IntegrationHeader(header(text, rest)?)),
            (Side::Response, "multivalueheader") => {
                Ok(Self::IntegrationMultiHeader(header(text, rest)?))
            }
            _ => Err(unknown()),
        }
    }

    /// The values this source has for one request (none: the target is left unset).
    pub fn resolve(&self, sources: &Sources<'_>) -> Vec<String> {
        let last = |values: Vec<String>| values.into_iter().last().into_iter().collect();
        match self {
            Self::Path(name) => sources
                .path
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .into_iter()
                .collect(),
            Self::Query(name) => last(query_values(sources.query, name)),
            Self::MultiQuery(name) => query_values(sources.query, name),
            Self::Header(name) => last(header_values(sources.headers, name)),
            Self::MultiHeader(name) => header_values(sources.headers, name),
            Self::Body(path) => body_value(sources.body, path.as_ref()),
            Self::IntegrationHeader(name) => last(
                sources
                    .integration_headers
                    .map_or_else(Vec::new, |h| header_values(h, name)),
            ),
            Self::IntegrationMultiHeader(name) => sources
                .integration_headers
                .map_or_else(Vec::new, |h| header_values(h, name)),
            Self::IntegrationBody(path) => {
                body_value(sources.integration_body.unwrap_or_default(), path.as_ref())
            }
            Self::StageVariable(name) => sources
                .stage_variables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .into_iter()
                .collect(),
            Self::Context(path) => {
                let mut value = sources
                    .parsed
                    .get_or_init(|| serde_json::from_str(sources.context_text).unwrap_or_default());
                for part in path {
                    match value.get(part) {
                        Some(v) => value = v,
                        None => return Vec::new(),
                    }
                }
                match value {
                    serde_json::Value::Null => Vec::new(),
                    serde_json::Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                }
            }
            Self::Static(value) => vec![value.clone()],
        }
    }
}

impl ParamTarget {
    /// Parses a request target (`integration.request.*`).
    pub fn parse_request(text: &str) -> Result<Self, ParamError> {
        let text = text.trim();
        let unknown = || ParamError::UnknownRequestTarget(text.to_owned());
        let rest = text
            .strip_prefix("integration.request.")
            .ok_or_else(unknown)?;
        let (kind, rest) = rest.split_once('.').ok_or_else(unknown)?;
        match kind {
            "header" => Ok(Self::Header(header(text, rest)?)),
            "path" => Ok(Self::Path(name(text, rest)?)),
            "querystring" => Ok(Self::Query(name(text, rest)?)),
            _ => Err(unknown()),
        }
    }

    /// Parses a response target (`method.response.header.NAME`).
    pub fn parse_response(text: &str) -> Result<HeaderName, ParamError> {
        let text = text.trim();
        let rest = text
            .strip_prefix("method.response.header.")
            .ok_or_else(|| ParamError::UnknownResponseTarget(text.to_owned()))?;
        header(text, rest)
    }
}

/// What one request offers parameter mappings.
#[derive(Debug)]
pub struct Sources<'a> {
    /// The route's path parameters by name.
    pub path: &'a [(String, String)],
    /// The raw query string.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub stage_variables: &'a [(String, String)],
    /// `$context` as the templates see it, as JSON text: parsed (into `parsed`) only when a
    /// `context.*` source reads it.
    pub context_text: &'a str,
    pub parsed: &'a std::sync::OnceLock<serde_json::Value>,
    /// On the way back: the integration's answer.
    pub integration_headers: Option<&'a HeaderMap>,
    pub integration_body: Option<&'a [u8]>,
}

fn query_values(query: Option<&str>, name: &str) -> Vec<String> {
    query.map_or_else(Vec::new, |q| {
        form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .collect()
    })
}

fn header_values(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// A body, or the value a JSONPath selects in it (a string as itself, anything else as
/// JSON).
fn body_value(body: &[u8], path: Option<&Path>) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let Some(path) = path else {
        return vec![text.into_owned()];
    };
    let Ok(document) = Value::from_json(&text) else {
        return Vec::new();
    };
    match path.select(&document) {
        Value::Null => Vec::new(),
        Value::Str(s) => vec![s.to_string()],
        other => vec![other.to_json()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_resolve_from_the_request_and_the_answer() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        let mut answer = HeaderMap::new();
        answer.append("location", "/there".parse().unwrap());
        let context =
            serde_json::json!({"requestId": "r1", "authorizer": {"principalId": "alice"}})
                .to_string();
        let parsed = std::sync::OnceLock::new();
        let sources = Sources {
            path: &[("id".into(), "7".into())],
            query: Some("user=bo+b&tag=a&tag=b"),
            headers: &headers,
            body: br#"{"a":{"b":[1,{"c":"x"}]}}"#,
            stage_variables: &[("env".into(), "prod".into())],
            context_text: &context,
            parsed: &parsed,
            integration_headers: Some(&answer),
            integration_body: Some(br#"{"redirect":{"url":"https://example.com/"}}"#),
        };
        let request = |s: &str| {
            ParamSource::parse(s, Side::Request)
                .unwrap()
                .resolve(&sources)
        };
        let response = |s: &str| {
            ParamSource::parse(s, Side::Response)
                .unwrap()
                .resolve(&sources)
        };
        assert_eq!(request("method.request.path.id"), ["7"]);
        assert_eq!(request("method.request.querystring.user"), ["bo b"]);
        assert_eq!(request("method.request.querystring.tag"), ["b"]);
        assert_eq!(
            request("method.request.multivaluequerystring.tag"),
            ["a", "b"]
        );
        assert_eq!(request("method.request.header.x-a"), ["2"]);
        assert_eq!(request("method.request.multivalueheader.x-a"), ["1", "2"]);
        assert_eq!(request("method.request.body.a.b[1].c"), ["x"]);
        assert_eq!(request("method.request.body.a.b[0]"), ["1"]);
        assert_eq!(
            request("method.request.body"),
            [r#"{"a":{"b":[1,{"c":"x"}]}}"#]
        );
        assert_eq!(request("stageVariables.env"), ["prod"]);
        assert_eq!(request("context.authorizer.principalId"), ["alice"]);
        assert_eq!(request("'fixed'"), ["fixed"]);
        assert!(request("method.request.querystring.none").is_empty());
        assert_eq!(response("integration.response.header.location"), ["/there"]);
        assert_eq!(
            response("integration.response.body.redirect.url"),
            ["https://example.com/"]
        );
        assert!(ParamSource::parse("integration.response.body", Side::Request).is_err());
        assert!(ParamSource::parse("method.request.cookie.a", Side::Request).is_err());
        assert_eq!(
            ParamTarget::parse_request("integration.request.header.x-user").unwrap(),
            ParamTarget::Header(HeaderName::from_static("x-user"))
        );
        assert!(ParamTarget::parse_request("integration.request.body").is_err());
        assert!(ParamTarget::parse_response("method.response.header.Location").is_ok());
    }
}
