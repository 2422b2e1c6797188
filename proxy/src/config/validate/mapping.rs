//! `integration: { http: {...} }` and `mock` with templates: templates are parsed here (a
//! template that cannot be parsed refuses the config with its line and column), parameter
//! mappings and selection patterns compiled.

use std::sync::Arc;

use http::Method;
use indexmap::IndexMap;
use serde_saphyr::Spanned;

use super::Errors;
use crate::config::raw::{RawIntegrationResponse, RawMappingFields, RawMock};
use crate::mapping::{
    ContentHandling, IntegrationResponse, Mapping, MappingTemplate, ParamSource, ParamTarget,
    Passthrough, RequestParameter, TemplateSet, selection_pattern,
};

/// Parses each template of a `request_templates` / `response_templates` map.
fn templates(
    errors: &mut Errors,
    path: &str,
    raw: &IndexMap<String, Spanned<String>>,
) -> TemplateSet {
    let limits = edgeway_velocity::Limits::default();
    let mut set = Vec::with_capacity(raw.len());
    for (media_type, text) in raw {
        let key = media_type.trim().to_ascii_lowercase();
        let at = format!("{path}.{media_type}");
        if !key.contains('/') || key.contains([';', ',', ' ']) {
            errors.add(
                &at,
                Some(text),
                format!("\"{media_type}\" is not a media type (type/subtype, no parameters)"),
            );
            continue;
        }
        match edgeway_velocity::Template::parse(&text.value, &limits) {
            Ok(_) => set.push((key, MappingTemplate::new(&text.value))),
            Err(e) => errors.add(
                &at,
                Some(text),
                format!(
                    "the template does not parse: line {}, column {} of the template: {}",
                    e.line, e.column, e.message
                ),
            ),
        }
    }
    TemplateSet(set)
}

fn responses(
    errors: &mut Errors,
    path: &str,
    raw: &[Spanned<RawIntegrationResponse>],
) -> Vec<IntegrationResponse> {
    let mut out = Vec::with_capacity(raw.len());
    let mut defaults = 0;
    for (i, r) in raw.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let pattern = match (&r.value.selection_pattern, r.value.default) {
            (Some(p), true) => {
                errors.add(
                    &at,
                    Some(p),
                    "has both `selection_pattern` and `default: true`; the default response has no pattern",
                );
                continue;
            }
            (Some(p), false) => match selection_pattern(&p.value) {
                Ok(re) => Some(re),
                Err(e) => {
                    // The regex crate's own text spans lines (the pattern, a caret, the error).
                    let why = e.to_string();
                    let why = why
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim_start_matches("error: ");
                    errors.add(
                        format!("{at}.selection_pattern"),
                        Some(p),
                        format!("not a regular expression: {why}"),
                    );
                    continue;
                }
            },
            (None, _) => {
                defaults += 1;
                if defaults == 2 {
                    errors.add(
                        &at,
                        Some(r),
                        "is a second default response (no `selection_pattern`); there can be one",
                    );
                }
                None
            }
        };
        let status = match &r.value.status {
            None => http::StatusCode::OK,
            Some(s) => match http::StatusCode::from_u16(s.value) {
                Ok(status) if (100..=599).contains(&s.value) => status,
                _ => {
                    errors.add(
                        format!("{at}.status"),
                        Some(s),
                        format!("status {} is not between 100 and 599", s.value),
                    );
                    continue;
                }
            },
        };
        let mut headers = Vec::new();
        for (target, source) in &r.value.response_parameters {
            let here = format!("{at}.response_parameters.{target}");
            match (
                ParamTarget::parse_response(target),
                ParamSource::parse(&source.value, crate::mapping::Side::Response),
            ) {
                (Ok(name), Ok(source)) => headers.push((name, source)),
                (Err(e), _) | (_, Err(e)) => errors.add(&here, Some(source), e.to_string()),
            }
        }
        out.push(IntegrationResponse {
            pattern,
            status,
            headers,
            templates: templates(
                errors,
                &format!("{at}.response_templates"),
                &r.value.response_templates,
            ),
        });
    }
    out
}

