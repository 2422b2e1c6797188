//! What API Gateway gives a mapping template: `$input`, `$util`, `$context` (with
//! `requestOverride` and `responseOverride`) and `$stageVariables`, and what the host reads
//! back after a render ([`Rendered`]).

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use base64::Engine as _;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::jsonpath::Path;
use crate::value::{Entries, Map, Object, Value};
use crate::{RenderError, Scope, Template};

/// Request headers a template never sees, in `$input.params()` or by name (hop-by-hop and
/// those API Gateway keeps to itself).
pub const HIDDEN_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "content-md5",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Everything one render reads: the host builds it from the request (or the integration's
/// response) and its context.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MappingInput {
    /// The payload as text (for a response template, the integration's answer).
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub params: Params,
    /// `$context`, as the text of a JSON object (`requestOverride` and `responseOverride`
    /// are added). Parsed the first time a template reads it.
    #[serde(default)]
    pub context: String,
    #[serde(default)]
    pub stage_variables: IndexMap<String, String>,
}

/// The method request's parameters, as `$input.params()` shows them. Query values are
/// URL-decoded; header names are matched without regard to case.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Params {
    #[serde(default)]
    pub path: IndexMap<String, String>,
    #[serde(default)]
    pub querystring: IndexMap<String, String>,
    #[serde(default)]
    pub header: IndexMap<String, String>,
}

/// What a render produced: the body and the overrides the template set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Rendered {
    pub body: String,
    #[serde(default, skip_serializing_if = "Overrides::is_empty")]
    pub overrides: Overrides,
}

/// `$context.requestOverride.*` and `$context.responseOverride.*`. A list value is a
/// multi-value header (or query parameter).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub request_header: IndexMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub request_path: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub request_querystring: IndexMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub response_header: IndexMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Renders `template` over `input`: the API Gateway variables are put in scope, and the
/// overrides the template set are read back.
pub fn render(template: &Template, input: &Rc<MappingInput>) -> Result<Rendered, RenderError> {
    let mut scope = Scope::new();
    let overrides = OverrideSet::default();
    scope.set("input", Value::Object(Rc::new(Input::new(input.clone()))));
    scope.set("util", Value::Object(Rc::new(Util)));
    scope.set("context", context(input, &overrides));
    scope.set(
        "stageVariables",
        Value::map(
            input
                .stage_variables
                .iter()
                .map(|(k, v)| (Rc::from(k.as_str()), Value::from(v.as_str()))),
        ),
    );
    let body = template.render(&mut scope)?;
    Ok(Rendered {
        body,
        overrides: overrides.collect().map_err(|message| RenderError::At {
            line: 1,
            column: 1,
            message,
        })?,
    })
}

fn context(input: &Rc<MappingInput>, overrides: &OverrideSet) -> Value {
    let group = |fields: &[(&str, &Rc<OverrideMap>)]| {
        Value::Object(Rc::new(OverrideGroup(
            fields
                .iter()
                .map(|(name, map)| ((*name).to_owned(), (*map).clone()))
                .collect(),
        )))
    };
    Value::Object(Rc::new(Context {
        input: input.clone(),
        parsed: OnceCell::new(),
        request_override: group(&[
            ("header", &overrides.request_header),
            ("path", &overrides.request_path),
            ("querystring", &overrides.request_querystring),
        ]),
        response_override: Value::Object(Rc::new(ResponseOverride {
            header: overrides.response_header.clone(),
            status: overrides.response_status.clone(),
        })),
    }))
}

/// `$context`: the host's JSON, parsed when a template first reads a variable of it, and
/// the two override objects.
#[derive(Debug)]
struct Context {
    /// Its `context` is the JSON text.
    input: Rc<MappingInput>,
    parsed: OnceCell<Map>,
    request_override: Value,
    response_override: Value,
}

impl Context {
    fn map(&self) -> &Map {
        self.parsed.get_or_init(|| {
            let mut entries = match Value::from_json(&self.input.context) {
                Ok(Value::Map(map)) => map.entries.borrow().clone(),
                _ => Entries::default(),
            };
            entries.insert(Rc::from("requestOverride"), self.request_override.clone());
            entries.insert(Rc::from("responseOverride"), self.response_override.clone());
            Map::new(entries, false)
        })
    }
}

