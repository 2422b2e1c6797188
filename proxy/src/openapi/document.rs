//! Reading an OpenAPI document: JSON or YAML, its version, and the `$ref`s it makes, local
//! (`#/components/schemas/Pet`) or into sibling files (`common.yaml#/components/schemas/Pet`).
//!
//! Every file a document refers to is read when the document is, so resolving a reference is
//! a lookup and the node knows every file to watch.

use std::path::{Path, PathBuf};

use super::Finding;
use super::tree::Tree;

/// Which OpenAPI a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Swagger 2.0: `securityDefinitions`, `definitions`, `host` + `basePath`, body parameters.
    Swagger2,
    /// OpenAPI 3.0.x: schemas are OpenAPI's JSON Schema subset (draft 4 with `nullable`).
    OpenApi30,
    /// OpenAPI 3.1.x: schemas are JSON Schema 2020-12.
    OpenApi31,
}

/// A place in one of a document's files: which file (0 is the document itself) and the JSON
/// pointer within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct At {
    pub file: usize,
    pub pointer: String,
}

impl At {
    pub fn root(pointer: impl Into<String>) -> Self {
        Self {
            file: 0,
            pointer: pointer.into(),
        }
    }

    /// This place's child `token` (escaped here).
    pub fn child(&self, token: &str) -> Self {
        Self {
            file: self.file,
            pointer: format!("{}/{}", self.pointer, super::tree::escape(token)),
        }
    }
}

/// A document and every file its references reach.
#[derive(Debug)]
pub struct Document {
    pub version: Version,
    /// `files[0]` is the document; the rest are the files its `$ref`s name.
    files: Vec<(PathBuf, Tree)>,
}

/// How many `$ref`s in a row may lead to another before the chain counts as a cycle.
const MAX_REF_CHAIN: usize = 32;
/// How many files a document may pull in through `$ref`s.
const MAX_FILES: usize = 64;

impl Document {
    /// Reads the document at `path` and every sibling file its references name.
    pub fn load(path: &Path) -> Result<Self, Finding> {
        let root = read_file(path, None)?;
        Self::from_tree(path, root)
    }

    /// A document already read; `path` names it and anchors its relative references.
    pub fn from_tree(path: &Path, root: Tree) -> Result<Self, Finding> {
        let version = version(&root)?;
        let mut doc = Self {
            version,
            files: vec![(path.to_owned(), root)],
        };
        let mut next = 0;
        while next < doc.files.len() {
            let mut wanted = Vec::new();
            collect_file_refs(&doc.files[next].1, &mut wanted);
            let base = doc.files[next]
                .0
                .parent()
                .unwrap_or(Path::new("."))
                .to_owned();
            for file in wanted {
                let full = base.join(&file);
                if doc.files.iter().any(|(p, _)| same_file(p, &full)) {
                    continue;
                }
                if doc.files.len() >= MAX_FILES {
                    return Err(Finding::new(
                        "",
                        format!("the document's references reach more than {MAX_FILES} files"),
                    ));
                }
                let tree = read_file(&full, Some(&file))?;
                doc.files.push((full, tree));
            }
            next += 1;
        }
        Ok(doc)
    }

