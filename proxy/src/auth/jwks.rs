//! The issuer's signing keys for [`super::jwt::JwtVerifier`]: a JWKS fetched over HTTP,
//! parsed once into keys ready to verify, and cached.
//!
//! Each JWK becomes a [`VerifyingKey`] when the JWKS is fetched (base64 decoded, curve and
//! size checked, tied to the algorithms it may verify), so a request only looks a key up and
//! checks a signature with `ring`, the library that already does the gateway's TLS.
//!
//! [`JwksCache`] decides when to fetch: on first use, when the JWKS is older than its TTL,
//! and when a token names a `kid` it lacks (the issuer rotated its keys). After a refetch for
//! an unknown `kid`, and after a failed fetch, nothing is fetched for `min_refetch_interval`,
//! so tokens with made-up `kid`s (or a provider that is down) cannot make the gateway hammer
//! the identity provider. Fetches go through one gate: callers that need keys wait for the
//! fetch under way instead of starting their own, while callers holding a key from an expired
//! JWKS go on using it. A failed fetch keeps the last good JWKS.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::BodyExt;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use ring::signature::{self as ring_signature, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use tokio::time::Instant;

use super::jwt::{AlgorithmSet, JwtAlgorithm, JwtError, clip};
use super::jwt::{JwksUrlProblem, JwtSetupError};
use crate::body::{BoxError, RequestBody};
use crate::upstream::OriginPool;
use crate::upstream::Upstream;

/// Where a JWKS document comes from. The HTTP one is [`HttpJwksFetcher`]; tests and benches
/// count or script fetches with their own.
pub trait JwksFetcher: Send + Sync + fmt::Debug {
    /// The JWKS document's bytes, or why it could not be had (for logs).
    fn fetch(&self) -> BoxFuture<'_, Result<Bytes, JwksFetchError>>;
}

/// Why the GET of a JWKS brought no document back.
#[derive(Debug, thiserror::Error)]
#[error("GET {url}: {problem}")]
pub struct JwksFetchError {
    pub url: String,
    pub problem: JwksFetchProblem,
}

/// What went wrong with a JWKS GET.
#[derive(Debug, thiserror::Error)]
pub enum JwksFetchProblem {
    /// No answer: connect, TLS or the exchange failed.
    #[error("{}", crate::telemetry::chain(.0.as_ref()))]
    Transport(BoxError),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the body: {0}")]
    Body(BoxError),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
}

/// Fetches a JWKS with a GET through the gateway's own origin connection pool.
#[derive(Debug)]
pub struct HttpJwksFetcher {
    url: String,
    /// The URL's path and query: the request target.
    target: Uri,
    pool: Arc<OriginPool>,
    timeout: Duration,
    max_bytes: usize,
}

impl HttpJwksFetcher {
    /// A fetcher for `url` (`http://` or `https://`, verified with `upstream`'s TLS roots);
    /// each fetch must finish within `timeout` and the document be at most `max_bytes`.
    pub fn new(
        url: &str,
        upstream: &Upstream,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Self, JwtSetupError> {
        let error = |problem| JwtSetupError::JwksUrl {
            url: url.to_owned(),
            problem,
        };
        let uri: Uri = url.parse().map_err(|e| error(JwksUrlProblem::NotAUrl(e)))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme,
            _ => return Err(error(JwksUrlProblem::Scheme)),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| error(JwksUrlProblem::NoHost))?;
        let pool = OriginPool::new(&format!("{scheme}://{authority}"), upstream)
            .map_err(|e| error(JwksUrlProblem::Origin(e)))?;
        let target = uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
        Ok(Self {
            url: url.to_owned(),
            target,
            pool: Arc::new(pool),
            timeout,
            max_bytes,
        })
    }

    async fn get(&self) -> Result<Bytes, JwksFetchError> {
        let mut request = Request::new(RequestBody::empty());
        *request.uri_mut() = self.target.clone();
        let headers = request.headers_mut();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/jwk-set+json, application/json"),
        );
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("edgeway/", env!("CARGO_PKG_VERSION"))),
        );
        let exchange = async {
            let response = self
                .pool
                .send(request)
                .await
                .map_err(JwksFetchProblem::Transport)?;
            if response.status() != StatusCode::OK {
                return Err(JwksFetchProblem::Status(response.status()));
            }
            let body = http_body_util::Limited::new(response.into_body(), self.max_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        JwksFetchProblem::TooLarge(self.max_bytes)
                    } else {
                        JwksFetchProblem::Body(e)
                    }
                })?;
            Ok(body.to_bytes())
        };
        let answer = tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(JwksFetchProblem::Timeout(self.timeout)));
        answer.map_err(|problem| JwksFetchError {
            url: self.url.clone(),
            problem,
        })
    }
}

