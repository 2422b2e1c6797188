//! `state` and `usage_plans`: where keys live, and the plans that say which stages a key may
//! call and how often.

use std::path::Path;

use serde_saphyr::Spanned;

use super::Errors;
use crate::config::model::*;
use crate::config::raw::*;

pub(super) fn validate_state(
    errors: &mut Errors,
    raw: Option<&RawState>,
    base_dir: &Path,
) -> StateConfig {
    check_backend(
        errors,
        "state",
        raw.and_then(|s| s.backend.as_ref()),
        "embedded",
    );
    let path = raw
        .and_then(|s| s.path.as_ref())
        .map_or_else(|| base_dir.join("data"), |p| base_dir.join(p.value.trim()));
    StateConfig {
        backend: StateBackend::Embedded,
        path,
    }
}

pub(super) fn validate_counters(errors: &mut Errors, raw: Option<&RawCounters>) -> CountersConfig {
    check_backend(
        errors,
        "counters",
        raw.and_then(|c| c.backend.as_ref()),
        "local",
    );
    CountersConfig {
        backend: CountersBackend::Local,
    }
}

/// `KEY.backend` must name the one backend this build has.
fn check_backend(errors: &mut Errors, key: &str, given: Option<&Spanned<String>>, expected: &str) {
    if let Some(backend) = given
        && backend.value.trim() != expected
    {
        errors.add(
            format!("{key}.backend"),
            Some(backend),
            format!(
                "unknown {key} backend \"{}\"; expected {expected}",
                backend.value.trim()
            ),
        );
    }
}

pub(super) fn throttle(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawThrottle>,
) -> Option<Throttle> {
    let t = &raw.value;
    if !t.rate.value.is_finite() || t.rate.value < 0.0 {
        errors.add(
            format!("{path}.rate"),
            Some(&t.rate),
            "must be a number of requests per second, 0 or more",
        );
        return None;
    }
    Some(Throttle {
        rate: t.rate.value,
        burst: t.burst.value,
    })
}

pub(super) fn validate_plans(
    errors: &mut Errors,
    raw: &[RawUsagePlan],
    apis: &[Api],
) -> Vec<UsagePlan> {
    let mut plans: Vec<UsagePlan> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let path = format!("usage_plans[{i}]");
        let name = p.name.value.trim();
        if name.is_empty() {
            errors.add(format!("{path}.name"), Some(&p.name), "must not be empty");
            continue;
        }
        if plans.iter().any(|q| q.name == name) {
            errors.add(
                format!("{path}.name"),
                Some(&p.name),
                format!("usage plan \"{name}\" is already defined"),
            );
            continue;
        }
        let mut ok = true;
        let mut stages = Vec::new();
        for (j, pair) in p.apis.iter().enumerate() {
            let text = pair.value.trim();
            let found = text.split_once('/').and_then(|(api, stage)| {
                let api = apis.iter().find(|a| a.name == api)?;
                api.stages.iter().find(|s| s.name == stage)?;
                Some((api.name.clone(), stage.to_owned()))
            });
            match found {
                Some(pair) => stages.push(pair),
                None => {
                    let known: Vec<String> = apis
                        .iter()
                        .flat_map(|a| {
                            a.stages
                                .iter()
                                .map(move |s| format!("{}/{}", a.name, s.name))
                        })
                        .collect();
                    let hint = crate::config::did_you_mean(text, known.iter().map(String::as_str))
                        .map(|d| format!("; did you mean \"{d}\"?"))
                        .unwrap_or_default();
                    errors.add(
                        format!("{path}.apis[{j}]"),
                        Some(pair),
                        format!("no api stage \"{text}\" (write it API/STAGE){hint}"),
                    );
                    ok = false;
                }
            }
        }
        let plan_throttle = match &p.throttle {
            Some(t) => {
                let parsed = throttle(errors, &format!("{path}.throttle"), t);
                ok &= parsed.is_some();
                parsed
            }
            None => None,
        };
        let quota = match &p.quota {
            None => None,
            Some(q) => {
                let period = match q.value.period.value.trim().to_ascii_lowercase().as_str() {
                    "day" => Some(QuotaPeriod::Day),
                    "week" => Some(QuotaPeriod::Week),
                    "month" => Some(QuotaPeriod::Month),
                    other => {
                        errors.add(
                            format!("{path}.quota.period"),
                            Some(&q.value.period),
                            format!("unknown period \"{other}\"; expected day, week or month"),
                        );
                        None
                    }
                };
                let offset = q.value.offset.as_ref().map_or(0, |o| o.value);
                if offset > q.value.limit.value {
                    errors.add(
                        format!("{path}.quota.offset"),
                        q.value.offset.as_ref(),
                        "must not be more than the limit",
                    );
                    ok = false;
                }
                ok &= period.is_some();
                period.map(|period| Quota {
                    limit: q.value.limit.value,
                    period,
                    offset,
                })
            }
        };
        let mut routes = Vec::new();
        for (key, t) in &p.routes {
            let rpath = format!("{path}.routes.{key}");
            let mut parts = key.splitn(3, '/');
            let (api, stage, route) = (parts.next(), parts.next(), parts.next());
            let known = match (api, stage, route) {
                (Some(api), Some(stage), Some(route)) => {
                    let route = route.trim();
                    let found = apis.iter().find(|a| a.name == api).is_some_and(|a| {
                        a.stages.iter().any(|s| s.name == stage)
                            && a.routes.iter().any(|r| r.key == route)
                    });
                    found.then(|| (api.to_owned(), stage.to_owned(), route.to_owned()))
                }
                _ => None,
            };
            let Some(id) = known else {
                errors.add(
                    rpath,
                    Some(t),
                    format!("no route \"{key}\"; write it API/STAGE/METHOD /path, as the route is written"),
                );
                ok = false;
                continue;
            };
            if !stages.contains(&(id.0.clone(), id.1.clone())) {
                errors.add(
                    rpath,
                    Some(t),
                    format!("stage {}/{} is not in this plan's apis", id.0, id.1),
                );
                ok = false;
                continue;
            }
            match throttle(errors, &rpath, t) {
                Some(parsed) => routes.push((id, parsed)),
                None => ok = false,
            }
        }
        if ok {
            plans.push(UsagePlan {
                name: name.to_owned(),
                stages,
                throttle: plan_throttle,
                quota,
                routes,
            });
        }
    }
    plans
}
