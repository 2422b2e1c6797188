//! The config file exactly as written: serde types that reject unknown keys.
//!
//! Values a validation error may point at are wrapped in [`Spanned`] so the error can name the
//! line. Nothing here is checked beyond its YAML type; `validate` turns these into the typed
//! model in `model`.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Spanned<Vec<RawListener>>,
    #[serde(default)]
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub origin: Option<Spanned<String>>,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub drain_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub workers: Option<Spanned<usize>>,
    #[serde(default)]
    pub plugins: Option<RawPlugins>,
    #[serde(default)]
    pub apis: Vec<RawApi>,
    #[serde(default)]
    pub state: Option<RawState>,
    #[serde(default)]
    pub counters: Option<RawCounters>,
    #[serde(default)]
    pub usage_plans: Vec<RawUsagePlan>,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the client.
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
    /// The node-wide (account) token bucket.
    #[serde(default)]
    pub throttle: Option<Spanned<RawThrottle>>,
    /// Custom domains: a Host and base path → an API's stage.
    #[serde(default)]
    pub domains: Vec<RawDomain>,
    /// `metrics: { enabled: false }` stops counting for `GET /metrics`.
    #[serde(default)]
    pub metrics: Option<RawMetrics>,
    /// The access log of stages without their own, and of requests that match no route.
    #[serde(default)]
    pub access_log: Option<Spanned<RawAccessLog>>,
    /// Where the spans of stages with `tracing` go (an OTLP/HTTP collector).
    #[serde(default)]
    pub tracing: Option<Spanned<RawTracing>>,
}

/// `tracing` (top level): the OTLP/HTTP collector spans are exported to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    /// `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: Spanned<String>,
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub queue_size: Option<Spanned<u64>>,
    #[serde(default)]
    pub batch_size: Option<Spanned<u64>>,
    #[serde(default)]
    pub export_interval_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
}

/// A stage's `tracing`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStageTracing {
    /// The share of new traces sampled, 0 to 1 (0.05 by default).
    #[serde(default)]
    pub sampling: Option<Spanned<f64>>,
    /// `traceresponse` on every response.
    #[serde(default)]
    pub response_header: bool,
}

/// A custom domain (`domains[]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDomain {
    /// `api.example.com`, or `*.example.com` for any one label there.
    pub name: Spanned<String>,
    /// The domain's own certificate, served by every TLS listener to clients that name it.
    #[serde(default)]
    pub tls: Option<RawCert>,
    /// A private domain: only these sources may call it.
    #[serde(default)]
    pub policy: Option<Spanned<RawPolicy>>,
    pub mappings: Spanned<Vec<RawBasePathMapping>>,
}

