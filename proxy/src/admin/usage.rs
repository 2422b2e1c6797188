//! `GET /admin/usage?key=ID&from=YYYY-MM-DD&to=YYYY-MM-DD`: a key's requests per UTC day, as
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

/// `GET /admin/plans`: the config's usage plans, with what each allows and the keys in it.
pub fn plans(node: &Node) -> Response<Full<Bytes>> {
    let gateway = node.generation.load();
    let keys = node.keys.list();
    let plans: Vec<serde_json::Value> = gateway
        .usage_plans
        .iter()
        .map(|plan| {
            serde_json::json!({
                "name": plan.name,
                "stages": plan.stages.iter().map(|(a, s)| format!("{a}/{s}")).collect::<Vec<_>>(),
                "throttle": plan.throttle.as_ref().map(|t| serde_json::json!({ "rate": t.rate, "burst": t.burst })),
                "quota": plan.quota.as_ref().map(|q| serde_json::json!({
                    "limit": q.limit,
                    "period": format!("{:?}", q.period).to_ascii_lowercase(),
                })),
                "keys": keys
                    .iter()
                    .filter(|k| k.plan.as_deref() == Some(plan.name.as_str()))
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({ "plans": plans }).to_string(),
    )
}
