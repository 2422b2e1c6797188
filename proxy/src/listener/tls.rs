//! TLS for listeners: certificates from PEM files, chosen by SNI, replaced when their files
//! change; client certificates checked against a truststore (mutual TLS).
//!
//! Each certificate serves the DNS names in its subject alternative names (exact or `*.`
//! wildcard; the common name when it has none). A client that sends no SNI, or a name no
//! certificate covers, gets the first certificate. ALPN offers h2 and http/1.1.
//!
//! Rotation: each certificate is a [`CertSlot`] and each truststore a [`Truststore`], which
//! the node checks every second ([`CertSlot::refresh`]): when a file's size, time or inode has
//! changed, the pair (or the truststore) is loaded again and, if it is whole, serves every
//! handshake from then on; connections already open keep theirs. A pair that does not load (a
//! key that does not match, a half-written file) is refused with a log line and the one before
//! keeps serving; it is tried again when its files next change. The names a certificate serves
//! are read when the config loads: a renewal that adds a name is served for it after a reload.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DistinguishedName, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_parser::extensions::GeneralName;

/// A certificate chain and key loaded from PEM files, with the names it serves.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    pub names: Vec<String>,
    /// The leaf's serial (colon-separated hex) and validity, for `/admin/certificates`.
    pub serial: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
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
    let leaf = leaf_info(leaf).map_err(|source| CertError::ParseCert {
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
        names: leaf.names,
        serial: leaf.serial,
        not_before: leaf.not_before,
        not_after: leaf.not_after,
    })
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        other => format!("{other:?}"),
    }
}

struct LeafInfo {
    names: Vec<String>,
    serial: String,
    not_before: SystemTime,
    not_after: SystemTime,
}

fn leaf_info(
    leaf: &CertificateDer<'_>,
) -> Result<LeafInfo, x509_parser::nom::Err<x509_parser::error::X509Error>> {
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
    let time = |t: x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        match u64::try_from(secs) {
            Ok(s) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s),
            Err(_) => SystemTime::UNIX_EPOCH,
        }
    };
    Ok(LeafInfo {
        names,
        serial: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
    })
}

/// What a file looked like when last read: a change to any of these means it was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> FileStamp {
    use std::os::unix::fs::MetadataExt as _;
    // `metadata` follows symlinks: a Kubernetes secret's `..data` flip changes the inode.
    std::fs::metadata(path).map_or(FileStamp::default(), |m| FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode: m.ino(),
    })
}

/// The files of a certificate or truststore as last read (loaded or refused), and why the
/// last attempt to load them was refused: what [`CertSlot`] and [`Truststore`] share.
#[derive(Debug)]
struct Watch<const N: usize> {
    seen: Mutex<([FileStamp; N], Option<String>)>,
}

impl<const N: usize> Watch<N> {
    fn new(paths: [&Path; N]) -> Self {
        Self {
            seen: Mutex::new((paths.map(stamp), None)),
        }
    }

    fn last_error(&self) -> Option<String> {
        crate::sync::lock(&self.seen).1.clone()
    }

    /// If any of `paths` changed since it was last read, `load`s again and hands what loaded
    /// to `store`; a failure is kept as the last error.
    fn refresh<T, E: fmt::Display>(
        &self,
        paths: [&Path; N],
        load: impl FnOnce() -> Result<T, E>,
        store: impl FnOnce(T),
    ) -> Refresh {
        let now = paths.map(stamp);
        {
            let mut seen = crate::sync::lock(&self.seen);
            if seen.0 == now {
                return Refresh::Unchanged;
            }
            seen.0 = now;
        }
        let (refresh, error) = match load() {
            Ok(loaded) => {
                store(loaded);
                (Refresh::Reloaded, None)
            }
            Err(e) => {
                let why = e.to_string();
                (Refresh::Refused(why.clone()), Some(why))
            }
        };
        crate::sync::lock(&self.seen).1 = error;
        refresh
    }
}

/// What a refresh found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// The files are as they were.
    Unchanged,
    /// The new files are served from now on.
    Reloaded,
    /// The new files do not load; the old ones serve on.
    Refused(String),
}

