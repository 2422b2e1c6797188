//! Lambda proxy integration formats: the event API Gateway gives a function (payload 1.0, the
//! REST and HTTP API 1.0 shape, and 2.0, the HTTP API shape) and the response a function gives
//! back, checked as API Gateway checks it.
//!
//! `authorizer.rs` is the Lambda authorizer's side: its TOKEN and REQUEST inputs, the IAM
//! policy it returns, and that policy evaluated against a method ARN.
//!
//! These are pure conversions. The `function` integration with an `aws-proxy-*` payload hands
//! the event to a handler plugin and parses what it returns; Lambda handlers written for API
//! Gateway (JavaScript, Python) then run unchanged behind an adapter.

mod authorizer;
mod event;
mod response;

pub use authorizer::{
    ArnScope, AuthorizerInput, Grant, MalformedPolicy, Policy, Verdict, parse_grant, request_event,
    token_event,
};
pub use event::{
    EventAuthorizer, EventRequest, WebSocketContext, event_v1, event_v2, event_websocket,
};
pub use response::{LambdaResponse, MalformedResponse, parse_v1, parse_v2};

/// Which of API Gateway's proxy events a function is given (`payload` of a `function`
/// integration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFormat {
    /// `aws-proxy-1.0`: the REST API event (and HTTP APIs' payload 1.0).
    V1,
    /// `aws-proxy-2.0`: HTTP APIs' payload 2.0.
    V2,
}

impl ProxyFormat {
    /// The name written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "aws-proxy-1.0",
            Self::V2 => "aws-proxy-2.0",
        }
    }

    /// The format a config's `payload` names (`edgeway` is not one: `None`).
    pub fn from_payload(name: &str) -> Option<Self> {
        [Self::V1, Self::V2]
            .into_iter()
            .find(|f| f.as_str() == name)
    }

    /// API Gateway's `payloadFormatVersion` for it.
    pub fn version(self) -> &'static str {
        match self {
            Self::V1 => "1.0",
            Self::V2 => "2.0",
        }
    }

    /// The event for `request`.
    pub fn event(self, request: &EventRequest<'_>) -> serde_json::Value {
        match self {
            Self::V1 => event_v1(request),
            Self::V2 => event_v2(request),
        }
    }

    /// Checks what the function returned.
    pub fn parse(self, output: &[u8]) -> Result<LambdaResponse, MalformedResponse> {
        match self {
            Self::V1 => parse_v1(output),
            Self::V2 => parse_v2(output),
        }
    }
}
