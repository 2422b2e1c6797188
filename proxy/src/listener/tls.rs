//! TLS for listeners: certificates from PEM files, chosen by SNI.
//!
//! Each certificate serves the DNS names in its subject alternative names (exact or `*.`
//! wildcard; the common name when it has none). A client that sends no SNI, or a name no
//! certificate covers, gets the first certificate. ALPN offers h2 and http/1.1.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

/// A certificate chain and key loaded from PEM files, with the names it serves.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    pub names: Vec<String>,
}

/// The process-wide crypto provider (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate and key pair that cannot be served; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read certificate {}: {}", .path.display(), pem_error(.source))]
    ReadCert {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{} holds no PEM certificate", .path.display())]
    NoCert { path: PathBuf },
    #[error("cannot parse certificate {}: {source}", .path.display())]
    ParseCert {
        path: PathBuf,
        source: x509_parser::nom::Err<x509_parser::error::X509Error>,
    },
    #[error("cannot read private key {}: {}", .path.display(), pem_error(.source))]
    ReadKey {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("unusable private key {}: {source}", .path.display())]
    UnusableKey {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "private key {} does not belong to certificate {}: {source}",
        .key_path.display(),
        .cert_path.display()
    )]
    KeyMismatch {
        key_path: PathBuf,
        cert_path: PathBuf,
        source: rustls::Error,
    },
}

impl CertError {
    /// Whether the key file is at fault rather than the certificate file.
    pub fn key_at_fault(&self) -> bool {
        matches!(
            self,
            Self::ReadKey { .. } | Self::UnusableKey { .. } | Self::KeyMismatch { .. }
        )
    }
}

/// A listener's certificates that no server config can be built from.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    #[error("a TLS listener needs at least one certificate")]
    NoCertificate,
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// Loads a certificate chain and its private key. Errors name the file and the problem.
pub fn load_cert(cert_path: &Path, key_path: &Path) -> Result<LoadedCert, CertError> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| CertError::ReadCert {
            path: cert_path.into(),
            source,
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCert {
            path: cert_path.into(),
        });
    };
    let names = dns_names(leaf).map_err(|source| CertError::ParseCert {
        path: cert_path.into(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| CertError::ReadKey {
        path: key_path.into(),
        source,
    })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|source| CertError::UnusableKey {
            path: key_path.into(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|source| CertError::KeyMismatch {
            key_path: key_path.into(),
            cert_path: cert_path.into(),
            source,
        })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        names,
    })
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        other => format!("{other:?}"),
    }
}

fn dns_names(
    leaf: &CertificateDer<'_>,
) -> Result<Vec<String>, x509_parser::nom::Err<x509_parser::error::X509Error>> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty()
        && let Some(cn) = cert.subject().iter_common_name().next()
        && let Ok(cn) = cn.as_str()
    {
        names.push(cn.to_ascii_lowercase());
    }
    Ok(names)
}

/// Builds a listener's server config from loaded certificates (at least one).
pub fn server_config(certs: &[LoadedCert]) -> Result<Arc<ServerConfig>, ServerConfigError> {
    let resolver = SniResolver::new(certs).ok_or(ServerConfigError::NoCertificate)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field("wildcard", &self.wildcard.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SniResolver {
    fn new(certs: &[LoadedCert]) -> Option<Self> {
        let default = certs.first()?.key.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for cert in certs {
            for name in &cert.names {
                // The first certificate to claim a name keeps it.
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_owned()),
                    None => exact.entry(name.clone()),
                }
                .or_insert_with(|| cert.key.clone());
            }
        }
        Some(Self {
            exact,
            wildcard,
            default,
        })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return Some(self.default.clone());
        };
        // rustls hands over SNI already lower-cased.
        if let Some(key) = self.exact.get(name) {
            return Some(key.clone());
        }
        if let Some((_, parent)) = name.split_once('.')
            && let Some(key) = self.wildcard.get(parent)
        {
            return Some(key.clone());
        }
        Some(self.default.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_names_from_generated_certificates() {
        let dir = std::env::temp_dir().join(format!("edgeway-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["a.test".into(), "*.b.test".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("c.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("k.pem"), key.serialize_pem()).unwrap();
        let loaded = load_cert(&dir.join("c.pem"), &dir.join("k.pem")).unwrap();
        assert_eq!(loaded.names, vec!["a.test", "*.b.test"]);
        assert!(server_config(&[loaded]).is_ok());

        let err = load_cert(&dir.join("missing.pem"), &dir.join("k.pem")).unwrap_err();
        assert!(!err.key_at_fault());
        assert!(err.to_string().contains("cannot read certificate"), "{err}");
        let err = load_cert(&dir.join("c.pem"), &dir.join("c.pem")).unwrap_err();
        assert!(err.key_at_fault());
        assert!(err.to_string().contains("private key"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
