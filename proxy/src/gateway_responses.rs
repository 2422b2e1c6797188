//! Gateway responses: the answers the gateway gives itself (a 404, a 429, a failed plugin), by
//! API Gateway's response types, and the per-API overrides users bring from API Gateway's
//! `gatewayResponses`.
//!
//! Every gateway error names one [`ErrorKind`] (its row in the table in `pipeline::error`): the
//! `x-edgeway-error-type` value, the [`ResponseType`], the status and the default message. An API
//! may override any type in config:
//!
//! ```yaml
//! gateway_responses:
//!   THROTTLED: { status: 429, headers: { retry-hint: "$context.requestId" },
//!                body: '{"error":"$context.error.message","id":"$context.requestId"}' }
//!   DEFAULT_4XX: { headers: { x-team: api } }
//! ```
//!
//! The specific type beats `DEFAULT_4XX` / `DEFAULT_5XX`, which cover every type of their status
//! class that has no override of its own. Templates are API Gateway's: plain `$context.x` and
//! `$stageVariables.x` substitution, not Velocity. An override replaces what it names (status,
//! each header it lists, the body) and leaves the rest of the default response as it is.

use std::collections::HashMap;
use std::fmt::Write as _;

use http::{HeaderName, HeaderValue, StatusCode};

/// API Gateway's gateway response types (all 21 of its enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseType {
    AccessDenied,
    ApiConfigurationError,
    AuthorizerConfigurationError,
    AuthorizerFailure,
    BadRequestParameters,
    BadRequestBody,
    Default4xx,
    Default5xx,
    ExpiredToken,
    IntegrationFailure,
    IntegrationTimeout,
    InvalidApiKey,
    InvalidSignature,
    MissingAuthenticationToken,
    QuotaExceeded,
    RequestTooLarge,
    ResourceNotFound,
    Throttled,
    Unauthorized,
    UnsupportedMediaType,
    WafFiltered,
}

impl ResponseType {
    /// Every type, in API Gateway's (alphabetical) order.
    pub const ALL: [Self; 21] = [
        Self::AccessDenied,
        Self::ApiConfigurationError,
        Self::AuthorizerConfigurationError,
        Self::AuthorizerFailure,
        Self::BadRequestParameters,
        Self::BadRequestBody,
        Self::Default4xx,
        Self::Default5xx,
        Self::ExpiredToken,
        Self::IntegrationFailure,
        Self::IntegrationTimeout,
        Self::InvalidApiKey,
        Self::InvalidSignature,
        Self::MissingAuthenticationToken,
        Self::QuotaExceeded,
        Self::RequestTooLarge,
        Self::ResourceNotFound,
        Self::Throttled,
        Self::Unauthorized,
        Self::UnsupportedMediaType,
        Self::WafFiltered,
    ];

    /// The name as API Gateway writes it: `THROTTLED`, `DEFAULT_4XX`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccessDenied => "ACCESS_DENIED",
            Self::ApiConfigurationError => "API_CONFIGURATION_ERROR",
            Self::AuthorizerConfigurationError => "AUTHORIZER_CONFIGURATION_ERROR",
            Self::AuthorizerFailure => "AUTHORIZER_FAILURE",
            Self::BadRequestParameters => "BAD_REQUEST_PARAMETERS",
            Self::BadRequestBody => "BAD_REQUEST_BODY",
            Self::Default4xx => "DEFAULT_4XX",
            Self::Default5xx => "DEFAULT_5XX",
            Self::ExpiredToken => "EXPIRED_TOKEN",
            Self::IntegrationFailure => "INTEGRATION_FAILURE",
            Self::IntegrationTimeout => "INTEGRATION_TIMEOUT",
            Self::InvalidApiKey => "INVALID_API_KEY",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::RequestTooLarge => "REQUEST_TOO_LARGE",
            Self::ResourceNotFound => "RESOURCE_NOT_FOUND",
            Self::Throttled => "THROTTLED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::WafFiltered => "WAF_FILTERED",
        }
    }

    /// The type named `name`, exactly as API Gateway spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One row of the gateway-response table: what the gateway answers for one kind of error.
#[derive(Debug, PartialEq, Eq)]
pub struct ErrorKind {
    /// The `x-edgeway-error-type` value; API Gateway's type name where the kind is one of its
    /// types, Edgeway's own name (`METHOD_NOT_ALLOWED`, `FUNCTION_FAILURE`) where it is finer.
    pub name: &'static str,
    /// The type an override is looked up by.
    pub response_type: ResponseType,
    pub status: StatusCode,
    /// The client-facing message, unless the error has its own words.
    pub message: &'static str,
    /// `{"message":"<message>"}`, the default body, made once.
    pub body: &'static str,
}

