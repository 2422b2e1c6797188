//! The parser: template text → [`Block`] of [`Node`]s, once, when config loads.
//!
//! Hand-written recursive descent over the template's bytes (Velocity's syntax switches
//! between text and expressions on `$` and `#`, which a tokenizer generator handles no
//! better). Nesting is bounded ([`Limits::max_depth`]), so no template can overflow the
//! stack, and every error carries the line and column where it was found.
//!
//! Whitespace follows Velocity 1.7: a directive followed by spaces and a line end eats that
//! line end (`#if(...)`, `#elseif(...)`, `#else`, `#end`, `#foreach(...)`, `#set(...)`,
//! `#break`, `#stop`, `#define(...)`, `#macro(...)` and macro calls), and `#set` also eats
//! the spaces before it when it starts its line. A `##` comment eats its line end.

use std::collections::HashMap;
use std::rc::Rc;

use crate::value::Value;
use crate::{Limits, ParseError};

/// A sequence of nodes: a template, a directive's body.
#[derive(Debug, Default)]
pub struct Block(pub Vec<Node>);

/// One piece of a template.
#[derive(Debug)]
pub enum Node {
    Text(Rc<str>),
    /// `$x...`: rendered as the value's text.
    Ref(Ref),
    Set {
        target: Ref,
        value: Expr,
    },
    If {
        branches: Vec<(Expr, Block)>,
        otherwise: Option<Block>,
    },
    Foreach {
        var: Rc<str>,
        iterable: Expr,
        body: Block,
        at: usize,
    },
    Break,
    Stop,
    Define {
        name: Rc<str>,
        body: Rc<Block>,
    },
    /// `#name(args)` for a macro defined above.
    Call {
        name: Rc<str>,
        args: Vec<Expr>,
        at: usize,
    },
}

/// A reference: `$name`, then properties, indexes and method calls.
#[derive(Debug)]
pub struct Ref {
    pub name: Rc<str>,
    pub chain: Vec<Access>,
    /// `$!x`: same output here (API Gateway prints an undefined reference as nothing).
    pub quiet: bool,
    /// Byte offset in the template, for run-time errors.
    pub at: usize,
}

#[derive(Debug)]
pub enum Access {
    Property(Rc<str>),
    Index(Expr),
    Method(Rc<str>, Vec<Expr>),
}

