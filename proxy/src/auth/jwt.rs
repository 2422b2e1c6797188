//! JWT authorizers (pipeline phase 5): the self-hosted stand-in for Cognito user pools and
//! OIDC JWT authorizers of API Gateway HTTP APIs.
//!
//! A [`JwtVerifier`] is built once per config from [`JwtSettings`]. For each request the
//! pipeline hands it the identity value (the token, or `Bearer <token>`); it checks the
//! signature with the issuer's key from the JWKS (see [`super::jwks`]: fetched, parsed once and
//! cached, refetched when a token names an unknown `kid`), then `iss`, `aud` (or `client_id`),
//! `exp`, `nbf` and `iat`, in the order API Gateway does, and returns the token's [`Claims`].
//!
//! Every [`JwtError`] is a 401 whose `WWW-Authenticate` value [`JwtError::www_authenticate`]
//! renders; a valid token that lacks the route's scopes ([`Claims::has_scopes`]) is a 403 with
//! [`insufficient_scope`].

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::{HttpJwksFetcher, JwksCache, JwksFetcher};
use crate::upstream::Upstream;

/// Default clock skew allowed on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default time a fetched JWKS is used before it is fetched again.
pub const DEFAULT_JWKS_TTL: Duration = Duration::from_secs(600);
/// Default quiet time after a JWKS refetch for an unknown `kid` or a failed fetch.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Default bound on one JWKS fetch, connecting and reading the body included.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on a JWKS document's size.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Longest signature accepted (RSA 8192 bits); decoded on the stack.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// A JWS signature algorithm a verifier can accept. Shared-secret algorithms (`HS256`, ...)
/// and `none` have no variant: a JWKS publishes public keys, and `none` is no signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl JwtAlgorithm {
    /// Every algorithm a verifier supports.
    pub const ALL: [Self; 9] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
    ];

    /// What [`JwtSettings::algorithms`] holds unless configured.
    pub const DEFAULT: [Self; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    /// The JOSE name (`RS256`, `EdDSA`), as in a token's `alg` header and a JWK's `alg`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with JOSE name `name` (exact, case-sensitive), if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// Every supported name, for messages: `RS256, RS384, ...`.
    fn valid_names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name [`JwtAlgorithm`] does not parse: why `none` and `HS*` are refused, and the valid
/// names, for config errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtAlgorithmError {
    #[error(
        "`{0}` is never accepted: an unsigned token proves nothing; valid: {valid}",
        valid = JwtAlgorithm::valid_names()
    )]
    Unsigned(String),
    #[error(
        "`{0}` is never accepted: shared-secret algorithms cannot be checked against a JWKS of \
         public keys; valid: {valid}",
        valid = JwtAlgorithm::valid_names()
    )]
    SharedSecret(String),
    #[error("unknown algorithm `{0}`; valid: {valid}", valid = JwtAlgorithm::valid_names())]
    Unknown(String),
}

impl FromStr for JwtAlgorithm {
    type Err = JwtAlgorithmError;

    /// Parses a JOSE name (exact, case-sensitive).
    fn from_str(name: &str) -> Result<Self, JwtAlgorithmError> {
        if let Some(alg) = Self::from_name(name) {
            return Ok(alg);
        }
        Err(if name.eq_ignore_ascii_case("none") {
            JwtAlgorithmError::Unsigned(name.into())
        } else if name.len() >= 2 && name[..2].eq_ignore_ascii_case("HS") {
            JwtAlgorithmError::SharedSecret(name.into())
        } else {
            JwtAlgorithmError::Unknown(name.into())
        })
    }
}

/// A set of [`JwtAlgorithm`]s, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AlgorithmSet(u16);

impl AlgorithmSet {
    pub(crate) fn of(algorithms: &[JwtAlgorithm]) -> Self {
        Self(
            algorithms
                .iter()
                .fold(0, |bits, alg| bits | Self::bit(*alg)),
        )
    }

    pub(crate) fn contains(self, alg: JwtAlgorithm) -> bool {
        self.0 & Self::bit(alg) != 0
    }

    pub(crate) fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn bit(alg: JwtAlgorithm) -> u16 {
        1 << alg as u16
    }
}

