//! Reading the signature's parts from a request: the `Authorization` header form or the
//! presigned query form, the credential and the `SignedHeaders` list.

use std::borrow::Cow;

use http::HeaderValue;
use http::header::AUTHORIZATION;
use http::request::Parts;

use super::SignatureLocation;
use super::canonical::query_pairs;
use super::error::SigV4Error;

pub(super) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The longest `X-Amz-Expires` AWS accepts: 7 days.
const MAX_EXPIRES_SECS: u64 = 604_800;

/// The signature's parts as the request states them, not yet checked against anything.
#[derive(Debug)]
pub(super) struct SignatureInput<'a> {
    pub location: SignatureLocation,
    /// `keyid/yyyymmdd/region/service/aws4_request`.
    pub credential: Cow<'a, str>,
    pub signed_headers: Cow<'a, str>,
    pub signature: Cow<'a, str>,
    /// `X-Amz-Date`, as sent.
    pub date: Cow<'a, str>,
    /// `X-Amz-Expires` in seconds (presigned only).
    pub expires: Option<u32>,
}

/// Finds which form the request is signed in and reads its parts.
pub(super) fn signature_input(parts: &Parts) -> Result<SignatureInput<'_>, SigV4Error> {
    let mut authorization = parts.headers.get_all(AUTHORIZATION).iter();
    let header = authorization.next();
    if header.is_some() && authorization.next().is_some() {
        return Err(SigV4Error::AmbiguousAuthentication);
    }
    let query = parts
        .uri
        .query()
        .filter(|query| query_pairs(query).any(|(name, _)| name == "X-Amz-Algorithm"));
    match (header, query) {
        (Some(_), Some(_)) => Err(SigV4Error::AmbiguousAuthentication),
        (Some(header), None) => from_header(parts, header),
        (None, Some(query)) => from_query(query),
        (None, None) => Err(SigV4Error::MissingAuthentication),
    }
}

/// `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` and `X-Amz-Date`.
fn from_header<'a>(
    parts: &'a Parts,
    header: &'a HeaderValue,
) -> Result<SignatureInput<'a>, SigV4Error> {
    let text = header
        .to_str()
        .map_err(|_| SigV4Error::NonAsciiAuthorization)?;
    let (algorithm, rest) = text.split_once(' ').unwrap_or((text, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm);
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) =
            pair.split_once('=')
                .ok_or_else(|| SigV4Error::MalformedAuthorization {
                    pair: pair.to_owned(),
                    header: text.to_owned(),
                })?;
        let (slot, name) = match name.trim_end() {
            "Credential" => (&mut credential, "Credential"),
            "SignedHeaders" => (&mut signed_headers, "SignedHeaders"),
            "Signature" => (&mut signature, "Signature"),
            _ => continue,
        };
        if slot.replace(value.trim_start()).is_some() {
            return Err(SigV4Error::RepeatedAuthorizationParameter { name });
        }
    }
    let date = parts.headers.get("x-amz-date");
    let mut missing = Vec::new();
    for (present, name) in [
        (credential.is_some(), "Credential"),
        (signed_headers.is_some(), "SignedHeaders"),
        (signature.is_some(), "Signature"),
        (date.is_some(), "X-Amz-Date"),
    ] {
        if !present {
            missing.push(name);
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date)) =
        (credential, signed_headers, signature, date)
    else {
        return Err(SigV4Error::IncompleteAuthorization { missing });
    };
    let date = date.to_str().map_err(|_| SigV4Error::InvalidDate {
        value: String::from_utf8_lossy(date.as_bytes()).into_owned(),
    })?;
    Ok(SignatureInput {
        location: SignatureLocation::Header,
        credential: Cow::Borrowed(credential),
        signed_headers: Cow::Borrowed(signed_headers),
        signature: Cow::Borrowed(signature),
        date: Cow::Borrowed(date),
        expires: None,
    })
}

/// `X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`, `-SignedHeaders` and `-Signature`.
fn from_query(query: &str) -> Result<SignatureInput<'_>, SigV4Error> {
    const NAMES: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];
    let mut values: [Option<Cow<'_, str>>; 6] = Default::default();
    for (name, value) in query_pairs(query) {
        if let Some(i) = NAMES.iter().position(|known| *known == name)
            && values[i].replace(value).is_some()
        {
            return Err(SigV4Error::RepeatedQueryParameter { name: NAMES[i] });
        }
    }
    let missing: Vec<&'static str> = NAMES
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    let [
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ] = values
    else {
        return Err(SigV4Error::IncompleteQuery { missing });
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedQueryAlgorithm);
    }
    Ok(SignatureInput {
        location: SignatureLocation::Query,
        credential,
        signed_headers,
        signature,
        date,
        expires: Some(parse_expires(&expires)?),
    })
}

