//! Access-log formats in API Gateway's terms: a line of text with `$context` variables
//! (`$context.requestId $context.identity.sourceIp [$context.requestTime] ...`), or one of the
//! console's presets by name (`clf`, `json`, `xml`, `csv`).
//!
//! A format is compiled once, when the config loads, into literal text and variables; writing
//! a line appends each part to a buffer, with no allocation but the line's own. How a value is
//! escaped follows from the format's shape:
//! - JSON (the format starts with `{`): a value inside a JSON string is escaped for it, and a
//!   missing one is `-`; a value outside one is written as a JSON value (a number, a quoted
//!   string, or `null` when missing). A JSON format is checked to parse when it is compiled.
//! - XML (it starts with `<`): `&`, `<`, `>`, `"` and `'` become entities.
//! - CSV (variables separated by commas and nothing else): RFC 4180, a value with a comma, a
//!   quote or a line break is quoted.
//! - Text (anything else, CLF): `"`, `\`, control bytes and non-ASCII bytes become `\xHH`, as
//!   nginx writes them, so a field never breaks the line or its quoting.
//!
//! A missing value is `-`, as API Gateway writes it. Variables that only AWS can fill
//! (`accountId`, `identity.cognitoIdentityId`, `wafResponseCode`, ...) are accepted, so a
//! format brought from API Gateway loads, and are always `-`.

use std::time::{Duration, SystemTime};

use super::access_log::{AccessRecord, Totals};
use crate::client_cert::Field;

/// The API Gateway console's presets, verbatim.
pub const PRESETS: [(&str, &str); 4] = [
    (
        "clf",
        r#"$context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime] "$context.httpMethod $context.resourcePath $context.protocol" $context.status $context.responseLength $context.requestId $context.extendedRequestId"#,
    ),
    (
        "json",
        r#"{ "requestId":"$context.requestId", "extendedRequestId":"$context.extendedRequestId", "ip": "$context.identity.sourceIp", "caller":"$context.identity.caller", "user":"$context.identity.user", "requestTime":"$context.requestTime", "httpMethod":"$context.httpMethod", "resourcePath":"$context.resourcePath", "status":"$context.status", "protocol":"$context.protocol", "responseLength":"$context.responseLength" }"#,
    ),
    (
        "xml",
        r#"<request id="$context.requestId"> <extendedRequestId>$context.extendedRequestId</extendedRequestId> <ip>$context.identity.sourceIp</ip> <caller>$context.identity.caller</caller> <user>$context.identity.user</user> <requestTime>$context.requestTime</requestTime> <httpMethod>$context.httpMethod</httpMethod> <resourcePath>$context.resourcePath</resourcePath> <status>$context.status</status> <protocol>$context.protocol</protocol> <responseLength>$context.responseLength</responseLength> </request>"#,
    ),
    (
        "csv",
        "$context.identity.sourceIp,$context.identity.caller,$context.identity.user,$context.requestTime,$context.httpMethod,$context.resourcePath,$context.protocol,$context.status,$context.responseLength,$context.requestId,$context.extendedRequestId",
    ),
];

/// A compiled access-log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    parts: Box<[Part]>,
    escape: Escape,
    /// Whether a line needs what the default line does not carry (headers, the principal, the
    /// error's message): the request keeps them only for such formats.
    pub needs_extras: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    Json,
    Xml,
    Csv,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(Box<str>),
    /// A variable; `quoted` when a JSON format has it inside a string.
    Var {
        var: Var,
        quoted: bool,
    },
}

