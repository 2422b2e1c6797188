//! The Java methods templates call on strings, lists, maps and numbers, with Java's results
//! (`$list.add(x)` is `true`, `$map.put(k, v)` is the previous value, `split` drops trailing
//! empty strings). Regular expressions are Java's as far as `fancy-regex` goes (look-around
//! and back-references included); a replacement's `$1` and `\$` mean what they mean in Java.

use std::rc::Rc;

use crate::Limits;
use crate::eval::equals;
use crate::value::{List, Map, Object, Value};

type Answer = Option<Result<Value, String>>;

/// Calls `name` on `value`; `None` when the value has no such method.
pub(crate) fn call(value: &Value, name: &str, args: &[Value], limits: &Limits) -> Answer {
    let answer = match value {
        Value::Str(s) => string(s, name, args, limits),
        Value::List(list) => self::list(list, name, args),
        Value::Map(map) => self::map(map, name, args),
        Value::Int(_) | Value::Float(_) => number(value, name, args),
        Value::Bool(b) => match (name, args) {
            ("booleanValue", []) => Some(Ok(Value::Bool(*b))),
            _ => None,
        },
        _ => None,
    };
    answer.or_else(|| common(value, name, args))
}

/// What every Java object answers.
fn common(value: &Value, name: &str, args: &[Value]) -> Answer {
    match (name, args) {
        ("toString", []) => Some(Ok(Value::from(value.to_text()))),
        ("equals", [other]) => Some(Ok(Value::Bool(java_equals(value, other)))),
        _ => None,
    }
}

/// `a.equals(b)`: same kind and content (a string never equals a number).
fn java_equals(a: &Value, b: &Value) -> bool {
    let b = b.plain();
    match (a, &b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::List(_), Value::List(_)) | (Value::Map(_), Value::Map(_)) => a.deep_eq(&b),
        _ => false,
    }
}

fn arg_text(args: &[Value], i: usize) -> Option<String> {
    args.get(i).map(|v| match v {
        Value::Null => "null".to_owned(),
        v => v.to_text(),
    })
}

fn arg_int(args: &[Value], i: usize) -> Option<i64> {
    args.get(i).and_then(Value::as_int)
}

