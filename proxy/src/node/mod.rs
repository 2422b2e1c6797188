//! The node: what lives as long as the process. The state store (`state.backend`) and the key
//! registries, the quota counters (`counters.backend`), the
//! throttle's buckets and counts, the plugin host, the access log, the listener settings, and
//! the current config [`Generation`], which a reload swaps atomically (requests in flight finish
//! on the generation they started with).
//!
//! `cli::serve` starts a node ([`Node::start`]), binds its listeners and the admin API, and runs
//! [`reload`] until SIGTERM; [`Node::stop`] flushes what must outlive it.

pub mod deploy;
mod plans;
pub mod reload;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;

use crate::auth::access_keys::AccessKeys;
use crate::auth::keys::ApiKeys;
use crate::config::{Config, CountersBackend, StateBackend, StateConfig};
use crate::generation::{Generation, NodeState};
use crate::listener::{Handler, Serving};
use crate::plugins::{PluginHost, PluginSet};
use crate::state::{EmbeddedStore, StateStore};
use crate::telemetry::AccessLog;
use crate::throttle::Limiter;

/// How often counted usage is added to the state store: at most this much is lost to a crash.
const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// One running node, shared by every connection and the admin API.
#[derive(Debug)]
pub struct Node {
    /// What requests are served with now.
    pub generation: ArcSwap<Generation>,
    /// How the listeners serve new connections (TLS, HTTP settings), from the same config.
    pub serving: ArcSwap<Serving>,
    /// Connections and requests let in (`limits.max_connections`, `max_in_flight`, ...).
    pub admission: Arc<crate::listener::admission::Admission>,
    pub log: Arc<AccessLog>,
    /// Reloads and their results, for `GET /metrics`.
    pub counters: Arc<crate::telemetry::metrics::NodeCounters>,
    /// Set once SIGTERM arrives; `/readyz` then answers 503.
    pub draining: AtomicBool,
    /// The plugin runtime; its plugins are those of the current generation.
    pub plugins: Arc<PluginHost>,
    /// API keys, from the state store.
    pub keys: Arc<ApiKeys>,
    /// Access keys for SigV4 authorizers, from the state store.
    pub access_keys: Arc<AccessKeys>,
    /// Throttle buckets, quota counts and usage.
    pub limiter: Arc<Limiter>,
    /// The open WebSocket connections.
    pub connections: Arc<crate::websocket::LocalConnections>,
    /// API keys, access keys, usage, deployments and stage pointers.
    pub store: Arc<dyn StateStore>,
    /// The config file, which `deploy` reads as it is now.
    pub config_path: Option<PathBuf>,
    /// The config the current generation was built from, for rebuilding it when a stage
    /// moves to another deployment.
    config: std::sync::Mutex<Arc<Config>>,
    /// Held while a generation is built and swapped in: a reload and a deploy at the same
    /// moment apply one after the other.
    rebuilding: tokio::sync::Mutex<()>,
}

impl Node {
    /// Opens the state store, loads the plugins and builds generation 1 from `config` and
    /// the deployments its stages point at; then adds counted usage to the store every
    /// second, and follows the store's changes to stages.
    pub async fn start(
        config: Arc<Config>,
        config_path: Option<PathBuf>,
    ) -> anyhow::Result<Arc<Self>> {
        let plugins = Arc::new(PluginHost::new().context("cannot start the plugin engine")?);
        let set = {
            let plugins = plugins.clone();
            let (specs, upstream) = (config.plugins.clone(), config.upstream.clone());
            tokio::task::spawn_blocking(move || plugins.load(&specs, &upstream))
                .await?
                .map_err(anyhow::Error::msg)?
        };
        let store = open_store(&config.state).await?;
        let keys = Arc::new(
            ApiKeys::open(store.clone())
                .await
                .context("cannot read API keys")?,
        );
        let access_keys = Arc::new(
            AccessKeys::open(store.clone())
                .await
                .context("cannot read access keys")?,
        );
        let limiter = Arc::new(match config.counters.backend {
            CountersBackend::Local => Limiter::new(store.clone()),
        });
        let deployed = deploy::resolve_stored(&*store, &config)
            .await
            .context("cannot read the stages' deployments and the stored usage plans")?;
        deploy::log_refusals(&deployed.refused);
        let log = AccessLog::stdout();
        let connections = Arc::new(crate::websocket::LocalConnections::default());
        let generation = Generation::build(
            &config,
            &deployed,
            &set,
            &NodeState {
                keys: keys.clone(),
                access_keys: access_keys.clone(),
                limiter: limiter.clone(),
                log: log.clone(),
                connections: connections.clone(),
            },
            1,
            None,
        )?;
        plugins.install(set);
        tokio::spawn(flush_usage(limiter.clone()));
        let node = Arc::new(Self {
            generation: ArcSwap::from_pointee(generation),
            serving: ArcSwap::from_pointee(serving(&config)),
            admission: Arc::default(),
            log,
            counters: Arc::default(),
            draining: AtomicBool::new(false),
            plugins,
            keys,
            access_keys,
            limiter,
            connections,
            store,
            config_path,
            config: std::sync::Mutex::new(config),
            rebuilding: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(deploy::follow_stages(Arc::downgrade(&node)));
        tokio::spawn(rotate_certificates(Arc::downgrade(&node)));
        tokio::spawn(sample_memory(Arc::downgrade(&node)));
        Ok(node)
    }

    /// Builds the next generation from `config`, its loaded plugins and the deployments its
    /// stages point at, reusing what the current one can lend (origin pools, caches, JWT
    /// verifiers), and swaps it in.
    pub async fn swap(&self, config: Arc<Config>, set: Arc<PluginSet>) -> Result<u64, SwapError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let number = self.build_and_swap(&config, &set).await?;
        *crate::sync::lock(&self.config) = config.clone();
        self.serving.store(Arc::new(serving(&config)));
        self.plugins.install(set);
        Ok(number)
    }

    /// Builds the generation again from the current config: a stage moved to another
    /// deployment, or its canary changed.
    pub async fn redeploy(&self) -> Result<u64, SwapError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let config = self.config();
        self.build_and_swap(&config, &self.plugins.current()).await
    }

