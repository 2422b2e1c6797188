//! Phase 10 for non-proxy integrations (`http`, and `mock` with templates), as API Gateway
//! REST APIs run them:
//!
//! 1. the request template for the request's media type renders the integration request's
//!    body (or the body passes through, as `passthrough` allows; else 415);
//! 2. `request_parameters` fill the integration request's headers, path and query, and the
//!    template's `$context.requestOverride` has the last word;
//! 3. the integration answers (the origin, or for a mock the status its request template
//!    chose); the integration response whose `selection_pattern` matches that status is
//!    selected, else the default one;
//! 4. its `response_parameters` set headers, its template for the client's `Accept` renders
//!    the body, and `$context.responseOverride` (from either template) has the last word.
//!
//! Bodies a template or a mapping reads are buffered within `limits.max_body_bytes`; a body
//! that passes through unmapped streams, as `http_proxy`'s do. Templates run in
//! the mapper plugin; a template that fails is a 500 `API_CONFIGURATION_ERROR` for this
//! request only.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;

use super::{GatewayError, InBody, RequestContext};
use crate::body::{RequestBody, ResponseBody};
use crate::generation::{AwsServiceTarget, Generation, HttpTarget, MappedMockTarget};
use crate::mapping::{
    ContentHandling, IntegrationResponse, Mapping, MappingTemplate, ParamTarget, Passthrough,
    Sources, media_type,
};
use crate::plugins::bindings::{MappingInput, Rendered};
use crate::plugins::{Isolation, Plugin};
use crate::upstream::headers::{self, Forwarded};

/// The method request, as templates and parameter mappings read it.
struct MethodRequest<'a> {
    parts: &'a Parts,
    body: Bytes,
    params: Vec<(String, String)>,
    stage_variables: &'a [(String, String)],
    /// `$context` as JSON text, for templates.
    context_text: String,
    /// `$context` parsed, for `context.*` parameter mappings (only when one is used).
    context: std::sync::OnceLock<serde_json::Value>,
}

impl<'a> MethodRequest<'a> {
    fn new(ctx: &RequestContext<'a>, parts: &'a Parts, body: Bytes) -> Self {
        let params = ctx
            .named_params(parts.uri.path())
            .into_iter()
            .map(|(k, v)| (k.to_owned(), percent_decode(v)))
            .collect();
        let stage_variables = ctx.route.map_or(&[][..], |r| &r.scope.stage_variables[..]);
        Self {
            parts,
            body,
            params,
            stage_variables,
            context_text: context(ctx, parts),
            context: std::sync::OnceLock::new(),
        }
    }

    fn sources<'s>(&'s self, integration: Option<(&'s HeaderMap, &'s [u8])>) -> Sources<'s> {
        Sources {
            path: &self.params,
            query: self.parts.uri.query(),
            headers: &self.parts.headers,
            body: &self.body,
            stage_variables: self.stage_variables,
            context_text: &self.context_text,
            parsed: &self.context,
            integration_headers: integration.map(|(h, _)| h),
            integration_body: integration.map(|(_, b)| b),
        }
    }

    /// `$input` and `$context` over `body` (the request's, or the integration's answer).
    fn input(&self, body: String) -> MappingInput {
        let mut querystring: Vec<(String, String)> = Vec::new();
        if let Some(query) = self.parts.uri.query() {
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                // The last value of a repeated name, in the place of the first.
                match querystring.iter_mut().find(|(n, _)| *n == k) {
                    Some(slot) => slot.1 = v.into_owned(),
                    None => querystring.push((k.into_owned(), v.into_owned())),
                }
            }
        }
        let header = self
            .parts
            .headers
            .iter()
            .filter(|(name, _)| !edgeway_velocity::aws::HIDDEN_HEADERS.contains(&name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        MappingInput {
            body,
            path: self.params.clone(),
            querystring,
            header,
            context: self.context_text.clone(),
            stage_variables: self.stage_variables.to_vec(),
        }
    }
}

