//! Authorizers' settings, as config builds them.

use std::str::FromStr;
use std::time::Duration;

/// Default for an authorizer's `result_ttl_s`: 300 s, as API Gateway.
pub const DEFAULT_AUTHORIZER_TTL: Duration = Duration::from_secs(300);

/// Default for an authorizer's `principal_header`.
pub const DEFAULT_PRINCIPAL_HEADER: &str = "x-edgeway-principal";

/// An authorizer of an API: what decides, what identifies a caller, and what reaches the origin.
#[derive(Debug, Clone)]
pub struct Authorizer {
    pub name: String,
    /// A plugin, a JWT issuer or SigV4 signatures.
    pub kind: AuthorizerKind,
    /// Read before the plugin is called; a missing one is 401 without a call. A `jwt`
    /// authorizer reads its token from the one source (default `header.authorization`);
    /// `sigv4` has none.
    pub identity_source: Vec<IdentitySource>,
    /// How long a plugin's decision is cached per identity; zero disables the cache.
    pub result_ttl: Duration,
    /// Carries the principal id to the origin (a token's `sub`, an access key id).
    pub principal_header: http::HeaderName,
    /// Context key (a plugin's context, a token's claim for `jwt`'s `claims_headers`) →
    /// header that carries its value to the origin.
    pub context_headers: Vec<(String, http::HeaderName)>,
}

/// What an authorizer checks.
#[derive(Debug, Clone)]
pub enum AuthorizerKind {
    /// A plugin with role `authorizer`, by name.
    Plugin { plugin: String },
    /// A Lambda authorizer: a plugin with role `lambda` given API Gateway's TOKEN or REQUEST
    /// input, returning an IAM policy (`lambda`).
    Lambda(LambdaAuthorizerSettings),
    /// A bearer JWT, checked against the issuer's JWKS (`jwt`).
    Jwt(crate::auth::jwt::JwtSettings),
    /// An AWS Signature Version 4 made with an access key of the state store (`sigv4`).
    SigV4(crate::auth::sigv4::SigV4Settings),
}

/// A `lambda` authorizer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaAuthorizerSettings {
    pub plugin: String,
    pub input: crate::lambda::AuthorizerInput,
    /// What the method ARNs its policies are checked against are made of.
    pub arn: crate::lambda::ArnScope,
}

/// The region of method ARNs when a `lambda` authorizer names none.
pub const DEFAULT_ARN_REGION: &str = "us-east-1";
/// The account of method ARNs when a `lambda` authorizer names none.
pub const DEFAULT_ARN_ACCOUNT: &str = "000000000000";

/// Where an identity value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    Header(http::HeaderName),
    Query(String),
    Path(String),
    StageVariable(String),
    /// A field of the client's certificate (mutual TLS): `context.identity.clientCert.NAME`.
    ClientCert(crate::client_cert::Field),
}

/// An `identity_source` entry that names no source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid identity source \"{text}\"; expected header.NAME, query.NAME, path.NAME, stage.NAME or context.identity.clientCert.FIELD"
)]
pub struct IdentitySourceError {
    pub text: String,
}

impl FromStr for IdentitySource {
    type Err = IdentitySourceError;

    /// `header.X`, `query.X`, `path.X`, `stage.X`, and the forms API Gateway users bring:
    /// `method.request.header.X`, `method.request.querystring.X`, `$request.header.X`,
    /// `$request.querystring.X`, `stageVariables.X`.
    fn from_str(text: &str) -> Result<Self, IdentitySourceError> {
        let trimmed = text.trim();
        let rest = trimmed
            .strip_prefix("method.request.")
            .or_else(|| trimmed.strip_prefix("$request."))
            .unwrap_or(trimmed);
        let invalid = || IdentitySourceError { text: text.into() };
        if let Some(field) = trimmed
            .strip_prefix('$')
            .unwrap_or(trimmed)
            .strip_prefix("context.identity.clientCert.")
        {
            return crate::client_cert::Field::parse(field)
                .map(Self::ClientCert)
                .ok_or_else(invalid);
        }
        let (kind, name) = rest.split_once('.').ok_or_else(invalid)?;
        if name.is_empty() {
            return Err(invalid());
        }
        match kind {
            "header" => http::HeaderName::from_bytes(name.as_bytes())
                .map(Self::Header)
                .map_err(|_| invalid()),
            "query" | "querystring" => Ok(Self::Query(name.to_owned())),
            "path" => Ok(Self::Path(name.to_owned())),
            "stage" | "stageVariables" => Ok(Self::StageVariable(name.to_owned())),
            _ => Err(invalid()),
        }
    }
}

impl IdentitySource {
    /// The source's value in a request: `params` are its path parameters (name, value).
    pub fn read<'a>(
        &self,
        parts: &'a http::request::Parts,
        params: &[(&'a str, &'a str)],
        stage_variables: &'a [(String, String)],
    ) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match self {
            Self::Header(name) => parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed),
            Self::Query(name) => {
                crate::encoding::query_param(parts.uri.query()?, name).map(Cow::Owned)
            }
            Self::Path(name) => params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Cow::Borrowed(*v)),
            Self::StageVariable(name) => stage_variables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Cow::Borrowed(v.as_str())),
            Self::ClientCert(field) => parts
                .extensions
                .get::<std::sync::Arc<crate::client_cert::ClientCert>>()
                .map(|c| Cow::Borrowed(c.get(*field))),
        }
    }

    /// The source as plugins see it: `header.authorization`, `query.token`, ...
    pub fn label(&self) -> String {
        match self {
            Self::Header(name) => format!("header.{name}"),
            Self::Query(name) => format!("query.{name}"),
            Self::Path(name) => format!("path.{name}"),
            Self::StageVariable(name) => format!("stage.{name}"),
            Self::ClientCert(field) => format!("context.identity.clientCert.{}", field.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IdentitySource;
    use crate::client_cert::{ClientCert, Field};

    #[test]
    fn client_certificate_fields_are_identity_sources() {
        for (text, field) in [
            ("context.identity.clientCert.subjectDN", Field::SubjectDn),
            ("$context.identity.clientCert.serialNumber", Field::Serial),
            (
                "context.identity.clientCert.validity.notAfter",
                Field::NotAfter,
            ),
        ] {
            let source: IdentitySource = text.parse().unwrap();
            assert_eq!(source, IdentitySource::ClientCert(field));
            assert_eq!(source.label(), text.trim_start_matches('$'));
        }
        assert!(
            "context.identity.clientCert.nope"
                .parse::<IdentitySource>()
                .is_err()
        );

        let source: IdentitySource = "context.identity.clientCert.subjectDN".parse().unwrap();
        let (mut parts, ()) = http::Request::new(()).into_parts();
        assert_eq!(
            source.read(&parts, &[], &[]),
            None,
            "no certificate, no identity"
        );
        parts.extensions.insert(std::sync::Arc::new(ClientCert {
            pem: String::new(),
            subject_dn: "CN=alice".into(),
            issuer_dn: String::new(),
            serial: String::new(),
            not_before: String::new(),
            not_after: String::new(),
        }));
        assert_eq!(source.read(&parts, &[], &[]).as_deref(), Some("CN=alice"));
    }
}
