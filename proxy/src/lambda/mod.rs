//! Lambda proxy integration formats: the event API Gateway gives a function (payload 1.0, the
//! REST and HTTP API 1.0 shape, and 2.0, the HTTP API shape) and the response a function gives
//! back, checked as API Gateway checks it.
//!
//! These are pure conversions. The `function` integration with an `aws-proxy-*` payload hands
//! the event to a handler plugin and parses what it returns; Lambda handlers written for API
//! Gateway (JavaScript, Python) then run unchanged behind an adapter.

mod event;
mod response;

pub use event::{EventAuthorizer, EventRequest, event_v1, event_v2};
pub use response::{LambdaResponse, MalformedResponse, parse_v1, parse_v2};
