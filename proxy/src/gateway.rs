//! A compiled config generation: everything a request needs, built once when config loads.
//!
//! The node holds the current `Gateway` in an `ArcSwap`; each request takes an `Arc` to it at
//! the start, so a reload swaps the whole thing atomically while requests in flight finish on
//! the generation they started with.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use crate::config::{Config, Integration, Limits, Mock};
use crate::pipeline::RouteLabels;
use crate::router::Router;
use crate::upstream::{OriginPool, OriginPools, UriTemplate};

/// One config generation, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    /// 1 for the config the node started with, +1 for each accepted reload.
    pub generation: u64,
    pub router: Router<RouteTarget>,
    pub limits: Limits,
    /// HTTP/1 and HTTP/2 server settings for new connections.
    pub http: auto::Builder<TokioExecutor>,
    /// Per `listen` entry: its TLS settings, if it is a TLS listener.
    pub listener_tls: Vec<Option<Arc<rustls::ServerConfig>>>,
    pub drain_timeout: Duration,
    /// The config as served by `GET /admin/config`.
    pub redacted_config: Bytes,
    pools: OriginPools,
}

/// What serving one route in one stage takes.
#[derive(Debug)]
pub struct RouteTarget {
    pub labels: Arc<RouteLabels>,
    pub target: Target,
    /// The integration timeout for this route.
    pub timeout: Duration,
}

/// Where a route's requests go.
#[derive(Debug)]
pub enum Target {
    Proxy {
        uri: UriTemplate,
        pool: Arc<OriginPool>,
    },
    Mock(Mock),
}

impl Gateway {
    /// Builds a generation from a validated config, reusing `previous`'s origin pools where the
    /// origin and upstream settings are unchanged.
    pub fn build(
        config: &Config,
        generation: u64,
        previous: Option<&Gateway>,
    ) -> Result<Self, String> {
        let mut pools = OriginPools::default();
        let mut router = Router::new();
        for api in &config.apis {
            for route in &api.routes {
                for (s, stage) in api.stages.iter().enumerate() {
                    let target = match &route.integration {
                        Integration::Mock(mock) => Target::Mock(mock.clone()),
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
                    let entry = RouteTarget {
                        labels,
                        target,
                        timeout: route.timeout.unwrap_or(config.limits.integration_timeout),
                    };
                    router
                        .insert(&stage.name, route.method, &route.pattern, entry)
                        .map_err(|_| {
                            format!(
                                "api {}: route {} is defined twice in stage {}",
                                api.name, route.key, stage.name
                            )
                        })?;
                }
            }
        }

        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.limits.header_read_timeout)
            .max_buf_size(config.limits.max_header_bytes)
            .keep_alive(true);
        http.http2().timer(TokioTimer::new()).max_header_list_size(
            u32::try_from(config.limits.max_header_bytes).unwrap_or(u32::MAX),
        );

        Ok(Self {
            generation,
            router,
            limits: config.limits,
            http,
            listener_tls: config.listen.iter().map(|l| l.tls.clone()).collect(),
            drain_timeout: config.drain_timeout,
            redacted_config: Bytes::from(
                serde_json::to_vec_pretty(&config.redacted).unwrap_or_default(),
            ),
            pools,
        })
    }
}