impl Object for Context {
    fn property(&self, name: &str) -> Option<Result<Value, String>> {
        Some(Ok(match name {
            "requestOverride" => self.request_override.clone(),
            "responseOverride" => self.response_override.clone(),
            _ => self.map().get(name).unwrap_or(Value::Null),
        }))
    }
    fn set(&self, name: &str, value: Value) -> Option<Result<(), String>> {
        if matches!(name, "requestOverride" | "responseOverride") {
            return Some(Err(format!(
                "$context.{name} cannot be replaced, only its fields set"
            )));
        }
        self.map()
            .entries
            .borrow_mut()
            .insert(Rc::from(name), value);
        Some(Ok(()))
    }
    fn text(&self) -> String {
        Value::Map(self.map().clone()).to_text()
    }
    fn plain(&self) -> Option<Value> {
        Some(Value::Map(self.map().clone()))
    }
}

/// The override maps a render writes.
#[derive(Debug, Default)]
struct OverrideSet {
    request_header: Rc<OverrideMap>,
    request_path: Rc<OverrideMap>,
    request_querystring: Rc<OverrideMap>,
    response_header: Rc<OverrideMap>,
    response_status: Rc<RefCell<Option<Value>>>,
}

impl OverrideSet {
    fn collect(&self) -> Result<Overrides, String> {
        let multi = |map: &OverrideMap| -> IndexMap<String, Vec<String>> {
            map.entries
                .borrow()
                .iter()
                .map(|(k, v)| {
                    let values = match v.plain() {
                        Value::List(list) => {
                            list.items.borrow().iter().map(Value::to_text).collect()
                        }
                        v => vec![v.to_text()],
                    };
                    (k.to_string(), values)
                })
                .collect()
        };
        let status = match self.response_status.borrow().as_ref() {
            None => None,
            Some(v) => {
                let text = v.to_text();
                match text.trim().parse::<u16>() {
                    Ok(s) if (100..=599).contains(&s) => Some(s),
                    _ => {
                        return Err(format!(
                            "$context.responseOverride.status must be an HTTP status, not {text:?}"
                        ));
                    }
                }
            }
        };
        Ok(Overrides {
            request_header: multi(&self.request_header),
            request_path: self
                .request_path
                .entries
                .borrow()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_text()))
                .collect(),
            request_querystring: multi(&self.request_querystring),
            response_header: multi(&self.response_header),
            response_status: status,
        })
    }
}

/// An override map: each name may be set once ("overrides are final").
#[derive(Debug, Default)]
struct OverrideMap {
    entries: RefCell<Entries>,
}

impl Object for OverrideMap {
    fn property(&self, name: &str) -> Option<Result<Value, String>> {
        Some(Ok(self
            .entries
            .borrow()
            .get(name)
            .cloned()
            .unwrap_or(Value::Null)))
    }
    fn set(&self, name: &str, value: Value) -> Option<Result<(), String>> {
        let mut entries = self.entries.borrow_mut();
        if entries.contains_key(name) {
            return Some(Err(format!(
                "override {name} is set twice: an override may be applied once"
            )));
        }
        entries.insert(Rc::from(name), value);
        Some(Ok(()))
    }
    fn text(&self) -> String {
        self.plain().map(|p| p.to_text()).unwrap_or_default()
    }
    fn plain(&self) -> Option<Value> {
        Some(Value::Map(Map::new(self.entries.borrow().clone(), false)))
    }
}

/// `$context.requestOverride`: `header`, `path`, `querystring`.
#[derive(Debug)]
struct OverrideGroup(Vec<(String, Rc<OverrideMap>)>);

impl Object for OverrideGroup {
    fn property(&self, name: &str) -> Option<Result<Value, String>> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, map)| Ok(Value::Object(map.clone())))
    }
    fn text(&self) -> String {
        let mut out = String::from("{");
        for (i, (name, map)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(&map.text());
        }
        out.push('}');
        out
    }
}

/// `$context.responseOverride`: `header` and `status`.
#[derive(Debug)]
struct ResponseOverride {
    header: Rc<OverrideMap>,
    status: Rc<RefCell<Option<Value>>>,
}

impl Object for ResponseOverride {
    fn property(&self, name: &str) -> Option<Result<Value, String>> {
        match name {
            "header" => Some(Ok(Value::Object(self.header.clone()))),
            "status" => Some(Ok(self.status.borrow().clone().unwrap_or(Value::Null))),
            _ => None,
        }
    }
    fn set(&self, name: &str, value: Value) -> Option<Result<(), String>> {
        if name != "status" {
            return None;
        }
        let mut status = self.status.borrow_mut();
        if status.is_some() {
            return Some(Err(
                "override status is set twice: an override may be applied once".into(),
            ));
        }
        *status = Some(value);
        Some(Ok(()))
    }
    fn text(&self) -> String {
        let status = self
            .status
            .borrow()
            .as_ref()
            .map(Value::to_text)
            .unwrap_or_default();
        format!("{{header={}, status={status}}}", self.header.text())
    }
}

