//! A compiled config generation: everything a request needs, built once when config loads.
//!
//! The node holds the current `Generation` in an `ArcSwap`; each request takes an `Arc` to it at
//! the start, so a reload swaps the whole thing atomically while requests in flight finish on
//! the generation they started with.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::auth::access_keys::AccessKeys;
use crate::auth::keys::{ApiKeySource, ApiKeys};
use crate::auth::{ApiAuthorizer, JwtVerifiers, RouteAuth};
use crate::cache::{InvalidationPolicy, StageCache, StageCaches};
use crate::config::{
    Config, Integration, Isolation, Limits, Mock, RequestParam, RequestValidation, Route, UsagePlan,
};
use crate::gateway_responses::GatewayResponses;
use crate::plugins::{Plugin, PluginSet};
use crate::router::{RouteMethod, Router};
use crate::telemetry::RouteLabels;
use crate::throttle::{Limiter, PlanLimits, Scope, SharedBucket, Throttle};
use crate::upstream::{OriginPool, OriginPools, UriTemplate};

/// A validated config that still cannot be served: what config validation cannot see (the
/// plugins actually loaded, origins the pools cannot reach by name, settings the verifiers
/// refuse).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("plugin {0} is not loaded")]
    PluginNotLoaded(String),
    #[error("api {api}: authorizer {name}: {source}")]
    Authorizer {
        api: String,
        name: String,
        source: crate::auth::AuthorizerError,
    },
    #[error("authorizer {0} is not defined")]
    UndefinedAuthorizer(String),
    #[error(transparent)]
    Origin(#[from] crate::upstream::OriginError),
    #[error("api {api}: route {route} is defined twice in stage {stage}")]
    DuplicateRoute {
        api: String,
        route: String,
        stage: String,
    },
}

/// One config generation, ready to serve.
#[derive(Debug)]
pub struct Generation {
    /// 1 for the config the node started with, +1 for each accepted reload.
    pub generation: u64,
    pub router: Router<RouteTarget>,
    pub limits: Limits,
    pub drain_timeout: Duration,
    /// The config as served by `GET /admin/config`.
    pub redacted_config: Bytes,
    /// The stage caches, by api and stage (kept across reloads that keep their capacity).
    pub caches: StageCaches,
    /// The node's API keys (node state: the same across reloads).
    pub keys: Arc<ApiKeys>,
    /// Throttle buckets, quota counts and usage (node state: the same across reloads).
    pub limiter: Arc<Limiter>,
    /// The node's access keys for SigV4 authorizers (node state, like `keys`).
    pub access_keys: Arc<AccessKeys>,
    /// The JWT verifiers of this generation's authorizers, kept for the next to reuse.
    jwt_verifiers: JwtVerifiers,
    /// The usage plans of this config.
    pub usage_plans: Arc<[UsagePlan]>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::auth::ip_policy::TrustedProxies,
    /// By stage name, for requests that match no route: the stage's API when it is the only
    /// API with that stage and it overrides gateway responses.
    pub unrouted: HashMap<Box<str>, UnroutedStage>,
    pools: OriginPools,
}

/// The API whose gateway responses answer a request to a stage that matches no route.
#[derive(Debug)]
pub struct UnroutedStage {
    pub api: Box<str>,
    pub variables: Arc<[(String, String)]>,
    pub responses: Arc<GatewayResponses>,
}

