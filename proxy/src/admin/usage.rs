//! Usage plans (`GET /admin/plans`, `POST /admin/plans`, `DELETE /admin/plans/{name}`) and
//! usage. `GET /admin/usage?key=ID&from=YYYY-MM-DD&to=YYYY-MM-DD`: a key's requests per UTC day, as
//! stored. Usage counted but not yet stored is stored first, so the answer includes every
//! request admitted before it. `to` defaults to today and `from` to 30 days before `to`; at
//! most 366 days at once.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::{json, message};
use crate::encoding::query_param;
use crate::node::Node;
use crate::throttle::quota::{date_text, parse_date};
use crate::throttle::wall_secs;

/// Longest range one call may ask for, in days.
const MAX_DAYS: u32 = 366;

fn bad(text: &str) -> Response<Full<Bytes>> {
    message(StatusCode::BAD_REQUEST, text)
}

pub async fn get(node: &Node, query: Option<&str>) -> Response<Full<Bytes>> {
    let query = query.unwrap_or_default();
    let Some(key_id) = query_param(query, "key").filter(|k| !k.is_empty()) else {
        return bad("give the key's id: ?key=ID");
    };
    // A date given, or the text that is not one.
    let date = |name: &str| -> Result<Option<u32>, String> {
        match query_param(query, name) {
            None => Ok(None),
            Some(text) => parse_date(&text).map(Some).ok_or(text),
        }
    };
    let (from, to) = match (date("from"), date("to")) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(text), _) => return bad(&format!("from must be a date, YYYY-MM-DD, not \"{text}\"")),
        (_, Err(text)) => return bad(&format!("to must be a date, YYYY-MM-DD, not \"{text}\"")),
    };
    let today = u32::try_from(wall_secs() / 86_400).unwrap_or(u32::MAX);
    let to = to.unwrap_or(today);
    let from = from.unwrap_or(to.saturating_sub(29));
    if from > to {
        return bad("from must not be after to");
    }
    if to - from >= MAX_DAYS {
        return bad(&format!("at most {MAX_DAYS} days at once"));
    }
    let gateway = node.generation.load();
    if gateway.keys.get(&key_id).is_none() {
        return message(StatusCode::NOT_FOUND, format!("no key {key_id}"));
    }
    let limiter = gateway.limiter.clone();
    let read = match limiter.flush().await {
        Ok(()) => limiter.usage(&key_id, from..=to).await,
        Err(e) => Err(e),
    };
    let days = match read {
        Ok(days) => days,
        Err(e) => return message(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let total: u64 = days.iter().map(|(_, n)| n).sum();
    let days: Vec<_> = days
        .iter()
        .map(|(day, n)| json!({ "date": date_text(*day), "requests": n }))
        .collect();
    json(
        StatusCode::OK,
        json!({
            "key": query_param(query, "key"),
            "from": date_text(from),
            "to": date_text(to),
            "total": total,
            "days": days,
        })
        .to_string(),
    )
}

/// `POST /admin/plans` (a plan as the file writes one) creates a plan; `DELETE
/// /admin/plans/{name}` deletes one created so. `rest` is the path after `/admin/plans`.
pub async fn change_plans(
    node: &Node,
    method: &http::Method,
    rest: &str,
    body: hyper::body::Incoming,
) -> Response<Full<Bytes>> {
    let name = rest.trim_start_matches('/');
    let outcome = match (method, name) {
        (&http::Method::POST, "") => {
            match super::deployments::read::<serde_json::Value>(body).await {
                Ok(definition) => node.create_plan(definition).await.map(|plan| {
                    json(
                        StatusCode::CREATED,
                        plan_json(&plan, &[], "admin").to_string(),
                    )
                }),
                Err(refused) => return refused,
            }
        }
        (&http::Method::DELETE, name) if !name.is_empty() => node
            .delete_plan(name)
            .await
            .map(|()| json(StatusCode::OK, json!({ "deleted": name }).to_string())),
        _ => return message(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    };
    outcome.unwrap_or_else(super::deployments::refusal)
}

fn plan_json(
    plan: &crate::config::UsagePlan,
    keys: &[crate::auth::keys::ApiKey],
    source: &str,
) -> serde_json::Value {
    json!({
        "name": plan.name,
        "source": source,
        "stages": plan.stages.iter().map(|(a, s)| format!("{a}/{s}")).collect::<Vec<_>>(),
        "throttle": plan.throttle.as_ref().map(|t| json!({ "rate": t.rate, "burst": t.burst })),
        "quota": plan.quota.as_ref().map(|q| json!({
            "limit": q.limit,
            "period": format!("{:?}", q.period).to_ascii_lowercase(),
        })),
        "keys": keys
            .iter()
            .filter(|k| k.plan.as_deref() == Some(plan.name.as_str()))
            .map(|k| k.id.as_str())
            .collect::<Vec<_>>(),
    })
}

/// `GET /admin/plans`: the usage plans (the file's, then those created here, `source` says
/// which), with what each allows and the keys in it.
pub fn plans(node: &Node) -> Response<Full<Bytes>> {
    let gateway = node.generation.load();
    let keys = node.keys.list();
    let plans: Vec<serde_json::Value> = gateway
        .usage_plans
        .iter()
        .map(|plan| {
            let source = if gateway.plan_records.iter().any(|r| r.name == plan.name) {
                "admin"
            } else {
                "config"
            };
            plan_json(plan, &keys, source)
        })
        .collect();
    json(StatusCode::OK, json!({ "plans": plans }).to_string())
}
