//! `integration: { aws: {...} }`: the service call (as `uri` or as `service`, `region` and
//! `action` or `path`), the method its protocol takes, the endpoint, the keys, and the
//! mapping it shares with `http` integrations.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_saphyr::Spanned;

use super::Errors;
use super::apis::compile_per_stage;
use crate::config::model::Stage;
use crate::config::raw::{RawAws, RawAwsCredentials};
use crate::mapping::AwsIntegration;
use crate::upstream::aws::{AwsCredentials, AwsTarget, AwsUri, Protocol};

/// The validated integration and its own `timeout_ms`; `None` when refused (each reason
/// reported).
pub(super) fn validate_aws(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawAws>,
    route_params: &[&str],
    stages: &[Stage],
) -> Option<(AwsIntegration, Option<Duration>)> {
    let aws = &raw.value;
    let before = errors.0.len();
    let call = call(errors, path, raw);
    let parts = super::mapping::validate_http(errors, path, aws.mapping_fields());
    let credentials = credentials(errors, path, raw);
    let timeout = super::apis::timeout_ms(errors, path, aws.timeout_ms.as_ref());
    let (call, parts) = (call?, parts?);

    let method = match (call.protocol(), parts.method) {
        (Protocol::Rest, method) => method,
        (_, None | Some(Method::POST)) => Some(Method::POST),
        (protocol, Some(other)) => {
            let kind = if protocol == Protocol::Query {
                "query"
            } else {
                "JSON"
            };
            errors.add(
                format!("{path}.method"),
                aws.method.as_ref(),
                format!(
                    "{} takes POST requests (its {kind} protocol), not {other}; leave `method` out",
                    call.signing_name()
                ),
            );
            return None;
        }
    };

    let endpoint = match &aws.endpoint {
        None => call.default_endpoint(),
        Some(e) => {
            let text = e.value.trim().trim_end_matches('/');
            match text.parse::<http::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.authority().is_some()
                        && matches!(uri.path(), "" | "/")
                        && uri.query().is_none() =>
                {
                    text.to_owned()
                }
                _ => {
                    errors.add(
                        format!("{path}.endpoint"),
                        Some(e),
                        format!(
                            "\"{}\" is not an endpoint; expected http(s)://HOST[:PORT] with no path",
                            e.value
                        ),
                    );
                    return None;
                }
            }
        }
    };
    let amz_target = match call.amz_target().map(|t| http::HeaderValue::from_str(&t)) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => {
            errors.add(
                path,
                Some(raw),
                "the action is not a valid X-Amz-Target header value",
            );
            return None;
        }
    };
    let credentials = credentials?;
    let service_path = match &call.target {
        AwsTarget::Path(p) => p.trim_start_matches('/'),
        AwsTarget::Action { .. } => "",
    };
    let mut names: Vec<String> = route_params.iter().map(|p| (*p).to_owned()).collect();
    for name in parts.mapped_path_names {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let params: Vec<&str> = names.iter().map(String::as_str).collect();
    let per_stage = compile_per_stage(&format!("{endpoint}/{service_path}"), &params, stages, None)
        .map_err(|e| {
            let at = aws.path.as_ref().or(aws.uri.as_ref());
            errors.add(format!("{path}.path"), at, e.to_string());
        })
        .ok()?;
    (errors.0.len() == before).then(|| {
        (
            AwsIntegration {
                call: Arc::new(call),
                amz_target,
                method,
                per_stage,
                path_names: names,
                credentials: Arc::new(credentials),
                mapping: Arc::new(parts.mapping),
            },
            timeout,
        )
    })
}