/// One base path mapping of a domain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasePathMapping {
    /// `v1`, `orders/v2`, or empty (also `(none)`, as API Gateway writes it) for the rest.
    #[serde(default)]
    pub base_path: Option<Spanned<String>>,
    pub api: Spanned<String>,
    pub stage: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    #[serde(default)]
    pub backend: Option<Spanned<String>>,
    #[serde(default)]
    pub path: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCounters {
    #[serde(default)]
    pub backend: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsagePlan {
    pub name: Spanned<String>,
    /// `api/stage` pairs.
    #[serde(default)]
    pub apis: Vec<Spanned<String>>,
    #[serde(default)]
    pub throttle: Option<Spanned<RawThrottle>>,
    #[serde(default)]
    pub quota: Option<Spanned<RawQuota>>,
    /// `api/stage/METHOD /path` → a per-route throttle within the plan.
    #[serde(default)]
    pub routes: BTreeMap<String, Spanned<RawThrottle>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    pub rate: Spanned<f64>,
    pub burst: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub limit: Spanned<u64>,
    pub period: Spanned<String>,
    #[serde(default)]
    pub offset: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugins {
    #[serde(default)]
    pub dir: Option<Spanned<String>>,
    #[serde(default)]
    pub cache_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub load: Vec<RawPlugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    pub name: Spanned<String>,
    pub role: Spanned<String>,
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub memory_mib: Option<Spanned<u64>>,
    #[serde(default)]
    pub body: bool,
    #[serde(default)]
    pub headers: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub allowed_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub http_timeout_ms: Option<Spanned<u64>>,
    /// Passed to the plugin as JSON; any shape.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizer {
    /// Exactly one of `plugin`, `lambda`, `jwt` and `sigv4`.
    #[serde(default)]
    pub plugin: Option<Spanned<String>>,
    /// A Lambda authorizer: a `lambda` plugin returning an IAM policy.
    #[serde(default)]
    pub lambda: Option<Spanned<RawLambdaAuthorizer>>,
    #[serde(default)]
    pub jwt: Option<Spanned<RawJwtAuthorizer>>,
    #[serde(default)]
    pub sigv4: Option<Spanned<RawSigV4Authorizer>>,
    #[serde(default)]
    pub identity_source: Vec<Spanned<String>>,
    #[serde(default)]
    pub result_ttl_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub principal_header: Option<Spanned<String>>,
    #[serde(default)]
    pub context_headers: BTreeMap<String, Spanned<String>>,
    /// `jwt` only: claim → header that carries its value to the origin.
    #[serde(default)]
    pub claims_headers: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLambdaAuthorizer {
    pub plugin: Spanned<String>,
    /// `token` or `request`: which input the function is given.
    #[serde(rename = "type")]
    pub input: Spanned<String>,
    /// The method ARN's region, account and API id, for policies that name them.
    #[serde(default)]
    pub region: Option<Spanned<String>>,
    #[serde(default)]
    pub account_id: Option<Spanned<String>>,
    #[serde(default)]
    pub api_id: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtAuthorizer {
    pub issuer: Spanned<String>,
    #[serde(default)]
    pub audiences: Vec<Spanned<String>>,
    pub jwks_url: Spanned<String>,
    #[serde(default)]
    pub algorithms: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub leeway_s: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigV4Authorizer {
    #[serde(default)]
    pub regions: Vec<Spanned<String>>,
    #[serde(default)]
    pub service: Option<Spanned<String>>,
    #[serde(default)]
    pub allow_unsigned_payload: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub addr: Spanned<String>,
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// HTTP/3 on the same port (UDP); TLS listeners only.
    #[serde(default)]
    pub http3: Option<Spanned<bool>>,
    /// QUIC's transport settings for `http3`.
    #[serde(default)]
    pub quic: Option<Spanned<RawQuic>>,
}

/// `listen[].quic`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuic {
    #[serde(default)]
    pub idle_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_concurrent_streams: Option<Spanned<u64>>,
    #[serde(default)]
    pub stream_window_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    pub connection_window_bytes: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub certs: Spanned<Vec<RawCert>>,
    /// Mutual TLS: client certificates checked against a truststore.
    #[serde(default)]
    pub client_auth: Option<Spanned<RawClientAuth>>,
}

/// `listen[].tls.client_auth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientAuth {
    /// PEM file of the CA certificates client certificates must chain to.
    pub ca: Spanned<String>,
    /// `require` (the default) or `optional`.
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    /// A request header the client certificate is forwarded in (URL-encoded PEM).
    #[serde(default)]
    pub forward_header: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCert {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub addr: Spanned<String>,
    #[serde(default)]
    pub token_env: Option<String>,
    /// `GET /metrics` needs the admin token too (it needs none by default).
    #[serde(default)]
    pub metrics_require_token: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub connect_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub pool_idle_timeout_s: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default)]
    pub max_body_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_header_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    pub integration_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub header_read_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub linger_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub linger_max_bytes: Option<Spanned<u64>>,
    /// Admission (see `listener::admission`): 0 turns a bound off.
    #[serde(default)]
    pub max_connections: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_connections_per_ip: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_in_flight: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_memory_mib: Option<Spanned<u64>>,
    /// HTTP/2: requests in flight on one connection.
    #[serde(default)]
    pub max_streams_per_connection: Option<Spanned<u64>>,
    /// HTTP/1: header fields in one request.
    #[serde(default)]
    pub max_headers: Option<Spanned<u64>>,
    /// The longest a client may send nothing of a request body it is sending (slow POST).
    #[serde(default)]
    pub body_read_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub name: Spanned<String>,
    /// An OpenAPI document the API is imported from (merged with what the API gives here).
    #[serde(default, skip_serializing)]
    pub openapi: Option<Spanned<RawOpenApi>>,
    #[serde(default)]
    pub stages: BTreeMap<String, RawStage>,
    #[serde(default)]
    pub authorizers: BTreeMap<String, Spanned<RawAuthorizer>>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Where API keys are read from: `header` (`x-api-key`, the default) or `authorizer`.
    #[serde(default)]
    pub api_key_source: Option<Spanned<String>>,
    /// JSON Schemas by name, for `validation.body.model`.
    #[serde(default)]
    pub models: BTreeMap<String, Spanned<RawSchemaSource>>,
    /// CORS for browsers calling the API from other origins.
    #[serde(default)]
    pub cors: Option<Spanned<RawCors>>,
    /// Source-IP allow and deny lists for every stage (a stage's own `policy` replaces it).
    #[serde(default)]
    pub policy: Option<Spanned<RawPolicy>>,
    /// Overrides of the gateway's own answers, by API Gateway's response type.
    #[serde(default)]
    pub gateway_responses: BTreeMap<String, Spanned<RawGatewayResponse>>,
    /// `http` (the default) or `websocket`.
    #[serde(default)]
    pub protocol: Option<Spanned<String>>,
    /// A WebSocket API's route selection expression, e.g. `$request.body.action`.
    #[serde(default)]
    pub route_selection: Option<Spanned<String>>,
    /// A WebSocket API's limits and `@connections` settings.
    #[serde(default)]
    pub websocket: Option<Spanned<RawWebSocket>>,
}

/// `websocket:` on a WebSocket API.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebSocket {
    #[serde(default)]
    pub max_message_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_frame_bytes: Option<Spanned<u64>>,
    /// Whether clients may send binary frames.
    #[serde(default)]
    pub binary: bool,
    #[serde(default)]
    pub idle_timeout_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_duration_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub ping_interval_s: Option<Spanned<u64>>,
    /// Messages queued for one client before `@connections` answers 429.
    #[serde(default)]
    pub send_queue: Option<Spanned<u64>>,
    /// The authorizer (of this API's `authorizers`) that `@connections` requests on the
    /// listener must pass; absent, `@connections` is served on the admin API only.
    #[serde(default)]
    pub connections_auth: Option<Spanned<String>>,
}

/// `openapi: FILE` or `openapi: { file: FILE, functions: {...}, strict: true }`.
#[derive(Debug)]
pub struct RawOpenApi {
    pub file: String,
    /// Lambda function ARN or name → the plugin that serves it.
    pub functions: BTreeMap<String, String>,
    /// Refuse the document if the import would warn about anything.
    pub strict: bool,
}

impl<'de> Deserialize<'de> for RawOpenApi {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            file: String,
            #[serde(default)]
            functions: BTreeMap<String, String>,
            #[serde(default)]
            strict: bool,
        }
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = RawOpenApi;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a file name or { file, functions, strict }")
            }
            fn visit_str<E>(self, file: &str) -> Result<RawOpenApi, E> {
                Ok(RawOpenApi {
                    file: file.to_owned(),
                    functions: BTreeMap::new(),
                    strict: false,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawOpenApi, A::Error> {
                let full = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawOpenApi {
                    file: full.file,
                    functions: full.functions,
                    strict: full.strict,
                })
            }
        }
        deserializer.deserialize_any(Form)
    }
}

