//! An API's `models` (JSON Schemas by name) and a route's `validation`. Schemas are read and
//! compiled here, so a schema that does not compile is a config error and requests only run
//! compiled validators.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::Errors;
use crate::config::model::*;
use crate::config::raw::*;

/// An API's models by name; `None` for one that did not compile (already reported).
pub(super) type Models = BTreeMap<String, Option<Arc<BodySchema>>>;

/// Compiles the schema `raw` names. `models` are the API's compiled models (empty while the
/// models themselves are compiled, where `model` is not allowed).
fn schema(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawSchemaSource>,
    models: Option<&Models>,
    base_dir: &Path,
) -> Option<Arc<BodySchema>> {
    let s = &raw.value;
    let given = usize::from(s.model.is_some())
        + usize::from(s.file.is_some())
        + usize::from(s.schema.is_some());
    let expected = if models.is_some() {
        "`model: NAME`, `file: PATH` or `schema: {...}`"
    } else {
        "`file: PATH` or `schema: {...}`"
    };
    if given != 1 {
        let problem = if given == 0 {
            "is empty"
        } else {
            "has more than one source"
        };
        errors.add(
            path,
            Some(raw),
            format!("{problem}; give exactly one of {expected}"),
        );
        return None;
    }
    if let Some(name) = &s.model {
        let Some(models) = models else {
            errors.add(
                format!("{path}.model"),
                Some(name),
                format!("a model cannot refer to another model; give {expected}"),
            );
            return None;
        };
        let wanted = name.value.trim();
        return match models.get(wanted) {
            Some(compiled) => compiled.clone(),
            None => {
                let hint = crate::config::did_you_mean(wanted, models.keys().map(String::as_str))
                    .map(|d| format!("; did you mean \"{d}\"?"))
                    .unwrap_or_default();
                errors.add(
                    format!("{path}.model"),
                    Some(name),
                    format!("no model named \"{wanted}\" in this api's `models`{hint}"),
                );
                None
            }
        };
    }
    let (origin, value) = if let Some(file) = &s.file {
        let full = base_dir.join(file.value.trim());
        let text = match std::fs::read(&full) {
            Ok(text) => text,
            Err(e) => {
                errors.add(
                    format!("{path}.file"),
                    Some(file),
                    format!("cannot read schema file {}: {e}", full.display()),
                );
                return None;
            }
        };
        match serde_json::from_slice::<serde_json::Value>(&text) {
            Ok(value) => (format!("file {}", file.value.trim()), value),
            Err(e) => {
                errors.add(
                    format!("{path}.file"),
                    Some(file),
                    format!("schema file {} is not JSON: {e}", full.display()),
                );
                return None;
            }
        }
    } else {
        ("inline".to_owned(), s.schema.clone().unwrap_or_default())
    };
    match BodySchema::compile(origin, &value) {
        Ok(compiled) => Some(Arc::new(compiled)),
        Err(e) => {
            let key = if s.file.is_some() { "file" } else { "schema" };
            errors.add(format!("{path}.{key}"), Some(raw), e.to_string());
            None
        }
    }
}

pub(super) fn validate_models(
    errors: &mut Errors,
    api_path: &str,
    raw: &BTreeMap<String, Spanned<RawSchemaSource>>,
    base_dir: &Path,
) -> Models {
    raw.iter()
        .map(|(name, source)| {
            let path = format!("{api_path}.models.{name}");
            (name.clone(), schema(errors, &path, source, None, base_dir))
        })
        .collect()
}

pub(super) fn validate_validation(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawValidation>,
    models: &Models,
    param_names: &[&str],
    base_dir: &Path,
) -> Option<Arc<RequestValidation>> {
    let v = &raw.value;
    let mut ok = true;
    let mode = match v.validate.as_ref().map(|m| (m, m.value.trim())) {
        None | Some((_, "all")) => ValidateMode::All,
        Some((_, "body")) => ValidateMode::Body,
        Some((_, "parameters")) => ValidateMode::Parameters,
        Some((at, other)) => {
            errors.add(
                format!("{path}.validate"),
                Some(at),
                format!("unknown validator \"{other}\"; expected all, body or parameters"),
            );
            ok = false;
            ValidateMode::All
        }
    };
    let mut required = Vec::new();
    for (i, r) in v.required.iter().enumerate() {
        match RequestParam::parse(&r.value, param_names) {
            Ok(param) => required.push(param),
            Err(e) => {
                errors.add(format!("{path}.required[{i}]"), Some(r), e.to_string());
                ok = false;
            }
        }
    }
    let body = match &v.body {
        None => None,
        Some(b) => {
            let compiled = schema(errors, &format!("{path}.body"), b, Some(models), base_dir);
            ok &= compiled.is_some();
            compiled
        }
    };
    ok.then(|| {
        Arc::new(RequestValidation {
            mode,
            required,
            body,
        })
    })
}
