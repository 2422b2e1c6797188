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
use crate::gateway_responses::{ErrorKind, GatewayResponses, ResponseType, TemplateValues};
use crate::router::AllowedMethods;
use crate::telemetry::chain;
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
    /// The request's head is ambiguous or breaks HTTP's rules (what, for the log).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A request to a WebSocket API's stage that is not a WebSocket upgrade (what is missing).
    #[error("not a WebSocket upgrade: {0}")]
    UpgradeRequired(&'static str),
    /// The client's body could not be read: bad chunked framing, or cut off.
    #[error("reading the request body: {}", chain(.0.as_ref()))]
    ClientBody(BoxError),
    /// The client stopped sending its body (`limits.body_read_timeout_ms`): 408.
    #[error("the client stopped sending the request body")]
    BodyTimeout,
    #[error("no route matches the path")]
    NotFound,
    /// A request on a custom domain whose path no base path mapping covers.
    #[error("domain {0}: no base path mapping covers the path")]
    UnmappedPath(String),
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
    /// No request template for the request's Content-Type, and the integration's
    /// `passthrough` does not pass it through.
    #[error("no mapping template for content type {0}")]
    UnsupportedMediaType(String),
    /// A mapping template failed on this request, or the mapper did.
    #[error("{0}")]
    Mapping(crate::plugins::MapError),
    /// The integration answered with a status no integration response selects, and there is
    /// no default one.
    #[error("no integration response for status {0}")]
    NoIntegrationResponse(u16),
    #[error("{0}")]
    Internal(String),
}

/// Where in the pipeline a plugin failed: it names the error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginPhase {
    Authorizer,
    Transformer,
    Function,
    /// A `lambda` plugin behind an `aws-proxy-*` integration: it failed, or what it returned
    /// is not a response API Gateway would send.
    Lambda,
}

/// `{"message": ..., "errors": [...]}`, message first.
fn message_with_errors(message: &str, errors: &[String]) -> Bytes {
    Bytes::from(format!(
        "{{\"message\":{},\"errors\":{}}}",
        serde_json::Value::from(message),
        serde_json::Value::from(errors)
    ))
}

/// A row of the table: `x-edgeway-error-type`, response type, status and message.
macro_rules! kind {
    ($name:literal, $type:ident, $status:ident, $message:literal) => {
        ErrorKind {
            name: $name,
            response_type: ResponseType::$type,
            status: StatusCode::$status,
            message: $message,
            body: concat!("{\"message\":\"", $message, "\"}"),
        }
    };
}

/// The gateway-response table: every kind of gateway error, once. Messages are the ones API
/// Gateway clients match on; Edgeway's finer kinds fall back to `DEFAULT_4XX` / `DEFAULT_5XX`
/// for overrides.
pub mod kinds {
    use super::{ErrorKind, ResponseType, StatusCode};

