//! An API's `authorizers` and a route's `scopes`: each authorizer is exactly one of `plugin`
//! (a WASM authorizer), `jwt` (tokens checked against an issuer's JWKS, the stand-in for
//! Cognito user pools and OIDC) or `sigv4` (AWS Signature Version 4 with access keys from the
//! state store, the stand-in for IAM auth), with the settings that kind takes.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, Uri};
use serde_saphyr::Spanned;

use super::Errors;
use super::apis::check_plugin;
use crate::auth::jwt::{JwtAlgorithm, JwtSettings};
use crate::auth::sigv4::SigV4Settings;
use crate::auth::{DEFAULT_ARN_ACCOUNT, DEFAULT_ARN_REGION, LambdaAuthorizerSettings};
use crate::config::model::*;
use crate::config::raw::*;
use crate::lambda::{ArnScope, AuthorizerInput};

/// The longest `leeway_s` a JWT authorizer may allow.
const MAX_LEEWAY_S: u64 = 600;
/// Scopes a route may require at most, as API Gateway.
const MAX_ROUTE_SCOPES: usize = 10;

/// Headers that requests need, so an authorizer may not carry its principal or claims in them.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "transfer-encoding",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "x-api-key",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-request-id",
];

pub(super) fn validate_authorizers(
    errors: &mut Errors,
    api_path: &str,
    raw: &BTreeMap<String, Spanned<RawAuthorizer>>,
    plugins: &PluginsConfig,
) -> BTreeMap<String, Authorizer> {
    let mut authorizers = BTreeMap::new();
    for (name, spanned) in raw {
        let path = format!("{api_path}.authorizers.{name}");
        if let Some(authorizer) = validate_authorizer(errors, &path, name, spanned, plugins) {
            authorizers.insert(name.clone(), authorizer);
        }
    }
    authorizers
}

