//! A Lambda-style handler of API Gateway proxy events (payload 1.0 and 2.0), the Rust one of
//! three that behave alike (`plugins/js-lambda/echo.mjs`, `plugins/py-lambda/echo.py`). What
//! it answers depends on the query string:
//!
//! - `shape=binary`: `isBase64Encoded` with the bytes 00 01 02 FE FF, `application/octet-stream`;
//! - `shape=bare`: the bare JSON value `{"bare": true, "lang": "rust"}` (a 200 in 2.0, a
//!   malformed response in 1.0);
//! - `shape=garbage`: `{"statusCode": "soon", "unexpected": true}`, which no format accepts;
//! - `shape=throw`: the function fails;
//! - otherwise status `status` (default 200) with `x-lang`, the multi-value header `x-multi`
//!   (`one`, `two`), in 2.0 two cookies, and a JSON body holding the event it was given and
//!   the context (`awsRequestId`, `functionName`, whether time remains).

use edgeway_plugin_sdk::{Error, Lambda, LambdaContext, export_lambda};
use serde_json::{Value, json};

struct Echo;

/// The query parameter `name`, from either format's `queryStringParameters`.
fn query<'e>(event: &'e Value, name: &str) -> Option<&'e str> {
    event["queryStringParameters"][name].as_str()
}

impl Lambda for Echo {
    fn new() -> Result<Self, Error> {
        Ok(Echo)
    }

    fn invoke(&self, event: Value, context: &LambdaContext) -> Result<Value, Error> {
        match query(&event, "shape") {
            Some("binary") => Ok(json!({
                "statusCode": 200,
                "headers": { "content-type": "application/octet-stream" },
                "body": "AAEC/v8=",
                "isBase64Encoded": true,
            })),
            Some("bare") => Ok(json!({ "bare": true, "lang": "rust" })),
            Some("garbage") => Ok(json!({ "statusCode": "soon", "unexpected": true })),
            Some("throw") => Err(Error::msg("boom")),
            _ => {
                let status: u16 = query(&event, "status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(200);
                let v2 = event["version"] == "2.0";
                let body = json!({
                    "lang": "rust",
                    "event": event,
                    "context": {
                        "awsRequestId": context.request_id,
                        "functionName": context.function_name,
                        "hasTime": !context.remaining_time().is_zero(),
                    },
                });
                let mut response = json!({
                    "statusCode": status,
                    "headers": { "content-type": "application/json", "x-lang": "rust" },
                    "multiValueHeaders": { "x-multi": ["one", "two"] },
                    "body": body.to_string(),
                    "isBase64Encoded": false,
                });
                if v2 {
                    response["cookies"] = json!(["session=abc; Path=/", "theme=dark"]);
                }
                Ok(response)
            }
        }
    }
}

export_lambda!(Echo);
