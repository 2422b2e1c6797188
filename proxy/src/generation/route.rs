//! One route in one stage, as a generation serves it: [`RouteTarget`], grouped by concern, and
//! how each group is built from the config's route, its stage and its API.
//!
//! Each group has its own `build`, given the route's [`Site`] (where in the config it is) and
//! the generation's [`Build`] (what its routes share: pools, caches, limiter, plugins); a
//! group says with `needs_phase` whether the pipeline must run a phase for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::access_keys::AccessKeys;
use crate::auth::keys::ApiKeySource;
use crate::auth::{ApiAuthorizer, JwtVerifiers, RouteAuth};
use crate::cache::{InvalidationPolicy, StageCache, StageCaches};
use crate::config::{
    Api, Config, Integration, Isolation, Mock, RequestParam, RequestValidation, Route, Stage,
    StageSource,
};
use crate::gateway_responses::GatewayResponses;
use crate::mapping::Mapping;
use crate::plugins::{Plugin, PluginSet};
use crate::router::RouteMethod;
use crate::telemetry::RouteLabels;
use crate::throttle::{Limiter, PlanLimits, Scope, SharedBucket};
use crate::upstream::{OriginPool, OriginPools, UriTemplate};

use super::{BuildError, Generation};

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
    /// Set on the base side of a stage with a canary: which requests go to the canary.
    pub canary: Option<Arc<super::CanarySplit>>,
    /// Set on a WebSocket API's `$connect`: the request must be a WebSocket upgrade, which
    /// the route's answer accepts (2xx) or refuses.
    pub websocket: Option<Arc<crate::websocket::WebSocketSettings>>,
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
    /// On a WebSocket route: whether the answer goes back to the client.
    pub response: crate::websocket::RouteResponse,
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
            // Used on every path, phases or not (but execution logs write from the phases).
            labels,
            scope,
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
        labels.execution.needs_phases()
            || scope.websocket.is_some()
            || access.needs_phase()
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
        let Self {
            target,
            timeout: _,
            response: _,
        } = self;
        match target {
            Target::Function(_)
            | Target::Lambda { .. }
            | Target::Http(_)
            | Target::Aws(_)
            | Target::MappedMock(_) => true,
            Target::Mock(mock) => mock.echo,
            Target::Proxy { .. } | Target::Connections => false,
        }
    }
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
    /// A `lambda` plugin answers API Gateway's proxy event.
    Lambda {
        plugin: Arc<Plugin>,
        format: crate::lambda::ProxyFormat,
    },
    /// A non-proxy HTTP integration, for this stage.
    Http(HttpTarget),
    /// A mock whose request template chooses the status.
    MappedMock(MappedMockTarget),
    /// An AWS service, for this stage.
    Aws(AwsServiceTarget),
    /// `@connections/{connectionId}`: the node's connection registry.
    Connections,
}

/// An `aws` integration in one stage.
#[derive(Debug)]
pub struct AwsServiceTarget {
    pub call: Arc<crate::upstream::aws::AwsUri>,
    pub amz_target: Option<http::HeaderValue>,
    pub method: Option<http::Method>,
    /// The endpoint and the service path.
    pub uri: UriTemplate,
    pub path_names: Arc<[String]>,
    pub credentials: Arc<crate::upstream::aws::AwsCredentials>,
    pub mapping: Arc<Mapping>,
    pub pool: Arc<OriginPool>,
    pub mapper: Option<Arc<Plugin>>,
}

/// An `http` integration in one stage.
#[derive(Debug)]
pub struct HttpTarget {
    pub method: Option<http::Method>,
    pub uri: UriTemplate,
    /// What the URI's `{...}` refer to, in `uri`'s parameter order.
    pub path_names: Arc<[String]>,
    pub mapping: Arc<Mapping>,
    pub pool: Arc<OriginPool>,
    /// Renders the templates; `None` when the mapping has none.
    pub mapper: Option<Arc<Plugin>>,
}

/// A `mock` with templates.
#[derive(Debug)]
pub struct MappedMockTarget {
    pub mapping: Arc<Mapping>,
    pub mapper: Option<Arc<Plugin>>,
}

