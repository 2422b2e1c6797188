//! Non-proxy integrations as API Gateway REST APIs define them: request and response
//! mapping templates chosen by media type, `passthrough` rules, parameter mappings, and
//! integration responses selected by the integration's status.
//!
//! This module owns the settings (config builds them) and the pure steps: which template,
//! which integration response, what each parameter mapping yields. The pipeline's
//! integration phase (`pipeline/mapped.rs`) does the I/O and runs templates through the
//! mapper plugin (the built-in `mapping-template` component, see [`builtin`]).

pub mod builtin;
mod params;

use std::sync::Arc;

use http::{HeaderName, Method, StatusCode};

pub use params::{ParamError, ParamSource, ParamTarget, Side, Sources};

use crate::upstream::UriTemplate;

/// One mapping template: its text and the id the mapper keeps it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingTemplate {
    /// The first 8 bytes of the text's SHA-256: the same text is the same id everywhere.
    pub id: u64,
    pub source: Arc<str>,
}

impl MappingTemplate {
    pub fn new(source: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, source.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest.as_ref()[..8]);
        Self {
            id: u64::from_be_bytes(id),
            source: Arc::from(source),
        }
    }
}

/// Templates by media type, in config order (`request_templates`, `response_templates`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSet(pub Vec<(String, MappingTemplate)>);

/// `application/json` when a request names no media type, as API Gateway assumes.
pub const DEFAULT_MEDIA_TYPE: &str = "application/json";

/// The media type of a `Content-Type` or `Accept` value: its first entry, without
/// parameters, lower-cased (`application/json; charset=UTF-8` → `application/json`).
pub fn media_type(value: Option<&str>) -> String {
    let first = value
        .and_then(|v| v.split(',').next())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .filter(|v| !v.is_empty());
    first.unwrap_or(DEFAULT_MEDIA_TYPE).to_ascii_lowercase()
}

impl TemplateSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn exact(&self, media_type: &str) -> Option<(&str, &MappingTemplate)> {
        self.0
            .iter()
            .find(|(t, _)| t == media_type)
            .map(|(t, m)| (t.as_str(), m))
    }

    /// The request template for a request's `Content-Type` (exact media type only).
    pub fn for_request(&self, content_type: Option<&str>) -> Option<(&str, &MappingTemplate)> {
        self.exact(&media_type(content_type))
    }

    /// The response template for a request's `Accept`: the one for its first media type,
    /// else `application/json`'s, else the first defined (API Gateway's rule).
    pub fn for_response(&self, accept: Option<&str>) -> Option<(&str, &MappingTemplate)> {
        self.exact(&media_type(accept))
            .or_else(|| self.exact(DEFAULT_MEDIA_TYPE))
            .or_else(|| self.0.first().map(|(t, m)| (t.as_str(), m)))
    }
}

/// What happens to a request body no request template matches (`passthrough`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Passthrough {
    /// Unmapped bodies pass through (`when_no_match`, the default).
    #[default]
    WhenNoMatch,
    /// Pass through only when no templates are defined at all; else 415.
    WhenNoTemplates,
    /// Never pass through: 415 without a matching template.
    Never,
}

/// How bodies that are not text reach templates and the integration (`content_handling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentHandling {
    /// As they are: a body that is not UTF-8 reaches a template with its bad bytes replaced.
    #[default]
    Passthrough,
    /// A body that is not UTF-8 reaches the template base64-encoded (`convert_to_text`).
    ConvertToText,
    /// The request template's output is base64 and is decoded before it is sent
    /// (`convert_to_binary`).
    ConvertToBinary,
}

/// One `request_parameters` entry: `integration.request.header.x-user` ← a source.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestParameter {
    pub target: ParamTarget,
    pub source: ParamSource,
}

/// One entry of `responses`.
#[derive(Debug, Clone)]
pub struct IntegrationResponse {
    /// `selection_pattern`, matched against the whole integration status; `None` for the
    /// default response.
    pub pattern: Option<regex::Regex>,
    /// The method response's status.
    pub status: StatusCode,
    /// `response_parameters`: `method.response.header.NAME` ← a source.
    pub headers: Vec<(HeaderName, ParamSource)>,
    pub templates: TemplateSet,
}

/// How a non-proxy integration maps requests and responses.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub request_templates: TemplateSet,
    pub passthrough: Passthrough,
    pub request_parameters: Vec<RequestParameter>,
    pub content_handling: ContentHandling,
    /// In config order; the first whose pattern matches wins, else the default.
    pub responses: Vec<IntegrationResponse>,
}