/// `$context` for templates and `context.*` mappings, as JSON text: what Edgeway knows of
/// the request. Written straight into a string: it is built for every mapped request.
fn context(ctx: &RequestContext<'_>, parts: &Parts) -> String {
    use std::fmt::Write as _;
    let route = ctx.route;
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let host = match parts.uri.authority() {
        Some(authority) => authority.host(),
        None => header("host"),
    };
    let host = host.split(':').next().unwrap_or_default();
    let millis = ctx
        .received_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let request_id = ctx.request_id.to_str().unwrap_or_default();
    let resource_path = route
        .and_then(|r| r.labels.route.split_once(' ').map(|(_, p)| p))
        .unwrap_or_default();
    let mut out = String::with_capacity(640);
    let field = |out: &mut String, name: &str, value: &str| {
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        edgeway_velocity::value::write_json_string(out, value);
        out.push(',');
    };
    out.push('{');
    field(&mut out, "accountId", "");
    field(&mut out, "apiId", route.map_or("", |r| &*r.labels.api));
    out.push_str("\"authorizer\":{");
    if let Some(principal) = &ctx.principal {
        field(&mut out, "principalId", &principal.id);
        for (k, v) in &principal.context {
            if k != "principalId" {
                field(&mut out, k, v);
            }
        }
        out.pop();
    }
    out.push_str("},");
    field(
        &mut out,
        "deploymentId",
        route
            .and_then(|r| r.labels.deployment.as_deref())
            .unwrap_or_default(),
    );
    field(&mut out, "domainName", host);
    field(
        &mut out,
        "domainPrefix",
        host.split('.').next().unwrap_or_default(),
    );
    field(&mut out, "extendedRequestId", request_id);
    field(&mut out, "httpMethod", parts.method.as_str());
    out.push_str("\"identity\":{");
    field(&mut out, "accountId", "");
    field(&mut out, "apiKey", header("x-api-key"));
    field(
        &mut out,
        "apiKeyId",
        ctx.api_key.as_ref().map_or("", |k| k.id.as_str()),
    );
    field(&mut out, "caller", "");
    if let Some(cert) = parts
        .extensions
        .get::<std::sync::Arc<crate::client_cert::ClientCert>>()
    {
        let _ = write!(out, "\"clientCert\":{},", cert.to_json());
    }
    field(
        &mut out,
        "sourceIp",
        ctx.source_ip_text().to_str().unwrap_or_default(),
    );
    field(&mut out, "user", "");
    field(&mut out, "userAgent", header("user-agent"));
    field(&mut out, "userArn", "");
    out.pop();
    out.push_str("},");
    field(&mut out, "path", parts.uri.path());
    field(&mut out, "protocol", "HTTP/1.1");
    field(&mut out, "requestId", request_id);
    field(
        &mut out,
        "requestTime",
        &crate::encoding::clf_time(ctx.received_at),
    );
    let _ = write!(out, "\"requestTimeEpoch\":{millis},");
    field(&mut out, "resourceId", "");
    field(&mut out, "resourcePath", resource_path);
    field(&mut out, "stage", route.map_or("", |r| &*r.labels.stage));
    // A WebSocket API's event: its connection, event type, route key and message.
    if let Some(ws) = &ctx.websocket {
        field(&mut out, "connectionId", &ws.connection_id);
        let _ = write!(out, "\"connectedAt\":{},", ws.connected_at_ms);
        field(&mut out, "eventType", ws.event_type);
        if let Some(message_id) = &ws.message_id {
            field(&mut out, "messageId", message_id);
        }
        field(&mut out, "routeKey", route.map_or("", |r| &*r.labels.route));
    }
    out.pop();
    out.push('}');
    out
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// A path segment's value, percent-encoded but for RFC 3986's unreserved characters.
fn encode_segment(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len());
    crate::auth::sigv4::canonical::uri_encode(&mut out, value.as_bytes(), false);
    String::from_utf8_lossy(&out).into_owned()
}