/// The `$context` variables Edgeway fills, by what they read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    RequestId,
    RequestTime,
    RequestTimeEpoch,
    HttpMethod,
    Path,
    ResourcePath,
    RouteKey,
    Protocol,
    Status,
    ResponseLength,
    DataProcessed,
    ApiId,
    Stage,
    DeploymentId,
    DomainName,
    DomainPrefix,
    BasePathMatched,
    SourceIp,
    UserAgent,
    ApiKeyId,
    PrincipalId,
    /// `authorizer.{name}` and `authorizer.claims.{name}`: a value of the authorizer's context.
    Authorizer(Box<str>),
    AuthorizerLatency,
    ErrorMessage,
    ErrorMessageString,
    ErrorResponseType,
    IntegrationLatency,
    IntegrationStatus,
    ResponseLatency,
    /// WebSocket APIs: `CONNECT`, `MESSAGE` or `DISCONNECT`.
    EventType,
    ConnectionId,
    ConnectedAt,
    MessageId,
    /// A field of the client's certificate (mutual TLS).
    ClientCert(crate::client_cert::Field),
    /// A variable only AWS can fill: always `-`.
    Unset,
}

/// Variables by name (after `$context.`). `needs_extras` marks the ones the request keeps only
/// for formats that use them.
const VARIABLES: &[(&str, Var, bool)] = &[
    ("requestId", Var::RequestId, false),
    ("extendedRequestId", Var::RequestId, false),
    ("requestTime", Var::RequestTime, false),
    ("requestTimeEpoch", Var::RequestTimeEpoch, false),
    ("httpMethod", Var::HttpMethod, false),
    ("path", Var::Path, false),
    ("resourcePath", Var::ResourcePath, false),
    ("routeKey", Var::RouteKey, false),
    ("protocol", Var::Protocol, false),
    ("status", Var::Status, false),
    ("responseLength", Var::ResponseLength, false),
    ("dataProcessed", Var::DataProcessed, false),
    ("apiId", Var::ApiId, false),
    ("stage", Var::Stage, false),
    ("deploymentId", Var::DeploymentId, false),
    ("domainName", Var::DomainName, true),
    ("domainPrefix", Var::DomainPrefix, true),
    ("customDomain.basePathMatched", Var::BasePathMatched, true),
    ("identity.sourceIp", Var::SourceIp, false),
    ("identity.userAgent", Var::UserAgent, true),
    ("identity.apiKeyId", Var::ApiKeyId, true),
    ("authorizer.principalId", Var::PrincipalId, true),
    ("authorizer.latency", Var::AuthorizerLatency, false),
    ("error.message", Var::ErrorMessage, true),
    ("error.messageString", Var::ErrorMessageString, true),
    ("error.responseType", Var::ErrorResponseType, false),
    ("integrationLatency", Var::IntegrationLatency, false),
    ("integration.latency", Var::IntegrationLatency, false),
    ("integrationStatus", Var::IntegrationStatus, false),
    ("integration.status", Var::IntegrationStatus, false),
    (
        "integration.integrationStatus",
        Var::IntegrationStatus,
        false,
    ),
    ("responseLatency", Var::ResponseLatency, false),
    ("eventType", Var::EventType, false),
    ("connectionId", Var::ConnectionId, false),
    ("connectedAt", Var::ConnectedAt, false),
    ("messageId", Var::MessageId, false),
    (
        "identity.clientCert.clientCertPem",
        Var::ClientCert(Field::Pem),
        true,
    ),
    (
        "identity.clientCert.subjectDN",
        Var::ClientCert(Field::SubjectDn),
        true,
    ),
    (
        "identity.clientCert.issuerDN",
        Var::ClientCert(Field::IssuerDn),
        true,
    ),
    (
        "identity.clientCert.serialNumber",
        Var::ClientCert(Field::Serial),
        true,
    ),
    (
        "identity.clientCert.validity.notBefore",
        Var::ClientCert(Field::NotBefore),
        true,
    ),
    (
        "identity.clientCert.validity.notAfter",
        Var::ClientCert(Field::NotAfter),
        true,
    ),
];