fn request_parameters(
    errors: &mut Errors,
    path: &str,
    raw: &IndexMap<String, Spanned<String>>,
) -> Vec<RequestParameter> {
    let mut out = Vec::with_capacity(raw.len());
    for (target, source) in raw {
        let here = format!("{path}.{target}");
        match (
            ParamTarget::parse_request(target),
            ParamSource::parse(&source.value, crate::mapping::Side::Request),
        ) {
            (Ok(target), Ok(source)) => out.push(RequestParameter { target, source }),
            (Err(e), _) | (_, Err(e)) => errors.add(&here, Some(source), e.to_string()),
        }
    }
    out
}

/// An `http` or `aws` integration's mapping, method and the names its URI's `{...}` may use.
pub(super) struct HttpParts {
    pub method: Option<Method>,
    pub mapping: Mapping,
    /// `integration.request.path.NAME` targets.
    pub mapped_path_names: Vec<String>,
}

pub(super) fn validate_http(
    errors: &mut Errors,
    path: &str,
    raw: RawMappingFields<'_>,
) -> Option<HttpParts> {
    let before = errors.0.len();
    let method = raw.method.and_then(|m| {
        let text = m.value.trim().to_ascii_uppercase();
        match text.parse::<Method>() {
            Ok(method) if !text.is_empty() && text != "ANY" => Some(method),
            _ => {
                errors.add(
                    format!("{path}.method"),
                    Some(m),
                    format!("\"{}\" is not an HTTP method", m.value),
                );
                None
            }
        }
    });
    let passthrough = match raw.passthrough.map(|p| (p, p.value.trim())) {
        None | Some((_, "when_no_match")) => Passthrough::WhenNoMatch,
        Some((_, "when_no_templates")) => Passthrough::WhenNoTemplates,
        Some((_, "never")) => Passthrough::Never,
        Some((at, other)) => {
            errors.add(
                format!("{path}.passthrough"),
                Some(at),
                format!("unknown passthrough \"{other}\"; expected when_no_match, when_no_templates or never"),
            );
            Passthrough::WhenNoMatch
        }
    };
    let content_handling = content_handling(errors, path, raw.content_handling);
    let request_parameters = request_parameters(
        errors,
        &format!("{path}.request_parameters"),
        raw.request_parameters,
    );
    let mapped_path_names = request_parameters
        .iter()
        .filter_map(|p| match &p.target {
            ParamTarget::Path(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    let mapping = Mapping {
        request_templates: templates(
            errors,
            &format!("{path}.request_templates"),
            raw.request_templates,
        ),
        passthrough,
        request_parameters,
        content_handling,
        responses: responses(errors, &format!("{path}.responses"), raw.responses),
    };
    (errors.0.len() == before).then_some(HttpParts {
        method,
        mapping,
        mapped_path_names,
    })
}

fn content_handling(
    errors: &mut Errors,
    path: &str,
    raw: Option<&Spanned<String>>,
) -> ContentHandling {
    match raw.map(|c| (c, c.value.trim())) {
        None => ContentHandling::Passthrough,
        Some((_, "convert_to_text")) => ContentHandling::ConvertToText,
        Some((_, "convert_to_binary")) => ContentHandling::ConvertToBinary,
        Some((at, other)) => {
            errors.add(
                format!("{path}.content_handling"),
                Some(at),
                format!("unknown content_handling \"{other}\"; expected convert_to_text or convert_to_binary"),
            );
            ContentHandling::Passthrough
        }
    }
}

/// A `mock` with `request_templates` or `responses`; `None` when it has neither (a plain
/// mock) or is refused.
pub(super) fn validate_mapped_mock(
    errors: &mut Errors,
    path: &str,
    at: &Spanned<crate::config::raw::RawIntegration>,
    raw: &RawMock,
) -> Option<Option<Arc<Mapping>>> {
    if raw.request_templates.is_empty() && raw.responses.is_empty() {
        return Some(None);
    }
    if raw.status.is_some() || !raw.headers.is_empty() || !raw.body.is_empty() {
        errors.add(
            path,
            Some(at),
            "has `request_templates` or `responses` and also `status`, `headers` or `body`: a mock with templates answers through its `responses`",
        );
        return None;
    }
    let before = errors.0.len();
    let mapping = Mapping {
        request_templates: templates(
            errors,
            &format!("{path}.request_templates"),
            &raw.request_templates,
        ),
        responses: responses(errors, &format!("{path}.responses"), &raw.responses),
        ..Mapping::default()
    };
    (errors.0.len() == before).then(|| Some(Arc::new(mapping)))
}