/// A body as text for a template.
fn body_text(body: &[u8], handling: ContentHandling) -> String {
    match std::str::from_utf8(body) {
        Ok(text) => text.to_owned(),
        Err(_) if handling == ContentHandling::ConvertToText => {
            base64::engine::general_purpose::STANDARD.encode(body)
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

async fn render(
    mapper: Option<&Arc<Plugin>>,
    isolation: Isolation,
    template: &MappingTemplate,
    input: &MappingInput,
) -> Result<Rendered, GatewayError> {
    let Some(mapper) = mapper else {
        return Err(GatewayError::Internal(
            "a mapping template without a mapper".into(),
        ));
    };
    mapper
        .render(isolation, template.id, &template.source, input)
        .await
        .map_err(GatewayError::Mapping)
}

/// Sets `name` to `values` (replacing it), skipping what is not a valid header.
fn set_header(headers: &mut HeaderMap, name: &str, values: &[String]) {
    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
        return;
    };
    headers.remove(&name);
    for value in values {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(name.clone(), value);
        }
    }
}

/// The integration's answer: status, headers and body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: AnswerBody,
}

/// An answer's body: read whole when a template or a mapping reads it, else streamed through.
enum AnswerBody {
    Buffered(Bytes),
    Streaming(crate::body::PooledBody),
}

impl AnswerBody {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Buffered(bytes) => bytes,
            Self::Streaming(_) => &[],
        }
    }

    fn into_response_body(self) -> ResponseBody {
        match self {
            Self::Buffered(bytes) => ResponseBody::full(bytes),
            Self::Streaming(body) => ResponseBody::upstream(body),
        }
    }
}

/// Whether the method response for `status` reads the integration's body: its template for
/// the client's `Accept`, or a `response_parameters` source.
fn reads_answer_body(mapping: &Mapping, status: u16, accept: Option<&str>) -> bool {
    mapping.response_for(status).is_some_and(|r| {
        r.templates.for_response(accept).is_some()
            || r.headers
                .iter()
                .any(|(_, s)| matches!(s, crate::mapping::ParamSource::IntegrationBody(_)))
    })
}

/// Steps 3 and 4: the method response for an integration's answer.
#[allow(clippy::too_many_arguments)]
async fn respond(
    method: &MethodRequest<'_>,
    mapping: &Mapping,
    mapper: Option<&Arc<Plugin>>,
    isolation: Isolation,
    answer: Answer,
    carried: &Rendered,
    handling: ContentHandling,
) -> Result<Response<ResponseBody>, GatewayError> {
    let selected: Option<&IntegrationResponse> = mapping.response_for(answer.status.as_u16());
    let Some(selected) = selected else {
        if !mapping.responses.is_empty() {
            return Err(GatewayError::NoIntegrationResponse(answer.status.as_u16()));
        }
        // No integration responses: the answer passes through as it is (streaming), but for
        // the overrides a request template set.
        let content_type = answer.headers.get(CONTENT_TYPE).cloned();
        let mut response = Response::new(answer.body.into_response_body());
        *response.status_mut() = answer.status;
        if let Some(ct) = content_type {
            response.headers_mut().insert(CONTENT_TYPE, ct);
        }
        apply_response_overrides(&mut response, carried);
        return Ok(response);
    };
    let mut response_headers = HeaderMap::new();
    {
        let sources = method.sources(Some((&answer.headers, answer.body.bytes())));
        for (name, source) in &selected.headers {
            for value in source.resolve(&sources) {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response_headers.append(name.clone(), value);
                }
            }
        }
    }
    let accept = method
        .parts
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok());
    let (body, content_type, overrides) = match selected.templates.for_response(accept) {
        Some((media, template)) => {
            let input = method.input(body_text(answer.body.bytes(), handling));
            let rendered = render(mapper, isolation, template, &input).await?;
            let body = ResponseBody::full(Bytes::from(rendered.body.clone()));
            (body, HeaderValue::from_str(media).ok(), Some(rendered))
        }
        None => {
            let content_type = answer.headers.get(CONTENT_TYPE).cloned();
            (answer.body.into_response_body(), content_type, None)
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = selected.status;
    *response.headers_mut() = response_headers;
    if let Some(ct) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, ct);
    }
    apply_response_overrides(&mut response, carried);
    if let Some(rendered) = &overrides {
        apply_response_overrides(&mut response, rendered);
    }
    Ok(response)
}

