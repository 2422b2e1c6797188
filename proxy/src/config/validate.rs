//! Raw config → validated model. Every problem is collected, not just the first, each with the
//! key path and line it belongs to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use serde_saphyr::Spanned;

use super::ConfigError;
use super::model::*;
use super::raw::*;
use crate::listener::tls::{self, LoadedCert};
use crate::router::parse_route_key;
use crate::upstream::{SubstituteError, UriTemplate, client_tls, substitute};

#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn add<T>(
        &mut self,
        path: impl Into<String>,
        at: Option<&Spanned<T>>,
        message: impl Into<String>,
    ) {
        self.0.push(ConfigError {
            path: path.into(),
            line: at.map(|s| s.referenced.line()),
            message: message.into(),
        });
    }
}

/// Stage names become the first path segment.
fn valid_stage_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn socket_addr(errors: &mut Errors, path: &str, raw: &Spanned<String>) -> Option<SocketAddr> {
    match raw.value.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errors.add(
                path,
                Some(raw),
                format!(
                    "invalid address \"{}\"; expected IP:PORT such as 0.0.0.0:8080 or [::1]:8443",
                    raw.value
                ),
            );
            None
        }
    }
}

fn positive<T: Copy + Into<u64>>(
    errors: &mut Errors,
    path: &str,
    raw: Option<&Spanned<T>>,
    default: u64,
) -> u64 {
    match raw {
        Some(v) if v.value.into() == 0 => {
            errors.add(path, Some(v), "must be greater than 0");
            default
        }
        Some(v) => v.value.into(),
        None => default,
    }
}

fn millis(
    errors: &mut Errors,
    path: &str,
    raw: Option<&Spanned<u64>>,
    default: Duration,
) -> Duration {
    let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(positive(errors, path, raw, default_ms))
}

