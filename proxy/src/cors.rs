//! An API's CORS settings, compiled: which origins, methods and headers a browser may use, and
//! the `Access-Control-*` header values, rendered once when config loads.
//!
//! The pipeline uses this twice (`pipeline::cors`): phase 3 answers preflights with
//! [`CorsPolicy::answer_preflight`] without reaching authorizers or the origin, and phase 12
//! puts the headers on every response of the API with [`CorsPolicy::apply`]. As in API
//! Gateway HTTP APIs, the gateway owns CORS for an API that configures it: `Access-Control-*`
//! headers from the origin are dropped.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue};

/// The longest `max_age_s` accepted: a day, as API Gateway (browsers cap it lower: Chromium
/// at 7200 s).
pub const MAX_CORS_MAX_AGE_S: u64 = 86_400;

/// One entry of `allow_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: every origin.
    Any,
    /// `https://app.example.com[:port]`, lower case, default port removed.
    Exact(Box<str>),
    /// `https://*.example.com[:port]`: one or more labels in front of `suffix`.
    Subdomain {
        /// `https://`
        prefix: Box<str>,
        /// `.example.com` or `.example.com:8443`
        suffix: Box<str>,
    },
}

/// Why an `allow_origins` entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginPatternError {
    #[error(
        "\"null\" is the origin of sandboxed and file: documents, which any page can create; \
         it cannot be allowed"
    )]
    Null,
    /// Not `*`, `scheme://host[:port]` or `scheme://*.host[:port]`; `why` says what is off.
    #[error(
        "invalid origin \"{text}\": {why}; expected scheme://host[:port] such as https://app.example.com, https://*.example.com or *"
    )]
    Invalid { text: String, why: &'static str },
}

/// Parses an `allow_origins` entry: `*`, `scheme://host[:port]`, or `scheme://*.host[:port]`
/// (any depth of subdomain, not the bare host). Names are lower-cased and a default port
/// (`:80` for http, `:443` for https) is dropped, since browsers send origins that way.
pub fn parse_origin(text: &str) -> Result<OriginPattern, OriginPatternError> {
    let text = text.trim();
    if text == "*" {
        return Ok(OriginPattern::Any);
    }
    if text.eq_ignore_ascii_case("null") {
        return Err(OriginPatternError::Null);
    }
    let invalid = |why: &'static str| OriginPatternError::Invalid {
        text: text.into(),
        why,
    };
    let lower = text.to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| invalid("no scheme"))?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(invalid("bad scheme"));
    }
    if rest.contains(['/', '?', '#']) {
        return Err(invalid("an origin has no path, query or trailing slash"));
    }
    if rest.contains('@') {
        return Err(invalid("an origin has no user info"));
    }
    let (host, port) = split_port(rest).map_err(&invalid)?;
    let port = match (scheme, port) {
        ("http", Some(80)) | ("https", Some(443)) | (_, None) => String::new(),
        (_, Some(port)) => format!(":{port}"),
    };
    if let Some(domain) = host.strip_prefix("*.") {
        if !valid_domain(domain) {
            return Err(invalid("the part after `*.` must be a domain name"));
        }
        if !domain.contains('.') && domain != "localhost" {
            return Err(invalid(
                "a wildcard over a top-level domain would allow any site",
            ));
        }
        return Ok(OriginPattern::Subdomain {
            prefix: format!("{scheme}://").into(),
            suffix: format!(".{domain}{port}").into(),
        });
    }
    if host.contains('*') {
        return Err(invalid(
            "a wildcard is allowed only as the whole first label, `*.`",
        ));
    }
    let ipv6 = host.starts_with('[') && host.ends_with(']');
    if !ipv6 && !valid_domain(host) {
        return Err(invalid("bad host"));
    }
    Ok(OriginPattern::Exact(
        format!("{scheme}://{host}{port}").into(),
    ))
}