/// What serving one route in one stage takes: each concern's piece of the route, compiled
/// when the generation is built.
#[derive(Debug)]
pub struct RouteTarget {
    pub labels: Arc<RouteLabels>,
    /// What the route's API and stage lend every request.
    pub scope: RouteScope,
    /// Who may call: source-IP policy, authorizer, API key.
    pub access: RouteAccess,
    /// The shared buckets a request takes a token from, most specific first: route, stage,
    /// account.
    pub throttle: Box<[Arc<SharedBucket>]>,
    /// Required parameters and body schema, checked before the cache and the integration.
    pub validation: Option<Arc<RequestValidation>>,
    /// How this route uses its stage's cache; `None` when nothing of it is cached.
    pub cache: Option<RouteCache>,
    /// The plugins that rewrite the request and the response.
    pub transforms: RouteTransforms,
    /// What answers the request.
    pub integration: RouteIntegration,
    /// The API's CORS rules (`cors`), shared by its routes: preflights are answered by the
    /// gateway and responses get the CORS headers.
    pub cors: Option<Arc<crate::cors::CorsPolicy>>,
    /// How the route's plugins (transforms, function) are isolated.
    pub isolation: Isolation,
    /// See [`RouteTarget::has_phases`].
    has_phases: bool,
}

/// What a route's API and stage lend every request to it, on every path.
#[derive(Debug)]
pub struct RouteScope {
    /// The route's path parameter names, in the order the router returns their values.
    pub param_names: Box<[Box<str>]>,
    /// The stage's variables, for plugins and gateway responses.
    pub stage_variables: Arc<[(String, String)]>,
    /// The API's gateway response overrides; `None` when it has none.
    pub responses: Option<Arc<GatewayResponses>>,
}

/// Who may call a route.
#[derive(Debug)]
pub struct RouteAccess {
    /// Source-IP rules (the stage's `policy`, else the API's); `None` when there are none.
    pub ip_policy: Option<Arc<crate::auth::ip_policy::IpPolicy>>,
    /// Runs before everything else when set (`auth`), with the route's `scopes`.
    pub auth: Option<RouteAuth>,
    /// The headers the API's authorizers use to tell the origin who is calling: removed from
    /// every request to the API, so a client cannot claim an identity on any route.
    pub principal_headers: Arc<[http::HeaderName]>,
    /// Set when requests need an API key (`api_key_required`).
    pub api_key: Option<ApiKeyCheck>,
}

/// A route's request and response transforms, in the order they run.
#[derive(Debug)]
pub struct RouteTransforms {
    pub request: Box<[Arc<Plugin>]>,
    pub response: Box<[Arc<Plugin>]>,
}

/// What answers a route's requests, and how long it may take.
#[derive(Debug)]
pub struct RouteIntegration {
    pub target: Target,
    /// The integration timeout for this route.
    pub timeout: Duration,
}

/// What an API key must be for a route in one stage.
#[derive(Debug)]
pub struct ApiKeyCheck {
    pub source: ApiKeySource,
    /// The usage plans that cover the route's api and stage (the key must be in one), with
    /// what each asks of this route's requests.
    pub plans: Box<[PlanLimits]>,
}

/// A route's use of its stage cache, resolved for one stage.
#[derive(Debug)]
pub struct RouteCache {
    pub store: Arc<StageCache>,
    /// The route as written: the route part of every key.
    pub route: Arc<str>,
    /// Changes when the route's integration or cache settings change (see `CacheKey`).
    pub revision: u64,
    pub ttl: Duration,
    /// The parameters that separate entries.
    pub key: Arc<[RequestParam]>,
    /// Every method is cached; otherwise only GET and HEAD.
    pub all_methods: bool,
    pub ignore_cache_control: bool,
    pub statuses: Option<Box<[u16]>>,
    pub max_entry_bytes: usize,
    pub invalidation: Arc<InvalidationPolicy>,
}

impl RouteCache {
    /// Whether requests with `method` are cached.
    pub fn caches(&self, method: &http::Method) -> bool {
        self.all_methods || method == http::Method::GET || method == http::Method::HEAD
    }
}

impl RouteTarget {
    /// True when the request needs any phase beyond routing, the throttle and the integration;
    /// false sends it down the pipeline's fast path. Worked out once, when the route is built.
    pub fn has_phases(&self) -> bool {
        self.has_phases
    }