fn validate_authorizer(
    errors: &mut Errors,
    path: &str,
    name: &str,
    spanned: &Spanned<RawAuthorizer>,
    plugins: &PluginsConfig,
) -> Option<Authorizer> {
    let a = &spanned.value;
    let kinds = [
        a.plugin.is_some(),
        a.lambda.is_some(),
        a.jwt.is_some(),
        a.sigv4.is_some(),
    ];
    if kinds.iter().filter(|set| **set).count() != 1 {
        let (what, last) = if kinds.contains(&true) {
            ("has more than one of", "and")
        } else {
            ("needs one of", "or")
        };
        errors.add(
            path,
            Some(spanned),
            format!(
                "{what} `plugin: NAME`, `lambda: {{plugin, type}}`, `jwt: {{issuer, audiences, \
                 jwks_url}}` {last} `sigv4: {{regions}}`; an authorizer is exactly one kind"
            ),
        );
        return None;
    }
    let kind = if a.plugin.is_some() {
        "plugin"
    } else if a.lambda.is_some() {
        "lambda"
    } else if a.jwt.is_some() {
        "jwt"
    } else {
        "sigv4"
    };
    // Settings that only some kinds take.
    let mut ok = true;
    let mut refuse = |key: &str, line: Option<u64>, hint: &str| {
        errors.0.push(crate::config::ConfigError {
            path: format!("{path}.{key}"),
            line: line.or(Some(spanned.referenced.line())),
            message: format!("a {kind} authorizer does not take `{key}`{hint}"),
        });
        ok = false;
    };
    let first_line =
        |map: &BTreeMap<String, Spanned<String>>| map.values().next().map(|v| v.referenced.line());
    let calls_a_plugin = kind == "plugin" || kind == "lambda";
    if !calls_a_plugin {
        if let Some(ttl) = &a.result_ttl_s {
            refuse(
                "result_ttl_s",
                Some(ttl.referenced.line()),
                " (its checks are local and need no result cache)",
            );
        }
        if !a.context_headers.is_empty() {
            let hint = if kind == "jwt" {
                "; use `claims_headers: { CLAIM: HEADER }`"
            } else {
                ""
            };
            refuse("context_headers", first_line(&a.context_headers), hint);
        }
    }
    if kind != "jwt" && !a.claims_headers.is_empty() {
        let hint = if calls_a_plugin {
            "; use `context_headers: { KEY: HEADER }`"
        } else {
            ""
        };
        refuse("claims_headers", first_line(&a.claims_headers), hint);
    }
    if kind == "sigv4" && !a.identity_source.is_empty() {
        refuse(
            "identity_source",
            a.identity_source.first().map(|s| s.referenced.line()),
            " (the signature is read from the Authorization header or the query)",
        );
    }

    if let Some(plugin) = &a.plugin {
        ok &= check_plugin(
            errors,
            &format!("{path}.plugin"),
            plugin,
            plugin.value.trim(),
            PluginRole::Authorizer,
            plugins,
        );
    }
    let mut identity_source = Vec::new();
    for (i, source) in a.identity_source.iter().enumerate() {
        match source.value.parse::<IdentitySource>() {
            Ok(parsed) => identity_source.push(parsed),
            Err(e) => {
                errors.add(
                    format!("{path}.identity_source[{i}]"),
                    Some(source),
                    e.to_string(),
                );
                ok = false;
            }
        }
    }
    let result_ttl = match &a.result_ttl_s {
        None => DEFAULT_AUTHORIZER_TTL,
        Some(t) if t.value > 3600 => {
            errors.add(
                format!("{path}.result_ttl_s"),
                Some(t),
                "must be between 0 and 3600 (0 disables the cache)",
            );
            ok = false;
            DEFAULT_AUTHORIZER_TTL
        }
        Some(t) => Duration::from_secs(t.value),
    };
    // The headers an authorizer sets are removed from every request to the API first (so a
    // client cannot claim an identity): one the request itself needs would be lost.
    let mut header = |key: String, at: &Spanned<String>| -> Option<HeaderName> {
        match HeaderName::from_bytes(at.value.trim().as_bytes()) {
            Ok(h)
                if RESERVED_HEADERS.contains(&h.as_str())
                    || identity_source
                        .iter()
                        .any(|s| matches!(s, IdentitySource::Header(n) if *n == h)) =>
            {
                errors.add(
                    key,
                    Some(at),
                    format!(
                        "\"{h}\" cannot be set by an authorizer: the gateway removes it from every \
                         request to the API, and requests need it; pick a header of your own, \
                         e.g. x-edgeway-principal"
                    ),
                );
                None
            }
            Ok(h) => Some(h),
            Err(_) => {
                errors.add(
                    key,
                    Some(at),
                    format!("\"{}\" is not a valid header name", at.value),
                );
                None
            }
        }
    };
    let principal_header = match &a.principal_header {
        Some(h) => header(format!("{path}.principal_header"), h),
        None => Some(HeaderName::from_static(DEFAULT_PRINCIPAL_HEADER)),
    };
    let mut context_headers = Vec::new();
    let (field, map) = if kind == "jwt" {
        ("claims_headers", &a.claims_headers)
    } else {
        ("context_headers", &a.context_headers)
    };
    for (key, h) in map {
        if let Some(name) = header(format!("{path}.{field}.{key}"), h) {
            context_headers.push((key.clone(), name));
        } else {
            ok = false;
        }
    }

    let kind = if let Some(plugin) = &a.plugin {
        AuthorizerKind::Plugin {
            plugin: plugin.value.trim().to_owned(),
        }
    } else if let Some(lambda) = &a.lambda {
        let lpath = format!("{path}.lambda");
        ok &= check_plugin(
            errors,
            &format!("{lpath}.plugin"),
            &lambda.value.plugin,
            lambda.value.plugin.value.trim(),
            PluginRole::Lambda,
            plugins,
        );
        let input = match lambda.value.input.value.trim() {
            "token" | "TOKEN" => AuthorizerInput::Token,
            "request" | "REQUEST" => AuthorizerInput::Request,
            other => {
                errors.add(
                    format!("{lpath}.type"),
                    Some(&lambda.value.input),
                    format!("unknown type \"{other}\"; expected token or request"),
                );
                return None;
            }
        };
        if input == AuthorizerInput::Token {
            match identity_source.as_slice() {
                [] => identity_source.push(IdentitySource::Header(http::header::AUTHORIZATION)),
                [IdentitySource::Header(_)] => {}
                _ => {
                    errors.add(
                        format!("{path}.identity_source"),
                        a.identity_source.first(),
                        "a token authorizer reads its token from one header, e.g. \
                         [header.authorization] (the default); use type: request for others",
                    );
                    ok = false;
                }
            }
        }
        let text = |field: &Option<Spanned<String>>, default: &str| {
            field
                .as_ref()
                .map_or_else(|| default.to_owned(), |f| f.value.trim().to_owned())
        };
        AuthorizerKind::Lambda(LambdaAuthorizerSettings {
            plugin: lambda.value.plugin.value.trim().to_owned(),
            input,
            arn: ArnScope {
                region: text(&lambda.value.region, DEFAULT_ARN_REGION),
                account_id: text(&lambda.value.account_id, DEFAULT_ARN_ACCOUNT),
                api_id: lambda
                    .value
                    .api_id
                    .as_ref()
                    .map(|f| f.value.trim().to_owned()),
            },
        })
    } else if let Some(jwt) = &a.jwt {
        if identity_source.is_empty() {
            identity_source.push(IdentitySource::Header(http::header::AUTHORIZATION));
        } else if identity_source.len() > 1 {
            errors.add(
                format!("{path}.identity_source"),
                a.identity_source.get(1),
                "a jwt authorizer reads its token from one identity source, e.g. \
                 [header.authorization] (the default)",
            );
            ok = false;
        }
        match validate_jwt(errors, &format!("{path}.jwt"), jwt) {
            Some(settings) => AuthorizerKind::Jwt(settings),
            None => return None,
        }
    } else {
        let sigv4 = a.sigv4.as_ref()?;
        match validate_sigv4(errors, &format!("{path}.sigv4"), sigv4) {
            Some(settings) => AuthorizerKind::SigV4(settings),
            None => return None,
        }
    };
    let principal_header = principal_header?;
    ok.then(|| Authorizer {
        name: name.to_owned(),
        kind,
        identity_source,
        result_ttl,
        principal_header,
        context_headers,
    })
}