/// What building one generation's routes shares, and what it collects for the generation.
pub(super) struct Build<'a> {
    pub config: &'a Config,
    /// The file's usage plans, then those created through the admin API.
    pub plans: &'a [crate::config::UsagePlan],
    pub plugins: &'a PluginSet,
    pub limiter: &'a Limiter,
    pub access_keys: &'a Arc<AccessKeys>,
    pub previous: Option<&'a Generation>,
    /// The node's bucket, last in every route's throttle.
    pub account: Arc<SharedBucket>,
    pub pools: OriginPools,
    pub caches: StageCaches,
    pub jwt_verifiers: JwtVerifiers,
    /// The routes' metric label sets, the previous generation's reused.
    pub metrics: crate::telemetry::metrics::MetricSets,
    /// The node's access-log outputs.
    pub log: &'a crate::telemetry::AccessLog,
    /// Whether a stage's access-log format needs what only custom formats use.
    pub log_extras: bool,
    /// Where spans go, when the config has `tracing`.
    pub exporter: Option<Arc<crate::telemetry::traces::Exporter>>,
}

/// Where lines with `settings` go (`None`: Edgeway's line on stdout); a file that cannot be
/// opened refuses the config.
pub(super) fn open_log(
    log: &crate::telemetry::AccessLog,
    settings: Option<&crate::telemetry::AccessLogSettings>,
) -> Result<Option<Arc<crate::telemetry::StageLog>>, BuildError> {
    log.stage_log(settings)
        .map_err(|source| BuildError::AccessLog {
            path: match settings.map(|s| &s.destination) {
                Some(crate::telemetry::Destination::File(path)) => path.display().to_string(),
                _ => "stdout".into(),
            },
            source,
        })
}

impl Build<'_> {
    /// Where `stage`'s access-log lines go: its own `access_log`, else the node's.
    pub fn stage_log(
        &mut self,
        stage: &Stage,
    ) -> Result<Option<Arc<crate::telemetry::StageLog>>, BuildError> {
        let settings = stage
            .access_log
            .as_ref()
            .or(self.config.access_log.as_ref());
        let log = open_log(self.log, settings)?;
        self.log_extras |= log.as_ref().is_some_and(|l| l.needs_extras());
        Ok(log)
    }

    /// `stage`'s part in traces, when it has `tracing` and the config a collector.
    pub fn stage_tracing(
        &self,
        stage: &Stage,
    ) -> Option<Arc<crate::telemetry::traces::RouteTracing>> {
        let exporter = self.exporter.clone()?;
        Some(Arc::new(crate::telemetry::traces::RouteTracing::new(
            exporter,
            stage.tracing?,
        )))
    }

    fn plugin(&self, name: &str) -> Result<Arc<Plugin>, BuildError> {
        self.plugins
            .get(name)
            .cloned()
            .ok_or_else(|| BuildError::PluginNotLoaded(name.to_owned()))
    }

    /// The mapper a mapping's templates run on, when it has any.
    fn mapper(&self, mapping: &Mapping) -> Result<Option<Arc<Plugin>>, BuildError> {
        if !mapping.has_templates() {
            return Ok(None);
        }
        let mapper = self.plugin(crate::mapping::builtin::NAME)?;
        if mapper.spec.role != crate::plugins::PluginRole::Mapper {
            return Err(BuildError::NotAMapper(mapper.spec.role));
        }
        Ok(Some(mapper))
    }
}

/// What an API lends each of its routes: built once per API.
pub(super) struct ApiParts<'a> {
    pub api: &'a Api,
    authorizers: HashMap<&'a str, Arc<ApiAuthorizer>>,
    principal_headers: Arc<[http::HeaderName]>,
    /// By stage, in the API's order.
    stage_variables: Vec<Arc<[(String, String)]>>,
}