    /// The config the current generation was built from.
    pub fn config(&self) -> Arc<Config> {
        crate::sync::lock(&self.config).clone()
    }

    async fn build_and_swap(&self, config: &Config, set: &PluginSet) -> Result<u64, SwapError> {
        let deployed = deploy::resolve_stored(&*self.store, config).await?;
        let current = self.generation.load_full();
        if deployed.refused != current.refused {
            deploy::log_refusals(&deployed.refused);
        }
        let number = current.generation + 1;
        let next = Generation::build(
            config,
            &deployed,
            set,
            &NodeState {
                keys: self.keys.clone(),
                access_keys: self.access_keys.clone(),
                limiter: self.limiter.clone(),
                log: self.log.clone(),
                connections: self.connections.clone(),
            },
            number,
            Some(&current),
        )?;
        self.generation.store(Arc::new(next));
        Ok(number)
    }

    /// Writes what must outlive the process: the access log's last lines, queued spans and
    /// counted usage.
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.log.flush();
        if let Some(exporter) = self.generation.load().exporter.clone() {
            // Sends the spans still queued, waiting up to the export timeout.
            exporter.shutdown().await;
        }
        if let Err(e) = self.limiter.flush().await {
            tracing::error!(error = %e, "usage counted since the last flush is lost");
        }
        Ok(())
    }
}

impl Handler for Node {
    fn serving(&self) -> Arc<Serving> {
        self.serving.load_full()
    }

    fn admission(&self) -> &Arc<crate::listener::admission::Admission> {
        &self.admission
    }

    fn handle(
        self: Arc<Self>,
        conn: crate::listener::ConnInfo,
        request: http::Request<crate::body::ClientBody>,
    ) -> impl std::future::Future<
        Output = Result<http::Response<crate::body::ResponseBody>, std::convert::Infallible>,
    > + Send
    + 'static {
        // The pipeline's future is created inside this one when it is first polled; this one is
        // moved once per request, into hyper's slot for the service future, so its size is a
        // per-request cost (about 5 KB: see BENCHMARKS.md, "Structure").
        async move {
            let generation = self.generation.load_full();
            // The generation loaded for the pipeline carries the bounds: no second load.
            let _permit = match self.admission.request(&generation.limits.admission) {
                Ok(permit) => permit,
                Err(_) => return Ok(overloaded()),
            };
            let alt_svc = conn.alt_svc.clone();
            let mut response = crate::pipeline::run(generation, conn, request).await;
            if let Some(value) = alt_svc.as_ref().and_then(|a| a.current()) {
                response
                    .headers_mut()
                    .insert(http::header::ALT_SVC, value.clone());
            }
            // A WebSocket `$connect` accepted (101, or 200 over HTTP/2) carries its session.
            crate::pipeline::websocket::serve(&mut response, &self);
            Ok(response)
        }
    }
}

/// The overload guard's answer: 503, try again in a second.
fn overloaded() -> http::Response<crate::body::ResponseBody> {
    let mut response = http::Response::new(crate::body::ResponseBody::full(
        &br#"{"message":"Service Unavailable"}"#[..],
    ));
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    headers.insert(
        "x-edgeway-error-type",
        http::HeaderValue::from_static("OVERLOADED"),
    );
    response
}

impl crate::pipeline::websocket::Host for Node {
    fn current(&self) -> Arc<Generation> {
        self.generation.load_full()
    }