/// API Gateway's variables that Edgeway has no value for. `identity.apiKey` is one on purpose:
/// a log is no place for a secret (`identity.apiKeyId` names the key).
const UNSET: &[&str] = &[
    "accountId",
    "awsEndpointRequestId",
    "awsEndpointRequestId2",
    "authenticate.error",
    "authenticate.latency",
    "authenticate.status",
    "authorize.error",
    "authorize.latency",
    "authorize.status",
    "authorizer.error",
    "authorizer.integrationLatency",
    "authorizer.integrationStatus",
    "authorizer.requestId",
    "authorizer.status",
    "error.validationErrorString",
    "identity.accountId",
    "identity.apiKey",
    "identity.caller",
    "identity.cognitoAuthenticationProvider",
    "identity.cognitoAuthenticationType",
    "identity.cognitoIdentityId",
    "identity.cognitoIdentityPoolId",
    "identity.principalOrgId",
    "identity.user",
    "identity.userArn",
    "integration.error",
    "integration.requestId",
    "integrationErrorMessage",
    "resourceId",
    "waf.error",
    "waf.latency",
    "waf.status",
    "wafResponseCode",
    "webaclArn",
    "xrayTraceId",
];

/// Why a format was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl LogFormat {
    /// Compiles `text`: a preset's name, or a format of its own.
    pub fn compile(text: &str) -> Result<Self, FormatError> {
        let text = PRESETS
            .iter()
            .find(|(name, _)| *name == text.trim())
            .map_or(text, |(_, preset)| preset);
        let text = text.strip_suffix('\n').unwrap_or(text);
        if text.contains(['\n', '\r']) {
            return Err(FormatError(
                "an access-log format is one line: it has a line break".into(),
            ));
        }
        let mut parts = Vec::new();
        let mut needs_extras = false;
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(after.len());
            let name = after[..name_len].trim_end_matches('.');
            if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                // `$` before no name ("$5"): a dollar sign.
                literal.push('$');
                rest = after;
                continue;
            }
            let Some(variable) = name.strip_prefix("context.") else {
                return Err(FormatError(format!(
                    "${name}: an access-log format can use only $context variables"
                )));
            };
            let (var, extras) = lookup(variable)?;
            needs_extras |= extras;
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal).into()));
            }
            parts.push(Part::Var { var, quoted: false });
            rest = &after[name.len()..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal.into()));
        }
        let escape = escape_for(text, &parts);
        if escape == Escape::Json {
            mark_quoted(&mut parts);
        }
        let format = Self {
            parts: parts.into(),
            escape,
            needs_extras,
        };
        if escape == Escape::Json {
            format.check_json()?;
        }
        Ok(format)
    }

    /// Appends the line for `record` (without its line break).
    pub fn write(&self, out: &mut Vec<u8>, record: &AccessRecord, totals: &Totals) {
        for part in &self.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text.as_bytes()),
                Part::Var { var, quoted } => {
                    let value = value(var, record, totals);
                    self.push(out, value, *quoted);
                }
            }
        }
    }

    fn push(&self, out: &mut Vec<u8>, value: Value<'_>, quoted: bool) {
        let mut digits = itoa::Buffer::new();
        let text: &[u8] = match value {
            Value::Missing => {
                let missing: &[u8] = if self.escape == Escape::Json && !quoted {
                    b"null"
                } else {
                    b"-"
                };
                out.extend_from_slice(missing);
                return;
            }
            Value::Int(n) => {
                out.extend_from_slice(digits.format(n).as_bytes());
                return;
            }
            Value::Text(text) => text,
            Value::Quoted(text) => {
                // `error.messageString`: the message in quotes, as part of the value.
                let mut inner = Vec::with_capacity(text.len() + 2);
                inner.push(b'"');
                inner.extend_from_slice(text);
                inner.push(b'"');
                self.push(out, Value::Text(&inner), quoted);
                return;
            }
            Value::ClfTime(time) => {
                with_clf_time(time, |text| self.push(out, Value::Text(text), quoted));
                return;
            }
        };
        match self.escape {
            Escape::Json if quoted => push_json_inner(out, text),
            Escape::Json => {
                out.push(b'"');
                push_json_inner(out, text);
                out.push(b'"');
            }
            Escape::Xml => push_xml(out, text),
            Escape::Csv => push_csv(out, text),
            Escape::Text => push_text(out, text),
        }
    }

    /// A JSON format must stay JSON whatever its values: render one with awkward values and
    /// parse it.
    fn check_json(&self) -> Result<(), FormatError> {
        let mut line = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => line.extend_from_slice(text.as_bytes()),
                Part::Var { quoted, .. } => {
                    self.push(&mut line, Value::Text(b"a \"b\" \\c"), *quoted);
                }
            }
        }
        serde_json::from_slice::<serde_json::Value>(&line)
            .map(|_| ())
            .map_err(|e| {
                FormatError(format!(
                    "the format starts with '{{' but is not JSON once its variables are filled in: {e}"
                ))
            })
    }
}