fn int(n: usize) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A compiled pattern. Templates call the same few patterns on every request, and compiling
/// one costs far more than using it, so each thread keeps the last patterns it compiled.
fn regex(pattern: &str) -> Result<Rc<fancy_regex::Regex>, String> {
    thread_local! {
        static COMPILED: std::cell::RefCell<Vec<(Box<str>, Rc<fancy_regex::Regex>)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    const KEPT: usize = 32;
    COMPILED.with(|compiled| {
        let mut compiled = compiled.borrow_mut();
        if let Some(i) = compiled.iter().position(|(p, _)| &**p == pattern) {
            let re = compiled[i].1.clone();
            // Most recently used last, so the oldest goes first when the list is full.
            let entry = compiled.remove(i);
            compiled.push(entry);
            return Ok(re);
        }
        let re = Rc::new(
            fancy_regex::Regex::new(pattern)
                .map_err(|e| format!("bad regular expression {pattern:?}: {e}"))?,
        );
        if compiled.len() == KEPT {
            compiled.remove(0);
        }
        compiled.push((pattern.into(), re.clone()));
        Ok(re)
    })
}

/// A Java replacement string (`$1`, `\$`) in `fancy-regex`'s syntax (`${1}`, `$$`).
fn replacement(java: &str) -> String {
    let mut out = String::with_capacity(java.len());
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Character offsets (Java counts UTF-16 units; templates rarely see the difference).
fn char_slice(s: &str, start: usize, end: usize) -> Option<String> {
    let len = s.chars().count();
    if start > end || end > len {
        return None;
    }
    Some(s.chars().skip(start).take(end - start).collect())
}

fn char_index(s: &str, byte: usize) -> usize {
    s[..byte].chars().count()
}

fn string(s: &Rc<str>, name: &str, args: &[Value], limits: &Limits) -> Answer {
    let text = |i| arg_text(args, i);
    Some(Ok(match (name, args.len()) {
        ("length", 0) => int(s.chars().count()),
        ("isEmpty", 0) => Value::Bool(s.is_empty()),
        ("contains", 1) => Value::Bool(s.contains(text(0)?.as_str())),
        ("startsWith", 1) => Value::Bool(s.starts_with(text(0)?.as_str())),
        ("endsWith", 1) => Value::Bool(s.ends_with(text(0)?.as_str())),
        ("equalsIgnoreCase", 1) => Value::Bool(s.to_lowercase() == text(0)?.to_lowercase()),
        ("indexOf", 1 | 2) => {
            let from = usize::try_from(arg_int(args, 1).unwrap_or(0).max(0)).ok()?;
            let byte_from = s.char_indices().nth(from).map_or(s.len(), |(b, _)| b);
            match s[byte_from..].find(text(0)?.as_str()) {
                Some(b) => int(char_index(s, byte_from + b)),
                None => Value::Int(-1),
            }
        }
        ("lastIndexOf", 1) => match s.rfind(text(0)?.as_str()) {
            Some(b) => int(char_index(s, b)),
            None => Value::Int(-1),
        },
        ("substring", 1 | 2) => {
            let len = s.chars().count();
            let start = usize::try_from(arg_int(args, 0)?).ok();
            let end = match args.len() {
                2 => usize::try_from(arg_int(args, 1)?).ok(),
                _ => Some(len),
            };
            match (start, end) {
                (Some(a), Some(b)) => match char_slice(s, a, b) {
                    Some(sub) => Value::from(sub),
                    None => {
                        return Some(Err(format!(
                            "substring({a}, {b}) is out of range for a string of {len} characters"
                        )));
                    }
                },
                _ => return Some(Err("substring needs indexes of 0 or more".into())),
            }
        }
        ("charAt", 1) => {
            let i = usize::try_from(arg_int(args, 0)?).ok()?;
            match s.chars().nth(i) {
                Some(c) => Value::from(c.to_string()),
                None => return Some(Err(format!("charAt({i}) is out of range"))),
            }
        }
        ("concat", 1) => {
            let joined = format!("{s}{}", text(0)?);
            if joined.len() > limits.max_output_bytes {
                return Some(Err(format!(
                    "a string over {} bytes",
                    limits.max_output_bytes
                )));
            }
            Value::from(joined)
        }
        ("replace", 2) => {
            let (from, to) = (text(0)?, text(1)?);
            if from.is_empty() {
                return Some(Ok(Value::Str(s.clone())));
            }
            Value::from(s.replace(from.as_str(), to.as_str()))
        }
        ("replaceAll" | "replaceFirst", 2) => {
            let re = match regex(&text(0)?) {
                Ok(re) => re,
                Err(e) => return Some(Err(e)),
            };
            let with = replacement(&text(1)?);
            let limit = if name == "replaceAll" { 0 } else { 1 };
            match re.try_replacen(s, limit, with.as_str()) {
                Ok(replaced) => Value::from(replaced.into_owned()),
                Err(e) => return Some(Err(format!("replaceAll: {e}"))),
            }
        }
        ("matches", 1) => {
            let re = match regex(&format!("^(?:{})$", text(0)?)) {
                Ok(re) => re,
                Err(e) => return Some(Err(e)),
            };
            match re.is_match(&**s) {
                Ok(m) => Value::Bool(m),
                Err(e) => return Some(Err(format!("matches: {e}"))),
            }
        }
        ("split", 1 | 2) => match split(s, &text(0)?, arg_int(args, 1).unwrap_or(0)) {
            Ok(parts) => Value::list(parts.into_iter().map(Value::from).collect()),
            Err(e) => return Some(Err(e)),
        },
        ("toLowerCase", 0) => Value::from(s.to_lowercase()),
        ("toUpperCase", 0) => Value::from(s.to_uppercase()),
        ("trim", 0) => Value::from(s.trim_matches(|c: char| c <= ' ')),
        ("toString", 0) => Value::Str(s.clone()),
        _ => return None,
    }))
}

/// Java's `String.split(regex, limit)`.
fn split(s: &str, pattern: &str, limit: i64) -> Result<Vec<String>, String> {
    let re = regex(pattern)?;
    let mut parts = Vec::new();
    let mut last = 0;
    for m in re.find_iter(s) {
        let m = m.map_err(|e| format!("split: {e}"))?;
        if limit > 0 && i64::try_from(parts.len()).unwrap_or(i64::MAX) >= limit - 1 {
            break;
        }
        // A zero-width match at the start yields no leading empty string (Java 8+).
        if m.end() == 0 {
            continue;
        }
        parts.push(s[last..m.start()].to_owned());
        last = m.end();
    }
    parts.push(s[last..].to_owned());
    if limit == 0 {
        while parts.len() > 1 && parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
        if parts.len() == 1 && parts[0].is_empty() && !s.is_empty() {
            parts.clear();
        }
    }
    Ok(parts)
}

fn list(list: &List, name: &str, args: &[Value]) -> Answer {
    let mut items = list.items.borrow_mut();
    Some(Ok(match (name, args) {
        ("size" | "count", []) => int(items.len()),
        ("isEmpty", []) => Value::Bool(items.is_empty()),
        ("get", [i]) => {
            let index = i.as_int().and_then(|i| usize::try_from(i).ok());
            match index.and_then(|i| items.get(i)) {
                Some(v) => v.clone(),
                None => {
                    return Some(Err(format!(
                        "get({}) is out of range for a list of {}",
                        i.to_text(),
                        items.len()
                    )));
                }
            }
        }
        ("contains", [v]) => Value::Bool(items.iter().any(|x| equals(x, v))),
        ("indexOf", [v]) => match items.iter().position(|x| equals(x, v)) {
            Some(i) => int(i),
            None => Value::Int(-1),
        },
        ("add", [v]) => {
            items.push(v.clone());
            Value::Bool(true)
        }
        ("add", [i, v]) => {
            let index = i.as_int().and_then(|i| usize::try_from(i).ok());
            match index {
                Some(i) if i <= items.len() => {
                    items.insert(i, v.clone());
                    Value::Null
                }
                _ => return Some(Err("add(index, value): index out of range".into())),
            }
        }
        ("addAll", [other]) => {
            let other = match other.plain() {
                Value::List(o) if Rc::ptr_eq(&o.items, &list.items) => items.clone(),
                Value::List(o) => o.items.borrow().clone(),
                _ => return None,
            };
            items.extend(other);
            Value::Bool(true)
        }
        ("set", [i, v]) => {
            let index = i.as_int().and_then(|i| usize::try_from(i).ok());
            match index.and_then(|i| items.get_mut(i)) {
                Some(slot) => std::mem::replace(slot, v.clone()),
                None => return Some(Err("set(index, value): index out of range".into())),
            }
        }
        ("remove", [Value::Int(i)]) => {
            match usize::try_from(*i).ok().filter(|&i| i < items.len()) {
                Some(i) => items.remove(i),
                None => return Some(Err(format!("remove({i}): index out of range"))),
            }
        }
        ("remove", [v]) => match items.iter().position(|x| equals(x, v)) {
            Some(i) => {
                items.remove(i);
                Value::Bool(true)
            }
            None => Value::Bool(false),
        },
        ("clear", []) => {
            items.clear();
            Value::Null
        }
        ("subList", [a, b]) => {
            let (a, b) = (a.as_int(), b.as_int());
            match (a, b) {
                (Some(a), Some(b))
                    if 0 <= a && a <= b && b <= i64::try_from(items.len()).unwrap_or(0) =>
                {
                    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
                    let slice = items[a as usize..b as usize].to_vec();
                    Value::List(List::new(slice, list.json))
                }
                _ => return Some(Err("subList: indexes out of range".into())),
            }
        }
        _ => return None,
    }))
}

/// A map entry from `entrySet()`.
#[derive(Debug)]
struct Entry {
    key: Rc<str>,
    value: Value,
}

impl Object for Entry {
    fn property(&self, name: &str) -> Option<Result<Value, String>> {
        match name {
            "key" => Some(Ok(Value::Str(self.key.clone()))),
            "value" => Some(Ok(self.value.clone())),
            _ => None,
        }
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match (name, args) {
            ("getKey", []) => self.property("key"),
            ("getValue", []) => self.property("value"),
            _ => None,
        }
    }
    fn text(&self) -> String {
        let mut out = format!("{}=", self.key);
        self.value.write_text(&mut out, false);
        out
    }
}

fn map(map: &Map, name: &str, args: &[Value]) -> Answer {
    let key = |i: usize| args.get(i).map(|k| Rc::<str>::from(k.to_text().as_str()));
    Some(Ok(match (name, args.len()) {
        ("size", 0) => int(map.entries.borrow().len()),
        ("isEmpty", 0) => Value::Bool(map.entries.borrow().is_empty()),
        ("get", 1) => map.get(&key(0)?).unwrap_or(Value::Null),
        ("getOrDefault", 2) => map.get(&key(0)?).unwrap_or_else(|| args[1].clone()),
        ("containsKey", 1) => Value::Bool(map.entries.borrow().contains_key(&*key(0)?)),
        ("containsValue", 1) => {
            Value::Bool(map.entries.borrow().values().any(|v| equals(v, &args[0])))
        }
        ("put", 2) => map
            .entries
            .borrow_mut()
            .insert(key(0)?, args[1].clone())
            .unwrap_or(Value::Null),
        ("putAll", 1) => {
            let Value::Map(other) = args[0].plain() else {
                return None;
            };
            let other: Vec<_> = other
                .entries
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            map.entries.borrow_mut().extend(other);
            Value::Null
        }
        ("remove", 1) => map
            .entries
            .borrow_mut()
            .shift_remove(&*key(0)?)
            .unwrap_or(Value::Null),
        ("keySet", 0) => Value::list(
            map.entries
                .borrow()
                .keys()
                .map(|k| Value::Str(k.clone()))
                .collect(),
        ),
        ("values", 0) => Value::list(map.entries.borrow().values().cloned().collect()),
        ("entrySet", 0) => Value::list(
            map.entries
                .borrow()
                .iter()
                .map(|(k, v)| {
                    Value::Object(Rc::new(Entry {
                        key: k.clone(),
                        value: v.clone(),
                    }))
                })
                .collect(),
        ),
        ("clear", 0) => {
            map.entries.borrow_mut().clear();
            Value::Null
        }
        _ => return None,
    }))
}

fn number(value: &Value, name: &str, args: &[Value]) -> Answer {
    if !args.is_empty() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    Some(Ok(match name {
        "intValue" | "longValue" => match value {
            Value::Float(x) => Value::Int(x.trunc() as i64),
            v => v.clone(),
        },
        "doubleValue" | "floatValue" => Value::Float(value.as_number()?),
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_split() {
        let parts = |s: &str, re: &str| split(s, re, 0).unwrap();
        assert_eq!(parts("a,b,,c,,", ","), ["a", "b", "", "c"]);
        assert_eq!(parts("", ","), [""]);
        assert_eq!(parts(",a", ","), ["", "a"]);
        assert_eq!(parts("a1b22c", "\\d+"), ["a", "b", "c"]);
        assert!(parts(",,", ",").is_empty());
        assert_eq!(split("a,b,c", ",", 2).unwrap(), ["a", "b,c"]);
    }

    #[test]
    fn java_replacements() {
        assert_eq!(replacement("$1-x"), "${1}-x");
        assert_eq!(replacement("\\$1"), "$$1");
        assert_eq!(replacement("a$"), "a$$");
    }
}
