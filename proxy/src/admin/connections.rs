//! `/admin/connections/{connectionId}`: the `@connections` operations (POST a message, GET,
//! DELETE) on the admin API, with the admin token, for any WebSocket API's connection.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::json;
use crate::node::Node;
use crate::websocket::operate;

/// The largest message the admin API reads; a connection's own frame limit applies below it.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

pub async fn handle(
    node: &Node,
    method: &Method,
    id: &str,
    body: Incoming,
) -> Response<Full<Bytes>> {
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    let data = match *method {
        Method::POST => match Limited::new(body, MAX_MESSAGE_BYTES).collect().await {
            Ok(data) => data.to_bytes(),
            Err(_) => {
                return json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    r#"{"message":"the message is larger than the admin API reads (1 MiB)"}"#,
                );
            }
        },
        _ => Bytes::new(),
    };
    let Some(answer) = operate(&*node.connections, method, &id, data).await else {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"message":"Method Not Allowed"}"#,
        );
    };
    answer.map(Full::new)
}