impl<'a> ApiParts<'a> {
    pub fn build(api: &'a Api, build: &mut Build<'_>) -> Result<Self, BuildError> {
        let mut authorizers = HashMap::new();
        for (name, authorizer) in &api.authorizers {
            let runtime = ApiAuthorizer::build(
                authorizer,
                |name| build.plugins.get(name).cloned(),
                &build.config.upstream,
                build.access_keys,
                &mut build.jwt_verifiers,
                build.previous.map(|p| &p.jwt_verifiers),
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
        let stage_variables = api
            .stages
            .iter()
            .map(|s| {
                s.variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .collect();
        Ok(Self {
            api,
            authorizers,
            principal_headers: principal_headers.into(),
            stage_variables,
        })
    }
}

/// One route of an API in one of its stages: what each group is built from.
pub(super) struct Site<'a> {
    pub parts: &'a ApiParts<'a>,
    pub route: &'a Route,
    pub stage: &'a Stage,
    /// The stage's place in the API's stages (per-stage settings are kept in that order).
    pub stage_index: usize,
    /// Where the stage's access-log lines go.
    pub log: &'a Option<Arc<crate::telemetry::StageLog>>,
    /// The stage's part in traces.
    pub tracing: &'a Option<Arc<crate::telemetry::traces::RouteTracing>>,
}

impl Site<'_> {
    fn api(&self) -> &Api {
        self.parts.api
    }

    /// The names the limiter's entries for this route go by.
    fn names(&self) -> (&str, &str, &str) {
        (&self.api().name, &self.stage.name, &self.route.key)
    }
}

impl RouteTarget {
    pub(super) fn build(site: &Site<'_>, build: &mut Build<'_>) -> Result<Self, BuildError> {
        let metrics = build.metrics.get(
            crate::telemetry::metrics::MetricKey {
                api: site.api().name.as_str().into(),
                stage: site.stage.name.as_str().into(),
                route: site
                    .stage
                    .detailed_metrics
                    .then(|| site.route.key.as_str().into()),
            },
            build.previous.map(|p| &*p.metrics),
        );
        let mut labels = RouteLabels::deployed(
            &site.api().name,
            &site.stage.name,
            &site.route.key,
            site.stage.source.deployment(),
            matches!(site.stage.source, StageSource::Canary { .. }),
            metrics,
        );
        labels.log.clone_from(site.log);
        labels.execution = site.stage.execution;
        labels.tracing.clone_from(site.tracing);
        let mut target = Self {
            labels: Arc::new(labels),
            scope: RouteScope::build(site),
            access: RouteAccess::build(site, build)?,
            throttle: throttle_buckets(site, build),
            validation: site.route.validation.clone(),
            cache: RouteCache::build(site, build),
            transforms: RouteTransforms::build(site, build)?,
            integration: RouteIntegration::build(site, build)?,
            cors: site.api().cors.clone(),
            isolation: site.route.isolation,
            has_phases: false,
        };
        target.has_phases = target.needs_phases();
        Ok(target)
    }
}

impl RouteScope {
    fn build(site: &Site<'_>) -> Self {
        let api = site.api();
        Self {
            param_names: site.route.pattern.param_names().map(Into::into).collect(),
            stage_variables: site.parts.stage_variables[site.stage_index].clone(),
            responses: (!api.gateway_responses.is_empty()).then(|| api.gateway_responses.clone()),
            canary: None,
            websocket: api
                .websocket
                .clone()
                .filter(|_| site.route.key == crate::websocket::CONNECT),
        }
    }
}

impl RouteAccess {
    fn build(site: &Site<'_>, build: &Build<'_>) -> Result<Self, BuildError> {
        let (api, route) = (site.api(), site.route);
        let auth = match &route.auth {
            Some(name) => Some(RouteAuth::new(
                site.parts
                    .authorizers
                    .get(name.as_str())
                    .cloned()
                    .ok_or_else(|| BuildError::UndefinedAuthorizer(name.clone()))?,
                &route.scopes,
            )),
            None => None,
        };
        Ok(Self {
            ip_policy: site
                .stage
                .policy
                .as_ref()
                .or(api.policy.as_ref())
                .filter(|p| !p.allow.is_empty() || !p.deny.is_empty())
                .cloned(),
            auth,
            principal_headers: site.parts.principal_headers.clone(),
            api_key: route
                .api_key_required
                .then(|| ApiKeyCheck::build(site, build, api.api_key_source)),
        })
    }
}

impl ApiKeyCheck {
    /// What a route's API key must be in one stage, and the limits of each plan that covers
    /// it.
    fn build(site: &Site<'_>, build: &Build<'_>, source: ApiKeySource) -> Self {
        let (api, stage, route) = site.names();
        let limiter = build.limiter;
        let plans = build
            .plans
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
                // The quota is part of the name: a reload that changes it starts the keys'
                // entries (and counts, seeded from stored usage) again under the new windows.
                let slot = limiter.slot(&format!("plan:{}:{:?}", p.name, p.quota));
                PlanLimits::new(&p.name, slot, p.throttle, route_limits, p.quota)
            })
            .collect();
        Self { source, plans }
    }
}

