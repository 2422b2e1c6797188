//! Authorizers (pipeline phase 5): who is calling, decided before anything else runs.
//!
//! An API's authorizer is one of three kinds ([`ApiAuthorizer`]), built once per config: a
//! WASM plugin ([`PluginAuthorizer`]), a JWT issuer ([`JwtAuthorizer`], the stand-in for
//! Cognito user pools and OIDC; see [`jwt`]) or SigV4 signatures made with the node's access
//! keys ([`SigV4Authorizer`], the stand-in for IAM auth; see [`sigv4`]). A route that names
//! one holds a [`RouteAuth`]: the authorizer and the scopes the route requires.
//!
//! A [`PluginAuthorizer`] reads its identity sources from the request, answers 401 at once
//! when one is missing, and otherwise asks its plugin, through an [`AuthorizerResultCache`]
//! keyed by the identity values (and the plugin version, so a swapped-in version decides
//! afresh). Allow and deny decisions are cached for `result_ttl_s`; failures never are.

pub mod access_keys;
pub mod ip_policy;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod registry;
mod settings;
pub mod sigv4;

pub use settings::{
    Authorizer, AuthorizerKind, DEFAULT_ARN_ACCOUNT, DEFAULT_ARN_REGION, DEFAULT_AUTHORIZER_TTL,
    DEFAULT_PRINCIPAL_HEADER, IdentitySource, IdentitySourceError, LambdaAuthorizerSettings,
};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::request::Parts;
use moka::sync::Cache;

use crate::auth::access_keys::AccessKeys;
use crate::plugins::Plugin;
use crate::plugins::bindings::Decision;
use crate::upstream::Upstream;

/// An API's authorizer, ready to serve.
#[derive(Debug)]
pub enum ApiAuthorizer {
    Plugin(PluginAuthorizer),
    Lambda(LambdaAuthorizer),
    Jwt(JwtAuthorizer),
    SigV4(SigV4Authorizer),
}

impl ApiAuthorizer {
    /// Builds `config`'s authorizer: `plugin` finds a loaded plugin by name, `upstream` is how
    /// a JWKS is fetched, `access_keys` where SigV4 secrets come from. The error names the
    /// setting that is wrong.
    ///
    /// A JWT verifier with the same settings and upstream as one in `previous` (the generation
    /// being replaced) is reused with its cached keys, so a reload neither fetches the JWKS
    /// again nor depends on the issuer being reachable at that moment.
    pub fn build(
        config: &Authorizer,
        plugin: impl Fn(&str) -> Option<Arc<Plugin>>,
        upstream: &Upstream,
        access_keys: &Arc<AccessKeys>,
        verifiers: &mut JwtVerifiers,
        previous: Option<&JwtVerifiers>,
    ) -> Result<Self, AuthorizerError> {
        Ok(match &config.kind {
            AuthorizerKind::Plugin { plugin: name } => {
                let plugin =
                    plugin(name).ok_or_else(|| AuthorizerError::PluginNotLoaded(name.clone()))?;
                Self::Plugin(PluginAuthorizer::new(config.clone(), plugin))
            }
            AuthorizerKind::Lambda(settings) => {
                let name = &settings.plugin;
                let plugin =
                    plugin(name).ok_or_else(|| AuthorizerError::PluginNotLoaded(name.clone()))?;
                Self::Lambda(LambdaAuthorizer {
                    settings: settings.clone(),
                    calls: PluginAuthorizer::new(config.clone(), plugin),
                })
            }
            AuthorizerKind::Jwt(settings) => Self::Jwt(JwtAuthorizer {
                verifier: verifiers.get_or_create(settings, upstream, previous)?,
                config: config.clone(),
            }),
            AuthorizerKind::SigV4(settings) => Self::SigV4(SigV4Authorizer {
                verifier: sigv4::SigV4Verifier::new(settings.clone()),
                access_keys: access_keys.clone(),
                config: config.clone(),
            }),
        })
    }

    /// The authorizer's config.
    pub fn config(&self) -> &Authorizer {
        match self {
            Self::Plugin(a) => &a.config,
            Self::Lambda(a) => &a.calls.config,
            Self::Jwt(a) => &a.config,
            Self::SigV4(a) => &a.config,
        }
    }
}

/// An authorizer that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    #[error("plugin {0} is not loaded")]
    PluginNotLoaded(String),
    #[error(transparent)]
    Jwt(#[from] jwt::JwtSetupError),
}

/// A JWT authorizer: the token from the identity source, verified by a [`jwt::JwtVerifier`]
/// (keys fetched and cached per config generation).
#[derive(Debug)]
pub struct JwtAuthorizer {
    pub config: Authorizer,
    pub verifier: Arc<jwt::JwtVerifier>,
}

/// A generation's JWT verifiers, by settings and upstream, for the next generation to reuse.
#[derive(Debug, Default)]
pub struct JwtVerifiers(Vec<((jwt::JwtSettings, String), Arc<jwt::JwtVerifier>)>);