impl JwksFetcher for HttpJwksFetcher {
    fn fetch(&self) -> BoxFuture<'_, Result<Bytes, JwksFetchError>> {
        Box::pin(self.get())
    }
}

/// A public key from the JWKS, decoded for `ring`.
#[derive(Debug)]
enum PublicKey {
    /// Modulus without leading zeros, exponent, both big-endian.
    Rsa {
        n: Box<[u8]>,
        e: Box<[u8]>,
    },
    /// An uncompressed point, `04 || x || y`.
    P256(Box<[u8]>),
    P384(Box<[u8]>),
    Ed25519(Box<[u8]>),
}

/// Why a signing key of the JWKS cannot be used (logged; the key is skipped).
#[derive(Debug, thiserror::Error)]
enum JwkError {
    #[error("its {name} is not base64url: {source}")]
    NotBase64url {
        name: &'static str,
        source: base64::DecodeError,
    },
    #[error("an RSA key of {bits} bits; 2048 to 8192 are accepted")]
    RsaSize { bits: usize },
    #[error("an EC key on unsupported curve {0:?}")]
    EcCurve(EllipticCurve),
    #[error("an EC key whose x or y is not {size} bytes")]
    EcPointSize { size: usize },
    #[error("an OKP key on unsupported curve {0:?}")]
    OkpCurve(EllipticCurve),
    #[error("an Ed25519 key whose x is not 32 bytes")]
    Ed25519Size,
    #[error("alg {0} does not fit the key's type")]
    AlgorithmMismatch(JwtAlgorithm),
}

/// One usable signing key of the JWKS and the algorithms it may verify: the JWK's own `alg`
/// if it has one, else every allowed algorithm of its type and curve.
#[derive(Debug)]
pub(crate) struct VerifyingKey {
    public: PublicKey,
    algorithms: AlgorithmSet,
}