/// One `gateway_responses` entry: what replaces the default response of that type.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayResponse {
    #[serde(default)]
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub body: Option<Spanned<String>>,
}

/// Where a JSON Schema comes from: exactly one of the fields.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchemaSource {
    #[serde(default)]
    pub model: Option<Spanned<String>>,
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStageCache {
    #[serde(default)]
    pub capacity_mib: Option<Spanned<u64>>,
    #[serde(default)]
    pub ttl_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_entry_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    pub invalidation: Option<RawInvalidation>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawInvalidation {
    #[serde(default)]
    pub require_authorization: Option<bool>,
    #[serde(default)]
    pub unauthorized_strategy: Option<Spanned<String>>,
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub api_keys: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteCache {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub ttl_s: Option<Spanned<u64>>,
    #[serde(default)]
    pub key: Vec<Spanned<String>>,
    #[serde(default)]
    pub ignore_cache_control: bool,
    #[serde(default)]
    pub statuses: Option<Spanned<Vec<u16>>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidation {
    #[serde(default)]
    pub validate: Option<Spanned<String>>,
    #[serde(default)]
    pub required: Vec<Spanned<String>>,
    #[serde(default)]
    pub body: Option<Spanned<RawSchemaSource>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Metrics by route as well as by API and stage (API Gateway's detailed CloudWatch
    /// metrics); off by default to bound the number of series.
    #[serde(default)]
    pub detailed_metrics: bool,
    #[serde(default)]
    pub cache: Option<Spanned<RawStageCache>>,
    /// Replaces the API's `policy` for this stage.
    #[serde(default)]
    pub policy: Option<Spanned<RawPolicy>>,
    #[serde(default)]
    pub throttle: Option<Spanned<RawThrottle>>,
    /// An API docs page for the stage: its OpenAPI document and Swagger UI.
    #[serde(default)]
    pub docs: Option<Spanned<RawDocs>>,
    /// The stage's access log: its format and where it goes.
    #[serde(default)]
    pub access_log: Option<Spanned<RawAccessLog>>,
    /// Execution logs on stderr: `off` (default), `error` or `info`.
    #[serde(default)]
    pub logging_level: Option<Spanned<String>>,
    /// Execution logs with headers and the first 1,024 bytes of bodies (secrets redacted).
    #[serde(default)]
    pub data_trace: bool,
    /// Traces: W3C trace context and spans exported to the node's `tracing` collector.
    #[serde(default)]
    pub tracing: Option<Spanned<RawStageTracing>>,
}

/// `access_log`: `{ format: clf | json | xml | csv | '<$context variables>', destination:
/// stdout | off | { file: PATH } }`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    /// A preset's name or a format of `$context` variables; Edgeway's JSON line when absent.
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    #[serde(default)]
    pub destination: Option<Spanned<RawDestination>>,
}

/// An access log's `destination`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RawDestination {
    /// `stdout` or `off`.
    Named(String),
    /// `{ file: PATH }`, relative to the config's folder.
    File { file: String },
}

/// A stage's `docs`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDocs {
    /// Below the stage; `/docs` by default.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub route: Spanned<String>,
    pub integration: Spanned<RawIntegration>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub auth: Option<Spanned<String>>,
    /// With a `jwt` authorizer: the token needs one of these scopes.
    #[serde(default)]
    pub scopes: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub isolation: Option<Spanned<String>>,
    #[serde(default)]
    pub request_transforms: Vec<Spanned<String>>,
    #[serde(default)]
    pub response_transforms: Vec<Spanned<String>>,
    #[serde(default)]
    pub cache: Option<Spanned<RawRouteCache>>,
    #[serde(default)]
    pub validation: Option<Spanned<RawValidation>>,
    #[serde(default)]
    pub api_key_required: bool,
    /// Per stage: one bucket for all of the route's callers.
    #[serde(default)]
    pub throttle: Option<Spanned<RawThrottle>>,
    /// WebSocket routes: `two-way` sends the integration's answer back to the client,
    /// `one-way` (the default) drops it.
    #[serde(default)]
    pub response: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntegration {
    #[serde(default)]
    pub http_proxy: Option<Spanned<String>>,
    /// A non-proxy HTTP integration, with mapping templates and parameter mappings.
    #[serde(default)]
    pub http: Option<Spanned<RawHttp>>,
    #[serde(default)]
    pub function: Option<Spanned<RawFunction>>,
    #[serde(default)]
    pub mock: Option<RawMock>,
    /// An AWS service called directly (API Gateway's `AWS` type), signed with SigV4.
    #[serde(default)]
    pub aws: Option<Spanned<RawAws>>,
}

/// `function: PLUGIN` (a handler given Edgeway's request record) or
/// `function: { plugin: PLUGIN, payload: aws-proxy-1.0 | aws-proxy-2.0 | edgeway }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFunction {
    pub plugin: String,
    /// `None` when written as a bare name; `edgeway` means the same.
    pub payload: Option<String>,
}

impl<'de> Deserialize<'de> for RawFunction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            plugin: String,
            #[serde(default)]
            payload: Option<String>,
        }
        struct Form;
        impl<'de> serde::de::Visitor<'de> for Form {
            type Value = RawFunction;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a plugin name or { plugin, payload }")
            }
            fn visit_str<E>(self, plugin: &str) -> Result<RawFunction, E> {
                Ok(RawFunction {
                    plugin: plugin.to_owned(),
                    payload: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawFunction, A::Error> {
                let full = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawFunction {
                    plugin: full.plugin,
                    payload: full.payload,
                })
            }
        }
        deserializer.deserialize_any(Form)
    }
}