/// `host:port` → (host, port); a bracketed IPv6 host keeps its brackets.
fn split_port(rest: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if rest.starts_with('[') {
        let end = rest.find(']').ok_or("unclosed IPv6 bracket")?;
        let (host, after) = rest.split_at(end + 1);
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err("bad host"),
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err("bad port"),
        },
    };
    if host.is_empty() {
        return Err("no host");
    }
    Ok((host, port))
}

/// Dot-separated labels of letters, digits, `-` and `_`, none empty.
fn valid_domain(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl OriginPattern {
    /// Whether a request's `Origin` (as sent) matches.
    fn matches(&self, origin: &[u8]) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => origin.eq_ignore_ascii_case(exact.as_bytes()),
            Self::Subdomain { prefix, suffix } => {
                let (prefix, suffix) = (prefix.as_bytes(), suffix.as_bytes());
                if origin.len() <= prefix.len() + suffix.len() {
                    return false;
                }
                let (head, rest) = origin.split_at(prefix.len());
                let (labels, tail) = rest.split_at(rest.len() - suffix.len());
                head.eq_ignore_ascii_case(prefix)
                    && tail.eq_ignore_ascii_case(suffix)
                    && labels.split(|&b| b == b'.').all(|label| {
                        !label.is_empty()
                            && label
                                .iter()
                                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
                    })
            }
        }
    }
}

/// Methods or headers a preflight may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// `*`: anything; the preflight answer repeats what was asked for (which, unlike a literal
    /// `*`, also works for credentialed requests and for `Authorization`).
    Any,
    /// These, compared case-insensitively; the answer lists them.
    List(Box<[Box<str>]>),
}

impl Allowed {
    fn allows(&self, item: &str) -> bool {
        match self {
            Self::Any => true,
            Self::List(list) => list.iter().any(|i| i.eq_ignore_ascii_case(item)),
        }
    }
}

/// CORS settings as validated config gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsSettings {
    pub allow_origins: Vec<OriginPattern>,
    pub allow_methods: Allowed,
    pub allow_headers: Allowed,
    /// Header names, or `*` alone.
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_s: Option<u64>,
}

/// An API's CORS rules with every response header value rendered.
#[derive(Debug)]
pub struct CorsPolicy {
    settings: CorsSettings,
    any_origin: bool,
    /// `Access-Control-Allow-Methods` for a `List`.
    methods_value: Option<HeaderValue>,
    /// `Access-Control-Allow-Headers` for a non-empty `List`.
    headers_value: Option<HeaderValue>,
    expose_value: Option<HeaderValue>,
    max_age_value: Option<HeaderValue>,
}

static TRUE: HeaderValue = HeaderValue::from_static("true");
static STAR: HeaderValue = HeaderValue::from_static("*");
static VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
static VARY_PREFLIGHT: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);

/// What a preflight request asked for.
#[derive(Debug, Clone, Copy)]
pub struct PreflightRequest<'r> {
    pub origin: &'r HeaderValue,
    pub method: &'r HeaderValue,
    pub headers: Option<&'r HeaderValue>,
}

impl<'r> PreflightRequest<'r> {
    /// The preflight parts of a request: `None` unless it has both `Origin` and
    /// `Access-Control-Request-Method` (the method is the caller's to check: OPTIONS).
    pub fn from_headers(headers: &'r HeaderMap) -> Option<Self> {
        Some(Self {
            method: headers.get(ACCESS_CONTROL_REQUEST_METHOD)?,
            origin: headers.get(ORIGIN)?,
            headers: headers.get(ACCESS_CONTROL_REQUEST_HEADERS),
        })
    }
}