impl Mapping {
    /// The integration response for an integration status: the first whose
    /// `selection_pattern` matches all of it, else the default one. `None` when neither.
    pub fn response_for(&self, status: u16) -> Option<&IntegrationResponse> {
        let text = status.to_string();
        self.responses
            .iter()
            .find(|r| r.pattern.as_ref().is_some_and(|p| p.is_match(&text)))
            .or_else(|| self.responses.iter().find(|r| r.pattern.is_none()))
    }

    /// Whether any template is defined (the mapper plugin is then needed).
    pub fn has_templates(&self) -> bool {
        !self.request_templates.is_empty() || self.responses.iter().any(|r| !r.templates.is_empty())
    }
}

/// An `http` (non-proxy) integration.
#[derive(Debug, Clone)]
pub struct HttpIntegration {
    /// The integration request's method; `None` keeps the client's.
    pub method: Option<Method>,
    /// One per stage of the API, in its order; `{name}` is `integration.request.path.name`.
    pub per_stage: Vec<UriTemplate>,
    /// The names the URI's `{...}` refer to, in the order `UriTemplate::render` takes them.
    pub path_names: Vec<String>,
    pub mapping: Arc<Mapping>,
}

/// An `aws` integration: an AWS service's action or path, called with the request the
/// templates build and signed with the integration's keys.
#[derive(Debug, Clone)]
pub struct AwsIntegration {
    /// The service, its region and the action or path.
    pub call: Arc<crate::upstream::aws::AwsUri>,
    /// `X-Amz-Target` for an action of a JSON service, made once.
    pub amz_target: Option<http::HeaderValue>,
    /// The integration request's method: `POST` for query and JSON services; `None` keeps
    /// the client's (a REST service such as S3 without `method`).
    pub method: Option<Method>,
    /// The endpoint and path, one per stage of the API, in its order; `{name}` is
    /// `integration.request.path.name` or the route's parameter.
    pub per_stage: Vec<UriTemplate>,
    pub path_names: Vec<String>,
    pub credentials: Arc<crate::upstream::aws::AwsCredentials>,
    pub mapping: Arc<Mapping>,
}

/// A `mock` integration with templates: the request template chooses the status
/// (`{"statusCode": 404}`), and the integration responses map it.
#[derive(Debug, Clone)]
pub struct MockMapping {
    pub mapping: Arc<Mapping>,
}

/// Compiles a `selection_pattern`: a regular expression that must match the whole status.
pub fn selection_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(types: &[&str]) -> TemplateSet {
        TemplateSet(
            types
                .iter()
                .map(|t| ((*t).to_owned(), MappingTemplate::new(t)))
                .collect(),
        )
    }

    #[test]
    fn templates_are_chosen_as_api_gateway_chooses_them() {
        let both = set(&["application/xml", "application/json"]);
        assert_eq!(
            both.for_request(None).map(|t| t.0),
            Some("application/json")
        );
        assert_eq!(
            both.for_request(Some("Application/XML; charset=UTF-8"))
                .map(|t| t.0),
            Some("application/xml")
        );
        assert!(both.for_request(Some("text/plain")).is_none());
        assert_eq!(
            both.for_response(Some("text/html, application/xml"))
                .map(|t| t.0),
            Some("application/json"),
            "only the first media type of Accept counts"
        );
        let xml_only = set(&["application/xml"]);
        assert_eq!(
            xml_only.for_response(Some("text/plain")).map(|t| t.0),
            Some("application/xml"),
            "no match and no JSON template: the first one"
        );
        assert_eq!(MappingTemplate::new("a").id, MappingTemplate::new("a").id);
        assert_ne!(MappingTemplate::new("a").id, MappingTemplate::new("b").id);
    }

    #[test]
    fn integration_responses_are_selected_by_the_whole_status() {
        let response = |pattern: Option<&str>, status: u16| IntegrationResponse {
            pattern: pattern.map(|p| selection_pattern(p).unwrap()),
            status: StatusCode::from_u16(status).unwrap(),
            headers: Vec::new(),
            templates: TemplateSet::default(),
        };
        let mapping = Mapping {
            responses: vec![
                response(Some("4\\d{2}"), 400),
                response(None, 200),
                response(Some("5.*"), 502),
            ],
            ..Mapping::default()
        };
        let status = |s| mapping.response_for(s).map(|r| r.status.as_u16());
        assert_eq!(status(404), Some(400));
        assert_eq!(status(503), Some(502));
        assert_eq!(status(201), Some(200));
        assert_eq!(
            status(4000),
            Some(200),
            "a pattern matches the whole status"
        );
        assert!(Mapping::default().response_for(200).is_none());
    }
}
