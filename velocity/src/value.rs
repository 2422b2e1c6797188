//! The values a template works with: JSON's, plus ranges, host objects and `#define` blocks.
//!
//! Lists and maps are shared and mutable, as Java's are in Velocity: `#set($a = $b)` makes
//! both names one list, and `$a.add(1)` is seen through `$b`. Maps keep insertion order, as
//! the JSON objects API Gateway hands templates do.
//!
//! How a value prints ([`Value::write_text`]) follows API Gateway, not stock Velocity:
//! - a map prints the Java way, `{a=1, b=two}`;
//! - a list from a JSON document (`$input.path`, `$util.parseJson`) prints as compact JSON,
//!   nested maps included (`[{"nested":"bar"}]`), and so does such a list inside a map
//!   (`{foo=[{"nested":"bar"}]}`); a list made in the template prints the Java way, `[1, 2]`;
//! - a decimal number prints as Java's `Double.toString` does (`1.0`, `249.99`, `1.0E10`).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;

use indexmap::IndexMap;

/// A map's entries: insertion order, and a fast hasher (keys are short; the seed is random).
pub type Entries = IndexMap<Rc<str>, Value, foldhash::fast::RandomState>;

use crate::parse::Block;

/// A template value.
#[derive(Clone, Default)]
pub enum Value {
    /// Null, and what an undefined reference evaluates to.
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(List),
    Map(Map),
    /// A host object (`$input`, `$util`, `$foreach`, an override map).
    Object(Rc<dyn Object>),
    /// A `#define` block: rendered where it is used.
    Block(Rc<Block>),
}

/// A shared, mutable list.
#[derive(Clone)]
pub struct List {
    pub items: Rc<RefCell<Vec<Value>>>,
    /// Made from a JSON document: prints as JSON.
    pub json: bool,
}

/// A shared, mutable map in insertion order.
#[derive(Clone)]
pub struct Map {
    pub entries: Rc<RefCell<Entries>>,
    /// Made from a JSON document: its lists print as JSON.
    pub json: bool,
}

/// Why a host object refused a call.
pub type ObjectResult = Result<Value, String>;

/// A value the host provides, with its own properties and methods.
pub trait Object {
    /// What `$obj.name` reads; `None` when there is no such property.
    fn property(&self, _name: &str) -> Option<ObjectResult> {
        None
    }
    /// What `$obj.name(args)` returns; `None` when there is no such method.
    fn call(&self, _name: &str, _args: &[Value]) -> Option<ObjectResult> {
        None
    }
    /// `#set($obj.name = value)`; `None` when the object takes no such property.
    fn set(&self, _name: &str, _value: Value) -> Option<Result<(), String>> {
        None
    }
    /// How the object prints.
    fn text(&self) -> String;
    /// The object as a plain value, where it has one (an override map is a map).
    fn plain(&self) -> Option<Value> {
        None
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Float(x) => write!(f, "Float({x})"),
            Value::Str(s) => write!(f, "Str({s:?})"),
            Value::List(l) => f.debug_list().entries(l.items.borrow().iter()).finish(),
            Value::Map(m) => f.debug_map().entries(m.entries.borrow().iter()).finish(),
            Value::Object(o) => write!(f, "Object({})", o.text()),
            Value::Block(_) => f.write_str("Block"),
        }
    }
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.items.borrow().iter()).finish()
    }
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.entries.borrow().iter()).finish()
    }
}

impl List {
    pub fn new(items: Vec<Value>, json: bool) -> Self {
        Self {
            items: Rc::new(RefCell::new(items)),
            json,
        }
    }
}

impl Map {
    pub fn new(entries: Entries, json: bool) -> Self {
        Self {
            entries: Rc::new(RefCell::new(entries)),
            json,
        }
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.entries.borrow().get(key).cloned()
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl Value {
    /// A list made in the template (prints the Java way).
    pub fn list(items: Vec<Value>) -> Self {
        Value::List(List::new(items, false))
    }

    /// A map made in the template or by the host.
    pub fn map(entries: impl IntoIterator<Item = (Rc<str>, Value)>) -> Self {
        Value::Map(Map::new(entries.into_iter().collect(), false))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Velocity 1.7's truth: only null and `false` are false.
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer index or count, when it is a number.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            #[allow(clippy::cast_possible_truncation)]
            Value::Float(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(*x as i64),
            _ => None,
        }
    }

    /// The value as its host object's plain value, where it has one.
    pub fn plain(&self) -> Value {
        match self {
            Value::Object(o) => o.plain().unwrap_or_else(|| self.clone()),
            _ => self.clone(),
        }
    }

    /// The text a reference to this value renders (`Null` renders nothing; blocks are
    /// rendered by the evaluator, which has the context they need).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out, true);
        out
    }

    /// Appends how the value prints. `top` is false inside a map or list, where null prints
    /// as `null` (Java's `String.valueOf`).
    pub fn write_text(&self, out: &mut String, top: bool) {
        match self {
            Value::Null => {
                if !top {
                    out.push_str("null");
                }
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(x) => write_java_double(out, *x),
            Value::Str(s) => out.push_str(s),
            Value::List(list) if list.json => write_json(self, out),
            Value::List(list) => {
                out.push('[');
                for (i, item) in list.items.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_text(out, false);
                }
                out.push(']');
            }
            Value::Map(map) => {
                out.push('{');
                for (i, (key, value)) in map.entries.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(key);
                    out.push('=');
                    value.write_text(out, false);
                }
                out.push('}');
            }
            Value::Object(o) => out.push_str(&o.text()),
            Value::Block(_) => {}
        }
    }

