//! Connections to origins: one connection pool per origin (see `pool`), TLS verified against
//! the system roots plus `upstream.ca_file`.
//!
//! Pools are built when config loads, one per distinct `scheme://authority` among the routes'
//! integration URIs, and carried over to the next config generation when the origin and the
//! upstream settings stay the same, so a reload does not drop warm connections.

pub mod aws;
pub mod headers;
mod otlp;
mod pool;
mod settings;
mod uri;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::telemetry::metrics::OriginCounters;

pub use otlp::OtlpClient;
pub use pool::{OriginError, OriginPool, OriginProblem};
pub use settings::Upstream;
pub use uri::{SubstituteError, UriTemplate, UriTemplateError, substitute};

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
    ) -> Result<Arc<OriginPool>, OriginError> {
        if let Some(pool) = self.by_origin.get(origin) {
            return Ok(pool.clone());
        }
        let pool = match previous
            .and_then(|p| p.by_origin.get(origin))
            .filter(|p| p.fingerprint == upstream.fingerprint)
        {
            Some(pool) => pool.clone(),
            None => Arc::new(OriginPool::new(origin, upstream)?),
        };
        self.by_origin.insert(origin.to_owned(), pool.clone());
        Ok(pool)
    }

    /// Each pool's counters, by origin.
    pub fn counters(&self) -> Vec<(String, Arc<OriginCounters>)> {
        let mut all: Vec<_> = self
            .by_origin
            .iter()
            .map(|(origin, pool)| (origin.clone(), pool.counters.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Why no TLS settings for origins can be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("cannot read CA file {}: {source:?}", .path.display())]
    ReadCaFile {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{} holds no PEM certificate", .path.display())]
    NoCertificate { path: PathBuf },
    #[error("unusable CA certificate in {}: {source}", .path.display())]
    UnusableCertificate {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// TLS settings for origins: the system's roots plus the PEM certificates in `ca_file`, and
/// a digest of those roots. Pools are carried across a reload only when the digest is the
/// same, so a CA file rotated in place (or updated system roots) takes effect on reload.
pub fn client_tls(ca_file: Option<&Path>) -> Result<(Arc<ClientConfig>, u64), ClientTlsError> {
    use std::hash::{Hash, Hasher};
    let mut digest = std::hash::DefaultHasher::new();
    let mut roots = RootCertStore::empty();
    // A machine without system roots can still reach origins signed by `ca_file`.
    for cert in rustls_native_certs::load_native_certs().certs {
        cert.as_ref().hash(&mut digest);
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|source| ClientTlsError::ReadCaFile {
                path: path.into(),
                source,
            })?;
        if certs.is_empty() {
            return Err(ClientTlsError::NoCertificate { path: path.into() });
        }
        for cert in certs {
            cert.as_ref().hash(&mut digest);
            roots
                .add(cert)
                .map_err(|source| ClientTlsError::UnusableCertificate {
                    path: path.into(),
                    source,
                })?;
        }
    }
    let config = // The same ring provider the listeners use (`listener::tls::provider`).
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((Arc::new(config), digest.finish()))
}

#[cfg(test)]
mod tests {
    use super::client_tls;

    #[test]
    fn roots_digest_follows_the_ca_file_contents() {
        let dir = std::env::temp_dir().join(format!("edgeway-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        let ca_pem = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.self_signed(&key).unwrap().pem()
        };
        std::fs::write(&path, ca_pem("one.test")).unwrap();
        let (_, first) = client_tls(Some(&path)).unwrap();
        let (_, again) = client_tls(Some(&path)).unwrap();
        assert_eq!(first, again, "same roots, same digest");
        std::fs::write(&path, ca_pem("two.test")).unwrap();
        let (_, rotated) = client_tls(Some(&path)).unwrap();
        assert_ne!(
            first, rotated,
            "a CA file rotated in place changes the digest"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
