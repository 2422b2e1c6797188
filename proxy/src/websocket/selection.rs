//! Selection expressions (`route_selection`), as API Gateway evaluates them: `$request.body.x`
//! variables (a JSON path into the message), `${...}` to bound one, static text around them,
//! `\$` for a literal dollar sign. A path that names nothing gives "" (so
//! `${request.body.action}-${request.body.missing}` is `join-`); evaluation happens once, never
//! on a value a variable produced.

use std::fmt::Write as _;

use serde_json::Value;

/// A compiled selection expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionExpression {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A path into the message body: object keys and array indexes.
    Body(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Why an expression cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("`${{` at byte {0} is not closed with `}}`")]
    Unclosed(usize),
    #[error(
        "`{0}` is not a variable a route selection can read: use `$request.body.<path>` (escape a literal dollar sign as `\\$`)"
    )]
    UnknownVariable(String),
    #[error("`{0}`: a body path needs a name after each `.` and a number in each `[...]`")]
    BadPath(String),
}

impl SelectionExpression {
    /// Compiles `text`; errors name the part that is wrong.
    pub fn parse(text: &str) -> Result<Self, SelectionError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < text.len() {
            match bytes[i] {
                b'\\' if bytes.get(i + 1) == Some(&b'$') => {
                    literal.push('$');
                    i += 2;
                }
                b'$' => {
                    let (variable, next) = if bytes.get(i + 1) == Some(&b'{') {
                        let close = text[i..].find('}').ok_or(SelectionError::Unclosed(i))?;
                        (&text[i + 2..i + close], i + close + 1)
                    } else {
                        // Unbounded: the variable runs while it looks like a path.
                        let len = text[i + 1..]
                            .find(|c: char| {
                                !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '[' | ']'))
                            })
                            .unwrap_or(text.len() - i - 1);
                        (&text[i + 1..i + 1 + len], i + 1 + len)
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Body(body_path(variable)?));
                    i = next;
                }
                _ => {
                    let c = text[i..].chars().next().unwrap_or_default();
                    literal.push(c);
                    i += c.len_utf8();
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// Whether the expression reads the body (else it is the same for every message).
    pub fn reads_body(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Body(_)))
    }

    /// The route key for a message whose body is `body` (`None`: not JSON, which has no
    /// paths; every variable is then "").
    pub fn evaluate(&self, body: Option<&Value>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Body(path) => {
                    if let Some(value) = body.and_then(|b| lookup(b, path)) {
                        stringify(value, &mut out);
                    }
                }
            }
        }
        out
    }
}

fn body_path(variable: &str) -> Result<Vec<Step>, SelectionError> {
    let Some(path) = variable.strip_prefix("request.body") else {
        return Err(SelectionError::UnknownVariable(format!("${variable}")));
    };
    let bad = || SelectionError::BadPath(format!("${variable}"));
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err(bad());
            }
            steps.push(Step::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(bad)?;
            let index = after[..end].parse().map_err(|_| bad())?;
            steps.push(Step::Index(index));
            rest = &after[end + 1..];
        } else {
            return Err(bad());
        }
    }
    Ok(steps)
}

fn lookup<'v>(mut value: &'v Value, path: &[Step]) -> Option<&'v Value> {
    for step in path {
        value = match step {
            Step::Key(key) => value.as_object()?.get(key)?,
            Step::Index(i) => value.as_array()?.get(*i)?,
        };
    }
    Some(value)
}

/// A value as API Gateway prints it in a route key: strings bare, an array as
/// `[item1, item2]`, anything else as JSON.
fn stringify(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Null => {}
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                stringify(item, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expression: &str, body: &str) -> String {
        let body: Option<Value> = serde_json::from_str(body).ok();
        SelectionExpression::parse(expression)
            .unwrap()
            .evaluate(body.as_ref())
    }

    const MESSAGE: &str = r#"{"service":"chat","action":"join","data":{"room":"room1234"}}"#;

    #[test]
    fn the_reference_table() {
        assert_eq!(eval("$request.body.action", MESSAGE), "join");
        assert_eq!(eval("${request.body.action}", MESSAGE), "join");
        assert_eq!(
            eval("${request.body.service}/${request.body.action}", MESSAGE),
            "chat/join"
        );
        assert_eq!(
            eval(
                "${request.body.action}-${request.body.invalidPath}",
                MESSAGE
            ),
            "join-"
        );
        assert_eq!(eval("action", MESSAGE), "action");
        assert_eq!(eval("\\$default", MESSAGE), "$default");
    }

    #[test]
    fn nested_paths_arrays_and_values_print_as_api_gateway_does() {
        assert_eq!(eval("$request.body.data.room", MESSAGE), "room1234");
        assert_eq!(eval("$request.body.a[1]", r#"{"a":["x","y"]}"#), "y");
        assert_eq!(eval("$request.body.a", r#"{"a":["x","y"]}"#), "[x, y]");
        assert_eq!(eval("$request.body.n", r#"{"n":12}"#), "12");
        assert_eq!(eval("$request.body.b", r#"{"b":true}"#), "true");
        assert_eq!(eval("v-${request.body.n}", r#"{"n":null}"#), "v-");
        // Not JSON: every variable is "", text stays.
        assert_eq!(eval("$request.body.action", "hello"), "");
        assert_eq!(eval("x${request.body.action}", "hello"), "x");
    }

    #[test]
    fn values_are_not_evaluated_again() {
        assert_eq!(
            eval("$request.body.a", r#"{"a":"${request.body.b}","b":"no"}"#),
            "${request.body.b}"
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        assert_eq!(
            SelectionExpression::parse("${request.body.action"),
            Err(SelectionError::Unclosed(0))
        );
        assert!(matches!(
            SelectionExpression::parse("$request.header.x"),
            Err(SelectionError::UnknownVariable(v)) if v == "$request.header.x"
        ));
        assert!(matches!(
            SelectionExpression::parse("$request.body..x"),
            Err(SelectionError::BadPath(_))
        ));
        assert!(
            SelectionExpression::parse("$request.body.action")
                .unwrap()
                .reads_body()
        );
        assert!(
            !SelectionExpression::parse("\\$default")
                .unwrap()
                .reads_body()
        );
    }
}