fn lookup(name: &str) -> Result<(Var, bool), FormatError> {
    if let Some((_, var, extras)) = VARIABLES.iter().find(|(n, ..)| *n == name) {
        return Ok((var.clone(), *extras));
    }
    if UNSET.contains(&name) {
        return Ok((Var::Unset, false));
    }
    let property = name
        .strip_prefix("authorizer.claims.")
        .or_else(|| name.strip_prefix("authorizer."));
    if let Some(property) = property.filter(|p| !p.is_empty() && !p.contains('.')) {
        return Ok((Var::Authorizer(property.into()), true));
    }
    let known = VARIABLES
        .iter()
        .map(|(n, ..)| *n)
        .chain(UNSET.iter().copied());
    let hint = crate::suggest::did_you_mean(name, known)
        .map(|s| format!("; did you mean $context.{s}?"))
        .unwrap_or_default();
    Err(FormatError(format!(
        "unknown variable $context.{name}{hint}"
    )))
}

fn escape_for(text: &str, parts: &[Part]) -> Escape {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return Escape::Json;
    }
    if trimmed.starts_with('<') {
        return Escape::Xml;
    }
    let commas_only = parts.iter().enumerate().all(|(i, part)| match part {
        Part::Text(text) => &**text == "," && i > 0 && i + 1 < parts.len(),
        Part::Var { .. } => true,
    });
    if commas_only && parts.len() > 1 {
        Escape::Csv
    } else {
        Escape::Text
    }
}

/// Marks the variables a JSON format has inside strings.
fn mark_quoted(parts: &mut [Part]) {
    let mut in_string = false;
    for part in parts {
        match part {
            Part::Text(text) => {
                let mut escaped = false;
                for b in text.bytes() {
                    match b {
                        b'\\' if in_string && !escaped => escaped = true,
                        b'"' if !escaped => in_string = !in_string,
                        _ => escaped = false,
                    }
                    if b != b'\\' {
                        escaped = false;
                    }
                }
            }
            Part::Var { quoted, .. } => *quoted = in_string,
        }
    }
}

enum Value<'a> {
    Text(&'a [u8]),
    /// Text written inside quotes.
    Quoted(&'a [u8]),
    Int(u64),
    ClfTime(SystemTime),
    Missing,
}

fn text(value: &str) -> Value<'_> {
    if value.is_empty() {
        Value::Missing
    } else {
        Value::Text(value.as_bytes())
    }
}