/// `$input`.
#[derive(Debug)]
struct Input {
    input: Rc<MappingInput>,
    /// `$input.body` as a value, made on first use.
    body: OnceCell<Rc<str>>,
    /// The body parsed as JSON, on first use; `None` when it is not JSON.
    json: OnceCell<Option<Value>>,
    /// `$input.params()`, made on first use.
    params: OnceCell<Value>,
}

impl Input {
    fn new(input: Rc<MappingInput>) -> Self {
        Self {
            input,
            body: OnceCell::new(),
            json: OnceCell::new(),
            params: OnceCell::new(),
        }
    }

    /// The body's text: an empty body reads as `{}`, as in API Gateway.
    fn text(&self) -> &str {
        if self.input.body.is_empty() {
            "{}"
        } else {
            &self.input.body
        }
    }

    fn body(&self) -> Rc<str> {
        self.body.get_or_init(|| Rc::from(self.text())).clone()
    }

    fn document(&self) -> Option<Value> {
        self.json
            .get_or_init(|| Value::from_json(self.text()).ok())
            .clone()
    }

    fn select(&self, path: &Value) -> Result<Value, String> {
        let text = path.to_text();
        let path = Path::parse(if text.is_empty() { "$" } else { &text })?;
        Ok(match self.document() {
            Some(doc) => path.select(&doc),
            // A body that is not JSON is itself at `$`, and nothing is below it.
            None if path.is_definite() && text.trim() == "$" => Value::Str(self.body()),
            None => Value::Null,
        })
    }

    fn params(&self) -> Value {
        self.params
            .get_or_init(|| {
                let map = |m: &IndexMap<String, String>| {
                    Value::Map(Map::new(
                        m.iter()
                            .map(|(k, v)| (Rc::from(k.as_str()), Value::from(v.as_str())))
                            .collect(),
                        false,
                    ))
                };
                let params = &self.input.params;
                let header = Headers(Map::new(
                    params
                        .header
                        .iter()
                        .filter(|(k, _)| !hidden(k))
                        .map(|(k, v)| (Rc::from(k.as_str()), Value::from(v.as_str())))
                        .collect(),
                    false,
                ));
                Value::map([
                    (Rc::from("path"), map(&params.path)),
                    (Rc::from("querystring"), map(&params.querystring)),
                    (Rc::from("header"), Value::Object(Rc::new(header))),
                ])
            })
            .clone()
    }

    /// `$input.params(name)`: path, then query, then header (any case); `""` when absent.
    fn param(&self, name: &str) -> Value {
        let params = &self.input.params;
        let found = params
            .path
            .get(name)
            .or_else(|| params.querystring.get(name))
            .or_else(|| {
                params
                    .header
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name) && !hidden(k))
                    .map(|(_, v)| v)
            });
        Value::from(found.map_or("", String::as_str))
    }
}

