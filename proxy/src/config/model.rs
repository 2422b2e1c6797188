//! The validated config: every value checked, defaults filled in, files loaded.
//!
//! A `Config` is what `validate` produces from the raw file and what the gateway is built from;
//! holding one means the config is good. TLS material and the upstream trust roots are loaded
//! here, so a missing or unreadable certificate is a config error, found by `edgeway validate`
//! and refused on reload like any other.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

pub use crate::auth::ip_policy::{IpPolicy, TrustedProxies};
pub use crate::auth::keys::ApiKeySource;
pub use crate::auth::{
    Authorizer, AuthorizerKind, DEFAULT_AUTHORIZER_TTL, DEFAULT_PRINCIPAL_HEADER, IdentitySource,
};
pub use crate::cache::{InvalidationPolicy, UnauthorizedStrategy};
pub use crate::cors::CorsPolicy;
pub use crate::plugins::{Isolation, PluginRole, PluginSpec, PluginsConfig};
use crate::router::{RouteMethod, RoutePattern};
pub use crate::throttle::{DEFAULT_ACCOUNT_THROTTLE, Quota, QuotaPeriod, Throttle};
pub use crate::upstream::Upstream;
use crate::upstream::UriTemplate;
pub use crate::validation::params::RequestParam;
pub use crate::validation::{BodySchema, RequestValidation, ValidateMode};

/// Default for `limits.max_body_bytes`: 10 MiB, as API Gateway.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Default for `limits.max_header_bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// The HTTP/1 parser cannot work with a smaller header buffer than this.
pub const MIN_MAX_HEADER_BYTES: usize = 8 * 1024;
/// Default for `limits.integration_timeout_ms`: 29 s, as API Gateway.
pub const DEFAULT_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);
/// Default for `limits.header_read_timeout_ms`.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for `drain_timeout_s`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for `upstream.connect_timeout_ms`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for `upstream.pool_idle_timeout_s`.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A node's whole configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: Vec<Listener>,
    /// Whether requests are counted for `GET /metrics` (`metrics.enabled`, on by default).
    pub metrics: bool,
    /// The access log of stages without their own and of unrouted requests (`access_log`);
    /// Edgeway's line on stdout when absent.
    pub access_log: Option<crate::telemetry::AccessLogSettings>,
    /// Where spans go (`tracing`); none when absent.
    pub tracing: Option<crate::telemetry::traces::ExportSettings>,
    pub admin: Option<Admin>,
    pub upstream: Upstream,
    pub limits: Limits,
    /// How long SIGTERM waits for in-flight requests before exiting anyway.
    pub drain_timeout: Duration,
    /// Runtime worker threads; 0 means one per core.
    pub workers: usize,
    pub apis: Vec<Api>,
    /// The plugins to load (`plugins`).
    pub plugins: PluginsConfig,
    /// Where node state (API keys, usage) is kept.
    pub state: StateConfig,
    /// Where quota counts are kept.
    pub counters: CountersConfig,
    /// Usage plans: which stages a key may call, and how often.
    pub usage_plans: Vec<UsagePlan>,
    /// Proxies whose `X-Forwarded-For` names the client (`trusted_proxies`); none by default.
    pub trusted_proxies: TrustedProxies,
    /// The node-wide (account-level) token bucket for every request to a route.
    pub throttle: Throttle,
    /// Custom domains (`domains`): a Host and base path → an API's stage.
    pub domains: Vec<crate::domains::Domain>,
    /// The file as JSON with secrets replaced, for `GET /admin/config`.
    pub redacted: serde_json::Value,
    /// The files read besides the config itself (OpenAPI documents and what they refer to):
    /// a change to one reloads the config, as a change to the config does.
    pub sources: Vec<std::path::PathBuf>,
    /// What loading found but did not refuse (OpenAPI import warnings), to be logged.
    pub warnings: Vec<String>,
    /// Each API as the file defines it (an `openapi:` document merged in), for export.
    pub definitions: Vec<std::sync::Arc<super::raw::RawApi>>,
    /// The `origin` as written, for `${origin}` in exported integration URIs.
    pub origin: Option<String>,
    /// The config file's folder, which relative paths (model files) are read from.
    pub base_dir: std::path::PathBuf,
}

/// `state`: the backend, and the embedded store's folder (default `data` beside the config
/// file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    pub backend: StateBackend,
    pub path: std::path::PathBuf,
}

/// `state.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBackend {
    /// A redb file in `state.path` (the default).
    Embedded,
}

/// `counters`: where quota counts are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountersConfig {
    pub backend: CountersBackend,
}

/// `counters.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountersBackend {
    /// This node's memory, seeded from stored usage when a key is first seen (the default).
    Local,
}

/// A usage plan.
#[derive(Debug, Clone)]
pub struct UsagePlan {
    pub name: String,
    /// (api, stage) pairs the plan's keys may call.
    pub stages: Vec<(String, String)>,
    /// Per key, across all of the plan's stages.
    pub throttle: Option<Throttle>,
    pub quota: Option<Quota>,
    /// (api, stage, route as written) → a per-route throttle per key.
    pub routes: Vec<((String, String, String), Throttle)>,
}

