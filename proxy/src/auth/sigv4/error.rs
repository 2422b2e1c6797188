//! Why a signed request was refused, in AWS's words where AWS has them.

use std::time::{Duration, SystemTime};

use http::StatusCode;

use super::time::AmzDate;

/// A request that failed SigV4 verification. `Display` is the message for the client's
/// `{"message": ...}` body; every variant but [`SigV4Error::PayloadNotBuffered`] (a caller bug)
/// is the client's doing and answers 403.
#[derive(Debug, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor `X-Amz-Algorithm` in the query.
    #[error("Missing Authentication Token")]
    MissingAuthentication,
    /// Both an `Authorization` header and a presigned query, or two `Authorization` headers.
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
         Authorization header should be specified"
    )]
    AmbiguousAuthentication,
    /// An `Authorization` header of another scheme (`Bearer`, `AWS`, SigV4a...).
    #[error(
        "The authorization mechanism you have provided is not supported. Please use \
         AWS4-HMAC-SHA256."
    )]
    UnsupportedAlgorithm,
    /// `X-Amz-Algorithm` other than `AWS4-HMAC-SHA256`.
    #[error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")]
    UnsupportedQueryAlgorithm,
    /// An `Authorization` header with bytes outside visible ASCII.
    #[error("Authorization header is invalid: it may hold visible ASCII characters only.")]
    NonAsciiAuthorization,
    /// A component of the `Authorization` header without `=`.
    #[error(
        "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
    )]
    MalformedAuthorization { pair: String, header: String },
    /// `Credential`, `SignedHeaders` or `Signature` given twice in the `Authorization` header.
    #[error("Authorization header has more than one '{name}' parameter.")]
    RepeatedAuthorizationParameter { name: &'static str },
    /// Parts of the header form missing: any of `Credential`, `SignedHeaders`, `Signature`,
    /// `X-Amz-Date` (the header).
    #[error("{}", incomplete_authorization(missing))]
    IncompleteAuthorization { missing: Vec<&'static str> },
    /// Parameters of the presigned form missing (their names).
    #[error(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
         X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters. \
         Missing: {}.", missing.join(", ")
    )]
    IncompleteQuery { missing: Vec<&'static str> },
    /// A presigned parameter given twice.
    #[error("Query-string authentication parameter '{name}' appears more than once.")]
    RepeatedQueryParameter { name: &'static str },
    /// `X-Amz-Date` (header or parameter) not in `yyyyMMddTHHmmssZ`.
    #[error(
        "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not '{value}'."
    )]
    InvalidDate { value: String },
    #[error("X-Amz-Expires should be a number")]
    ExpiresNotANumber,
    #[error("X-Amz-Expires must be non-negative")]
    ExpiresNegative,
    #[error(
        "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires \
         must be less than 604800 seconds"
    )]
    ExpiresTooLong,
    /// A credential that is not `keyid/date/region/service/aws4_request`.
    #[error(
        "Credential must have exactly 5 slash-delimited elements, e.g. \
         keyid/date/region/service/term, got '{credential}'"
    )]
    MalformedCredential { credential: String },
    /// The scope's date is not the day of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '{scope_date}' != '{}', from '{date}'.", date.get(..8).unwrap_or(date)
    )]
    ScopeDateMismatch { scope_date: String, date: String },
    /// A region outside the allowed list (or an empty one).
    #[error("Credential should be scoped to a valid region, not '{region}'.")]
    InvalidRegion { region: String },
    /// A service other than the configured one.
    #[error("Credential should be scoped to correct service: '{expected}'.")]
    InvalidService { expected: String, service: String },
    /// A scope not ending in `aws4_request`.
    #[error(
        "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
    )]
    InvalidTerminator { terminator: String },
    /// `SignedHeaders` not lower case, not sorted, with repeats or empty names.
    #[error(
        "SignedHeaders must be header names in lower case, sorted, without repeats and separated \
         by ';', not '{signed_headers}'."
    )]
    MalformedSignedHeaders { signed_headers: String },
    #[error("'Host' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    /// `x-amz-*` headers sent but left out of `SignedHeaders` (their names).
    #[error(
        "There were headers present in the request which were not signed: {}", headers.join(", ")
    )]
    HeadersNotSigned { headers: Vec<String> },
    /// A header named in `SignedHeaders` that the request does not carry.
    #[error("The request does not carry the header '{name}' named in SignedHeaders.")]
    SignedHeaderAbsent { name: String },
    /// `X-Amz-Date` further in the past than the allowed skew.
    #[error(
        "Signature expired: {} is now earlier than {} ({} - {}.)",
        amz(*signed), amz(*earliest), amz(*now), span(*max_skew)
    )]
    Expired {
        signed: SystemTime,
        earliest: SystemTime,
        now: SystemTime,
        max_skew: Duration,
    },
    /// `X-Amz-Date` further in the future than the allowed skew.
    #[error(
        "Signature not yet current: {} is still later than {} ({} + {}.)",
        amz(*signed), amz(*latest), amz(*now), span(*max_skew)
    )]
    NotYetCurrent {
        signed: SystemTime,
        latest: SystemTime,
        now: SystemTime,
        max_skew: Duration,
    },
    /// A presigned request used after `X-Amz-Date` + `X-Amz-Expires`.
    #[error(
        "Request has expired: X-Amz-Date {} + X-Amz-Expires {expires} s ended at {}, now is {}.",
        amz(*signed), amz(*expired_at), amz(*now)
    )]
    PresignedExpired {
        signed: SystemTime,
        expires: u32,
        expired_at: SystemTime,
        now: SystemTime,
    },
    /// `x-amz-content-sha256` neither `UNSIGNED-PAYLOAD` nor 64 hex digits.
    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value, not '{value}'."
    )]
    InvalidContentSha256 { value: String },
    /// `UNSIGNED-PAYLOAD` where settings require a signed payload.
    #[error("x-amz-content-sha256: UNSIGNED-PAYLOAD is not accepted; sign the payload.")]
    UnsignedPayloadRefused,
    /// An access key that is unknown or disabled.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey { access_key_id: String },
    /// The signature is not the one the secret gives for this request. The canonical request
    /// and string to sign are what the gateway computed (API Gateway shows both to the client;
    /// the message here leaves them out).
    #[error(
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    )]
    SignatureMismatch {
        canonical_request: String,
        string_to_sign: String,
    },
    /// A validly signed `x-amz-content-sha256` that the body does not hash to.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch { declared: String, computed: String },
    /// The caller passed [`super::Payload::NotBuffered`] where the body's hash is needed.
    #[error("the request body was not buffered, but its SHA-256 is part of the signature")]
    PayloadNotBuffered,
}