    pub const BAD_REQUEST: ErrorKind = kind!("BAD_REQUEST", Default4xx, BAD_REQUEST, "Bad Request");
    pub const BAD_REQUEST_PATH: ErrorKind = kind!(
        "BAD_REQUEST_PATH",
        Default4xx,
        BAD_REQUEST,
        "Invalid request path"
    );
    pub const RESOURCE_NOT_FOUND: ErrorKind = kind!(
        "RESOURCE_NOT_FOUND",
        ResourceNotFound,
        NOT_FOUND,
        "Not Found"
    );
    pub const METHOD_NOT_ALLOWED: ErrorKind = kind!(
        "METHOD_NOT_ALLOWED",
        Default4xx,
        METHOD_NOT_ALLOWED,
        "Method Not Allowed"
    );
    pub const REQUEST_TOO_LARGE: ErrorKind = kind!(
        "REQUEST_TOO_LARGE",
        RequestTooLarge,
        PAYLOAD_TOO_LARGE,
        "Request Too Long"
    );
    pub const INTEGRATION_FAILURE: ErrorKind = kind!(
        "INTEGRATION_FAILURE",
        IntegrationFailure,
        BAD_GATEWAY,
        "Network error communicating with endpoint"
    );
    pub const INTEGRATION_TIMEOUT: ErrorKind = kind!(
        "INTEGRATION_TIMEOUT",
        IntegrationTimeout,
        GATEWAY_TIMEOUT,
        "Endpoint request timed out"
    );
    pub const UNAUTHORIZED: ErrorKind =
        kind!("UNAUTHORIZED", Unauthorized, UNAUTHORIZED, "Unauthorized");
    pub const ACCESS_DENIED: ErrorKind =
        kind!("ACCESS_DENIED", AccessDenied, FORBIDDEN, "Forbidden");
    /// A custom domain's path that no base path maps: API Gateway's bare 403.
    pub const BASE_PATH_NOT_MAPPED: ErrorKind =
        kind!("BASE_PATH_NOT_MAPPED", Default4xx, FORBIDDEN, "Forbidden");
    pub const MISSING_AUTHENTICATION_TOKEN: ErrorKind = kind!(
        "MISSING_AUTHENTICATION_TOKEN",
        MissingAuthenticationToken,
        FORBIDDEN,
        "Forbidden"
    );
    pub const INVALID_SIGNATURE: ErrorKind = kind!(
        "INVALID_SIGNATURE",
        InvalidSignature,
        FORBIDDEN,
        "Forbidden"
    );
    pub const AUTHORIZER_FAILURE: ErrorKind = kind!(
        "AUTHORIZER_FAILURE",
        AuthorizerFailure,
        INTERNAL_SERVER_ERROR,
        "Internal server error"
    );
    pub const TRANSFORM_FAILURE: ErrorKind = kind!(
        "TRANSFORM_FAILURE",
        Default5xx,
        INTERNAL_SERVER_ERROR,
        "Internal server error"
    );
    pub const FUNCTION_FAILURE: ErrorKind = kind!(
        "FUNCTION_FAILURE",
        Default5xx,
        INTERNAL_SERVER_ERROR,
        "Internal server error"
    );
    /// A Lambda-style function threw, or returned a malformed response: API Gateway's 502.
    pub const LAMBDA_FAILURE: ErrorKind = kind!(
        "LAMBDA_FAILURE",
        Default5xx,
        BAD_GATEWAY,
        "Internal server error"
    );
    pub const BAD_REQUEST_PARAMETERS: ErrorKind = kind!(
        "BAD_REQUEST_PARAMETERS",
        BadRequestParameters,
        BAD_REQUEST,
        "Missing required request parameters"
    );
    pub const BAD_REQUEST_BODY: ErrorKind = kind!(
        "BAD_REQUEST_BODY",
        BadRequestBody,
        BAD_REQUEST,
        "Invalid request body"
    );
    pub const INVALID_API_KEY: ErrorKind =
        kind!("INVALID_API_KEY", InvalidApiKey, FORBIDDEN, "Forbidden");
    pub const CACHE_INVALIDATION_DENIED: ErrorKind = kind!(
        "CACHE_INVALIDATION_DENIED",
        Default4xx,
        FORBIDDEN,
        "Not authorized to invalidate the cache"
    );
    pub const QUOTA_EXCEEDED: ErrorKind = kind!(
        "QUOTA_EXCEEDED",
        QuotaExceeded,
        TOO_MANY_REQUESTS,
        "Limit Exceeded"
    );
    pub const THROTTLED: ErrorKind = kind!(
        "THROTTLED",
        Throttled,
        TOO_MANY_REQUESTS,
        "Too Many Requests"
    );
    pub const UNSUPPORTED_MEDIA_TYPE: ErrorKind = kind!(
        "UNSUPPORTED_MEDIA_TYPE",
        UnsupportedMediaType,
        UNSUPPORTED_MEDIA_TYPE,
        "Unsupported Media Type"
    );
    pub const API_CONFIGURATION_ERROR: ErrorKind = kind!(
        "API_CONFIGURATION_ERROR",
        ApiConfigurationError,
        INTERNAL_SERVER_ERROR,
        "Internal server error"
    );
    /// A WebSocket API's stage asked for without `Upgrade: websocket` (RFC 6455 §4.2.2).
    pub const REQUEST_TIMEOUT: ErrorKind = kind!(
        "REQUEST_TIMEOUT",
        Default4xx,
        REQUEST_TIMEOUT,
        "Request Timeout"
    );
    pub const UPGRADE_REQUIRED: ErrorKind = kind!(
        "UPGRADE_REQUIRED",
        Default4xx,
        UPGRADE_REQUIRED,
        "Upgrade Required"
    );
    pub const INTERNAL_ERROR: ErrorKind = kind!(
        "INTERNAL_ERROR",
        Default5xx,
        INTERNAL_SERVER_ERROR,
        "Internal server error"
    );
}

/// What the gateway knows about the request an error answers, for a per-API override.
#[derive(Debug, Clone, Copy)]
pub struct ResponseScope<'a> {
    /// The API's overrides, if the request reached one that has any.
    pub responses: Option<&'a GatewayResponses>,
    pub api: &'a str,
    pub stage: &'a str,
    pub stage_variables: &'a [(String, String)],
    pub request_id: &'a str,
}

