//! A stage's `cache` and a route's `cache`: sizes, TTLs, key parameters and who may
//! invalidate.

use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::Errors;
use crate::config::model::*;
use crate::config::raw::*;

fn ttl(errors: &mut Errors, path: String, raw: &Spanned<u64>) -> Option<Duration> {
    if raw.value > MAX_CACHE_TTL_S {
        errors.add(
            path,
            Some(raw),
            format!("must be between 0 and {MAX_CACHE_TTL_S} seconds"),
        );
        return None;
    }
    Some(Duration::from_secs(raw.value))
}

pub(super) fn validate_stage_cache(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawStageCache>,
) -> Option<StageCacheSettings> {
    let c = &raw.value;
    let mut ok = true;
    let capacity_mib = match &c.capacity_mib {
        None => DEFAULT_CACHE_CAPACITY_MIB,
        Some(m) if m.value == 0 || m.value > 1024 * 1024 => {
            errors.add(
                format!("{path}.capacity_mib"),
                Some(m),
                "must be between 1 and 1048576 (1 TiB)",
            );
            ok = false;
            DEFAULT_CACHE_CAPACITY_MIB
        }
        Some(m) => m.value,
    };
    let stage_ttl = match &c.ttl_s {
        None => Some(DEFAULT_CACHE_TTL),
        Some(t) => ttl(errors, format!("{path}.ttl_s"), t),
    };
    let max_entry_bytes = match &c.max_entry_bytes {
        None => DEFAULT_MAX_ENTRY_BYTES,
        Some(m) if m.value == 0 || m.value > u64::from(u32::MAX) => {
            errors.add(
                format!("{path}.max_entry_bytes"),
                Some(m),
                "must be between 1 and 4294967295",
            );
            ok = false;
            DEFAULT_MAX_ENTRY_BYTES
        }
        Some(m) => usize::try_from(m.value).unwrap_or(DEFAULT_MAX_ENTRY_BYTES),
    };
    let invalidation = match &c.invalidation {
        None => InvalidationPolicy {
            require_authorization: true,
            unauthorized: UnauthorizedStrategy::SucceedWithResponseHeader,
            principals: Vec::new(),
            api_keys: Vec::new(),
        },
        Some(i) => {
            let unauthorized = match i.unauthorized_strategy.as_ref() {
                None => UnauthorizedStrategy::SucceedWithResponseHeader,
                Some(s) => match s.value.trim().to_ascii_lowercase().as_str() {
                    "fail_with_403" => UnauthorizedStrategy::FailWith403,
                    "succeed_with_response_header" => {
                        UnauthorizedStrategy::SucceedWithResponseHeader
                    }
                    "succeed_without_response_header" => {
                        UnauthorizedStrategy::SucceedWithoutResponseHeader
                    }
                    other => {
                        errors.add(
                            format!("{path}.invalidation.unauthorized_strategy"),
                            Some(s),
                            format!(
                                "unknown strategy \"{other}\"; expected fail_with_403, succeed_with_response_header or succeed_without_response_header"
                            ),
                        );
                        ok = false;
                        UnauthorizedStrategy::SucceedWithResponseHeader
                    }
                },
            };
            InvalidationPolicy {
                require_authorization: i.require_authorization.unwrap_or(true),
                unauthorized,
                principals: i.principals.clone(),
                api_keys: i.api_keys.clone(),
            }
        }
    };
    let ttl = stage_ttl?;
    ok.then(|| StageCacheSettings {
        capacity_bytes: capacity_mib * 1024 * 1024,
        ttl,
        max_entry_bytes,
        invalidation: Arc::new(invalidation),
    })
}

pub(super) fn validate_route_cache(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawRouteCache>,
    param_names: &[&str],
    api_has_stage_cache: bool,
) -> Option<RouteCacheSettings> {
    let c = &raw.value;
    let mut ok = true;
    if !api_has_stage_cache {
        errors.add(
            path,
            Some(raw),
            "no stage of this api has a cache; add `cache: {}` to a stage, or remove the route's `cache`",
        );
        ok = false;
    }
    let ttl = match &c.ttl_s {
        None => None,
        Some(t) => {
            let parsed = ttl(errors, format!("{path}.ttl_s"), t);
            ok &= parsed.is_some();
            parsed
        }
    };
    let mut key = Vec::new();
    for (i, k) in c.key.iter().enumerate() {
        match RequestParam::parse(&k.value, param_names) {
            Ok(param) if key.contains(&param) => {
                errors.add(
                    format!("{path}.key[{i}]"),
                    Some(k),
                    format!("\"{}\" is already in the key", param.label()),
                );
                ok = false;
            }
            Ok(param) => key.push(param),
            Err(e) => {
                errors.add(format!("{path}.key[{i}]"), Some(k), e.to_string());
                ok = false;
            }
        }
    }
    let statuses = match &c.statuses {
        None => None,
        Some(s) => {
            if let Some(bad) = s.value.iter().find(|code| !(100..=599).contains(*code)) {
                errors.add(
                    format!("{path}.statuses"),
                    Some(s),
                    format!("status {bad} is not between 100 and 599"),
                );
                ok = false;
            }
            Some(s.value.clone())
        }
    };
    ok.then(|| RouteCacheSettings {
        enabled: c.enabled,
        ttl,
        key,
        ignore_cache_control: c.ignore_cache_control,
        statuses,
    })
}