impl VerifyingKey {
    /// Whether `signature` is `alg`'s signature of `message` by this key.
    pub(crate) fn verify(&self, alg: JwtAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        use JwtAlgorithm as A;
        if !self.algorithms.contains(alg) {
            return false;
        }
        match (&self.public, alg) {
            (PublicKey::Rsa { n, e }, _) => {
                let params = match alg {
                    A::Rs256 => &ring_signature::RSA_PKCS1_2048_8192_SHA256,
                    A::Rs384 => &ring_signature::RSA_PKCS1_2048_8192_SHA384,
                    A::Rs512 => &ring_signature::RSA_PKCS1_2048_8192_SHA512,
                    A::Ps256 => &ring_signature::RSA_PSS_2048_8192_SHA256,
                    A::Ps384 => &ring_signature::RSA_PSS_2048_8192_SHA384,
                    A::Ps512 => &ring_signature::RSA_PSS_2048_8192_SHA512,
                    A::Es256 | A::Es384 | A::EdDsa => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (PublicKey::P256(point), A::Es256) => {
                UnparsedPublicKey::new(&ring_signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (PublicKey::P384(point), A::Es384) => {
                UnparsedPublicKey::new(&ring_signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (PublicKey::Ed25519(x), A::EdDsa) => {
                UnparsedPublicKey::new(&ring_signature::ED25519, x)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }

    /// The key a JWK describes, if it is a signing key usable with the `allowed` algorithms:
    /// `Ok(None)` for keys meant for something else (encryption, shared secrets, algorithms
    /// not allowed), an error for a signing key that is broken or too weak.
    fn from_jwk(jwk: &Jwk, allowed: AlgorithmSet) -> Result<Option<Self>, JwkError> {
        use JwtAlgorithm as A;
        let common = &jwk.common;
        if matches!(
            common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            return Ok(None);
        }
        if let Some(ops) = &common.key_operations
            && !ops.contains(&KeyOperations::Verify)
        {
            return Ok(None);
        }
        let (public, family) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let n = decode_jwk_b64(&rsa.n, "n")?;
                let e = decode_jwk_b64(&rsa.e, "e")?;
                // `ring` wants the modulus without leading zeros.
                let first = n.iter().position(|b| *b != 0).unwrap_or(n.len());
                let n = &n[first..];
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                if !(2048..=8192).contains(&bits) {
                    return Err(JwkError::RsaSize { bits });
                }
                let public = PublicKey::Rsa {
                    n: n.into(),
                    e: e.into(),
                };
                let family = [A::Rs256, A::Rs384, A::Rs512, A::Ps256, A::Ps384, A::Ps512];
                (public, AlgorithmSet::of(&family))
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                let size = match ec.curve {
                    EllipticCurve::P256 => 32,
                    EllipticCurve::P384 => 48,
                    _ => return Err(JwkError::EcCurve(ec.curve.clone())),
                };
                let x = decode_jwk_b64(&ec.x, "x")?;
                let y = decode_jwk_b64(&ec.y, "y")?;
                if x.len() != size || y.len() != size {
                    return Err(JwkError::EcPointSize { size });
                }
                let point: Box<[u8]> = [&[4u8][..], &x, &y].concat().into();
                if size == 32 {
                    (PublicKey::P256(point), AlgorithmSet::of(&[A::Es256]))
                } else {
                    (PublicKey::P384(point), AlgorithmSet::of(&[A::Es384]))
                }
            }
            AlgorithmParameters::OctetKeyPair(okp) => {
                if okp.curve != EllipticCurve::Ed25519 {
                    return Err(JwkError::OkpCurve(okp.curve.clone()));
                }
                let x = decode_jwk_b64(&okp.x, "x")?;
                if x.len() != 32 {
                    return Err(JwkError::Ed25519Size);
                }
                (PublicKey::Ed25519(x.into()), AlgorithmSet::of(&[A::EdDsa]))
            }
            // Shared secrets (`oct`) are never used; unknown key types are not ours to use.
            _ => return Ok(None),
        };
        let algorithms = match &common.key_algorithm {
            None => family,
            Some(alg) => match JwtAlgorithm::from_name(&alg.to_string()) {
                // An encryption or shared-secret `alg`: not a key to verify tokens with.
                None => return Ok(None),
                Some(alg) if family.contains(alg) => AlgorithmSet::of(&[alg]),
                Some(alg) => return Err(JwkError::AlgorithmMismatch(alg)),
            },
        };
        let algorithms = algorithms.intersect(allowed);
        Ok((!algorithms.is_empty()).then_some(Self { public, algorithms }))
    }
}

/// JWK values are base64url without padding; padding is tolerated.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn decode_jwk_b64(value: &str, name: &'static str) -> Result<Vec<u8>, JwkError> {
    JWK_B64
        .decode(value)
        .map_err(|source| JwkError::NotBase64url { name, source })
}

/// Why a key set has no key for a token.
#[derive(Debug, PartialEq, Eq)]
enum KeyMiss {
    /// No key with the token's `kid`; without a `kid`, not exactly one key for its `alg`.
    Unknown,
    /// The key named by `kid` is not for the token's `alg` (algorithm confusion).
    WrongAlgorithm,
}

/// Why a fetched JWKS replaces nothing.
#[derive(Debug, thiserror::Error)]
enum JwksDocumentError {
    #[error("not a JWKS (a JSON object with \"keys\"): {0}")]
    NotAJwks(#[source] serde_json::Error),
    #[error("none of its {total} keys is a signing key for the allowed algorithms")]
    NoUsableKey { total: usize },
}

/// One fetched JWKS, parsed.
#[derive(Debug)]
pub(crate) struct KeySet {
    by_kid: HashMap<Box<str>, VerifyingKey>,
    /// Keys without a `kid`: only tokens without one can use them.
    unnamed: Vec<VerifyingKey>,
    /// Counts fetches, so a caller can tell whether the set changed while it waited.
    generation: u64,
    fetched_at: Instant,
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys usable with `allowed`. A key that cannot be
    /// used is logged and skipped; a document with no usable key at all is an error, so a
    /// broken answer never replaces good keys.
    fn parse(
        document: &[u8],
        allowed: AlgorithmSet,
        source: &str,
    ) -> Result<Self, JwksDocumentError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(document).map_err(JwksDocumentError::NotAJwks)?;
        let total = document.keys.len();
        let mut set = Self {
            by_kid: HashMap::with_capacity(total),
            unnamed: Vec::new(),
            generation: 0,
            fetched_at: Instant::now(),
        };
        for (index, value) in document.keys.into_iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(value) {
                Ok(jwk) => jwk,
                Err(e) => {
                    tracing::warn!(jwks = source, index, "skipping an unreadable JWK: {e}");
                    continue;
                }
            };
            let kid = jwk.common.key_id.as_deref();
            match VerifyingKey::from_jwk(&jwk, allowed) {
                Ok(Some(key)) => match kid {
                    Some(kid) if set.by_kid.contains_key(kid) => {
                        tracing::warn!(jwks = source, kid, "skipping a second key with this kid");
                    }
                    Some(kid) => {
                        set.by_kid.insert(kid.into(), key);
                    }
                    None => set.unnamed.push(key),
                },
                Ok(None) => {
                    tracing::debug!(jwks = source, index, kid, "key not used for signatures");
                }
                Err(why) => tracing::warn!(jwks = source, index, kid, "skipping {why}"),
            }
        }
        if set.len() == 0 {
            return Err(JwksDocumentError::NoUsableKey { total });
        }
        Ok(set)
    }

    fn len(&self) -> usize {
        self.by_kid.len() + self.unnamed.len()
    }

    fn is_fresh(&self, now: Instant, ttl: Duration) -> bool {
        now.saturating_duration_since(self.fetched_at) < ttl
    }

    fn find(&self, kid: Option<&str>, alg: JwtAlgorithm) -> Result<&VerifyingKey, KeyMiss> {
        match kid {
            Some(kid) => {
                let key = self.by_kid.get(kid).ok_or(KeyMiss::Unknown)?;
                if key.algorithms.contains(alg) {
                    Ok(key)
                } else {
                    Err(KeyMiss::WrongAlgorithm)
                }
            }
            None => {
                let mut fitting = self
                    .by_kid
                    .values()
                    .chain(&self.unnamed)
                    .filter(|key| key.algorithms.contains(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key),
                    _ => Err(KeyMiss::Unknown),
                }
            }
        }
    }
}

/// The gate's record of past fetches.
#[derive(Debug, Default)]
struct FetchLog {
    /// No fetch before then: set after a refetch for an unknown `kid` and after a failure.
    quiet_until: Option<Instant>,
    /// The last fetch's error, while no fetch has succeeded since.
    last_error: Option<Arc<str>>,
    generation: u64,
}

/// The cached JWKS of one verifier, and when to fetch it again.
pub(crate) struct JwksCache {
    /// The JWKS URL, for logs and errors.
    source: Box<str>,
    fetcher: Arc<dyn JwksFetcher>,
    allowed: AlgorithmSet,
    ttl: Duration,
    min_refetch_interval: Duration,
    current: ArcSwapOption<KeySet>,
    /// Single-flight: held by the one caller fetching, for the fetch's duration. It guards
    /// no data requests read; they read `current`.
    gate: tokio::sync::Mutex<FetchLog>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current.load();
        f.debug_struct("JwksCache")
            .field("source", &self.source)
            .field("keys", &current.as_ref().map(|set| set.len()))
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    pub(crate) fn new(
        source: Box<str>,
        fetcher: Arc<dyn JwksFetcher>,
        allowed: AlgorithmSet,
        ttl: Duration,
        min_refetch_interval: Duration,
    ) -> Self {
        Self {
            source,
            fetcher,
            allowed,
            ttl,
            min_refetch_interval,
            current: ArcSwapOption::empty(),
            gate: tokio::sync::Mutex::new(FetchLog::default()),
        }
    }

    /// Runs `use_key` on the key for `kid` and `alg`, fetching the JWKS first when there is
    /// none yet, when it has expired, or when it lacks `kid`.
    pub(crate) async fn with_key<T>(
        &self,
        kid: Option<&str>,
        alg: JwtAlgorithm,
        use_key: impl FnOnce(&VerifyingKey) -> T,
    ) -> Result<T, JwtError> {
        let (seen, expired) = {
            let current = self.current.load();
            match current.as_deref() {
                None => (None, false),
                Some(set) => match set.find(kid, alg) {
                    Ok(key) if set.is_fresh(Instant::now(), self.ttl) => return Ok(use_key(key)),
                    Ok(_) => (Some(set.generation), true),
                    Err(KeyMiss::WrongAlgorithm) => {
                        return Err(JwtError::AlgorithmNotAllowed(alg.name().into()));
                    }
                    Err(KeyMiss::Unknown) => (Some(set.generation), false),
                },
            }
        };
        let mut log = if expired {
            match self.gate.try_lock() {
                Ok(log) => log,
                // Someone is refreshing: the expired key serves meanwhile.
                Err(_) => return self.use_current(kid, alg, use_key, None),
            }
        } else {
            self.gate.lock().await
        };
        let generation = self.current.load().as_ref().map(|set| set.generation);
        let fetch_error = if generation != seen {
            // Fetched while this caller waited at the gate: that fetch counts as its own.
            None
        } else if self.may_fetch(&log) {
            let fetched = self.fetch(&mut log).await;
            if seen.is_some() && !expired {
                // A refetch for an unknown kid: the next one waits.
                log.quiet_until = Some(Instant::now() + self.min_refetch_interval);
            }
            fetched.err()
        } else {
            // Quiet time: the set, or the error that left none, stands.
            log.last_error.clone().filter(|_| generation.is_none())
        };
        drop(log);
        self.use_current(kid, alg, use_key, fetch_error)
    }

    /// Fetches now unless a recent failure or unknown-kid refetch asks for quiet; the usable
    /// keys held afterwards.
    pub(crate) async fn prefetch(&self) -> Result<usize, JwtError> {
        let mut log = self.gate.lock().await;
        let fetched = if self.may_fetch(&log) {
            self.fetch(&mut log).await
        } else {
            log.last_error.clone().map_or(Ok(()), Err)
        };
        drop(log);
        match (self.current.load().as_deref(), fetched) {
            (Some(set), _) => Ok(set.len()),
            (None, Err(e)) => Err(JwtError::JwksUnavailable(e)),
            (None, Ok(())) => Err(JwtError::JwksUnavailable("no JWKS fetched yet".into())),
        }
    }

    fn use_current<T>(
        &self,
        kid: Option<&str>,
        alg: JwtAlgorithm,
        use_key: impl FnOnce(&VerifyingKey) -> T,
        fetch_error: Option<Arc<str>>,
    ) -> Result<T, JwtError> {
        let current = self.current.load();
        let Some(set) = current.as_deref() else {
            let why = fetch_error.unwrap_or_else(|| "no JWKS fetched yet".into());
            return Err(JwtError::JwksUnavailable(why));
        };
        match set.find(kid, alg) {
            Ok(key) => Ok(use_key(key)),
            Err(KeyMiss::WrongAlgorithm) => Err(JwtError::AlgorithmNotAllowed(alg.name().into())),
            Err(KeyMiss::Unknown) => Err(match fetch_error {
                // The refetch this token asked for failed: say so rather than blame the kid.
                Some(why) => JwtError::JwksUnavailable(why),
                None => JwtError::UnknownKey(kid.map(clip)),
            }),
        }
    }

    fn may_fetch(&self, log: &FetchLog) -> bool {
        log.quiet_until.is_none_or(|until| Instant::now() >= until)
    }

    /// Fetches and parses the JWKS; on success it replaces the cached set. Only called with
    /// the gate held. A fetch abandoned midway (its caller went away) records nothing, so the
    /// next caller fetches.
    async fn fetch(&self, log: &mut FetchLog) -> Result<(), Arc<str>> {
        // The text is what callers see (`JwtError::JwksUnavailable`), shared by all of them.
        let parsed = match self.fetcher.fetch().await {
            Ok(document) => {
                KeySet::parse(&document, self.allowed, &self.source).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match parsed {
            Ok(mut set) => {
                log.generation += 1;
                log.last_error = None;
                set.generation = log.generation;
                set.fetched_at = Instant::now();
                tracing::info!(jwks = &*self.source, keys = set.len(), "JWKS fetched");
                self.current.store(Some(Arc::new(set)));
                Ok(())
            }
            Err(e) => {
                let keeping = if self.current.load().is_some() {
                    "keeping the last good JWKS"
                } else {
                    "tokens are refused until a fetch succeeds"
                };
                tracing::warn!(jwks = &*self.source, "JWKS fetch failed ({keeping}): {e}");
                let e: Arc<str> = e.into();
                log.last_error = Some(e.clone());
                log.quiet_until = Some(Instant::now() + self.min_refetch_interval);
                Err(e)
            }
        }
    }
}
