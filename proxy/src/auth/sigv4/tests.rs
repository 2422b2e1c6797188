//! Requests signed here with the real `aws-sigv4` crate (as the AWS SDKs sign), then verified
//! as the gateway receives them. Time is fixed: signing and `now` are explicit instants.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation as AwsLocation,
    SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::header::HOST;
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, Uri};

use super::time::AmzDate;
use super::*;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const SERVICE: &str = "execute-api";
const SIGNED_AT: &str = "20261121T101500Z";
const SIGNATURE_MISMATCH: &str =
    "The request signature we calculated does not match the signature you provided";

fn at(text: &str) -> SystemTime {
    AmzDate::parse(text).unwrap().to_system_time()
}

fn keys(keys: &[(&str, &str)]) -> HashMap<String, Secret> {
    keys.iter()
        .map(|(id, secret)| ((*id).to_owned(), Secret::new(*secret)))
        .collect()
}

fn secrets() -> HashMap<String, Secret> {
    keys(&[(ACCESS_KEY, SECRET)])
}

/// How a test signs: `aws-sigv4`'s defaults (headers, body hashed, no content-sha header)
/// unless changed.
struct Signer {
    access_key: &'static str,
    secret: &'static str,
    region: &'static str,
    service: &'static str,
    time: SystemTime,
    session_token: Option<&'static str>,
    /// Presign with this `X-Amz-Expires`.
    presign: Option<Duration>,
    /// Send `x-amz-content-sha256` (as S3 clients do).
    content_sha_header: bool,
    unsigned_payload: bool,
}

impl Default for Signer {
    fn default() -> Self {
        Self {
            access_key: ACCESS_KEY,
            secret: SECRET,
            region: REGION,
            service: SERVICE,
            time: at(SIGNED_AT),
            session_token: None,
            presign: None,
            content_sha_header: false,
            unsigned_payload: false,
        }
    }
}

