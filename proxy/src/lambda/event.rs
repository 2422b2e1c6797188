//! Requests as API Gateway's Lambda proxy events (reference §3.1-3.3).
//!
//! What Edgeway cannot know is left out rather than made up: no `accountId`, `resourceId` is
//! null, `apiId` is the API's name. Header names are lower case in both formats (HTTP/2 and
//! hyper give them so; REST would keep the client's casing). Absent collections are `null` in
//! 1.0, as API Gateway's examples show, and absent keys in 2.0.

use std::time::SystemTime;

use base64::Engine;
use http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::encoding::{clf_time, query_pairs};

/// Who the authorizer said the caller is.
#[derive(Debug, Clone, Copy)]
pub struct EventAuthorizer<'a> {
    pub principal_id: &'a str,
    /// The authorizer's `context`, as strings (API Gateway stringifies its values).
    pub context: &'a [(String, String)],
}

impl EventAuthorizer<'_> {
    /// `requestContext.authorizer` of a REST or WebSocket event: `principalId` and the context.
    fn fields(&self) -> Value {
        let mut fields = Map::new();
        fields.insert("principalId".into(), self.principal_id.into());
        for (k, v) in self.context {
            fields.insert(k.clone(), v.as_str().into());
        }
        Value::Object(fields)
    }
}

/// What an event is built from: one request, as routed.
#[derive(Debug, Clone, Copy)]
pub struct EventRequest<'a> {
    pub method: &'a str,
    /// The request path as sent, with the stage (`/prod/pets/7`).
    pub path: &'a str,
    /// The route path after the stage (`/pets/7`).
    pub route_path: &'a str,
    /// The route's path as written (`/pets/{id}`), for `resource`.
    pub resource: &'a str,
    /// The route's key as written (`ANY /pets/{id}`), for 2.0's `routeKey`.
    pub route_key: &'a str,
    pub stage: &'a str,
    /// The query string as sent, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// Path parameters, decoded.
    pub path_parameters: &'a [(String, String)],
    pub stage_variables: &'a [(String, String)],
    pub body: &'a [u8],
    pub request_id: &'a str,
    pub source_ip: &'a str,
    pub received_at: SystemTime,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'a str,
    /// The API's name.
    pub api: &'a str,
    pub authorizer: Option<EventAuthorizer<'a>>,
    /// The API key the request was let in with: (value, id).
    pub api_key: Option<(&'a str, &'a str)>,
    /// The client's certificate (mutual TLS).
    pub client_cert: Option<&'a crate::client_cert::ClientCert>,
}

impl EventRequest<'_> {
    fn host(&self) -> &str {
        self.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map_or("", |h| h.rsplit_once(':').map_or(h, |(name, _)| name))
    }

    fn header(&self, name: http::header::HeaderName) -> Value {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map_or(Value::Null, Value::from)
    }

    fn epoch_millis(&self) -> u64 {
        self.received_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// The body as the event carries it: text, or base64 when it is not UTF-8.
    fn body(&self) -> (Value, bool) {
        if self.body.is_empty() {
            return (Value::Null, false);
        }
        match std::str::from_utf8(self.body) {
            Ok(text) => (Value::from(text), false),
            Err(_) => (
                Value::from(base64::engine::general_purpose::STANDARD.encode(self.body)),
                true,
            ),
        }
    }
}

fn pairs_object(pairs: &[(String, String)]) -> Value {
    if pairs.is_empty() {
        return Value::Null;
    }
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

/// Header values by name, in the order they came; values that are not text are left out.
fn header_values(headers: &HeaderMap) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for name in headers.keys() {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !values.is_empty() {
            out.push((name.as_str(), values));
        }
    }
    out
}

/// Query parameters, decoded, each name with its values in order.
fn query_values(query: Option<&str>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in query_pairs(query.unwrap_or_default()) {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value.into_owned()),
            None => out.push((name.into_owned(), vec![value.into_owned()])),
        }
    }
    out
}

/// `headers` (the last value of each name) and `multiValueHeaders` (all of them), both `null`
/// when there are none.
fn multi_value_headers(headers: &HeaderMap) -> (Value, Value) {
    let headers = header_values(headers);
    if headers.is_empty() {
        return (Value::Null, Value::Null);
    }
    let last = |values: &[&str]| Value::from(values.last().copied().unwrap_or_default());
    (
        Value::Object(
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), last(v)))
                .collect(),
        ),
        Value::Object(
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), json!(v)))
                .collect(),
        ),
    )
}