    /// Whether anything the route holds needs a phase. Every field, here and in each group,
    /// is named, so a field added to the route does not compile until it is sorted in: a new
    /// phase cannot be left off the fast path's test by mistake.
    fn needs_phases(&self) -> bool {
        let Self {
            // Used on every path, phases or not.
            labels: _,
            scope: _,
            throttle: _,
            isolation: _,
            has_phases: _,
            // Each needs its phase.
            access,
            validation,
            cache,
            transforms,
            integration,
            cors,
        } = self;
        access.needs_phase()
            || validation.is_some()
            || cache.is_some()
            || transforms.needs_phase()
            || integration.needs_phase()
            || cors.is_some()
    }
}

impl RouteAccess {
    fn needs_phase(&self) -> bool {
        let Self {
            ip_policy,
            auth,
            principal_headers,
            api_key,
        } = self;
        ip_policy.is_some() || auth.is_some() || !principal_headers.is_empty() || api_key.is_some()
    }
}

impl RouteTransforms {
    fn needs_phase(&self) -> bool {
        let Self { request, response } = self;
        !request.is_empty() || !response.is_empty()
    }
}

impl RouteIntegration {
    /// A function needs the request's context built for its plugin; an origin or a mock do
    /// not.
    fn needs_phase(&self) -> bool {
        let Self { target, timeout: _ } = self;
        match target {
            Target::Function(_) => true,
            Target::Mock(_) | Target::Proxy { .. } => false,
        }
    }
}

/// The stages whose unrouted requests one API's gateway responses answer.
fn unrouted_stages(config: &Config) -> HashMap<Box<str>, UnroutedStage> {
    let mut apis_per_stage: HashMap<&str, usize> = HashMap::new();
    for stage in config.apis.iter().flat_map(|a| &a.stages) {
        *apis_per_stage.entry(&stage.name).or_default() += 1;
    }
    let mut unrouted = HashMap::new();
    for api in config
        .apis
        .iter()
        .filter(|a| !a.gateway_responses.is_empty())
    {
        for stage in api
            .stages
            .iter()
            .filter(|s| apis_per_stage[s.name.as_str()] == 1)
        {
            unrouted.insert(
                stage.name.as_str().into(),
                UnroutedStage {
                    api: api.name.as_str().into(),
                    variables: stage
                        .variables
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    responses: api.gateway_responses.clone(),
                },
            );
        }
    }
    unrouted
}

/// What a route keeps in the cache for one stage, if anything: the stage must have a cache,
/// the TTL (the route's, else the stage's) must be above zero, and the route must not opt out.
fn route_cache(
    route: &Route,
    stage: &crate::config::Stage,
    caches: &mut StageCaches,
    api: &str,
    previous: Option<&StageCaches>,
) -> Option<RouteCache> {
    let settings = stage.cache.as_ref()?;
    let ttl = route.cache.ttl.unwrap_or(settings.ttl);
    if route.cache.enabled == Some(false) || ttl.is_zero() {
        return None;
    }
    let all_methods = route.cache.enabled == Some(true);
    // An ANY route caches its GET and HEAD requests (`RouteCache::caches`).
    if !all_methods
        && !matches!(
            route.method,
            RouteMethod::Get | RouteMethod::Head | RouteMethod::Any
        )
    {
        return None;
    }
    let revision = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        format!(
            "{:?}|{:?}|{:?}",
            route.integration, route.cache, stage.variables
        )
        .hash(&mut hasher);
        hasher.finish()
    };
    Some(RouteCache {
        store: caches.get_or_create(api, &stage.name, settings.capacity_bytes, previous),
        route: route.key.as_str().into(),
        revision,
        ttl,
        key: route.cache.key.clone().into(),
        all_methods,
        ignore_cache_control: route.cache.ignore_cache_control,
        statuses: route.cache.statuses.clone().map(Into::into),
        max_entry_bytes: settings.max_entry_bytes,
        invalidation: settings.invalidation.clone(),
    })
}