fn parse_expires(text: &str) -> Result<u32, SigV4Error> {
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if text.strip_prefix('-').is_some_and(all_digits) {
        return Err(SigV4Error::ExpiresNegative);
    }
    if !all_digits(text) {
        return Err(SigV4Error::ExpiresNotANumber);
    }
    match text.parse::<u64>() {
        Ok(secs) if secs <= MAX_EXPIRES_SECS => {
            u32::try_from(secs).map_err(|_| SigV4Error::ExpiresTooLong)
        }
        _ => Err(SigV4Error::ExpiresTooLong),
    }
}

/// The five elements of `keyid/yyyymmdd/region/service/aws4_request`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Credential<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
    /// `yyyymmdd/region/service/aws4_request`, as it goes into the string to sign.
    pub scope: &'a str,
}

impl<'a> Credential<'a> {
    pub fn parse(credential: &'a str) -> Result<Self, SigV4Error> {
        let mut elements = credential.split('/');
        let malformed = || SigV4Error::MalformedCredential {
            credential: credential.to_owned(),
        };
        let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) = (
            elements.next(),
            elements.next(),
            elements.next(),
            elements.next(),
            elements.next(),
            elements.next(),
        ) else {
            return Err(malformed());
        };
        Ok(Self {
            access_key_id,
            date,
            region,
            service,
            terminator,
            scope: &credential[access_key_id.len() + 1..],
        })
    }
}

/// Checks that `SignedHeaders` is a `;`-separated list of lower-case header names in strictly
/// ascending order, as every SDK writes it (the canonical request lists headers in this order).
pub(super) fn check_signed_headers(signed_headers: &str) -> Result<(), SigV4Error> {
    let is_name_byte =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    let mut previous: Option<&str> = None;
    for name in signed_headers.split(';') {
        let valid = !name.is_empty()
            && name.bytes().all(is_name_byte)
            && previous.is_none_or(|previous| previous < name);
        if !valid {
            return Err(SigV4Error::MalformedSignedHeaders {
                signed_headers: signed_headers.to_owned(),
            });
        }
        previous = Some(name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_is_a_number_of_seconds_up_to_a_week() {
        assert_eq!(parse_expires("0").unwrap(), 0);
        assert_eq!(parse_expires("604800").unwrap(), 604_800);
        assert!(matches!(
            parse_expires("604801"),
            Err(SigV4Error::ExpiresTooLong)
        ));
        assert!(matches!(
            parse_expires("99999999999999999999999"),
            Err(SigV4Error::ExpiresTooLong)
        ));
        assert!(matches!(
            parse_expires("-5"),
            Err(SigV4Error::ExpiresNegative)
        ));
        for text in ["", "1.5", "5s", " 5", "+5", "-"] {
            assert!(
                matches!(parse_expires(text), Err(SigV4Error::ExpiresNotANumber)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn credentials_have_five_elements() {
        let credential = Credential::parse("AKID/20150830/us-east-1/iam/aws4_request").unwrap();
        assert_eq!(credential.access_key_id, "AKID");
        assert_eq!(credential.date, "20150830");
        assert_eq!(credential.region, "us-east-1");
        assert_eq!(credential.service, "iam");
        assert_eq!(credential.terminator, "aws4_request");
        assert_eq!(credential.scope, "20150830/us-east-1/iam/aws4_request");
        for text in [
            "",
            "AKID",
            "AKID/20150830/us-east-1/iam",
            "A/K/20150830/us-east-1/iam/aws4_request",
        ] {
            assert!(
                matches!(
                    Credential::parse(text),
                    Err(SigV4Error::MalformedCredential { .. })
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn signed_headers_are_lower_case_and_sorted() {
        check_signed_headers("host").unwrap();
        check_signed_headers("content-type;host;x-amz-date").unwrap();
        for text in [
            "",
            "host;",
            ";host",
            "Host",
            "x-amz-date;host",
            "host;host",
            "ho st",
        ] {
            assert!(
                matches!(
                    check_signed_headers(text),
                    Err(SigV4Error::MalformedSignedHeaders { .. })
                ),
                "{text:?}"
            );
        }
    }
}