impl GatewayError {
    /// The error's row in the gateway-response table.
    pub fn kind(&self) -> &'static ErrorKind {
        use kinds::*;
        match self {
            Self::BadRequest(_) | Self::ClientBody(_) => &BAD_REQUEST,
            Self::BodyTimeout => &REQUEST_TIMEOUT,
            Self::UpgradeRequired(_) => &UPGRADE_REQUIRED,
            Self::DotSegment => &BAD_REQUEST_PATH,
            Self::NotFound => &RESOURCE_NOT_FOUND,
            Self::UnmappedPath(_) => &BASE_PATH_NOT_MAPPED,
            Self::MethodNotAllowed { .. } => &METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => &REQUEST_TOO_LARGE,
            Self::Upstream { .. } => &INTEGRATION_FAILURE,
            Self::Timeout { .. } => &INTEGRATION_TIMEOUT,
            Self::Unauthorized | Self::InvalidToken(_) => &UNAUTHORIZED,
            Self::AccessDenied(_) | Self::InsufficientScope(_) | Self::ResourcePolicy { .. } => {
                &ACCESS_DENIED
            }
            Self::Signature(SigV4Error::MissingAuthentication) => &MISSING_AUTHENTICATION_TOKEN,
            Self::Signature(SigV4Error::PayloadNotBuffered) => &INTERNAL_ERROR,
            Self::Signature(_) => &INVALID_SIGNATURE,
            Self::Plugin(PluginPhase::Authorizer, _) => &AUTHORIZER_FAILURE,
            Self::Plugin(PluginPhase::Transformer, _) => &TRANSFORM_FAILURE,
            Self::Plugin(PluginPhase::Function, _) => &FUNCTION_FAILURE,
            Self::Plugin(PluginPhase::Lambda, _) => &LAMBDA_FAILURE,
            Self::Validation(ValidationFailure::Parameters { .. }) => &BAD_REQUEST_PARAMETERS,
            Self::Validation(ValidationFailure::Body(_)) => &BAD_REQUEST_BODY,
            Self::InvalidApiKey => &INVALID_API_KEY,
            Self::CacheInvalidationDenied => &CACHE_INVALIDATION_DENIED,
            Self::Throttled(refusal) if refusal.scope == crate::throttle::Scope::Quota => {
                &QUOTA_EXCEEDED
            }
            Self::Throttled(_) => &THROTTLED,
            Self::UnsupportedMediaType(_) => &UNSUPPORTED_MEDIA_TYPE,
            Self::Mapping(_) | Self::NoIntegrationResponse(_) => &API_CONFIGURATION_ERROR,
            Self::Internal(_) => &INTERNAL_ERROR,
        }
    }

    /// The client-facing message, for `$context.error.message`.
    pub fn client_message(&self) -> String {
        self.message()
            .unwrap_or_else(|| self.kind().message.to_owned())
    }

    /// The client-facing message, where the error has words of its own; else the kind's.
    fn message(&self) -> Option<String> {
        match self {
            // API Gateway's words for a resource-policy denial.
            Self::ResourcePolicy {
                explicit, resource, ..
            } => Some(format!(
                "User: anonymous is not authorized to perform: execute-api:Invoke on resource: {resource}{}",
                if *explicit {
                    " with an explicit deny"
                } else {
                    ""
                }
            )),
            // The authorizer's own words, as API Gateway passes a Lambda authorizer's message.
            Self::AccessDenied(message) if !message.is_empty() => Some(message.clone()),
            Self::Validation(ValidationFailure::Parameters { names, .. }) => Some(format!(
                "Missing required request parameters: [{}]",
                names.join(", ")
            )),
            // Which part of the signature failed, in AWS's words.
            Self::Signature(e) if !matches!(e, SigV4Error::PayloadNotBuffered) => {
                Some(e.to_string())
            }
            _ => None,
        }
    }

    /// True for errors the operator should hear about (the origin or the gateway failed), as
    /// opposed to a client asking for something that is not there.
    pub fn is_server_side(&self) -> bool {
        matches!(
            self,
            Self::Upstream { .. }
                | Self::Timeout { .. }
                | Self::Internal(_)
                | Self::Plugin(..)
                | Self::Mapping(_)
                | Self::NoIntegrationResponse(_)
        )
    }

    /// The gateway response for this error, with no override (the request id is added by
    /// the pipeline).
    pub fn into_response(self) -> Response<ResponseBody> {
        self.into_response_for(None)
    }

    /// The gateway response for this error, with the override of `scope`'s API if it has one
    /// for the error's type.
    pub fn into_response_for(self, scope: Option<&ResponseScope<'_>>) -> Response<ResponseBody> {
        let kind = self.kind();
        let message = self.message();
        let text = message.as_deref().unwrap_or(kind.message);
        let mut body = match &self {
            // What was wrong, for the client to fix; API Gateway's message first.
            Self::Validation(ValidationFailure::Parameters { errors, .. })
            | Self::Validation(ValidationFailure::Body(errors)) => {
                message_with_errors(text, errors)
            }
            _ if message.is_some() => {
                Bytes::from(serde_json::json!({ "message": text }).to_string())
            }
            _ => Bytes::from_static(kind.body.as_bytes()),
        };
        let mut status = kind.status;
        let mut headers = http::HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            X_EDGEWAY_ERROR_TYPE.clone(),
            HeaderValue::from_static(kind.name),
        );
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
            Self::UpgradeRequired(_) => {
                headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(
                    http::header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
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
        if let Some(scope) = scope
            && let Some(custom) = scope
                .responses
                .and_then(|r| r.find(kind.response_type, status))
        {
            let values = TemplateValues {
                message: text,
                response_type: kind.response_type,
                request_id: scope.request_id,
                stage: scope.stage,
                api: scope.api,
                stage_variables: scope.stage_variables,
            };
            custom.apply(&values, &mut status, &mut headers, &mut body);
        }
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}
