//! Raw config → validated model. Every problem is collected, not just the first, each with the
//! key path and line it belongs to. Node settings are checked here, APIs in `apis`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use serde_saphyr::Spanned;

mod access;
mod apis;
mod auth;
mod aws;
mod caching;
mod domains;
mod logging;
mod mapping;
mod models;
mod plans;
mod plugins;
mod websocket;

use super::ConfigError;
use super::model::*;
use super::raw::*;
use crate::listener::tls::{self, CertSlot};
use crate::upstream::client_tls;

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
            // Line 0: a value not read from the file (an imported OpenAPI definition).
            line: at.map(|s| s.referenced.line()).filter(|l| *l > 0),
            message: message.into(),
        });
    }
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

/// A `{ cert, key }` pair's files, loaded; an error names the file at fault (`PATH.cert` or
/// `PATH.key`).
fn load_cert(
    errors: &mut Errors,
    path: &str,
    raw: &RawCert,
    base_dir: &Path,
) -> Option<Arc<CertSlot>> {
    let (cert_path, key_path) = (
        base_dir.join(&raw.cert.value),
        base_dir.join(&raw.key.value),
    );
    match tls::load_cert(&cert_path, &key_path) {
        Ok(cert) => Some(CertSlot::new(cert_path, key_path, cert)),
        Err(e) => {
            let (field, at) = if e.key_at_fault() {
                ("key", &raw.key)
            } else {
                ("cert", &raw.cert)
            };
            errors.add(format!("{path}.{field}"), Some(at), e.to_string());
            None
        }
    }
}

/// HTTP/2 requests in flight per connection (`limits.max_streams_per_connection`) by default.
const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 100;
/// The longest a request body may stall (`limits.body_read_timeout_ms`) by default.
const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/1 header fields per request (`limits.max_headers`) by default, as hyper's.
const DEFAULT_MAX_HEADERS: usize = 100;

/// `listen[].tls.client_auth`: the truststore, loaded, and the header to forward the
/// certificate in.
fn client_auth(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<crate::config::raw::RawClientAuth>,
    base_dir: &Path,
) -> (Option<Arc<tls::Truststore>>, Option<http::HeaderName>) {
    let raw = &raw.value;
    let mode = match raw.mode.as_ref().map(|m| m.value.as_str()) {
        None | Some("require") => Some(tls::ClientAuthMode::Require),
        Some("optional") => Some(tls::ClientAuthMode::Optional),
        Some(other) => {
            errors.add(
                format!("{path}.mode"),
                raw.mode.as_ref(),
                format!("unknown mode {other:?}; expected require or optional"),
            );
            None
        }
    };
    let header = raw.forward_header.as_ref().and_then(|h| {
        match http::HeaderName::from_bytes(h.value.trim().as_bytes()) {
            Ok(name) => Some(name),
            Err(_) => {
                errors.add(
                    format!("{path}.forward_header"),
                    Some(h),
                    format!("{:?} is not a header name", h.value),
                );
                None
            }
        }
    });
    let truststore =
        mode.and_then(
            |mode| match tls::Truststore::load(base_dir.join(&raw.ca.value), mode) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.add(format!("{path}.ca"), Some(&raw.ca), e.to_string());
                    None
                }
            },
        );
    (truststore, header)
}

/// `listen[].http3` and `listen[].quic`: HTTP/3's settings, for a TLS listener that asks.
fn http3(
    errors: &mut Errors,
    path: &str,
    raw: &crate::config::raw::RawListener,
) -> Option<crate::listener::quic::Http3> {
    let on = raw.http3.as_ref().is_some_and(|h| h.value);
    if let Some(quic) = &raw.quic
        && !on
    {
        errors.add(
            format!("{path}.quic"),
            Some(quic),
            "QUIC settings apply only to a listener with `http3: true`",
        );
    }
    if !on {
        return None;
    }
    if raw.tls.is_none() {
        errors.add(
            format!("{path}.http3"),
            raw.http3.as_ref(),
            "HTTP/3 runs over QUIC, which is always encrypted: give this listener `tls`",
        );
        return None;
    }
    let default = crate::listener::quic::Http3::default();
    let Some(quic) = &raw.quic else {
        return Some(default);
    };
    let path = format!("{path}.quic");
    let quic = &quic.value;
    let bounded = |errors: &mut Errors, key: &str, raw: Option<&Spanned<u64>>, default: u32| {
        let value = positive(errors, &format!("{path}.{key}"), raw, default.into());
        u32::try_from(value).unwrap_or_else(|_| {
            errors.add(
                format!("{path}.{key}"),
                raw,
                format!("must be at most {}", u32::MAX),
            );
            default
        })
    };
    let settings = crate::listener::quic::Http3 {
        idle_timeout: millis(
            errors,
            &format!("{path}.idle_timeout_ms"),
            quic.idle_timeout_ms.as_ref(),
            default.idle_timeout,
        ),
        max_concurrent_streams: bounded(
            errors,
            "max_concurrent_streams",
            quic.max_concurrent_streams.as_ref(),
            default.max_concurrent_streams,
        ),
        stream_window: bounded(
            errors,
            "stream_window_bytes",
            quic.stream_window_bytes.as_ref(),
            default.stream_window,
        ),
        connection_window: bounded(
            errors,
            "connection_window_bytes",
            quic.connection_window_bytes.as_ref(),
            default.connection_window,
        ),
    };
    if settings.stream_window > settings.connection_window {
        errors.add(
            format!("{path}.stream_window_bytes"),
            quic.stream_window_bytes.as_ref(),
            format!(
                "a stream's window ({}) cannot be larger than the connection's ({})",
                settings.stream_window, settings.connection_window
            ),
        );
    }
    Some(settings)
}

