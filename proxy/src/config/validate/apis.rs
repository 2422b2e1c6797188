//! `apis`: names, stages, routes and their integrations. Integration URIs are compiled here,
//! once per stage, so a route that cannot be served in some stage is a config error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use serde_saphyr::Spanned;

use super::Errors;
use super::access::{validate_cors, validate_policy};
use super::caching::{validate_route_cache, validate_stage_cache};
use super::models::{Models, validate_models, validate_validation};
use crate::config::model::*;
use crate::config::raw::*;
use crate::gateway_responses::GatewayResponses;
use crate::router::parse_route_key;
use crate::upstream::{SubstituteError, UriTemplate, substitute};

/// Stage names become the first path segment.
fn valid_stage_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn validate_apis(
    errors: &mut Errors,
    raw: &[RawApi],
    origin: Option<&str>,
    plugins: &PluginsConfig,
    base_dir: &std::path::Path,
) -> Vec<Api> {
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
                    cache: s.cache.as_ref().and_then(|c| {
                        validate_stage_cache(errors, &format!("{path}.stages.{stage}.cache"), c)
                    }),
                    policy: s.policy.as_ref().and_then(|p| {
                        validate_policy(errors, &format!("{path}.stages.{stage}.policy"), p)
                    }),
                    throttle: s.throttle.as_ref().and_then(|t| {
                        super::plans::throttle(
                            errors,
                            &format!("{path}.stages.{stage}.throttle"),
                            t,
                        )
                    }),
                    docs: s.docs.as_ref().and_then(|d| {
                        docs_path(errors, &format!("{path}.stages.{stage}.docs.path"), d)
                    }),
                    source: StageSource::Config,
                    detailed_metrics: s.detailed_metrics,
                    access_log: s.access_log.as_ref().and_then(|a| {
                        super::logging::access_log(
                            errors,
                            &format!("{path}.stages.{stage}.access_log"),
                            a,
                            base_dir,
                        )
                    }),
                    execution: super::logging::execution(
                        errors,
                        &format!("{path}.stages.{stage}"),
                        s,
                    ),
                    tracing: s.tracing.as_ref().and_then(|t| {
                        super::logging::stage_tracing(
                            errors,
                            &format!("{path}.stages.{stage}.tracing"),
                            t,
                        )
                    }),
                }
            })
            .collect();

        let websocket = super::websocket::settings(errors, &path, raw_api);
        let authorizers =
            super::auth::validate_authorizers(errors, &path, &raw_api.authorizers, plugins);
        let mut route_keys: HashMap<String, String> = HashMap::new();
        let models = validate_models(errors, &path, &raw_api.models, base_dir);
        let mut routes = Vec::new();
        for (r, raw_route) in raw_api.routes.iter().enumerate() {
            let path = format!("{path}.routes[{r}]");
            let context = RouteContext {
                authorizers: &raw_api.authorizers,
                plugins,
                stages: &stages,
                // As written: a stage cache with a bad setting is still a cache, so a route's
                // `cache` is not also reported as having none.
                has_stage_cache: raw_api.stages.values().any(|s| s.cache.is_some()),
                origin,
                models: &models,
                base_dir,
                // As written: routes of an API with a bad `websocket` are still route keys.
                websocket: super::websocket::is_websocket(raw_api),
            };
            if let Some(route) = validate_route(errors, &path, raw_route, &context) {
                if route.websocket.is_some() {
                    if let Some(first) = route_keys.insert(route.key.clone(), path.clone()) {
                        errors.add(
                            format!("{path}.route"),
                            Some(&raw_route.route),
                            format!(
                                "duplicate route key \"{}\": {first} already has it",
                                route.key
                            ),
                        );
                    }
                    // Only `$connect` is routed by path; messages are routed by their key.
                    if route.method != crate::router::RouteMethod::Get {
                        routes.push(route);
                        continue;
                    }
                }
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
        let api_key_source = match raw_api
            .api_key_source
            .as_ref()
            .map(|s| (s, s.value.trim().to_ascii_lowercase()))
        {
            None => ApiKeySource::Header,
            Some((_, v)) if v == "header" => ApiKeySource::Header,
            Some((_, v)) if v == "authorizer" => ApiKeySource::Authorizer,
            Some((at, v)) => {
                errors.add(
                    format!("{path}.api_key_source"),
                    Some(at),
                    format!("unknown API key source \"{v}\"; expected header or authorizer"),
                );
                ApiKeySource::Header
            }
        };
        apis.push(Api {
            name: name.to_owned(),
            api_key_source,
            models: models
                .into_iter()
                .filter_map(|(name, schema)| Some((name, schema?)))
                .collect(),
            stages,
            authorizers,
            cors: raw_api
                .cors
                .as_ref()
                .and_then(|c| validate_cors(errors, &format!("{path}.cors"), c, &routes)),
            policy: raw_api
                .policy
                .as_ref()
                .and_then(|p| validate_policy(errors, &format!("{path}.policy"), p)),
            gateway_responses: Arc::new(validate_gateway_responses(
                errors,
                &format!("{path}.gateway_responses"),
                &raw_api.gateway_responses,
            )),
            routes: if websocket.is_some() {
                let added = super::websocket::added_routes(errors, &path, raw_api, &routes);
                // Messages count against the plan of the key the connection opened with.
                let key_required = routes
                    .iter()
                    .any(|r| r.key == crate::websocket::CONNECT && r.api_key_required);
                for route in routes.iter_mut().filter(|r| r.websocket.is_some()) {
                    route.api_key_required |= key_required;
                }
                routes.into_iter().chain(added).collect()
            } else {
                routes
            },
            websocket,
        });
    }
    apis
}

