//! The outgoing side of AWS service integrations (API Gateway's `AWS` type): the integration
//! URI (`arn:aws:apigateway:{region}:{service}:action/{Action}` or `...:path/{path}`), the
//! protocol each service speaks, and SigV4 signing of the request with the `aws-sigv4` crate.
//!
//! Pure and synchronous; the pipeline phase that renders the request template, signs, sends
//! through the origin pools and maps the answer builds on this.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderValue, Request};

/// An integration URI, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsUri {
    pub region: String,
    /// As written after the region: `sqs`, `states`, `dynamodb`, `kinesis`, or
    /// `{subdomain}.{service}` (`my-bucket.s3`).
    pub service: String,
    pub target: AwsTarget,
}

/// What the URI calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsTarget {
    /// `action/{Action}`, with any `&Name=Value` pairs written after it.
    Action {
        action: String,
        params: Vec<(String, String)>,
    },
    /// `path/{path}`: the request path on the service's endpoint (no leading slash).
    Path(String),
}

/// Why an integration URI is not an AWS service one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsUriError {
    #[error(
        "expected arn:aws:apigateway:REGION:SERVICE:action/ACTION or arn:aws:apigateway:REGION:SERVICE:path/PATH"
    )]
    Shape,
    #[error("the region is empty")]
    Region,
    #[error("the service is empty")]
    Service,
    #[error("the action is empty")]
    Action,
    #[error("Lambda functions are `function` integrations, not `aws` ones")]
    Lambda,
}

impl std::str::FromStr for AwsUri {
    type Err = AwsUriError;

    fn from_str(uri: &str) -> Result<Self, AwsUriError> {
        let rest = uri
            .trim()
            .strip_prefix("arn:aws:apigateway:")
            .ok_or(AwsUriError::Shape)?;
        let mut parts = rest.splitn(3, ':');
        let (Some(region), Some(service), Some(call)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(AwsUriError::Shape);
        };
        if region.is_empty() {
            return Err(AwsUriError::Region);
        }
        if service.is_empty() {
            return Err(AwsUriError::Service);
        }
        if service == "lambda" {
            return Err(AwsUriError::Lambda);
        }
        let target = if let Some(action) = call.strip_prefix("action/") {
            let mut pairs = action.split('&');
            let action = pairs.next().unwrap_or_default();
            if action.is_empty() {
                return Err(AwsUriError::Action);
            }
            let params = pairs
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (name, value) = p.split_once('=').unwrap_or((p, ""));
                    (name.to_owned(), value.to_owned())
                })
                .collect();
            AwsTarget::Action {
                action: action.to_owned(),
                params,
            }
        } else if let Some(path) = call.strip_prefix("path/") {
            AwsTarget::Path(path.to_owned())
        } else {
            return Err(AwsUriError::Shape);
        };
        Ok(Self {
            region: region.to_owned(),
            service: service.to_owned(),
            target,
        })
    }
}

/// How a service takes its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Form-encoded `Action=...` bodies (SQS's classic protocol, SNS).
    Query,
    /// JSON bodies with the action named in `X-Amz-Target: {prefix}.{Action}`.
    Json {
        target_prefix: &'static str,
        content_type: &'static str,
    },
    /// Method, path and body as the integration gives them (S3).
    Rest,
}

impl AwsUri {
    /// The name the request is signed for (the service part without a subdomain; `states`
    /// for Step Functions).
    pub fn signing_name(&self) -> &str {
        self.service
            .rsplit_once('.')
            .map_or(self.service.as_str(), |(_, s)| s)
    }

    /// How the service takes an action.
    pub fn protocol(&self) -> Protocol {
        match self.signing_name() {
            "states" => Protocol::Json {
                target_prefix: "AWSStepFunctions",
                content_type: "application/x-amz-json-1.0",
            },
            "dynamodb" => Protocol::Json {
                target_prefix: "DynamoDB_20120810",
                content_type: "application/x-amz-json-1.0",
            },
            "kinesis" => Protocol::Json {
                target_prefix: "Kinesis_20131202",
                content_type: "application/x-amz-json-1.1",
            },
            "events" => Protocol::Json {
                target_prefix: "AWSEvents",
                content_type: "application/x-amz-json-1.1",
            },
            "sqs" | "sns" => Protocol::Query,
            _ => Protocol::Rest,
        }
    }