impl Serialize for RawFunction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match &self.payload {
            None => serializer.serialize_str(&self.plugin),
            Some(payload) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("plugin", &self.plugin)?;
                map.serialize_entry("payload", payload)?;
                map.end()
            }
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMock {
    #[serde(default)]
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    /// Answer with the request's own body (`body` is then not allowed).
    #[serde(default)]
    pub echo: bool,
    /// API Gateway's MOCK: the request template picks the status (`{"statusCode": 404}`).
    #[serde(default)]
    pub request_templates: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub responses: Vec<Spanned<RawIntegrationResponse>>,
}

/// `integration: { http: {...} }`: API Gateway's non-proxy `HTTP` integration.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    pub uri: Spanned<String>,
    /// By media type; in order (the first is the response side's fallback).
    #[serde(default)]
    pub request_templates: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub passthrough: Option<Spanned<String>>,
    /// `integration.request.(header|path|querystring).NAME` ← a source.
    #[serde(default)]
    pub request_parameters: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub content_handling: Option<Spanned<String>>,
    #[serde(default)]
    pub responses: Vec<Spanned<RawIntegrationResponse>>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
}

impl RawHttp {
    pub fn mapping_fields(&self) -> RawMappingFields<'_> {
        RawMappingFields {
            method: self.method.as_ref(),
            request_templates: &self.request_templates,
            passthrough: self.passthrough.as_ref(),
            request_parameters: &self.request_parameters,
            content_handling: self.content_handling.as_ref(),
            responses: &self.responses,
        }
    }
}