/// `queryStringParameters` and `multiValueQueryStringParameters`, like the headers.
fn multi_value_query(query: Option<&str>) -> (Value, Value) {
    let query = query_values(query);
    if query.is_empty() {
        return (Value::Null, Value::Null);
    }
    (
        Value::Object(
            query
                .iter()
                .map(|(n, v)| {
                    (
                        n.clone(),
                        Value::from(v.last().cloned().unwrap_or_default()),
                    )
                })
                .collect(),
        ),
        Value::Object(query.iter().map(|(n, v)| (n.clone(), json!(v))).collect()),
    )
}

/// What a WebSocket API's event adds to the request it is built from.
#[derive(Debug, Clone, Copy)]
pub struct WebSocketContext<'a> {
    /// `CONNECT`, `MESSAGE` or `DISCONNECT`.
    pub event_type: &'a str,
    pub connection_id: &'a str,
    /// MESSAGE only.
    pub message_id: Option<&'a str>,
    /// When the connection opened, in milliseconds since the epoch.
    pub connected_at_ms: u64,
}

/// The WebSocket API's Lambda proxy event: `requestContext` with the route key, event type,
/// connection and message ids; the message as `body` (text, or base64 with
/// `isBase64Encoded`); on `$connect` the upgrade request's headers and query parameters.
pub fn event_websocket(request: &EventRequest<'_>, ws: &WebSocketContext<'_>) -> Value {
    let host = request.host();
    let mut context = Map::new();
    context.insert("routeKey".into(), request.route_key.into());
    context.insert("eventType".into(), ws.event_type.into());
    context.insert("extendedRequestId".into(), request.request_id.into());
    context.insert("requestTime".into(), clf_time(request.received_at).into());
    context.insert("messageDirection".into(), "IN".into());
    context.insert("stage".into(), request.stage.into());
    context.insert("connectedAt".into(), ws.connected_at_ms.into());
    context.insert("requestTimeEpoch".into(), request.epoch_millis().into());
    context.insert(
        "identity".into(),
        json!({
            "sourceIp": request.source_ip,
            "userAgent": request.header(http::header::USER_AGENT),
        }),
    );
    context.insert("requestId".into(), request.request_id.into());
    context.insert("domainName".into(), host.into());
    context.insert("connectionId".into(), ws.connection_id.into());
    context.insert("apiId".into(), request.api.into());
    if let Some(message_id) = ws.message_id {
        context.insert("messageId".into(), message_id.into());
    }
    if let Some(authorizer) = request.authorizer {
        context.insert("authorizer".into(), authorizer.fields());
    }
    let mut event = Map::new();
    if ws.event_type == "CONNECT" {
        let (headers, multi_headers) = multi_value_headers(request.headers);
        let (query, multi_query) = multi_value_query(request.query);
        event.insert("headers".into(), headers);
        event.insert("multiValueHeaders".into(), multi_headers);
        event.insert("queryStringParameters".into(), query);
        event.insert("multiValueQueryStringParameters".into(), multi_query);
    }
    event.insert("requestContext".into(), Value::Object(context));
    if ws.event_type == "MESSAGE" {
        let (body, is_base64) = request.body();
        event.insert("body".into(), body);
        event.insert("isBase64Encoded".into(), is_base64.into());
    } else {
        event.insert("isBase64Encoded".into(), false.into());
    }
    Value::Object(event)
}