/// One certificate and key pair of a config, served until its files change.
#[derive(Debug)]
pub struct CertSlot {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    current: ArcSwap<LoadedCert>,
    /// The files as last read (loaded or refused), and why the last attempt was refused.
    watch: Watch<2>,
    loaded_at: Mutex<SystemTime>,
}

impl CertSlot {
    /// A slot serving `loaded`, read from these files.
    pub fn new(cert_path: PathBuf, key_path: PathBuf, loaded: LoadedCert) -> Arc<CertSlot> {
        let watch = Watch::new([&cert_path, &key_path]);
        Arc::new(CertSlot {
            cert_path,
            key_path,
            current: ArcSwap::from_pointee(loaded),
            watch,
            loaded_at: Mutex::new(SystemTime::now()),
        })
    }

    /// The pair served now.
    pub fn current(&self) -> Arc<LoadedCert> {
        self.current.load_full()
    }

    /// When the pair served now was loaded, and why the last newer pair was refused, if it was.
    pub fn status(&self) -> (SystemTime, Option<String>) {
        let loaded_at = *crate::sync::lock(&self.loaded_at);
        (loaded_at, self.watch.last_error())
    }

    /// Loads the pair again if either file changed since it was last read.
    pub fn refresh(&self) -> Refresh {
        self.watch.refresh(
            [&self.cert_path, &self.key_path],
            || load_cert(&self.cert_path, &self.key_path),
            |loaded| {
                self.current.store(Arc::new(loaded));
                *crate::sync::lock(&self.loaded_at) = SystemTime::now();
            },
        )
    }
}

/// `tls.client_auth.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// A client without a certificate the truststore vouches for is refused at the handshake.
    Require,
    /// A client may send no certificate (and reaches authorizers without one); one it sends
    /// must be valid.
    Optional,
}

/// A truststore that cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TruststoreError {
    #[error("cannot read truststore {}: {}", .path.display(), pem_error(.source))]
    Read {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("truststore {} holds no CA certificate", .path.display())]
    Empty { path: PathBuf },
    #[error("truststore {}: {reason}", .path.display())]
    Unusable { path: PathBuf, reason: String },
}

/// The CA certificates client certificates are checked against (`tls.client_auth.ca`),
/// reloaded when the file changes.
#[derive(Debug)]
pub struct Truststore {
    pub path: PathBuf,
    pub mode: ClientAuthMode,
    verifier: ArcSwap<Arc<dyn ClientCertVerifier>>,
    watch: Watch<1>,
}

impl Truststore {
    /// Loads the truststore at `path`.
    pub fn load(path: PathBuf, mode: ClientAuthMode) -> Result<Arc<Truststore>, TruststoreError> {
        let watch = Watch::new([&path]);
        let verifier = Self::verifier(&path, mode)?;
        Ok(Arc::new(Truststore {
            path,
            mode,
            verifier: ArcSwap::from_pointee(verifier),
            watch,
        }))
    }

    fn verifier(
        path: &Path,
        mode: ClientAuthMode,
    ) -> Result<Arc<dyn ClientCertVerifier>, TruststoreError> {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|source| TruststoreError::Read {
                path: path.into(),
                source,
            })?;
        if certs.is_empty() {
            return Err(TruststoreError::Empty { path: path.into() });
        }
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| TruststoreError::Unusable {
                path: path.into(),
                reason: e.to_string(),
            })?;
        }
        let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
        if mode == ClientAuthMode::Optional {
            builder = builder.allow_unauthenticated();
        }
        builder.build().map_err(|e| TruststoreError::Unusable {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Why the last change to the file was refused, if it was.
    pub fn last_error(&self) -> Option<String> {
        self.watch.last_error()
    }

    /// Loads the truststore again if its file changed since it was last read.
    pub fn refresh(&self) -> Refresh {
        self.watch.refresh(
            [&self.path],
            || Self::verifier(&self.path, self.mode),
            |verifier| self.verifier.store(Arc::new(verifier)),
        )
    }
}

impl ClientCertVerifier for Truststore {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mode == ClientAuthMode::Require
    }

    /// No CA names are sent in the certificate request: they would have to outlive a
    /// truststore swap. Clients then offer whichever certificate they have.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier
            .load()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verifier
            .load()
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verifier
            .load()
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.verifier.load().supported_verify_schemes()
    }
}

