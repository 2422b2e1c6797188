//! `apis`: names, stages, routes and their integrations. Integration URIs are compiled here,
//! once per stage, so a route that cannot be served in some stage is a config error.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_saphyr::Spanned;

use super::Errors;
use crate::config::model::*;
use crate::config::raw::*;
use crate::router::parse_route_key;
use crate::upstream::{SubstituteError, UriTemplate, substitute};

/// Stage names become the first path segment.
fn valid_stage_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn validate_apis(errors: &mut Errors, raw: &[RawApi], origin: Option<&str>) -> Vec<Api> {
    let mut apis = Vec::new();
    let mut api_names: HashMap<&str, usize> = HashMap::new();
    // (stage, method, shape) → the route that claimed it, across all APIs.
    let mut claimed: HashMap<(String, String, String), (String, usize)> = HashMap::new();
    for (a, raw_api) in raw.iter().enumerate() {
        let path = format!("apis[{a}]");
        let name = raw_api.name.value.trim();
        if name.is_empty() {
            errors.add(
                format!("{path}.name"),
                Some(&raw_api.name),
                "must not be empty",
            );
        } else if let Some(first) = api_names.insert(name, a) {
            errors.add(
                format!("{path}.name"),
                Some(&raw_api.name),
                format!("api \"{name}\" is already defined at apis[{first}]"),
            );
        }
        if raw_api.stages.is_empty() {
            errors.add(
                format!("{path}.stages"),
                Some(&raw_api.name),
                "an api needs at least one stage, e.g. `stages: { prod: {} }`",
            );
        }
        let stages: Vec<Stage> = raw_api
            .stages
            .iter()
            .map(|(stage, s)| {
                if !valid_stage_name(stage) {
                    errors.add(
                        format!("{path}.stages.{stage}"),
                        Some(&raw_api.name),
                        format!("stage name \"{stage}\" must use only letters, digits, '_' and '-' (it is the first path segment)"),
                    );
                }
                Stage {
                    name: stage.clone(),
                    variables: s.variables.clone(),
                }
            })
            .collect();

        let mut routes = Vec::new();
        for (r, raw_route) in raw_api.routes.iter().enumerate() {
            let path = format!("{path}.routes[{r}]");
            if let Some(route) = validate_route(errors, &path, raw_route, &stages, origin) {
                for stage in &stages {
                    let key = (
                        stage.name.clone(),
                        route.method.to_string(),
                        route.pattern.shape(),
                    );
                    if let Some((first, first_api)) = claimed.insert(key, (path.clone(), a)) {
                        let message = if first_api == a {
                            format!(
                                "duplicate route \"{}\": {first} already has this method and path",
                                route.key
                            )
                        } else {
                            format!(
                                "route \"{}\" clashes with {first}: both APIs serve this method and path in stage \"{}\"",
                                route.key, stage.name
                            )
                        };
                        errors.add(format!("{path}.route"), Some(&raw_route.route), message);
                        break;
                    }
                }
                routes.push(route);
            }
        }
        apis.push(Api {
            name: name.to_owned(),
            stages,
            routes,
        });
    }
    apis
}

fn validate_route(
    errors: &mut Errors,
    path: &str,
    raw: &RawRoute,
    stages: &[Stage],
    origin: Option<&str>,
) -> Option<Route> {
    let (method, pattern) = match parse_route_key(&raw.route.value) {
        Ok(parsed) => parsed,
        Err(e) => {
            errors.add(format!("{path}.route"), Some(&raw.route), e);
            return None;
        }
    };
    let timeout = raw.timeout_ms.as_ref().and_then(|t| {
        if t.value == 0 {
            errors.add(
                format!("{path}.timeout_ms"),
                Some(t),
                "must be greater than 0",
            );
            None
        } else {
            Some(Duration::from_millis(t.value))
        }
    });
    let raw_integration = &raw.integration.value;
    let ipath = format!("{path}.integration");
    let integration = match (&raw_integration.http_proxy, &raw_integration.mock) {
        (Some(target), None) => {
            let per_stage = compile_per_stage(&target.value, &pattern, stages, origin)
                .map_err(|e| errors.add(format!("{ipath}.http_proxy"), Some(target), e))
                .ok()?;
            Integration::HttpProxy { per_stage }
        }
        (None, Some(mock)) => Integration::Mock(validate_mock(
            errors,
            &format!("{ipath}.mock"),
            &raw.integration,
            mock,
        )?),
        (Some(_), Some(_)) => {
            errors.add(
                &ipath,
                Some(&raw.integration),
                "has both `http_proxy` and `mock`; a route has one integration",
            );
            return None;
        }
        (None, None) => {
            errors.add(
                &ipath,
                Some(&raw.integration),
                "is empty; give it `http_proxy: URL` or `mock: {status, headers, body}`",
            );
            return None;
        }
    };
    Some(Route {
        method,
        key: format!(
            "{method} {}",
            raw.route
                .value
                .trim()
                .split_once(' ')
                .map_or("", |(_, p)| p.trim())
        ),
        pattern,
        integration,
        timeout,
    })
}

/// Compiles an `http_proxy` URI for every stage of the API; an undefined stage variable is
/// reported once, naming every stage that lacks it.
fn compile_per_stage(
    template: &str,
    pattern: &crate::router::RoutePattern,
    stages: &[Stage],
    origin: Option<&str>,
) -> Result<Vec<UriTemplate>, String> {
    let params: Vec<&str> = pattern.param_names().collect();
    let mut per_stage = Vec::with_capacity(stages.len());
    let mut missing: Option<(String, Vec<&str>)> = None;
    for stage in stages {
        match substitute(template, origin, &stage.variables) {
            Ok(text) => per_stage.push(UriTemplate::compile(&text, &params)?),
            Err(SubstituteError::MissingVariable(name)) => {
                missing
                    .get_or_insert_with(|| (name, Vec::new()))
                    .1
                    .push(&stage.name);
            }
            Err(SubstituteError::Invalid(e)) => return Err(e),
        }
    }
    let Some((name, lacking)) = missing else {
        return Ok(per_stage);
    };
    let defined: Vec<&str> = {
        let mut all: Vec<&str> = stages
            .iter()
            .flat_map(|s| s.variables.keys().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let hint = crate::config::did_you_mean(&name, defined.iter().copied())
        .map(|d| format!("; did you mean \"{d}\"?"))
        .unwrap_or_default();
    let stages_text: Vec<String> = lacking.iter().map(|s| format!("\"{s}\"")).collect();
    Err(format!(
        "stage variable \"{name}\" is not defined in stage{} {}{hint}",
        if lacking.len() > 1 { "s" } else { "" },
        stages_text.join(", ")
    ))
}

fn validate_mock(
    errors: &mut Errors,
    path: &str,
    at: &Spanned<RawIntegration>,
    raw: &RawMock,
) -> Option<Mock> {
    let status = match &raw.status {
        None => StatusCode::OK,
        Some(s) => match StatusCode::from_u16(s.value) {
            Ok(status) if (200..=599).contains(&s.value) => status,
            _ => {
                errors.add(
                    format!("{path}.status"),
                    Some(s),
                    format!("status {} is not between 200 and 599", s.value),
                );
                return None;
            }
        },
    };
    let mut headers = HeaderMap::new();
    let mut ok = true;
    for (name, value) in &raw.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => {
                errors.add(
                    format!("{path}.headers.{name}"),
                    Some(at),
                    format!("invalid header \"{name}: {value}\""),
                );
                ok = false;
            }
        }
    }
    ok.then(|| Mock {
        status,
        headers,
        body: Bytes::from(raw.body.clone()),
    })
}