    /// `X-Amz-Target` for an action of a JSON service (`DynamoDB_20120810.GetItem`).
    pub fn amz_target(&self) -> Option<String> {
        match (self.protocol(), &self.target) {
            (Protocol::Json { target_prefix, .. }, AwsTarget::Action { action, .. }) => {
                Some(format!("{target_prefix}.{action}"))
            }
            _ => None,
        }
    }

    /// The service's endpoint in its region: `https://{service}.{region}.amazonaws.com`.
    pub fn default_endpoint(&self) -> String {
        format!("https://{}.{}.amazonaws.com", self.service, self.region)
    }
}

/// The keys an integration signs with.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Why an integration's keys could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read the shared credentials file {file}: {why}")]
    File { file: String, why: String },
    #[error("the shared credentials file {file} has no profile [{profile}]")]
    NoProfile { file: String, profile: String },
    #[error("profile [{profile}] in {file} has no {key}")]
    NoKey {
        file: String,
        profile: String,
        key: &'static str,
    },
}

impl AwsCredentials {
    /// The keys held by environment variables: the access key's and the secret's must be
    /// set, the session token's only if named.
    pub fn from_env(
        access_key_env: &str,
        secret_key_env: &str,
        session_token_env: Option<&str>,
    ) -> Result<Self, CredentialsError> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| CredentialsError::MissingEnv(name.to_owned()))
        };
        Ok(Self {
            access_key_id: var(access_key_env)?,
            secret_access_key: var(secret_key_env)?,
            session_token: session_token_env.map(var).transpose()?,
        })
    }

    /// A profile of the shared credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else
    /// `$HOME/.aws/credentials`.
    pub fn from_profile(profile: &str) -> Result<Self, CredentialsError> {
        let file = shared_credentials_file();
        let text = std::fs::read_to_string(&file).map_err(|e| CredentialsError::File {
            file: file.clone(),
            why: e.to_string(),
        })?;
        Self::from_profile_text(&text, profile, &file)
    }

    /// What the SDKs do when nothing is named: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
    /// and `AWS_SESSION_TOKEN` when the first is set, else the profile `AWS_PROFILE` names
    /// (`default` when unset).
    pub fn from_default_chain() -> Result<Self, CredentialsError> {
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            let token = std::env::var_os("AWS_SESSION_TOKEN").map(|_| "AWS_SESSION_TOKEN");
            return Self::from_env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", token);
        }
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
        Self::from_profile(&profile)
    }

    /// Reads the INI format the AWS CLI writes: `[profile]` sections of `key = value` lines,
    /// `#` and `;` comments. Hand-written: the SDK's own reader comes with its whole runtime.
    fn from_profile_text(text: &str, profile: &str, file: &str) -> Result<Self, CredentialsError> {
        let mut section: Option<&str> = None;
        let mut found = false;
        let mut keys: [Option<String>; 3] = [None, None, None];
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = Some(name.trim());
                found |= section == Some(profile);
                continue;
            }
            if section != Some(profile) {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let slot = match key.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => 0,
                "aws_secret_access_key" => 1,
                "aws_session_token" => 2,
                _ => continue,
            };
            keys[slot] = Some(value.trim().to_owned());
        }
        if !found {
            return Err(CredentialsError::NoProfile {
                file: file.to_owned(),
                profile: profile.to_owned(),
            });
        }
        let [access, secret, token] = keys;
        let missing = |key| CredentialsError::NoKey {
            file: file.to_owned(),
            profile: profile.to_owned(),
            key,
        };
        Ok(Self {
            access_key_id: access.ok_or_else(|| missing("aws_access_key_id"))?,
            secret_access_key: secret.ok_or_else(|| missing("aws_secret_access_key"))?,
            session_token: token,
        })
    }
}