/// What a route's API key must be in one stage, and the limits of each plan that covers it.
fn api_key_check(
    config: &Config,
    limiter: &Limiter,
    (api, stage, route): (&str, &str, &str),
    source: ApiKeySource,
) -> ApiKeyCheck {
    let plans = config
        .usage_plans
        .iter()
        .filter(|p| p.stages.iter().any(|(a, s)| a == api && s == stage))
        .map(|p| {
            let route_limits = p
                .routes
                .iter()
                .find(|((a, s, r), _)| a == api && s == stage && r == route)
                .map(|(_, t)| {
                    let slot = limiter.slot(&format!("route:{api}/{stage}/{route}"));
                    (slot, *t)
                });
            // The quota is part of the name: a reload that changes it starts the keys' entries
            // (and counts, seeded from stored usage) again under the new windows.
            let slot = limiter.slot(&format!("plan:{}:{:?}", p.name, p.quota));
            PlanLimits::new(&p.name, slot, p.throttle, route_limits, p.quota)
        })
        .collect();
    ApiKeyCheck { source, plans }
}

/// The shared buckets of a route in one stage, most specific first.
fn route_buckets(
    limiter: &Limiter,
    (api, stage, route): (&str, &str, &str),
    (route_limits, stage_limits): (Option<Throttle>, Option<Throttle>),
    account: &Arc<SharedBucket>,
) -> Box<[Arc<SharedBucket>]> {
    let mut buckets = Vec::with_capacity(3);
    if let Some(limits) = route_limits {
        let name = format!("route:{api}/{stage}/{route}");
        buckets.push(limiter.shared_bucket(Scope::Route, &name, limits));
    }
    if let Some(limits) = stage_limits {
        let name = format!("stage:{api}/{stage}");
        buckets.push(limiter.shared_bucket(Scope::Stage, &name, limits));
    }
    buckets.push(account.clone());
    buckets.into()
}

/// Where a route's requests go.
#[derive(Debug)]
pub enum Target {
    Proxy {
        uri: UriTemplate,
        pool: Arc<OriginPool>,
    },
    Mock(Mock),
    /// A handler plugin answers.
    Function(Arc<Plugin>),
}

