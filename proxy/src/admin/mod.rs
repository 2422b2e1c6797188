//! The admin listener: health for load balancers and orchestrators, and the operator API.
//!
//! `GET /healthz` (the process is up), `GET /readyz` (it takes traffic; 503 while draining)
//! and `GET /metrics` (Prometheus; `admin.metrics_require_token` puts it behind the token)
//! need no token. Everything under `/admin/` needs `Authorization: Bearer <token>`, the token
//! being the value of the environment variable named by `admin.token_env`; without that
//! variable every `/admin/` request is refused.
//!
//! Plugins (`plugins.rs`): `GET /admin/plugins` lists them with version and call statistics;
//! `PUT /admin/plugins/{name}` with a component as the body swaps in a new version.
//!
//! API keys (`keys.rs`): `/admin/keys` creates, lists, changes, deletes and imports them.
//!
//! Access keys for SigV4 authorizers (`access_keys.rs`): `/admin/access-keys` creates (the
//! secret is shown once), lists, changes (enable, disable, rename) and deletes them.
//!
//! APIs, stages, deployments and canaries (`deployments.rs`): `/admin/apis` and
//! `/admin/deployments`, the lifecycle `edgeway deploy`, `rollback` and `canary` drive.
//!
//! Stage caches (`cache.rs`): `GET /admin/cache` shows sizes and counters;
//! `DELETE /admin/cache/{api}/{stage}` flushes a stage or drops one route's entries.

mod access_keys;
mod cache;
mod certificates;
mod connections;
mod crud;
mod deployments;
mod domains;
mod keys;
mod plugins;
mod usage;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::node::Node;