/// What a JWT authorizer checks and where its keys come from; config builds it. Equal
/// settings across a reload may keep the old verifier and its cached keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// Required: a token's `iss` must equal it exactly.
    pub issuer: String,
    /// A token's `aud` (a string or an array) must contain one of these, or else its
    /// `client_id` must equal one (Cognito access tokens carry `client_id`, not `aud`), as
    /// API Gateway checks. Empty: the audience is not checked.
    pub audiences: Vec<String>,
    /// The JWKS document: `http://` or `https://` (verified with the upstream TLS settings).
    pub jwks_url: String,
    /// Algorithms a token may be signed with. Default [`JwtAlgorithm::DEFAULT`].
    pub algorithms: Vec<JwtAlgorithm>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`. Default 60 s.
    pub leeway: Duration,
    /// How long a fetched JWKS is used before it is fetched again; while that fetch fails,
    /// the last good JWKS keeps serving. Default 10 min.
    pub jwks_ttl: Duration,
    /// After a refetch for a token with an unknown `kid`, and after a failed fetch, no fetch
    /// happens for this long: tokens with made-up `kid`s get [`JwtError::UnknownKey`] at
    /// once, and a provider that is down is not hammered. Default 30 s.
    pub min_refetch_interval: Duration,
    /// Bound on one fetch. Default 5 s.
    pub fetch_timeout: Duration,
    /// Largest JWKS document accepted. Default 1 MiB.
    pub max_jwks_bytes: usize,
}

impl JwtSettings {
    /// Settings for `issuer` with keys at `jwks_url`, and every other field at its default.
    pub fn new(issuer: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: Vec::new(),
            jwks_url: jwks_url.into(),
            algorithms: JwtAlgorithm::DEFAULT.to_vec(),
            leeway: DEFAULT_LEEWAY,
            jwks_ttl: DEFAULT_JWKS_TTL,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            max_jwks_bytes: DEFAULT_MAX_JWKS_BYTES,
        }
    }
}

/// Why a token was refused. Each is a 401; [`Self::www_authenticate`] gives the challenge.
/// Texts that quote the token (`alg`, `kid`) are cut short: they are for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// No token, or only `Bearer`.
    #[error("no bearer token")]
    MissingToken,
    /// Not a signed JWT in compact form, undecodable, or a required claim missing or of the
    /// wrong type; the text says which, and is safe to show the client.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not one the settings allow (`none` and `HS*` never are), or not
    /// one the key named by `kid` is for.
    #[error("signing algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(Box<str>),
    /// No key in the JWKS has this `kid` (none given: no single key fits), even after a
    /// refetch, or a refetch is not allowed yet ([`JwtSettings::min_refetch_interval`]).
    #[error("no signing key {0:?} in the JWKS")]
    UnknownKey(Option<Box<str>>),
    /// The signature does not verify with the key.
    #[error("the signature does not verify")]
    BadSignature,
    /// `exp` is past, beyond the leeway.
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is missing or not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// Neither `aud` nor `client_id` names a configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The keys could not be fetched (first use, or the refetch this token needed); the text
    /// is the fetch's error, for logs.
    #[error("JWKS unavailable: {0}")]
    JwksUnavailable(Arc<str>),
}

impl JwtError {
    /// The `error_description` for the client: fixed texts, never the token's own values.
    pub fn description(&self) -> &'static str {
        match self {
            Self::MissingToken => "no bearer token",
            Self::Malformed(why) => why,
            Self::AlgorithmNotAllowed(_) => "the token's signing algorithm is not allowed",
            Self::UnknownKey(_) => "the token's signing key is unknown",
            Self::BadSignature => "the token's signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::WrongIssuer => "the token does not have a valid issuer",
            Self::WrongAudience => "the token does not have a valid audience",
            Self::JwksUnavailable(_) => "the signing keys could not be retrieved",
        }
    }

    /// The `WWW-Authenticate` value of the 401 (RFC 6750 §3): `Bearer error="invalid_token",
    /// error_description="..."`, or plain `Bearer` when the request had no token at all.
    pub fn www_authenticate(&self) -> HeaderValue {
        if *self == Self::MissingToken {
            return HeaderValue::from_static("Bearer");
        }
        let value = format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            self.description()
        );
        HeaderValue::from_str(&value)
            .unwrap_or(HeaderValue::from_static("Bearer error=\"invalid_token\""))
    }
}

/// The `WWW-Authenticate` value of a 403 for a token without any of the route's `scopes`:
/// `Bearer error="insufficient_scope", error_description="...", scope="a b"` (RFC 6750 §3.1).
/// Scopes with characters a scope may not have (RFC 6749 §3.3) are left out. Depends only on
/// config: build it once per route.
pub fn insufficient_scope(scopes: &[String]) -> HeaderValue {
    let listed: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|scope| {
            !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
        })
        .collect();
    let value = format!(
        "Bearer error=\"insufficient_scope\", error_description=\"the token does not have a \
         required scope\", scope=\"{}\"",
        listed.join(" ")
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(
        "Bearer error=\"insufficient_scope\"",
    ))
}

