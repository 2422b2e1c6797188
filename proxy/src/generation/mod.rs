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
use crate::config::{Config, Limits, UsagePlan};
use crate::gateway_responses::GatewayResponses;
use crate::plugins::PluginSet;
use crate::router::Router;
use crate::throttle::{Limiter, Scope};
use crate::upstream::OriginPools;

mod route;

pub use route::{
    ApiKeyCheck, HttpTarget, MappedMockTarget, RouteAccess, RouteCache, RouteIntegration,
    RouteScope, RouteTarget, RouteTransforms, Target,
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
    /// The stages' API docs pages (`docs`), answered before routing.
    pub docs: crate::openapi::DocsSites,
    /// The APIs as the config defines them, for `GET /admin/apis/{api}/openapi`.
    pub definitions: crate::config::Definitions,
    pools: OriginPools,
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
        limiter.forget_unused_buckets();
        let mut build = Build {
            config,
            plugins,
            limiter: &limiter,
            access_keys: &access_keys,
            previous,
            account: limiter.shared_bucket(Scope::Account, "account", config.throttle),
            pools: OriginPools::default(),
            caches: StageCaches::default(),
            jwt_verifiers: JwtVerifiers::default(),
        };
        let mut router = Router::new();
        for api in &config.apis {
            let parts = ApiParts::build(api, &mut build)?;
            for route in &api.routes {
                for (stage_index, stage) in api.stages.iter().enumerate() {
                    let site = Site {
                        parts: &parts,
                        route,
                        stage,
                        stage_index,
                    };
                    let target = RouteTarget::build(&site, &mut build)?;
                    router
                        .insert(&stage.name, route.method, &route.pattern, target)
                        .map_err(|_| BuildError::DuplicateRoute {
                            api: api.name.clone(),
                            route: route.key.clone(),
                            stage: stage.name.clone(),
                        })?;
                }
            }
        }
        let Build {
            pools,
            caches,
            jwt_verifiers,
            ..
        } = build;
        let unrouted = unrouted_stages(config);
        let definitions = crate::config::Definitions::from_config(config);

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
            docs: docs_sites(config, &definitions),
            definitions,
            pools,
        })
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
