//! AWS Signature Version 4 verification: the self-hosted stand-in for API Gateway's IAM auth
//! (pipeline phase 5, authorize).
//!
//! A client signs with an access key's secret exactly as the AWS SDKs and the `aws-sigv4`
//! crate do for a service such as `execute-api`, in either form:
//! - the `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
//!   header with `X-Amz-Date` (and `X-Amz-Security-Token`, if sent, as one more signed header);
//! - a presigned URL: `X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`, `-SignedHeaders`
//!   and `-Signature` in the query.
//!
//! [`SigV4Verifier`] is built once per configuration. Per request, [`SigV4Verifier::begin`]
//! makes every check that needs neither the body nor a MAC (form, credential scope, date
//! window, signed headers, the access key's secret), so a request that fails them is refused
//! before its body is read; [`PendingVerification::finish`] then rebuilds the canonical request
//! (see `canonical`), compares signatures in constant time and checks a declared payload hash.
//! [`SigV4Verifier::verify`] does both at once.
//!
//! The payload hash in the canonical request is `x-amz-content-sha256` when the request
//! carries it (a hex SHA-256, checked against the body, or `UNSIGNED-PAYLOAD`), otherwise the
//! SHA-256 of the body, so the caller buffers the body (within the body limit) whenever
//! [`PendingVerification::needs_body`] says so. A presigned URL without that header may also
//! have been signed with `UNSIGNED-PAYLOAD` (as S3 presigns); both are tried.
//!
//! Every failure is a [`SigV4Error`] whose message names the part that failed.

pub(crate) mod canonical;
mod error;
mod key;
mod parse;
mod time;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::request::Parts;
use ring::{digest, hmac};

use crate::encoding::hex;

pub use error::SigV4Error;

use key::SigningKeys;
use parse::{ALGORITHM, Credential, SignatureInput};
use time::AmzDate;

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const CONTENT_SHA256: &str = "x-amz-content-sha256";

/// What a [`SigV4Verifier`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Settings {
    /// Regions a credential scope may name; empty (the default) accepts any.
    pub regions: Vec<String>,
    /// The service a credential scope must name. Default: `execute-api`.
    pub service: String,
    /// How far `X-Amz-Date` may be from now, either way. Default: 15 minutes, as AWS. A
    /// presigned URL is valid from `X-Amz-Date` minus this until `X-Amz-Date` plus
    /// `X-Amz-Expires` (at most 7 days).
    pub max_skew: Duration,
    /// Whether `x-amz-content-sha256: UNSIGNED-PAYLOAD` (a signature that leaves the body out)
    /// is accepted. Default: true, as API Gateway.
    pub allow_unsigned_payload: bool,
}

impl Default for SigV4Settings {
    fn default() -> Self {
        Self {
            regions: Vec::new(),
            service: "execute-api".to_owned(),
            max_skew: Duration::from_secs(15 * 60),
            allow_unsigned_payload: true,
        }
    }
}

/// An access key's secret. Cheap to clone; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(secret: impl Into<Arc<str>>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for deriving signing keys.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where secrets come from (the state store's access keys).
pub trait SecretLookup {
    /// The secret of access key `access_key_id`; `None` when the key is unknown or disabled.
    fn secret(&self, access_key_id: &str) -> Option<Secret>;
}

/// Fixed keys, by access key id (tests, benches, keys from a file).
impl<S: std::hash::BuildHasher> SecretLookup for HashMap<String, Secret, S> {
    fn secret(&self, access_key_id: &str) -> Option<Secret> {
        self.get(access_key_id).cloned()
    }
}

/// The request body, as far as the caller has it.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The whole body (empty for a request without one).
    Buffered(&'a [u8]),
    /// The body was not read. Enough only when the signature leaves it out
    /// (`UNSIGNED-PAYLOAD`); otherwise verification fails with
    /// [`SigV4Error::PayloadNotBuffered`].
    NotBuffered,
}

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    /// The `Authorization` header.
    Header,
    /// A presigned URL's query string.
    Query,
}