/// Validates a usage plan created through the admin API against `config`'s APIs, as the same
/// plan under `usage_plans` in the file would be.
pub(super) fn validate_stored_plan(
    raw: &RawUsagePlan,
    config: &Config,
) -> Result<UsagePlan, Vec<ConfigError>> {
    let mut errors = Errors::default();
    let mut plans = plans::validate_plans(&mut errors, std::slice::from_ref(raw), &config.apis);
    match (errors.0.is_empty(), plans.pop()) {
        (true, Some(plan)) => Ok(plan),
        _ => Err(errors.0),
    }
}

/// Validates the API a deployment serves (with the one stage it serves) against `config`'s
/// plugins and origin, as `validate` would in the file.
pub(super) fn validate_deployed(raw: &RawApi, config: &Config) -> Result<Api, Vec<ConfigError>> {
    let mut errors = Errors::default();
    let origin = config.origin.as_deref().map(|o| o.trim_end_matches('/'));
    let mut apis = apis::validate_apis(
        &mut errors,
        std::slice::from_ref(raw),
        origin,
        &config.plugins,
        &config.base_dir,
    );
    if !errors.0.is_empty() {
        return Err(errors.0);
    }
    let uses_templates = apis[0]
        .routes
        .iter()
        .any(|r| r.integration.mapping().is_some_and(|m| m.has_templates()));
    if uses_templates
        && !config
            .plugins
            .load
            .iter()
            .any(|p| p.name == crate::mapping::builtin::NAME)
    {
        return Err(vec![ConfigError {
            path: String::new(),
            line: None,
            message: "it uses mapping templates, which this config does not load: add a route with a template to the config, or redeploy".into(),
        }]);
    }
    Ok(apis.remove(0))
}