    fn registry(&self) -> &crate::websocket::LocalConnections {
        &self.connections
    }
}

/// Why a new generation was not swapped in.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error(transparent)]
    Build(#[from] crate::generation::BuildError),
    #[error("cannot read the stages' deployments: {0}")]
    State(#[from] crate::state::StateError),
}

/// The state store `state.backend` names.
async fn open_store(config: &StateConfig) -> anyhow::Result<Arc<dyn StateStore>> {
    match config.backend {
        StateBackend::Embedded => {
            let path = config.path.clone();
            let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&path))
                .await?
                .context("cannot open the state store")?;
            Ok(Arc::new(store))
        }
    }
}

/// The listener settings a config asks for.
fn serving(config: &Config) -> Serving {
    let cert_headers: std::sync::Arc<[http::HeaderName]> = config
        .listen
        .iter()
        .filter_map(|l| l.client_cert_header.clone())
        .collect();
    let limits = crate::listener::ServingLimits {
        header_read_timeout: config.limits.header_read_timeout,
        max_header_bytes: config.limits.max_header_bytes,
        max_headers: config.limits.max_headers,
        max_streams: config.limits.max_streams_per_connection,
        linger: config.limits.linger,
        admission: config.limits.admission,
        body_read_timeout: config.limits.body_read_timeout,
    };
    Serving::new(
        config
            .listen
            .iter()
            .map(|l| crate::listener::ListenerTls {
                tls: l.tls.clone(),
                quic: l.quic.clone(),
                certs: l.certs.clone(),
                truststore: l.truststore.clone(),
                client_cert_header: l.client_cert_header.clone(),
                cert_headers: cert_headers.clone(),
            })
            .collect(),
        &limits,
    )
}

/// Refreshes the overload guard's memory flag while `limits.max_memory_mib` is set.
async fn sample_memory(node: std::sync::Weak<Node>) {
    let mut tick = tokio::time::interval(crate::listener::admission::MEMORY_SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        let max = node.serving.load().admission.max_memory_bytes;
        node.admission.sample_memory(max);
    }
}

/// How often certificate and truststore files are checked for a replacement.
const CERTIFICATE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Checks the served certificates' and truststores' files every second and loads those that
/// changed (see `listener::tls`). A stat of each file per second: cheaper than a watch that
/// must follow symlink flips (Kubernetes secrets), bind mounts and renames into place.
async fn rotate_certificates(node: std::sync::Weak<Node>) {
    use crate::listener::tls::Refresh;
    let mut tick = tokio::time::interval(CERTIFICATE_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        let serving = node.serving.load_full();
        let (certs, truststores): (Vec<_>, Vec<_>) = (
            serving.certificates(),
            serving
                .listeners
                .iter()
                .filter_map(|l| l.truststore.clone())
                .collect(),
        );
        // File reads and parsing: off the request threads.
        let results = tokio::task::spawn_blocking(move || {
            let certs: Vec<_> = certs.into_iter().map(|c| (c.refresh(), c)).collect();
            let stores: Vec<_> = truststores.into_iter().map(|t| (t.refresh(), t)).collect();
            (certs, stores)
        })
        .await;
        let Ok((certs, stores)) = results else {
            continue;
        };
        for (refresh, slot) in certs {
            match refresh {
                Refresh::Unchanged => {}
                Refresh::Reloaded => {
                    node.counters.cert_reload(true);
                    let cert = slot.current();
                    tracing::info!(
                        cert = %slot.cert_path.display(),
                        names = %cert.names.join(","),
                        serial = %cert.serial,
                        not_after = %humantime::format_rfc3339_seconds(cert.not_after),
                        "certificate reloaded"
                    );
                }
                Refresh::Refused(why) => {
                    node.counters.cert_reload(false);
                    tracing::error!(
                        cert = %slot.cert_path.display(),
                        key = %slot.key_path.display(),
                        error = %why,
                        "certificate refused; the one before serves on"
                    );
                }
            }
        }
        for (refresh, store) in stores {
            match refresh {
                Refresh::Unchanged => {}
                Refresh::Reloaded => {
                    node.counters.cert_reload(true);
                    tracing::info!(ca = %store.path.display(), "truststore reloaded");
                }
                Refresh::Refused(why) => {
                    node.counters.cert_reload(false);
                    tracing::error!(
                        ca = %store.path.display(),
                        error = %why,
                        "truststore refused; the one before serves on"
                    );
                }
            }
        }
    }
}

/// Adds counted usage to the state store every second.
async fn flush_usage(limiter: Arc<Limiter>) {
    let mut tick = tokio::time::interval(USAGE_FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = limiter.flush().await {
            // Kept in memory and tried again at the next tick.
            tracing::warn!(error = %e, "cannot store usage; will retry");
        }
    }
}
