//! Connections to origins: one pooled HTTP client per origin, TLS verified against the system
//! roots plus `upstream.ca_file`.
//!
//! Pools are built when config loads, one per distinct `scheme://authority` among the routes'
//! integration URIs, and carried over to the next config generation when the origin and the
//! upstream settings stay the same, so a reload does not drop warm connections.

pub mod headers;
mod uri;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

pub use uri::{SubstituteError, UriTemplate, substitute};

use crate::body::RequestBody;
use crate::config::Upstream;
use crate::listener::tls::provider;

/// The pooled client for one origin.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// One origin's connection pool.
#[derive(Debug)]
pub struct OriginPool {
    pub origin: String,
    pub client: HttpClient,
    fingerprint: String,
}

/// All origins' pools for one config generation.
#[derive(Debug, Default)]
pub struct OriginPools {
    by_origin: HashMap<String, Arc<OriginPool>>,
}

impl OriginPools {
    /// Returns the pool for `origin`, creating it (or taking it over from `previous`) if this
    /// generation has none yet.
    pub fn get_or_create(
        &mut self,
        origin: &str,
        upstream: &Upstream,
        previous: Option<&OriginPools>,
    ) -> Arc<OriginPool> {
        if let Some(pool) = self.by_origin.get(origin) {
            return pool.clone();
        }
        let pool = previous
            .and_then(|p| p.by_origin.get(origin))
            .filter(|p| p.fingerprint == upstream.fingerprint)
            .cloned()
            .unwrap_or_else(|| Arc::new(OriginPool::new(origin, upstream)));
        self.by_origin.insert(origin.to_owned(), pool.clone());
        pool
    }
}

impl OriginPool {
    fn new(origin: &str, upstream: &Upstream) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(upstream.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*upstream.tls).clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(upstream.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Self {
            origin: origin.to_owned(),
            client,
            fingerprint: upstream.fingerprint.clone(),
        }
    }
}

/// TLS settings for origins: the system's roots plus the PEM certificates in `ca_file`.
pub fn client_tls(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    // A machine without system roots can still reach origins signed by `ca_file`.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read CA file {}: {e:?}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("unusable CA certificate in {}: {e}", path.display()))?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
