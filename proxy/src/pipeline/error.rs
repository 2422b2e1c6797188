//! Gateway errors and the one place they become responses.
//!
//! Every error a phase returns maps to one gateway response: a JSON body
//! `{"message": "..."}`, an `x-edgeway-error-type` header naming the kind (API Gateway's
//! gateway-response type where one exists) and the request id. Messages are the ones API
//! Gateway clients already match on; details for the operator go to the log, not the client.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode};

use crate::auth::sigv4::SigV4Error;
use crate::body::{BoxError, ResponseBody};
use crate::router::AllowedMethods;
use crate::validation::ValidationFailure;

/// IETF `RateLimit-Policy`: the limits that apply, as `"name";q=QUOTA;w=WINDOW-SECONDS`.
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// IETF `RateLimit`: what remains, as `"name";r=REMAINING;t=SECONDS`.
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

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
    /// A JWT authorizer refused the token (401 with `WWW-Authenticate`).
    #[error("JWT refused: {0}")]
    InvalidToken(crate::auth::jwt::JwtError),
    /// A valid JWT without any of the route's scopes; the `WWW-Authenticate` value of the 403.
    #[error("the token has none of the route's scopes")]
    InsufficientScope(HeaderValue),
    /// A SigV4 authorizer refused the signature (403, the verifier's message).
    #[error("SigV4: {0}")]
    Signature(crate::auth::sigv4::SigV4Error),
    #[error("{1}")]
    Plugin(PluginPhase, crate::plugins::PluginError),
    #[error("{0}")]
    Validation(crate::validation::ValidationFailure),
    #[error("the client may not invalidate the cache")]
    CacheInvalidationDenied,
    #[error("missing, unknown or disabled API key, or one whose plan does not cover the stage")]
    InvalidApiKey,
    /// The route's resource policy refused the source IP: in `deny` (`explicit`), or not in a
    /// non-empty `allow`. `resource` is the ARN-shaped name the message gives.
    #[error("the resource policy refuses source IP {source_ip}")]
    ResourcePolicy {
        source_ip: std::net::IpAddr,
        explicit: bool,
        resource: String,
    },
    #[error("over the {} limit; retry after {} s", .0.scope.name(), .0.retry_after.as_secs())]
    Throttled(crate::throttle::Refusal),
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
            Self::InvalidToken(_) => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                json_message!("Unauthorized"),
            ),
            Self::InsufficientScope(_) => (
                StatusCode::FORBIDDEN,
                "ACCESS_DENIED",
                json_message!("Forbidden"),
            ),
            Self::Signature(e) => (
                e.status(),
                match e {
                    SigV4Error::MissingAuthentication => "MISSING_AUTHENTICATION_TOKEN",
                    SigV4Error::PayloadNotBuffered => "INTERNAL_ERROR",
                    _ => "INVALID_SIGNATURE",
                },
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
            Self::ResourcePolicy { .. } => (
                StatusCode::FORBIDDEN,
                "ACCESS_DENIED",
                json_message!("Forbidden"),
            ),
            Self::Throttled(refusal) if refusal.scope == crate::throttle::Scope::Quota => (
                StatusCode::TOO_MANY_REQUESTS,
                "QUOTA_EXCEEDED",
                json_message!("Limit Exceeded"),
            ),
            Self::Throttled(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "THROTTLED",
                json_message!("Too Many Requests"),
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
            // API Gateway's words for a resource-policy denial.
            Self::ResourcePolicy {
                explicit, resource, ..
            } => {
                let message = format!(
                    "User: anonymous is not authorized to perform: execute-api:Invoke on resource: {resource}{}",
                    if *explicit {
                        " with an explicit deny"
                    } else {
                        ""
                    }
                );
                Bytes::from(serde_json::json!({ "message": message }).to_string())
            }
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
            // Which part of the signature failed, in AWS's words.
            Self::Signature(e) if !matches!(e, SigV4Error::PayloadNotBuffered) => {
                Bytes::from(serde_json::json!({ "message": e.to_string() }).to_string())
            }
            _ => Bytes::from_static(body.as_bytes()),
        };
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(X_EDGEWAY_ERROR_TYPE.clone(), HeaderValue::from_static(kind));
        match &self {
            Self::InvalidToken(e) => {
                headers.insert(WWW_AUTHENTICATE, e.www_authenticate());
            }
            Self::InsufficientScope(challenge) => {
                headers.insert(WWW_AUTHENTICATE, challenge.clone());
            }
            // What AWS SDKs read to name the exception.
            Self::Signature(e) => {
                headers.insert(
                    HeaderName::from_static("x-amzn-errortype"),
                    HeaderValue::from_static(e.error_type()),
                );
            }
            _ => {}
        }
        if let Self::MethodNotAllowed { allow } = &self
            && let Ok(value) = HeaderValue::from_str(&allow.header_value())
        {
            headers.insert(ALLOW, value);
        }
        if let Self::Throttled(refusal) = self {
            headers.insert(
                http::header::RETRY_AFTER,
                refusal.retry_after.as_secs().into(),
            );
            headers.insert(RATELIMIT_POLICY.clone(), refusal.policy);
            headers.insert(RATELIMIT.clone(), refusal.state);
        }
        response
    }
}