/// `gateway_responses`: known response types, statuses, header names and templates whose
/// variables exist.
fn validate_gateway_responses(
    errors: &mut Errors,
    path: &str,
    raw: &std::collections::BTreeMap<String, Spanned<RawGatewayResponse>>,
) -> GatewayResponses {
    use crate::gateway_responses::{GatewayResponse, ResponseType, Template};
    let mut overrides = HashMap::new();
    for (name, entry) in raw {
        let path = format!("{path}.{name}");
        let Some(response_type) = ResponseType::from_name(name) else {
            let names = ResponseType::ALL.map(ResponseType::name);
            let hint = crate::config::did_you_mean(name, names.iter().copied())
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            errors.add(
                &path,
                Some(entry),
                format!(
                    "unknown gateway response type `{name}`; {hint}(valid types: {})",
                    names.join(", ")
                ),
            );
            continue;
        };
        let raw = &entry.value;
        let status = raw.status.as_ref().and_then(|s| {
            let status = http::StatusCode::from_u16(s.value)
                .ok()
                .filter(|c| (100..=599).contains(&c.as_u16()));
            if status.is_none() {
                errors.add(
                    format!("{path}.status"),
                    Some(s),
                    format!("{} is not an HTTP status (100 to 599)", s.value),
                );
            }
            status
        });
        let template = |errors: &mut Errors, at: &str, text: &Spanned<String>| {
            Template::parse(&text.value)
                .map_err(|e| errors.add(at, Some(text), e.to_string()))
                .ok()
        };
        let mut headers = Vec::new();
        for (header, value) in &raw.headers {
            let at = format!("{path}.headers.{header}");
            let parsed = template(errors, &at, value);
            match http::HeaderName::from_bytes(header.as_bytes()) {
                Ok(name) => headers.extend(parsed.map(|t| (name, t))),
                Err(_) => errors.add(
                    &at,
                    Some(value),
                    format!("`{header}` is not a valid header name"),
                ),
            }
        }
        let body = raw
            .body
            .as_ref()
            .and_then(|b| template(errors, &format!("{path}.body"), b));
        overrides.insert(
            response_type,
            GatewayResponse {
                status,
                headers,
                body,
            },
        );
    }
    GatewayResponses::new(overrides)
}

/// What a route is checked against: its API's stages, authorizers and models, and the node's
/// plugins.
struct RouteContext<'a> {
    authorizers: &'a std::collections::BTreeMap<String, Spanned<RawAuthorizer>>,
    plugins: &'a PluginsConfig,
    stages: &'a [Stage],
    has_stage_cache: bool,
    origin: Option<&'a str>,
    models: &'a Models,
    base_dir: &'a std::path::Path,
    /// The route belongs to a WebSocket API: `route` is a route key.
    websocket: bool,
}

impl RouteContext<'_> {
    /// Checks that `name` is a configured plugin of `role`.
    fn check<T>(
        &self,
        errors: &mut Errors,
        path: &str,
        at: &Spanned<T>,
        name: &str,
        role: PluginRole,
    ) -> bool {
        check_plugin(errors, path, at, name, role, self.plugins)
    }
}