fn apply_response_overrides(response: &mut Response<ResponseBody>, rendered: &Rendered) {
    if let Some(status) = rendered
        .response_status
        .and_then(|s| StatusCode::from_u16(s).ok())
    {
        *response.status_mut() = status;
    }
    for (name, values) in &rendered.response_header {
        set_header(response.headers_mut(), name, values);
    }
}

fn empty_rendered() -> Rendered {
    Rendered {
        body: String::new(),
        request_header: Vec::new(),
        request_path: Vec::new(),
        request_querystring: Vec::new(),
        response_header: Vec::new(),
        response_status: None,
    }
}

/// The request template for the request's media type, or `None` when the body passes
/// through unmapped; 415 when `passthrough` does not let it.
fn request_template<'m>(
    mapping: &'m Mapping,
    parts: &Parts,
) -> Result<Option<(&'m str, &'m MappingTemplate)>, GatewayError> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let chosen = mapping.request_templates.for_request(content_type);
    if chosen.is_none() {
        let passes = match mapping.passthrough {
            Passthrough::WhenNoMatch => true,
            Passthrough::WhenNoTemplates => mapping.request_templates.is_empty(),
            Passthrough::Never => false,
        };
        if !passes {
            return Err(GatewayError::UnsupportedMediaType(media_type(content_type)));
        }
    }
    Ok(chosen)
}

/// Steps 1 and 2, as the `http` and `aws` integrations share them.
struct MappedRequest {
    /// The template's output, or the received body when no template matched.
    body: Bytes,
    /// The template's media type, or the client's `Content-Type` when the body passes.
    content_type: Option<HeaderValue>,
    /// From `request_parameters`, then the template's overrides.
    headers: HeaderMap,
    path_values: Vec<(String, String)>,
    query: Vec<(String, String)>,
    rendered: Rendered,
}

async fn map_request(
    method: &MethodRequest<'_>,
    mapping: &Mapping,
    mapper: Option<&Arc<Plugin>>,
    isolation: Isolation,
    chosen: Option<(&str, &MappingTemplate)>,
) -> Result<MappedRequest, GatewayError> {
    // 1. The body.
    let (body, content_type, rendered) = match chosen {
        Some((media, template)) => {
            let input = method.input(body_text(&method.body, mapping.content_handling));
            let rendered = render(mapper, isolation, template, &input).await?;
            let body = if mapping.content_handling == ContentHandling::ConvertToBinary {
                base64::engine::general_purpose::STANDARD
                    .decode(rendered.body.trim().as_bytes())
                    .map(Bytes::from)
                    .map_err(|e| {
                        GatewayError::Mapping(crate::plugins::MapError::Template(format!(
                            "convert_to_binary: the template's output is not base64: {e}"
                        )))
                    })?
            } else {
                Bytes::from(rendered.body.clone())
            };
            (body, HeaderValue::from_str(media).ok(), rendered)
        }
        None => (
            method.body.clone(),
            method.parts.headers.get(CONTENT_TYPE).cloned(),
            empty_rendered(),
        ),
    };

    // 2. Headers, path and query: mappings, then the template's overrides.
    let mut headers = HeaderMap::new();
    let mut path_values: Vec<(String, String)> = Vec::new();
    let mut query: Vec<(String, String)> = Vec::new();
    {
        let sources = method.sources(None);
        for parameter in &mapping.request_parameters {
            let values = parameter.source.resolve(&sources);
            match &parameter.target {
                ParamTarget::Header(name) => {
                    for value in &values {
                        if let Ok(value) = HeaderValue::from_str(value) {
                            headers.append(name.clone(), value);
                        }
                    }
                }
                ParamTarget::Path(name) => {
                    if let Some(value) = values.into_iter().last() {
                        path_values.retain(|(n, _)| n != name);
                        path_values.push((name.clone(), value));
                    }
                }
                ParamTarget::Query(name) => {
                    query.retain(|(n, _)| n != name);
                    query.extend(values.into_iter().map(|v| (name.clone(), v)));
                }
            }
        }
    }
    for (name, values) in &rendered.request_header {
        set_header(&mut headers, name, values);
    }
    for (name, value) in &rendered.request_path {
        path_values.retain(|(n, _)| n != name);
        path_values.push((name.clone(), value.clone()));
    }
    for (name, values) in &rendered.request_querystring {
        query.retain(|(n, _)| n != name);
        query.extend(values.iter().map(|v| (name.clone(), v.clone())));
    }
    Ok(MappedRequest {
        body,
        content_type,
        headers,
        path_values,
        query,
        rendered,
    })
}