/// The credential scope a request was signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `yyyymmdd`, the UTC day of `X-Amz-Date`.
    pub date: String,
    pub region: String,
    pub service: String,
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    /// The principal.
    pub access_key_id: String,
    pub scope: CredentialScope,
    /// `X-Amz-Date`.
    pub signed_at: SystemTime,
    pub location: SignatureLocation,
    /// False when the body was left out of the signature (`UNSIGNED-PAYLOAD`).
    pub payload_signed: bool,
}

/// Verifies SigV4 signatures under one [`SigV4Settings`]; keeps derived signing keys between
/// requests.
pub struct SigV4Verifier {
    settings: SigV4Settings,
    keys: SigningKeys,
}

impl fmt::Debug for SigV4Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV4Verifier")
            .field("settings", &self.settings)
            .field("cached_keys", &self.keys.entry_count())
            .finish()
    }
}

/// The payload hash a request declares in `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy)]
enum DeclaredPayload<'a> {
    /// No header: the body's own hash (or, presigned, possibly `UNSIGNED-PAYLOAD`).
    None,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// A hex SHA-256 that the body must match.
    Sha256(&'a str),
}

impl SigV4Verifier {
    pub fn new(settings: SigV4Settings) -> Self {
        Self {
            settings,
            keys: SigningKeys::new(),
        }
    }

    pub fn settings(&self) -> &SigV4Settings {
        &self.settings
    }

    /// Verifies `request` (its head as received, before any rewriting) with its body
    /// `payload` at time `now`: both steps below at once.
    pub fn verify(
        &self,
        request: &Parts,
        payload: Payload<'_>,
        secrets: &impl SecretLookup,
        now: SystemTime,
    ) -> Result<SignedBy, SigV4Error> {
        self.begin(request, secrets, now)?.finish(payload)
    }