fn validate_jwt(
    errors: &mut Errors,
    path: &str,
    spanned: &Spanned<RawJwtAuthorizer>,
) -> Option<JwtSettings> {
    let raw = &spanned.value;
    let mut ok = true;
    let issuer = raw.issuer.value.trim();
    if issuer.is_empty() {
        errors.add(
            format!("{path}.issuer"),
            Some(&raw.issuer),
            "must not be empty; a token's `iss` must equal it, e.g. \
             https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        );
        ok = false;
    }
    let audiences: Vec<String> = raw
        .audiences
        .iter()
        .map(|a| a.value.trim().to_owned())
        .collect();
    if audiences.is_empty() || audiences.iter().any(String::is_empty) {
        errors.add(
            format!("{path}.audiences"),
            raw.audiences
                .iter()
                .find(|a| a.value.trim().is_empty())
                .or(Some(&raw.issuer)),
            "needs at least one non-empty audience: a token's `aud` (or `client_id`) must name \
             one, as API Gateway checks",
        );
        ok = false;
    }
    let jwks_url = raw.jwks_url.value.trim();
    if let Err(why) = check_jwks_url(jwks_url) {
        errors.add(
            format!("{path}.jwks_url"),
            Some(&raw.jwks_url),
            format!("invalid JWKS URL \"{jwks_url}\": {why}"),
        );
        ok = false;
    }
    let mut settings = JwtSettings::new(issuer, jwks_url);
    settings.audiences = audiences;
    if let Some(algorithms) = &raw.algorithms {
        let mut parsed = Vec::new();
        for (i, name) in algorithms.value.iter().enumerate() {
            match name.trim().parse::<JwtAlgorithm>() {
                Ok(alg) => parsed.push(alg),
                Err(e) => {
                    errors.add(
                        format!("{path}.algorithms[{i}]"),
                        Some(algorithms),
                        e.to_string(),
                    );
                    ok = false;
                }
            }
        }
        if algorithms.value.is_empty() {
            errors.add(
                format!("{path}.algorithms"),
                Some(algorithms),
                format!(
                    "must name at least one of {}; leave it out for the default ({})",
                    JwtAlgorithm::ALL.map(JwtAlgorithm::name).join(", "),
                    JwtAlgorithm::DEFAULT.map(JwtAlgorithm::name).join(", ")
                ),
            );
            ok = false;
        }
        settings.algorithms = parsed;
    }
    if let Some(leeway) = &raw.leeway_s {
        if leeway.value > MAX_LEEWAY_S {
            errors.add(
                format!("{path}.leeway_s"),
                Some(leeway),
                format!("must be between 0 and {MAX_LEEWAY_S} seconds"),
            );
            ok = false;
        }
        settings.leeway = Duration::from_secs(leeway.value);
    }
    ok.then_some(settings)
}

/// A JWKS URL is fetched through the upstream client: http or https, a host, no credentials.
fn check_jwks_url(url: &str) -> Result<(), &'static str> {
    let uri: Uri = url.parse().map_err(|_| "not a URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must start with https:// (or http:// for a local issuer)");
    }
    match uri.authority() {
        Some(authority) if authority.as_str().contains('@') => {
            Err("must not carry credentials (user:password@)")
        }
        Some(_) if uri.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err("has no host"),
    }
}