fn shared_credentials_file() -> String {
    if let Ok(file) = std::env::var("AWS_SHARED_CREDENTIALS_FILE") {
        return file;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    format!("{home}/.aws/credentials")
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the request URI has no host to sign for")]
    NoHost,
    #[error("header {0} is not text and cannot be signed")]
    Header(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// S3 signs its path as sent (no second encoding, no normalization) and wants the payload's
/// hash in `x-amz-content-sha256`; every other service takes the defaults.
fn signing_settings(service: &str) -> SigningSettings {
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    settings
}

/// Signs `request` (its URI absolute, its headers final) for `service` in `region` at `now`:
/// adds `x-amz-date`, `authorization` and, with a session token, `x-amz-security-token`.
pub fn sign_request(
    request: &mut Request<bytes::Bytes>,
    credentials: &AwsCredentials,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<(), SignError> {
    // The crate panics on a URI without an authority; refuse it here instead.
    if request.uri().authority().is_none() && !request.headers().contains_key(http::header::HOST) {
        return Err(SignError::NoHost);
    }
    let identity = Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "edgeway",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(signing_settings(service))
        .build()
        .map_err(|e| SignError::Sign(e.to_string()))?
        .into();
    let uri = request.uri().to_string();
    let mut headers = Vec::with_capacity(request.headers().len());
    for (name, value) in request.headers() {
        let text = value
            .to_str()
            .map_err(|_| SignError::Header(name.to_string()))?;
        headers.push((name.as_str(), text));
    }
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| SignError::Sign(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SignError::Sign(e.to_string()))?
        .into_parts();
    for (name, value) in instructions.headers() {
        let value = HeaderValue::from_str(value).map_err(|_| SignError::Header(name.to_owned()))?;
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SignError::Header(name.to_owned()))?,
            value,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::auth::sigv4::{Payload, Secret, SigV4Settings, SigV4Verifier};

    #[test]
    fn both_uri_forms_parse() {
        let uri: AwsUri = "arn:aws:apigateway:us-east-1:states:action/StartExecution"
            .parse()
            .unwrap();
        assert_eq!(uri.region, "us-east-1");
        assert_eq!(uri.signing_name(), "states");
        assert_eq!(
            uri.target,
            AwsTarget::Action {
                action: "StartExecution".into(),
                params: vec![]
            }
        );
        assert!(matches!(
            uri.protocol(),
            Protocol::Json {
                target_prefix: "AWSStepFunctions",
                ..
            }
        ));
        let uri: AwsUri = "arn:aws:apigateway:eu-west-1:sqs:path/123456789012/orders"
            .parse()
            .unwrap();
        assert_eq!(uri.target, AwsTarget::Path("123456789012/orders".into()));
        assert_eq!(uri.protocol(), Protocol::Query);
        assert_eq!(
            uri.default_endpoint(),
            "https://sqs.eu-west-1.amazonaws.com"
        );
        let uri: AwsUri =
            "arn:aws:apigateway:us-east-1:my-bucket.s3:action/GetObject&Bucket={bucket}&Key={key}"
                .parse()
                .unwrap();
        assert_eq!(uri.signing_name(), "s3");
        assert_eq!(uri.protocol(), Protocol::Rest);
        assert_eq!(
            uri.target,
            AwsTarget::Action {
                action: "GetObject".into(),
                params: vec![
                    ("Bucket".into(), "{bucket}".into()),
                    ("Key".into(), "{key}".into())
                ]
            }
        );
    }

    #[test]
    fn other_uris_are_refused_with_why() {
        for (uri, why) in [
            (
                "https://sqs.us-east-1.amazonaws.com/1/q",
                AwsUriError::Shape,
            ),
            ("arn:aws:apigateway:us-east-1:sqs", AwsUriError::Shape),
            ("arn:aws:apigateway::sqs:path/1/q", AwsUriError::Region),
            (
                "arn:aws:apigateway:us-east-1::path/1/q",
                AwsUriError::Service,
            ),
            (
                "arn:aws:apigateway:us-east-1:sqs:action/",
                AwsUriError::Action,
            ),
            (
                "arn:aws:apigateway:us-east-1:sqs:queue/q",
                AwsUriError::Shape,
            ),
            (
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/f/invocations",
                AwsUriError::Lambda,
            ),
        ] {
            assert_eq!(uri.parse::<AwsUri>(), Err(why), "{uri}");
        }
    }

    fn signed(secret: &str, token: Option<&str>) -> http::request::Parts {
        let mut request = Request::builder()
            .method("POST")
            .uri("http://127.0.0.1:4566/")
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "DynamoDB_20120810.PutItem")
            .body(bytes::Bytes::from_static(
                br#"{"TableName":"t","Item":{"id":{"S":"1"}}}"#,
            ))
            .unwrap();
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: secret.into(),
            session_token: token.map(str::to_owned),
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_795_256_100);
        sign_request(&mut request, &credentials, "us-east-1", "dynamodb", at).unwrap();
        let (mut parts, _) = request.into_parts();
        // As a server receives it: origin-form URI and a Host header.
        parts
            .headers
            .insert("host", "127.0.0.1:4566".parse().unwrap());
        parts.uri = "/".parse().unwrap();
        parts
    }

    /// Signed here, checked by Edgeway's own verifier (what AWS does on its side): the right
    /// secret passes, a wrong one does not.
    #[test]
    fn a_signed_request_verifies_and_a_wrong_secret_does_not() {
        let verifier = SigV4Verifier::new(SigV4Settings {
            service: "dynamodb".into(),
            ..SigV4Settings::default()
        });
        let secrets = HashMap::from([("AKIDEXAMPLE".to_owned(), Secret::new("right"))]);
        let now = UNIX_EPOCH + Duration::from_secs(1_795_256_101);
        let body = br#"{"TableName":"t","Item":{"id":{"S":"1"}}}"#;
        let good = signed("right", Some("session-token"));
        assert_eq!(good.headers["x-amz-security-token"], "session-token");
        let by = verifier
            .verify(&good, Payload::Buffered(body), &secrets, now)
            .unwrap();
        assert_eq!(by.access_key_id, "AKIDEXAMPLE");
        let bad = signed("wrong", None);
        assert!(
            verifier
                .verify(&bad, Payload::Buffered(body), &secrets, now)
                .is_err()
        );
    }

    #[test]
    fn profiles_are_read_as_the_cli_writes_them() {
        let text = "# keys\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key=s1\n\n[ci]\n; temporary\nAWS_ACCESS_KEY_ID = AKIDCI\naws_secret_access_key = s2\naws_session_token = t2\nregion = us-east-1\n[half]\naws_access_key_id = AKIDHALF\n";
        let read = |profile| AwsCredentials::from_profile_text(text, profile, "creds");
        let default = read("default").unwrap();
        assert_eq!(default.access_key_id, "AKIDDEFAULT");
        assert_eq!(default.secret_access_key, "s1");
        assert_eq!(default.session_token, None);
        let ci = read("ci").unwrap();
        assert_eq!(
            (ci.access_key_id.as_str(), ci.session_token.as_deref()),
            ("AKIDCI", Some("t2"))
        );
        assert_eq!(
            read("half").unwrap_err().to_string(),
            "profile [half] in creds has no aws_secret_access_key"
        );
        assert_eq!(
            read("prod").unwrap_err().to_string(),
            "the shared credentials file creds has no profile [prod]"
        );
    }

    #[test]
    fn a_uri_without_a_host_is_refused_not_signed() {
        let mut request = Request::builder()
            .uri("/relative")
            .body(bytes::Bytes::new())
            .unwrap();
        let credentials = AwsCredentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: None,
        };
        assert!(matches!(
            sign_request(&mut request, &credentials, "r", "s", SystemTime::now()),
            Err(SignError::NoHost)
        ));
    }
}
