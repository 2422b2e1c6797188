//! OpenAPI in and out: API Gateway exports (OpenAPI 3.0, 3.1 and Swagger 2.0, JSON or YAML,
//! with their `x-amazon-apigateway-*` extensions) imported as Edgeway API definitions.
//!
//! `import` reads a document and every sibling file its `$ref`s name ([`document`]), and maps
//! it onto the `apis:` entry a user would write ([`import`]): the result is printed by
//! `edgeway import openapi` and loaded by a config API's `openapi:` through the same
//! validation as a hand-written API. What Edgeway does not carry out is a warning with the
//! JSON pointer of what it concerns; what it cannot serve is an error.

mod docs;
mod document;
mod export;
mod import;
pub mod tree;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use docs::DocsSites;
pub use document::Version;
pub use export::{ExportOptions, export};
use tree::Tree;

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

/// A config's APIs as they are defined, kept by a generation so the admin API and docs pages
/// can export them.
#[derive(Debug, Default)]
pub struct Definitions {
    /// Each API's definition and its stages' names, in config order.
    apis: Vec<(std::sync::Arc<crate::config::raw::RawApi>, Vec<String>)>,
    origin: Option<String>,
    base_dir: PathBuf,
}

impl Definitions {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let apis = config
            .definitions
            .iter()
            .filter_map(|d| {
                let served = config.apis.iter().find(|a| a.name == d.name.value)?;
                Some((
                    d.clone(),
                    served.stages.iter().map(|s| s.name.clone()).collect(),
                ))
            })
            .collect();
        Self {
            apis,
            origin: config.origin.clone(),
            base_dir: config.base_dir.clone(),
        }
    }

    /// The OpenAPI document of `api` for `stage` (its first stage if `None`); `None` if there
    /// is no such API or stage.
    pub fn export(
        &self,
        api: &str,
        stage: Option<&str>,
        extensions: bool,
        server_url: Option<String>,
    ) -> Option<Tree> {
        let (definition, stages) = self.apis.iter().find(|(d, _)| d.name.value == api)?;
        let stage = match stage {
            Some(s) => stages.iter().find(|st| *st == s)?,
            None => stages.first()?,
        };
        let options = ExportOptions {
            stage: stage.clone(),
            server_url,
            extensions,
            origin: self.origin.clone(),
        };
        Some(export(definition, &options, &self.base_dir))
    }

    /// The APIs' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.apis.iter().map(|(d, _)| d.name.value.as_str())
    }
}