/// Validates `raw`. Relative file paths are taken from `base_dir` (the config file's folder).
pub(super) fn validate(
    raw: RawConfig,
    base_dir: &Path,
    redacted: serde_json::Value,
) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Errors::default();
    let resolve = |p: &str| -> PathBuf { base_dir.join(p) };

    if raw.listen.value.is_empty() {
        errors.add(
            "listen",
            Some(&raw.listen),
            "at least one listener is required",
        );
    }
    let mut listen = Vec::new();
    for (i, l) in raw.listen.value.iter().enumerate() {
        let path = format!("listen[{i}]");
        let addr = socket_addr(&mut errors, &format!("{path}.addr"), &l.addr);
        let tls = l.tls.as_ref().and_then(|t| {
            let path = format!("{path}.tls.certs");
            if t.certs.value.is_empty() {
                errors.add(
                    &path,
                    Some(&t.certs),
                    "a TLS listener needs at least one certificate",
                );
                return None;
            }
            let mut loaded: Vec<LoadedCert> = Vec::new();
            for (j, c) in t.certs.value.iter().enumerate() {
                match tls::load_cert(&resolve(&c.cert.value), &resolve(&c.key.value)) {
                    Ok(cert) => loaded.push(cert),
                    Err(e) => {
                        let (field, at) = if e.contains("private key") {
                            ("key", &c.key)
                        } else {
                            ("cert", &c.cert)
                        };
                        errors.add(format!("{path}[{j}].{field}"), Some(at), e);
                    }
                }
            }
            if loaded.len() != t.certs.value.len() {
                return None;
            }
            match tls::server_config(&loaded) {
                Ok(config) => Some(config),
                Err(e) => {
                    errors.add(&path, Some(&t.certs), e);
                    None
                }
            }
        });
        if let Some(addr) = addr {
            listen.push(Listener { addr, tls });
        }
    }
    let mut seen_addrs = HashMap::new();
    for (i, l) in listen.iter().enumerate() {
        if l.addr.port() != 0
            && let Some(first) = seen_addrs.insert(l.addr, i)
        {
            errors.add(
                format!("listen[{i}].addr"),
                raw.listen.value.get(i).map(|l| &l.addr),
                format!("{} is already used by listen[{first}]", l.addr),
            );
        }
    }

    let admin = raw.admin.as_ref().and_then(|a| {
        let addr = socket_addr(&mut errors, "admin.addr", &a.addr)?;
        Some(Admin {
            addr,
            token_env: a.token_env.clone(),
        })
    });

    let origin = raw.origin.as_ref().and_then(|o| match o.value.parse::<Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some_and(|h| !h.is_empty())
                && !o.value.contains('@') =>
        {
            Some(o.value.trim_end_matches('/').to_owned())
        }
        _ => {
            errors.add(
                "origin",
                Some(o),
                format!(
                    "invalid origin \"{}\"; expected an http:// or https:// URL such as http://10.0.0.7:9000",
                    o.value
                ),
            );
            None
        }
    });

    let ca_file = raw.upstream.ca_file.as_ref();
    let upstream_tls = match client_tls(ca_file.map(|c| resolve(&c.value)).as_deref()) {
        Ok(tls) => Some(tls),
        Err(e) => {
            errors.add("upstream.ca_file", ca_file, e);
            None
        }
    };
    let connect_timeout = millis(
        &mut errors,
        "upstream.connect_timeout_ms",
        raw.upstream.connect_timeout_ms.as_ref(),
        DEFAULT_CONNECT_TIMEOUT,
    );
    let pool_idle_timeout = Duration::from_secs(positive(
        &mut errors,
        "upstream.pool_idle_timeout_s",
        raw.upstream.pool_idle_timeout_s.as_ref(),
        DEFAULT_POOL_IDLE_TIMEOUT.as_secs(),
    ));

    let max_header_bytes = positive(
        &mut errors,
        "limits.max_header_bytes",
        raw.limits.max_header_bytes.as_ref(),
        DEFAULT_MAX_HEADER_BYTES as u64,
    );
    if max_header_bytes < MIN_MAX_HEADER_BYTES as u64 {
        errors.add(
            "limits.max_header_bytes",
            raw.limits.max_header_bytes.as_ref(),
            format!("must be at least {MIN_MAX_HEADER_BYTES} (the smallest header buffer HTTP/1 parsing works with)"),
        );
    }
    let limits = Limits {
        max_body_bytes: positive(
            &mut errors,
            "limits.max_body_bytes",
            raw.limits.max_body_bytes.as_ref(),
            DEFAULT_MAX_BODY_BYTES,
        ),
        max_header_bytes: usize::try_from(max_header_bytes).unwrap_or(usize::MAX),
        integration_timeout: millis(
            &mut errors,
            "limits.integration_timeout_ms",
            raw.limits.integration_timeout_ms.as_ref(),
            DEFAULT_INTEGRATION_TIMEOUT,
        ),
        header_read_timeout: millis(
            &mut errors,
            "limits.header_read_timeout_ms",
            raw.limits.header_read_timeout_ms.as_ref(),
            DEFAULT_HEADER_READ_TIMEOUT,
        ),
    };
    let drain_timeout = Duration::from_secs(
        raw.drain_timeout_s
            .as_ref()
            .map_or(DEFAULT_DRAIN_TIMEOUT.as_secs(), |d| d.value),
    );
    let workers = raw.workers.as_ref().map_or(0, |w| w.value);
    if let Some(w) = raw.workers.as_ref().filter(|w| w.value > 1024) {
        errors.add(
            "workers",
            Some(w),
            "must be at most 1024 (0 means one per core)",
        );
    }

    let apis = validate_apis(&mut errors, &raw.apis, origin.as_deref());

    if !errors.0.is_empty() {
        return Err(errors.0);
    }
    let Some(tls) = upstream_tls else {
        return Err(errors.0);
    };
    let fingerprint = format!(
        "ca={:?};connect={connect_timeout:?};idle={pool_idle_timeout:?}",
        ca_file.map(|c| &c.value)
    );
    Ok(Config {
        listen,
        admin,
        upstream: Upstream {
            tls,
            connect_timeout,
            pool_idle_timeout,
            fingerprint,
        },
        limits,
        drain_timeout,
        workers,
        apis,
        redacted,
    })
}

fn validate_apis(errors: &mut Errors, raw: &[RawApi], origin: Option<&str>) -> Vec<Api> {
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
    let hint = super::did_you_mean(&name, defined.iter().copied())
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
