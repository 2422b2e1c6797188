//! Who may call an API: an API's `cors`, an API's or stage's `policy` (source-IP allow and
//! deny lists), and the node's `trusted_proxies`.

use std::sync::Arc;

use http::{HeaderName, Method};
use serde_saphyr::Spanned;

use super::Errors;
use crate::auth::ip_policy::{IpPolicy, NetList, TrustedProxies, parse_net};
use crate::config::model::*;
use crate::config::raw::*;
use crate::cors::{Allowed, CorsPolicy, CorsSettings, MAX_CORS_MAX_AGE_S, OriginPattern};
use crate::router::RouteMethod;

fn nets(errors: &mut Errors, path: &str, raw: &[Spanned<String>]) -> Option<NetList> {
    let mut ok = true;
    let mut list = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        match parse_net(&entry.value) {
            Ok(net) if list.contains(&net) => {}
            Ok(net) => list.push(net),
            Err(e) => {
                errors.add(format!("{path}[{i}]"), Some(entry), e.to_string());
                ok = false;
            }
        }
    }
    ok.then(|| NetList::new(list))
}

/// `trusted_proxies`: the proxies whose `X-Forwarded-For` names the client.
pub(super) fn validate_trusted_proxies(
    errors: &mut Errors,
    raw: &[Spanned<String>],
) -> TrustedProxies {
    TrustedProxies(nets(errors, "trusted_proxies", raw).unwrap_or_default())
}

/// An API's or a stage's `policy`. An empty one is kept: on a stage it replaces the API's.
pub(super) fn validate_policy(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawPolicy>,
) -> Option<Arc<IpPolicy>> {
    let allow = nets(errors, &format!("{path}.allow"), &raw.value.allow);
    let deny = nets(errors, &format!("{path}.deny"), &raw.value.deny);
    Some(Arc::new(IpPolicy {
        allow: allow?,
        deny: deny?,
    }))
}

/// An API's `cors`. Without `allow_methods`, the methods of the API's routes are allowed (all
/// of them when a route is `ANY`).
pub(super) fn validate_cors(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawCors>,
    routes: &[Route],
) -> Option<Arc<CorsPolicy>> {
    let c = &raw.value;
    let mut ok = true;
    let credentials = c.allow_credentials;

    if c.allow_origins.is_empty() {
        errors.add(
            format!("{path}.allow_origins"),
            Some(raw),
            "list the origins that may call the api, e.g. [\"https://app.example.com\"], or [\"*\"]",
        );
        ok = false;
    }
    let mut allow_origins = Vec::new();
    for (i, o) in c.allow_origins.iter().enumerate() {
        match crate::cors::parse_origin(&o.value) {
            Ok(OriginPattern::Any) if credentials => {
                errors.add(
                    format!("{path}.allow_origins[{i}]"),
                    Some(o),
                    "\"*\" cannot be used with allow_credentials: true (browsers refuse it); list the origins",
                );
                ok = false;
            }
            Ok(pattern) if allow_origins.contains(&pattern) => {}
            Ok(pattern) => allow_origins.push(pattern),
            Err(e) => {
                errors.add(format!("{path}.allow_origins[{i}]"), Some(o), e.to_string());
                ok = false;
            }
        }
    }

    let allow_methods = match &c.allow_methods {
        None => route_methods(routes),
        Some(list) if list.value.is_empty() => {
            errors.add(
                format!("{path}.allow_methods"),
                Some(list),
                "list at least one method, or [\"*\"]; leave it out to allow the api's route methods",
            );
            ok = false;
            Allowed::Any
        }
        Some(list) => {
            let mut names: Vec<Box<str>> = Vec::new();
            let mut any = false;
            for (i, m) in list.value.iter().enumerate() {
                let text = m.trim();
                if text == "*" {
                    any = true;
                    continue;
                }
                let upper = text.to_ascii_uppercase();
                if text.is_empty() || Method::from_bytes(upper.as_bytes()).is_err() {
                    errors.add(
                        format!("{path}.allow_methods[{i}]"),
                        Some(list),
                        format!("\"{m}\" is not an HTTP method; expected e.g. GET, POST, PUT, PATCH, DELETE or *"),
                    );
                    ok = false;
                } else if !names.iter().any(|n| **n == *upper) {
                    names.push(upper.into());
                }
            }
            if any {
                Allowed::Any
            } else {
                Allowed::List(names.into())
            }
        }
    };

    let mut header_names = |key: &str, list: &[Spanned<String>]| -> (bool, Vec<String>) {
        let mut any = false;
        let mut names: Vec<String> = Vec::new();
        for (i, h) in list.iter().enumerate() {
            let text = h.value.trim();
            if text == "*" {
                any = true;
                continue;
            }
            match HeaderName::from_bytes(text.as_bytes()) {
                Ok(name) if names.iter().any(|n| n == name.as_str()) => {}
                Ok(name) => names.push(name.as_str().to_owned()),
                Err(_) => {
                    errors.add(
                        format!("{path}.{key}[{i}]"),
                        Some(h),
                        format!("\"{text}\" is not a valid header name"),
                    );
                    ok = false;
                }
            }
        }
        (any, names)
    };
    let (any_header, headers) = header_names("allow_headers", &c.allow_headers);
    let allow_headers = if any_header {
        Allowed::Any
    } else {
        Allowed::List(headers.into_iter().map(Into::into).collect())
    };
    let (any_exposed, mut expose_headers) = header_names("expose_headers", &c.expose_headers);
    if any_exposed {
        if credentials {
            errors.add(
                format!("{path}.expose_headers"),
                c.expose_headers.iter().find(|h| h.value.trim() == "*"),
                "\"*\" cannot be used with allow_credentials: true (browsers read it as a header named `*`); list the headers",
            );
            ok = false;
        }
        expose_headers = vec!["*".to_owned()];
    }

    let max_age_s = match &c.max_age_s {
        Some(m) if m.value > MAX_CORS_MAX_AGE_S => {
            errors.add(
                format!("{path}.max_age_s"),
                Some(m),
                format!("must be between 0 and {MAX_CORS_MAX_AGE_S} seconds"),
            );
            ok = false;
            None
        }
        other => other.as_ref().map(|m| m.value),
    };

    ok.then(|| {
        Arc::new(CorsPolicy::new(CorsSettings {
            allow_origins,
            allow_methods,
            allow_headers,
            expose_headers,
            allow_credentials: credentials,
            max_age_s,
        }))
    })
}

/// The methods an API's routes take (HEAD with GET); any method if a route is `ANY`.
fn route_methods(routes: &[Route]) -> Allowed {
    if routes.iter().any(|r| r.method == RouteMethod::Any) {
        return Allowed::Any;
    }
    let mut names: Vec<Box<str>> = Vec::new();
    let mut add = |name: String| {
        if !names.iter().any(|n| **n == *name) {
            names.push(name.into());
        }
    };
    for route in routes {
        add(route.method.to_string());
        if route.method == RouteMethod::Get {
            add("HEAD".to_owned());
        }
    }
    Allowed::List(names.into())
}