/// The shared buckets of a route in one stage, most specific first: route, stage, account.
fn throttle_buckets(site: &Site<'_>, build: &Build<'_>) -> Box<[Arc<SharedBucket>]> {
    let (api, stage, route) = site.names();
    let mut buckets = Vec::with_capacity(3);
    if let Some(limits) = site.route.throttle {
        let name = format!("route:{api}/{stage}/{route}");
        buckets.push(build.limiter.shared_bucket(Scope::Route, &name, limits));
    }
    if let Some(limits) = site.stage.throttle {
        let name = format!("stage:{api}/{stage}");
        buckets.push(build.limiter.shared_bucket(Scope::Stage, &name, limits));
    }
    buckets.push(build.account.clone());
    buckets.into()
}

impl RouteCache {
    /// What a route keeps in the cache for one stage, if anything: the stage must have a
    /// cache, the TTL (the route's, else the stage's) must be above zero, and the route must
    /// not opt out.
    fn build(site: &Site<'_>, build: &mut Build<'_>) -> Option<Self> {
        let (route, stage) = (site.route, site.stage);
        if let StageSource::Canary {
            use_stage_cache: false,
            ..
        } = stage.source
        {
            return None;
        }
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
        Some(Self {
            store: build.caches.get_or_create(
                &site.api().name,
                &stage.name,
                settings.capacity_bytes,
                build.previous.map(|p| &p.caches),
            ),
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
}

impl RouteTransforms {
    fn build(site: &Site<'_>, build: &Build<'_>) -> Result<Self, BuildError> {
        let plugins = |names: &[String]| {
            names
                .iter()
                .map(|n| build.plugin(n))
                .collect::<Result<Box<[_]>, _>>()
        };
        Ok(Self {
            request: plugins(&site.route.request_transforms)?,
            response: plugins(&site.route.response_transforms)?,
        })
    }
}

impl RouteIntegration {
    fn build(site: &Site<'_>, build: &mut Build<'_>) -> Result<Self, BuildError> {
        let target = match &site.route.integration {
            Integration::Mock(mock) => Target::Mock(mock.clone()),
            Integration::Function { plugin } => Target::Function(build.plugin(plugin)?),
            Integration::Lambda { plugin, format } => Target::Lambda {
                plugin: build.plugin(plugin)?,
                format: *format,
            },
            Integration::HttpProxy { per_stage } => {
                let uri = per_stage[site.stage_index].clone();
                let pool = build.pools.get_or_create(
                    uri.origin(),
                    &build.config.upstream,
                    build.previous.map(|p| &p.pools),
                )?;
                Target::Proxy { uri, pool }
            }
            Integration::Http(http) => {
                let uri = http.per_stage[site.stage_index].clone();
                let pool = build.pools.get_or_create(
                    uri.origin(),
                    &build.config.upstream,
                    build.previous.map(|p| &p.pools),
                )?;
                Target::Http(HttpTarget {
                    method: http.method.clone(),
                    uri,
                    path_names: http.path_names.clone().into(),
                    mapping: http.mapping.clone(),
                    pool,
                    mapper: build.mapper(&http.mapping)?,
                })
            }
            Integration::Aws(aws) => {
                let uri = aws.per_stage[site.stage_index].clone();
                let pool = build.pools.get_or_create(
                    uri.origin(),
                    &build.config.upstream,
                    build.previous.map(|p| &p.pools),
                )?;
                Target::Aws(AwsServiceTarget {
                    call: aws.call.clone(),
                    amz_target: aws.amz_target.clone(),
                    method: aws.method.clone(),
                    uri,
                    path_names: aws.path_names.clone().into(),
                    credentials: aws.credentials.clone(),
                    mapping: aws.mapping.clone(),
                    pool,
                    mapper: build.mapper(&aws.mapping)?,
                })
            }
            Integration::MappedMock(mock) => Target::MappedMock(MappedMockTarget {
                mapping: mock.mapping.clone(),
                mapper: build.mapper(&mock.mapping)?,
            }),
            Integration::Connections => Target::Connections,
        };
        Ok(Self {
            target,
            response: site.route.websocket.unwrap_or_default(),
            timeout: site
                .route
                .timeout
                .unwrap_or(build.config.limits.integration_timeout),
        })
    }
}