/// Serves the admin API until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    token_env: Option<String>,
    metrics_require_token: bool,
    node: Arc<Node>,
    mut shutdown: watch::Receiver<bool>,
) {
    let token: Option<Arc<str>> = token_env
        .as_deref()
        .and_then(|name| std::env::var(name).ok())
        .filter(|t| !t.is_empty())
        .map(Into::into);
    if token.is_none() {
        tracing::warn!(
            token_env = token_env.as_deref(),
            "no admin token is set; /admin/ requests will be refused"
        );
    }
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|&stop| stop) => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let node = node.clone();
        let token = token.clone();
        let service = service_fn(move |request| {
            let node = node.clone();
            let token = token.clone();
            async move {
                if request.uri().path() == "/metrics" {
                    return Ok(metrics(
                        &node,
                        token.as_deref(),
                        metrics_require_token,
                        &request,
                    ));
                }
                Ok::<_, std::convert::Infallible>(handle(&node, token.as_deref(), request).await)
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    graceful.shutdown().await;
}

pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"message": text}` with `status`.
pub(crate) fn message(status: StatusCode, text: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(
        status,
        serde_json::json!({ "message": text.to_string() }).to_string(),
    )
}

/// An admin request's body, up to `limit` bytes: 413 past it, 400 when it cannot be read.
pub(crate) async fn read_body(
    body: Incoming,
    limit: usize,
) -> Result<Bytes, Response<Full<Bytes>>> {
    use http_body_util::BodyExt;
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                message(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is over {limit} bytes"),
                )
            } else {
                message(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                )
            }
        })
}

/// Compares without returning early, so response timing does not reveal the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(token: Option<&str>, request: &Request<Incoming>) -> bool {
    let Some(token) = token else { return false };
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|given| same_secret(given, token.as_bytes()))
}

async fn handle(
    node: &Arc<Node>,
    token: Option<&str>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let path = path.as_str();
    if path.starts_with("/admin/") && !authorized(token, &request) {
        return json(StatusCode::UNAUTHORIZED, r#"{"message":"Unauthorized"}"#);
    }
    if let Some(name) = path.strip_prefix("/admin/plugins/")
        && request.method() == Method::PUT
    {
        return plugins::put(node, name, request.into_body()).await;
    }
    if let Some(rest) = path.strip_prefix("/admin/keys")
        && (rest.is_empty() || rest.starts_with('/'))
    {
        let method = request.method().clone();
        return keys::handle(node, &method, rest, request.into_body()).await;
    }
    if let Some(rest) = path.strip_prefix("/admin/access-keys")
        && (rest.is_empty() || rest.starts_with('/'))
    {
        let method = request.method().clone();
        return access_keys::handle(node, &method, rest, request.into_body()).await;
    }
    if let Some(rest) = path.strip_prefix("/admin/apis")
        && (rest.is_empty() || rest.starts_with('/'))
        && !path.ends_with("/openapi")
    {
        let method = request.method().clone();
        return deployments::apis(node, &method, rest, request.into_body()).await;
    }
    if let Some(rest) = path.strip_prefix("/admin/deployments/") {
        let method = request.method().clone();
        return deployments::deployments(node, &method, rest).await;
    }
    if let Some(rest) = path.strip_prefix("/admin/plans")
        && (rest.is_empty() || rest.starts_with('/'))
        && request.method() != Method::GET
    {
        let method = request.method().clone();
        return usage::change_plans(node, &method, rest, request.into_body()).await;
    }
    if let Some(id) = path.strip_prefix("/admin/connections/") {
        let (method, id) = (request.method().clone(), id.to_owned());
        return connections::handle(node, &method, &id, request.into_body()).await;
    }
    if let Some(rest) = path.strip_prefix("/admin/cache/")
        && request.method() == Method::DELETE
    {
        return cache::delete(node, rest, request.uri().query());
    }
    if request.method() != Method::GET {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"message":"Method Not Allowed"}"#,
        );
    }
    match path {
        "/healthz" => json(StatusCode::OK, r#"{"status":"ok"}"#),
        "/readyz" if node.draining.load(Ordering::Relaxed) => {
            json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#)
        }
        "/readyz" => json(StatusCode::OK, r#"{"status":"ready"}"#),
        "/admin/plugins" => plugins::list(node),
        "/admin/cache" => cache::list(node),
        "/admin/usage" => usage::get(node, request.uri().query()).await,
        "/admin/plans" => usage::plans(node),
        "/admin/domains" => domains::list(node),
        "/admin/certificates" => certificates::list(node),
        "/admin/openapi" => admin_document(request.uri().query()),
        _ if path.starts_with("/admin/apis/") && path.ends_with("/openapi") => {
            openapi_document(node, path, request.uri().query())
        }
        "/admin/config" => {
            let gateway = node.generation.load();
            let mut response = json(StatusCode::OK, gateway.redacted_config.clone());
            response.headers_mut().insert(
                "x-edgeway-config-generation",
                HeaderValue::from(gateway.generation),
            );
            response
        }
        _ => json(StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#),
    }
}

/// `GET /metrics`: the Prometheus text of the current generation's and the node's counts.
fn metrics(
    node: &Node,
    token: Option<&str>,
    require_token: bool,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if require_token && !authorized(token, request) {
        return json(StatusCode::UNAUTHORIZED, r#"{"message":"Unauthorized"}"#);
    }
    if request.method() != Method::GET {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"message":"Method Not Allowed"}"#,
        );
    }
    let generation = node.generation.load();
    if !generation.metrics_enabled {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"message":"metrics are off (metrics.enabled: false)"}"#,
        );
    }
    let set = node.plugins.current();
    let mut names: Vec<&String> = set.by_name.keys().collect();
    names.sort();
    let plugins = names
        .into_iter()
        .filter_map(|name| set.get(name))
        .map(|plugin| {
            let version = plugin.current();
            let stats = version.stats.snapshot();
            crate::telemetry::metrics::PluginCounts {
                call_time: version.stats.call_time.snapshot(),
                instantiations: stats.instantiations,
                idle_instances: version.idle_instances() as u64,
                name: plugin.spec.name.clone(),
                calls: stats.calls,
                timeouts: stats.timeouts,
                out_of_memory: stats.out_of_memory,
                other_failures: stats
                    .failures
                    .saturating_sub(stats.timeouts + stats.out_of_memory),
            }
        })
        .collect();
    let text = crate::telemetry::metrics::Scrape {
        sets: generation.metrics.clone(),
        plugins,
        node: node.counters.clone(),
        generation: generation.generation,
        access_log_dropped: node.log.dropped_total(),
        spans_dropped: generation.exporter.as_ref().map(|e| e.dropped()),
        caches: generation
            .caches
            .all()
            .into_iter()
            .map(|cache| {
                let (entries, bytes) = cache.usage();
                crate::telemetry::metrics::CacheCounts {
                    api: cache.api.to_string(),
                    stage: cache.stage.to_string(),
                    capacity_bytes: cache.capacity_bytes,
                    bytes,
                    entries,
                    stores: cache.stats.stores.load(Ordering::Relaxed),
                    evictions: cache.stats.evictions.load(Ordering::Relaxed),
                }
            })
            .collect(),
        origins: generation.origin_counters(),
        listeners: node.counters.listeners(),
        refused: node.admission.refused(),
        in_flight: node.admission.in_flight() as u64,
        certificates: node
            .serving
            .load()
            .certificates()
            .iter()
            .map(|c| (c.cert_path.display().to_string(), c.current().not_after))
            .collect(),
    }
    .render();
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The admin API's own OpenAPI document, kept beside the handlers it describes.
const ADMIN_DOCUMENT: &str = include_str!("openapi.yaml");

/// `GET /admin/openapi[?format=json]`: [`ADMIN_DOCUMENT`], as written (YAML) or as JSON.
fn admin_document(query: Option<&str>) -> Response<Full<Bytes>> {
    match query.unwrap_or_default() {
        "" | "format=yaml" => {
            let mut response = json(StatusCode::OK, ADMIN_DOCUMENT);
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
            response
        }
        "format=json" => {
            // Read once: the document is part of the binary.
            static AS_JSON: std::sync::OnceLock<Result<Bytes, String>> = std::sync::OnceLock::new();
            match AS_JSON.get_or_init(|| {
                serde_saphyr::from_str::<serde_json::Value>(ADMIN_DOCUMENT)
                    .map(|d| Bytes::from(d.to_string()))
                    .map_err(|e| e.to_string())
            }) {
                Ok(document) => json(StatusCode::OK, document.clone()),
                Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, e),
            }
        }
        other => message(
            StatusCode::BAD_REQUEST,
            format!("unknown parameters {other}: expected format=yaml or format=json"),
        ),
    }
}

/// `GET /admin/apis/{api}/openapi?stage=S&extensions=aws|none&format=json|yaml`: the API as
/// the current generation serves it, as `edgeway export` writes it.
fn openapi_document(node: &Node, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    let api = path
        .trim_start_matches("/admin/apis/")
        .trim_end_matches("/openapi");
    let mut stage = None;
    let mut extensions = true;
    let mut yaml = false;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (&*key, &*value) {
            ("stage", s) => stage = Some(s.to_owned()),
            ("extensions", "aws") => extensions = true,
            ("extensions", "none") => extensions = false,
            ("format", "json") => yaml = false,
            ("format", "yaml") => yaml = true,
            (k, v) => {
                let message = serde_json::json!({
                    "message": format!("unknown parameter {k}={v}: expected stage, extensions=aws|none, format=json|yaml")
                });
                return json(StatusCode::BAD_REQUEST, message.to_string());
            }
        }
    }
    let gateway = node.generation.load();
    let Some(document) = gateway
        .definitions
        .export(api, stage.as_deref(), extensions, None)
    else {
        let names: Vec<&str> = gateway.definitions.names().collect();
        let message = serde_json::json!({
            "message": format!("no api \"{api}\" with stage {}", stage.as_deref().unwrap_or("(any)")),
            "apis": names,
        });
        return json(StatusCode::NOT_FOUND, message.to_string());
    };
    if yaml {
        let mut response = json(
            StatusCode::OK,
            serde_saphyr::to_string(&document).unwrap_or_default(),
        );
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml"),
        );
        response
    } else {
        json(
            StatusCode::OK,
            serde_json::to_vec_pretty(&document).unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secret_comparison() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