impl CorsPolicy {
    /// Renders the header values of `settings`.
    pub fn new(settings: CorsSettings) -> Self {
        let join = |items: &mut dyn Iterator<Item = &str>| -> Option<HeaderValue> {
            let text = items.collect::<Vec<_>>().join(", ");
            (!text.is_empty())
                .then(|| HeaderValue::from_str(&text).ok())
                .flatten()
        };
        let list_value = |allowed: &Allowed| match allowed {
            Allowed::Any => None,
            Allowed::List(list) => join(&mut list.iter().map(|s| &**s)),
        };
        Self {
            any_origin: settings.allow_origins.contains(&OriginPattern::Any),
            methods_value: list_value(&settings.allow_methods),
            headers_value: list_value(&settings.allow_headers),
            expose_value: join(&mut settings.expose_headers.iter().map(String::as_str)),
            max_age_value: settings.max_age_s.map(HeaderValue::from),
            settings,
        }
    }

    /// The settings this was built from.
    pub fn settings(&self) -> &CorsSettings {
        &self.settings
    }

    /// Whether `origin` may read responses.
    pub fn allows_origin(&self, origin: &HeaderValue) -> bool {
        let origin = origin.as_bytes();
        self.settings
            .allow_origins
            .iter()
            .any(|pattern| pattern.matches(origin))
    }