fn millis(duration: Option<Duration>) -> Value<'static> {
    duration.map_or(Value::Missing, |d| {
        Value::Int(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

fn value<'a>(var: &'a Var, record: &'a AccessRecord, totals: &Totals) -> Value<'a> {
    let route = record.route.as_deref();
    let extras = &record.extras;
    match var {
        Var::RequestId => Value::Text(record.request_id.as_bytes()),
        Var::RequestTime => Value::ClfTime(record.time),
        Var::RequestTimeEpoch => Value::Int(
            record
                .time
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        ),
        Var::HttpMethod => text(record.method.as_str()),
        Var::Path => record
            .path
            .as_ref()
            .map_or(Value::Missing, |p| text(p.path())),
        Var::ResourcePath => route.map_or(Value::Missing, |r| {
            text(r.route.split_once(' ').map_or(&*r.route, |(_, path)| path))
        }),
        Var::RouteKey => route.map_or(Value::Missing, |r| text(&r.route)),
        Var::EventType => record
            .websocket
            .as_ref()
            .map_or(Value::Missing, |e| text(e.event_type)),
        Var::ConnectionId => record
            .websocket
            .as_ref()
            .map_or(Value::Missing, |e| text(&e.connection_id)),
        Var::ConnectedAt => record
            .websocket
            .as_ref()
            .map_or(Value::Missing, |e| Value::Int(e.connected_at_ms)),
        Var::MessageId => record
            .websocket
            .as_ref()
            .and_then(|e| e.message_id.as_deref())
            .map_or(Value::Missing, text),
        Var::ClientCert(field) => extras
            .client_cert
            .as_ref()
            .map_or(Value::Missing, |c| text(c.get(*field))),
        Var::Protocol => text(match record.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        }),
        Var::Status => Value::Int(record.status.into()),
        Var::ResponseLength => Value::Int(totals.bytes_out),
        Var::DataProcessed => Value::Int(totals.bytes_in.saturating_add(totals.bytes_out)),
        Var::ApiId => route.map_or(Value::Missing, |r| text(&r.api)),
        Var::Stage => route.map_or(Value::Missing, |r| text(&r.stage)),
        Var::DeploymentId => route
            .and_then(|r| r.deployment.as_deref())
            .map_or(Value::Missing, text),
        Var::DomainName => header_text(extras.host.as_ref()),
        Var::DomainPrefix => match extras.host.as_ref() {
            Some(host) => {
                let host = host.as_bytes();
                let end = host
                    .iter()
                    .position(|b| *b == b'.' || *b == b':')
                    .unwrap_or(host.len());
                bytes(&host[..end])
            }
            None => Value::Missing,
        },
        Var::BasePathMatched => extras.base_path.as_deref().map_or(Value::Missing, text),
        Var::SourceIp => Value::Text(record.source_ip.as_bytes()),
        Var::UserAgent => header_text(extras.user_agent.as_ref()),
        Var::ApiKeyId => extras
            .api_key
            .as_ref()
            .map_or(Value::Missing, |k| text(k.key_id())),
        Var::PrincipalId => extras
            .principal
            .as_ref()
            .map_or(Value::Missing, |p| text(p.principal_id())),
        Var::Authorizer(name) => extras
            .principal
            .as_ref()
            .and_then(|p| p.context_value(name))
            .map_or(Value::Missing, text),
        Var::AuthorizerLatency => millis(record.authorizer_latency),
        Var::ErrorMessage => extras.error_message.as_deref().map_or(Value::Missing, text),
        Var::ErrorMessageString => extras
            .error_message
            .as_deref()
            .map_or(Value::Missing, |m| Value::Quoted(m.as_bytes())),
        Var::ErrorResponseType => record
            .error
            .map_or(Value::Missing, |kind| text(kind.response_type.name())),
        Var::IntegrationLatency => millis(record.integration_latency),
        Var::IntegrationStatus => record
            .integration_status
            .map_or(Value::Missing, |s| Value::Int(s.into())),
        Var::ResponseLatency => millis(Some(totals.latency)),
        Var::Unset => Value::Missing,
    }
}

fn bytes(value: &[u8]) -> Value<'_> {
    if value.is_empty() {
        Value::Missing
    } else {
        Value::Text(value)
    }
}

fn header_text(value: Option<&http::HeaderValue>) -> Value<'_> {
    value.map_or(Value::Missing, |v| bytes(v.as_bytes()))
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex_escape(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

/// Whether `b` is printable ASCII other than `"` and `\`: what no format escapes.
fn plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// nginx's escaping: `"`, `\`, control bytes and bytes past ASCII become `\xHH`.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    // Most values (ids, addresses, paths, user agents) need none: one copy.
    if text.iter().all(|&b| plain(b)) {
        out.extend_from_slice(text);
        return;
    }
    for &b in text {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            push_hex_escape(out, b);
        } else {
            out.push(b);
        }
    }
}

