//! The evaluator: walks a parsed template over a [`Scope`], within the template's limits.

use std::collections::HashMap;
use std::rc::Rc;

use crate::methods;
use crate::parse::{Access, Block, Expr, Node, Op, Ref};
use crate::value::{List, Map, Object, Value};
use crate::{RenderError, Template, line_column};

/// The variables a render sees (`$input`, `$context`, ... and what `#set` makes).
#[derive(Debug, Default)]
pub struct Scope {
    vars: Vars,
}

type Vars = HashMap<Rc<str>, Value, foldhash::fast::RandomState>;

impl Scope {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: &str, value: Value) {
        self.vars.insert(Rc::from(name), value);
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }
}

enum Flow {
    Go,
    Break,
    Stop,
}

type Result<T> = std::result::Result<T, RenderError>;

struct Eval<'t, 's> {
    template: &'t Template,
    scope: &'s mut Scope,
    /// Macro arguments, innermost call last.
    frames: Vec<Vars>,
    steps: u64,
    depth: usize,
}

pub(crate) fn render(template: &Template, scope: &mut Scope) -> Result<String> {
    let mut eval = Eval {
        template,
        scope,
        frames: Vec::new(),
        steps: 0,
        depth: 0,
    };
    let mut out = String::new();
    eval.block(&template.body, &mut out)?;
    Ok(out)
}

/// `$foreach`: where a loop is.
#[derive(Debug)]
struct Foreach {
    index: usize,
    has_next: bool,
    parent: Value,
}

impl Object for Foreach {
    fn property(&self, name: &str) -> Option<std::result::Result<Value, String>> {
        let index = i64::try_from(self.index).unwrap_or(i64::MAX);
        Some(Ok(match name {
            "hasNext" => Value::Bool(self.has_next),
            "count" => Value::Int(index + 1),
            "index" => Value::Int(index),
            "first" => Value::Bool(self.index == 0),
            "last" => Value::Bool(!self.has_next),
            "parent" => self.parent.clone(),
            _ => return None,
        }))
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<std::result::Result<Value, String>> {
        let property = match name {
            "hasNext" | "isFirst" | "isLast" | "getCount" | "getIndex" | "getParent" => {
                let p = name.trim_start_matches("get").trim_start_matches("is");
                let mut p = p.to_owned();
                if let Some(first) = p.get_mut(0..1) {
                    first.make_ascii_lowercase();
                }
                p
            }
            _ => return None,
        };
        if !args.is_empty() {
            return None;
        }
        self.property(&property)
    }
    fn text(&self) -> String {
        format!("foreach[{}]", self.index)
    }
}

impl Eval<'_, '_> {
    fn error(&self, at: usize, message: impl Into<String>) -> RenderError {
        let (line, column) = line_column(&self.template.source, at);
        RenderError::At {
            line,
            column,
            message: message.into(),
        }
    }

    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > self.template.limits.max_steps {
            return Err(RenderError::TooManySteps(self.template.limits.max_steps));
        }
        Ok(())
    }

    fn check_size(&self, len: usize) -> Result<()> {
        if len > self.template.limits.max_output_bytes {
            return Err(RenderError::TooLarge(self.template.limits.max_output_bytes));
        }
        Ok(())
    }