/// The integration URI: `{name}` from the mapped path values, else the route's own
/// parameter; the query from the mappings.
fn integration_uri(
    ctx: &RequestContext<'_>,
    parts: &Parts,
    template: &crate::upstream::UriTemplate,
    path_names: &[String],
    path_values: &[(String, String)],
    query: &[(String, String)],
) -> Result<http::Uri, GatewayError> {
    let raw_params = ctx.named_params(parts.uri.path());
    let values: Vec<String> = path_names
        .iter()
        .map(
            |name| match path_values.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => encode_segment(v),
                None => raw_params
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| (*v).to_owned())
                    .unwrap_or_default(),
            },
        )
        .collect();
    let value_refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let query_text = (!query.is_empty()).then(|| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter())
            .finish()
    });
    template
        .render(&value_refs, query_text.as_deref())
        .map_err(|e| GatewayError::Internal(format!("integration URI: {e}")))
}

/// Step 3: sends the integration request and reads the answer's body whole only when the
/// selected integration response reads it.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    ctx: &mut RequestContext<'_>,
    pool: &Arc<crate::upstream::OriginPool>,
    request: Request<RequestBody>,
    stats: Option<Arc<crate::body::BodyStats>>,
    mapping: &Mapping,
    accept: Option<&str>,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<Answer, GatewayError> {
    let sent = std::time::Instant::now();
    let answer = tokio::time::timeout(timeout, async {
        let response = pool.send(request).await?;
        let (head, body) = response.into_parts();
        let body = if reads_answer_body(mapping, head.status.as_u16(), accept) {
            let bytes =
                http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
                    .collect()
                    .await?
                    .to_bytes();
            AnswerBody::Buffered(bytes)
        } else {
            AnswerBody::Streaming(body)
        };
        Ok::<_, crate::body::BoxError>(Answer {
            status: head.status,
            headers: head.headers,
            body,
        })
    })
    .await;
    ctx.integration_latency = Some(sent.elapsed());
    match answer {
        Ok(Ok(answer)) => {
            ctx.integration_status = Some(answer.status.as_u16());
            Ok(answer)
        }
        Ok(Err(source)) => {
            if stats.as_ref().is_some_and(|s| s.over_limit()) {
                return Err(GatewayError::PayloadTooLarge { limit });
            }
            if stats.as_ref().is_some_and(|s| s.timed_out()) {
                return Err(GatewayError::BodyTimeout);
            }
            if stats.is_some_and(|s| s.client_failed()) {
                return Err(GatewayError::ClientBody(source));
            }
            Err(GatewayError::Upstream {
                origin: pool.origin.clone(),
                source,
            })
        }
        Err(_elapsed) => Err(GatewayError::Timeout {
            origin: pool.origin.clone(),
            after: timeout,
        }),
    }
}