/// One `listen` entry.
#[derive(Debug)]
pub struct Listener {
    pub addr: SocketAddr,
    /// Present for a TLS listener: certificates chosen by SNI, ALPN h2 and http/1.1.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The certificates it serves (its own, then the domains'), each reloaded when its files
    /// change, and the truststore for client certificates (`tls.client_auth`).
    pub certs: Vec<Arc<crate::listener::tls::CertSlot>>,
    pub truststore: Option<Arc<crate::listener::tls::Truststore>>,
    /// The request header a client certificate is forwarded in (`client_auth.forward_header`).
    pub client_cert_header: Option<http::HeaderName>,
    /// Present when the listener serves HTTP/3 on its port (UDP) as well (`http3`).
    pub http3: Option<crate::listener::quic::Http3>,
    /// The QUIC side's server config (the same certificates, ALPN h3), with `http3`.
    pub quic: Option<Arc<quinn::ServerConfig>>,
}

/// The admin listener.
#[derive(Debug)]
pub struct Admin {
    pub addr: SocketAddr,
    /// The environment variable holding the bearer token for `/admin/*`. Unset: every
    /// `/admin/*` request is refused.
    pub token_env: Option<String>,
    /// Whether `GET /metrics` needs the token as well.
    pub metrics_require_token: bool,
}

/// Request limits (`limits`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_header_bytes: usize,
    pub integration_timeout: Duration,
    pub header_read_timeout: Duration,
    /// How a connection closed under a client still sending is read out first
    /// (`linger_timeout_ms`, `linger_max_bytes`).
    pub linger: crate::listener::Linger,
    /// Connections and requests the node lets in (`max_connections`,
    /// `max_connections_per_ip`, `max_in_flight`, `max_memory_mib`).
    pub admission: crate::listener::admission::AdmissionLimits,
    /// HTTP/2 requests in flight per connection (`max_streams_per_connection`).
    pub max_streams_per_connection: u32,
    /// HTTP/1 header fields per request (`max_headers`).
    pub max_headers: usize,
    /// The longest a request body may stall (`body_read_timeout_ms`): then 408.
    pub body_read_timeout: Duration,
}

/// One API: its stages and routes.
#[derive(Debug)]
pub struct Api {
    pub name: String,
    pub api_key_source: ApiKeySource,
    /// JSON Schemas by name (`models`), compiled.
    pub models: BTreeMap<String, Arc<BodySchema>>,
    pub stages: Vec<Stage>,
    /// The API's authorizers, by name.
    pub authorizers: BTreeMap<String, Authorizer>,
    pub routes: Vec<Route>,
    /// CORS rules for browsers (`cors`); none: the gateway leaves CORS to the origin.
    pub cors: Option<Arc<CorsPolicy>>,
    /// Source-IP rules for stages without their own (`policy`).
    pub policy: Option<Arc<IpPolicy>>,
    /// Overrides of the gateway's own responses (`gateway_responses`); empty when none.
    pub gateway_responses: Arc<crate::gateway_responses::GatewayResponses>,
    /// Set for a WebSocket API (`protocol: websocket`).
    pub websocket: Option<Arc<crate::websocket::WebSocketSettings>>,
}

/// A stage of an API; its name is the first path segment of every request to it.
#[derive(Debug)]
pub struct Stage {
    pub name: String,
    pub variables: BTreeMap<String, String>,
    /// The stage's response cache (`cache`); none when absent.
    pub cache: Option<StageCacheSettings>,
    /// Source-IP rules that replace the API's for this stage (`policy`).
    pub policy: Option<Arc<IpPolicy>>,
    /// One bucket for every request to the stage.
    pub throttle: Option<Throttle>,
    /// Where below the stage its API docs page is served (`docs.path`); none when off.
    pub docs: Option<String>,
    /// What the stage serves: the config, or a deployment.
    pub source: StageSource,
    /// Whether its metrics are kept by route too (`detailed_metrics`).
    pub detailed_metrics: bool,
    /// Its access log (`access_log`); the node-wide one when absent.
    pub access_log: Option<crate::telemetry::AccessLogSettings>,
    /// Its execution logs (`logging_level`, `data_trace`).
    pub execution: crate::telemetry::execution::Execution,
    /// Its part in traces (`tracing`); none when absent.
    pub tracing: Option<crate::telemetry::traces::StageTracing>,
}

/// Where a stage's routes come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StageSource {
    /// The config as it is now (no deployment named: API Gateway's `auto_deploy`).
    #[default]
    Config,
    /// A deployment, by id.
    Deployment(String),
    /// The stage's canary, serving a deployment beside the stage's own.
    Canary {
        deployment: String,
        /// Whether its requests read and fill the stage cache.
        use_stage_cache: bool,
    },
}