impl Signer {
    fn sign(&self, request: &mut http::Request<Vec<u8>>) {
        let identity = Credentials::new(
            self.access_key,
            self.secret,
            self.session_token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let mut settings = SigningSettings::default();
        if let Some(expires) = self.presign {
            settings.signature_location = AwsLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        if self.content_sha_header {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        let body = if self.unsigned_payload {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(request.body())
        };
        let signable =
            SignableRequest::new(request.method().as_str(), uri, headers.into_iter(), body)
                .unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(request);
    }
}

fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.to_vec()).unwrap()
}

/// The request as an HTTP/1.1 server hands it over: origin-form URI and a `Host` header.
fn received(request: http::Request<Vec<u8>>) -> (Parts, Vec<u8>) {
    let (mut parts, body) = request.into_parts();
    if let Some(authority) = parts.uri.authority() {
        let host = HeaderValue::from_str(authority.as_str()).unwrap();
        parts.headers.entry(HOST).or_insert(host);
    }
    parts.uri = Uri::try_from(parts.uri.path_and_query().unwrap().as_str()).unwrap();
    (parts, body)
}

fn signed(
    signer: &Signer,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Parts, Vec<u8>) {
    let mut request = request(method, uri, headers, body);
    signer.sign(&mut request);
    received(request)
}

fn verify_with(
    settings: SigV4Settings,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<SignedBy, SigV4Error> {
    SigV4Verifier::new(settings).verify(parts, Payload::Buffered(body), &secrets(), now)
}

fn verify(parts: &Parts, body: &[u8]) -> Result<SignedBy, SigV4Error> {
    verify_with(SigV4Settings::default(), parts, body, at(SIGNED_AT))
}

fn message(result: Result<SignedBy, SigV4Error>) -> String {
    let error = result.unwrap_err();
    assert_eq!(error.status(), StatusCode::FORBIDDEN, "{error}");
    error.to_string()
}

fn assert_mismatch(result: Result<SignedBy, SigV4Error>) {
    let error = result.unwrap_err();
    assert!(
        matches!(error, SigV4Error::SignatureMismatch { .. }),
        "{error:?}"
    );
    assert!(error.to_string().starts_with(SIGNATURE_MISMATCH));
}

fn get_pets() -> (Parts, Vec<u8>) {
    signed(
        &Signer::default(),
        "GET",
        "https://api.example.com/prod/pets?limit=10&type=dog",
        &[("accept", "application/json")],
        b"",
    )
}

const PET_JSON: &[u8] = br#"{"name":"Rex","type":"dog","price":249.99}"#;

fn post_pet(signer: &Signer) -> (Parts, Vec<u8>) {
    signed(
        signer,
        "POST",
        "https://api.example.com/prod/pets",
        &[
            ("content-type", "application/json"),
            ("content-length", "42"),
            ("user-agent", "aws-sdk-rust/1.0"),
            ("x-amz-user-agent", "aws-sdk-rust/1.0 api/test"),
        ],
        PET_JSON,
    )
}

#[test]
fn a_get_with_a_query_string_verifies() {
    let (parts, body) = get_pets();
    assert!(
        parts
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261121/us-east-1/execute-api/aws4_request")
    );
    let signed_by = verify(&parts, &body).unwrap();
    assert_eq!(
        signed_by,
        SignedBy {
            access_key_id: ACCESS_KEY.to_owned(),
            scope: CredentialScope {
                date: "20261121".to_owned(),
                region: REGION.to_owned(),
                service: SERVICE.to_owned(),
            },
            signed_at: at(SIGNED_AT),
            location: SignatureLocation::Header,
            payload_signed: true,
        }
    );
}

#[test]
fn a_post_with_a_json_body_verifies_and_a_changed_body_does_not() {
    let (parts, body) = post_pet(&Signer::default());
    assert_eq!(body, PET_JSON);
    assert!(verify(&parts, &body).unwrap().payload_signed);
    assert_mismatch(verify(
        &parts,
        br#"{"name":"Rex","type":"dog","price":0.01}"#,
    ));
    assert_mismatch(verify(&parts, b""));
}

#[test]
fn a_declared_content_sha256_is_signed_and_checked_against_the_body() {
    let signer = Signer {
        content_sha_header: true,
        ..Signer::default()
    };
    let (parts, body) = post_pet(&signer);
    assert!(parts.headers.contains_key("x-amz-content-sha256"));
    verify(&parts, &body).unwrap();
    let error = verify(&parts, b"{}").unwrap_err();
    assert!(
        matches!(error, SigV4Error::PayloadHashMismatch { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    );
    // The declared hash itself is signed.
    let mut tampered = parts.clone();
    tampered.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static(
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        ),
    );
    assert_mismatch(verify(&tampered, b"{}"));
}

#[test]
fn unsigned_payload_needs_no_body_unless_refused() {
    let signer = Signer {
        content_sha_header: true,
        unsigned_payload: true,
        ..Signer::default()
    };
    let (parts, _) = post_pet(&signer);
    assert_eq!(parts.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    let verifier = SigV4Verifier::new(SigV4Settings::default());
    let pending = verifier.begin(&parts, &secrets(), at(SIGNED_AT)).unwrap();
    assert!(!pending.needs_body());
    assert_eq!(pending.access_key_id(), ACCESS_KEY);
    let signed_by = pending.finish(Payload::NotBuffered).unwrap();
    assert!(!signed_by.payload_signed);
    // Any body goes with an unsigned payload.
    assert!(verify(&parts, b"anything").is_ok());

    let strict = SigV4Settings {
        allow_unsigned_payload: false,
        ..SigV4Settings::default()
    };
    assert_eq!(
        message(verify_with(strict, &parts, b"", at(SIGNED_AT))),
        "x-amz-content-sha256: UNSIGNED-PAYLOAD is not accepted; sign the payload."
    );
}

#[test]
fn a_body_the_signature_covers_must_be_buffered() {
    let (parts, _) = post_pet(&Signer::default());
    let verifier = SigV4Verifier::new(SigV4Settings::default());
    let pending = verifier.begin(&parts, &secrets(), at(SIGNED_AT)).unwrap();
    assert!(pending.needs_body());
    let error = pending.finish(Payload::NotBuffered).unwrap_err();
    assert!(matches!(error, SigV4Error::PayloadNotBuffered));
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn paths_with_spaces_unicode_and_reserved_characters_verify() {
    for path in [
        "/prod/pets/a%20b",
        "/prod/caf%C3%A9/%E2%9C%93",
        "/prod/x:y@z!$&'()*+,;=",
        "/prod/100%25/%2F/%7Euser",
        "/prod/a/./b/../c",
        "/prod//double//slashes/",
        "/",
    ] {
        let (parts, body) = signed(
            &Signer::default(),
            "GET",
            &format!("https://api.example.com{path}"),
            &[],
            b"",
        );
        assert_eq!(parts.uri.path(), path);
        verify(&parts, &body).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn repeated_and_unsorted_query_parameters_verify() {
    let (parts, body) = signed(
        &Signer::default(),
        "GET",
        "https://api.example.com/prod/search?z=1&b=2&a=3&a=1&a=2&empty=&flag&plus=a+b\
         &enc=%2F%3D%26&uni=%E2%9C%93&Upper=X&tilde=~",
        &[],
        b"",
    );
    verify(&parts, &body).unwrap();
}

#[test]
fn header_values_with_runs_of_spaces_verify() {
    let (parts, body) = signed(
        &Signer::default(),
        "GET",
        "https://api.example.com/prod/pets",
        &[
            ("x-folded", "  first   second \t third    fourth  "),
            ("x-repeated", "one"),
            ("x-repeated", "  two  "),
        ],
        b"",
    );
    verify(&parts, &body).unwrap();
    // An HTTP/1 server strips the value's outer whitespace; inner runs stay as sent.
    let mut stripped = parts.clone();
    stripped.headers.insert(
        "x-folded",
        HeaderValue::from_static("first   second \t third    fourth"),
    );
    verify(&stripped, &body).unwrap();
    // A changed word is not whitespace.
    let mut tampered = parts;
    tampered.headers.insert(
        "x-folded",
        HeaderValue::from_static("first second third fifth"),
    );
    assert_mismatch(verify(&tampered, &body));
}

#[test]
fn a_session_token_is_one_more_signed_header() {
    let signer = Signer {
        session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN"),
        ..Signer::default()
    };
    let (parts, body) = post_pet(&signer);
    assert_eq!(
        parts.headers["x-amz-security-token"],
        "FwoGZXIvYXdzEXAMPLETOKEN"
    );
    verify(&parts, &body).unwrap();
    let mut tampered = parts;
    tampered
        .headers
        .insert("x-amz-security-token", HeaderValue::from_static("another"));
    assert_mismatch(verify(&tampered, &body));
}

#[test]
fn http2_requests_sign_the_authority() {
    // HTTP/2 brings the host as `:authority` (the URI), with no `Host` header.
    for uri in [
        "https://api.example.com/prod/pets",
        "https://api.example.com:443/prod/pets",
        "http://127.0.0.1:8080/prod/pets",
    ] {
        let mut request = request("GET", uri, &[], b"");
        Signer::default().sign(&mut request);
        let (parts, body) = request.into_parts();
        assert!(!parts.headers.contains_key(HOST));
        verify(&parts, &body).unwrap_or_else(|e| panic!("{uri}: {e}"));
    }
}

#[test]
fn tampering_fails_with_the_mismatch_message() {
    let (parts, body) = get_pets();
    let mut path = parts.clone();
    path.uri = Uri::from_static("/prod/pets/1?limit=10&type=dog");
    assert_mismatch(verify(&path, &body));

    let mut query = parts.clone();
    query.uri = Uri::from_static("/prod/pets?limit=1000&type=dog");
    assert_mismatch(verify(&query, &body));

    let mut extra_param = parts.clone();
    extra_param.uri = Uri::from_static("/prod/pets?limit=10&type=dog&admin=true");
    assert_mismatch(verify(&extra_param, &body));

    let mut header = parts.clone();
    header
        .headers
        .insert("accept", HeaderValue::from_static("text/html"));
    assert_mismatch(verify(&header, &body));

    let mut host = parts.clone();
    host.headers
        .insert(HOST, HeaderValue::from_static("evil.example.com"));
    assert_mismatch(verify(&host, &body));

    let mut method = parts.clone();
    method.method = Method::DELETE;
    assert_mismatch(verify(&method, &body));

    assert_mismatch(verify(&parts, b"a body after all"));

    let mut signature = parts;
    let authorization = signature.headers["authorization"].to_str().unwrap();
    let flipped = format!(
        "{}{}",
        &authorization[..authorization.len() - 1],
        if authorization.ends_with('0') {
            '1'
        } else {
            '0'
        }
    );
    signature
        .headers
        .insert("authorization", HeaderValue::from_str(&flipped).unwrap());
    assert_mismatch(verify(&signature, &body));
}

#[test]
fn the_mismatch_error_carries_the_canonical_request() {
    let (mut parts, body) = get_pets();
    parts.method = Method::DELETE;
    let Err(SigV4Error::SignatureMismatch {
        canonical_request,
        string_to_sign,
    }) = verify(&parts, &body)
    else {
        panic!("expected a mismatch");
    };
    assert_eq!(
        canonical_request,
        "DELETE\n/prod/pets\nlimit=10&type=dog\naccept:application/json\n\
         host:api.example.com\nx-amz-date:20261121T101500Z\n\n\
         accept;host;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(string_to_sign.starts_with(
        "AWS4-HMAC-SHA256\n20261121T101500Z\n20261121/us-east-1/execute-api/aws4_request\n"
    ));
}

#[test]
fn dates_outside_the_window_fail_with_the_expiry_messages() {
    let (parts, body) = get_pets();
    let settings = SigV4Settings::default;
    assert_eq!(
        message(verify_with(
            settings(),
            &parts,
            &body,
            at("20261121T103500Z")
        )),
        "Signature expired: 20261121T101500Z is now earlier than 20261121T102000Z \
         (20261121T103500Z - 15 min.)"
    );
    assert_eq!(
        message(verify_with(
            settings(),
            &parts,
            &body,
            at("20261121T095500Z")
        )),
        "Signature not yet current: 20261121T101500Z is still later than 20261121T101000Z \
         (20261121T095500Z + 15 min.)"
    );
    // The bounds themselves are inside.
    verify_with(settings(), &parts, &body, at("20261121T103000Z")).unwrap();
    verify_with(settings(), &parts, &body, at("20261121T100000Z")).unwrap();
    assert!(verify_with(settings(), &parts, &body, at("20261121T103001Z")).is_err());
    // A narrower window.
    let narrow = SigV4Settings {
        max_skew: Duration::from_secs(90),
        ..settings()
    };
    assert_eq!(
        message(verify_with(narrow, &parts, &body, at("20261121T101700Z"))),
        "Signature expired: 20261121T101500Z is now earlier than 20261121T101530Z \
         (20261121T101700Z - 90 s.)"
    );
}

#[test]
fn a_wrong_secret_fails_with_the_mismatch_message() {
    let signer = Signer {
        secret: "not-the-secret",
        ..Signer::default()
    };
    let (parts, body) = post_pet(&signer);
    assert_mismatch(verify(&parts, &body));
}

#[test]
fn unknown_and_disabled_access_keys_are_invalid_tokens() {
    let signer = Signer {
        access_key: "AKIDUNKNOWN",
        ..Signer::default()
    };
    let (parts, body) = post_pet(&signer);
    let error = verify(&parts, &body).unwrap_err();
    assert!(
        matches!(&error, SigV4Error::UnknownAccessKey { access_key_id } if access_key_id == "AKIDUNKNOWN")
    );
    assert_eq!(
        error.to_string(),
        "The security token included in the request is invalid."
    );
    assert_eq!(error.error_type(), "UnrecognizedClientException");

    let (parts, body) = post_pet(&Signer::default());
    let disabled = keys(&[]);
    let error = SigV4Verifier::new(SigV4Settings::default())
        .verify(&parts, Payload::Buffered(&body), &disabled, at(SIGNED_AT))
        .unwrap_err();
    assert!(matches!(error, SigV4Error::UnknownAccessKey { .. }));
}

#[test]
fn a_rotated_secret_is_not_served_from_the_key_cache() {
    let verifier = SigV4Verifier::new(SigV4Settings::default());
    let (parts, body) = post_pet(&Signer::default());
    let old = secrets();
    let new = keys(&[(ACCESS_KEY, "rotated")]);
    for _ in 0..2 {
        verifier
            .verify(&parts, Payload::Buffered(&body), &old, at(SIGNED_AT))
            .unwrap();
    }
    assert_mismatch(verifier.verify(&parts, Payload::Buffered(&body), &new, at(SIGNED_AT)));
    let signer = Signer {
        secret: "rotated",
        ..Signer::default()
    };
    let (parts, body) = post_pet(&signer);
    verifier
        .verify(&parts, Payload::Buffered(&body), &new, at(SIGNED_AT))
        .unwrap();
}

fn with_authorization(value: &str) -> Parts {
    let (mut parts, _) = get_pets();
    parts
        .headers
        .insert("authorization", HeaderValue::from_str(value).unwrap());
    parts
}

#[test]
fn missing_and_malformed_authorization_parts_are_named() {
    let (mut parts, _) = get_pets();
    parts.headers.remove("authorization");
    assert_eq!(message(verify(&parts, b"")), "Missing Authentication Token");

    assert_eq!(
        message(verify(
            &with_authorization("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00"),
            b""
        )),
        "Authorization header requires 'Credential' parameter."
    );
    assert_eq!(
        message(verify(&with_authorization("AWS4-HMAC-SHA256"), b"")),
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'SignedHeaders' parameter. Authorization header requires 'Signature' parameter."
    );
    let (mut no_date, _) = get_pets();
    no_date.headers.remove("x-amz-date");
    assert_eq!(
        message(verify(&no_date, b"")),
        "Authorization header requires existence of a 'X-Amz-Date' header."
    );
    assert_eq!(
        message(verify(
            &with_authorization("AWS4-HMAC-SHA256 Credential=a, SignedHeaders"),
            b""
        )),
        "'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization \
         header: 'AWS4-HMAC-SHA256 Credential=a, SignedHeaders'."
    );
    assert_eq!(
        message(verify(&with_authorization("Bearer eyJhbGciOi"), b"")),
        "The authorization mechanism you have provided is not supported. Please use \
         AWS4-HMAC-SHA256."
    );
    assert_eq!(
        message(verify(
            &with_authorization("AWS4-HMAC-SHA256 Signature=1, Signature=2"),
            b""
        )),
        "Authorization header has more than one 'Signature' parameter."
    );
    let (mut bad_date, _) = get_pets();
    bad_date.headers.insert(
        "x-amz-date",
        HeaderValue::from_static("2026-11-21T10:15:00Z"),
    );
    assert_eq!(
        message(verify(&bad_date, b"")),
        "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not \
         '2026-11-21T10:15:00Z'."
    );
}

/// The request's `Authorization` header with `from` replaced by `to`.
fn edited_authorization(from: &str, to: &str) -> Parts {
    let (parts, _) = get_pets();
    let authorization = parts.headers["authorization"].to_str().unwrap().to_owned();
    assert!(authorization.contains(from), "{authorization}");
    with_authorization(&authorization.replace(from, to))
}

#[test]
fn credential_scope_checks_are_named() {
    assert_eq!(
        message(verify(
            &edited_authorization("/20261121/", "/20261120/"),
            b""
        )),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20261120' != '20261121', from '20261121T101500Z'."
    );
    let regions = SigV4Settings {
        regions: vec!["eu-west-1".to_owned(), "eu-central-1".to_owned()],
        ..SigV4Settings::default()
    };
    let (parts, body) = get_pets();
    assert_eq!(
        message(verify_with(regions.clone(), &parts, &body, at(SIGNED_AT))),
        "Credential should be scoped to a valid region, not 'us-east-1'."
    );
    let signer = Signer {
        region: "eu-central-1",
        ..Signer::default()
    };
    let (parts, body) = signed(&signer, "GET", "https://api.example.com/", &[], b"");
    assert_eq!(
        verify_with(regions, &parts, &body, at(SIGNED_AT))
            .unwrap()
            .scope
            .region,
        "eu-central-1"
    );
    let signer = Signer {
        service: "s3",
        ..Signer::default()
    };
    let (parts, body) = signed(&signer, "GET", "https://api.example.com/", &[], b"");
    assert_eq!(
        message(verify(&parts, &body)),
        "Credential should be scoped to correct service: 'execute-api'."
    );
    assert_eq!(
        message(verify(
            &edited_authorization("/aws4_request", "/aws5_request"),
            b""
        )),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
    );
    assert_eq!(
        message(verify(&edited_authorization("/us-east-1/", "/"), b"")),
        "Credential must have exactly 5 slash-delimited elements, e.g. \
         keyid/date/region/service/term, got 'AKIDEXAMPLE/20261121/execute-api/aws4_request'"
    );
}

#[test]
fn signed_headers_must_cover_host_and_every_amz_header() {
    assert_eq!(
        message(verify(
            &edited_authorization(
                "SignedHeaders=accept;host;x-amz-date",
                "SignedHeaders=accept;x-amz-date"
            ),
            b""
        )),
        "'Host' must be a 'SignedHeader' in the AWS Authorization."
    );
    assert_eq!(
        message(verify(
            &edited_authorization(
                "SignedHeaders=accept;host;x-amz-date",
                "SignedHeaders=accept;host"
            ),
            b""
        )),
        "There were headers present in the request which were not signed: x-amz-date"
    );
    let (mut parts, body) = get_pets();
    // CloudFront adds x-amz-cf-id in front of the origin; it needs no signature.
    parts
        .headers
        .insert("x-amz-cf-id", HeaderValue::from_static("cf-request-id"));
    verify(&parts, &body).unwrap();
    parts
        .headers
        .insert("x-amz-target", HeaderValue::from_static("Pets.Delete"));
    assert_eq!(
        message(verify(&parts, &body)),
        "There were headers present in the request which were not signed: x-amz-target"
    );
    assert_eq!(
        message(verify(
            &edited_authorization(
                "SignedHeaders=accept;host;x-amz-date",
                "SignedHeaders=host;accept;x-amz-date"
            ),
            b""
        )),
        "SignedHeaders must be header names in lower case, sorted, without repeats and \
         separated by ';', not 'host;accept;x-amz-date'."
    );
    let (mut parts, body) = get_pets();
    parts.headers.remove("accept");
    assert_eq!(
        message(verify(&parts, &body)),
        "The request does not carry the header 'accept' named in SignedHeaders."
    );
}

fn presigner(expires_secs: u64) -> Signer {
    Signer {
        presign: Some(Duration::from_secs(expires_secs)),
        ..Signer::default()
    }
}

#[test]
fn a_presigned_url_verifies_until_it_expires() {
    let (parts, body) = signed(
        &presigner(300),
        "GET",
        "https://api.example.com/prod/reports/q3.pdf?download=true&v=2",
        &[],
        b"",
    );
    assert!(!parts.headers.contains_key("authorization"));
    let query = parts.uri.query().unwrap();
    assert!(query.contains("X-Amz-Expires=300") && query.contains("X-Amz-Signature="));

    let verify_at = |now| verify_with(SigV4Settings::default(), &parts, &body, at(now));
    let signed_by = verify_at("20261121T101500Z").unwrap();
    assert_eq!(signed_by.location, SignatureLocation::Query);
    assert_eq!(signed_by.access_key_id, ACCESS_KEY);
    verify_at("20261121T102000Z").unwrap();
    // Early within the skew is fine; earlier is not yet current.
    verify_at("20261121T100000Z").unwrap();
    assert!(message(verify_at("20261121T095959Z")).starts_with("Signature not yet current: "));
    assert_eq!(
        message(verify_at("20261121T102001Z")),
        "Request has expired: X-Amz-Date 20261121T101500Z + X-Amz-Expires 300 s ended at \
         20261121T102000Z, now is 20261121T102001Z."
    );
}

#[test]
fn a_presigned_url_may_carry_the_headers_aws_sigv4_leaves_unsigned() {
    let agent = [("x-amz-user-agent", "aws-sdk-rust/1.3.9 os/linux")];
    let (parts, body) = signed(
        &presigner(60),
        "GET",
        "https://api.example.com/prod/x",
        &agent,
        b"",
    );
    assert!(!parts.uri.query().unwrap().contains("x-amz-user-agent"));
    assert!(parts.headers.contains_key("x-amz-user-agent"));
    verify(&parts, &body).unwrap();
    // Any other x-amz-* header must be signed, presigned or not.
    let mut target = parts;
    target
        .headers
        .insert("x-amz-target", HeaderValue::from_static("Pets.Delete"));
    assert_eq!(
        message(verify(&target, &body)),
        "There were headers present in the request which were not signed: x-amz-target"
    );
    // With the header form, aws-sigv4 signs x-amz-user-agent, so it is required.
    let (mut parts, body) = get_pets();
    parts.headers.insert(
        "x-amz-user-agent",
        HeaderValue::from_static("added/after-signing"),
    );
    assert_eq!(
        message(verify(&parts, &body)),
        "There were headers present in the request which were not signed: x-amz-user-agent"
    );
}

#[test]
fn presigned_urls_sign_the_body_hash_or_unsigned_payload() {
    // A non-S3 presigner hashes the (empty) body; S3-style presigners use UNSIGNED-PAYLOAD.
    let (parts, body) = signed(
        &presigner(60),
        "GET",
        "https://api.example.com/prod/x",
        &[],
        b"",
    );
    assert!(verify(&parts, &body).unwrap().payload_signed);
    let unsigned = Signer {
        unsigned_payload: true,
        ..presigner(60)
    };
    let (parts, body) = signed(&unsigned, "GET", "https://api.example.com/prod/x", &[], b"");
    assert!(!verify(&parts, &body).unwrap().payload_signed);
    let strict = SigV4Settings {
        allow_unsigned_payload: false,
        ..SigV4Settings::default()
    };
    assert_mismatch(verify_with(strict, &parts, &body, at(SIGNED_AT)));
}

#[test]
fn presigned_tampering_fails() {
    let (parts, body) = signed(
        &Signer {
            session_token: Some("SESSIONTOKEN"),
            ..presigner(300)
        },
        "GET",
        "https://api.example.com/prod/reports/q3.pdf?download=true",
        &[],
        b"",
    );
    verify(&parts, &body).unwrap();
    let query = parts.uri.query().unwrap().to_owned();
    assert!(query.contains("X-Amz-Security-Token=SESSIONTOKEN"));
    for (from, to) in [
        ("X-Amz-Expires=300", "X-Amz-Expires=604800"),
        ("download=true", "download=false"),
        (
            "X-Amz-Security-Token=SESSIONTOKEN",
            "X-Amz-Security-Token=OTHER",
        ),
    ] {
        let mut tampered = parts.clone();
        tampered.uri =
            Uri::try_from(format!("/prod/reports/q3.pdf?{}", query.replace(from, to))).unwrap();
        assert_mismatch(verify(&tampered, &body));
    }
    let mut path = parts;
    path.uri = Uri::try_from(format!("/prod/reports/q4.pdf?{query}")).unwrap();
    assert_mismatch(verify(&path, &body));
}

fn with_query(query: &str) -> Parts {
    let (mut parts, _) = get_pets();
    parts.headers.remove("authorization");
    parts.headers.remove("x-amz-date");
    parts.uri = Uri::try_from(format!("/prod/pets?{query}")).unwrap();
    parts
}

#[test]
fn presigned_parameters_are_checked() {
    assert_eq!(
        message(verify(
            &with_query("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261121T101500Z"),
            b""
        )),
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
         X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters. \
         Missing: X-Amz-Credential, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature."
    );
    let full = |algorithm: &str, expires: &str| {
        format!(
            "X-Amz-Algorithm={algorithm}&X-Amz-Credential=AKIDEXAMPLE%2F20261121%2Fus-east-1%2F\
             execute-api%2Faws4_request&X-Amz-Date=20261121T101500Z&X-Amz-Expires={expires}\
             &X-Amz-SignedHeaders=host&X-Amz-Signature=00"
        )
    };
    assert_eq!(
        message(verify(
            &with_query(&full("AWS4-ECDSA-P256-SHA256", "60")),
            b""
        )),
        "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""
    );
    assert_eq!(
        message(verify(
            &with_query(&full("AWS4-HMAC-SHA256", "604801")),
            b""
        )),
        "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires \
         must be less than 604800 seconds"
    );
    assert_eq!(
        message(verify(&with_query(&full("AWS4-HMAC-SHA256", "-1")), b"")),
        "X-Amz-Expires must be non-negative"
    );
    assert_eq!(
        message(verify(&with_query(&full("AWS4-HMAC-SHA256", "soon")), b"")),
        "X-Amz-Expires should be a number"
    );
    assert_mismatch(verify(&with_query(&full("AWS4-HMAC-SHA256", "60")), b""));
    assert_eq!(
        message(verify(
            &with_query(&format!(
                "{}&X-Amz-Date=20261121T101500Z",
                full("AWS4-HMAC-SHA256", "60")
            )),
            b""
        )),
        "Query-string authentication parameter 'X-Amz-Date' appears more than once."
    );
}

#[test]
fn both_forms_at_once_are_refused() {
    let (mut parts, body) = signed(
        &presigner(60),
        "GET",
        "https://api.example.com/prod/x",
        &[],
        b"",
    );
    parts.headers.insert(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
    );
    assert_eq!(
        message(verify(&parts, &body)),
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
         Authorization header should be specified"
    );
    let (mut parts, body) = get_pets();
    let first = parts.headers["authorization"].clone();
    parts.headers.append("authorization", first);
    assert!(matches!(
        verify(&parts, &body),
        Err(SigV4Error::AmbiguousAuthentication)
    ));
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let secret = Secret::new(SECRET);
    assert_eq!(format!("{secret:?}"), "Secret(..)");
    let verifier = SigV4Verifier::new(SigV4Settings::default());
    assert!(!format!("{verifier:?}").contains(SECRET));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A piece of a path segment as a client may send it: unreserved and sub-delimiter
    /// characters, `:`/`@`, a percent-encoded byte, or a dot segment.
    fn path_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9._~-]{1,4}",
            "[!$&'()*+,;=:@]",
            any::<u8>().prop_map(|b| format!("%{b:02X}")),
            Just(".".to_owned()),
            Just("..".to_owned()),
        ]
    }

    /// A piece of a query name or value: as above, plus `+` and `/`, `?` as sent unencoded.
    fn query_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9._~-]{1,4}",
            "[!$'()*+,;:@/?]",
            any::<u8>().prop_map(|b| format!("%{b:02X}")),
        ]
    }