    fn enter(&mut self, at: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > self.template.limits.max_depth {
            return Err(self.error(
                at,
                format!(
                    "macros or #define blocks nested deeper than {} levels",
                    self.template.limits.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> Value {
        for frame in self.frames.iter().rev() {
            if let Some(v) = frame.get(name) {
                return v.clone();
            }
        }
        self.scope.vars.get(name).cloned().unwrap_or(Value::Null)
    }

    fn assign(&mut self, name: &Rc<str>, value: Value) {
        if let Some(frame) = self.frames.iter_mut().rev().find(|f| f.contains_key(name)) {
            frame.insert(name.clone(), value);
        } else {
            self.scope.vars.insert(name.clone(), value);
        }
    }

    fn block(&mut self, block: &Block, out: &mut String) -> Result<Flow> {
        for node in &block.0 {
            self.step()?;
            match self.node(node, out)? {
                Flow::Go => {}
                flow => return Ok(flow),
            }
            self.check_size(out.len())?;
        }
        Ok(Flow::Go)
    }

    fn node(&mut self, node: &Node, out: &mut String) -> Result<Flow> {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Ref(r) => {
                let value = self.reference(r)?;
                self.write(&value, out, r.at)?;
            }
            Node::Set { target, value } => {
                let value = self.expr(value)?;
                self.set(target, value)?;
            }
            Node::If {
                branches,
                otherwise,
            } => {
                for (condition, body) in branches {
                    if self.expr(condition)?.truthy() {
                        return self.block(body, out);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body, out);
                }
            }
            Node::Foreach {
                var,
                iterable,
                body,
                at,
            } => return self.foreach(var, iterable, body, *at, out),
            Node::Break => return Ok(Flow::Break),
            Node::Stop => return Ok(Flow::Stop),
            Node::Define { name, body } => self.assign(name, Value::Block(body.clone())),
            Node::Call { name, args, at } => return self.call_macro(name, args, *at, out),
        }
        Ok(Flow::Go)
    }

    /// Writes a value as a reference renders it; a `#define` block is rendered here.
    fn write(&mut self, value: &Value, out: &mut String, at: usize) -> Result<()> {
        match value {
            Value::Block(body) => {
                self.enter(at)?;
                let flow = self.block(body, out);
                self.depth -= 1;
                flow.map(|_| ())
            }
            value => {
                value.write_text(out, true);
                Ok(())
            }
        }
    }

    /// A value as text where a string is needed (interpolation, concatenation).
    fn text(&mut self, value: &Value, at: usize) -> Result<String> {
        let mut out = String::new();
        self.write(value, &mut out, at)?;
        self.check_size(out.len())?;
        Ok(out)
    }

    fn foreach(
        &mut self,
        var: &Rc<str>,
        iterable: &Expr,
        body: &Block,
        at: usize,
        out: &mut String,
    ) -> Result<Flow> {
        let limit = self.template.limits.max_iterations;
        // A literal range is walked without making its list.
        let items: Box<dyn Iterator<Item = Value>> = match iterable {
            Expr::Range(first, last) => {
                let (first, last) = (self.expr(first)?, self.expr(last)?);
                match (first.as_int(), last.as_int()) {
                    (Some(a), Some(b)) if a <= b => Box::new((a..=b).map(Value::Int)),
                    (Some(a), Some(b)) => Box::new((b..=a).rev().map(Value::Int)),
                    _ => Box::new(std::iter::empty()),
                }
            }
            other => match self.expr(other)?.plain() {
                Value::List(list) => Box::new(list.items.borrow().clone().into_iter()),
                Value::Map(map) => Box::new(
                    map.entries
                        .borrow()
                        .values()
                        .cloned()
                        .collect::<Vec<_>>()
                        .into_iter(),
                ),
                _ => Box::new(std::iter::empty()),
            },
        };
        let saved_var = self.scope.vars.get(var).cloned();
        let saved_foreach = self.scope.vars.get("foreach").cloned();
        let saved_count = self.scope.vars.get("velocityCount").cloned();
        let parent = saved_foreach.clone().unwrap_or(Value::Null);
        let mut items = items.peekable();
        let mut index = 0;
        let mut flow = Flow::Go;
        while let Some(item) = items.next() {
            if index >= limit {
                let (line, column) = line_column(&self.template.source, at);
                return Err(RenderError::TooManyIterations {
                    line,
                    column,
                    limit,
                });
            }
            self.step()?;
            let has_next = items.peek().is_some();
            self.scope.vars.insert(var.clone(), item);
            self.scope.vars.insert(
                Rc::from("foreach"),
                Value::Object(Rc::new(Foreach {
                    index,
                    has_next,
                    parent: parent.clone(),
                })),
            );
            self.scope.vars.insert(
                Rc::from("velocityCount"),
                Value::Int(i64::try_from(index + 1).unwrap_or(i64::MAX)),
            );
            match self.block(body, out)? {
                Flow::Go => {}
                Flow::Break => break,
                Flow::Stop => {
                    flow = Flow::Stop;
                    break;
                }
            }
            index += 1;
        }
        for (name, saved) in [
            (var.clone(), saved_var),
            (Rc::from("foreach"), saved_foreach),
            (Rc::from("velocityCount"), saved_count),
        ] {
            match saved {
                Some(v) => self.scope.vars.insert(name, v),
                None => self.scope.vars.remove(&name),
            };
        }
        Ok(flow)
    }

    fn call_macro(
        &mut self,
        name: &Rc<str>,
        args: &[Expr],
        at: usize,
        out: &mut String,
    ) -> Result<Flow> {
        let Some(definition) = self.template.macros.get(name).cloned() else {
            return Err(self.error(at, format!("no macro named {name}")));
        };
        let mut frame = Vars::default();
        for (i, param) in definition.params.iter().enumerate() {
            let value = match args.get(i) {
                Some(arg) => self.expr(arg)?,
                None => Value::Null,
            };
            frame.insert(param.clone(), value);
        }
        self.enter(at)?;
        self.frames.push(frame);
        let flow = self.block(&definition.body, out);
        self.frames.pop();
        self.depth -= 1;
        match flow? {
            Flow::Stop => Ok(Flow::Stop),
            Flow::Go | Flow::Break => Ok(Flow::Go),
        }
    }

    fn reference(&mut self, r: &Ref) -> Result<Value> {
        let mut value = self.lookup(&r.name);
        for access in &r.chain {
            self.step()?;
            value = self.access(value, access, r.at)?;
        }
        Ok(value)
    }

    fn access(&mut self, value: Value, access: &Access, at: usize) -> Result<Value> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        match access {
            Access::Property(name) => self.property(&value, name, at),
            Access::Index(index) => {
                let index = self.expr(index)?;
                Ok(index_of(&value, &index))
            }
            Access::Method(name, args) => {
                let args = args
                    .iter()
                    .map(|a| self.expr(a))
                    .collect::<Result<Vec<_>>>()?;
                self.method(&value, name, &args, at)
            }
        }
    }

    fn property(&mut self, value: &Value, name: &str, at: usize) -> Result<Value> {
        match value {
            Value::Map(map) => return Ok(map.get(name).unwrap_or(Value::Null)),
            Value::Object(object) => {
                if let Some(result) = object.property(name) {
                    return result.map_err(|e| self.error(at, e));
                }
            }
            _ => {}
        }
        // Velocity's getter rule: `$x.empty` is `$x.isEmpty()`, `$x.key` is `$x.getKey()`.
        let mut capitalized = String::with_capacity(name.len() + 3);
        let mut chars = name.chars();
        if let Some(first) = chars.next() {
            capitalized.extend(first.to_uppercase());
            capitalized.push_str(chars.as_str());
        }
        for prefix in ["get", "is"] {
            let getter = format!("{prefix}{capitalized}");
            if let Some(result) = self.try_method(value, &getter, &[]) {
                return result.map_err(|e| self.error(at, e));
            }
        }
        Ok(Value::Null)
    }

    fn try_method(
        &self,
        value: &Value,
        name: &str,
        args: &[Value],
    ) -> Option<std::result::Result<Value, String>> {
        match value {
            Value::Object(object) => object.call(name, args).or_else(|| {
                object
                    .plain()
                    .and_then(|p| methods::call(&p, name, args, &self.template.limits))
            }),
            value => methods::call(value, name, args, &self.template.limits),
        }
    }

    fn method(&mut self, value: &Value, name: &str, args: &[Value], at: usize) -> Result<Value> {
        let value = match value {
            // A block is its text for any method.
            Value::Block(_) => Value::from(self.text(value, at)?),
            v => v.clone(),
        };
        match self.try_method(&value, name, args) {
            Some(Ok(result)) => {
                if let Value::Str(s) = &result {
                    self.check_size(s.len())?;
                }
                Ok(result)
            }
            Some(Err(message)) => Err(self.error(at, message)),
            // An unknown method is an undefined reference: it prints nothing.
            None => Ok(Value::Null),
        }
    }

    /// `#set($a = v)`, `#set($a.b.c = v)`, `#set($a[0] = v)`. A null value leaves the target
    /// as it was (Velocity 1.7).
    fn set(&mut self, target: &Ref, value: Value) -> Result<()> {
        if value.is_null() {
            return Ok(());
        }
        let Some((last, path)) = target.chain.split_last() else {
            self.assign(&target.name, value);
            return Ok(());
        };
        let mut holder = self.lookup(&target.name);
        for access in path {
            holder = self.access(holder, access, target.at)?;
        }
        match (last, holder.clone()) {
            (Access::Property(name), Value::Map(map)) => {
                map.entries.borrow_mut().insert(name.clone(), value);
                Ok(())
            }
            (Access::Property(name), Value::Object(object)) => match object.set(name, value) {
                Some(result) => result.map_err(|e| self.error(target.at, e)),
                None => Err(self.error(target.at, format!("cannot set {name} here"))),
            },
            (Access::Index(index), Value::List(list)) => {
                let index = self.expr(index)?;
                let mut items = list.items.borrow_mut();
                match index.as_int().and_then(|i| usize::try_from(i).ok()) {
                    Some(i) if i < items.len() => {
                        items[i] = value;
                        Ok(())
                    }
                    _ => Err(self.error(target.at, "list index out of range in #set")),
                }
            }
            (Access::Index(index), Value::Map(map)) => {
                let key = self.expr(index)?;
                let key = self.text(&key, target.at)?;
                map.entries
                    .borrow_mut()
                    .insert(Rc::from(key.as_str()), value);
                Ok(())
            }
            (_, Value::Null) => Ok(()),
            _ => Err(self.error(target.at, "#set cannot assign here")),
        }
    }

    fn expr(&mut self, expr: &Expr) -> Result<Value> {
        self.step()?;
        Ok(match expr {
            Expr::Literal(v) => v.clone(),
            Expr::Interpolated(block) => {
                let mut out = String::new();
                self.block(block, &mut out)?;
                Value::from(out)
            }
            Expr::List(items) => Value::List(List::new(
                items.iter().map(|e| self.expr(e)).collect::<Result<_>>()?,
                false,
            )),
            Expr::Map(entries) => {
                let mut map = crate::value::Entries::default();
                for (k, v) in entries {
                    let key = self.expr(k)?;
                    let key = key.to_text();
                    let value = self.expr(v)?;
                    map.insert(Rc::from(key.as_str()), value);
                }
                Value::Map(Map::new(map, false))
            }
            Expr::Range(first, last) => {
                let (first, last) = (self.expr(first)?, self.expr(last)?);
                let (Some(a), Some(b)) = (first.as_int(), last.as_int()) else {
                    return Ok(Value::Null);
                };
                let len = a.abs_diff(b).saturating_add(1);
                if len > self.template.limits.max_range as u64 {
                    return Err(RenderError::TooLarge(self.template.limits.max_range));
                }
                let items: Vec<Value> = if a <= b {
                    (a..=b).map(Value::Int).collect()
                } else {
                    (b..=a).rev().map(Value::Int).collect()
                };
                Value::list(items)
            }
            Expr::Ref(r) => self.reference(r)?,
            Expr::Not(inner) => Value::Bool(!self.expr(inner)?.truthy()),
            Expr::Negate(inner) => match self.expr(inner)? {
                Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
                Value::Float(x) => Value::Float(-x),
                _ => Value::Null,
            },
            Expr::Binary(op, left, right) => self.binary(*op, left, right)?,
        })
    }

    fn binary(&mut self, op: Op, left: &Expr, right: &Expr) -> Result<Value> {
        match op {
            Op::And => {
                return Ok(Value::Bool(
                    self.expr(left)?.truthy() && self.expr(right)?.truthy(),
                ));
            }
            Op::Or => {
                return Ok(Value::Bool(
                    self.expr(left)?.truthy() || self.expr(right)?.truthy(),
                ));
            }
            _ => {}
        }
        let (a, b) = (self.expr(left)?.plain(), self.expr(right)?.plain());
        Ok(match op {
            Op::Eq => Value::Bool(equals(&a, &b)),
            Op::Ne => Value::Bool(!equals(&a, &b)),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let ordering = match (a.as_number(), b.as_number()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y),
                    _ => match (&a, &b) {
                        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
                        _ => None,
                    },
                };
                let Some(ordering) = ordering else {
                    return Ok(Value::Bool(false));
                };
                Value::Bool(match op {
                    Op::Lt => ordering.is_lt(),
                    Op::Le => ordering.is_le(),
                    Op::Gt => ordering.is_gt(),
                    _ => ordering.is_ge(),
                })
            }
            Op::Add if matches!(a, Value::Str(_)) || matches!(b, Value::Str(_)) => {
                let at = match left {
                    Expr::Ref(r) => r.at,
                    _ => 0,
                };
                let mut text = self.text(&a, at)?;
                text.push_str(&self.text(&b, at)?);
                self.check_size(text.len())?;
                Value::from(text)
            }
            _ => arithmetic(op, &a, &b),
        })
    }
}

/// `==` as API Gateway's Velocity has it: numbers by value; null equals null and `""`;
/// values of one kind by content; values of different kinds by their text.
pub(crate) fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, Value::Str(s)) | (Value::Str(s), Value::Null) => s.is_empty(),
        (Value::Null, _) | (_, Value::Null) => false,
        _ => match (a.as_number(), b.as_number()) {
            (Some(x), Some(y)) => x == y,
            _ => match (a, b) {
                (Value::Str(x), Value::Str(y)) => x == y,
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::List(_), Value::List(_)) | (Value::Map(_), Value::Map(_)) => a.deep_eq(b),
                _ => a.to_text() == b.to_text(),
            },
        },
    }
}

