//! A compiled config generation: everything a request needs, built once when config loads.
//!
//! The node holds the current `Generation` in an `ArcSwap`; each request takes an `Arc` to it at
//! the start, so a reload swaps the whole thing atomically while requests in flight finish on
//! the generation they started with.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::auth::JwtVerifiers;
use crate::auth::access_keys::AccessKeys;
use crate::auth::keys::ApiKeys;
use crate::cache::StageCaches;
use crate::config::deploy::{Deployed, Refusal};
use crate::config::{Api, Config, Limits, StageSource, UsagePlan};
use crate::gateway_responses::GatewayResponses;
use crate::plugins::PluginSet;
use crate::router::Router;
use crate::telemetry::metrics::OriginCounters;
use crate::throttle::{Limiter, Scope};
use crate::upstream::OriginPools;

mod canary;
mod route;

pub use canary::CanarySplit;

pub use route::{
    ApiKeyCheck, AwsServiceTarget, HttpTarget, MappedMockTarget, RouteAccess, RouteCache,
    RouteIntegration, RouteScope, RouteTarget, RouteTransforms, Target,
};
use route::{ApiParts, Build, Site};

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
    #[error("plugin mapping-template renders mapping templates, so it must be a mapper, not a {0}")]
    NotAMapper(crate::plugins::PluginRole),
    #[error("authorizer {0} is not defined")]
    UndefinedAuthorizer(String),
    #[error(transparent)]
    Origin(#[from] crate::upstream::OriginError),
    #[error("access log {path}: {source}")]
    AccessLog {
        path: String,
        source: std::io::Error,
    },
    #[error("tracing: {0}")]
    Tracing(String),
    #[error("api {api}: route {route} is defined twice in stage {stage}")]
    DuplicateRoute {
        api: String,
        route: String,
        stage: String,
    },
}

/// What a generation takes from the node: state that outlives a reload.
#[derive(Debug, Clone)]
pub struct NodeState {
    /// The node's API keys.
    pub keys: Arc<ApiKeys>,
    /// The node's access keys for SigV4 authorizers.
    pub access_keys: Arc<AccessKeys>,
    /// Throttle buckets, quota counts and usage.
    pub limiter: Arc<Limiter>,
    /// The access-log outputs (stdout and the files stages log to).
    pub log: Arc<crate::telemetry::AccessLog>,
    /// The open WebSocket connections, for `@connections`.
    pub connections: Arc<dyn crate::websocket::Connections>,
}

/// One config generation, ready to serve.
#[derive(Debug)]
pub struct Generation {
    /// 1 for the config the node started with, +1 for each accepted reload.
    pub generation: u64,
    pub router: Router<RouteTarget>,
    /// The canaries' routes, by stage like `router`'s.
    pub canary_router: Router<RouteTarget>,
    /// By stage name: the canary splits of that stage's APIs, for requests the base side has
    /// no route for (a route the canary adds).
    pub canaries: HashMap<Box<str>, Vec<Arc<CanarySplit>>>,
    /// The stages that cannot serve the deployment they point at.
    pub refused: Vec<Refusal>,
    /// The stage pointers this generation serves.
    pub pointers: Vec<crate::state::StagePointer>,
    /// The usage plans created through the admin API that this generation was built with.
    pub plan_records: Vec<crate::state::StoredPlan>,
    pub limits: Limits,
    pub drain_timeout: Duration,
    /// The config as served by `GET /admin/config`.
    pub redacted_config: Bytes,
    /// The routes' metrics, by API, stage and (with detailed metrics) route, and the
    /// unrouted requests'; reused by the next generation.
    pub metrics: Arc<crate::telemetry::metrics::MetricSets>,
    /// `metrics.enabled`: off, requests are not counted (and `/metrics` answers 404).
    pub metrics_enabled: bool,
    /// Where requests that match no route are logged (the node-wide `access_log`).
    pub unrouted_log: Option<Arc<crate::telemetry::StageLog>>,
    /// Whether some access-log format needs what only custom formats use (headers, the
    /// principal, the error's message): requests keep them only then.
    pub log_extras: bool,
    /// Where spans go (`tracing`); the previous generation's when unchanged.
    pub exporter: Option<Arc<crate::telemetry::traces::Exporter>>,
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
    /// The stages' API docs pages (`docs`), answered before routing.
    pub docs: crate::openapi::DocsSites,
    /// The custom domains, by name (`domains`).
    pub domains: crate::domains::DomainTable,
    /// The APIs as the config defines them, for `GET /admin/apis/{api}/openapi`.
    pub definitions: crate::config::Definitions,
    /// WebSocket APIs' message routes, by api and stage.
    pub websockets: WebSocketStages,
    /// The open WebSocket connections (node state, like `keys`).
    pub connections: Arc<dyn crate::websocket::Connections>,
    pools: OriginPools,
}