/// The call: `uri: arn:aws:apigateway:...`, or `service`, `region` and `action` or `path`.
fn call(errors: &mut Errors, path: &str, raw: &Spanned<RawAws>) -> Option<AwsUri> {
    let aws = &raw.value;
    let (text, at) = match (&aws.uri, &aws.service) {
        (Some(uri), None) if aws.region.is_none() && aws.action.is_none() && aws.path.is_none() => {
            (uri.value.clone(), format!("{path}.uri"))
        }
        (Some(_), _) => {
            errors.add(
                path,
                Some(raw),
                "has `uri` and also `service`, `region`, `action` or `path`; `uri` names all of them, so give one form",
            );
            return None;
        }
        (None, Some(service)) => {
            let Some(region) = &aws.region else {
                errors.add(
                    path,
                    Some(raw),
                    "needs `region` (the service's, e.g. us-east-1)",
                );
                return None;
            };
            let call = match (&aws.action, &aws.path) {
                (Some(action), None) => format!("action/{}", action.value.trim()),
                (None, Some(p)) => format!("path/{}", p.value.trim().trim_start_matches('/')),
                _ => {
                    errors.add(
                        path,
                        Some(raw),
                        "needs one of `action` (SendMessage, StartExecution, PutItem, ...) and `path`",
                    );
                    return None;
                }
            };
            (
                format!(
                    "arn:aws:apigateway:{}:{}:{call}",
                    region.value.trim(),
                    service.value.trim()
                ),
                format!("{path}.service"),
            )
        }
        (None, None) => {
            errors.add(
                path,
                Some(raw),
                "needs `service` (sqs, sns, states, dynamodb, kinesis, events, s3, ...) with `region` and `action` or `path`, or API Gateway's `uri`",
            );
            return None;
        }
    };
    let call: AwsUri = match text.parse() {
        Ok(call) => call,
        Err(e) => {
            errors.add(at, Some(raw), format!("\"{text}\": {e}"));
            return None;
        }
    };
    match &call.target {
        AwsTarget::Action { .. } if call.protocol() == Protocol::Rest => {
            errors.add(
                path,
                Some(raw),
                format!(
                    "{} is called by `path`; `action` is for the query services (sqs, sns) and the JSON ones (states, dynamodb, kinesis, events)",
                    call.signing_name()
                ),
            );
            None
        }
        AwsTarget::Action { params, .. } if params.iter().any(|(_, v)| v.contains('{')) => {
            errors.add(
                path,
                Some(raw),
                "the action's parameters are fixed text; map request values with `request_parameters` (integration.request.querystring.NAME)",
            );
            None
        }
        _ => Some(call),
    }
}

fn credentials(errors: &mut Errors, path: &str, aws: &Spanned<RawAws>) -> Option<AwsCredentials> {
    let raw: Option<&Spanned<RawAwsCredentials>> = aws.value.credentials.as_ref();
    let at = format!("{path}.credentials");
    let found = match raw.map(|r| (r, &r.value)) {
        None => AwsCredentials::from_default_chain().map_err(|e| {
            format!("{e}; name the keys with `credentials: {{ access_key_env, secret_key_env }}` or `{{ profile }}`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }),
        Some((_, c)) if c.profile.is_some() => {
            if c.access_key_env.is_some() || c.secret_key_env.is_some() || c.session_token_env.is_some() {
                Err("has `profile` and also `*_env` names; give one of them".to_owned())
            } else {
                AwsCredentials::from_profile(c.profile.as_ref().map_or("", |p| p.value.trim()))
                    .map_err(|e| e.to_string())
            }
        }
        Some((_, c)) => match (&c.access_key_env, &c.secret_key_env) {
            (Some(access), Some(secret)) => AwsCredentials::from_env(
                access.value.trim(),
                secret.value.trim(),
                c.session_token_env.as_ref().map(|t| t.value.trim()),
            )
            .map_err(|e| e.to_string()),
            _ => Err("needs `access_key_env` and `secret_key_env` (the environment variables holding the keys), or `profile`".to_owned()),
        },
    };
    match found {
        Ok(credentials) => Some(credentials),
        // Without `credentials`, the line is the integration's.
        Err(why) => {
            match raw {
                Some(raw) => errors.add(&at, Some(raw), why),
                None => errors.add(&at, Some(aws), why),
            }
            None
        }
    }
}
