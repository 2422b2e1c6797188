//! Throttling and quotas with the real binary: exact 429 counts for a burst at every level
//! (node-wide account, stage, route, a usage plan's per-key bucket and its per-route override),
//! quota exhaustion with `Limit Exceeded`, the `Retry-After` / `RateLimit` / `RateLimit-Policy`
//! headers, per-day usage through `GET /admin/usage`, and quota counts and usage surviving
//! `kill -9`.
//!
//! Buckets refill at 0.01 per second here, so no token comes back while a test runs and the
//! counts are exact.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use edgeway_tests::*;
use serde_json::json;

const SLOW: &str = "rate: 0.01";

/// One API `shop` with stages `prod` and `beta`, `GET /pets` (key required) and `GET /open`
/// and `GET /slow` (no key). `extra_top` goes at the top level, `stage` into `prod`, `route`
/// onto `/slow`, `plans` under `usage_plans`.
fn config(origin: &Origin, state: &std::path::Path, parts: &Parts) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
origin: {origin}
state: {{ path: {state} }}
{top}
apis:
  - name: shop
    stages: {{ prod: {{ {stage} }}, beta: {{}} }}
    routes:
      - route: GET /pets
        api_key_required: true
        integration: {{ http_proxy: "${{origin}}/pets" }}
      - route: GET /pets/{{id}}
        api_key_required: true
        integration: {{ http_proxy: "${{origin}}/pets/{{id}}" }}
      - route: GET /open
        integration: {{ http_proxy: "${{origin}}/open" }}
      - route: GET /slow
        {route}
        integration: {{ http_proxy: "${{origin}}/slow" }}
usage_plans:
{plans}
"#,
        origin = origin.url(),
        state = state.display(),
        top = parts.top,
        stage = parts.stage,
        route = parts.route,
        plans = parts.plans,
    )
}

struct Parts {
    top: String,
    stage: String,
    route: String,
    plans: String,
}

impl Default for Parts {
    fn default() -> Self {
        Self {
            top: String::new(),
            stage: String::new(),
            route: String::new(),
            plans: "  - { name: free, apis: [shop/prod, shop/beta] }".into(),
        }
    }
}

async fn start(yaml: &str) -> Gateway {
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(yaml)
        .await
}

/// What a response said, in the parts these tests check.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    kind: Option<String>,
    retry_after: Option<u64>,
    policy: Option<String>,
    state: Option<String>,
}

async fn get(gw: &Gateway, path: &str, key: Option<&str>) -> Answer {
    let mut req = client().get(gw.url(path));
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let r = req.send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (kind, retry_after, policy, state) = (
        header("x-edgeway-error-type"),
        header("retry-after").map(|v| v.parse().unwrap()),
        header("ratelimit-policy"),
        header("ratelimit"),
    );
    Answer {
        status: r.status().as_u16(),
        body: r.text().await.unwrap(),
        kind,
        retry_after,
        policy,
        state,
    }
}