/// A non-proxy `http` integration.
pub async fn http(
    gateway: &Generation,
    ctx: &mut RequestContext<'_>,
    target: &HttpTarget,
    isolation: Isolation,
    timeout: std::time::Duration,
    parts: Parts,
    mut body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    let limit = gateway.limits.max_body_bytes;
    let mapping = &*target.mapping;
    let chosen = request_template(mapping, &parts)?;
    // A body that passes through unmapped, and that no parameter mapping reads, streams.
    let reads_body = chosen.is_some()
        || mapping
            .request_parameters
            .iter()
            .any(|p| matches!(p.source, crate::mapping::ParamSource::Body(_)));
    let received = if reads_body {
        body.buffer(limit).await?
    } else {
        Bytes::new()
    };
    let method = MethodRequest::new(ctx, &parts, received);
    let mapped = map_request(&method, mapping, target.mapper.as_ref(), isolation, chosen).await?;
    let (out_body, stats) = match (reads_body, body) {
        (false, InBody::Streaming(incoming)) => RequestBody::limited(incoming, limit),
        (false, InBody::Buffered(bytes)) => (RequestBody::full(bytes), None),
        (true, _) => (RequestBody::full(mapped.body.clone()), None),
    };
    ctx.request_body = stats.clone();

    let mut out_headers = mapped.headers;
    // The template's media type, unless a mapping or override names another.
    if let Some(ct) = mapped.content_type
        && !out_headers.contains_key(CONTENT_TYPE)
    {
        out_headers.insert(CONTENT_TYPE, ct);
    }
    if !out_headers.contains_key(ACCEPT) {
        let accept = parts
            .headers
            .get(ACCEPT)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json"));
        out_headers.insert(ACCEPT, accept);
    }
    let authority = parts.uri.authority().and_then(|a| a.as_str().parse().ok());
    let host = parts.headers.get(http::header::HOST).cloned();
    headers::rewrite_request(
        &mut out_headers,
        &Forwarded {
            client_ip: &ctx.conn.client_ip,
            proto: ctx.conn.proto,
            host: authority.as_ref().or(host.as_ref()),
            request_id: &ctx.request_id,
        },
    );
    let uri = integration_uri(
        ctx,
        &parts,
        &target.uri,
        &target.path_names,
        &mapped.path_values,
        &mapped.query,
    )?;

    let mut request = Request::new(out_body);
    *request.method_mut() = target
        .method
        .clone()
        .unwrap_or_else(|| parts.method.clone());
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = out_headers;

    let accept = parts.headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let answer = exchange(
        ctx,
        &target.pool,
        request,
        stats,
        mapping,
        accept,
        limit,
        timeout,
    )
    .await?;
    respond(
        &method,
        mapping,
        target.mapper.as_ref(),
        isolation,
        answer,
        &mapped.rendered,
        mapping.content_handling,
    )
    .await
}