/// Payload 1.0: the REST API event, with `"version": "1.0"` as HTTP APIs send it (REST
/// handlers ignore it). `headers` and `queryStringParameters` hold the last value of each
/// name; `multiValueHeaders` and `multiValueQueryStringParameters` hold them all.
pub fn event_v1(request: &EventRequest<'_>) -> Value {
    let (headers_last, headers_all) = multi_value_headers(request.headers);
    let (query_last, query_all) = multi_value_query(request.query);
    let mut identity = Map::new();
    for name in [
        "accessKey",
        "accountId",
        "caller",
        "cognitoAuthenticationProvider",
        "cognitoAuthenticationType",
        "cognitoIdentityId",
        "cognitoIdentityPoolId",
        "principalOrgId",
        "user",
        "userArn",
    ] {
        identity.insert(name.into(), Value::Null);
    }
    identity.insert("sourceIp".into(), request.source_ip.into());
    identity.insert("userAgent".into(), request.header(http::header::USER_AGENT));
    if let Some((value, id)) = request.api_key {
        identity.insert("apiKey".into(), value.into());
        identity.insert("apiKeyId".into(), id.into());
    }
    if let Some(cert) = request.client_cert {
        identity.insert("clientCert".into(), cert.to_json());
    }
    let host = request.host();
    let mut context = Map::new();
    context.insert("apiId".into(), request.api.into());
    if let Some(authorizer) = request.authorizer {
        context.insert("authorizer".into(), authorizer.fields());
    }
    context.insert("domainName".into(), host.into());
    context.insert(
        "domainPrefix".into(),
        host.split('.').next().unwrap_or_default().into(),
    );
    context.insert("extendedRequestId".into(), request.request_id.into());
    context.insert("httpMethod".into(), request.method.into());
    context.insert("identity".into(), Value::Object(identity));
    context.insert("path".into(), request.path.into());
    context.insert("protocol".into(), request.protocol.into());
    context.insert("requestId".into(), request.request_id.into());
    context.insert("requestTime".into(), clf_time(request.received_at).into());
    context.insert("requestTimeEpoch".into(), request.epoch_millis().into());
    context.insert("resourceId".into(), Value::Null);
    context.insert("resourcePath".into(), request.resource.into());
    context.insert("stage".into(), request.stage.into());
    let (body, is_base64) = request.body();
    json!({
        "version": "1.0",
        "resource": request.resource,
        "path": request.route_path,
        "httpMethod": request.method,
        "headers": headers_last,
        "multiValueHeaders": headers_all,
        "queryStringParameters": query_last,
        "multiValueQueryStringParameters": query_all,
        "requestContext": Value::Object(context),
        "pathParameters": pairs_object(request.path_parameters),
        "stageVariables": pairs_object(request.stage_variables),
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// Payload 2.0: the HTTP API event. Repeated headers and query parameters are joined with
/// commas; `cookie` headers become `cookies`, one element per cookie, and leave `headers`.
pub fn event_v2(request: &EventRequest<'_>) -> Value {
    let mut cookies = Vec::new();
    let mut headers = Map::new();
    for (name, values) in header_values(request.headers) {
        if name == "cookie" {
            cookies.extend(
                values
                    .iter()
                    .flat_map(|v| v.split(';'))
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(Value::from),
            );
        } else {
            headers.insert(name.to_owned(), values.join(",").into());
        }
    }
    let route_key = request.route_key;
    let host = request.host();
    let mut context = Map::new();
    context.insert("apiId".into(), request.api.into());
    if let Some(authorizer) = request.authorizer {
        let lambda: Map<String, Value> = authorizer
            .context
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .chain([("principalId".to_owned(), authorizer.principal_id.into())])
            .collect();
        context.insert("authorizer".into(), json!({ "lambda": lambda }));
    }
    context.insert("domainName".into(), host.into());
    context.insert(
        "domainPrefix".into(),
        host.split('.').next().unwrap_or_default().into(),
    );
    context.insert(
        "http".into(),
        json!({
            "method": request.method,
            "path": request.path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": request.header(http::header::USER_AGENT),
        }),
    );
    if let Some(cert) = request.client_cert {
        context.insert(
            "authentication".into(),
            json!({ "clientCert": cert.to_json() }),
        );
    }
    context.insert("requestId".into(), request.request_id.into());
    context.insert("routeKey".into(), route_key.into());
    context.insert("stage".into(), request.stage.into());
    context.insert("time".into(), clf_time(request.received_at).into());
    context.insert("timeEpoch".into(), request.epoch_millis().into());

    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    event.insert("routeKey".into(), route_key.into());
    event.insert("rawPath".into(), request.path.into());
    event.insert(
        "rawQueryString".into(),
        request.query.unwrap_or_default().into(),
    );
    if !cookies.is_empty() {
        event.insert("cookies".into(), Value::Array(cookies));
    }
    event.insert("headers".into(), Value::Object(headers));
    let query = query_values(request.query);
    if !query.is_empty() {
        event.insert(
            "queryStringParameters".into(),
            Value::Object(
                query
                    .into_iter()
                    .map(|(n, v)| (n, Value::from(v.join(","))))
                    .collect(),
            ),
        );
    }
    event.insert("requestContext".into(), Value::Object(context));
    let (body, is_base64) = request.body();
    if !body.is_null() {
        event.insert("body".into(), body);
    }
    if !request.path_parameters.is_empty() {
        event.insert(
            "pathParameters".into(),
            pairs_object(request.path_parameters),
        );
    }
    event.insert("isBase64Encoded".into(), is_base64.into());
    if !request.stage_variables.is_empty() {
        event.insert(
            "stageVariables".into(),
            pairs_object(request.stage_variables),
        );
    }
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// `GET /prod/pets/7?a=1&a=2&b=x%20y` with repeated headers, cookies, an authorizer and an
    /// API key, at 2020-03-04 19:15:17.135 UTC.
    fn sample(headers: &mut HeaderMap, body: &'static [u8]) -> EventRequest<'static> {
        headers.insert("host", HeaderValue::from_static("api.example.com:8443"));
        headers.insert("user-agent", HeaderValue::from_static("curl/8.5"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two"));
        headers.append("cookie", HeaderValue::from_static("a=1; b=2"));
        headers.append("cookie", HeaderValue::from_static("c=3"));
        let headers: &'static HeaderMap = Box::leak(Box::new(headers.clone()));
        let params: &'static [(String, String)] =
            Box::leak(Box::new([("id".to_owned(), "7".to_owned())]));
        let variables: &'static [(String, String)] =
            Box::leak(Box::new([("color".to_owned(), "blue".to_owned())]));
        let context: &'static [(String, String)] =
            Box::leak(Box::new([("tier".to_owned(), "gold".to_owned())]));
        EventRequest {
            method: "GET",
            path: "/prod/pets/7",
            route_path: "/pets/7",
            resource: "/pets/{id}",
            route_key: "GET /pets/{id}",
            stage: "prod",
            query: Some("a=1&a=2&b=x%20y"),
            headers,
            path_parameters: params,
            stage_variables: variables,
            body,
            request_id: "req-1",
            source_ip: "192.0.2.1",
            received_at: std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(1_583_349_317_135),
            protocol: "HTTP/1.1",
            api: "petstore",
            authorizer: Some(EventAuthorizer {
                principal_id: "alice",
                context,
            }),
            api_key: Some(("k-value", "k-id")),
            client_cert: None,
        }
    }

    #[test]
    fn payload_1_0_is_the_rest_event() {
        let mut headers = HeaderMap::new();
        let event = event_v1(&sample(&mut headers, b"{\"a\":1}"));
        let expected = json!({
            "version": "1.0",
            "resource": "/pets/{id}",
            "path": "/pets/7",
            "httpMethod": "GET",
            "headers": {
                "host": "api.example.com:8443", "user-agent": "curl/8.5",
                "x-multi": "two", "cookie": "c=3"
            },
            "multiValueHeaders": {
                "host": ["api.example.com:8443"], "user-agent": ["curl/8.5"],
                "x-multi": ["one", "two"], "cookie": ["a=1; b=2", "c=3"]
            },
            "queryStringParameters": { "a": "2", "b": "x y" },
            "multiValueQueryStringParameters": { "a": ["1", "2"], "b": ["x y"] },
            "requestContext": {
                "apiId": "petstore",
                "authorizer": { "principalId": "alice", "tier": "gold" },
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "extendedRequestId": "req-1",
                "httpMethod": "GET",
                "identity": {
                    "accessKey": null, "accountId": null, "caller": null,
                    "cognitoAuthenticationProvider": null, "cognitoAuthenticationType": null,
                    "cognitoIdentityId": null, "cognitoIdentityPoolId": null,
                    "principalOrgId": null, "user": null, "userArn": null,
                    "sourceIp": "192.0.2.1", "userAgent": "curl/8.5",
                    "apiKey": "k-value", "apiKeyId": "k-id"
                },
                "path": "/prod/pets/7",
                "protocol": "HTTP/1.1",
                "requestId": "req-1",
                "requestTime": "04/Mar/2020:19:15:17 +0000",
                "requestTimeEpoch": 1_583_349_317_135_u64,
                "resourceId": null,
                "resourcePath": "/pets/{id}",
                "stage": "prod"
            },
            "pathParameters": { "id": "7" },
            "stageVariables": { "color": "blue" },
            "body": "{\"a\":1}",
            "isBase64Encoded": false
        });
        assert_eq!(event, expected, "{event:#}");
    }

    #[test]
    fn payload_2_0_is_the_http_api_event() {
        let mut headers = HeaderMap::new();
        let event = event_v2(&sample(&mut headers, &[0xff, 0x00, 0x41]));
        let expected = json!({
            "version": "2.0",
            "routeKey": "GET /pets/{id}",
            "rawPath": "/prod/pets/7",
            "rawQueryString": "a=1&a=2&b=x%20y",
            "cookies": ["a=1", "b=2", "c=3"],
            "headers": {
                "host": "api.example.com:8443", "user-agent": "curl/8.5", "x-multi": "one,two"
            },
            "queryStringParameters": { "a": "1,2", "b": "x y" },
            "requestContext": {
                "apiId": "petstore",
                "authorizer": { "lambda": { "principalId": "alice", "tier": "gold" } },
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "http": {
                    "method": "GET", "path": "/prod/pets/7", "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.1", "userAgent": "curl/8.5"
                },
                "requestId": "req-1",
                "routeKey": "GET /pets/{id}",
                "stage": "prod",
                "time": "04/Mar/2020:19:15:17 +0000",
                "timeEpoch": 1_583_349_317_135_u64
            },
            "body": "/wBB",
            "pathParameters": { "id": "7" },
            "isBase64Encoded": true,
            "stageVariables": { "color": "blue" }
        });
        assert_eq!(event, expected, "{event:#}");
    }

    #[test]
    fn a_client_certificate_is_in_both_events() {
        let mut headers = HeaderMap::new();
        let cert = crate::client_cert::ClientCert {
            pem: "PEM".into(),
            subject_dn: "CN=alice".into(),
            issuer_dn: "CN=ca".into(),
            serial: "0a:01".into(),
            not_before: "May  8 00:00:00 2019 GMT".into(),
            not_after: "Dec 25 00:00:00 2031 GMT".into(),
        };
        let mut request = sample(&mut headers, b"");
        assert!(
            event_v1(&request)["requestContext"]["identity"]
                .get("clientCert")
                .is_none()
        );
        request.client_cert = Some(&cert);
        let v1 = event_v1(&request);
        assert_eq!(
            v1["requestContext"]["identity"]["clientCert"]["subjectDN"],
            "CN=alice"
        );
        assert_eq!(
            v1["requestContext"]["identity"]["clientCert"]["validity"]["notAfter"],
            "Dec 25 00:00:00 2031 GMT"
        );
        let v2 = event_v2(&request);
        assert_eq!(
            v2["requestContext"]["authentication"]["clientCert"]["serialNumber"],
            "0a:01"
        );
    }

    #[test]
    fn absent_parts_are_null_in_1_0_and_missing_in_2_0() {
        let headers = HeaderMap::new();
        let request = EventRequest {
            method: "POST",
            path: "/prod",
            route_path: "/",
            resource: "/",
            route_key: "GET /",
            stage: "prod",
            query: None,
            headers: &headers,
            path_parameters: &[],
            stage_variables: &[],
            body: b"",
            request_id: "r",
            source_ip: "::1",
            received_at: std::time::UNIX_EPOCH,
            protocol: "HTTP/2.0",
            api: "a",
            authorizer: None,
            api_key: None,
            client_cert: None,
        };
        let v1 = event_v1(&request);
        for key in [
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "pathParameters",
            "stageVariables",
            "body",
        ] {
            assert_eq!(v1[key], Value::Null, "{key}");
        }
        assert!(v1["requestContext"].get("authorizer").is_none());
        let v2 = event_v2(&request);
        for key in [
            "cookies",
            "queryStringParameters",
            "pathParameters",
            "stageVariables",
            "body",
        ] {
            assert!(v2.get(key).is_none(), "{key}: {v2}");
        }
        assert_eq!(v2["headers"], json!({}));
        assert_eq!(v2["isBase64Encoded"], false);
    }

    #[test]
    fn websocket_events_carry_the_connection_and_connect_carries_the_upgrade() {
        let mut headers = HeaderMap::new();
        let request = EventRequest {
            route_key: "$connect",
            ..sample(&mut headers, b"")
        };
        let ws = WebSocketContext {
            event_type: "CONNECT",
            connection_id: "Zm9vYmFyYmF6cXV4",
            message_id: None,
            connected_at_ms: 1_583_349_317_000,
        };
        let event = event_websocket(&request, &ws);
        let context = &event["requestContext"];
        assert_eq!(context["routeKey"], "$connect");
        assert_eq!(context["eventType"], "CONNECT");
        assert_eq!(context["connectionId"], "Zm9vYmFyYmF6cXV4");
        assert_eq!(context["connectedAt"], 1_583_349_317_000_u64);
        assert_eq!(context["domainName"], "api.example.com");
        assert_eq!(context["authorizer"]["principalId"], "alice");
        assert!(context.get("messageId").is_none());
        assert_eq!(event["headers"]["x-multi"], "two");
        assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
        assert_eq!(event["queryStringParameters"]["b"], "x y");
        assert!(event.get("body").is_none());

        let request = EventRequest {
            route_key: "sendmessage",
            ..sample(&mut headers, b"\xff\x00")
        };
        let event = event_websocket(
            &request,
            &WebSocketContext {
                event_type: "MESSAGE",
                message_id: Some("bWVzc2FnZS1vbmUx"),
                ..ws
            },
        );
        assert_eq!(event["requestContext"]["messageId"], "bWVzc2FnZS1vbmUx");
        assert_eq!(event["body"], "/wA=");
        assert_eq!(event["isBase64Encoded"], true);
        assert!(event.get("headers").is_none());
    }
}