    fn joined(pieces: Vec<String>) -> String {
        pieces.concat()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever `aws-sigv4` signs verifies, and the same request with another method
        /// does not.
        #[test]
        fn requests_signed_by_aws_sigv4_verify(
            segments in prop::collection::vec(
                prop::collection::vec(path_piece(), 0..4).prop_map(joined), 0..5),
            trailing_slash in any::<bool>(),
            query in prop::collection::vec(
                (prop::collection::vec(query_piece(), 1..3).prop_map(joined),
                 prop::option::of(prop::collection::vec(query_piece(), 0..3).prop_map(joined))),
                0..5),
            header in "[ ]{0,2}[A-Za-z0-9]{1,3}([ ]{1,3}[A-Za-z0-9!-~]{1,3}){0,3}[ ]{0,2}",
            body in prop::collection::vec(any::<u8>(), 0..64),
            presign in any::<bool>(),
        ) {
            let mut uri = format!("https://api.example.com/{}", segments.join("/"));
            if trailing_slash {
                uri.push('/');
            }
            if !query.is_empty() {
                uri.push('?');
                let pairs: Vec<String> = query
                    .iter()
                    .map(|(name, value)| match value {
                        Some(value) => format!("{name}={value}"),
                        None => name.clone(),
                    })
                    .collect();
                uri.push_str(&pairs.join("&"));
            }
            let signer = Signer {
                presign: presign.then(|| Duration::from_secs(60)),
                ..Signer::default()
            };
            let (parts, body) = signed(&signer, "PUT", &uri, &[("x-custom", header.as_str())], &body);
            prop_assert!(verify(&parts, &body).is_ok(), "{uri}: {:?}", verify(&parts, &body));
            let mut other = parts.clone();
            other.method = Method::PATCH;
            prop_assert!(
                matches!(verify(&other, &body), Err(SigV4Error::SignatureMismatch { .. })),
                "{uri}"
            );
        }

        /// Made-up signatures are refused, never a panic.
        #[test]
        fn garbage_is_refused(
            authorization in "(AWS4-HMAC-SHA256 )?[ -~]{0,80}",
            query in "[A-Za-z0-9=&%+-]{0,80}",
            date in prop::option::of("[0-9TZ]{14,18}"),
        ) {
            let mut builder = http::Request::builder()
                .uri(format!("/x?{query}"))
                .header("host", "api.example.com")
                .header("authorization", authorization.as_str());
            if let Some(date) = &date {
                builder = builder.header("x-amz-date", date.as_str());
            }
            let (parts, ()) = builder.body(()).unwrap().into_parts();
            prop_assert!(verify(&parts, b"").is_err());
            let (mut presigned, ()) = http::Request::builder()
                .uri(format!("/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&{query}"))
                .body(())
                .unwrap()
                .into_parts();
            presigned.headers.insert(HOST, HeaderValue::from_static("api.example.com"));
            prop_assert!(verify(&presigned, b"").is_err());
        }
    }
}