impl SigV4Error {
    /// The response status: 403, or 500 for [`SigV4Error::PayloadNotBuffered`].
    pub fn status(&self) -> StatusCode {
        match self {
            Self::PayloadNotBuffered => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// The error type API Gateway puts in `x-amzn-ErrorType` for this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::MissingAuthentication => "MissingAuthenticationTokenException",
            Self::UnknownAccessKey { .. } => "UnrecognizedClientException",
            Self::MalformedAuthorization { .. }
            | Self::NonAsciiAuthorization
            | Self::RepeatedAuthorizationParameter { .. }
            | Self::IncompleteAuthorization { .. }
            | Self::IncompleteQuery { .. }
            | Self::RepeatedQueryParameter { .. }
            | Self::MalformedCredential { .. } => "IncompleteSignatureException",
            Self::PayloadNotBuffered => "InternalServerErrorException",
            _ => "InvalidSignatureException",
        }
    }
}

fn amz(time: SystemTime) -> AmzDate {
    AmzDate::from_system_time(time)
}

/// A skew as AWS writes it: `15 min`, or seconds when not whole minutes.
fn span(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

fn incomplete_authorization(missing: &[&'static str]) -> String {
    let mut message = String::new();
    for name in missing {
        if !message.is_empty() {
            message.push(' ');
        }
        if *name == "X-Amz-Date" {
            message.push_str("Authorization header requires existence of a 'X-Amz-Date' header.");
        } else {
            message.push_str("Authorization header requires '");
            message.push_str(name);
            message.push_str("' parameter.");
        }
    }
    message
}