impl Generation {
    /// Builds a generation from a validated config and its loaded `plugins`, reusing
    /// `previous`'s origin pools where the origin and upstream settings are unchanged.
    pub fn build(
        config: &Config,
        plugins: &PluginSet,
        keys: Arc<ApiKeys>,
        access_keys: Arc<AccessKeys>,
        limiter: Arc<Limiter>,
        generation: u64,
        previous: Option<&Generation>,
    ) -> Result<Self, BuildError> {
        let plugin = |name: &str| -> Result<Arc<Plugin>, BuildError> {
            plugins
                .get(name)
                .cloned()
                .ok_or_else(|| BuildError::PluginNotLoaded(name.to_owned()))
        };
        limiter.forget_unused_buckets();
        let mut jwt_verifiers = JwtVerifiers::default();
        let account = limiter.shared_bucket(Scope::Account, "account", config.throttle);
        let mut pools = OriginPools::default();
        let mut caches = StageCaches::default();
        let mut router = Router::new();
        let unrouted = unrouted_stages(config);
        for api in &config.apis {
            let mut authorizers = std::collections::HashMap::new();
            for (name, authorizer) in &api.authorizers {
                let runtime = ApiAuthorizer::build(
                    authorizer,
                    |name| plugins.get(name).cloned(),
                    &config.upstream,
                    &access_keys,
                    &mut jwt_verifiers,
                    previous.map(|p| &p.jwt_verifiers),
                )
                .map_err(|source| BuildError::Authorizer {
                    api: api.name.clone(),
                    name: name.clone(),
                    source,
                })?;
                authorizers.insert(name.as_str(), Arc::new(runtime));
            }
            let mut principal_headers: Vec<http::HeaderName> = Vec::new();
            for authorizer in api.authorizers.values() {
                let names = std::iter::once(&authorizer.principal_header)
                    .chain(authorizer.context_headers.iter().map(|(_, h)| h));
                for name in names {
                    if !principal_headers.contains(name) {
                        principal_headers.push(name.clone());
                    }
                }
            }
            let principal_headers: Arc<[http::HeaderName]> = principal_headers.into();
            let stage_variables: Vec<Arc<[(String, String)]>> = api
                .stages
                .iter()
                .map(|s| {
                    s.variables
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .collect();
            for route in &api.routes {
                let auth = match &route.auth {
                    Some(name) => Some(RouteAuth::new(
                        authorizers
                            .get(name.as_str())
                            .cloned()
                            .ok_or_else(|| BuildError::UndefinedAuthorizer(name.clone()))?,
                        &route.scopes,
                    )),
                    None => None,
                };
                let request_transforms = route
                    .request_transforms
                    .iter()
                    .map(|n| plugin(n))
                    .collect::<Result<Box<[_]>, _>>()?;
                let response_transforms = route
                    .response_transforms
                    .iter()
                    .map(|n| plugin(n))
                    .collect::<Result<Box<[_]>, _>>()?;
                let param_names: Box<[Box<str>]> =
                    route.pattern.param_names().map(Into::into).collect();
                for (s, stage) in api.stages.iter().enumerate() {
                    let target = match &route.integration {
                        Integration::Mock(mock) => Target::Mock(mock.clone()),
                        Integration::Function { plugin: name } => Target::Function(plugin(name)?),
                        Integration::HttpProxy { per_stage } => {
                            let uri = per_stage[s].clone();
                            let pool = pools.get_or_create(
                                uri.origin(),
                                &config.upstream,
                                previous.map(|p| &p.pools),
                            )?;
                            Target::Proxy { uri, pool }
                        }
                    };
                    let labels = Arc::new(RouteLabels::new(&api.name, &stage.name, &route.key));
                    let mut entry = RouteTarget {
                        labels,
                        scope: RouteScope {
                            param_names: param_names.clone(),
                            stage_variables: stage_variables[s].clone(),
                            responses: (!api.gateway_responses.is_empty())
                                .then(|| api.gateway_responses.clone()),
                        },
                        access: RouteAccess {
                            ip_policy: stage
                                .policy
                                .as_ref()
                                .or(api.policy.as_ref())
                                .filter(|p| !p.allow.is_empty() || !p.deny.is_empty())
                                .cloned(),
                            auth: auth.clone(),
                            principal_headers: principal_headers.clone(),
                            api_key: route.api_key_required.then(|| {
                                api_key_check(
                                    config,
                                    &limiter,
                                    (&api.name, &stage.name, &route.key),
                                    api.api_key_source,
                                )
                            }),
                        },
                        throttle: route_buckets(
                            &limiter,
                            (&api.name, &stage.name, &route.key),
                            (route.throttle, stage.throttle),
                            &account,
                        ),
                        validation: route.validation.clone(),
                        cache: route_cache(
                            route,
                            stage,
                            &mut caches,
                            &api.name,
                            previous.map(|p| &p.caches),
                        ),
                        transforms: RouteTransforms {
                            request: request_transforms.clone(),
                            response: response_transforms.clone(),
                        },
                        integration: RouteIntegration {
                            target,
                            timeout: route.timeout.unwrap_or(config.limits.integration_timeout),
                        },
                        cors: api.cors.clone(),
                        isolation: route.isolation,
                        has_phases: false,
                    };
                    entry.has_phases = entry.needs_phases();
                    router
                        .insert(&stage.name, route.method, &route.pattern, entry)
                        .map_err(|_| BuildError::DuplicateRoute {
                            api: api.name.clone(),
                            route: route.key.clone(),
                            stage: stage.name.clone(),
                        })?;
                }
            }
        }

        Ok(Self {
            generation,
            router,
            limits: config.limits,
            drain_timeout: config.drain_timeout,
            redacted_config: Bytes::from(
                serde_json::to_vec_pretty(&config.redacted).unwrap_or_default(),
            ),
            caches,
            keys,
            access_keys,
            jwt_verifiers,
            limiter,
            usage_plans: config.usage_plans.clone().into(),
            trusted_proxies: config.trusted_proxies.clone(),
            unrouted,
            pools,
        })
    }
}
