//! Gateway errors and the one place they become responses.
//!
//! Every error a phase returns maps to one gateway response: a JSON body
//! `{"message": "..."}`, an `x-edgeway-error-type` header naming the kind (API Gateway's
//! gateway-response type where one exists) and the request id. Messages are the ones API
//! Gateway clients already match on; details for the operator go to the log, not the client.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Response, StatusCode};

use crate::body::{BoxError, ResponseBody};
use crate::router::AllowedMethods;
use crate::validation::ValidationFailure;

/// The header naming the kind of gateway error.
pub static X_EDGEWAY_ERROR_TYPE: HeaderName = HeaderName::from_static("x-edgeway-error-type");

/// Why the gateway answered a request itself.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("request path has a dot segment")]
    DotSegment,
    #[error("no route matches the path")]
    NotFound,
    #[error("the path has no route for this method")]
    MethodNotAllowed { allow: AllowedMethods },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("upstream {origin}: {}", chain(source.as_ref()))]
    Upstream { origin: String, source: BoxError },
    #[error("upstream {origin}: no response within {} ms", after.as_millis())]
    Timeout {
        origin: String,
        after: std::time::Duration,
    },
    #[error("no identity, or the authorizer found it not valid")]
    Unauthorized,
    #[error("the authorizer denied the request: {0}")]
    AccessDenied(String),
    #[error("{1}")]
    Plugin(PluginPhase, crate::plugins::PluginError),
    #[error("{0}")]
    Validation(crate::validation::ValidationFailure),
    #[error("the client may not invalidate the cache")]
    CacheInvalidationDenied,
    #[error("missing, unknown or disabled API key, or one whose plan does not cover the stage")]
    InvalidApiKey,
    #[error("{0}")]
    Internal(String),
}

/// Where in the pipeline a plugin failed: it names the error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginPhase {
    Authorizer,
    Transformer,
    Function,
}

/// An error and its causes on one line: "client error (Connect): tcp connect error: Connection refused".
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `{"message": ..., "errors": [...]}`, message first.
fn message_with_errors(message: &str, errors: &[String]) -> Bytes {
    Bytes::from(format!(
        "{{\"message\":{},\"errors\":{}}}",
        serde_json::Value::from(message),
        serde_json::Value::from(errors)
    ))
}

macro_rules! json_message {
    ($text:literal) => {
        concat!("{\"message\":\"", $text, "\"}")
    };
}

impl GatewayError {
    /// Status, error type and client-facing body.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::DotSegment => (
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST_PATH",
                json_message!("Invalid request path"),
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                json_message!("Not Found"),
            ),
            Self::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                json_message!("Method Not Allowed"),
            ),
            Self::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "REQUEST_TOO_LARGE",
                json_message!("Request Too Long"),
            ),
            Self::Upstream { .. } => (
                StatusCode::BAD_GATEWAY,
                "INTEGRATION_FAILURE",
                json_message!("Network error communicating with endpoint"),
            ),
            Self::Timeout { .. } => (
                StatusCode::GATEWAY_TIMEOUT,
                "INTEGRATION_TIMEOUT",
                json_message!("Endpoint request timed out"),
            ),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                json_message!("Unauthorized"),
            ),
            Self::AccessDenied(_) => (
                StatusCode::FORBIDDEN,
                "ACCESS_DENIED",
                json_message!("Forbidden"),
            ),
            Self::Plugin(phase, _) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                match phase {
                    PluginPhase::Authorizer => "AUTHORIZER_FAILURE",
                    PluginPhase::Transformer => "TRANSFORM_FAILURE",
                    PluginPhase::Function => "FUNCTION_FAILURE",
                },
                json_message!("Internal server error"),
            ),
            Self::Validation(ValidationFailure::Parameters { .. }) => (
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST_PARAMETERS",
                json_message!("Missing required request parameters"),
            ),
            Self::Validation(ValidationFailure::Body(_)) => (
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST_BODY",
                json_message!("Invalid request body"),
            ),
            Self::InvalidApiKey => (
                StatusCode::FORBIDDEN,
                "INVALID_API_KEY",
                json_message!("Forbidden"),
            ),
            Self::CacheInvalidationDenied => (
                StatusCode::FORBIDDEN,
                "CACHE_INVALIDATION_DENIED",
                json_message!("Not authorized to invalidate the cache"),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                json_message!("Internal server error"),
            ),
        }
    }

    /// True for errors the operator should hear about (the origin or the gateway failed), as
    /// opposed to a client asking for something that is not there.
    pub fn is_server_side(&self) -> bool {
        matches!(
            self,
            Self::Upstream { .. } | Self::Timeout { .. } | Self::Internal(_) | Self::Plugin(..)
        )
    }

    /// The gateway response for this error (the request id is added by the pipeline).
    pub fn into_response(self) -> Response<ResponseBody> {
        let (status, kind, body) = self.parts();
        let body = match &self {
            // The authorizer's own words, as API Gateway passes a Lambda authorizer's message.
            Self::AccessDenied(message) if !message.is_empty() => {
                Bytes::from(serde_json::json!({ "message": message }).to_string())
            }
            // What was wrong, for the client to fix; API Gateway's message first.
            Self::Validation(ValidationFailure::Parameters { names, errors }) => {
                let message = format!(
                    "Missing required request parameters: [{}]",
                    names.join(", ")
                );
                message_with_errors(&message, errors)
            }
            Self::Validation(ValidationFailure::Body(errors)) => {
                message_with_errors("Invalid request body", errors)
            }
            _ => Bytes::from_static(body.as_bytes()),
        };
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(X_EDGEWAY_ERROR_TYPE.clone(), HeaderValue::from_static(kind));
        if let Self::MethodNotAllowed { allow } = self
            && let Ok(value) = HeaderValue::from_str(&allow.header_value())
        {
            headers.insert(ALLOW, value);
        }
        response
    }
}
