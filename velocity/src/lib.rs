//! Velocity (VTL) mapping templates as API Gateway runs them.
//!
//! No maintained Velocity engine exists in Rust, and a template is rendered on every mapped
//! request, so this is a small engine written for the job: [`Template::parse`] turns a
//! template into a tree once (refusing bad input with its line and column), and
//! [`Template::render`] evaluates it over a [`Scope`] of variables, within [`Limits`] that
//! bound the work any template can make (loop iterations, steps, output size, nesting), so
//! an untrusted template fails its request instead of stalling a worker.
//!
//! The language is Velocity 1.7's, with API Gateway's differences where it has them (an
//! undefined reference prints nothing; maps print as `{a=1}`; `null == ""` in `#if`); see
//! [`value`] for how values print and [`aws`] for `$input`, `$util` and `$context`.
//!
//! Left out: `#include`, `#parse` and `#evaluate` (a template reads nothing else; refused at
//! parse time), `#macro` arguments by name (they are evaluated once, by value), and
//! `#foreach` over an iterator a host object would give (lists, maps and ranges only).

pub mod aws;
mod eval;
pub mod jsonpath;
mod methods;
pub mod parse;
pub mod value;

use std::collections::HashMap;
use std::rc::Rc;

pub use eval::Scope;
pub use value::{Map, Object, Value};

/// What one template may take: checked when it is parsed and while it renders.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest template, in bytes (API Gateway's limit: 300 KB).
    pub max_template_bytes: usize,
    /// Most iterations of one `#foreach` (API Gateway's limit: 1,000). More fail the render.
    pub max_iterations: usize,
    /// Deepest nesting of directives, expressions and macro calls.
    pub max_depth: usize,
    /// Most evaluation steps in one render (a step is one node or expression).
    pub max_steps: u64,
    /// Largest output, and largest string a render may build, in bytes.
    pub max_output_bytes: usize,
    /// Longest list a range literal may make (`[1..n]` outside a `#foreach`).
    pub max_range: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_template_bytes: 300 * 1024,
            max_iterations: 1_000,
            max_depth: 64,
            max_steps: 5_000_000,
            max_output_bytes: 10 * 1024 * 1024,
            max_range: 100_000,
        }
    }
}

/// A template that cannot be parsed: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(source: &str, offset: usize, message: String) -> Self {
        let (line, column) = line_column(source, offset);
        Self {
            line,
            column,
            message,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Why a render failed (the request that ran it fails; the template stays loaded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("line {line}, column {column}: #foreach ran past its limit of {limit} iterations")]
    TooManyIterations {
        line: usize,
        column: usize,
        limit: usize,
    },
    #[error("the template took more than {0} steps")]
    TooManySteps(u64),
    #[error("the template's output or a string it built is over {0} bytes")]
    TooLarge(usize),
    #[error("line {line}, column {column}: {message}")]
    At {
        line: usize,
        column: usize,
        message: String,
    },
}

/// A parsed template, ready to render any number of times.
#[derive(Debug)]
pub struct Template {
    pub(crate) source: Rc<str>,
    pub(crate) body: parse::Block,
    pub(crate) macros: HashMap<Rc<str>, Rc<parse::Macro>>,
    pub(crate) limits: Limits,
}

impl Template {
    /// Parses `source`, or says where and why it cannot be.
    pub fn parse(source: &str, limits: &Limits) -> Result<Self, ParseError> {
        if source.len() > limits.max_template_bytes {
            return Err(ParseError {
                line: 1,
                column: 1,
                message: format!(
                    "the template is {} bytes, over the limit of {} bytes",
                    source.len(),
                    limits.max_template_bytes
                ),
            });
        }
        let mut macros = HashMap::new();
        let body = parse::parse(source, limits, &mut macros)?;
        Ok(Self {
            source: Rc::from(source),
            body,
            macros,
            limits: limits.clone(),
        })
    }

    /// Renders the template with the variables in `scope`, which keeps what the template
    /// set (the host reads overrides from it afterwards).
    pub fn render(&self, scope: &mut Scope) -> Result<String, RenderError> {
        eval::render(self, scope)
    }

    /// The template's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}