#[cfg(test)]
mod round_trip {
    //! Import → export → import over generated Edgeway APIs: an export with API Gateway's
    //! extensions imports back as the definition it was made from.
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,6}".prop_map(|s| s),
            "[a-z]{1,4}".prop_map(|s| format!("{{{s}}}")),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        (prop::collection::vec(segment(), 1..4), any::<bool>()).prop_map(|(segments, greedy)| {
            let mut seen = Vec::new();
            let mut path = String::new();
            for (i, s) in segments.iter().enumerate() {
                // Parameter names are unique within a path.
                let s = if s.starts_with('{') && seen.contains(s) {
                    format!("{{p{i}}}")
                } else {
                    s.clone()
                };
                seen.push(s.clone());
                path.push('/');
                path.push_str(&s);
            }
            if greedy {
                path.push_str("/{rest+}");
            }
            path
        })
    }

    fn integration(path: &str) -> impl Strategy<Value = Value> + use<> {
        let params: String = path
            .split('/')
            .filter(|s| s.starts_with('{'))
            .map(|s| format!("/{s}"))
            .collect();
        let proxy = format!("http://origin.example/t{params}");
        prop_oneof![
            Just(json!({ "http_proxy": proxy })),
            (200u16..599, "[a-z ]{0,12}", any::<bool>()).prop_map(|(status, body, header)| {
                let mut mock = json!({ "status": status });
                if header {
                    mock["headers"] = json!({ "x-mock": "yes" });
                }
                if !body.is_empty() {
                    mock["body"] = json!(body);
                }
                json!({ "mock": mock })
            }),
            (200u16..299).prop_map(|status| json!({ "http": {
                "method": "POST",
                "uri": "http://origin.example/mapped",
                "request_templates": { "application/json": "{\"a\": $input.json('$.a')}" },
                "passthrough": "never",
                "responses": [
                    { "selection_pattern": "4\\d{2}", "status": 400 },
                    { "status": status, "response_templates": { "application/json": "{}" } },
                ],
            }})),
            Just(json!({ "function": "orders" })),
        ]
    }

    fn route() -> impl Strategy<Value = Value> {
        (
            path(),
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "ANY"]),
        )
            .prop_flat_map(|(path, method)| {
                (
                    Just(format!("{method} {path}")),
                    integration(&path),
                    any::<bool>(),
                    any::<bool>(),
                    prop::option::of(prop::sample::select(vec!["all", "parameters"])),
                )
            })
            .prop_map(|(key, integration, key_required, authorized, validation)| {
                let mut route = json!({ "route": key });
                if authorized {
                    route["auth"] = json!("gate");
                }
                if key_required {
                    route["api_key_required"] = json!(true);
                }
                match validation {
                    Some("all") => {
                        route["validation"] =
                            json!({ "validate": "all", "body": { "model": "Pet" } });
                    }
                    Some(mode) => {
                        route["validation"] =
                            json!({ "validate": mode, "required": ["querystring.q", "header.x-tenant"] });
                    }
                    None => {}
                }
                route["integration"] = integration;
                route
            })
    }

    fn api() -> impl Strategy<Value = Value> {
        prop::collection::vec(route(), 1..8).prop_map(|routes| {
            // An export groups routes by path (in first-seen order) and a path's methods are
            // unique: generate them so.
            let mut grouped: Vec<(String, Vec<Value>)> = Vec::new();
            for r in routes {
                let key = r["route"].as_str().unwrap_or_default().to_owned();
                let (method, path) = key.split_once(' ').unwrap_or_default();
                match grouped.iter_mut().find(|(p, _)| p == path) {
                    Some((_, list)) => {
                        if !list.iter().any(|x| {
                            x["route"].as_str().unwrap_or_default().starts_with(&format!("{method} "))
                        }) {
                            list.push(r);
                        }
                    }
                    None => grouped.push((path.to_owned(), vec![r])),
                }
            }
            let routes: Vec<Value> = grouped.into_iter().flat_map(|(_, l)| l).collect();
            json!({
                "name": "api",
                "stages": { "prod": {} },
                "authorizers": {
                    "gate": { "plugin": "gate-plugin", "identity_source": ["header.authorization", "query.token"], "result_ttl_s": 60 },
                },
                "models": { "Pet": { "schema": {
                    "type": "object", "required": ["name"],
                    "properties": { "name": { "type": "string" }, "tag": { "type": ["string", "null"] } },
                } } },
                "routes": routes,
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn an_export_imports_back_as_the_same_api(definition in api()) {
            let raw: crate::config::raw::RawApi =
                serde_json::from_value(definition.clone()).expect("a generated API is a valid definition");
            let options = ExportOptions {
                stage: "prod".into(),
                server_url: Some("https://api.example.com".into()),
                extensions: true,
                origin: None,
            };
            let document = export(&raw, &options, Path::new("."));
            let text = serde_json::to_string(&document).expect("JSON");
            let mut import_options = Options { name: Some("api".into()), ..Default::default() };
            for plugin in ["orders", "gate-plugin"] {
                import_options.functions.insert(plugin.into(), plugin.into());
            }
            let imported = import_text(&text, Path::new("export.json"), &import_options)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let again: Value = imported.api.to_json();
            prop_assert_eq!(again, definition, "document: {}", text);
        }
    }
}