/// Sends `n` requests one after another; returns the statuses.
async fn burst(gw: &Gateway, path: &str, key: Option<&str>, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        statuses.push(get(gw, path, key).await.status);
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Creates a key in `plan`; returns (id, value).
async fn create_key(gw: &Gateway, name: &str, plan: &str) -> (String, String) {
    let (status, key) = gw
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(json!({ "name": name, "plan": plan })),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    (
        key["id"].as_str().unwrap().to_owned(),
        key["value"].as_str().unwrap().to_owned(),
    )
}

/// A refusal for being over a rate, by the limit named `scope`.
fn assert_throttled(answer: &Answer, scope: &str, burst: u64) {
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.body, r#"{"message":"Too Many Requests"}"#);
    assert_eq!(answer.kind.as_deref(), Some("THROTTLED"));
    // At 0.01 per second, the next token is up to 100 s away.
    let retry = answer.retry_after.expect("Retry-After");
    assert!((1..=100).contains(&retry), "{answer:?}");
    let window = (burst as f64 / 0.01).ceil() as u64;
    assert_eq!(
        answer.policy.as_deref(),
        Some(format!("\"{scope}\";q={burst};w={window}").as_str())
    );
    assert_eq!(
        answer.state.as_deref(),
        Some(format!("\"{scope}\";r=0;t={retry}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_limit_covers_every_route() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-throttle-state");
    let parts = Parts {
        top: format!("throttle: {{ {SLOW}, burst: 5 }}"),
        ..Parts::default()
    };
    let gw = start(&config(&origin, &state, &parts)).await;
    // Two routes and two stages share the node's bucket.
    let mut statuses = burst(&gw, "/prod/open", None, 3).await;
    statuses.extend(burst(&gw, "/beta/slow", None, 4).await);
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert_eq!(
        origin.request_count(),
        5,
        "refused requests reached the origin"
    );
    let refused = get(&gw, "/prod/open", None).await;
    assert_throttled(&refused, "account", 5);
    // Gateway answers before routing (an unknown path) do not take tokens.
    assert_eq!(get(&gw, "/prod/nowhere", None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_and_route_limits_are_their_own_buckets() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-throttle-state");
    let parts = Parts {
        stage: format!("throttle: {{ {SLOW}, burst: 4 }}"),
        route: format!("throttle: {{ {SLOW}, burst: 2 }}"),
        ..Parts::default()
    };
    let gw = start(&config(&origin, &state, &parts)).await;

    // The route's bucket (2) refuses before the stage's (4) runs out.
    let statuses = burst(&gw, "/prod/slow", None, 3).await;
    assert_eq!(statuses, [200, 200, 429]);
    assert_throttled(&get(&gw, "/prod/slow", None).await, "route", 2);
    // The stage's bucket gave 2 of its 4 to /slow: 2 left for the rest of the stage.
    let statuses = burst(&gw, "/prod/open", None, 4).await;
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_throttled(&get(&gw, "/prod/open", None).await, "stage", 4);
    // Another stage has no stage limit, and the route's limit is per stage.
    assert_eq!(burst(&gw, "/beta/open", None, 5).await, [200; 5]);
    assert_eq!(burst(&gw, "/beta/slow", None, 3).await, [200, 200, 429]);
    assert_eq!(origin.request_count(), 2 + 2 + 5 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_burst_admits_exactly_the_burst() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-throttle-state");
    let parts = Parts {
        route: format!("throttle: {{ {SLOW}, burst: 10 }}"),
        ..Parts::default()
    };
    let gw = std::sync::Arc::new(start(&config(&origin, &state, &parts)).await);
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { get(&gw, "/prod/slow", None).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(count(&statuses, 200), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 30, "{statuses:?}");
    assert_eq!(origin.request_count(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_plan_limits_each_key_and_overrides_a_route() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-throttle-state");
    let parts = Parts {
        plans: format!(
            "  - {{ name: free, apis: [shop/prod, shop/beta], throttle: {{ {SLOW}, burst: 4 }}, routes: {{ \"shop/prod/GET /pets/{{id}}\": {{ {SLOW}, burst: 1 }} }} }}"
        ),
        ..Parts::default()
    };
    let gw = start(&config(&origin, &state, &parts)).await;
    let (_, a) = create_key(&gw, "a", "free").await;
    let (_, b) = create_key(&gw, "b", "free").await;

    // Admitted requests say what is left of the key's bucket.
    let first = get(&gw, "/prod/pets", Some(&a)).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.policy.as_deref(), Some("\"key\";q=4;w=400"));
    assert_eq!(first.state.as_deref(), Some("\"key\";r=3;t=100"));

    // Each key has its own bucket, across the plan's stages.
    let statuses = burst(&gw, "/beta/pets", Some(&a), 4).await;
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_throttled(&get(&gw, "/prod/pets", Some(&a)).await, "key", 4);
    assert_eq!(
        burst(&gw, "/prod/pets", Some(&b), 5).await,
        [200, 200, 200, 200, 429]
    );

    // The plan's override for GET /pets/{id} in prod: one request per key, in its own bucket.
    let (_, c) = create_key(&gw, "c", "free").await;
    let one = get(&gw, "/prod/pets/1", Some(&c)).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.policy.as_deref(), Some("\"key-route\";q=1;w=100"));
    assert_eq!(one.state.as_deref(), Some("\"key-route\";r=0;t=100"));
    assert_throttled(&get(&gw, "/prod/pets/2", Some(&c)).await, "key-route", 1);
    // Refused by the route override, the key's plan-wide bucket was not touched.
    assert_eq!(
        burst(&gw, "/prod/pets", Some(&c), 5).await,
        [200, 200, 200, 200, 429]
    );
    // The override is for prod only: beta uses the plan-wide bucket, now empty for c.
    assert_throttled(&get(&gw, "/beta/pets/1", Some(&c)).await, "key", 4);
    // Routes without a key requirement see none of this.
    let open = get(&gw, "/prod/open", Some(&c)).await;
    assert_eq!((open.status, open.policy), (200, None));
    assert_eq!(origin.request_count(), 1 + 3 + 4 + 1 + 4 + 1);
}

/// Seconds from now to the next midnight UTC, as the quota window's `Retry-After` gives it.
fn to_midnight() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    86_400 - now % 86_400
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_runs_out_with_limit_exceeded_and_usage_is_counted() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-throttle-state");
    let parts = Parts {
        plans: "  - { name: free, apis: [shop/prod], quota: { limit: 3, period: day } }\n  - { name: trial, apis: [shop/prod], quota: { limit: 3, period: month, offset: 1 } }".into(),
        ..Parts::default()
    };
    let gw = start(&config(&origin, &state, &parts)).await;
    let (id, key) = create_key(&gw, "a", "free").await;

    let first = get(&gw, "/prod/pets", Some(&key)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.policy.as_deref(), Some("\"quota\";q=3;w=86400"));
    let state_header = first.state.unwrap();
    assert!(
        state_header.starts_with("\"quota\";r=2;t="),
        "{state_header}"
    );
    assert_eq!(burst(&gw, "/prod/pets", Some(&key), 2).await, [200, 200]);

    let over = get(&gw, "/prod/pets", Some(&key)).await;
    assert_eq!(over.status, 429);
    assert_eq!(over.body, r#"{"message":"Limit Exceeded"}"#);
    assert_eq!(over.kind.as_deref(), Some("QUOTA_EXCEEDED"));
    let retry = over.retry_after.unwrap();
    assert!(
        retry.abs_diff(to_midnight()) <= 2,
        "{retry} vs {}",
        to_midnight()
    );
    assert_eq!(over.policy.as_deref(), Some("\"quota\";q=3;w=86400"));
    assert_eq!(over.state, Some(format!("\"quota\";r=0;t={retry}")));
    assert_eq!(origin.request_count(), 3);

    // Usage counts admitted requests per UTC day.
    let (status, usage) = gw
        .admin(
            reqwest::Method::GET,
            &format!("/admin/usage?key={id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["total"], 3, "{usage}");
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["requests"], 3);
    assert_eq!(days[0]["date"], usage["to"], "today, in UTC");

    // A key created in the window gets the limit less the offset.
    let (_, trial) = create_key(&gw, "t", "trial").await;
    assert_eq!(
        burst(&gw, "/prod/pets", Some(&trial), 3).await,
        [200, 200, 429]
    );

    // Bad usage queries.
    for (path, status) in [
        ("/admin/usage".to_owned(), 400),
        (format!("/admin/usage?key={id}&from=2026-13-01"), 400),
        (
            format!("/admin/usage?key={id}&from=2026-11-20&to=2026-11-01"),
            400,
        ),
        ("/admin/usage?key=nosuchkey".to_owned(), 404),
    ] {
        let (got, body) = gw.admin(reqwest::Method::GET, &path, None).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    let r = client()
        .get(gw.admin_url("/admin/usage?key=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "usage needs the admin token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_usage_survive_kill_9() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-throttle-state");
    let parts = Parts {
        plans: "  - { name: free, apis: [shop/prod], quota: { limit: 5, period: week } }".into(),
        ..Parts::default()
    };
    let yaml = config(&origin, &state, &parts);
    let gw = start(&yaml).await;
    let (id, key) = create_key(&gw, "a", "free").await;
    assert_eq!(burst(&gw, "/prod/pets", Some(&key), 3).await, [200; 3]);
    // Reading usage stores what was counted; then the process dies without a goodbye.
    let usage_path = format!("/admin/usage?key={id}");
    assert_eq!(
        gw.admin(reqwest::Method::GET, &usage_path, None).await.1["total"],
        3
    );
    gw.signal("KILL");
    drop(gw);

    let gw = start(&yaml).await;
    assert_eq!(
        gw.admin(reqwest::Method::GET, &usage_path, None).await.1["total"],
        3
    );
    // Two left of the week's five.
    assert_eq!(
        burst(&gw, "/prod/pets", Some(&key), 3).await,
        [200, 200, 429]
    );
    assert_eq!(
        gw.admin(reqwest::Method::GET, &usage_path, None).await.1["total"],
        5
    );
    assert_eq!(origin.request_count(), 5);
}