fn validate_sigv4(
    errors: &mut Errors,
    path: &str,
    spanned: &Spanned<RawSigV4Authorizer>,
) -> Option<SigV4Settings> {
    let raw = &spanned.value;
    let mut ok = true;
    let mut settings = SigV4Settings::default();
    if raw.regions.is_empty() {
        errors.add(
            format!("{path}.regions"),
            Some(spanned),
            "needs the regions clients sign for, e.g. `regions: [us-east-1]`",
        );
        ok = false;
    }
    for (i, region) in raw.regions.iter().enumerate() {
        let text = region.value.trim();
        if text.is_empty()
            || !text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            errors.add(
                format!("{path}.regions[{i}]"),
                Some(region),
                format!(
                    "\"{text}\" is not a region name (lower-case letters, digits and '-', e.g. us-east-1)"
                ),
            );
            ok = false;
        }
        settings.regions.push(text.to_owned());
    }
    if let Some(service) = &raw.service {
        let text = service.value.trim();
        if text.is_empty() || text.contains('/') || text.contains(char::is_whitespace) {
            errors.add(
                format!("{path}.service"),
                Some(service),
                format!("\"{text}\" is not a service name (default execute-api)"),
            );
            ok = false;
        }
        settings.service = text.to_owned();
    }
    // Off unless asked for: a signature that leaves the body out lets anyone who sees one
    // signed request replay its head with another body.
    settings.allow_unsigned_payload = raw.allow_unsigned_payload.unwrap_or(false);
    ok.then_some(settings)
}

/// A route's `scopes`: only with a `jwt` authorizer; a token needs one of them.
pub(super) fn validate_scopes(
    errors: &mut Errors,
    path: &str,
    raw: &RawRoute,
    authorizers: &BTreeMap<String, Spanned<RawAuthorizer>>,
) -> Vec<String> {
    let Some(scopes) = &raw.scopes else {
        return Vec::new();
    };
    let authorizer = raw
        .auth
        .as_ref()
        .and_then(|a| authorizers.get(a.value.trim()));
    match authorizer {
        Some(a) if a.value.jwt.is_some() => {}
        Some(_) => {
            errors.add(
                format!("{path}.scopes"),
                Some(scopes),
                "scopes need a jwt authorizer; this route's `auth` is not one",
            );
            return Vec::new();
        }
        // No authorizer: `auth` itself is reported when it names none.
        None if raw.auth.is_some() => return Vec::new(),
        None => {
            errors.add(
                format!("{path}.scopes"),
                Some(scopes),
                "scopes need `auth: NAME` naming a jwt authorizer",
            );
            return Vec::new();
        }
    }
    let list: Vec<String> = scopes.value.iter().map(|s| s.trim().to_owned()).collect();
    if list.is_empty() || list.len() > MAX_ROUTE_SCOPES {
        errors.add(
            format!("{path}.scopes"),
            Some(scopes),
            format!(
                "must list 1 to {MAX_ROUTE_SCOPES} scopes (a token needs one of them); leave it out to require none"
            ),
        );
    }
    for scope in &list {
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e));
        if !valid {
            errors.add(
                format!("{path}.scopes"),
                Some(scopes),
                format!(
                    "\"{scope}\" is not a scope (visible ASCII without spaces, quotes or backslashes)"
                ),
            );
        }
    }
    list
}
