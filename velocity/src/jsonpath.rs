//! JSONPath as API Gateway templates use it (`$input.path`, `$input.json`, parameter
//! mappings' `method.request.body.a.b`).
//!
//! Supported: `$`, `.name`, `['name']` and `["name"]` (any characters, `-` included),
//! `[n]` (negative counts from the end), `[a,b]` unions of indexes or names, `[start:end]`
//! slices, `*` and `[*]`, and `..` (deep scan). Not supported: filters (`[?(...)]`) and
//! script expressions (`[(...)]`): a path with one is an error, never a silent miss.
//!
//! A definite path (names and single indexes only) gives its one value, or null when the
//! document has nothing there; a path with a wildcard, union, slice or deep scan gives the
//! list of what it matched, as Jayway's JsonPath (which API Gateway runs) does.

use crate::value::{List, Value};

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Name(Box<str>),
    Index(i64),
    Names(Vec<Box<str>>),
    Indexes(Vec<i64>),
    Slice(Option<i64>, Option<i64>),
    Wildcard,
    /// `..name`, `..*`, `..[...]`: the segment applied at every depth.
    Deep(Box<Segment>),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    segments: Vec<Segment>,
}

impl Path {
    /// Parses a path; `$` may be left off (`a.b` is `$.a.b`).
    pub fn parse(text: &str) -> Result<Path, String> {
        let bytes = text.trim().as_bytes();
        let text = text.trim();
        let mut pos = 0;
        if bytes.first() == Some(&b'$') {
            pos = 1;
        } else if !bytes.is_empty() && bytes[0] != b'.' && bytes[0] != b'[' {
            // `a.b`: a name first.
            return Path::parse(&format!("$.{text}"));
        }
        let mut segments = Vec::new();
        while pos < bytes.len() {
            match bytes[pos] {
                b'.' if bytes.get(pos + 1) == Some(&b'.') => {
                    pos += 2;
                    let inner = if bytes.get(pos) == Some(&b'[') {
                        let (segment, next) = bracket(text, pos)?;
                        pos = next;
                        segment
                    } else {
                        let (segment, next) = dotted(text, pos)?;
                        pos = next;
                        segment
                    };
                    segments.push(Segment::Deep(Box::new(inner)));
                }
                b'.' => {
                    let (segment, next) = dotted(text, pos + 1)?;
                    segments.push(segment);
                    pos = next;
                }
                b'[' => {
                    let (segment, next) = bracket(text, pos)?;
                    segments.push(segment);
                    pos = next;
                }
                _ => {
                    return Err(format!(
                        "JSONPath {text:?}: unexpected {:?} at {pos}",
                        char::from(bytes[pos])
                    ));
                }
            }
        }
        Ok(Path { segments })
    }

    /// Whether the path names at most one value.
    pub fn is_definite(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Name(_) | Segment::Index(_)))
    }

    /// What the path selects in `root`: one value (or null) for a definite path, else the
    /// list of matches.
    pub fn select(&self, root: &Value) -> Value {
        if self.is_definite() {
            let mut current = root.plain();
            for segment in &self.segments {
                let next = match segment {
                    Segment::Name(name) => child(&current, name),
                    Segment::Index(i) => element(&current, *i),
                    _ => None,
                };
                match next {
                    Some(v) => current = v.plain(),
                    None => return Value::Null,
                }
            }
            return current;
        }
        let mut current = vec![root.plain()];
        for segment in &self.segments {
            let mut next = Vec::new();
            for value in &current {
                apply(segment, value, &mut next);
            }
            current = next;
        }
        Value::List(List::new(current, true))
    }
}

fn dotted(text: &str, start: usize) -> Result<(Segment, usize), String> {
    let bytes = text.as_bytes();
    if bytes.get(start) == Some(&b'*') {
        return Ok((Segment::Wildcard, start + 1));
    }
    let mut end = start;
    while end < bytes.len() && bytes[end] != b'.' && bytes[end] != b'[' {
        end += 1;
    }
    if end == start {
        return Err(format!("JSONPath {text:?}: a name is missing at {start}"));
    }
    Ok((Segment::Name(Box::from(&text[start..end])), end))
}