/// Builds a listener's server config from its certificates (at least one) and, for mutual
/// TLS, the truststore client certificates are checked against.
pub fn server_config(
    certs: &[Arc<CertSlot>],
    client_auth: Option<Arc<Truststore>>,
) -> Result<Arc<ServerConfig>, ServerConfigError> {
    let resolver = SniResolver::new(certs).ok_or(ServerConfigError::NoCertificate)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_auth {
        Some(truststore) => builder.with_client_cert_verifier(truststore),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    // Resumption by stateless tickets, one key set for the process (so a reload does not
    // turn every returning client's resumption into a full handshake).
    if let Some(ticketer) = ticketer() {
        config.ticketer = ticketer;
    }
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The process's session-ticket keys (ChaCha20-Poly1305, rotated every 6 hours, each valid
/// for 12); `None` if the system's random source failed, and then resumption is by the
/// in-memory session cache only.
fn ticketer() -> Option<Arc<dyn rustls::server::ProducesTickets>> {
    static TICKETER: std::sync::OnceLock<Option<Arc<dyn rustls::server::ProducesTickets>>> =
        std::sync::OnceLock::new();
    TICKETER
        .get_or_init(|| rustls::crypto::ring::Ticketer::new().ok())
        .clone()
}

struct SniResolver {
    exact: HashMap<String, Arc<CertSlot>>,
    /// `*.example.com` stored under `example.com`.
    wildcard: HashMap<String, Arc<CertSlot>>,
    default: Arc<CertSlot>,
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
    fn new(certs: &[Arc<CertSlot>]) -> Option<Self> {
        let default = certs.first()?.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for cert in certs {
            for name in &cert.current().names {
                // The first certificate to claim a name keeps it.
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_owned()),
                    None => exact.entry(name.clone()),
                }
                .or_insert_with(|| cert.clone());
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
        let slot = match hello.server_name() {
            None => &self.default,
            // rustls hands over SNI already lower-cased.
            Some(name) => self
                .exact
                .get(name)
                .or_else(|| {
                    let (_, parent) = name.split_once('.')?;
                    self.wildcard.get(parent)
                })
                .unwrap_or(&self.default),
        };
        Some(slot.current.load().key.clone())
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
        let slot = CertSlot::new(dir.join("c.pem"), dir.join("k.pem"), loaded);
        assert!(server_config(std::slice::from_ref(&slot), None).is_ok());
        assert_eq!(slot.refresh(), Refresh::Unchanged);

        // A key that does not match is refused and the old pair serves on; the matching one
        // is then taken.
        let serial = slot.current().serial.clone();
        let key2 = rcgen::KeyPair::generate().unwrap();
        let cert2 = rcgen::CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .self_signed(&key2)
            .unwrap();
        std::fs::write(dir.join("c.pem"), cert2.pem()).unwrap();
        assert!(matches!(slot.refresh(), Refresh::Refused(why) if why.contains("does not belong")));
        assert_eq!(slot.current().serial, serial);
        assert!(slot.status().1.is_some());
        std::fs::write(dir.join("k.pem"), key2.serialize_pem()).unwrap();
        assert_eq!(slot.refresh(), Refresh::Reloaded);
        assert_ne!(slot.current().serial, serial);
        assert_eq!(slot.status().1, None);

        let err = load_cert(&dir.join("missing.pem"), &dir.join("k.pem")).unwrap_err();
        assert!(!err.key_at_fault());
        assert!(err.to_string().contains("cannot read certificate"), "{err}");
        let err = load_cert(&dir.join("c.pem"), &dir.join("c.pem")).unwrap_err();
        assert!(err.key_at_fault());
        assert!(err.to_string().contains("private key"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