    /// `Access-Control-Allow-Origin` for an allowed origin: `*` when every origin is allowed
    /// without credentials, else the origin itself.
    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.settings.allow_credentials {
            STAR.clone()
        } else {
            origin.clone()
        }
    }

    /// Whether every header named in `Access-Control-Request-Headers` is allowed.
    fn allows_request_headers(&self, requested: Option<&HeaderValue>) -> bool {
        let Some(requested) = requested else {
            return true;
        };
        let Ok(text) = requested.to_str() else {
            return false;
        };
        text.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .all(|name| self.settings.allow_headers.allows(name))
    }

    /// Writes the answer to a preflight into `response` and returns whether it was allowed.
    /// A refused preflight gets no `Access-Control-*` headers, so the browser stops there;
    /// both get `Vary`, since the answer depends on the request's CORS headers.
    pub fn answer_preflight(
        &self,
        request: &PreflightRequest<'_>,
        response: &mut HeaderMap,
    ) -> bool {
        response.insert(VARY, VARY_PREFLIGHT.clone());
        let method = request.method.to_str().unwrap_or_default();
        let allowed = self.allows_origin(request.origin)
            && !method.is_empty()
            && self.settings.allow_methods.allows(method)
            && self.allows_request_headers(request.headers);
        if !allowed {
            return false;
        }
        response.insert(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin_value(request.origin),
        );
        if self.settings.allow_credentials {
            response.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE.clone());
        }
        let methods = match &self.methods_value {
            Some(value) => value.clone(),
            None => request.method.clone(),
        };
        response.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
        let headers = match (&self.settings.allow_headers, request.headers) {
            (Allowed::Any, requested) => requested.cloned(),
            (Allowed::List(_), _) => self.headers_value.clone(),
        };
        if let Some(headers) = headers.filter(|h| !h.is_empty()) {
            response.insert(ACCESS_CONTROL_ALLOW_HEADERS, headers);
        }
        if let Some(max_age) = &self.max_age_value {
            response.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        true
    }

    /// Puts CORS on a response (the origin's, a mock's or a gateway error) of this API to a
    /// request with `origin`: the origin's own `Access-Control-*` headers are dropped, `Vary:
    /// Origin` is added (the response differs by origin; an origin's `Vary` is kept), and an
    /// allowed origin gets `Access-Control-Allow-Origin`, `-Allow-Credentials` and
    /// `-Expose-Headers`.
    pub fn apply(&self, origin: Option<&HeaderValue>, response: &mut HeaderMap) {
        for name in [
            ACCESS_CONTROL_ALLOW_ORIGIN,
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            ACCESS_CONTROL_EXPOSE_HEADERS,
            ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_HEADERS,
            ACCESS_CONTROL_MAX_AGE,
        ] {
            response.remove(name);
        }
        if !varies_by_origin(response) {
            response.append(VARY, VARY_ORIGIN.clone());
        }
        let Some(origin) = origin.filter(|o| self.allows_origin(o)) else {
            return;
        };
        response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
        if self.settings.allow_credentials {
            response.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE.clone());
        }
        if let Some(expose) = &self.expose_value {
            response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

/// True when the response's `Vary` already covers `Origin` (or is `*`).
fn varies_by_origin(headers: &HeaderMap) -> bool {
    headers.get_all(VARY).iter().any(|value| {
        value.as_bytes().split(|&b| b == b',').any(|token| {
            let token = token.trim_ascii();
            token == b"*" || token.eq_ignore_ascii_case(b"origin")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(text: &'static str) -> HeaderValue {
        HeaderValue::from_static(text)
    }

    fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
        CorsPolicy::new(CorsSettings {
            allow_origins: origins.iter().map(|o| parse_origin(o).unwrap()).collect(),
            allow_methods: Allowed::List(vec!["GET".into(), "PUT".into()].into()),
            allow_headers: Allowed::List(vec!["content-type".into(), "x-api-key".into()].into()),
            expose_headers: vec!["x-request-id".into()],
            allow_credentials: credentials,
            max_age_s: Some(600),
        })
    }

    #[test]
    fn origins_parse_and_normalise() {
        assert_eq!(parse_origin("*").unwrap(), OriginPattern::Any);
        assert_eq!(
            parse_origin("HTTPS://App.Example.com").unwrap(),
            OriginPattern::Exact("https://app.example.com".into())
        );
        assert_eq!(
            parse_origin("https://app.example.com:443").unwrap(),
            OriginPattern::Exact("https://app.example.com".into())
        );
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            OriginPattern::Exact("http://localhost:3000".into())
        );
        assert_eq!(
            parse_origin("http://[::1]:8080").unwrap(),
            OriginPattern::Exact("http://[::1]:8080".into())
        );
        assert_eq!(
            parse_origin("https://*.example.com:8443").unwrap(),
            OriginPattern::Subdomain {
                prefix: "https://".into(),
                suffix: ".example.com:8443".into()
            }
        );
        for bad in [
            "null",
            "example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://a.*.example.com",
            "https://*example.com",
            "https://*.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://user@example.com",
            "https://",
            "1http://x.com",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_and_wildcard_origins_match() {
        let p = policy(
            &[
                "https://app.example.com",
                "https://*.example.org",
                "http://*.local.test:8080",
            ],
            true,
        );
        for yes in [
            "https://app.example.com",
            "https://APP.example.com",
            "https://a.example.org",
            "https://a.b.example.org",
            "http://x.local.test:8080",
        ] {
            assert!(
                p.allows_origin(&HeaderValue::from_str(yes).unwrap()),
                "{yes}"
            );
        }
        for no in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://example.org",
            "https://.example.org",
            "https://a..example.org",
            "https://evil.com/.example.org",
            "https://evilexample.org",
            "https://a.example.org:443",
            "http://x.local.test",
            "http://x.local.test:8081",
            "null",
        ] {
            assert!(
                !p.allows_origin(&HeaderValue::from_str(no).unwrap()),
                "{no}"
            );
        }
    }

    #[test]
    fn allowed_preflight_gets_every_header() {
        let p = policy(&["https://app.example.com"], true);
        let request = PreflightRequest {
            origin: &hv("https://app.example.com"),
            method: &hv("PUT"),
            headers: Some(&hv("Content-Type, x-api-key")),
        };
        let mut h = HeaderMap::new();
        assert!(p.answer_preflight(&request, &mut h));
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-allow-methods"], "GET, PUT");
        assert_eq!(h["access-control-allow-headers"], "content-type, x-api-key");
        assert_eq!(h["access-control-max-age"], "600");
        assert_eq!(
            h["vary"],
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        );
        assert!(h.get("access-control-expose-headers").is_none());
    }

    #[test]
    fn refused_preflights_get_no_cors_headers() {
        let p = policy(&["https://app.example.com"], false);
        let cases = [
            ("https://evil.example", "PUT", None),
            ("https://app.example.com", "DELETE", None),
            ("https://app.example.com", "PUT", Some("x-secret")),
            (
                "https://app.example.com",
                "PUT",
                Some("content-type, authorization"),
            ),
        ];
        for (origin, method, headers) in cases {
            let origin = HeaderValue::from_str(origin).unwrap();
            let method = HeaderValue::from_str(method).unwrap();
            let requested = headers.map(|h| HeaderValue::from_str(h).unwrap());
            let request = PreflightRequest {
                origin: &origin,
                method: &method,
                headers: requested.as_ref(),
            };
            let mut h = HeaderMap::new();
            assert!(
                !p.answer_preflight(&request, &mut h),
                "{origin:?} {method:?}"
            );
            assert_eq!(h.len(), 1, "only Vary: {h:?}");
        }
    }

    #[test]
    fn wildcards_reflect_what_was_asked() {
        let p = CorsPolicy::new(CorsSettings {
            allow_origins: vec![OriginPattern::Any],
            allow_methods: Allowed::Any,
            allow_headers: Allowed::Any,
            expose_headers: Vec::new(),
            allow_credentials: false,
            max_age_s: None,
        });
        let request = PreflightRequest {
            origin: &hv("https://anyone.example"),
            method: &hv("PATCH"),
            headers: Some(&hv("authorization, x-custom")),
        };
        let mut h = HeaderMap::new();
        assert!(p.answer_preflight(&request, &mut h));
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-allow-methods"], "PATCH");
        assert_eq!(h["access-control-allow-headers"], "authorization, x-custom");
        assert!(h.get("access-control-allow-credentials").is_none());
        assert!(h.get("access-control-max-age").is_none());
    }

    #[test]
    fn actual_responses_replace_origin_cors_and_keep_vary() {
        let p = policy(&["https://app.example.com"], true);
        let mut h = HeaderMap::new();
        h.insert("access-control-allow-origin", hv("*"));
        h.insert("access-control-max-age", hv("5"));
        h.insert("vary", hv("Accept-Encoding"));
        p.apply(Some(&hv("https://app.example.com")), &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-expose-headers"], "x-request-id");
        assert!(h.get("access-control-max-age").is_none());
        let vary: Vec<_> = h.get_all("vary").iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);

        // A disallowed origin and no origin: nothing but Vary (not repeated).
        for origin in [Some(hv("https://evil.example")), None] {
            let mut h = HeaderMap::new();
            h.insert("access-control-allow-origin", hv("*"));
            h.insert("vary", hv("origin"));
            p.apply(origin.as_ref(), &mut h);
            assert_eq!(h.len(), 1, "{h:?}");
            assert_eq!(h["vary"], "origin");
        }
    }

    #[test]
    fn any_origin_with_credentials_echoes_the_origin() {
        // Config refuses this combination; the policy still never sends `*` with credentials.
        let p = CorsPolicy::new(CorsSettings {
            allow_origins: vec![OriginPattern::Any],
            allow_methods: Allowed::Any,
            allow_headers: Allowed::Any,
            expose_headers: Vec::new(),
            allow_credentials: true,
            max_age_s: None,
        });
        let mut h = HeaderMap::new();
        p.apply(Some(&hv("https://x.example")), &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://x.example");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn origin_parsing_never_panics(text in ".{0,48}") {
            let _ = parse_origin(&text);
        }

        #[test]
        fn wildcard_matching_never_panics(origin in "[a-z:/.*\\[\\]0-9-]{0,40}") {
            let pattern = parse_origin("https://*.example.com:8443").unwrap();
            let _ = pattern.matches(origin.as_bytes());
        }

        #[test]
        fn a_subdomain_matches_its_wildcard(labels in prop::collection::vec("[a-z0-9-]{1,10}", 1..4)) {
            let pattern = parse_origin("https://*.example.com").unwrap();
            let origin = format!("https://{}.example.com", labels.join("."));
            prop_assert!(pattern.matches(origin.as_bytes()));
            let other = format!("https://{}.example.com.evil", labels.join("."));
            prop_assert!(!pattern.matches(other.as_bytes()));
        }
    }
}
