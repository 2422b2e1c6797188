//! A JSON tree that keeps its keys in document order.
//!
//! OpenAPI documents are read into this rather than `serde_json::Value` (whose maps sort their
//! keys in this build) because order carries meaning in what they map to: the first mapping
//! template of an integration is API Gateway's fallback, and a user reading the imported
//! definition expects routes and fields in the order they wrote them.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// One JSON value; objects keep insertion order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Tree {
    #[default]
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Tree>),
    Object(IndexMap<String, Tree>),
}

/// An object in document order.
pub type Object = IndexMap<String, Tree>;

impl Tree {
    pub fn get(&self, key: &str) -> Option<&Tree> {
        match self {
            Self::Object(map) => map.get(key),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Self::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Tree]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A number, or a string holding one (API Gateway exports write `"statusCode": "200"`
    /// and `"authorizerResultTtlInSeconds": "300"` as often as numbers).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) => n.as_u64(),
            Self::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A scalar as text: strings as they are, numbers and booleans printed.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Self::String(s) => Some(s.clone()),
            Self::Number(n) => Some(n.to_string()),
            Self::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Number(_) => "a number",
            Self::String(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }

    /// The same value as `serde_json` holds it (for JSON Schemas, whose key order is free).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
            Self::String(s) => Value::String(s.clone()),
            Self::Array(items) => Value::Array(items.iter().map(Tree::to_json).collect()),
            Self::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// From a `serde_json` value (keys in its order).
    pub fn from_json(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => Self::Number(n.clone()),
            Value::String(s) => Self::String(s.clone()),
            Value::Array(items) => Self::Array(items.iter().map(Tree::from_json).collect()),
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Tree::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The value at a JSON pointer (`/paths/~1pets/get`) below this one.
    pub fn pointer(&self, pointer: &str) -> Option<&Tree> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut at = self;
        for token in pointer.strip_prefix('/')?.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            at = match at {
                Self::Object(map) => map.get(&token)?,
                Self::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }
}

impl From<&str> for Tree {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Tree {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<bool> for Tree {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<u64> for Tree {
    fn from(n: u64) -> Self {
        Self::Number(n.into())
    }
}

impl From<Object> for Tree {
    fn from(map: Object) -> Self {
        Self::Object(map)
    }
}

impl From<Vec<Tree>> for Tree {
    fn from(items: Vec<Tree>) -> Self {
        Self::Array(items)
    }
}

/// One token of a JSON pointer: `~` and `/` escaped (RFC 6901).
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Number(n) => n.serialize(serializer),
            Self::String(s) => serializer.serialize_str(s),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    out.serialize_entry(k, v)?;
                }
                out.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
        serde_json::Number::from_f64(v)
            .map(Tree::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a JSON number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::String(v))
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Key>()? {
            out.insert(key.0, map.next_value()?);
        }
        Ok(Tree::Object(out))
    }
}

/// A map key: YAML allows `200:` where JSON writes `"200":`; both are the text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Key, E> {
                Ok(Key(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_document_order_in_json_and_yaml() {
        let json: Tree = serde_json::from_str(r#"{"b": 1, "a": {"z": true, "x": null}}"#).unwrap();
        let yaml: Tree = serde_saphyr::from_str("b: 1\na:\n  z: true\n  x: null\n").unwrap();
        assert_eq!(json, yaml);
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"{"b":1,"a":{"z":true,"x":null}}"#
        );
    }

    #[test]
    fn yaml_number_keys_are_text() {
        let yaml: Tree = serde_saphyr::from_str("200: ok\n4\\d{2}: bad\n").unwrap();
        let keys: Vec<&String> = yaml.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["200", "4\\d{2}"]);
    }

    #[test]
    fn pointers_unescape_tokens() {
        let tree: Tree =
            serde_json::from_str(r#"{"paths": {"/pets/{id}": {"get": [1, 2]}}}"#).unwrap();
        let at = format!("/paths/{}/get/1", escape("/pets/{id}"));
        assert_eq!(tree.pointer(&at), Some(&Tree::from(2u64)));
        assert_eq!(tree.pointer("/paths/nope"), None);
    }
}