#[derive(Debug)]
pub enum Expr {
    Literal(Value),
    /// A double-quoted string with references or directives in it.
    Interpolated(Block),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Range(Box<Expr>, Box<Expr>),
    Ref(Ref),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// A `#macro`: its parameter names and body.
#[derive(Debug)]
pub struct Macro {
    pub params: Vec<Rc<str>>,
    pub body: Block,
}

/// How a block ended.
enum End {
    Eof,
    End,
    Else,
    ElseIf(Expr),
}

/// Parses a whole template; macros are collected into `macros`.
pub(crate) fn parse(
    source: &str,
    limits: &Limits,
    macros: &mut HashMap<Rc<str>, Rc<Macro>>,
) -> Result<Block, ParseError> {
    let mut parser = Parser {
        src: source.as_bytes(),
        text: source,
        pos: 0,
        base: 0,
        depth: 0,
        max_depth: limits.max_depth,
        macros,
        origin: source,
    };
    let (block, end) = parser.block()?;
    match end {
        End::Eof => Ok(block),
        End::End => Err(parser.error_at(parser.pos, "#end without a directive to end")),
        End::Else | End::ElseIf(_) => {
            Err(parser.error_at(parser.pos, "#else or #elseif without an #if"))
        }
    }
}

struct Parser<'a, 'm> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    /// Where `text` starts in the whole template (a string literal is parsed on its own).
    base: usize,
    depth: usize,
    max_depth: usize,
    macros: &'m mut HashMap<Rc<str>, Rc<Macro>>,
    /// The whole template, for line and column.
    origin: &'a str,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// Velocity 1.7 identifiers may hold hyphens (`$X-Amz-Target`).
fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_directive_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Parser<'_, '_> {
    fn error_at(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.origin, self.base + at, message.into())
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.src[self.pos..].starts_with(s.as_bytes())
    }

    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(self.error_at(at, format!("nested deeper than {} levels", self.max_depth)));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Text and nodes up to the end of input or a `#end`, `#else` or `#elseif`.
    fn block(&mut self) -> Result<(Block, End), ParseError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, nodes: &mut Vec<Node>| {
            if !text.is_empty() {
                nodes.push(Node::Text(Rc::from(std::mem::take(text).as_str())));
            }
        };
        while let Some(b) = self.peek() {
            match b {
                b'\\' => self.backslashes(&mut text),
                b'$' => match self.reference_in_text()? {
                    Some(r) => {
                        flush(&mut text, &mut nodes);
                        nodes.push(Node::Ref(r));
                    }
                    None => {
                        text.push('$');
                        self.pos += 1;
                    }
                },
                b'#' => match self.hash(&mut text)? {
                    Hash::Text => {}
                    Hash::Node(node) => {
                        flush(&mut text, &mut nodes);
                        nodes.push(node);
                    }
                    Hash::End(end) => {
                        flush(&mut text, &mut nodes);
                        return Ok((Block(nodes), end));
                    }
                },
                _ => {
                    // Copy the run of plain text up to the next special byte.
                    let run_end = self.src[self.pos..]
                        .iter()
                        .position(|&c| matches!(c, b'\\' | b'$' | b'#'))
                        .map_or(self.src.len(), |p| self.pos + p);
                    text.push_str(&self.text[self.pos..run_end]);
                    self.pos = run_end;
                }
            }
        }
        flush(&mut text, &mut nodes);
        Ok((Block(nodes), End::Eof))
    }

    /// A run of backslashes: before a reference or directive, each pair is one backslash and
    /// an odd one makes the `$` or `#` after it plain text.
    fn backslashes(&mut self, text: &mut String) {
        let start = self.pos;
        while self.peek() == Some(b'\\') {
            self.pos += 1;
        }
        let count = self.pos - start;
        let escapes = match self.peek() {
            Some(b'$') => self
                .peek_at(1)
                .is_some_and(|c| is_ident_start(c) || c == b'{' || c == b'!'),
            Some(b'#') => self
                .peek_at(1)
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'{'),
            _ => false,
        };
        if !escapes {
            text.push_str(&"\\".repeat(count));
            return;
        }
        text.push_str(&"\\".repeat(count / 2));
        if count % 2 == 1 {
            // The escaped `$name` or `#name` is text as written.
            let sigil = self.pos;
            self.pos += 1;
            if self.peek() == Some(b'!') {
                self.pos += 1;
            }
            let braced = self.peek() == Some(b'{');
            if braced {
                self.pos += 1;
            }
            while self.peek().is_some_and(is_ident_char) {
                self.pos += 1;
            }
            if braced && self.peek() == Some(b'}') {
                self.pos += 1;
            }
            text.push_str(&self.text[sigil..self.pos]);
        }
    }

    /// `$...` in text; `None` when the `$` starts no reference (it is then text).
    fn reference_in_text(&mut self) -> Result<Option<Ref>, ParseError> {
        let start = self.pos;
        let mut p = 1;
        let quiet = self.peek_at(p) == Some(b'!');
        if quiet {
            p += 1;
        }
        let formal = self.peek_at(p) == Some(b'{');
        if formal {
            p += 1;
        }
        if !self.peek_at(p).is_some_and(is_ident_start) {
            return Ok(None);
        }
        self.pos += p;
        let r = self.reference_body(start, quiet, formal)?;
        Ok(Some(r))
    }

    /// The name and chain of a reference whose `$`, `!` and `{` have been read.
    fn reference_body(
        &mut self,
        start: usize,
        quiet: bool,
        formal: bool,
    ) -> Result<Ref, ParseError> {
        let name = self.identifier();
        let mut chain = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') if self.peek_at(1).is_some_and(is_ident_start) => {
                    self.pos += 1;
                    let member = self.identifier();
                    if self.peek() == Some(b'(') {
                        let args = self.arguments()?;
                        chain.push(Access::Method(member, args));
                    } else {
                        chain.push(Access::Property(member));
                    }
                }
                Some(b'[') => {
                    let open = self.pos;
                    self.pos += 1;
                    self.enter(open)?;
                    self.skip_space();
                    let index = self.expr()?;
                    self.skip_space();
                    self.expect(b']', "] to close the index")?;
                    self.leave();
                    chain.push(Access::Index(index));
                }
                _ => break,
            }
        }
        if formal {
            self.skip_inline_space();
            if self.peek() != Some(b'}') {
                return Err(self.error_at(self.pos, "expected } to close ${"));
            }
            self.pos += 1;
        }
        Ok(Ref {
            name,
            chain,
            quiet,
            at: self.base + start,
        })
    }

    fn identifier(&mut self) -> Rc<str> {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_char) {
            self.pos += 1;
        }
        Rc::from(&self.text[start..self.pos])
    }

    /// `( expr, expr ... )` of a method call.
    fn arguments(&mut self) -> Result<Vec<Expr>, ParseError> {
        let open = self.pos;
        self.pos += 1;
        self.enter(open)?;
        let mut args = Vec::new();
        self.skip_space();
        if self.peek() == Some(b')') {
            self.pos += 1;
            self.leave();
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_space();
                }
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error_at(self.pos, "expected , or ) in the arguments")),
            }
        }
        self.leave();
        Ok(args)
    }

    /// What a `#` starts.
    fn hash(&mut self, text: &mut String) -> Result<Hash, ParseError> {
        let start = self.pos;
        match self.peek_at(1) {
            Some(b'#') => {
                // A line comment eats its line end.
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                return Ok(Hash::Text);
            }
            Some(b'*') => {
                match self.text[self.pos + 2..].find("*#") {
                    Some(end) => self.pos += 2 + end + 2,
                    None => return Err(self.error_at(start, "unclosed #* comment")),
                }
                return Ok(Hash::Text);
            }
            Some(b'[') if self.peek_at(2) == Some(b'[') => {
                match self.text[self.pos + 3..].find("]]#") {
                    Some(end) => {
                        text.push_str(&self.text[self.pos + 3..self.pos + 3 + end]);
                        self.pos += 3 + end + 3;
                    }
                    None => return Err(self.error_at(start, "unclosed #[[ block")),
                }
                return Ok(Hash::Text);
            }
            _ => {}
        }
        let braced = self.peek_at(1) == Some(b'{');
        let name_start = self.pos + 1 + usize::from(braced);
        if !self
            .src
            .get(name_start)
            .is_some_and(u8::is_ascii_alphabetic)
        {
            text.push('#');
            self.pos += 1;
            return Ok(Hash::Text);
        }
        let mut name_end = name_start;
        while self
            .src
            .get(name_end)
            .is_some_and(|&c| is_directive_char(c))
        {
            name_end += 1;
        }
        if braced && self.src.get(name_end) != Some(&b'}') {
            text.push('#');
            self.pos += 1;
            return Ok(Hash::Text);
        }
        let name = &self.text[name_start..name_end];
        let after = name_end + usize::from(braced);
        let known = matches!(
            name,
            "set"
                | "if"
                | "elseif"
                | "else"
                | "end"
                | "foreach"
                | "break"
                | "stop"
                | "define"
                | "macro"
        );
        if !known && !self.macros.contains_key(name) {
            if matches!(name, "include" | "parse" | "evaluate") {
                return Err(self.error_at(
                    start,
                    format!("#{name} is not supported: templates cannot read other templates"),
                ));
            }
            // `#fff`, `#1`, an unknown word: text, as in Velocity.
            text.push_str(&self.text[start..after]);
            self.pos = after;
            return Ok(Hash::Text);
        }
        self.pos = after;
        let name = name.to_owned();
        match name.as_str() {
            "set" => {
                self.gobble_indent(text, start);
                let (target, value) = self.set_args(start)?;
                self.gobble_line_end();
                Ok(Hash::Node(Node::Set { target, value }))
            }
            "if" => {
                self.enter(start)?;
                let condition = self.condition("#if")?;
                let node = self.if_chain(condition, start)?;
                self.leave();
                Ok(Hash::Node(node))
            }
            "elseif" => {
                let condition = self.condition("#elseif")?;
                Ok(Hash::End(End::ElseIf(condition)))
            }
            "else" => {
                self.gobble_line_end();
                Ok(Hash::End(End::Else))
            }
            "end" => {
                self.gobble_line_end();
                Ok(Hash::End(End::End))
            }
            "foreach" => {
                self.enter(start)?;
                let node = self.foreach(start)?;
                self.leave();
                Ok(Hash::Node(node))
            }
            "break" => {
                self.gobble_line_end();
                Ok(Hash::Node(Node::Break))
            }
            "stop" => {
                self.gobble_line_end();
                Ok(Hash::Node(Node::Stop))
            }
            "define" => {
                self.enter(start)?;
                let node = self.define(start)?;
                self.leave();
                Ok(Hash::Node(node))
            }
            "macro" => {
                self.enter(start)?;
                self.macro_definition(start)?;
                self.leave();
                Ok(Hash::Text)
            }
            _ => {
                let args = self.macro_args(start)?;
                self.gobble_line_end();
                Ok(Hash::Node(Node::Call {
                    name: Rc::from(name.as_str()),
                    args,
                    at: self.base + start,
                }))
            }
        }
    }

    /// `#set` eats the spaces before it when only spaces precede it on its line.
    fn gobble_indent(&self, text: &mut String, directive: usize) {
        let mut p = directive;
        while p > 0 && matches!(self.src[p - 1], b' ' | b'\t') {
            p -= 1;
        }
        let at_line_start = p == 0 || self.src[p - 1] == b'\n';
        let indent = directive - p;
        if at_line_start && indent > 0 && text.len() >= indent {
            let keep = text.len() - indent;
            if text.is_char_boundary(keep) && text[keep..].bytes().all(|c| c == b' ' || c == b'\t')
            {
                text.truncate(keep);
            }
        }
    }

    /// Spaces then a line end after a directive are eaten with it.
    fn gobble_line_end(&mut self) {
        let mut p = self.pos;
        while matches!(self.src.get(p), Some(b' ' | b'\t')) {
            p += 1;
        }
        match self.src.get(p) {
            Some(b'\n') => self.pos = p + 1,
            Some(b'\r') => {
                self.pos = p + 1;
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
            }
            _ => {}
        }
    }

    /// Spaces (not line ends) between a directive's name and its `(`.
    fn open_paren(&mut self, directive: &str) -> Result<(), ParseError> {
        self.skip_inline_space();
        if self.peek() != Some(b'(') {
            return Err(self.error_at(self.pos, format!("expected ( after {directive}")));
        }
        self.pos += 1;
        self.skip_space();
        Ok(())
    }

    fn close_paren(&mut self, directive: &str) -> Result<(), ParseError> {
        self.skip_space();
        if self.peek() != Some(b')') {
            return Err(self.error_at(self.pos, format!("expected ) to close {directive}")));
        }
        self.pos += 1;
        Ok(())
    }

    /// `( expr )` of `#if` or `#elseif`, with the line end after it.
    fn condition(&mut self, directive: &str) -> Result<Expr, ParseError> {
        self.open_paren(directive)?;
        let condition = self.expr()?;
        self.close_paren(directive)?;
        self.gobble_line_end();
        Ok(condition)
    }

    fn set_args(&mut self, start: usize) -> Result<(Ref, Expr), ParseError> {
        self.open_paren("#set")?;
        let target = match self.expr_ref()? {
            Some(r) => r,
            None => return Err(self.error_at(self.pos, "#set needs a reference ($name) to set")),
        };
        if target.chain.iter().any(|a| matches!(a, Access::Method(..)))
            && matches!(target.chain.last(), Some(Access::Method(..)))
        {
            return Err(self.error_at(start, "#set cannot assign to a method call"));
        }
        self.skip_space();
        if self.peek() != Some(b'=') {
            return Err(self.error_at(self.pos, "expected = in #set"));
        }
        self.pos += 1;
        self.skip_space();
        let value = self.expr()?;
        self.close_paren("#set")?;
        Ok((target, value))
    }

    fn if_chain(&mut self, condition: Expr, start: usize) -> Result<Node, ParseError> {
        let mut branches = Vec::new();
        let mut condition = condition;
        loop {
            let (body, end) = self.block()?;
            branches.push((condition, body));
            match end {
                End::End => {
                    return Ok(Node::If {
                        branches,
                        otherwise: None,
                    });
                }
                End::ElseIf(next) => condition = next,
                End::Else => {
                    let (body, end) = self.block()?;
                    return match end {
                        End::End => Ok(Node::If {
                            branches,
                            otherwise: Some(body),
                        }),
                        End::Eof => Err(self.error_at(start, "#if has no #end")),
                        End::Else | End::ElseIf(_) => {
                            Err(self.error_at(self.pos, "#else or #elseif after #else"))
                        }
                    };
                }
                End::Eof => return Err(self.error_at(start, "#if has no #end")),
            }
        }
    }

    fn foreach(&mut self, start: usize) -> Result<Node, ParseError> {
        self.open_paren("#foreach")?;
        if self.peek() != Some(b'$') || !self.peek_at(1).is_some_and(is_ident_start) {
            return Err(self.error_at(self.pos, "expected the loop variable ($name) in #foreach"));
        }
        self.pos += 1;
        let var = self.identifier();
        self.skip_space();
        if !self.starts_with("in") || self.peek_at(2).is_some_and(is_ident_char) {
            return Err(self.error_at(self.pos, "expected `in` in #foreach"));
        }
        self.pos += 2;
        self.skip_space();
        let iterable = self.expr()?;
        self.close_paren("#foreach")?;
        self.gobble_line_end();
        let body = self.body_to_end(start, "#foreach")?;
        Ok(Node::Foreach {
            var,
            iterable,
            body,
            at: self.base + start,
        })
    }

    /// The body of a block directive other than `#if`, up to its `#end`.
    fn body_to_end(&mut self, start: usize, directive: &str) -> Result<Block, ParseError> {
        let (body, end) = self.block()?;
        match end {
            End::End => Ok(body),
            End::Eof => Err(self.error_at(start, format!("{directive} has no #end"))),
            End::Else | End::ElseIf(_) => {
                Err(self.error_at(self.pos, format!("#else inside {directive} without #if")))
            }
        }
    }

    fn define(&mut self, start: usize) -> Result<Node, ParseError> {
        self.open_paren("#define")?;
        if self.peek() != Some(b'$') || !self.peek_at(1).is_some_and(is_ident_start) {
            return Err(self.error_at(self.pos, "expected a reference ($name) in #define"));
        }
        self.pos += 1;
        let name = self.identifier();
        self.close_paren("#define")?;
        self.gobble_line_end();
        let body = self.body_to_end(start, "#define")?;
        Ok(Node::Define {
            name,
            body: Rc::new(body),
        })
    }

    fn macro_definition(&mut self, start: usize) -> Result<(), ParseError> {
        self.open_paren("#macro")?;
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            return Err(self.error_at(self.pos, "expected the macro's name in #macro"));
        }
        let name_start = self.pos;
        while self.peek().is_some_and(is_directive_char) {
            self.pos += 1;
        }
        let name = self.text[name_start..self.pos].to_owned();
        if matches!(
            name.as_str(),
            "set"
                | "if"
                | "elseif"
                | "else"
                | "end"
                | "foreach"
                | "break"
                | "stop"
                | "define"
                | "macro"
                | "include"
                | "parse"
                | "evaluate"
        ) {
            return Err(self.error_at(name_start, format!("#{name} cannot be a macro's name")));
        }
        let mut params = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'$') if self.peek_at(1).is_some_and(is_ident_start) => {
                    self.pos += 1;
                    params.push(self.identifier());
                }
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error_at(self.pos, "expected $parameter or ) in #macro")),
            }
        }
        self.gobble_line_end();
        // Defined before its body is parsed, so the body may call itself (bounded at run time).
        self.macros.insert(
            Rc::from(name.as_str()),
            Rc::new(Macro {
                params: params.clone(),
                body: Block::default(),
            }),
        );
        let body = self.body_to_end(start, "#macro")?;
        self.macros
            .insert(Rc::from(name.as_str()), Rc::new(Macro { params, body }));
        Ok(())
    }

    /// A macro call's arguments: expressions separated by spaces or commas. A call with no
    /// parentheses has no arguments.
    fn macro_args(&mut self, start: usize) -> Result<Vec<Expr>, ParseError> {
        let mut p = self.pos;
        while matches!(self.src.get(p), Some(b' ' | b'\t')) {
            p += 1;
        }
        if self.src.get(p) != Some(&b'(') {
            return Ok(Vec::new());
        }
        self.pos = p + 1;
        self.enter(start)?;
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.error_at(start, "expected ) to close the macro call")),
                _ => args.push(self.unary()?),
            }
        }
        self.leave();
        Ok(args)
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), ParseError> {
        if self.peek() != Some(byte) {
            return Err(self.error_at(self.pos, format!("expected {what}")));
        }
        self.pos += 1;
        Ok(())
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn skip_inline_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// The word at the cursor (`and`, `true`, ...), without taking it.
    fn word(&self) -> &str {
        let mut end = self.pos;
        while self.src.get(end).is_some_and(|&c| is_directive_char(c)) {
            end += 1;
        }
        &self.text[self.pos..end]
    }

    fn take_word(&mut self, word: &str) -> bool {
        if self.word() == word {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    pub(crate) fn expr(&mut self) -> Result<Expr, ParseError> {
        let at = self.pos;
        self.enter(at)?;
        let e = self.binary(0);
        self.leave();
        e
    }

    /// One precedence level of binary operators (left-associative), over the next one.
    fn binary(&mut self, level: usize) -> Result<Expr, ParseError> {
        let Some(operators) = BINARY_LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        loop {
            self.skip_space();
            let Some(op) = self.take_operator(operators) else {
                return Ok(left);
            };
            self.skip_space();
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn take_operator(&mut self, operators: &[(&str, Option<&str>, Op)]) -> Option<Op> {
        for &(symbol, word, op) in operators {
            if self.starts_with(symbol) {
                self.pos += symbol.len();
                return Some(op);
            }
            if let Some(word) = word
                && self.take_word(word)
            {
                return Some(op);
            }
        }
        None
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let at = self.pos;
        if self.peek() == Some(b'!') && self.peek_at(1) != Some(b'=') {
            self.pos += 1;
            self.skip_space();
            self.enter(at)?;
            let inner = self.unary()?;
            self.leave();
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.take_word("not") {
            self.skip_space();
            self.enter(at)?;
            let inner = self.unary()?;
            self.leave();
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek() == Some(b'-') && !self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            self.skip_space();
            self.enter(at)?;
            let inner = self.unary()?;
            self.leave();
            return Ok(Expr::Negate(Box::new(inner)));
        }
        self.primary()
    }

    /// A reference inside an expression: `$x`, `$!x`, `${x}`.
    fn expr_ref(&mut self) -> Result<Option<Ref>, ParseError> {
        if self.peek() != Some(b'$') {
            return Ok(None);
        }
        let start = self.pos;
        let mut p = 1;
        let quiet = self.peek_at(p) == Some(b'!');
        if quiet {
            p += 1;
        }
        let formal = self.peek_at(p) == Some(b'{');
        if formal {
            p += 1;
        }
        if !self.peek_at(p).is_some_and(is_ident_start) {
            return Err(self.error_at(start, "expected a name after $"));
        }
        self.pos += p;
        Ok(Some(self.reference_body(start, quiet, formal)?))
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.pos;
        match self.peek() {
            Some(b'$') => match self.expr_ref()? {
                Some(reference) => Ok(Expr::Ref(reference)),
                None => Err(self.error_at(at, "expected a reference after $")),
            },
            Some(b'(') => {
                self.pos += 1;
                self.skip_space();
                let inner = self.expr()?;
                self.skip_space();
                self.expect(b')', ")")?;
                Ok(inner)
            }
            Some(b'"') => self.double_quoted(),
            Some(b'\'') => self.single_quoted(),
            Some(b'[') => self.list_or_range(),
            Some(b'{') => self.map_literal(),
            Some(c) if c.is_ascii_digit() || c == b'-' => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let word = self.word().to_owned();
                let value = match word.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => {
                        return Err(self.error_at(
                            at,
                            format!("unexpected `{word}` (a name needs $, a string needs quotes)"),
                        ));
                    }
                };
                self.pos += word.len();
                Ok(Expr::Literal(value))
            }
            Some(_) => {
                let c = self.text[self.pos..].chars().next().unwrap_or('?');
                Err(self.error_at(at, format!("unexpected `{c}` in an expression")))
            }
            None => Err(self.error_at(at, "the template ends inside an expression")),
        }
    }

    fn number(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let mut float = false;
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.pos += 1;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        let text = &self.text[start..self.pos];
        if float {
            text.parse::<f64>()
                .map(|x| Expr::Literal(Value::Float(x)))
                .map_err(|_| self.error_at(start, format!("bad number {text}")))
        } else {
            match text.parse::<i64>() {
                Ok(i) => Ok(Expr::Literal(Value::Int(i))),
                Err(_) => Err(self.error_at(start, format!("bad number {text}"))),
            }
        }
    }

    /// `'text'`: no interpolation; `''` is one quote.
    fn single_quoted(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let content = self.quoted(b'\'', start)?;
        Ok(Expr::Literal(Value::Str(Rc::from(
            content.replace("''", "'").as_str(),
        ))))
    }

    /// `"text"`: references and directives inside are rendered; `""` is one quote.
    /// Backslashes are kept as written (so `"\\'"` is the regex `\\'`, as AWS's
    /// `replaceAll("\\'","'")` idiom needs).
    fn double_quoted(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let content = self.quoted(b'"', start)?;
        let content = content.replace("\"\"", "\"");
        if !content.contains(['$', '#']) {
            return Ok(Expr::Literal(Value::Str(Rc::from(content.as_str()))));
        }
        let mut inner = Parser {
            src: content.as_bytes(),
            text: &content,
            pos: 0,
            base: self.base + start + 1,
            depth: self.depth,
            max_depth: self.max_depth,
            macros: &mut *self.macros,
            origin: self.origin,
        };
        let (block, end) = inner.block()?;
        match end {
            End::Eof => Ok(Expr::Interpolated(block)),
            _ => Err(self.error_at(
                start,
                "#end, #else or #elseif without its directive in a string",
            )),
        }
    }

    /// The raw text between quotes; a doubled quote does not end it.
    fn quoted(&mut self, quote: u8, start: usize) -> Result<String, ParseError> {
        self.pos += 1;
        let from = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, "unclosed string")),
                Some(c) if c == quote => {
                    if self.peek_at(1) == Some(quote) {
                        self.pos += 2;
                    } else {
                        let content = self.text[from..self.pos].to_owned();
                        self.pos += 1;
                        return Ok(content);
                    }
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    fn list_or_range(&mut self) -> Result<Expr, ParseError> {
        let open = self.pos;
        self.pos += 1;
        self.enter(open)?;
        self.skip_space();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.leave();
            return Ok(Expr::List(Vec::new()));
        }
        let first = self.expr()?;
        self.skip_space();
        if self.starts_with("..") {
            self.pos += 2;
            self.skip_space();
            let last = self.expr()?;
            self.skip_space();
            self.expect(b']', "] to close the range")?;
            self.leave();
            return Ok(Expr::Range(Box::new(first), Box::new(last)));
        }
        let mut items = vec![first];
        loop {
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_space();
                    items.push(self.expr()?);
                }
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error_at(self.pos, "expected , or ] in the list")),
            }
        }
        self.leave();
        Ok(Expr::List(items))
    }

    fn map_literal(&mut self) -> Result<Expr, ParseError> {
        let open = self.pos;
        self.pos += 1;
        self.enter(open)?;
        let mut entries = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.leave();
            return Ok(Expr::Map(entries));
        }
        loop {
            self.skip_space();
            let key = self.expr()?;
            self.skip_space();
            self.expect(b':', ": between a key and its value")?;
            self.skip_space();
            let value = self.expr()?;
            entries.push((key, value));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error_at(self.pos, "expected , or } in the map")),
            }
        }
        self.leave();
        Ok(Expr::Map(entries))
    }
}

/// Binary operators by precedence, loosest first: each with its symbol and its word form.
/// Within a level, a longer symbol comes before its prefix (`<=` before `<`).
const BINARY_LEVELS: &[&[(&str, Option<&str>, Op)]] = &[
    &[("||", Some("or"), Op::Or)],
    &[("&&", Some("and"), Op::And)],
    &[("==", Some("eq"), Op::Eq), ("!=", Some("ne"), Op::Ne)],
    &[
        ("<=", Some("le"), Op::Le),
        (">=", Some("ge"), Op::Ge),
        ("<", Some("lt"), Op::Lt),
        (">", Some("gt"), Op::Gt),
    ],
    &[("+", None, Op::Add), ("-", None, Op::Sub)],
    &[
        ("*", None, Op::Mul),
        ("/", None, Op::Div),
        ("%", None, Op::Rem),
    ],
];

enum Hash {
    /// The `#` was text, a comment or an unparsed block (written to the text buffer).
    Text,
    Node(Node),
    End(End),
}
