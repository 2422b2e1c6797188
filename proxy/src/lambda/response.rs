//! What a Lambda-style function returns, checked as API Gateway checks it (reference §3.4,
//! §3.5): anything else is a malformed response, which the gateway answers with 502
//! `{"message": "Internal server error"}` and logs with the reason given here.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

/// A well-formed function response.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaResponse {
    pub status: StatusCode,
    /// In order; a name may repeat (`multiValueHeaders`, and one `set-cookie` per cookie).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// Why a function's output is not a response API Gateway would send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedResponse {
    #[error("the output is not JSON: {0}")]
    NotJson(String),
    #[error("the output is not a JSON object with statusCode")]
    NotAnObject,
    #[error("the function failed: {0}")]
    FunctionError(String),
    #[error(
        "unexpected key `{0}` (a response has statusCode, headers, multiValueHeaders, body, isBase64Encoded{1})"
    )]
    UnknownKey(String, &'static str),
    #[error("statusCode {0} is not an HTTP status from 100 to 599")]
    BadStatus(String),
    #[error("`{0}` is not an object of header names")]
    HeadersNotObject(&'static str),
    #[error("header `{0}`: its value is not a string, number or boolean")]
    BadHeaderValue(String),
    #[error("header `{0}` is not a valid header name or value")]
    InvalidHeader(String),
    #[error("body is not a string (a function stringifies its JSON)")]
    BodyNotString,
    #[error("isBase64Encoded is not a boolean")]
    Base64FlagNotBool,
    #[error("isBase64Encoded is true but the body is not base64: {0}")]
    NotBase64(String),
    #[error("cookies is not an array of strings")]
    BadCookies,
}

const V1_KEYS: [&str; 5] = [
    "statusCode",
    "headers",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
];

/// Payload 1.0: an object with `statusCode` and only the keys of §3.4.
pub fn parse_v1(output: &[u8]) -> Result<LambdaResponse, MalformedResponse> {
    let value = json(output)?;
    let Value::Object(fields) = value else {
        return Err(MalformedResponse::NotAnObject);
    };
    if fields.contains_key("errorMessage") && !fields.contains_key("statusCode") {
        return Err(function_error(&fields));
    }
    if let Some(key) = fields.keys().find(|k| !V1_KEYS.contains(&k.as_str())) {
        return Err(MalformedResponse::UnknownKey(key.clone(), ""));
    }
    explicit(&fields)
}

/// Payload 2.0: the explicit form (an object with `statusCode`, and `cookies` besides 1.0's
/// keys), or any other JSON value, which is a 200 `application/json` answer whose body is
/// the value (a string's text, anything else its JSON).
pub fn parse_v2(output: &[u8]) -> Result<LambdaResponse, MalformedResponse> {
    let value = json(output)?;
    match value {
        Value::Object(fields) if fields.contains_key("statusCode") => {
            if let Some(key) = fields
                .keys()
                .find(|k| !V1_KEYS.contains(&k.as_str()) && *k != "cookies")
            {
                return Err(MalformedResponse::UnknownKey(key.clone(), ", cookies"));
            }
            let mut response = explicit(&fields)?;
            match fields.get("cookies") {
                None | Some(Value::Null) => {}
                Some(Value::Array(cookies)) => {
                    for cookie in cookies {
                        let text = cookie.as_str().ok_or(MalformedResponse::BadCookies)?;
                        let value = HeaderValue::from_str(text)
                            .map_err(|_| MalformedResponse::InvalidHeader("set-cookie".into()))?;
                        response.headers.push((http::header::SET_COOKIE, value));
                    }
                }
                Some(_) => return Err(MalformedResponse::BadCookies),
            }
            Ok(response)
        }
        Value::Object(fields) if fields.contains_key("errorMessage") => {
            Err(function_error(&fields))
        }
        other => {
            let body = match other {
                Value::String(text) => text,
                other => other.to_string(),
            };
            Ok(LambdaResponse {
                status: StatusCode::OK,
                headers: vec![(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body: Bytes::from(body),
            })
        }
    }
}

fn json(output: &[u8]) -> Result<Value, MalformedResponse> {
    serde_json::from_slice(output).map_err(|e| MalformedResponse::NotJson(e.to_string()))
}

/// A Lambda function error (`{"errorMessage": ..., "errorType": ...}`): a 502 too.
fn function_error(fields: &Map<String, Value>) -> MalformedResponse {
    let message = fields.get("errorMessage").unwrap_or(&Value::Null);
    MalformedResponse::FunctionError(message.as_str().map_or(message.to_string(), str::to_owned))
}

/// The explicit form's status, headers and body.
fn explicit(fields: &Map<String, Value>) -> Result<LambdaResponse, MalformedResponse> {
    let status = match fields.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        // API Gateway takes a status written as a string too.
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|code| u16::try_from(code).ok())
    .and_then(|code| StatusCode::from_u16(code).ok())
    .filter(|code| (100..600).contains(&code.as_u16()))
    .ok_or_else(|| {
        MalformedResponse::BadStatus(
            fields
                .get("statusCode")
                .map_or("none".into(), Value::to_string),
        )
    })?;

    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    // Both given: a name in multiValueHeaders takes its values from there only.
    let multi = object_of(fields, "multiValueHeaders")?;
    if let Some(single) = object_of(fields, "headers")? {
        for (name, value) in single {
            if multi.is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(name))) {
                continue;
            }
            headers.push(header(name, value)?);
        }
    }
    if let Some(multi) = multi {
        for (name, values) in multi {
            let Value::Array(values) = values else {
                return Err(MalformedResponse::HeadersNotObject("multiValueHeaders"));
            };
            for value in values {
                headers.push(header(name, value)?);
            }
        }
    }

    let base64 = match fields.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(MalformedResponse::Base64FlagNotBool),
    };
    let text = match fields.get("body") {
        None | Some(Value::Null) => "",
        Some(Value::String(text)) => text.as_str(),
        Some(_) => return Err(MalformedResponse::BodyNotString),
    };
    let body = if base64 {
        Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| MalformedResponse::NotBase64(e.to_string()))?,
        )
    } else {
        Bytes::copy_from_slice(text.as_bytes())
    };
    Ok(LambdaResponse {
        status,
        headers,
        body,
    })
}