fn arithmetic(op: Op, a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x, *y);
            let result = match op {
                Op::Add => x.checked_add(y),
                Op::Sub => x.checked_sub(y),
                Op::Mul => x.checked_mul(y),
                Op::Div => x.checked_div(y),
                Op::Rem => x.checked_rem(y),
                _ => None,
            };
            match result {
                Some(i) => Value::Int(i),
                // Overflow goes on in floating point; division by zero is null (Velocity).
                None if y != 0 || matches!(op, Op::Add | Op::Sub | Op::Mul) => {
                    float_arithmetic(op, a, b)
                }
                None => Value::Null,
            }
        }
        _ => float_arithmetic(op, a, b),
    }
}

fn float_arithmetic(op: Op, a: &Value, b: &Value) -> Value {
    let (Some(x), Some(y)) = (a.as_number(), b.as_number()) else {
        return Value::Null;
    };
    let result = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div if y == 0.0 => return Value::Null,
        Op::Div => x / y,
        Op::Rem if y == 0.0 => return Value::Null,
        Op::Rem => x % y,
        _ => return Value::Null,
    };
    Value::Float(result)
}

/// `$list[i]`, `$map['k']`.
fn index_of(value: &Value, index: &Value) -> Value {
    match value.plain() {
        Value::List(list) => {
            let items = list.items.borrow();
            index
                .as_int()
                .and_then(|i| {
                    let i = if i < 0 {
                        i + i64::try_from(items.len()).ok()?
                    } else {
                        i
                    };
                    items.get(usize::try_from(i).ok()?).cloned()
                })
                .unwrap_or(Value::Null)
        }
        Value::Map(map) => map.get(&index.to_text()).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}