/// Validates `raw`. Relative file paths are taken from `base_dir` (the config file's folder).
pub(super) fn validate(
    raw: &RawConfig,
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
            let loaded: Vec<Arc<CertSlot>> = t
                .certs
                .value
                .iter()
                .enumerate()
                .filter_map(|(j, c)| load_cert(&mut errors, &format!("{path}[{j}]"), c, base_dir))
                .collect();
            (loaded.len() == t.certs.value.len()).then_some(loaded)
        });
        let http3 = http3(&mut errors, &path, l);
        let (truststore, client_cert_header) = l
            .tls
            .as_ref()
            .and_then(|t| t.client_auth.as_ref())
            .map(|c| client_auth(&mut errors, &format!("{path}.tls.client_auth"), c, base_dir))
            .unwrap_or_default();
        if let Some(addr) = addr {
            let listener = Listener {
                addr,
                tls: None,
                http3,
                quic: None,
                certs: Vec::new(),
                truststore,
                client_cert_header,
            };
            listen.push((listener, tls, i));
        }
    }
    let mut seen_addrs = HashMap::new();
    for (l, _, i) in &listen {
        let i = *i;
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
            metrics_require_token: a.metrics_require_token,
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
            errors.add("upstream.ca_file", ca_file, e.to_string());
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
    let count = |errors: &mut Errors, key: &str, default: usize| -> usize {
        let raw = match key {
            "max_connections" => raw.limits.max_connections.as_ref(),
            "max_connections_per_ip" => raw.limits.max_connections_per_ip.as_ref(),
            "max_in_flight" => raw.limits.max_in_flight.as_ref(),
            _ => None,
        };
        raw.map_or(default, |v| {
            usize::try_from(v.value).unwrap_or_else(|_| {
                errors.add(format!("limits.{key}"), Some(v), "too large");
                default
            })
        })
    };
    let admission = crate::listener::admission::AdmissionLimits {
        max_connections: count(
            &mut errors,
            "max_connections",
            crate::listener::admission::DEFAULT_MAX_CONNECTIONS,
        ),
        max_connections_per_ip: count(&mut errors, "max_connections_per_ip", 0),
        max_in_flight: count(
            &mut errors,
            "max_in_flight",
            crate::listener::admission::DEFAULT_MAX_IN_FLIGHT,
        ),
        max_memory_bytes: raw
            .limits
            .max_memory_mib
            .as_ref()
            .map_or(0, |m| m.value.saturating_mul(1024 * 1024)),
    };
    let max_streams = positive(
        &mut errors,
        "limits.max_streams_per_connection",
        raw.limits.max_streams_per_connection.as_ref(),
        DEFAULT_MAX_STREAMS_PER_CONNECTION.into(),
    );
    let max_headers = positive(
        &mut errors,
        "limits.max_headers",
        raw.limits.max_headers.as_ref(),
        DEFAULT_MAX_HEADERS as u64,
    );
    let limits = Limits {
        body_read_timeout: millis(
            &mut errors,
            "limits.body_read_timeout_ms",
            raw.limits.body_read_timeout_ms.as_ref(),
            DEFAULT_BODY_READ_TIMEOUT,
        ),
        admission,
        max_streams_per_connection: u32::try_from(max_streams).unwrap_or(u32::MAX),
        max_headers: usize::try_from(max_headers).unwrap_or(usize::MAX),
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
        linger: crate::listener::Linger {
            // 0 is allowed: close at once.
            timeout: raw
                .limits
                .linger_timeout_ms
                .as_ref()
                .map_or(crate::listener::DEFAULT_LINGER_TIMEOUT, |ms| {
                    Duration::from_millis(ms.value)
                }),
            max_bytes: raw
                .limits
                .linger_max_bytes
                .as_ref()
                .map_or(crate::listener::DEFAULT_LINGER_MAX_BYTES, |b| b.value),
        },
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

    let plugins = plugins::validate_plugins(&mut errors, raw.plugins.as_ref(), base_dir);
    let apis = apis::validate_apis(
        &mut errors,
        &raw.apis,
        origin.as_deref(),
        &plugins,
        base_dir,
    );

    let mut plugins = plugins;
    let uses_templates = apis
        .iter()
        .flat_map(|a| &a.routes)
        .any(|r| r.integration.mapping().is_some_and(|m| m.has_templates()));
    if uses_templates {
        plugins::add_builtin_mapper(&mut plugins);
    }

    let (domains, domain_certs) =
        domains::validate_domains(&mut errors, &raw.domains, &apis, base_dir);
    // A TLS listener serves its own certificates, then the domains' (chosen by SNI; its first
    // stays the one for clients that name no host it has).
    let listen: Vec<Listener> = listen
        .into_iter()
        .map(|(mut listener, certs, i)| {
            if let Some(mut certs) = certs {
                certs.extend(domain_certs.iter().cloned());
                listener.certs = certs.clone();
                match tls::server_config(&certs, listener.truststore.clone()) {
                    Ok(config) => {
                        if let Some(settings) = &listener.http3 {
                            match crate::listener::quic::server_config(&config, settings) {
                                Ok(quic) => listener.quic = Some(quic),
                                Err(e) => errors.add(
                                    format!("listen[{i}].http3"),
                                    raw.listen.value.get(i).and_then(|l| l.http3.as_ref()),
                                    format!("cannot serve HTTP/3 with these certificates: {e}"),
                                ),
                            }
                        }
                        listener.tls = Some(config);
                    }
                    Err(e) => {
                        let at = raw.listen.value.get(i).and_then(|l| l.tls.as_ref());
                        errors.add(
                            format!("listen[{i}].tls.certs"),
                            at.map(|t| &t.certs),
                            e.to_string(),
                        );
                    }
                }
            }
            listener
        })
        .collect();

    let state = plans::validate_state(&mut errors, raw.state.as_ref(), base_dir);
    let counters = plans::validate_counters(&mut errors, raw.counters.as_ref());
    let usage_plans = plans::validate_plans(&mut errors, &raw.usage_plans, &apis);
    let trusted_proxies = access::validate_trusted_proxies(&mut errors, &raw.trusted_proxies);
    let throttle = raw
        .throttle
        .as_ref()
        .map_or(Some(DEFAULT_ACCOUNT_THROTTLE), |t| {
            plans::throttle(&mut errors, "throttle", t)
        })
        .unwrap_or(DEFAULT_ACCOUNT_THROTTLE);

    let access_log = raw
        .access_log
        .as_ref()
        .and_then(|a| logging::access_log(&mut errors, "access_log", a, base_dir));
    let tracing = raw
        .tracing
        .as_ref()
        .and_then(|t| logging::tracing_export(&mut errors, t));
    if raw.tracing.is_none() {
        for (a, api) in raw.apis.iter().enumerate() {
            for (name, stage) in &api.stages {
                if let Some(t) = &stage.tracing {
                    errors.add(
                        format!("apis[{a}].stages.{name}.tracing"),
                        Some(t),
                        "tracing needs the collector spans are sent to: add `tracing: { endpoint: http://HOST:4318/v1/traces }` at the top level",
                    );
                }
            }
        }
    }

    if !errors.0.is_empty() {
        return Err(errors.0);
    }
    let Some(tls) = upstream_tls else {
        return Err(errors.0);
    };
    let (tls, roots_digest) = tls;
    let fingerprint =
        format!("roots={roots_digest:x};connect={connect_timeout:?};idle={pool_idle_timeout:?}");
    Ok(Config {
        listen,
        metrics: raw.metrics.as_ref().is_none_or(|m| m.enabled),
        access_log,
        tracing,
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
        state,
        counters,
        usage_plans,
        trusted_proxies,
        throttle,
        domains,
        plugins,
        redacted,
        sources: Vec::new(),
        warnings: Vec::new(),
        definitions: Vec::new(),
        origin: None,
        base_dir: base_dir.to_owned(),
    })
}