pub(super) fn check_plugin<T>(
    errors: &mut Errors,
    path: &str,
    at: &Spanned<T>,
    name: &str,
    role: PluginRole,
    plugins: &PluginsConfig,
) -> bool {
    match plugins.load.iter().find(|p| p.name == name) {
        Some(p) if p.role == role => true,
        Some(p) => {
            let integration = path.ends_with(".function");
            let hint = match (p.role, role) {
                _ if !integration => "",
                (PluginRole::Lambda, PluginRole::Handler) => {
                    "; a lambda plugin is given API Gateway's proxy event: write `function: { plugin, payload: aws-proxy-1.0 }` (or aws-proxy-2.0)"
                }
                (PluginRole::Handler, PluginRole::Lambda) => {
                    "; a handler is given Edgeway's request record: drop `payload` or write `payload: edgeway`"
                }
                _ => "",
            };
            errors.add(
                path,
                Some(at),
                format!("plugin \"{name}\" is a {}, not a {role}{hint}", p.role),
            );
            false
        }
        None => {
            let hint =
                crate::config::did_you_mean(name, plugins.load.iter().map(|p| p.name.as_str()))
                    .map(|d| format!("; did you mean \"{d}\"?"))
                    .unwrap_or_default();
            errors.add(
                path,
                Some(at),
                format!("no plugin named \"{name}\" in plugins.load{hint}"),
            );
            false
        }
    }
}