impl JwtVerifiers {
    /// The verifier for `settings`: one already made for this generation, else `previous`'s,
    /// else a new one.
    fn get_or_create(
        &mut self,
        settings: &jwt::JwtSettings,
        upstream: &Upstream,
        previous: Option<&JwtVerifiers>,
    ) -> Result<Arc<jwt::JwtVerifier>, jwt::JwtSetupError> {
        let key = (settings.clone(), upstream.fingerprint.clone());
        let known = |set: &JwtVerifiers| {
            set.0
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        if let Some(verifier) = known(self) {
            return Ok(verifier);
        }
        let verifier = match previous.and_then(known) {
            Some(verifier) => verifier,
            None => Arc::new(jwt::JwtVerifier::new(settings.clone(), upstream)?),
        };
        self.0.push((key, verifier.clone()));
        Ok(verifier)
    }
}

/// A Lambda authorizer: identity and result cache as a plugin authorizer's, the policy it
/// returned cached per identity and evaluated against each request's method ARN.
#[derive(Debug)]
pub struct LambdaAuthorizer {
    pub settings: LambdaAuthorizerSettings,
    pub calls: PluginAuthorizer<crate::lambda::Grant>,
}

/// A SigV4 authorizer: signatures checked with the secrets of the node's access keys.
#[derive(Debug)]
pub struct SigV4Authorizer {
    pub config: Authorizer,
    pub verifier: sigv4::SigV4Verifier,
    pub access_keys: Arc<AccessKeys>,
}

/// A route's use of its API's authorizer.
#[derive(Debug, Clone)]
pub struct RouteAuth {
    pub authorizer: Arc<ApiAuthorizer>,
    /// A token needs one of these (`jwt` only); empty: no scope is required.
    pub scopes: Arc<[String]>,
    /// The 403's `WWW-Authenticate` when a token lacks them, rendered once.
    pub insufficient_scope: HeaderValue,
}

impl RouteAuth {
    pub fn new(authorizer: Arc<ApiAuthorizer>, scopes: &[String]) -> Self {
        Self {
            authorizer,
            scopes: scopes.into(),
            insufficient_scope: jwt::insufficient_scope(scopes),
        }
    }
}

/// Decisions kept per authorizer at most; the least used go first.
const MAX_CACHED_DECISIONS: u64 = 100_000;

/// Cached decisions of one authorizer, by identity.
pub struct AuthorizerResultCache<T = Decision> {
    decisions: Cache<String, Arc<T>>,
}

impl<T> std::fmt::Debug for AuthorizerResultCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizerResultCache")
            .field("entries", &self.decisions.entry_count())
            .finish()
    }
}

impl<T: Send + Sync + 'static> AuthorizerResultCache<T> {
    fn new(ttl: Duration) -> Self {
        Self {
            decisions: Cache::builder()
                .max_capacity(MAX_CACHED_DECISIONS)
                .time_to_live(ttl)
                .build(),
        }
    }
}

/// An API's authorizer, ready to serve: config, plugin and result cache.
#[derive(Debug)]
pub struct PluginAuthorizer<T = Decision> {
    pub config: Authorizer,
    pub plugin: Arc<Plugin>,
    cache: Option<AuthorizerResultCache<T>>,
    /// Each identity source as plugins see it (`header.authorization`), rendered once.
    labels: Box<[String]>,
}

/// The identity of one request: `(source label, value)` in config order.
pub type Identity = Vec<(String, String)>;

impl<T: Send + Sync + 'static> PluginAuthorizer<T> {
    /// An authorizer for `config` calling `plugin`; no identity sources means no caching,
    /// since there is nothing to key decisions by.
    pub fn new(config: Authorizer, plugin: Arc<Plugin>) -> Self {
        let cache = (!config.result_ttl.is_zero() && !config.identity_source.is_empty())
            .then(|| AuthorizerResultCache::new(config.result_ttl));
        let labels = config
            .identity_source
            .iter()
            .map(IdentitySource::label)
            .collect();
        Self {
            config,
            plugin,
            cache,
            labels,
        }
    }

    /// Reads the identity sources; `None` when one is missing or empty (401 without a call).
    pub fn identity(
        &self,
        parts: &Parts,
        params: &[(&str, &str)],
        stage_variables: &[(String, String)],
    ) -> Option<Identity> {
        let mut identity = Vec::with_capacity(self.config.identity_source.len());
        for (source, label) in self.config.identity_source.iter().zip(&self.labels) {
            let value = source.read(parts, params, stage_variables)?;
            if value.trim().is_empty() {
                return None;
            }
            identity.push((label.clone(), value.into_owned()));
        }
        Some(identity)
    }

    /// The cached decision for `identity` under the current plugin version, if any.
    pub fn cached(&self, identity: &Identity) -> Option<Arc<T>> {
        let cache = self.cache.as_ref()?;
        cache.decisions.get(&self.cache_key(identity))
    }

    /// Caches `decision` for `identity`. Only decisions are cached: never a failure, nor
    /// "unauthorized" (the caller checks).
    pub fn remember(&self, identity: &Identity, decision: &Arc<T>) {
        if let Some(cache) = &self.cache {
            cache
                .decisions
                .insert(self.cache_key(identity), decision.clone());
        }
    }

    fn cache_key(&self, identity: &Identity) -> String {
        let version = self.plugin.current();
        let mut key =
            String::with_capacity(16 + identity.iter().map(|(_, v)| v.len() + 1).sum::<usize>());
        key.push_str(&version.hash[..16]);
        for (_, value) in identity {
            key.push('\0');
            key.push_str(value);
        }
        key
    }
}