fn object_of<'f>(
    fields: &'f Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'f Map<String, Value>>, MalformedResponse> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(MalformedResponse::HeadersNotObject(key)),
    }
}

fn header(name: &str, value: &Value) -> Result<(HeaderName, HeaderValue), MalformedResponse> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => return Err(MalformedResponse::BadHeaderValue(name.to_owned())),
    };
    let invalid = || MalformedResponse::InvalidHeader(name.to_owned());
    Ok((
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?,
        HeaderValue::from_str(&text).map_err(|_| invalid())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(r: &LambdaResponse) -> Vec<(String, String)> {
        r.headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn a_1_0_response_with_both_header_forms_and_a_binary_body() {
        let r = parse_v1(
            br#"{"statusCode": 201, "headers": {"X-One": "a", "X-Both": "single", "X-Flag": true},
                 "multiValueHeaders": {"x-both": ["m1", "m2"]},
                 "body": "AAEC", "isBase64Encoded": true}"#,
        )
        .unwrap();
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(
            headers(&r),
            [
                ("x-flag".into(), "true".into()),
                ("x-one".into(), "a".into()),
                ("x-both".into(), "m1".into()),
                ("x-both".into(), "m2".into()),
            ]
        );
        assert_eq!(&r.body[..], [0, 1, 2]);
        let r = parse_v1(br#"{"statusCode": "404"}"#).unwrap();
        assert_eq!((r.status, r.body.len()), (StatusCode::NOT_FOUND, 0));
    }

    #[test]
    fn a_2_0_response_explicit_or_a_bare_value() {
        let r = parse_v2(
            br#"{"statusCode": 200, "cookies": ["a=1", "b=2; Secure"], "headers": {"content-type": "text/plain"}, "body": "hi"}"#,
        )
        .unwrap();
        assert_eq!(
            headers(&r),
            [
                ("content-type".into(), "text/plain".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2; Secure".into()),
            ]
        );
        assert_eq!(&r.body[..], b"hi");
        for (output, body) in [
            (&br#""Hello from Lambda!""#[..], "Hello from Lambda!"),
            (
                br#"{ "message": "Hello from Lambda!" }"#,
                r#"{"message":"Hello from Lambda!"}"#,
            ),
            (b"[1,2]", "[1,2]"),
            (b"42", "42"),
        ] {
            let r = parse_v2(output).unwrap();
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(
                headers(&r),
                [("content-type".into(), "application/json".into())]
            );
            assert_eq!(std::str::from_utf8(&r.body).unwrap(), body);
        }
    }

    /// Every malformed shape of §3.5, each refused with its own reason.
    #[test]
    fn malformed_responses_are_refused_with_why() {
        use MalformedResponse as M;
        type Case = (&'static [u8], fn(&M) -> bool);
        let cases: [Case; 13] = [
            (b"not json", |e| matches!(e, M::NotJson(_))),
            (b"", |e| matches!(e, M::NotJson(_))),
            (b"[1]", |e| *e == M::NotAnObject),
            (br#""text""#, |e| *e == M::NotAnObject),
            (
                br#"{"statusCode": 200, "extra": 1}"#,
                |e| matches!(e, M::UnknownKey(k, _) if k == "extra"),
            ),
            (br#"{"body": "no status"}"#, |e| {
                matches!(e, M::BadStatus(_))
            }),
            (br#"{"statusCode": 99}"#, |e| matches!(e, M::BadStatus(_))),
            (br#"{"statusCode": 200.5}"#, |e| {
                matches!(e, M::BadStatus(_))
            }),
            (br#"{"statusCode": 200, "headers": ["a"]}"#, |e| {
                *e == M::HeadersNotObject("headers")
            }),
            (br#"{"statusCode": 200, "headers": {"a": {"b": 1}}}"#, |e| {
                matches!(e, M::BadHeaderValue(_))
            }),
            (
                br#"{"statusCode": 200, "headers": {"bad name": "x"}}"#,
                |e| matches!(e, M::InvalidHeader(_)),
            ),
            (br#"{"statusCode": 200, "body": {"a": 1}}"#, |e| {
                *e == M::BodyNotString
            }),
            (
                br#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#,
                |e| matches!(e, M::NotBase64(_)),
            ),
        ];
        for (output, expected) in cases {
            let e = parse_v1(output).unwrap_err();
            assert!(expected(&e), "{}: {e}", String::from_utf8_lossy(output));
        }
        let e = parse_v1(br#"{"errorMessage": "boom", "errorType": "Error"}"#).unwrap_err();
        assert_eq!(e, M::FunctionError("boom".into()));
        let e = parse_v2(br#"{"errorMessage": "boom", "errorType": "Error"}"#).unwrap_err();
        assert_eq!(e, M::FunctionError("boom".into()));
        let e = parse_v1(br#"{"statusCode": 200, "isBase64Encoded": "yes"}"#).unwrap_err();
        assert_eq!(e, M::Base64FlagNotBool);
        let e = parse_v2(br#"{"statusCode": 200, "cookies": "a=1"}"#).unwrap_err();
        assert_eq!(e, M::BadCookies);
        let e = parse_v2(b"{nope").unwrap_err();
        assert!(matches!(e, M::NotJson(_)));
    }
}
