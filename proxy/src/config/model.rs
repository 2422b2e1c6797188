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

pub use crate::cors::CorsPolicy;
pub use crate::ip_policy::{IpPolicy, TrustedProxies};
pub use crate::params::RequestParam;
pub use crate::plugins::{Isolation, PluginRole, PluginSpec, PluginsConfig};
use crate::router::{RouteMethod, RoutePattern};
use crate::upstream::UriTemplate;
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
    /// Usage plans: which stages a key may call, and how often.
    pub usage_plans: Vec<UsagePlan>,
    /// Proxies whose `X-Forwarded-For` names the client (`trusted_proxies`); none by default.
    pub trusted_proxies: TrustedProxies,
    /// The node-wide (account-level) token bucket for every request to a route.
    pub throttle: Throttle,
    /// The file as JSON with secrets replaced, for `GET /admin/config`.
    pub redacted: serde_json::Value,
}

/// `state`: the embedded store's folder (default `data` beside the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    pub path: std::path::PathBuf,
}

/// Default node-wide throttle: 10,000 requests per second with a burst of 5,000, API Gateway's
/// default account limit.
pub const DEFAULT_ACCOUNT_THROTTLE: Throttle = Throttle {
    rate: 10_000.0,
    burst: 5_000,
};

/// A token bucket: `burst` requests at once, refilled at `rate` per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u64,
}

/// A quota window, in UTC calendar terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    /// Monday 00:00 UTC to the next.
    Week,
    Month,
}

/// `limit` requests per `period`; `offset` requests are taken off the first period's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub period: QuotaPeriod,
    pub offset: u64,
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

/// Where a route's API key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeySource {
    /// The `x-api-key` header.
    Header,
    /// The `usage-key` the route's authorizer returned.
    Authorizer,
}

/// One `listen` entry.
#[derive(Debug)]
pub struct Listener {
    pub addr: SocketAddr,
    /// Present for a TLS listener: certificates chosen by SNI, ALPN h2 and http/1.1.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The admin listener.
#[derive(Debug)]
pub struct Admin {
    pub addr: SocketAddr,
    /// The environment variable holding the bearer token for `/admin/*`. Unset: every
    /// `/admin/*` request is refused.
    pub token_env: Option<String>,
}

/// How the gateway connects to origins.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// System roots plus `ca_file`, for https origins.
    pub tls: Arc<rustls::ClientConfig>,
    pub connect_timeout: Duration,
    pub pool_idle_timeout: Duration,
    /// Identifies the settings above (the trust roots by a digest of their contents), so a
    /// reload that keeps them keeps warm connections.
    pub fingerprint: String,
}

/// Request limits (`limits`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_header_bytes: usize,
    pub integration_timeout: Duration,
    pub header_read_timeout: Duration,
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
}

/// Default for an authorizer's `result_ttl_s`: 300 s, as API Gateway.
pub const DEFAULT_AUTHORIZER_TTL: Duration = Duration::from_secs(300);
/// Default for an authorizer's `principal_header`.
pub const DEFAULT_PRINCIPAL_HEADER: &str = "x-edgeway-principal";

/// An authorizer of an API: what decides, what identifies a caller, and what reaches the origin.
#[derive(Debug, Clone)]
pub struct Authorizer {
    pub name: String,
    /// A plugin, a JWT issuer or SigV4 signatures.
    pub kind: AuthorizerKind,
    /// Read before the plugin is called; a missing one is 401 without a call. A `jwt`
    /// authorizer reads its token from the one source (default `header.authorization`);
    /// `sigv4` has none.
    pub identity_source: Vec<IdentitySource>,
    /// How long a plugin's decision is cached per identity; zero disables the cache.
    pub result_ttl: Duration,
    /// Carries the principal id to the origin (a token's `sub`, an access key id).
    pub principal_header: http::HeaderName,
    /// Context key (a plugin's context, a token's claim for `jwt`'s `claims_headers`) →
    /// header that carries its value to the origin.
    pub context_headers: Vec<(String, http::HeaderName)>,
}

/// What an authorizer checks.
#[derive(Debug, Clone)]
pub enum AuthorizerKind {
    /// A plugin with role `authorizer`, by name.
    Plugin { plugin: String },
    /// A bearer JWT, checked against the issuer's JWKS (`jwt`).
    Jwt(crate::auth::jwt::JwtSettings),
    /// An AWS Signature Version 4 made with an access key of the state store (`sigv4`).
    SigV4(crate::auth::sigv4::SigV4Settings),
}

/// Where an identity value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    Header(http::HeaderName),
    Query(String),
    Path(String),
    StageVariable(String),
}

impl IdentitySource {
    /// The source's value in a request: `params` are its path parameters (name, value).
    pub fn read<'a>(
        &self,
        parts: &'a http::request::Parts,
        params: &[(&'a str, &'a str)],
        stage_variables: &'a [(String, String)],
    ) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match self {
            Self::Header(name) => parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed),
            Self::Query(name) => {
                crate::encoding::query_param(parts.uri.query()?, name).map(Cow::Owned)
            }
            Self::Path(name) => params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Cow::Borrowed(*v)),
            Self::StageVariable(name) => stage_variables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Cow::Borrowed(v.as_str())),
        }
    }

    /// The source as plugins see it: `header.authorization`, `query.token`, ...
    pub fn label(&self) -> String {
        match self {
            Self::Header(name) => format!("header.{name}"),
            Self::Query(name) => format!("query.{name}"),
            Self::Path(name) => format!("path.{name}"),
            Self::StageVariable(name) => format!("stage.{name}"),
        }
    }
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

/// Who may make the cache refetch an entry with `Cache-Control: max-age=0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidationPolicy {
    /// False: any client may.
    pub require_authorization: bool,
    /// What happens to a client that may not.
    pub unauthorized: UnauthorizedStrategy,
    /// Principal ids (from the route's authorizer) that may.
    pub principals: Vec<String>,
    /// Usage keys (an authorizer's `usage-key`) that may.
    pub api_keys: Vec<String>,
}

impl InvalidationPolicy {
    /// Whether a request from `principal` with `usage_key` (both set only by the route's
    /// authorizer) may invalidate.
    pub fn allows(&self, principal: Option<&str>, usage_key: Option<&str>) -> bool {
        !self.require_authorization
            || principal.is_some_and(|p| self.principals.iter().any(|q| q == p))
            || usage_key.is_some_and(|k| self.api_keys.iter().any(|q| q == k))
    }
}

/// API Gateway's `unauthorizedCacheControlHeaderStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnauthorizedStrategy {
    /// 403, and the origin sees nothing.
    FailWith403,
    /// The header is ignored; the response says so in `x-cache-invalidation: denied`.
    SucceedWithResponseHeader,
    /// The header is ignored silently.
    SucceedWithoutResponseHeader,
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
}

/// A fixed response.
#[derive(Debug, Clone)]
pub struct Mock {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}