/// `metrics`: whether requests are counted for `GET /metrics` (on by default).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `integration: { aws: {...} }`: an AWS service action or path, called with the request
/// the templates build and signed with SigV4. The call is written either as API Gateway's
/// `uri` (`arn:aws:apigateway:REGION:SERVICE:action/ACTION`) or as `service`, `region` and
/// `action` or `path`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    #[serde(default)]
    pub uri: Option<Spanned<String>>,
    #[serde(default)]
    pub service: Option<Spanned<String>>,
    #[serde(default)]
    pub region: Option<Spanned<String>>,
    #[serde(default)]
    pub action: Option<Spanned<String>>,
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    /// Where the keys come from; absent: `AWS_ACCESS_KEY_ID` and its companions, else the
    /// shared credentials file's profile.
    #[serde(default)]
    pub credentials: Option<Spanned<RawAwsCredentials>>,
    /// `scheme://host[:port]` instead of `https://SERVICE.REGION.amazonaws.com`.
    #[serde(default)]
    pub endpoint: Option<Spanned<String>>,
    #[serde(default)]
    pub request_templates: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub passthrough: Option<Spanned<String>>,
    #[serde(default)]
    pub request_parameters: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub content_handling: Option<Spanned<String>>,
    #[serde(default)]
    pub responses: Vec<Spanned<RawIntegrationResponse>>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
}

impl RawAws {
    pub fn mapping_fields(&self) -> RawMappingFields<'_> {
        RawMappingFields {
            method: self.method.as_ref(),
            request_templates: &self.request_templates,
            passthrough: self.passthrough.as_ref(),
            request_parameters: &self.request_parameters,
            content_handling: self.content_handling.as_ref(),
            responses: &self.responses,
        }
    }
}

/// `credentials`: environment variables that hold the keys, or a profile of the shared
/// credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAwsCredentials {
    #[serde(default)]
    pub access_key_env: Option<Spanned<String>>,
    #[serde(default)]
    pub secret_key_env: Option<Spanned<String>>,
    #[serde(default)]
    pub session_token_env: Option<Spanned<String>>,
    #[serde(default)]
    pub profile: Option<Spanned<String>>,
}

/// What the `http` and `aws` integrations share: the method, templates, parameter mappings
/// and integration responses.
#[derive(Debug, Clone, Copy)]
pub struct RawMappingFields<'a> {
    pub method: Option<&'a Spanned<String>>,
    pub request_templates: &'a IndexMap<String, Spanned<String>>,
    pub passthrough: Option<&'a Spanned<String>>,
    pub request_parameters: &'a IndexMap<String, Spanned<String>>,
    pub content_handling: Option<&'a Spanned<String>>,
    pub responses: &'a [Spanned<RawIntegrationResponse>],
}

/// One integration response: which integration statuses it takes, and what the client gets.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntegrationResponse {
    #[serde(default)]
    pub selection_pattern: Option<Spanned<String>>,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub status: Option<Spanned<u16>>,
    /// `method.response.header.NAME` ← a source.
    #[serde(default)]
    pub response_parameters: IndexMap<String, Spanned<String>>,
    #[serde(default)]
    pub response_templates: IndexMap<String, Spanned<String>>,
}

/// An API's `cors`: API Gateway HTTP API's `corsConfiguration` fields.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    #[serde(default)]
    pub allow_origins: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_methods: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub allow_headers: Vec<Spanned<String>>,
    #[serde(default)]
    pub expose_headers: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default)]
    pub max_age_s: Option<Spanned<u64>>,
}

/// A resource `policy`: CIDRs allowed and denied by source IP.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
}