/// A response template: text with `$context.x` and `$stageVariables.x` in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// The variables a gateway response template may use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    /// `$context.error.message`: the message, as text.
    ErrorMessage,
    /// `$context.error.messageString`: the message as a quoted JSON string.
    ErrorMessageString,
    /// `$context.error.responseType`: `THROTTLED`, `DEFAULT_4XX`...
    ErrorResponseType,
    /// `$context.requestId`.
    RequestId,
    /// `$context.stage`.
    Stage,
    /// `$context.apiId`: the API's name.
    ApiId,
    /// `$stageVariables.NAME`; empty when the stage has no such variable.
    StageVariable(String),
}

/// The `$context` variables templates may use, as written.
pub const CONTEXT_VARIABLES: [&str; 6] = [
    "error.message",
    "error.messageString",
    "error.responseType",
    "requestId",
    "stage",
    "apiId",
];

/// A template that names a variable there is no value for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown variable `$context.{0}`; known: {known}", known = known_context_variables())]
    UnknownContextVariable(String),
    #[error("`$stageVariables` needs a name: `$stageVariables.NAME`")]
    StageVariableWithoutName,
}

fn known_context_variables() -> String {
    CONTEXT_VARIABLES
        .map(|v| format!("$context.{v}"))
        .join(", ")
}

/// A name after `$context.` or `$stageVariables.`: identifiers joined by dots (a dot that no
/// identifier follows ends the name, as in "id: $context.requestId.").
fn variable_name(text: &str) -> &str {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut end = 0;
    loop {
        let start = end;
        while end < bytes.len() && ident(bytes[end]) {
            end += 1;
        }
        if end == start {
            // An empty segment: back off the dot that led to it.
            return &text[..start.saturating_sub(1)];
        }
        if end + 1 < bytes.len() && bytes[end] == b'.' && ident(bytes[end + 1]) {
            end += 1;
        } else {
            return &text[..end];
        }
    }
}