fn validate_route(
    errors: &mut Errors,
    path: &str,
    raw: &RawRoute,
    uses: &RouteContext<'_>,
) -> Option<Route> {
    let (stages, origin) = (uses.stages, uses.origin);
    let (method, pattern, key, websocket) = if uses.websocket {
        let (method, pattern, key) = super::websocket::route_key(errors, path, raw)?;
        let response = super::websocket::route_checks(errors, path, raw, &key)?;
        (method, pattern, key, Some(response))
    } else {
        super::websocket::refuse_response_on_http(errors, path, raw);
        let (method, pattern) = match parse_route_key(&raw.route.value) {
            Ok(parsed) => parsed,
            Err(e) => {
                errors.add(format!("{path}.route"), Some(&raw.route), e.to_string());
                return None;
            }
        };
        let key = format!(
            "{method} {}",
            raw.route
                .value
                .trim()
                .split_once(' ')
                .map_or("", |(_, p)| p.trim())
        );
        (method, pattern, key, None)
    };
    let timeout = timeout_ms(errors, path, raw.timeout_ms.as_ref());
    let raw_integration = &raw.integration.value;
    let ipath = format!("{path}.integration");
    let chosen = [
        raw_integration.http_proxy.is_some(),
        raw_integration.http.is_some(),
        raw_integration.mock.is_some(),
        raw_integration.function.is_some(),
        raw_integration.aws.is_some(),
    ]
    .iter()
    .filter(|&&set| set)
    .count();
    if chosen > 1 {
        errors.add(
            &ipath,
            Some(&raw.integration),
            "has more than one of `http_proxy`, `http`, `aws`, `mock` and `function`; a route has one integration",
        );
        return None;
    }
    let mut timeout = timeout;
    let integration = if let Some(function) = &raw_integration.function {
        // The plugin is checked, and reported, with the route's other plugin references below.
        let plugin = function.value.plugin.trim().to_owned();
        let payload = function.value.payload.as_deref().map(str::trim);
        match (
            payload,
            payload.and_then(crate::lambda::ProxyFormat::from_payload),
        ) {
            (None | Some("edgeway"), _) => Integration::Function { plugin },
            (_, Some(format)) => Integration::Lambda { plugin, format },
            (Some(other), None) => {
                errors.add(
                    format!("{ipath}.function.payload"),
                    Some(function),
                    format!(
                        "unknown payload \"{other}\"; expected aws-proxy-1.0, aws-proxy-2.0 or edgeway"
                    ),
                );
                return None;
            }
        }
    } else if let Some(target) = &raw_integration.http_proxy {
        let params: Vec<&str> = pattern.param_names().collect();
        let per_stage = compile_per_stage(&target.value, &params, stages, origin)
            .map_err(|e| errors.add(format!("{ipath}.http_proxy"), Some(target), e.to_string()))
            .ok()?;
        Integration::HttpProxy { per_stage }
    } else if let Some(http) = &raw_integration.http {
        let hpath = format!("{ipath}.http");
        let parts = super::mapping::validate_http(errors, &hpath, http.value.mapping_fields())?;
        // `{name}` in the URI: a mapped `integration.request.path.name`, else the route's
        // parameter of that name.
        let mut names: Vec<String> = pattern.param_names().map(str::to_owned).collect();
        for name in parts.mapped_path_names {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let params: Vec<&str> = names.iter().map(String::as_str).collect();
        let per_stage = compile_per_stage(&http.value.uri.value, &params, stages, origin)
            .map_err(|e| errors.add(format!("{hpath}.uri"), Some(&http.value.uri), e.to_string()))
            .ok()?;
        timeout = timeout.or(timeout_ms(errors, &hpath, http.value.timeout_ms.as_ref()));
        Integration::Http(crate::mapping::HttpIntegration {
            method: parts.method,
            per_stage,
            path_names: names,
            mapping: Arc::new(parts.mapping),
        })
    } else if let Some(aws) = &raw_integration.aws {
        let params: Vec<&str> = pattern.param_names().collect();
        let (aws, own_timeout) =
            super::aws::validate_aws(errors, &format!("{ipath}.aws"), aws, &params, stages)?;
        timeout = timeout.or(own_timeout);
        Integration::Aws(aws)
    } else if let Some(mock) = &raw_integration.mock {
        let mpath = format!("{ipath}.mock");
        match super::mapping::validate_mapped_mock(errors, &mpath, &raw.integration, mock)? {
            Some(mapping) => Integration::MappedMock(crate::mapping::MockMapping { mapping }),
            None => Integration::Mock(validate_mock(errors, &mpath, &raw.integration, mock)?),
        }
    } else {
        errors.add(
            &ipath,
            Some(&raw.integration),
            "is empty; give it `http_proxy: URL`, `http: {uri, ...}`, `aws: {service, action, ...}`, `function: PLUGIN` or `mock: {status, headers, body}`",
        );
        return None;
    };
    let mut plugins_ok = true;
    let function_plugin = match &integration {
        Integration::Function { plugin } => Some((plugin, PluginRole::Handler)),
        Integration::Lambda { plugin, .. } => Some((plugin, PluginRole::Lambda)),
        _ => None,
    };
    if let (Some((plugin, role)), Some(at)) = (function_plugin, raw_integration.function.as_ref()) {
        plugins_ok &= uses.check(errors, &format!("{ipath}.function"), at, plugin, role);
    }
    let auth = raw.auth.as_ref().and_then(|a| {
        let name = a.value.trim();
        match uses.authorizers.get(name) {
            Some(_) => Some(name.to_owned()),
            None => {
                let hint =
                    crate::config::did_you_mean(name, uses.authorizers.keys().map(String::as_str))
                        .map(|d| format!("; did you mean \"{d}\"?"))
                        .unwrap_or_default();
                errors.add(
                    format!("{path}.auth"),
                    Some(a),
                    format!("no authorizer named \"{name}\" in this api's `authorizers`{hint}"),
                );
                plugins_ok = false;
                None
            }
        }
    });
    let scopes = super::auth::validate_scopes(errors, path, raw, uses.authorizers);
    let isolation = match raw.isolation.as_ref().map(|i| (i, i.value.trim())) {
        None | Some((_, "shared")) => Isolation::Reuse,
        Some((_, "per-request")) => Isolation::PerRequest,
        Some((at, other)) => {
            errors.add(
                format!("{path}.isolation"),
                Some(at),
                format!("unknown isolation \"{other}\"; expected shared or per-request"),
            );
            plugins_ok = false;
            Isolation::Reuse
        }
    };
    let mut transforms = |key: &str, list: &[Spanned<String>]| -> Vec<String> {
        let mut names = Vec::new();
        for (i, t) in list.iter().enumerate() {
            let name = t.value.trim();
            if uses.check(
                errors,
                &format!("{path}.{key}[{i}]"),
                t,
                name,
                PluginRole::Transformer,
            ) {
                names.push(name.to_owned());
            } else {
                plugins_ok = false;
            }
        }
        names
    };
    let request_transforms = transforms("request_transforms", &raw.request_transforms);
    let response_transforms = transforms("response_transforms", &raw.response_transforms);
    let param_names: Vec<&str> = pattern.param_names().collect();
    let cache = match &raw.cache {
        None => Some(RouteCacheSettings::default()),
        Some(c) => validate_route_cache(
            errors,
            &format!("{path}.cache"),
            c,
            &param_names,
            uses.has_stage_cache,
        ),
    };
    let validation = match &raw.validation {
        None => Some(None),
        Some(v) => validate_validation(
            errors,
            &format!("{path}.validation"),
            v,
            uses.models,
            &param_names,
            uses.base_dir,
        )
        .map(Some),
    };
    let throttle = match &raw.throttle {
        None => Some(None),
        Some(t) => super::plans::throttle(errors, &format!("{path}.throttle"), t).map(Some),
    };
    let (true, Some(cache), Some(validation), Some(throttle)) =
        (plugins_ok, cache, validation, throttle)
    else {
        return None;
    };
    Some(Route {
        method,
        key,
        pattern,
        integration,
        timeout,
        auth,
        scopes,
        isolation,
        request_transforms,
        response_transforms,
        cache,
        validation,
        api_key_required: raw.api_key_required,
        throttle,
        websocket,
    })
}

/// A `timeout_ms` (a route's or an integration's): more than 0.
pub(super) fn timeout_ms(
    errors: &mut Errors,
    path: &str,
    raw: Option<&Spanned<u64>>,
) -> Option<Duration> {
    let t = raw?;
    if t.value == 0 {
        errors.add(
            format!("{path}.timeout_ms"),
            Some(t),
            "must be greater than 0",
        );
        return None;
    }
    Some(Duration::from_millis(t.value))
}

/// Why an `http_proxy` URI does not compile for the API's stages.
#[derive(Debug, thiserror::Error)]
pub(super) enum PerStageUriError {
    #[error(transparent)]
    Template(#[from] crate::upstream::UriTemplateError),
    #[error("{0}")]
    Substitute(String),
    /// Named once, with every stage that lacks it.
    #[error(
        "stage variable \"{name}\" is not defined in stage{} {}{}",
        if lacking.len() > 1 { "s" } else { "" },
        lacking.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", "),
        did_you_mean.as_ref().map(|d| format!("; did you mean \"{d}\"?")).unwrap_or_default()
    )]
    UndefinedVariable {
        name: String,
        lacking: Vec<String>,
        did_you_mean: Option<String>,
    },
}