/// WebSocket APIs' message routes, by api and stage (looked up by `&str`, so a message
/// allocates no key).
#[derive(Debug, Default)]
pub struct WebSocketStages(HashMap<Box<str>, HashMap<Box<str>, Arc<WebSocketStage>>>);

impl WebSocketStages {
    pub fn get(&self, api: &str, stage: &str) -> Option<&Arc<WebSocketStage>> {
        self.0.get(api)?.get(stage)
    }

    fn insert(&mut self, api: &str, stage: &str, routes: Arc<WebSocketStage>) {
        self.0
            .entry(api.into())
            .or_default()
            .insert(stage.into(), routes);
    }
}

/// A WebSocket API's routes in one stage, other than `$connect` (which the router holds):
/// messages are routed by the key their route selection gives.
#[derive(Debug)]
pub struct WebSocketStage {
    pub settings: Arc<crate::websocket::WebSocketSettings>,
    /// By route key: the custom keys, `$default` and `$disconnect`.
    pub routes: HashMap<Box<str>, RouteTarget>,
}

impl WebSocketStage {
    /// The route for a message whose selection gave `key`: that key's, else `$default`.
    pub fn select(&self, key: &str) -> Option<&RouteTarget> {
        let custom = (!key.starts_with('$'))
            .then(|| self.routes.get(key))
            .flatten();
        custom.or_else(|| self.routes.get(crate::websocket::DEFAULT))
    }

    /// `$disconnect`, if the API has one.
    pub fn disconnect(&self) -> Option<&RouteTarget> {
        self.routes.get(crate::websocket::DISCONNECT)
    }
}

/// The API whose gateway responses answer a request to a stage that matches no route.
#[derive(Debug)]
pub struct UnroutedStage {
    pub api: Box<str>,
    pub variables: Arc<[(String, String)]>,
    pub responses: Arc<GatewayResponses>,
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

impl Generation {
    /// Each origin's connection counters, by origin.
    pub fn origin_counters(&self) -> Vec<(String, Arc<OriginCounters>)> {
        self.pools.counters()
    }