    /// Everything that needs neither the body nor a MAC, in this order: the signature's form
    /// and parts, the credential and its scope (date, region, service, terminator), the
    /// `SignedHeaders` list (lower case, sorted, with `host` and every `x-amz-*` header sent but
    /// `x-amz-cf-id`, and on a presigned URL `x-amz-user-agent` and `x-amz-checksum-mode`), the
    /// date window, `x-amz-content-sha256`, and the access key's secret.
    pub fn begin<'a>(
        &'a self,
        request: &'a Parts,
        secrets: &impl SecretLookup,
        now: SystemTime,
    ) -> Result<PendingVerification<'a>, SigV4Error> {
        let input = parse::signature_input(request)?;
        let credential = Credential::parse(&input.credential)?;
        let date = AmzDate::parse(&input.date).ok_or_else(|| SigV4Error::InvalidDate {
            value: input.date.clone().into_owned(),
        })?;
        self.check_scope(&credential, &input.date)?;
        parse::check_signed_headers(&input.signed_headers)?;
        if !input.signed_headers.split(';').any(|name| name == "host") {
            return Err(SigV4Error::HostNotSigned);
        }
        self.check_window(date, input.expires, now)?;
        let unsigned = canonical::unsigned_amz_headers(
            &request.headers,
            &input.signed_headers,
            input.location == SignatureLocation::Query,
        );
        if !unsigned.is_empty() {
            return Err(SigV4Error::HeadersNotSigned { headers: unsigned });
        }
        let declared = self.declared_payload(request)?;
        let secret = secrets.secret(credential.access_key_id).ok_or_else(|| {
            SigV4Error::UnknownAccessKey {
                access_key_id: credential.access_key_id.to_owned(),
            }
        })?;
        Ok(PendingVerification {
            verifier: self,
            request,
            input,
            date,
            declared,
            secret,
        })
    }

    fn check_scope(&self, credential: &Credential<'_>, date: &str) -> Result<(), SigV4Error> {
        if !date.starts_with(credential.date) || credential.date.len() != 8 {
            return Err(SigV4Error::ScopeDateMismatch {
                scope_date: credential.date.to_owned(),
                date: date.to_owned(),
            });
        }
        let regions = &self.settings.regions;
        if credential.region.is_empty()
            || !(regions.is_empty() || regions.iter().any(|r| r == credential.region))
        {
            return Err(SigV4Error::InvalidRegion {
                region: credential.region.to_owned(),
            });
        }
        if credential.service != self.settings.service {
            return Err(SigV4Error::InvalidService {
                expected: self.settings.service.clone(),
                service: credential.service.to_owned(),
            });
        }
        if credential.terminator != "aws4_request" {
            return Err(SigV4Error::InvalidTerminator {
                terminator: credential.terminator.to_owned(),
            });
        }
        Ok(())
    }

    /// Header form: `now` ± the skew. Presigned: from `X-Amz-Date` − the skew until
    /// `X-Amz-Date` + `X-Amz-Expires`.
    fn check_window(
        &self,
        date: AmzDate,
        expires: Option<u32>,
        now: SystemTime,
    ) -> Result<(), SigV4Error> {
        let max_skew = self.settings.max_skew;
        let skew = i64::try_from(max_skew.as_secs()).unwrap_or(i64::MAX);
        let now_date = AmzDate::from_system_time(now);
        let latest = now_date.add_secs(skew);
        if date > latest {
            return Err(SigV4Error::NotYetCurrent {
                signed: date.to_system_time(),
                latest: latest.to_system_time(),
                now: now_date.to_system_time(),
                max_skew,
            });
        }
        match expires {
            None => {
                let earliest = now_date.add_secs(-skew);
                if date < earliest {
                    return Err(SigV4Error::Expired {
                        signed: date.to_system_time(),
                        earliest: earliest.to_system_time(),
                        now: now_date.to_system_time(),
                        max_skew,
                    });
                }
            }
            Some(expires) => {
                let expired_at = date.add_secs(i64::from(expires));
                if now_date > expired_at {
                    return Err(SigV4Error::PresignedExpired {
                        signed: date.to_system_time(),
                        expires,
                        expired_at: expired_at.to_system_time(),
                        now: now_date.to_system_time(),
                    });
                }
            }
        }
        Ok(())
    }

    fn declared_payload<'a>(&self, request: &'a Parts) -> Result<DeclaredPayload<'a>, SigV4Error> {
        let Some(value) = request.headers.get(CONTENT_SHA256) else {
            return Ok(DeclaredPayload::None);
        };
        match value.to_str() {
            Ok(UNSIGNED_PAYLOAD) if self.settings.allow_unsigned_payload => {
                Ok(DeclaredPayload::Unsigned)
            }
            Ok(UNSIGNED_PAYLOAD) => Err(SigV4Error::UnsignedPayloadRefused),
            Ok(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(DeclaredPayload::Sha256(hash))
            }
            _ => Err(SigV4Error::InvalidContentSha256 {
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            }),
        }
    }
}

/// A request that passed [`SigV4Verifier::begin`]; [`Self::finish`] checks the signature.
pub struct PendingVerification<'a> {
    verifier: &'a SigV4Verifier,
    request: &'a Parts,
    input: SignatureInput<'a>,
    date: AmzDate,
    declared: DeclaredPayload<'a>,
    secret: Secret,
}

impl fmt::Debug for PendingVerification<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingVerification")
            .field("credential", &self.input.credential)
            .field("location", &self.input.location)
            .finish_non_exhaustive()
    }
}