fn bracket(text: &str, open: usize) -> Result<(Segment, usize), String> {
    let rest = &text[open + 1..];
    let bytes = rest.as_bytes();
    if bytes.first() == Some(&b'?') || bytes.first() == Some(&b'(') {
        return Err(format!(
            "JSONPath {text:?}: filters and script expressions are not supported"
        ));
    }
    // Names in quotes may hold `]` and `,`.
    let mut names = Vec::new();
    let mut p = 0;
    let skip_space = |p: &mut usize| {
        while bytes.get(*p).is_some_and(u8::is_ascii_whitespace) {
            *p += 1;
        }
    };
    skip_space(&mut p);
    if matches!(bytes.first(), Some(b'\'' | b'"')) {
        loop {
            skip_space(&mut p);
            let quote = match bytes.get(p) {
                Some(&q @ (b'\'' | b'"')) => q,
                _ => return Err(format!("JSONPath {text:?}: expected a quoted name")),
            };
            let Some(len) = rest[p + 1..].find(char::from(quote)) else {
                return Err(format!("JSONPath {text:?}: unclosed quote"));
            };
            names.push(Box::from(&rest[p + 1..p + 1 + len]));
            p += len + 2;
            skip_space(&mut p);
            match bytes.get(p) {
                Some(b',') => p += 1,
                Some(b']') => break,
                _ => return Err(format!("JSONPath {text:?}: expected , or ] after a name")),
            }
        }
        let segment = if names.len() == 1 {
            Segment::Name(names.remove(0))
        } else {
            Segment::Names(names)
        };
        return Ok((segment, open + 1 + p + 1));
    }
    let Some(close) = rest.find(']') else {
        return Err(format!("JSONPath {text:?}: unclosed ["));
    };
    let inner = rest[..close].trim();
    let next = open + 1 + close + 1;
    if inner == "*" {
        return Ok((Segment::Wildcard, next));
    }
    let number = |s: &str| -> Result<i64, String> {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("JSONPath {text:?}: {s:?} is not an index"))
    };
    if let Some((a, b)) = inner.split_once(':') {
        let bound = |s: &str| -> Result<Option<i64>, String> {
            if s.trim().is_empty() {
                Ok(None)
            } else {
                number(s).map(Some)
            }
        };
        return Ok((Segment::Slice(bound(a)?, bound(b)?), next));
    }
    if inner.contains(',') {
        let indexes = inner
            .split(',')
            .map(number)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((Segment::Indexes(indexes), next));
    }
    Ok((Segment::Index(number(inner)?), next))
}

fn child(value: &Value, name: &str) -> Option<Value> {
    match value {
        Value::Map(map) => map.get(name),
        _ => None,
    }
}

fn element(value: &Value, index: i64) -> Option<Value> {
    let Value::List(list) = value else {
        return None;
    };
    let items = list.items.borrow();
    let len = i64::try_from(items.len()).ok()?;
    let i = if index < 0 { index + len } else { index };
    items.get(usize::try_from(i).ok()?).cloned()
}

fn apply(segment: &Segment, value: &Value, out: &mut Vec<Value>) {
    match segment {
        Segment::Name(name) => out.extend(child(value, name)),
        Segment::Index(i) => out.extend(element(value, *i)),
        Segment::Names(names) => out.extend(names.iter().filter_map(|n| child(value, n))),
        Segment::Indexes(indexes) => out.extend(indexes.iter().filter_map(|&i| element(value, i))),
        Segment::Slice(start, end) => {
            if let Value::List(list) = value {
                let items = list.items.borrow();
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let clamp = |i: i64| (if i < 0 { i + len } else { i }).clamp(0, len);
                let a = clamp(start.unwrap_or(0));
                let b = clamp(end.unwrap_or(len));
                if a < b {
                    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
                    out.extend(items[a as usize..b as usize].iter().cloned());
                }
            }
        }
        Segment::Wildcard => match value {
            Value::Map(map) => out.extend(map.entries.borrow().values().cloned()),
            Value::List(list) => out.extend(list.items.borrow().iter().cloned()),
            _ => {}
        },
        Segment::Deep(inner) => {
            apply(inner, value, out);
            let children: Vec<Value> = match value {
                Value::Map(map) => map.entries.borrow().values().cloned().collect(),
                Value::List(list) => list.items.borrow().clone(),
                _ => Vec::new(),
            };
            for c in &children {
                apply(segment, c, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(doc: &str, path: &str) -> String {
        let root = Value::from_json(doc).unwrap();
        Path::parse(path).unwrap().select(&root).to_json()
    }

    #[test]
    fn the_paths_templates_use() {
        let doc = r#"{"a":{"b":[{"c":1},{"c":2,"d":{"c":3}}]},"x-y":"z","n":null}"#;
        assert_eq!(select(doc, "$"), doc);
        assert_eq!(select(doc, "$.a.b[0].c"), "1");
        assert_eq!(select(doc, "$.a.b[-1].c"), "2");
        assert_eq!(select(doc, "$['x-y']"), r#""z""#);
        assert_eq!(select(doc, "$[\"x-y\"]"), r#""z""#);
        assert_eq!(select(doc, "$.a.b[*].c"), "[1,2]");
        assert_eq!(select(doc, "$..c"), "[1,2,3]");
        assert_eq!(select(doc, "$.a.b[0:1]"), r#"[{"c":1}]"#);
        assert_eq!(select(doc, "$.a.b[0,1].c"), "[1,2]");
        assert_eq!(select(doc, "$.missing.deeper"), "null");
        assert_eq!(select(doc, "a.b[1].d.c"), "3");
        assert!(Path::parse("$.a[?(@.c > 1)]").is_err());
        assert!(Path::parse("$.a[").is_err());
    }
}