impl Template {
    /// Parses `text`; a `$context` variable outside [`CONTEXT_VARIABLES`] is an error. A `$`
    /// that starts neither form is text.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        const CONTEXT: &str = "$context.";
        const STAGE: &str = "$stageVariables";
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            rest = &rest[at..];
            let var = if let Some(after) = rest.strip_prefix(CONTEXT) {
                let name = variable_name(after);
                let var = match name {
                    "error.message" => Var::ErrorMessage,
                    "error.messageString" => Var::ErrorMessageString,
                    "error.responseType" => Var::ErrorResponseType,
                    "requestId" => Var::RequestId,
                    "stage" => Var::Stage,
                    "apiId" => Var::ApiId,
                    _ => return Err(TemplateError::UnknownContextVariable(name.to_owned())),
                };
                rest = &after[name.len()..];
                Some(var)
            } else if let Some(after) = rest.strip_prefix(STAGE) {
                let name = after.strip_prefix('.').map(variable_name).unwrap_or("");
                if name.is_empty() {
                    return Err(TemplateError::StageVariableWithoutName);
                }
                rest = &after[1 + name.len()..];
                Some(Var::StageVariable(name.to_owned()))
            } else {
                None
            };
            match var {
                Some(var) => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Var(var));
                }
                None => {
                    literal.push('$');
                    rest = &rest[1..];
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self(pieces))
    }

    /// The template with `values` filled in.
    pub fn render(&self, values: &TemplateValues<'_>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Var(Var::ErrorMessage) => out.push_str(values.message),
                Piece::Var(Var::ErrorMessageString) => {
                    let _ = write!(out, "{}", serde_json::Value::from(values.message));
                }
                Piece::Var(Var::ErrorResponseType) => out.push_str(values.response_type.name()),
                Piece::Var(Var::RequestId) => out.push_str(values.request_id),
                Piece::Var(Var::Stage) => out.push_str(values.stage),
                Piece::Var(Var::ApiId) => out.push_str(values.api),
                Piece::Var(Var::StageVariable(name)) => {
                    if let Some((_, value)) = values.stage_variables.iter().find(|(n, _)| n == name)
                    {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

/// What a template's variables stand for in one response.
#[derive(Debug, Clone, Copy)]
pub struct TemplateValues<'a> {
    pub message: &'a str,
    pub response_type: ResponseType,
    pub request_id: &'a str,
    pub stage: &'a str,
    pub api: &'a str,
    pub stage_variables: &'a [(String, String)],
}

/// One API's override of one response type.
#[derive(Debug, Clone)]
pub struct GatewayResponse {
    /// Replaces the error's status.
    pub status: Option<StatusCode>,
    /// Set on the response (replacing a default header of the same name).
    pub headers: Vec<(HeaderName, Template)>,
    /// Replaces the body.
    pub body: Option<Template>,
}

impl GatewayResponse {
    /// Applies the override to a default response's status, headers and body.
    pub fn apply(
        &self,
        values: &TemplateValues<'_>,
        status: &mut StatusCode,
        headers: &mut http::HeaderMap,
        body: &mut bytes::Bytes,
    ) {
        if let Some(custom) = self.status {
            *status = custom;
        }
        for (name, template) in &self.headers {
            // A value a variable made unsendable (a newline in a stage variable) is left out.
            if let Ok(value) = HeaderValue::try_from(template.render(values)) {
                headers.insert(name.clone(), value);
            }
        }
        if let Some(template) = &self.body {
            *body = bytes::Bytes::from(template.render(values));
        }
    }
}

/// One API's gateway response overrides (`gateway_responses`).
#[derive(Debug, Clone, Default)]
pub struct GatewayResponses {
    overrides: HashMap<ResponseType, GatewayResponse>,
}

impl GatewayResponses {
    pub fn new(overrides: HashMap<ResponseType, GatewayResponse>) -> Self {
        Self { overrides }
    }

    pub fn is_empty(&self) -> bool {
        self.overrides.is_empty()
    }

    /// The override for an error of `response_type` answered with `status`: the type's own,
    /// else `DEFAULT_4XX` or `DEFAULT_5XX` by the status class.
    pub fn find(
        &self,
        response_type: ResponseType,
        status: StatusCode,
    ) -> Option<&GatewayResponse> {
        self.overrides.get(&response_type).or_else(|| {
            let default = if status.is_client_error() {
                ResponseType::Default4xx
            } else if status.is_server_error() {
                ResponseType::Default5xx
            } else {
                return None;
            };
            self.overrides.get(&default)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> TemplateValues<'static> {
        TemplateValues {
            message: "Too \"Many\" Requests",
            response_type: ResponseType::Throttled,
            request_id: "r-1",
            stage: "prod",
            api: "petstore",
            stage_variables: &[],
        }
    }

    #[test]
    fn every_type_round_trips_by_name() {
        for t in ResponseType::ALL {
            assert_eq!(ResponseType::from_name(t.name()), Some(t));
        }
        assert_eq!(ResponseType::from_name("throttled"), None);
    }

    #[test]
    fn renders_context_and_stage_variables() {
        let template = Template::parse(
            r#"{"error":"$context.error.message","m":$context.error.messageString,"t":"$context.error.responseType","id":"$context.requestId.","at":"$context.apiId/$context.stage","v":"$stageVariables.version","none":"$stageVariables.nope","cost":"$5"}"#,
        )
        .unwrap();
        let vars = [("version".to_owned(), "v1".to_owned())];
        let rendered = template.render(&TemplateValues {
            stage_variables: &vars,
            ..values()
        });
        assert_eq!(
            rendered,
            r#"{"error":"Too "Many" Requests","m":"Too \"Many\" Requests","t":"THROTTLED","id":"r-1.","at":"petstore/prod","v":"v1","none":"","cost":"$5"}"#
        );
    }

    #[test]
    fn unknown_variables_are_refused() {
        assert_eq!(
            Template::parse("x $context.error.nope y"),
            Err(TemplateError::UnknownContextVariable("error.nope".into()))
        );
        assert_eq!(
            Template::parse("$context.identity.sourceIp"),
            Err(TemplateError::UnknownContextVariable(
                "identity.sourceIp".into()
            ))
        );
        assert_eq!(
            Template::parse("$stageVariables."),
            Err(TemplateError::StageVariableWithoutName)
        );
        let message = Template::parse("$context.x").unwrap_err().to_string();
        assert!(message.contains("$context.requestId"), "{message}");
    }

    #[test]
    fn specific_type_beats_the_class_default() {
        let response = |code: u16| GatewayResponse {
            status: Some(StatusCode::from_u16(code).unwrap()),
            headers: Vec::new(),
            body: None,
        };
        let responses = GatewayResponses::new(HashMap::from([
            (ResponseType::Throttled, response(430)),
            (ResponseType::Default4xx, response(499)),
            (ResponseType::Default5xx, response(599)),
        ]));
        let status = |t, s: u16| {
            responses
                .find(t, StatusCode::from_u16(s).unwrap())
                .and_then(|r| r.status)
                .map(|s| s.as_u16())
        };
        assert_eq!(status(ResponseType::Throttled, 429), Some(430));
        assert_eq!(status(ResponseType::InvalidApiKey, 403), Some(499));
        assert_eq!(status(ResponseType::IntegrationTimeout, 504), Some(599));
        assert_eq!(
            GatewayResponses::default()
                .find(ResponseType::Throttled, StatusCode::TOO_MANY_REQUESTS)
                .map(|_| ()),
            None
        );
    }
}