    /// Builds a generation from a validated config and its loaded `plugins`, reusing
    /// `previous`'s origin pools where the origin and upstream settings are unchanged.
    pub fn build(
        config: &Config,
        deployed: &Deployed,
        plugins: &PluginSet,
        node: &NodeState,
        generation: u64,
        previous: Option<&Generation>,
    ) -> Result<Self, BuildError> {
        let NodeState {
            keys,
            access_keys,
            limiter,
            log,
            connections,
        } = node.clone();
        limiter.forget_unused_buckets();
        let plans: Vec<UsagePlan> = config
            .usage_plans
            .iter()
            .chain(&deployed.plans)
            .cloned()
            .collect();
        let mut build = Build {
            config,
            plans: &plans,
            plugins,
            limiter: &limiter,
            access_keys: &access_keys,
            previous,
            account: limiter.shared_bucket(Scope::Account, "account", config.throttle),
            pools: OriginPools::default(),
            caches: StageCaches::default(),
            jwt_verifiers: JwtVerifiers::default(),
            metrics: crate::telemetry::metrics::MetricSets::after(previous.map(|p| &*p.metrics)),
            log: &log,
            log_extras: false,
            exporter: exporter(config, previous)?,
        };
        let unrouted_log = route::open_log(&log, config.access_log.as_ref())?;
        build.log_extras |= unrouted_log.as_ref().is_some_and(|l| l.needs_extras());
        let mut router = Router::new();
        let mut canary_router = Router::new();
        let mut splits: HashMap<(&str, &str), Arc<CanarySplit>> = HashMap::new();
        let mut canaries: HashMap<Box<str>, Vec<Arc<CanarySplit>>> = HashMap::new();
        for (api, stage, canary) in &deployed.canaries {
            let split = Arc::new(CanarySplit::new(api, canary));
            canaries
                .entry(stage.as_str().into())
                .or_default()
                .push(split.clone());
            splits.insert((api, stage), split);
        }
        let mut refused = deployed.refused.clone();
        let mut websockets = WebSocketStages::default();
        for api in config.apis.iter().chain(&deployed.apis) {
            let from_config = api.stages.iter().any(|s| s.source == StageSource::Config);
            let parts = match ApiParts::build(api, &mut build) {
                Ok(parts) => parts,
                Err(e) if !from_config => {
                    refused.push(refusal(api, e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (stage_index, stage) in api.stages.iter().enumerate() {
                let (router, canary, websockets) = match &stage.source {
                    StageSource::Config if !deployed.config_serves(&api.name, &stage.name) => {
                        continue;
                    }
                    StageSource::Canary { .. } => (&mut canary_router, None, None),
                    _ => (
                        &mut router,
                        splits.get(&(api.name.as_str(), stage.name.as_str())),
                        Some(&mut websockets),
                    ),
                };
                // A deployment that cannot be built is refused for its stage alone.
                match build_routes(&parts, stage_index, canary, &mut build) {
                    Ok(targets) => {
                        insert_routes(router, websockets, api, stage_index, targets)?;
                    }
                    Err(e) if !from_config => refused.push(refusal(api, e)),
                    Err(e) => return Err(e),
                }
            }
        }
        let Build {
            pools,
            caches,
            jwt_verifiers,
            metrics,
            log_extras,
            exporter,
            ..
        } = build;
        let unrouted = unrouted_stages(config);
        let definitions =
            crate::config::Definitions::from_config(config).with_deployed(&deployed.definitions);

        Ok(Self {
            generation,
            router,
            canary_router,
            canaries,
            refused,
            pointers: deployed.pointers.clone(),
            plan_records: deployed.plan_records.clone(),
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
            usage_plans: plans.into(),
            trusted_proxies: config.trusted_proxies.clone(),
            unrouted,
            docs: docs_sites(config, &definitions),
            domains: crate::domains::DomainTable::new(&config.domains),
            definitions,
            websockets,
            connections,
            pools,
            metrics: Arc::new(metrics),
            metrics_enabled: config.metrics,
            unrouted_log,
            log_extras,
            exporter,
        })
    }
}

/// The span exporter for `config`'s `tracing`: the previous generation's when its settings
/// are the same (its thread and queue carry on), else a new one.
fn exporter(
    config: &Config,
    previous: Option<&Generation>,
) -> Result<Option<Arc<crate::telemetry::traces::Exporter>>, BuildError> {
    let Some(settings) = &config.tracing else {
        return Ok(None);
    };
    if let Some(kept) = previous
        .and_then(|p| p.exporter.as_ref())
        .filter(|e| e.settings == *settings)
    {
        return Ok(Some(kept.clone()));
    }
    let endpoint: http::Uri = settings
        .endpoint
        .parse()
        .map_err(|e| BuildError::Tracing(format!("{}: {e}", settings.endpoint)))?;
    let origin = format!(
        "{}://{}",
        endpoint.scheme_str().unwrap_or("http"),
        endpoint.authority().map_or("", |a| a.as_str())
    );
    let pool = Arc::new(crate::upstream::OriginPool::new(&origin, &config.upstream)?);
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| BuildError::Tracing(format!("no runtime to export on: {e}")))?;
    let client = Arc::new(crate::upstream::OtlpClient::new(pool, &endpoint));
    Ok(Some(crate::telemetry::traces::Exporter::start(
        settings, client, runtime,
    )))
}

/// An API's routes in one of its stages, built.
fn build_routes(
    parts: &ApiParts<'_>,
    stage_index: usize,
    canary: Option<&Arc<CanarySplit>>,
    build: &mut Build<'_>,
) -> Result<Vec<RouteTarget>, BuildError> {
    let api: &Api = parts.api;
    let stage = &api.stages[stage_index];
    let log = build.stage_log(stage)?;
    let tracing = build.stage_tracing(stage);
    api.routes
        .iter()
        .map(|route| {
            let site = Site {
                parts,
                route,
                stage,
                stage_index,
                log: &log,
                tracing: &tracing,
            };
            let mut target = RouteTarget::build(&site, build)?;
            target.scope.canary = canary.cloned();
            Ok(target)
        })
        .collect()
}

/// Adds an API's built routes in one of its stages to `router`, and a WebSocket API's
/// message routes to `websockets` (a canary's are not served: its connections open on the
/// stage's `$connect`).
fn insert_routes(
    router: &mut Router<RouteTarget>,
    websockets: Option<&mut WebSocketStages>,
    api: &Api,
    stage_index: usize,
    targets: Vec<RouteTarget>,
) -> Result<(), BuildError> {
    let stage = &api.stages[stage_index];
    let mut messages = HashMap::new();
    for (route, target) in api.routes.iter().zip(targets) {
        if route.websocket.is_some() && route.key != crate::websocket::CONNECT {
            messages.insert(route.key.as_str().into(), target);
            continue;
        }
        router
            .insert(&stage.name, route.method, &route.pattern, target)
            .map_err(|_| BuildError::DuplicateRoute {
                api: api.name.clone(),
                route: route.key.clone(),
                stage: stage.name.clone(),
            })?;
    }
    if let (Some(settings), Some(websockets)) = (&api.websocket, websockets) {
        websockets.insert(
            &api.name,
            &stage.name,
            Arc::new(WebSocketStage {
                settings: settings.clone(),
                routes: messages,
            }),
        );
    }
    Ok(())
}

/// A deployment's API that could not be built, for its one stage.
fn refusal(api: &Api, error: BuildError) -> Refusal {
    let stage = &api.stages[0];
    Refusal {
        api: api.name.clone(),
        stage: stage.name.clone(),
        deployment: stage.source.deployment().unwrap_or_default().to_owned(),
        canary: matches!(stage.source, StageSource::Canary { .. }),
        reason: error.to_string(),
    }
}

/// Each stage's docs page, with the document exported as the stage serves it.
fn docs_sites(
    config: &Config,
    definitions: &crate::config::Definitions,
) -> crate::openapi::DocsSites {
    let mut sites = crate::openapi::DocsSites::default();
    for api in &config.apis {
        for stage in &api.stages {
            let Some(path) = &stage.docs else { continue };
            let Some(document) = definitions.export(&api.name, Some(&stage.name), false, None)
            else {
                continue;
            };
            let json = serde_json::to_vec_pretty(&document).unwrap_or_default();
            let policy = stage.policy.clone().or_else(|| api.policy.clone());
            sites.add(&api.name, &stage.name, path, Bytes::from(json), policy);
        }
    }
    sites
}