    /// The value as compact JSON (`$input.json`, a JSON list printing itself).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        write_json(self, &mut out);
        out
    }

    /// Parses JSON text into a value that keeps the document's key order and prints as API
    /// Gateway prints JSON values.
    pub fn from_json(text: &str) -> Result<Value, serde_json::Error> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(text);
        let keys = RefCell::new(Keys::default());
        let value = JsonSeed { keys: &keys }.deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }

    /// A copy of a JSON-like value built from `serde_json` (the host's records).
    pub fn from_serde(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => number(n),
            serde_json::Value::String(s) => Value::Str(s.as_str().into()),
            serde_json::Value::Array(items) => Value::List(List::new(
                items.iter().map(Value::from_serde).collect(),
                true,
            )),
            serde_json::Value::Object(entries) => Value::Map(Map::new(
                entries
                    .iter()
                    .map(|(k, v)| (Rc::from(k.as_str()), Value::from_serde(v)))
                    .collect(),
                true,
            )),
        }
    }

    /// The value as `serde_json`'s, for the host (`None` for what JSON cannot hold).
    pub fn to_serde(&self) -> serde_json::Value {
        match self.plain() {
            Value::Null | Value::Block(_) => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(i) => i.into(),
            Value::Float(x) => serde_json::Number::from_f64(x)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::List(l) => {
                serde_json::Value::Array(l.items.borrow().iter().map(Value::to_serde).collect())
            }
            Value::Map(m) => serde_json::Value::Object(
                m.entries
                    .borrow()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_serde()))
                    .collect(),
            ),
            Value::Object(o) => serde_json::Value::String(o.text()),
        }
    }

    /// Deep equality, for the value model's own tests and for `equals` on lists and maps.
    pub fn deep_eq(&self, other: &Value) -> bool {
        match (self.plain(), other.plain()) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                let (a, b) = (a.items.borrow(), b.items.borrow());
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.deep_eq(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                let (a, b) = (a.entries.borrow(), b.entries.borrow());
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|w| v.deep_eq(w)))
            }
            (a, b) => match (a.as_number(), b.as_number()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        }
    }

    /// The value as a number, when it is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }
}

fn number(n: &serde_json::Number) -> Value {
    match n.as_i64() {
        Some(i) => Value::Int(i),
        None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Java's `Double.toString`: `1.0`, `0.5`, `249.99`, `1.0E7`, `1.0E-4`, `NaN`, `Infinity`.
pub fn write_java_double(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    let magnitude = x.abs();
    if magnitude == 0.0 || (1.0e-3..1.0e7).contains(&magnitude) {
        let start = out.len();
        let _ = write!(out, "{x}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
        return;
    }
    // Scientific: shortest digits, one before the point, at least one after.
    let text = format!("{x:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    out.push('E');
    out.push_str(exponent);
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Block(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) if x.is_finite() => write_java_double(out, *x),
        Value::Float(_) => out.push_str("null"),
        Value::Str(s) => write_json_string(out, s),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, v)) in m.entries.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
        Value::Object(o) => match o.plain() {
            Some(plain) => write_json(&plain, out),
            None => write_json_string(out, &o.text()),
        },
    }
}

/// A JSON string literal, escaped as JSON requires (and `/` left alone).
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Keys seen so far in one document: an array of records repeats the same few keys, and
/// each is allocated once.
type Keys = std::collections::HashMap<Box<str>, Rc<str>, foldhash::fast::RandomState>;

/// Deserializes JSON straight into [`Value`], keeping key order without asking `serde_json`
/// for its `preserve_order` feature (which would change every other map in the build).
#[derive(Clone, Copy)]
struct JsonSeed<'k> {
    keys: &'k RefCell<Keys>,
}

impl<'de> serde::de::DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl JsonSeed<'_> {
    fn key(&self, key: &str) -> Rc<str> {
        let mut keys = self.keys.borrow_mut();
        if let Some(k) = keys.get(key) {
            return k.clone();
        }
        let k: Rc<str> = Rc::from(key);
        // Keys are few; a document of many distinct ones (a map keyed by ids) stops
        // interning rather than grow the table without bound.
        if keys.len() < 1024 {
            keys.insert(Box::from(key), k.clone());
        }
        k
    }
}

impl<'de> serde::de::Visitor<'de> for JsonSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        #[allow(clippy::cast_precision_loss)]
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(x))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.into()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::List(List::new(items, true)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries =
            Entries::with_capacity_and_hasher(map.size_hint().unwrap_or(4), Default::default());
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value = map.next_value_seed(self)?;
            entries.insert(self.key(&key), value);
        }
        Ok(Value::Map(Map::new(entries, true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_doubles() {
        let text = |x: f64| {
            let mut s = String::new();
            write_java_double(&mut s, x);
            s
        };
        assert_eq!(text(1.0), "1.0");
        assert_eq!(text(249.99), "249.99");
        assert_eq!(text(0.001), "0.001");
        assert_eq!(text(1.0e7), "1.0E7");
        assert_eq!(text(1.5e-4), "1.5E-4");
        assert_eq!(text(-2.5e10), "-2.5E10");
        assert_eq!(text(0.0), "0.0");
    }

    #[test]
    fn json_values_print_as_api_gateway_prints_them() {
        let v = Value::from_json(r#"{"foo":[{"nested":"bar"}],"b":1,"a":{"x":null}}"#).unwrap();
        assert_eq!(v.to_text(), r#"{foo=[{"nested":"bar"}], b=1, a={x=null}}"#);
        let list = Value::list(vec![Value::Int(1), "two".into(), Value::Null]);
        assert_eq!(list.to_text(), "[1, two, null]");
        assert_eq!(Value::Null.to_text(), "");
        assert_eq!(
            v.to_json(),
            r#"{"foo":[{"nested":"bar"}],"b":1,"a":{"x":null}}"#
        );
    }
}