/// Compiles an `http_proxy` URI for every stage of the API; an undefined stage variable is
/// reported once, naming every stage that lacks it.
pub(super) fn compile_per_stage(
    template: &str,
    params: &[&str],
    stages: &[Stage],
    origin: Option<&str>,
) -> Result<Vec<UriTemplate>, PerStageUriError> {
    let mut per_stage = Vec::with_capacity(stages.len());
    let mut missing: Option<(String, Vec<&str>)> = None;
    for stage in stages {
        match substitute(template, origin, &stage.variables) {
            Ok(text) => {
                per_stage.push(UriTemplate::compile(&text, params)?);
            }
            Err(SubstituteError::MissingVariable(name)) => {
                missing
                    .get_or_insert_with(|| (name, Vec::new()))
                    .1
                    .push(&stage.name);
            }
            Err(SubstituteError::Invalid(e)) => return Err(PerStageUriError::Substitute(e)),
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
    Err(PerStageUriError::UndefinedVariable {
        did_you_mean: crate::config::did_you_mean(&name, defined.iter().copied())
            .map(str::to_owned),
        name,
        lacking: lacking.into_iter().map(str::to_owned).collect(),
    })
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
    if raw.echo && !raw.body.is_empty() {
        errors.add(
            format!("{path}.echo"),
            Some(at),
            "`echo` answers with the request's body; remove `body`",
        );
        ok = false;
    }
    ok.then(|| Mock {
        status,
        headers,
        body: Bytes::from(raw.body.clone()),
        echo: raw.echo,
    })
}

/// A stage's docs path: below the stage, fixed (no parameters), not the stage itself.
fn docs_path(errors: &mut Errors, path: &str, raw: &Spanned<RawDocs>) -> Option<String> {
    let Some(given) = &raw.value.path else {
        return Some("/docs".to_owned());
    };
    let text = given.value.trim().trim_end_matches('/');
    if !text.starts_with('/') || text.contains(['{', '}', '?', '#', ' ']) {
        errors.add(
            path,
            Some(given),
            format!(
                "\"{}\" is not a docs path: a fixed path below the stage, such as /docs",
                given.value
            ),
        );
        return None;
    }
    Some(text.to_owned())
}