/// A verified token's claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// `sub`, when it is a string.
    pub fn sub(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }

    /// The claim `name` as JSON.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// The claim `name` as text, for a header to the origin: a string as it is, numbers and
    /// booleans as JSON (`42`, `true`), arrays and objects as compact JSON. `None` when absent
    /// or `null`. The text may still hold characters a header cannot carry.
    pub fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.0.get(name)? {
            Value::Null => None,
            Value::String(text) => Some(Cow::Borrowed(text)),
            other => Some(Cow::Owned(other.to_string())),
        }
    }

    /// The token's scopes: `scope` and then `scp`, each either a space-separated string (OAuth,
    /// Cognito, Azure AD) or an array of strings (Okta).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        ["scope", "scp"]
            .into_iter()
            .filter_map(|name| self.0.get(name))
            .flat_map(|value| {
                let (words, items) = match value {
                    Value::String(text) => (Some(text.split_whitespace()), None),
                    Value::Array(items) => (None, Some(items.iter().filter_map(Value::as_str))),
                    _ => (None, None),
                };
                words
                    .into_iter()
                    .flatten()
                    .chain(items.into_iter().flatten())
            })
    }

    /// Whether the token has at least one of `required` (API Gateway's rule for a route's
    /// authorization scopes); `true` when `required` is empty.
    pub fn has_scopes(&self, required: &[String]) -> bool {
        required.is_empty()
            || self
                .scopes()
                .any(|scope| required.iter().any(|r| r == scope))
    }

    /// All claims, for the pipeline context (`requestContext.authorizer.jwt.claims`).
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// All claims, owned, for a context that keeps them past the verification.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// Verifies tokens for one JWT authorizer; built once per config, shared by requests.
#[derive(Debug)]
pub struct JwtVerifier {
    issuer: Box<str>,
    audiences: Box<[Box<str>]>,
    algorithms: AlgorithmSet,
    leeway_s: f64,
    keys: JwksCache,
}

/// JWT settings no verifier can be built from; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("issuer: must not be empty")]
    EmptyIssuer,
    #[error("algorithms: must name at least one of {}", JwtAlgorithm::ALL.map(JwtAlgorithm::name).join(", "))]
    NoAlgorithms,
    #[error("jwks_url {url:?}: {problem}")]
    JwksUrl {
        url: String,
        problem: JwksUrlProblem,
    },
}

/// What is wrong with a `jwks_url`.
#[derive(Debug, thiserror::Error)]
pub enum JwksUrlProblem {
    #[error("not a URL: {0}")]
    NotAUrl(http::uri::InvalidUri),
    #[error("must start with http:// or https://")]
    Scheme,
    #[error("has no host")]
    NoHost,
    #[error("{0}")]
    Origin(crate::upstream::OriginError),
}

impl JwtVerifier {
    /// A verifier that fetches its JWKS over HTTP through the gateway's origin connection
    /// pool, with the `upstream` TLS and connect settings. Nothing is fetched until the first
    /// token (or [`Self::prefetch`]). The error names the setting that is wrong.
    pub fn new(settings: JwtSettings, upstream: &Upstream) -> Result<Self, JwtSetupError> {
        let fetcher = HttpJwksFetcher::new(
            &settings.jwks_url,
            upstream,
            settings.fetch_timeout,
            settings.max_jwks_bytes,
        )?;
        Self::with_fetcher(settings, Arc::new(fetcher))
    }

    /// A verifier whose JWKS comes from `fetcher` (another transport, tests, benches).
    pub fn with_fetcher(
        settings: JwtSettings,
        fetcher: Arc<dyn JwksFetcher>,
    ) -> Result<Self, JwtSetupError> {
        if settings.issuer.is_empty() {
            return Err(JwtSetupError::EmptyIssuer);
        }
        if settings.algorithms.is_empty() {
            return Err(JwtSetupError::NoAlgorithms);
        }
        let algorithms = AlgorithmSet::of(&settings.algorithms);
        Ok(Self {
            issuer: settings.issuer.into(),
            audiences: settings.audiences.into_iter().map(Into::into).collect(),
            algorithms,
            leeway_s: settings.leeway.as_secs_f64(),
            keys: JwksCache::new(
                settings.jwks_url.into(),
                fetcher,
                algorithms,
                settings.jwks_ttl,
                settings.min_refetch_interval,
            ),
        })
    }

