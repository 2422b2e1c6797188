//! A transformer that rewrites request and response headers.
//!
//! ```json
//! { "request":  { "rename": { "x-old": "x-new" }, "remove": ["cookie"],
//!                 "set": { "x-env": "prod" }, "add": { "via": "edgeway" } },
//!   "response": { "remove": ["server"], "set": { "cache-control": "no-store" } } }
//! ```
//!
//! Both sides and all four operations are optional. Header names match in any case and are
//! written lowercase. Each side applies its operations in this order:
//!
//! 1. `rename` `{from: to}`: every `from` header becomes `to`, keeping its value and place;
//! 2. `remove` `[name]`: every value of `name` goes;
//! 3. `set` `{name: value}`: `name` ends up with exactly this one value (replacing the first
//!    occurrence in place, dropping later ones, appending when absent);
//! 4. `add` `{name: value}`: one more `name: value` at the end.
//!
//! So a header renamed can be removed or set under its new name, and `set` then `add` of
//! one name gives two values. Entries within an operation apply in config order. Names must
//! be valid HTTP header names and values must not contain control characters other than
//! tab; the config is rejected at load otherwise, naming the entry.

use std::fmt;

use edgeway_plugin_sdk::{
    Error, HeaderList, Headers, Request, RequestFlow, Response, Transformer, config,
    export_transformer,
};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    request: Rules,
    #[serde(default)]
    response: Rules,
}

/// One side's rewrites, names lowercased, in the order they apply.
#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct Rules {
    #[serde(default, deserialize_with = "ordered_pairs")]
    rename: Vec<(String, String)>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default, deserialize_with = "ordered_pairs")]
    set: Vec<(String, String)>,
    #[serde(default, deserialize_with = "ordered_pairs")]
    add: Vec<(String, String)>,
}

impl Rules {
    fn is_empty(&self) -> bool {
        self.rename.is_empty()
            && self.remove.is_empty()
            && self.set.is_empty()
            && self.add.is_empty()
    }

    /// Lowercases the names and checks names and values; `side` names the rules in errors.
    fn validated(mut self, side: &str) -> Result<Self, Error> {
        let check_name = |op: &str, name: &mut String| {
            if !is_header_name(name) {
                return Err(Error::msg(format!(
                    "header-rewrite config: {side}.{op}: `{name}` is not a valid header name"
                )));
            }
            name.make_ascii_lowercase();
            Ok(())
        };
        let check_value = |op: &str, name: &str, value: &str| {
            if value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(Error::msg(format!(
                    "header-rewrite config: {side}.{op}.{name}: the value contains a control character"
                )));
            }
            Ok(())
        };
        for (from, to) in &mut self.rename {
            check_name("rename", from)?;
            check_name("rename", to)?;
        }
        for name in &mut self.remove {
            check_name("remove", name)?;
        }
        for (op, pairs) in [("set", &mut self.set), ("add", &mut self.add)] {
            for (name, value) in pairs.iter_mut() {
                check_name(op, name)?;
                check_value(op, name, value)?;
            }
        }
        Ok(self)
    }

    fn apply(&self, headers: &mut Headers) {
        for (from, to) in &self.rename {
            headers.rename_header(from, to);
        }
        for name in &self.remove {
            headers.remove_header(name);
        }
        for (name, value) in &self.set {
            headers.set_header(name, value.as_str());
        }
        for (name, value) in &self.add {
            headers.add_header(name, value.as_str());
        }
    }
}

/// RFC 9110 `token`: the characters a header name may have.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A JSON object as `(key, value)` pairs in document order (a map type would sort them or
/// lose duplicates).
fn ordered_pairs<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<(String, String)>, D::Error> {
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of header names to strings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(pair) = map.next_entry::<String, String>()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }
    de.deserialize_map(Pairs)
}

struct HeaderRewrite {
    request: Rules,
    response: Rules,
}

impl HeaderRewrite {
    fn from_config(config: Config) -> Result<Self, Error> {
        Ok(HeaderRewrite {
            request: config.request.validated("request")?,
            response: config.response.validated("response")?,
        })
    }
}

impl Transformer for HeaderRewrite {
    fn new() -> Result<Self, Error> {
        Self::from_config(config()?)
    }

    fn on_request(&self, mut request: Request) -> Result<RequestFlow, Error> {
        if !self.request.is_empty() {
            self.request.apply(&mut request.headers);
        }
        Ok(RequestFlow::Continue(request))
    }

    fn on_response(&self, _request: Request, mut response: Response) -> Result<Response, Error> {
        if !self.response.is_empty() {
            self.response.apply(&mut response.headers);
        }
        Ok(response)
    }
}

export_transformer!(HeaderRewrite);

#[cfg(test)]
mod tests {
    use edgeway_plugin_sdk::config_from_json;

    use super::*;

    fn rewrite(json: &str) -> Result<HeaderRewrite, Error> {
        HeaderRewrite::from_config(config_from_json(json)?)
    }

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn applies_rename_remove_set_add_in_that_order() {
        let plugin = rewrite(
            r#"{ "request": {
                "add": { "X-Old": "added", "b": "2" },
                "set": { "x-old": "set" },
                "remove": ["X-Gone"],
                "rename": { "x-gone-soon": "x-gone", "X-Keep": "x-old" } } }"#,
        )
        .unwrap();
        let mut h = headers(&[
            ("x-keep", "k"),
            ("x-gone-soon", "1"),
            ("x-gone", "2"),
            ("a", "1"),
        ]);
        plugin.request.apply(&mut h);
        // rename: x-keep→x-old, x-gone-soon→x-gone; remove x-gone (both);
        // set x-old=set in place; add x-old and b at the end in config order.
        assert_eq!(
            h,
            headers(&[("x-old", "set"), ("a", "1"), ("x-old", "added"), ("b", "2")])
        );
        assert!(plugin.response.is_empty());
    }

    #[test]
    fn response_side_only() {
        let plugin = rewrite(r#"{ "response": { "remove": ["server"] } }"#).unwrap();
        let mut h = headers(&[("Server", "x"), ("date", "d")]);
        plugin.response.apply(&mut h);
        assert_eq!(h, headers(&[("date", "d")]));
    }

    #[test]
    fn no_config_means_no_changes() {
        let plugin = rewrite("null").unwrap();
        assert!(plugin.request.is_empty() && plugin.response.is_empty());
    }

    #[test]
    fn rejects_bad_names_values_and_keys() {
        let err = rewrite(r#"{ "request": { "set": { "bad name": "x" } } }"#)
            .err()
            .unwrap();
        assert!(err.message().contains("request.set: `bad name`"), "{err}");
        let err = rewrite(r#"{ "response": { "add": { "x": "a\nb" } } }"#)
            .err()
            .unwrap();
        assert!(err.message().contains("response.add.x"), "{err}");
        let err = rewrite(r#"{ "request": { "append": {} } }"#).err().unwrap();
        assert!(err.message().contains("unknown field `append`"), "{err}");
        let err = rewrite(r#"{ "request": { "set": { "x": 1 } } }"#)
            .err()
            .unwrap();
        assert!(err.message().contains("request.set"), "{err}");
    }
}
