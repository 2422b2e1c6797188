//! OpenAPI in: API Gateway exports (OpenAPI 3.0, 3.1 and Swagger 2.0, JSON or YAML, with
//! their `x-amazon-apigateway-*` extensions) imported as Edgeway API definitions; and the docs
//! pages stages serve. (Out, `config::export`: it works on the config's own raw types.)
//!
//! `import` reads a document and every sibling file its `$ref`s name ([`document`]), and maps
//! it onto the `apis:` entry a user would write ([`import`]): the result is printed by
//! `edgeway import openapi` and loaded by a config API's `openapi:` through the same
//! validation as a hand-written API. What Edgeway does not carry out is a warning with the
//! JSON pointer of what it concerns; what it cannot serve is an error.

mod docs;
mod document;
mod import;
pub mod tree;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use docs::DocsSites;
pub use document::Version;

/// Marks a component schema that is not one of the API's models (`false`): a definition an
/// Edgeway export hoisted out of a model, or the gateway's error schema.
pub const NOT_A_MODEL: &str = "x-edgeway-model";
use tree::Tree;

/// A route path's parameters: (name, greedy), `/files/{id}/{rest+}` → `id`, `rest` (greedy).
pub fn path_params(path: &str) -> Vec<(String, bool)> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|p| match p.strip_suffix('+') {
            Some(name) => (name.to_owned(), true),
            None => (p.to_owned(), false),
        })
        .collect()
}

/// What an import needs besides the document.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The API's name; by default the document's `info.title`, as a name (`Pet Store` →
    /// `pet-store`).
    pub name: Option<String>,
    /// Lambda functions → the plugins that stand in for them, by function ARN (with or
    /// without a version or alias) or by function name.
    pub functions: BTreeMap<String, String>,
}

/// One warning or error: where in the document (`#/paths/~1pets/get/...`, or
/// `common.yaml#/...` in a sibling file; empty for the document as a whole) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub pointer: String,
    pub message: String,
}

impl Finding {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// An imported API.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The `apis:` entry, keys in the order a user would write them.
    pub api: Tree,
    pub version: Version,
    /// What the import does not carry out, each with where.
    pub warnings: Vec<Finding>,
    /// The stage variables integrations use (`${stageVariables.origin}`): every stage must
    /// give them a value, which a document does not carry.
    pub stage_variables: Vec<String>,
    /// Every file read: the document, then the files its references reach.
    pub files: Vec<PathBuf>,
}

impl Imported {
    /// The definition as YAML: one `apis:` entry.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.api).unwrap_or_default()
    }
}

/// A document that cannot be imported: every error found.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ImportError {
    pub file: PathBuf,
    pub errors: Vec<Finding>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {e}", self.file.display())?;
        }
        Ok(())
    }
}

/// Imports the document at `path`.
pub fn import(path: &Path, options: &Options) -> Result<Imported, ImportError> {
    run(path, document::Document::load(path), options)
}

/// Imports document text already read; `path` names it and anchors its references.
pub fn import_text(text: &str, path: &Path, options: &Options) -> Result<Imported, ImportError> {
    let doc = document::parse(text)
        .map_err(|why| Finding::new("", why))
        .and_then(|root| document::Document::from_tree(path, root));
    run(path, doc, options)
}

fn run(
    path: &Path,
    doc: Result<document::Document, Finding>,
    options: &Options,
) -> Result<Imported, ImportError> {
    let fail = |errors| ImportError {
        file: path.to_owned(),
        errors,
    };
    let doc = doc.map_err(|e| fail(vec![e]))?;
    let out = import::Importer::new(&doc, options).run();
    if !out.errors.is_empty() {
        return Err(fail(out.errors));
    }
    Ok(Imported {
        api: out.api,
        version: doc.version,
        warnings: out.warnings,
        stage_variables: out.stage_variables,
        files: doc.paths().map(Path::to_owned).collect(),
    })
}