    /// Every file read: the document, then the files its references reach.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    pub fn root(&self) -> &Tree {
        &self.files[0].1
    }

    /// The value at `at`.
    pub fn get(&self, at: &At) -> Option<&Tree> {
        self.files.get(at.file)?.1.pointer(&at.pointer)
    }

    /// How a finding names `at`: `#/paths/~1pets` in the document, `common.yaml#/...` in
    /// another file.
    pub fn name(&self, at: &At) -> String {
        if at.file == 0 {
            return format!("#{}", at.pointer);
        }
        let file = self.files[at.file]
            .0
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{file}#{}", at.pointer)
    }

    /// Follows `value`'s `$ref` (and the target's, and so on) from `at`, the place it was
    /// found: the value it ends at and that value's place. A value without `$ref` is itself.
    pub fn resolve<'a>(&'a self, value: &'a Tree, at: &At) -> Result<(&'a Tree, At), Finding> {
        let mut value = value;
        let mut at = at.clone();
        for _ in 0..MAX_REF_CHAIN {
            let Some(reference) = value.get("$ref") else {
                return Ok((value, at));
            };
            let Some(reference) = reference.as_str() else {
                return Err(Finding::new(
                    format!("{}/$ref", self.name(&at)),
                    "`$ref` must be a string",
                ));
            };
            let target = self.target(reference, &at)?;
            value = self.get(&target).ok_or_else(|| {
                Finding::new(
                    format!("{}/$ref", self.name(&at)),
                    format!(
                        "{reference} names nothing in {}",
                        self.files[target.file].0.display()
                    ),
                )
            })?;
            at = target;
        }
        Err(Finding::new(
            self.name(&at),
            format!("more than {MAX_REF_CHAIN} `$ref`s in a row (a cycle?)"),
        ))
    }

    /// The place a `$ref` written at `at` names.
    pub fn target(&self, reference: &str, at: &At) -> Result<At, Finding> {
        let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let bad = |why: &str| {
            Finding::new(
                format!("{}/$ref", self.name(at)),
                format!("{reference}: {why}"),
            )
        };
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(bad("only JSON pointer fragments (#/...) are supported"));
        }
        let pointer = percent_encoding::percent_decode_str(pointer)
            .decode_utf8_lossy()
            .into_owned();
        if file.is_empty() {
            return Ok(At {
                file: at.file,
                pointer,
            });
        }
        if file.contains("://") {
            return Err(bad(
                "remote references are not fetched; save the file beside the document",
            ));
        }
        let base = self.files[at.file].0.parent().unwrap_or(Path::new("."));
        let full = base.join(file);
        let index = self
            .files
            .iter()
            .position(|(p, _)| same_file(p, &full))
            .ok_or_else(|| bad("the file was not read"))?;
        Ok(At {
            file: index,
            pointer,
        })
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// The files named by `$ref`s anywhere in `tree` (`other.yaml#/...`), in order, once each.
fn collect_file_refs(tree: &Tree, out: &mut Vec<String>) {
    match tree {
        Tree::Object(map) => {
            for (key, value) in map {
                if key == "$ref"
                    && let Some(reference) = value.as_str()
                {
                    let file = reference.split('#').next().unwrap_or_default();
                    if !file.is_empty() && !file.contains("://") && !out.iter().any(|f| f == file) {
                        out.push(file.to_owned());
                    }
                } else {
                    collect_file_refs(value, out);
                }
            }
        }
        Tree::Array(items) => items.iter().for_each(|i| collect_file_refs(i, out)),
        _ => {}
    }
}

/// Reads a JSON or YAML file: the document (`reference` `None`; errors about it are named by
/// its path already) or a file a `$ref` names (named in the error as the `$ref` wrote it).
fn read_file(path: &Path, reference: Option<&str>) -> Result<Tree, Finding> {
    let what = match reference {
        None => "the document".to_owned(),
        Some(file) => format!("{file} (named by a $ref)"),
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Finding::new("", format!("cannot read {what}: {e}")))?;
    parse(&text).map_err(|why| Finding::new("", format!("{what} is {why}")))
}

/// JSON or YAML text (JSON when it starts with `{`; YAML is a superset, but JSON's own parser
/// gives the better error for a broken JSON file).
pub fn parse(text: &str) -> Result<Tree, String> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
    } else {
        let options = serde_saphyr::options! { strict_booleans: true, with_snippet: false };
        serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| format!("not valid YAML: {}", e.to_string().trim()))
    }
}

fn version(root: &Tree) -> Result<Version, Finding> {
    if root.as_object().is_none() {
        return Err(Finding::new(
            "",
            format!("an OpenAPI document is an object, not {}", root.kind()),
        ));
    }
    if let Some(v) = root.get("swagger") {
        return match v.as_text().as_deref() {
            Some("2.0") => Ok(Version::Swagger2),
            other => Err(Finding::new(
                "#/swagger",
                format!("Swagger {} is not supported; 2.0 is", other.unwrap_or("?")),
            )),
        };
    }
    match root.get("openapi").and_then(Tree::as_str) {
        Some(v) if v.starts_with("3.0") => Ok(Version::OpenApi30),
        Some(v) if v.starts_with("3.1") => Ok(Version::OpenApi31),
        Some(v) => Err(Finding::new(
            "#/openapi",
            format!("OpenAPI {v} is not supported; 3.0.x, 3.1.x and Swagger 2.0 are"),
        )),
        None => Err(Finding::new(
            "",
            "neither `openapi: 3.x` nor `swagger: \"2.0\"` at the top: is this an OpenAPI document?",
        )),
    }
}