    /// Verifies `token` (the bare token, or `Bearer <token>` with any case of `Bearer`) and
    /// returns its claims. Fetches the JWKS on first use, when it is older than its TTL, and
    /// when the token names a `kid` it lacks (see [`JwtSettings`] for the limits); concurrent
    /// calls that need a fetch share one. With the key cached, nothing awaits.
    pub async fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let parts = TokenParts::split(token)?;
        let header_json = decode_b64(parts.header)?;
        let header: Header<'_> = serde_json::from_slice(&header_json)
            .map_err(|_| JwtError::Malformed("the token's header is not a JSON object"))?;
        if header.crit.is_some() {
            return Err(JwtError::Malformed(
                "the token's header has critical extensions this gateway does not support",
            ));
        }
        let alg = JwtAlgorithm::from_name(&header.alg)
            .filter(|alg| self.algorithms.contains(*alg))
            .ok_or_else(|| JwtError::AlgorithmNotAllowed(clip(&header.alg)))?;
        let mut signature = [0u8; MAX_SIGNATURE_BYTES];
        let signature_len = URL_SAFE_NO_PAD
            .decode_slice(parts.signature, &mut signature)
            .map_err(|_| JwtError::Malformed("the token's signature is not base64url"))?;
        let signature = &signature[..signature_len];

        let signed = self
            .keys
            .with_key(header.kid.as_deref(), alg, |key| {
                key.verify(alg, parts.signed.as_bytes(), signature)
            })
            .await?;
        if !signed {
            return Err(JwtError::BadSignature);
        }
        let payload = decode_b64(parts.payload)?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|_| JwtError::Malformed("the token's payload is not a JSON object"))?;
        let claims = Claims(claims);
        self.check(&claims, unix_now())?;
        Ok(claims)
    }

    /// Fetches the JWKS now (unless within the quiet time after a failure), for warming up at
    /// startup or reload; returns how many usable keys the cached JWKS holds.
    pub async fn prefetch(&self) -> Result<usize, JwtError> {
        self.keys.prefetch().await
    }

    /// The claim checks after the signature, in API Gateway's order: issuer, audience,
    /// expiry, not-before and issued-at. `now` is seconds since the Unix epoch.
    fn check(&self, claims: &Claims, now: f64) -> Result<(), JwtError> {
        if claims.0.get("iss").and_then(Value::as_str) != Some(&*self.issuer) {
            return Err(JwtError::WrongIssuer);
        }
        if !self.audiences.is_empty() && !self.audience_matches(claims) {
            return Err(JwtError::WrongAudience);
        }
        let exp = numeric_date(claims, "exp")?
            .ok_or(JwtError::Malformed("the token has no exp claim"))?;
        if now >= exp + self.leeway_s {
            return Err(JwtError::Expired);
        }
        for name in ["nbf", "iat"] {
            if let Some(not_before) = numeric_date(claims, name)?
                && not_before > now + self.leeway_s
            {
                return Err(JwtError::NotYetValid);
            }
        }
        Ok(())
    }

    fn audience_matches(&self, claims: &Claims) -> bool {
        let known = |value: &str| self.audiences.iter().any(|a| **a == *value);
        let aud = match claims.0.get("aud") {
            Some(Value::String(aud)) => known(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(known),
            _ => false,
        };
        aud || claims
            .0
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(known)
    }
}

/// The three parts of a compact JWS, and the signed part (`header.payload`).
struct TokenParts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signed: &'a str,
}

impl<'a> TokenParts<'a> {
    fn split(token: &'a str) -> Result<Self, JwtError> {
        let token = token.trim();
        let token = match token.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
            _ if token.eq_ignore_ascii_case("bearer") => "",
            _ => token,
        };
        if token.is_empty() {
            return Err(JwtError::MissingToken);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed(
            "the token is not a JWT (header.payload.signature)",
        ))?;
        let (header, payload) = signed.split_once('.').ok_or(JwtError::Malformed(
            "the token is not a JWT (header.payload.signature)",
        ))?;
        if payload.contains('.') {
            return Err(JwtError::Malformed(
                "the token is not a signed JWT (encrypted tokens are not supported)",
            ));
        }
        Ok(Self {
            header,
            payload,
            signature,
            signed,
        })
    }
}

/// The JOSE header fields the verifier reads.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    /// Extensions the recipient must understand (RFC 7515 §4.1.11): none are, so any refuses.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

fn decode_b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("the token is not base64url-encoded"))
}

/// `name` as a NumericDate (seconds, possibly fractional); an error when it is not a number.
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<f64>, JwtError> {
    match claims.0.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(JwtError::Malformed(
            "the token's exp, nbf or iat claim is not a number",
        )),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A value from the token cut to a length fit for a log line.
pub(crate) fn clip(text: &str) -> Box<str> {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.into();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].into()
}

#[cfg(test)]
mod tests;