/// RFC 4180: quoted (with quotes doubled) when the value holds a comma, quote or line break.
fn push_csv(out: &mut Vec<u8>, text: &[u8]) {
    if !text
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'"');
    for &b in text {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn push_xml(out: &mut Vec<u8>, text: &[u8]) {
    if text
        .iter()
        .all(|&b| plain(b) && !matches!(b, b'&' | b'<' | b'>' | b'\''))
    {
        out.extend_from_slice(text);
        return;
    }
    for &b in text {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&apos;"),
            // Not allowed in XML 1.0 at all: written as a character reference would not be
            // either, so as nginx would.
            b if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') => push_hex_escape(out, b),
            b => out.push(b),
        }
    }
}

/// The inside of a JSON string: `"`, `\` and control characters escaped; bytes that are not
/// UTF-8 (a header can hold them) replaced, so the line stays JSON.
fn push_json_inner(out: &mut Vec<u8>, text: &[u8]) {
    if text.iter().all(|&b| plain(b)) {
        out.extend_from_slice(text);
        return;
    }
    let text = String::from_utf8_lossy(text);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// `07/Dec/2026:06:16:26 +0000` for `time`'s second, formatted once per second per thread.
fn with_clf_time<R>(time: SystemTime, f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static CACHED: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let second = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            *text = crate::encoding::clf_time(time);
            *cached = second;
        }
        f(text.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::access_log::{Caller, KeyId};

    #[derive(Debug)]
    struct TestCaller;

    impl Caller for TestCaller {
        fn principal_id(&self) -> &str {
            "user-7"
        }

        fn context_value(&self, key: &str) -> Option<&str> {
            [("tier", "gold"), ("sub", "user-7")]
                .into_iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        }
    }

    #[derive(Debug)]
    struct TestKey;

    impl KeyId for TestKey {
        fn key_id(&self) -> &str {
            "k1"
        }
    }

    #[test]
    fn presets_compile_with_the_escaping_their_shape_calls_for() {
        let escapes: Vec<Escape> = PRESETS
            .iter()
            .map(|(name, _)| LogFormat::compile(name).unwrap().escape)
            .collect();
        assert_eq!(
            escapes,
            [Escape::Text, Escape::Json, Escape::Xml, Escape::Csv]
        );
    }

    #[test]
    fn unknown_and_foreign_variables_are_refused_by_name() {
        let e = LogFormat::compile("$context.requestId $context.identity.sourceIP").unwrap_err();
        assert_eq!(
            e.0,
            "unknown variable $context.identity.sourceIP; did you mean $context.identity.sourceIp?"
        );
        let e = LogFormat::compile("$input.body").unwrap_err();
        assert_eq!(
            e.0,
            "$input.body: an access-log format can use only $context variables"
        );
        assert!(LogFormat::compile("a\nb").is_err());
    }

    #[test]
    fn a_trailing_dot_and_a_bare_dollar_are_text() {
        let format = LogFormat::compile("cost $5 for $context.status.").unwrap();
        assert_eq!(
            format.parts[..],
            [
                Part::Text("cost $5 for ".into()),
                Part::Var {
                    var: Var::Status,
                    quoted: false
                },
                Part::Text(".".into()),
            ]
        );
    }

    #[test]
    fn json_variables_know_whether_they_are_inside_a_string() {
        let format = LogFormat::compile(
            r#"{"a":"$context.status","b":$context.status,"c":"x\"$context.stage"}"#,
        )
        .unwrap();
        let quoted: Vec<bool> = format
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Var { quoted, .. } => Some(*quoted),
                Part::Text(_) => None,
            })
            .collect();
        assert_eq!(quoted, [true, false, true]);
    }

    #[test]
    fn a_json_format_that_is_not_json_is_refused() {
        let e = LogFormat::compile(r#"{"a":"$context.status"#).unwrap_err();
        assert!(e.0.contains("is not JSON"), "{e}");
    }

    #[test]
    fn escaping_per_shape() {
        let mut out = Vec::new();
        push_text(&mut out, "a \"b\"\\ é\n".as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r"a \x22b\x22\x5C \xC3\xA9\x0A"
        );
        let mut out = Vec::new();
        push_csv(&mut out, b"Mozilla/5.0 (X11, \"Linux\")");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""Mozilla/5.0 (X11, ""Linux"")""#
        );
        let mut out = Vec::new();
        push_xml(&mut out, b"<a href='x'>&</a>");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "&lt;a href=&apos;x&apos;&gt;&amp;&lt;/a&gt;"
        );
        let mut out = Vec::new();
        push_json_inner(&mut out, b"q\"\\\x01\xff");
        assert_eq!(String::from_utf8(out).unwrap(), "q\\\"\\\\\\u0001\u{fffd}");
    }

    #[test]
    fn websocket_events_fill_their_variables() {
        let format = LogFormat::compile(
            r#"{"event":"$context.eventType","connection":"$context.connectionId","message":"$context.messageId"}"#,
        )
        .unwrap();
        let mut record = record(None);
        record.websocket = Some(Box::new(super::super::WebSocketEvent {
            event_type: "MESSAGE",
            connection_id: "Zm9vYmFyYmF6cXV4".into(),
            message_id: Some("bWVzc2FnZS1vbmUx".into()),
            connected_at_ms: 1_796_000_000_000,
        }));
        let totals = super::super::Totals {
            bytes_in: 0,
            bytes_out: 0,
            latency: Duration::ZERO,
        };
        let mut line = Vec::new();
        format.write(&mut line, &record, &totals);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"event":"MESSAGE","connection":"Zm9vYmFyYmF6cXV4","message":"bWVzc2FnZS1vbmUx"}"#
        );
        // An HTTP request has none of them.
        record.websocket = None;
        let mut line = Vec::new();
        format.write(&mut line, &record, &totals);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"event":"-","connection":"-","message":"-"}"#
        );
    }

    /// Golden lines: each preset, and formats with every variable (text and JSON), for a
    /// request that went through an authorizer and an integration and one that matched no
    /// route. `EDGEWAY_BLESS=1` rewrites the files.
    #[test]
    fn golden_lines() {
        let every: Vec<String> = VARIABLES
            .iter()
            .map(|(name, ..)| *name)
            .chain([
                "authorizer.tier",
                "authorizer.claims.sub",
                "identity.caller",
            ])
            .map(|name| format!("{name}=$context.{name}"))
            .collect();
        let every_text = every.join(" ");
        let every_json = format!(
            "{{{}}}",
            every
                .iter()
                .enumerate()
                .map(|(i, pair)| {
                    let (name, var) = pair.split_once('=').unwrap();
                    // Every other value outside a string: numbers bare, text quoted, null.
                    if i % 2 == 0 {
                        format!("\"{name}\":\"{var}\"")
                    } else {
                        format!("\"{name}\":{var}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        );
        let formats = [
            ("clf", "clf".to_owned()),
            ("json", "json".to_owned()),
            ("xml", "xml".to_owned()),
            ("csv", "csv".to_owned()),
            ("every-variable", every_text),
            ("every-variable-json", every_json),
        ];
        let records = [served(), unrouted()];
        let totals = Totals {
            bytes_in: 17,
            bytes_out: 1234,
            latency: Duration::from_micros(15_600),
        };
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/access_log");
        let bless = std::env::var_os("EDGEWAY_BLESS").is_some_and(|v| v != "0" && !v.is_empty());
        let mut failed = Vec::new();
        for (name, text) in formats {
            let format = LogFormat::compile(&text).unwrap();
            let mut lines = format!("# format: {text}\n").into_bytes();
            for record in &records {
                format.write(&mut lines, record, &totals);
                lines.push(b'\n');
            }
            if format.escape == Escape::Json {
                for line in lines
                    .split(|b| *b == b'\n')
                    .skip(1)
                    .filter(|l| !l.is_empty())
                {
                    serde_json::from_slice::<serde_json::Value>(line).unwrap_or_else(|e| {
                        panic!("{name}: {e}: {}", String::from_utf8_lossy(line))
                    });
                }
            }
            let path = dir.join(format!("{name}.log"));
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &lines).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(&lines[..]) {
                failed.push(format!(
                    "{}: expected\n{}\ngot\n{}",
                    path.display(),
                    std::fs::read_to_string(&path).unwrap_or_default(),
                    String::from_utf8_lossy(&lines)
                ));
            }
        }
        assert!(
            failed.is_empty(),
            "{}\n(EDGEWAY_BLESS=1 rewrites them)",
            failed.join("\n")
        );
    }

    fn record(route: Option<super::super::RouteLabels>) -> AccessRecord {
        AccessRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_000_000_123),
            start: std::time::Instant::now(),
            request_id: http::HeaderValue::from_static("c0ffee00-0000-4000-8000-000000000001"),
            route: route.map(std::sync::Arc::new),
            log: None,
            method: http::Method::GET,
            path: Some(http::uri::PathAndQuery::from_static("/prod/pets/7?x=1")),
            version: http::Version::HTTP_11,
            status: 200,
            integration_latency: None,
            integration_status: None,
            authorizer_latency: None,
            source_ip: http::HeaderValue::from_static("203.0.113.9"),
            error: None,
            trace: None,
            extras: super::super::RecordExtras::default(),
            metrics: None,
            websocket: None,
        }
    }

    fn served() -> AccessRecord {
        let labels = super::super::RouteLabels::deployed(
            "shop",
            "prod",
            "GET /pets/{id}",
            Some("d7"),
            false,
            std::sync::Arc::default(),
        );
        AccessRecord {
            version: http::Version::HTTP_2,
            integration_latency: Some(Duration::from_micros(12_400)),
            integration_status: Some(201),
            authorizer_latency: Some(Duration::from_micros(3_100)),
            extras: super::super::RecordExtras {
                host: Some(http::HeaderValue::from_static("api.example.com")),
                user_agent: Some(http::HeaderValue::from_static(
                    "curl/8.0 (x, \"y\") \\o/ <&>",
                )),
                base_path: Some("v1".into()),
                principal: Some(std::sync::Arc::new(TestCaller)),
                api_key: Some(std::sync::Arc::new(TestKey)),
                error_message: None,
                client_cert: Some(std::sync::Arc::new(crate::client_cert::ClientCert {
                    pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
                    subject_dn: "O=Example\\, Inc,CN=client one".into(),
                    issuer_dn: "CN=Example CA".into(),
                    serial: "0a:1b:ff".into(),
                    not_before: "May  8 00:00:00 2019 GMT".into(),
                    not_after: "Dec 25 00:00:00 2031 GMT".into(),
                })),
            },
            ..record(Some(labels))
        }
    }

    fn unrouted() -> AccessRecord {
        AccessRecord {
            status: 404,
            path: Some(http::uri::PathAndQuery::from_static("/nowhere")),
            error: Some(crate::pipeline::GatewayError::NotFound.kind()),
            extras: super::super::RecordExtras {
                error_message: Some("Not Found".into()),
                ..Default::default()
            },
            ..record(None)
        }
    }
}