/// An `aws` integration: steps 1 and 2 as for `http`, then the request the service's
/// protocol takes, signed with SigV4, sent through the endpoint's pool.
///
/// - Query services (SQS, SNS): `POST` of a form: `Action` (and the URI's fixed
///   parameters) for an action, then the mapped query parameters, then the template's
///   output (`Action=SendMessage&MessageBody=...` for a path).
/// - JSON services (Step Functions, DynamoDB, Kinesis, EventBridge): `POST /` of the
///   template's output with `X-Amz-Target: {prefix}.{Action}` and the service's JSON type.
/// - REST services (S3): the method, path and query as mapped.
///
/// The body is always read whole: the signature covers its hash.
pub async fn aws(
    gateway: &Generation,
    ctx: &mut RequestContext<'_>,
    target: &AwsServiceTarget,
    isolation: Isolation,
    timeout: std::time::Duration,
    parts: Parts,
    mut body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    use crate::upstream::aws::{AwsTarget, Protocol};
    let limit = gateway.limits.max_body_bytes;
    let mapping = &*target.mapping;
    let chosen = request_template(mapping, &parts)?;
    let received = body.buffer(limit).await?;
    let method = MethodRequest::new(ctx, &parts, received);
    let mapped = map_request(&method, mapping, target.mapper.as_ref(), isolation, chosen).await?;
    let MappedRequest {
        body: mut out_body,
        content_type,
        headers: mut out_headers,
        path_values,
        mut query,
        rendered,
    } = mapped;
    let mut default_type = content_type;
    match (target.call.protocol(), &target.call.target) {
        (Protocol::Query, call) => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            if let AwsTarget::Action { action, params } = call {
                form.append_pair("Action", action);
                form.extend_pairs(params.iter());
            }
            form.extend_pairs(query.drain(..));
            let mut text = form.finish();
            if !out_body.is_empty() {
                if !text.is_empty() {
                    text.push('&');
                }
                text.push_str(&String::from_utf8_lossy(&out_body));
            }
            out_body = Bytes::from(text);
            default_type = Some(HeaderValue::from_static(
                "application/x-www-form-urlencoded; charset=utf-8",
            ));
        }
        (Protocol::Json { content_type, .. }, AwsTarget::Action { .. }) => {
            if let Some(amz_target) = &target.amz_target
                && !out_headers.contains_key("x-amz-target")
            {
                out_headers.insert(HeaderName::from_static("x-amz-target"), amz_target.clone());
            }
            default_type = Some(HeaderValue::from_static(content_type));
        }
        (Protocol::Json { .. } | Protocol::Rest, _) => {}
    }
    if let Some(ct) = default_type
        && !out_headers.contains_key(CONTENT_TYPE)
    {
        out_headers.insert(CONTENT_TYPE, ct);
    }
    if !out_headers.contains_key(ACCEPT) {
        out_headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    }
    let uri = integration_uri(
        ctx,
        &parts,
        &target.uri,
        &target.path_names,
        &path_values,
        &query,
    )?;
    let absolute = format!("{}{}", target.pool.origin, uri)
        .parse::<http::Uri>()
        .map_err(|e| GatewayError::Internal(format!("integration URI: {e}")))?;
    let mut signed = Request::new(out_body);
    *signed.method_mut() = target
        .method
        .clone()
        .unwrap_or_else(|| parts.method.clone());
    *signed.uri_mut() = absolute;
    *signed.headers_mut() = out_headers;
    crate::upstream::aws::sign_request(
        &mut signed,
        &target.credentials,
        &target.call.region,
        target.call.signing_name(),
        std::time::SystemTime::now(),
    )
    .map_err(|e| GatewayError::Internal(format!("signing the AWS request: {e}")))?;
    let (mut head, out_body) = signed.into_parts();
    head.uri = uri;
    head.version = Version::HTTP_11;
    let request = Request::from_parts(head, RequestBody::full(out_body));

    let accept = parts.headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let answer = exchange(
        ctx,
        &target.pool,
        request,
        None,
        mapping,
        accept,
        limit,
        timeout,
    )
    .await?;
    respond(
        &method,
        mapping,
        target.mapper.as_ref(),
        isolation,
        answer,
        &rendered,
        mapping.content_handling,
    )
    .await
}

/// A `mock` with templates: the request template's `statusCode` is the integration status.
pub async fn mock(
    gateway: &Generation,
    ctx: &mut RequestContext<'_>,
    target: &MappedMockTarget,
    isolation: Isolation,
    parts: Parts,
    mut body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    let received = body.buffer(gateway.limits.max_body_bytes).await?;
    let mapping = &*target.mapping;
    let method = MethodRequest::new(ctx, &parts, received.clone());
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (status, rendered) = match mapping.request_templates.for_request(content_type) {
        Some((_, template)) => {
            let input = method.input(body_text(&received, ContentHandling::Passthrough));
            let rendered = render(target.mapper.as_ref(), isolation, template, &input).await?;
            let status = edgeway_velocity::aws::mock_status(&rendered.body)
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            (status, rendered)
        }
        None => (StatusCode::OK, empty_rendered()),
    };
    let answer = Answer {
        status,
        headers: HeaderMap::new(),
        body: AnswerBody::Buffered(Bytes::new()),
    };
    respond(
        &method,
        mapping,
        target.mapper.as_ref(),
        isolation,
        answer,
        &rendered,
        ContentHandling::Passthrough,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_time_is_in_common_log_format() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(crate::encoding::clf_time(at), "14/Nov/2023:22:13:20 +0000");
    }

    #[test]
    fn path_values_are_encoded_and_decoded() {
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(percent_decode("a%20b%2fc%zz"), "a b/c%zz");
    }
}