impl StageSource {
    /// The deployment served, if any.
    pub fn deployment(&self) -> Option<&str> {
        match self {
            Self::Config => None,
            Self::Deployment(id) | Self::Canary { deployment: id, .. } => Some(id),
        }
    }
}

/// Default for a stage cache's `capacity_mib`.
pub const DEFAULT_CACHE_CAPACITY_MIB: u64 = 64;
/// Default for a stage cache's `ttl_s`: 300 s, as API Gateway.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// The longest TTL a stage or route may set: 3600 s, as API Gateway.
pub const MAX_CACHE_TTL_S: u64 = 3600;
/// Default for a stage cache's `max_entry_bytes`: 1 MiB, as API Gateway.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// A stage's response cache.
#[derive(Debug, Clone)]
pub struct StageCacheSettings {
    /// Keys, headers and bodies counted.
    pub capacity_bytes: u64,
    /// How long an entry is served; routes may override it. Zero: routes that do not set
    /// their own TTL are not cached.
    pub ttl: Duration,
    /// A response body larger than this is served but not stored.
    pub max_entry_bytes: usize,
    pub invalidation: Arc<InvalidationPolicy>,
}

/// A route's cache settings (`cache` on the route).
#[derive(Debug, Clone, Default)]
pub struct RouteCacheSettings {
    /// `None`: GET and HEAD are cached, other methods are not.
    pub enabled: Option<bool>,
    /// Overrides the stage's TTL.
    pub ttl: Option<Duration>,
    /// The parameters that separate entries.
    pub key: Vec<RequestParam>,
    /// Store even when the origin says `no-store` or `private`.
    pub ignore_cache_control: bool,
    /// Statuses that are stored; `None` means any 2xx.
    pub statuses: Option<Vec<u16>>,
}

/// One route of an API.
#[derive(Debug)]
pub struct Route {
    pub method: RouteMethod,
    pub pattern: RoutePattern,
    /// The route as written, `"GET /pets/{id}"`; used in logs.
    pub key: String,
    pub integration: Integration,
    /// Overrides `limits.integration_timeout`.
    pub timeout: Option<Duration>,
    /// The API authorizer that runs first (`auth`).
    pub auth: Option<String>,
    /// With a `jwt` authorizer: a token needs one of these scopes (`scopes`; none: no check).
    pub scopes: Vec<String>,
    /// Whether plugin calls share instances (`isolation`).
    pub isolation: Isolation,
    /// Transformer plugins run on the request, in order.
    pub request_transforms: Vec<String>,
    /// Transformer plugins run on the response, in order.
    pub response_transforms: Vec<String>,
    /// How the route uses its stage's cache (defaults when the route has no `cache`).
    pub cache: RouteCacheSettings,
    /// Required parameters and body schema (`validation`).
    pub validation: Option<Arc<RequestValidation>>,
    /// Requests need an enabled API key of a plan that covers the stage (403 otherwise).
    pub api_key_required: bool,
    /// One bucket per stage for every request to the route.
    pub throttle: Option<Throttle>,
    /// Set on a WebSocket API's routes (`key` is then the route key, `$connect` the stage
    /// root's `GET`): whether the integration's answer goes back to the client.
    pub websocket: Option<crate::websocket::RouteResponse>,
}

/// Where a route's requests go.
#[derive(Debug)]
pub enum Integration {
    /// Pass the request through to this URI; one template per stage of the API, in the order of
    /// `Api::stages`, with `${origin}` and stage variables already filled in.
    HttpProxy { per_stage: Vec<UriTemplate> },
    /// Answer from config.
    Mock(Mock),
    /// Answer from a handler plugin.
    Function { plugin: String },
    /// Answer from a `lambda` plugin given API Gateway's proxy event.
    Lambda {
        plugin: String,
        format: crate::lambda::ProxyFormat,
    },
    /// A non-proxy HTTP integration: templates and parameter mappings both ways.
    Http(crate::mapping::HttpIntegration),
    /// A mock whose request template chooses the status and whose responses map it.
    MappedMock(crate::mapping::MockMapping),
    /// An AWS service called directly, signed with SigV4.
    Aws(crate::mapping::AwsIntegration),
    /// A WebSocket API's `@connections/{connectionId}` (POST, GET or DELETE by the method).
    Connections,
}

impl Integration {
    /// The mapping, for the integrations that have one.
    pub fn mapping(&self) -> Option<&crate::mapping::Mapping> {
        match self {
            Self::Http(http) => Some(&http.mapping),
            Self::MappedMock(mock) => Some(&mock.mapping),
            Self::Aws(aws) => Some(&aws.mapping),
            Self::HttpProxy { .. }
            | Self::Mock(_)
            | Self::Function { .. }
            | Self::Lambda { .. }
            | Self::Connections => None,
        }
    }
}

/// A fixed response.
#[derive(Debug, Clone)]
pub struct Mock {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Answer with the request's body instead of `body` (`echo: true`).
    pub echo: bool,
}
