//! APIs that name an OpenAPI document (`openapi: petstore.json`): the document is imported
//! (see [`crate::openapi`]) and merged with what the config itself gives for the API, before
//! validation, so an imported API is checked and built exactly as a hand-written one.
//!
//! What the config gives wins: its `stages` replace the document's, its `authorizers`,
//! `models` and `gateway_responses` replace the document's of the same name, its `cors` and
//! `api_key_source` replace the document's, and its `routes` come first (the document's
//! follow, so an error in the config's own routes keeps its index).

use std::path::{Path, PathBuf};

use super::ConfigError;
use super::raw::{RawApi, RawConfig};
use crate::openapi;

/// What importing a config's documents found besides the APIs.
#[derive(Debug, Default)]
pub(super) struct Expanded {
    /// Every file read (documents and the files their `$ref`s reach).
    pub files: Vec<PathBuf>,
    /// Import warnings, each naming its API and pointer.
    pub warnings: Vec<String>,
    /// For each imported API: its index, its document and how many routes came from the
    /// config (the document's follow).
    pub imported: Vec<(usize, PathBuf, usize)>,
}

pub(super) fn expand(raw: &mut RawConfig, base_dir: &Path) -> Result<Expanded, Vec<ConfigError>> {
    let mut out = Expanded::default();
    let mut errors = Vec::new();
    for (i, api) in raw.apis.iter_mut().enumerate() {
        let Some(source) = &api.openapi else {
            continue;
        };
        let path = format!("apis[{i}].openapi");
        let line = Some(source.referenced.line()).filter(|l| *l > 0);
        let file = base_dir.join(source.value.file.trim());
        let options = openapi::Options {
            name: Some(api.name.value.clone()),
            functions: source.value.functions.clone(),
        };
        let strict = source.value.strict;
        let imported = match openapi::import(&file, &options) {
            Ok(imported) => imported,
            Err(e) => {
                errors.extend(e.errors.iter().map(|f| ConfigError {
                    path: path.clone(),
                    line,
                    message: format!("{}: {f}", file.display()),
                }));
                continue;
            }
        };
        for w in &imported.warnings {
            let message = format!("{}: {w}", file.display());
            if strict {
                errors.push(ConfigError {
                    path: path.clone(),
                    line,
                    message: format!("{message} (refused: `strict: true`)"),
                });
            } else {
                out.warnings.push(format!("{path}: {message}"));
            }
        }
        let from_document = serde_json::to_string(&imported.api)
            .map_err(|e| e.to_string())
            .and_then(|json| serde_json::from_str::<RawApi>(&json).map_err(|e| e.to_string()));
        match from_document {
            Ok(document) => {
                out.imported.push((i, file.clone(), api.routes.len()));
                merge(api, document);
            }
            Err(e) => errors.push(ConfigError {
                path: path.clone(),
                line,
                message: format!(
                    "{}: the imported definition is not a valid API: {e}",
                    file.display()
                ),
            }),
        }
        out.files.extend(imported.files);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn merge(config: &mut RawApi, document: RawApi) {
    if config.stages.is_empty() {
        config.stages = document.stages;
    }
    for (name, a) in document.authorizers {
        config.authorizers.entry(name).or_insert(a);
    }
    for (name, m) in document.models {
        config.models.entry(name).or_insert(m);
    }
    for (kind, r) in document.gateway_responses {
        config.gateway_responses.entry(kind).or_insert(r);
    }
    config.cors = config.cors.take().or(document.cors);
    config.api_key_source = config.api_key_source.take().or(document.api_key_source);
    config.routes.extend(document.routes);
}

/// Says where an error in an imported API came from: the config names the document only, so
/// a path like `apis[0].routes[4]` points into the definition the import made.
pub(super) fn annotate(errors: &mut [ConfigError], expanded: &Expanded) {
    for e in errors {
        for (i, file, own_routes) in &expanded.imported {
            let prefix = format!("apis[{i}].");
            let Some(rest) = e.path.strip_prefix(&prefix) else {
                continue;
            };
            let from_document = match rest
                .strip_prefix("routes[")
                .and_then(|r| r.split(']').next())
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(route) => route >= *own_routes,
                None => e.line.is_none(),
            };
            if from_document {
                e.message.push_str(&format!(
                    " (in the definition imported from {}; `edgeway import openapi {}` prints it)",
                    file.display(),
                    file.display()
                ));
            }
        }
    }
}