/// A header templates do not see.
fn hidden(name: &str) -> bool {
    HIDDEN_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

impl Object for Input {
    fn property(&self, name: &str) -> Option<Result<Value, String>> {
        match name {
            "body" => Some(Ok(Value::Str(self.body()))),
            _ => None,
        }
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        Some(match (name, args) {
            ("path", [path]) => self.select(path),
            ("json", [path]) => self.select(path).map(|v| match v {
                // A non-JSON body at `$` is given back as it is.
                Value::Str(s) if self.document().is_none() => Value::Str(s),
                v => Value::from(v.to_json()),
            }),
            ("json", []) => self
                .select(&Value::from("$"))
                .map(|v| Value::from(v.to_json())),
            ("params", []) => Ok(self.params()),
            ("params", [name]) => Ok(self.param(&name.to_text())),
            ("body", []) => Ok(Value::Str(self.body())),
            _ => return None,
        })
    }
    fn text(&self) -> String {
        "$input".into()
    }
}

/// The header map of `$input.params()`: a map whose names match without regard to case.
#[derive(Debug)]
struct Headers(Map);

impl Headers {
    fn lookup(&self, name: &str) -> Option<Value> {
        self.0.get(name).or_else(|| {
            self.0
                .entries
                .borrow()
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    }
}

impl Object for Headers {
    fn property(&self, name: &str) -> Option<Result<Value, String>> {
        Some(Ok(self.lookup(name).unwrap_or(Value::Null)))
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match (name, args) {
            ("get", [key]) => Some(Ok(self.lookup(&key.to_text()).unwrap_or(Value::Null))),
            ("containsKey", [key]) => Some(Ok(Value::Bool(self.lookup(&key.to_text()).is_some()))),
            _ => None,
        }
    }
    fn text(&self) -> String {
        Value::Map(self.0.clone()).to_text()
    }
    fn plain(&self) -> Option<Value> {
        Some(Value::Map(self.0.clone()))
    }
}

/// `$util`.
#[derive(Debug)]
struct Util;

impl Object for Util {
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let [arg] = args else {
            return None;
        };
        if arg.is_null() {
            return Some(Ok(Value::Null));
        }
        let text = arg.to_text();
        Some(match name {
            "escapeJavaScript" => Ok(Value::from(escape_javascript(&text))),
            "parseJson" => {
                Value::from_json(&text).map_err(|e| format!("$util.parseJson: not JSON: {e}"))
            }
            "urlEncode" => Ok(Value::from(
                form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>(),
            )),
            "urlDecode" => Ok(Value::from(
                form_urlencoded::parse(format!("x={text}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default(),
            )),
            "base64Encode" => Ok(Value::from(
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            )),
            "escapeXml" => Ok(Value::from(escape_xml(&text))),
            "parseXml" => parse_xml(&text),
            "base64Decode" => base64::engine::general_purpose::STANDARD
                .decode(text.trim().as_bytes())
                .map(|bytes| Value::from(String::from_utf8_lossy(&bytes).into_owned()))
                .map_err(|e| format!("$util.base64Decode: not base64: {e}")),
            _ => return None,
        })
    }
    fn text(&self) -> String {
        "$util".into()
    }
}

/// `$util.escapeXml(s)` (Edgeway's, for templates that build XML): `&`, `<`, `>`, `"`
/// and `'` as entities.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `$util.parseXml(s)` (Edgeway's, for XML answers such as SOAP's): the document as maps,
/// keyed by local names (prefixes and namespaces dropped). An element with only text is
/// its text; one with children or attributes is a map of its children (a repeated name is
/// a list), its attributes as `@name` and its text as `#text`. The root element is the
/// map's one key: `<a><b>1</b><b>2</b></a>` is `{a={b=[1, 2]}}`.
fn parse_xml(text: &str) -> Result<Value, String> {
    let document =
        roxmltree::Document::parse(text).map_err(|e| format!("$util.parseXml: not XML: {e}"))?;
    let root = document.root_element();
    Ok(Value::map([(
        Rc::from(root.tag_name().name()),
        xml_value(root),
    )]))
}

fn xml_value(node: roxmltree::Node<'_, '_>) -> Value {
    let children: Vec<_> = node
        .children()
        .filter(roxmltree::Node::is_element)
        .collect();
    let text: String = node
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect();
    if children.is_empty() && node.attributes().len() == 0 {
        return Value::from(text.trim());
    }
    let mut entries = Entries::default();
    for attribute in node.attributes() {
        entries.insert(
            Rc::from(format!("@{}", attribute.name())),
            Value::from(attribute.value()),
        );
    }
    for child in children {
        let key: Rc<str> = Rc::from(child.tag_name().name());
        let value = xml_value(child);
        match entries.get_mut(&key) {
            Some(Value::List(list)) => list.items.borrow_mut().push(value),
            Some(existing) => {
                let first = std::mem::take(existing);
                *existing = Value::list(vec![first, value]);
            }
            None => {
                entries.insert(key, value);
            }
        }
    }
    if !text.trim().is_empty() {
        entries.insert(Rc::from("#text"), Value::from(text.trim()));
    }
    Value::Map(Map::new(entries, false))
}

/// Apache Commons Lang's `StringEscapeUtils.escapeJavaScript`, which API Gateway runs:
/// quotes, backslash and `/` escaped; control characters and everything past ASCII as
/// `\uXXXX` (upper-case hex).
pub fn escape_javascript(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 || u32::from(c) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The status a mock integration's request template chose: `statusCode` in its output,
/// read leniently as API Gateway does (`{statusCode: 404}` is not JSON, and is accepted).
pub fn mock_status(body: &str) -> Option<u16> {
    let at = body.find("statusCode")?;
    let rest = body[at + "statusCode".len()..].trim_start();
    let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest).trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|s| (100..=599).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_statuses() {
        assert_eq!(mock_status(r#"{"statusCode": 200}"#), Some(200));
        assert_eq!(mock_status("{statusCode: 404}"), Some(404));
        assert_eq!(mock_status("{ 'statusCode' : '503' }"), Some(503));
        assert_eq!(mock_status("{}"), None);
        assert_eq!(mock_status(r#"{"statusCode": 42}"#), None);
    }

    #[test]
    fn javascript_escapes() {
        assert_eq!(
            escape_javascript("it's \"q\" a/b\\c\n\u{1}é😀"),
            "it\\'s \\\"q\\\" a\\/b\\\\c\\n\\u0001\\u00E9\\uD83D\\uDE00"
        );
    }
}