impl PendingVerification<'_> {
    /// Whether [`Self::finish`] needs the body: false only for `UNSIGNED-PAYLOAD`.
    pub fn needs_body(&self) -> bool {
        !matches!(self.declared, DeclaredPayload::Unsigned)
    }

    /// The access key that signed (not yet verified).
    pub fn access_key_id(&self) -> &str {
        self.input
            .credential
            .split_once('/')
            .map_or(&*self.input.credential, |(id, _)| id)
    }

    /// Builds the canonical request (failing if a signed header is absent), checks the
    /// signature in constant time, then a declared payload hash against the body.
    pub fn finish(self, payload: Payload<'_>) -> Result<SignedBy, SigV4Error> {
        let body_hash = match payload {
            Payload::Buffered(body) => Some(hex(digest::digest(&digest::SHA256, body).as_ref())),
            Payload::NotBuffered => None,
        };
        let presigned = self.input.location == SignatureLocation::Query;
        let allow_unsigned = self.verifier.settings.allow_unsigned_payload;
        // The payload hashes the signer may have used, most likely first.
        let candidates: [Option<&str>; 2] = match self.declared {
            DeclaredPayload::Unsigned => [Some(UNSIGNED_PAYLOAD), None],
            DeclaredPayload::Sha256(hash) if body_hash.is_some() => [Some(hash), None],
            DeclaredPayload::None if body_hash.is_some() => [
                body_hash.as_deref(),
                (presigned && allow_unsigned).then_some(UNSIGNED_PAYLOAD),
            ],
            _ => return Err(SigV4Error::PayloadNotBuffered),
        };

        let credential = Credential::parse(&self.input.credential)?;
        let prefix = self.canonical_prefix()?;
        let signature = crate::encoding::unhex32(&self.input.signature);
        let cached = self
            .verifier
            .keys
            .cached(&self.input.credential, &self.secret);
        let was_cached = cached.is_some();
        let key = cached.unwrap_or_else(|| {
            Arc::new(key::derive(
                &self.secret,
                credential.date,
                credential.region,
                credential.service,
            ))
        });

        let mut first_failure = None;
        for payload_hash in candidates.into_iter().flatten() {
            let string_to_sign = self.string_to_sign(&prefix, payload_hash, credential.scope);
            let verified = signature.as_ref().is_some_and(|signature| {
                hmac::verify(&key.key, string_to_sign.as_bytes(), signature).is_ok()
            });
            if verified {
                if !was_cached {
                    self.verifier.keys.remember(&self.input.credential, key);
                }
                if let (DeclaredPayload::Sha256(declared), Some(computed)) =
                    (self.declared, &body_hash)
                    && !declared.eq_ignore_ascii_case(computed)
                {
                    return Err(SigV4Error::PayloadHashMismatch {
                        declared: declared.to_owned(),
                        computed: computed.clone(),
                    });
                }
                return Ok(SignedBy {
                    access_key_id: credential.access_key_id.to_owned(),
                    scope: CredentialScope {
                        date: credential.date.to_owned(),
                        region: credential.region.to_owned(),
                        service: credential.service.to_owned(),
                    },
                    signed_at: self.date.to_system_time(),
                    location: self.input.location,
                    payload_signed: payload_hash != UNSIGNED_PAYLOAD,
                });
            }
            first_failure.get_or_insert((payload_hash, string_to_sign));
        }
        let (payload_hash, string_to_sign) = first_failure.unwrap_or_default();
        let mut canonical_request = prefix;
        canonical_request.extend_from_slice(payload_hash.as_bytes());
        Err(SigV4Error::SignatureMismatch {
            canonical_request: String::from_utf8_lossy(&canonical_request).into_owned(),
            string_to_sign,
        })
    }

    /// The canonical request up to (not including) the payload hash.
    fn canonical_prefix(&self) -> Result<Vec<u8>, SigV4Error> {
        let request = self.request;
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(request.method.as_str().as_bytes());
        out.push(b'\n');
        canonical::write_uri(&mut out, request.uri.path());
        out.push(b'\n');
        canonical::write_query(
            &mut out,
            request.uri.query(),
            self.input.location == SignatureLocation::Query,
        );
        out.push(b'\n');
        canonical::write_headers(&mut out, request, &self.input.signed_headers)?;
        out.push(b'\n');
        out.extend_from_slice(self.input.signed_headers.as_bytes());
        out.push(b'\n');
        Ok(out)
    }

    fn string_to_sign(&self, prefix: &[u8], payload_hash: &str, scope: &str) -> String {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(prefix);
        context.update(payload_hash.as_bytes());
        let request_hash = hex(context.finish().as_ref());
        let mut out = String::with_capacity(ALGORITHM.len() + scope.len() + 100);
        for part in [
            ALGORITHM,
            "\n",
            &self.input.date,
            "\n",
            scope,
            "\n",
            &request_hash,
        ] {
            out.push_str(part);
        }
        out
    }
}
