//! Deployments, rollback and canaries with the real binary, driven by the real `edgeway` CLI
//! against a real node: deploy v1, change the config, deploy v2 and roll back while clients
//! keep calling (none fails, each request is one version end to end); a canary's share, pin
//! header, variable overrides, promotion and stop; pointers and canaries surviving `kill -9`;
//! a stored deployment today's config cannot serve refused for its stage alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgeway_tests::*;
use serde_json::Value;

/// An API `shop` whose `GET /v` goes to `${origin}/{version}/${stageVariables.color}`, and an
/// API `other` beside it.
fn config(origin: &Origin, state: &std::path::Path, version: &str, prod_vars: &str) -> String {
    let target = format!("{version}/${{stageVariables.color}}");
    config_with(origin, state, version, &target, prod_vars)
}

/// As [`config`], with `shop`'s `GET /v` going to `${origin}/{target}`.
fn config_with(
    origin: &Origin,
    state: &std::path::Path,
    version: &str,
    target: &str,
    prod_vars: &str,
) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: EDGEWAY_ADMIN_TOKEN }}
origin: {origin}
state: {{ path: {state} }}
apis:
  - name: shop
    stages:
      prod: {{ variables: {{ {prod_vars} }} }}
      beta: {{ variables: {{ color: beta }} }}
    routes:
      - route: GET /v
        integration: {{ http_proxy: "${{origin}}/{target}" }}
      - route: GET /d
        integration:
          http:
            uri: "${{origin}}/d"
            request_parameters: {{ integration.request.header.x-deployment: context.deploymentId }}
  - name: other
    stages: {{ prod: {{}} }}
    routes:
      - route: GET /other
        integration: {{ http_proxy: "${{origin}}/other-{version}" }}
"#,
        origin = origin.url(),
        state = state.display(),
    )
}

async fn start(yaml: &str) -> Gateway {
    Gateway::builder()
        .env("EDGEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .start(yaml)
        .await
}

/// `edgeway ARGS... --output json` against the node (its address from `EDGEWAY_ADMIN_URL`):
/// whether it succeeded, its JSON, and everything it printed.
fn cli(gw: &Gateway, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(edgeway_bin())
        .args(args)
        .args(["--output", "json"])
        .env("EDGEWAY_ADMIN_URL", gw.admin_url(""))
        .env("EDGEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), json, text)
}

/// `edgeway deploy` of `api` to `stage`: the new deployment's id.
fn deploy(gw: &Gateway, api: &str, stage: &str, message: &str) -> String {
    let (ok, json, text) = cli(
        gw,
        &["deploy", "--api", api, "--stage", stage, "-m", message],
    );
    assert!(ok, "{text}");
    json["id"].as_str().expect("deployment id").to_owned()
}

/// The stage's entry in `edgeway stages`.
fn stage_status(gw: &Gateway, api: &str, stage: &str) -> Value {
    let (ok, json, text) = cli(gw, &["stages", "--api", api]);
    assert!(ok, "{text}");
    json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .cloned()
        .unwrap_or_else(|| panic!("no stage {stage} in {json}"))
}

/// What the origin saw for one `GET path`: the body's path (`/v1/blue`), or the failure.
async fn served(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Result<String, String> {
    let mut request = client().get(gw.url(path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.map_err(|e| e.to_string())?;
    match body.strip_prefix("origin GET ") {
        Some(seen) if status == 200 => Ok(format!("{seen} {id}")),
        _ => Err(format!("{status} {body}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_change_deploy_and_roll_back_under_load() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-deploy-state");
    let gw = start(&config(&origin, &state, "v1", "color: blue")).await;

    // A stage that names no deployment follows the config, as before.
    assert_eq!(stage_status(&gw, "shop", "prod")["serves"], "config");
    let v1 = deploy(&gw, "shop", "prod", "first");
    let status = stage_status(&gw, "shop", "prod");
    assert_eq!(status["serves"], "deployment", "{status}");
    assert_eq!(status["deployment"], v1.as_str());

    let stop = Arc::new(AtomicBool::new(false));
    let gw = Arc::new(gw);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (gw, stop) = (gw.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && seen.len() < 20_000
            {
                seen.push(served(&gw, "/prod/v", &[]).await);
            }
            seen
        }));
    }
    let wait_for = |version: &'static str| {
        let gw = gw.clone();
        async move {
            eventually(Duration::from_secs(5), || {
                let gw = gw.clone();
                async move {
                    let seen = served(&gw, "/prod/v", &[]).await.ok()?;
                    seen.starts_with(version).then_some(())
                }
            })
            .await
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The config changes: the stage keeps serving its deployment.
    gw.replace_config(&config(&origin, &state, "v2", "color: blue"));
    gw.wait_event("config reloaded", Duration::from_secs(10), |e| {
        e["fields"]["generation"].as_u64() > Some(2)
    })
    .await;
    for _ in 0..20 {
        let seen = served(&gw, "/prod/v", &[]).await.unwrap();
        assert!(seen.starts_with("/v1/blue "), "{seen}");
    }
    // `other` names no deployment: it follows the config.
    assert!(
        served(&gw, "/prod/other", &[])
            .await
            .unwrap()
            .starts_with("/other-v2 ")
    );
    // What the admin API exports is what each stage serves: prod its deployment (v1), beta
    // (which follows the file) the file as it is now (v2).
    for (stage, version) in [("prod", "/v1/"), ("beta", "/v2/")] {
        let (status, document) = gw
            .admin(
                reqwest::Method::GET,
                &format!("/admin/apis/shop/openapi?stage={stage}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{document}");
        let uri = &document["paths"]["/v"]["get"]["x-amazon-apigateway-integration"]["uri"];
        assert!(
            uri.as_str().is_some_and(|u| u.contains(version)),
            "{stage}: {uri}"
        );
    }

    let v2 = deploy(&gw, "shop", "prod", "second");
    // Once the CLI returns, the stage serves what it says.
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v2/blue ")
    );
    assert_eq!(stage_status(&gw, "shop", "prod")["deployment"], v2.as_str());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (ok, pointer, text) = cli(&gw, &["rollback", "--api", "shop", "--stage", "prod"]);
    assert!(ok, "{text}");
    assert_eq!(pointer["deployment"], v1.as_str(), "{pointer}");
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/blue ")
    );
    assert!(wait_for("/v1/").await.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Rolling back from the oldest deployment has nowhere to go, and says so.
    let (ok, _, text) = cli(&gw, &["rollback", "--api", "shop", "--stage", "prod"]);
    assert!(!ok && text.contains("oldest"), "{text}");
    let (ok, pointer, text) = cli(
        &gw,
        &["rollback", "--api", "shop", "--stage", "prod", "--to", &v2],
    );
    assert!(ok && pointer["deployment"] == v2.as_str(), "{text}");
    tokio::time::sleep(Duration::from_millis(200)).await;

    stop.store(true, Ordering::Relaxed);
    let mut by_version: HashMap<String, usize> = HashMap::new();
    let mut served_ids: Vec<(String, String)> = Vec::new();
    for client in clients {
        for outcome in client.await.unwrap() {
            let seen = outcome.unwrap_or_else(|e| panic!("a request failed: {e}"));
            let (path, id) = seen.split_once(' ').unwrap();
            *by_version.entry(path.to_owned()).or_default() += 1;
            served_ids.push((path.to_owned(), id.to_owned()));
        }
    }
    assert_eq!(
        by_version
            .keys()
            .filter(|p| !["/v1/blue", "/v2/blue"].contains(&p.as_str()))
            .count(),
        0,
        "{by_version:?}"
    );
    assert!(
        by_version["/v1/blue"] > 0 && by_version["/v2/blue"] > 0,
        "{by_version:?}"
    );

    // Each request was one version end to end: the deployment its access-log line names is
    // the one whose integration the origin saw.
    let log = gw
        .wait_access_log(served_ids.len(), Duration::from_secs(10))
        .await;
    let deployment_of: HashMap<&str, &str> = log
        .iter()
        .filter_map(|l| Some((l["request_id"].as_str()?, l["deployment"].as_str()?)))
        .collect();
    let mut checked = 0;
    for (path, id) in &served_ids {
        let Some(deployment) = deployment_of.get(id.as_str()) else {
            continue;
        };
        let expected = if path.starts_with("/v1/") { &v1 } else { &v2 };
        assert_eq!(deployment, expected, "request {id} reached {path}");
        checked += 1;
    }
    assert!(
        checked * 10 >= served_ids.len() * 9,
        "{checked} of {}",
        served_ids.len()
    );

    let (ok, table) = gw.cli(&["deployments", "list", "--api", "shop"]);
    assert!(ok, "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("DESCRIPTION"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&v1) && lines[1].ends_with("first"),
        "{table}"
    );

    // `deployments list` shows both, oldest first, with the stage on the one it serves.
    let (ok, list, text) = cli(&gw, &["deployments", "list", "--api", "shop"]);
    assert!(ok, "{text}");
    let list = list["deployments"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["id"], v1.as_str());
    assert_eq!(list[0]["description"], "first");
    assert_eq!(list[1]["stages"], serde_json::json!(["prod"]));
    assert_eq!(list[0]["hash"].as_str().unwrap().len(), 64);
    assert_ne!(list[0]["hash"], list[1]["hash"]);

    // The diff names what changed; show carries the definition.
    let (ok, diff, text) = cli(&gw, &["deployments", "diff", &v1, &v2]);
    assert!(ok, "{text}");
    let changes: Vec<&str> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].starts_with("~ routes[GET /v].integration.http_proxy:")
            && changes[0].contains("/v1/")
            && changes[0].contains("/v2/"),
        "{changes:?}"
    );
    let (ok, shown, _) = cli(&gw, &["deployments", "show", &v1]);
    assert!(ok);
    assert_eq!(shown["definition"]["name"], "shop");
    assert!(shown["definition"].get("stages").is_none(), "{shown}");

    // A deployment a stage serves is not deleted, with API Gateway's words; another is.
    let (ok, _, text) = cli(&gw, &["deployments", "delete", &v2]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("Active stages pointing to this deployment must be moved or deleted"),
        "{text}"
    );
    let (ok, deleted, text) = cli(&gw, &["deployments", "delete", &v1]);
    assert!(ok && deleted["deleted"] == v1.as_str(), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_takes_its_share_its_overrides_and_is_promoted_or_stopped() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-canary-state");
    let gw = start(&config(&origin, &state, "v1", "color: blue")).await;
    let base = deploy(&gw, "shop", "prod", "base");

    // A canary needs a deployment to run beside.
    let (ok, _, text) = cli(
        &gw,
        &[
            "canary",
            "start",
            "--api",
            "shop",
            "--stage",
            "beta",
            "--percent",
            "10",
        ],
    );
    assert!(!ok && text.contains("deploy it first"), "{text}");

    gw.replace_config(&config(&origin, &state, "v2", "color: blue"));
    gw.wait_event("config reloaded", Duration::from_secs(10), |e| {
        e["fields"]["generation"].as_u64() > Some(2)
    })
    .await;
    let (ok, pointer, text) = cli(
        &gw,
        &[
            "canary",
            "start",
            "--api",
            "shop",
            "--stage",
            "prod",
            "--percent",
            "10",
            "--var",
            "color=green",
            "--pin-header",
            "x-canary",
        ],
    );
    assert!(ok, "{text}");
    let canary = pointer["canary"]["deployment"].as_str().unwrap().to_owned();
    assert_ne!(canary, base);
    assert_eq!(pointer["deployment"], base.as_str());

    // 3,000 requests, 8 at a time: about 10% reach the canary, which sees its override.
    let gw = Arc::new(gw);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..375 {
                seen.push(served(&gw, "/prod/v", &[]).await.unwrap());
            }
            seen
        }));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for seen in task.await.unwrap() {
            let path = seen.split_once(' ').unwrap().0.to_owned();
            *counts.entry(path).or_default() += 1;
        }
    }
    let to_canary = counts.get("/v2/green").copied().unwrap_or(0);
    let to_base = counts.get("/v1/blue").copied().unwrap_or(0);
    assert_eq!(
        to_canary + to_base,
        3000,
        "only the two sides, each with its variables: {counts:?}"
    );
    assert!(
        (240..=360).contains(&to_canary),
        "canary share {to_canary} of 3000 is outside 10% ± 2 points"
    );

    // The pin header picks a side on purpose.
    for _ in 0..50 {
        let seen = served(&gw, "/prod/v", &[("x-canary", "canary")])
            .await
            .unwrap();
        assert!(seen.starts_with("/v2/green "), "{seen}");
        let seen = served(&gw, "/prod/v", &[("x-canary", "base")])
            .await
            .unwrap();
        assert!(seen.starts_with("/v1/blue "), "{seen}");
    }

    // `$context.deploymentId` names the side's deployment to the integration.
    for (pin, expected) in [("canary", &canary), ("base", &base)] {
        served(&gw, "/prod/d", &[("x-canary", pin)]).await.unwrap();
        let seen = origin.requests_to("/d");
        assert_eq!(
            seen.last().unwrap().header("x-deployment"),
            Some(expected.as_str())
        );
    }

    // The access log tells the sides apart.
    let log = gw.wait_access_log(3102, Duration::from_secs(10)).await;
    let canary_lines = log
        .iter()
        .filter(|l| l["canary"] == true && l["deployment"] == canary.as_str())
        .count();
    let base_lines = log
        .iter()
        .filter(|l| l["canary"].is_null() && l["deployment"] == base.as_str())
        .count();
    assert_eq!(canary_lines, to_canary + 51, "{:?}", log.last());
    assert_eq!(base_lines, to_base + 51);

    // Stop: every request goes to the base again.
    let (ok, pointer, text) = cli(&gw, &["canary", "stop", "--api", "shop", "--stage", "prod"]);
    assert!(ok && pointer["canary"].is_null(), "{text}");
    for _ in 0..50 {
        let seen = served(&gw, "/prod/v", &[("x-canary", "canary")])
            .await
            .unwrap();
        assert!(seen.starts_with("/v1/blue "), "{seen}");
    }

    // Start it again from the stored deployment and promote it: the canary's deployment is
    // the stage's, with the stage's own variables.
    let (ok, _, text) = cli(
        &gw,
        &[
            "canary",
            "start",
            "--api",
            "shop",
            "--stage",
            "prod",
            "--percent",
            "50",
            "--deployment",
            &canary,
        ],
    );
    assert!(ok, "{text}");
    let (ok, pointer, text) = cli(
        &gw,
        &["canary", "promote", "--api", "shop", "--stage", "prod"],
    );
    assert!(ok, "{text}");
    assert_eq!(pointer["deployment"], canary.as_str());
    assert!(pointer["canary"].is_null());
    for _ in 0..50 {
        let seen = served(&gw, "/prod/v", &[]).await.unwrap();
        assert!(seen.starts_with("/v2/blue "), "{seen}");
    }
    let (ok, _, text) = cli(
        &gw,
        &["canary", "promote", "--api", "shop", "--stage", "prod"],
    );
    assert!(!ok && text.contains("has no canary"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_survive_kill_9_and_an_unservable_one_is_refused_for_its_stage_alone() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-deploy-restart");
    let gw = start(&config(&origin, &state, "v1", "color: blue")).await;
    let prod = deploy(&gw, "shop", "prod", "prod");
    let beta = deploy(&gw, "shop", "beta", "beta");
    let other = deploy(&gw, "other", "prod", "other");
    let (ok, _, text) = cli(
        &gw,
        &[
            "canary",
            "start",
            "--api",
            "shop",
            "--stage",
            "beta",
            "--percent",
            "100",
            "--var",
            "color=canary",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        served(&gw, "/beta/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/canary ")
    );
    gw.signal("KILL");
    drop(gw);

    // The same file: the same deployments serve, the canary with them.
    let gw = start(&config(&origin, &state, "v9", "color: blue")).await;
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/blue ")
    );
    assert!(
        served(&gw, "/beta/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/canary ")
    );
    assert!(
        served(&gw, "/prod/other", &[])
            .await
            .unwrap()
            .starts_with("/other-v1 ")
    );
    let beta_status = stage_status(&gw, "shop", "beta");
    assert_eq!(beta_status["deployment"], beta.as_str());
    assert_eq!(beta_status["canary"]["percent"], 100.0);
    assert_eq!(beta_status["canary"]["variables"]["color"], "canary");
    gw.signal("KILL");
    drop(gw);

    // prod's `color` is gone from the config: its deployment (which uses it) cannot serve
    // there, and is refused with a line that says so; every other stage serves.
    let gw = start(&config_with(&origin, &state, "v9", "v9", "")).await;
    let refused = gw
        .wait_event("deployment refused; the stage serves nothing of it until it is pointed at another deployment", Duration::from_secs(5), |e| {
            e["fields"]["stage"] == "prod" && e["fields"]["api"] == "shop"
        })
        .await;
    assert_eq!(refused["fields"]["deployment"], prod.as_str());
    let reason = refused["fields"]["reason"].as_str().unwrap();
    assert!(reason.contains("color"), "{reason}");
    assert!(served(&gw, "/prod/v", &[]).await.is_err());
    assert!(
        served(&gw, "/beta/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/canary ")
    );
    assert!(
        served(&gw, "/prod/other", &[])
            .await
            .unwrap()
            .starts_with("/other-v1 ")
    );
    let status = stage_status(&gw, "shop", "prod");
    assert!(
        status["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("color"),
        "{status}"
    );
    assert_eq!(
        stage_status(&gw, "other", "prod")["deployment"],
        other.as_str()
    );
}

#[test]
fn every_lifecycle_command_has_help() {
    for command in [
        &["apis"][..],
        &["stages"],
        &["deploy"],
        &["deployments"],
        &["deployments", "list"],
        &["deployments", "show"],
        &["deployments", "diff"],
        &["deployments", "delete"],
        &["rollback"],
        &["canary"],
        &["canary", "start"],
        &["canary", "promote"],
        &["canary", "stop"],
        &["domains"],
        &["stages", "set"],
        &["stages", "reset"],
        &["plans", "list"],
        &["plans", "create"],
        &["plans", "delete"],
        &["plans", "attach"],
        &["plans", "detach"],
        &["cache", "list"],
        &["cache", "flush"],
        &["plugins", "list"],
        &["plugins", "upload"],
        &["keys", "list"],
    ] {
        let out = Command::new(edgeway_bin())
            .args(command)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command:?}: {text}");
        assert!(text.contains("Usage: edgeway"), "{command:?}: {text}");
        assert!(text.contains("--admin"), "{command:?}: {text}");
    }
}

/// A node with one API, `shop`, whose `GET /pets` (with `route`'s extra settings) goes to the
/// origin's `/pets`; its stage `prod` has `stage`'s settings, and the file's `usage_plans`
/// are `plans` (YAML flow style, all three).
fn pets_config(
    origin: &Origin,
    state: &std::path::Path,
    stage: &str,
    route: &str,
    plans: &str,
) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: EDGEWAY_ADMIN_TOKEN }}
origin: {origin}
state: {{ path: {state} }}
apis:
  - name: shop
    stages: {{ prod: {{ {stage} }} }}
    routes:
      - route: GET /pets
        integration: {{ http_proxy: "${{origin}}/pets" }}
        {route}
usage_plans: {plans}
"#,
        origin = origin.url(),
        state = state.display(),
    )
}

/// `edgeway keys create` (which prints the admin API's JSON as it is): the new key.
fn create_key(gw: &Gateway) -> Value {
    let (ok, text) = gw.cli(&["keys", "create", "--name", "k"]);
    assert!(ok, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_cache_and_plugins_through_the_cli() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-operate-state");
    let yaml = pets_config(
        &origin,
        &state,
        "cache: { ttl_s: 60 }",
        "",
        "[{ name: basic, apis: [shop/prod], quota: { limit: 100, period: day } }, { name: gold, apis: [shop/prod] }]",
    );
    let gw = start(&yaml).await;
    let id = create_key(&gw)["id"].as_str().unwrap().to_owned();

    let (ok, _, text) = cli(&gw, &["plans", "attach", "basic", &id]);
    assert!(ok, "{text}");
    let (ok, plans, text) = cli(&gw, &["plans", "list"]);
    assert!(ok, "{text}");
    assert_eq!(plans["plans"][0]["name"], "basic");
    assert_eq!(plans["plans"][0]["keys"], serde_json::json!([id]));
    assert_eq!(plans["plans"][0]["quota"]["limit"], 100);
    assert_eq!(
        plans["plans"][0]["stages"],
        serde_json::json!(["shop/prod"])
    );
    let (ok, table) = gw.cli(&["plans", "list"]);
    assert!(
        ok && table.starts_with("PLAN") && table.contains("100 per day"),
        "{table}"
    );
    let (ok, _, text) = cli(&gw, &["plans", "attach", "platinum", &id]);
    assert!(!ok && text.contains("no usage plan named"), "{text}");
    let (ok, _, text) = cli(&gw, &["plans", "detach", &id]);
    assert!(ok, "{text}");
    let (_, plans, _) = cli(&gw, &["plans", "list"]);
    assert_eq!(plans["plans"][0]["keys"], serde_json::json!([]));

    // A cached answer, counted, then flushed: the next request reaches the origin again.
    for _ in 0..2 {
        assert!(served(&gw, "/prod/pets", &[]).await.is_ok());
    }
    assert_eq!(origin.count_to("/pets"), 1);
    let (ok, caches, text) = cli(&gw, &["cache", "list"]);
    assert!(ok, "{text}");
    assert_eq!(caches["stages"][0]["entries"], 1, "{caches}");
    let (ok, table) = gw.cli(&["cache", "list"]);
    assert!(
        ok && table.starts_with("API") && table.contains("shop"),
        "{table}"
    );
    let (ok, _, text) = cli(&gw, &["cache", "flush", "--api", "shop", "--stage", "prod"]);
    assert!(ok, "{text}");
    assert!(served(&gw, "/prod/pets", &[]).await.is_ok());
    assert_eq!(origin.count_to("/pets"), 2);

    let (ok, plugins, text) = cli(&gw, &["plugins", "list"]);
    assert!(ok && plugins["plugins"] == serde_json::json!([]), "{text}");
    let (ok, _, text) = cli(&gw, &["plugins", "upload", "nope", "/nonexistent.wasm"]);
    assert!(
        !ok && text.contains("cannot read /nonexistent.wasm"),
        "{text}"
    );
}

/// `edgeway stages set --api shop --stage prod ARGS... --output json`.
fn set_prod(gw: &Gateway, args: &[&str]) -> (bool, Value, String) {
    let mut all = vec!["stages", "set", "--api", "shop", "--stage", "prod"];
    all.extend_from_slice(args);
    cli(gw, &all)
}

/// `edgeway stages set`: a deployed stage's variables, throttle and cache changed over the
/// file's without touching it, kept across a deploy, a rollback and `kill -9`, refused when
/// the stage could not serve with them, and dropped by `stages reset`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_settings_set_through_the_cli_serve_at_once_and_persist() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-stage-settings");
    let yaml = config(&origin, &state, "v1", "color: blue, size: m");
    let gw = start(&yaml).await;

    // A stage that follows the file is changed in the file.
    let (ok, _, text) = set_prod(&gw, &["--var", "color=green"]);
    assert!(
        !ok && text.contains("follows the config file: change its settings there"),
        "{text}"
    );

    let first = deploy(&gw, "shop", "prod", "first");
    let (ok, pointer, text) = set_prod(&gw, &["--var", "color=green", "--unset-var", "size"]);
    assert!(ok, "{text}");
    assert_eq!(
        pointer["settings"]["variables"],
        json!({ "color": "green", "size": null })
    );
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/green ")
    );
    // The file is untouched, and the other stage keeps its own variables.
    assert_eq!(std::fs::read_to_string(&gw.config_path).unwrap(), yaml);
    assert!(
        served(&gw, "/beta/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/beta ")
    );

    // A throttle set here applies to the next request: a bucket of one.
    let (ok, _, text) = set_prod(&gw, &["--throttle", "0.01:1"]);
    assert!(ok, "{text}");
    let statuses: Vec<String> =
        futures_util::future::join_all((0..3).map(|_| served(&gw, "/prod/v", &[])))
            .await
            .into_iter()
            .map(|r| r.map_or_else(|e| e[..3].to_owned(), |_| "200".into()))
            .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "200").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "429").count(),
        2,
        "{statuses:?}"
    );
    let (ok, _, text) = set_prod(&gw, &["--no-throttle"]);
    assert!(ok, "{text}");
    assert!(served(&gw, "/prod/v", &[]).await.is_ok());

    // Settings the stage could not serve with are refused, and change nothing.
    let (ok, _, text) = set_prod(&gw, &["--unset-var", "color"]);
    assert!(
        !ok && text.contains("cannot serve with these settings") && text.contains("color"),
        "{text}"
    );
    let (ok, _, text) = set_prod(&gw, &["--patch", r#"{"colour": {}}"#]);
    assert!(
        !ok && text.contains("unknown stage setting `colour`"),
        "{text}"
    );
    let (ok, _, text) = set_prod(&gw, &["--patch", r#"{"throttle": {"rate": "fast"}}"#]);
    assert!(
        !ok && text.contains("cannot serve with these settings"),
        "{text}"
    );
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/green ")
    );

    // `edgeway stages` shows what was set here; a deploy and a rollback keep it.
    let status = stage_status(&gw, "shop", "prod");
    assert_eq!(
        status["settings"]["variables"]["color"], "green",
        "{status}"
    );
    let (ok, table) = gw.cli(&["stages", "--api", "shop"]);
    assert!(ok && table.contains("SET HERE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("prod") && l.contains("throttle,variables")),
        "{table}"
    );
    deploy(&gw, "shop", "prod", "second");
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/green ")
    );
    let (ok, _, text) = cli(
        &gw,
        &[
            "rollback", "--api", "shop", "--stage", "prod", "--to", &first,
        ],
    );
    assert!(ok, "{text}");
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/green ")
    );

    // Kept across kill -9.
    gw.signal("KILL");
    drop(gw);
    let gw = start(&yaml).await;
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/green ")
    );

    // Reset: the file's settings again.
    let (ok, pointer, text) = cli(
        &gw,
        &["stages", "reset", "--api", "shop", "--stage", "prod"],
    );
    assert!(ok, "{text}");
    assert!(pointer.get("settings").is_none(), "{pointer}");
    assert!(
        served(&gw, "/prod/v", &[])
            .await
            .unwrap()
            .starts_with("/v1/blue ")
    );
}

/// `edgeway plans create` and `delete`: a plan made on the running node holds the keys put in
/// it to its quota at once, survives `kill -9`, and cannot be deleted while a key is in it;
/// the file's plans stay the file's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_plans_created_through_the_cli_hold_their_keys() {
    let origin = Origin::echo().await;
    let state = unique_temp_dir("edgeway-plans-state");
    let yaml = pets_config(
        &origin,
        &state,
        "",
        "api_key_required: true",
        "[{ name: basic, apis: [shop/prod] }]",
    );
    let gw = start(&yaml).await;
    let key = create_key(&gw);
    let (id, value) = (
        key["id"].as_str().unwrap().to_owned(),
        key["value"].as_str().unwrap().to_owned(),
    );
    let status = |gw: &Gateway| {
        let (url, value) = (gw.url("/prod/pets"), value.clone());
        async move {
            client()
                .get(url)
                .header("x-api-key", value)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(&gw).await, 403, "a key in no plan");

    let (ok, plan, text) = cli(
        &gw,
        &[
            "plans",
            "create",
            "gold",
            "--stage",
            "shop/prod",
            "--quota",
            "2/day",
            "--throttle",
            "100:100",
        ],
    );
    assert!(ok, "{text}");
    assert_eq!(plan["name"], "gold");
    assert_eq!(plan["source"], "admin");
    assert_eq!(plan["quota"], json!({ "limit": 2, "period": "day" }));
    let (ok, _, text) = cli(&gw, &["plans", "create", "basic", "--stage", "shop/prod"]);
    assert!(
        !ok && text.contains("the config file declares usage plan basic"),
        "{text}"
    );
    let (ok, _, text) = cli(&gw, &["plans", "create", "silver", "--stage", "shop/test"]);
    assert!(
        !ok && text.contains("usage plan silver") && text.contains("test"),
        "{text}"
    );
    let (ok, _, text) = cli(&gw, &["plans", "create", "gold", "--stage", "shop/prod"]);
    assert!(!ok && text.contains("gold exists"), "{text}");

    // The key in the new plan: its quota of two, then API Gateway's 429.
    let (ok, _, text) = cli(&gw, &["plans", "attach", "gold", &id]);
    assert!(ok, "{text}");
    assert_eq!(
        [status(&gw).await, status(&gw).await, status(&gw).await],
        [200, 200, 429]
    );
    let (ok, plans, text) = cli(&gw, &["plans", "list"]);
    assert!(ok, "{text}");
    assert_eq!(plans["plans"][0]["source"], "config");
    assert_eq!(plans["plans"][1]["name"], "gold");
    assert_eq!(plans["plans"][1]["keys"], json!([id]));
    let (ok, table) = gw.cli(&["plans", "list"]);
    assert!(
        ok && table
            .lines()
            .any(|l| l.starts_with("gold") && l.contains("admin") && l.contains("2 per day")),
        "{table}"
    );

    let (ok, _, text) = cli(&gw, &["plans", "delete", "gold"]);
    assert!(
        !ok && text.contains("keys are in usage plan gold") && text.contains(&id),
        "{text}"
    );
    let (ok, _, text) = cli(&gw, &["plans", "delete", "basic"]);
    assert!(
        !ok && text.contains("declared in the config file"),
        "{text}"
    );

    // Kept across kill -9: the key is still held to the plan (never let in as plan-less).
    gw.signal("KILL");
    drop(gw);
    let gw = start(&yaml).await;
    let (_, plans, _) = cli(&gw, &["plans", "list"]);
    assert_eq!(plans["plans"][1]["name"], "gold", "{plans}");
    assert_ne!(status(&gw).await, 403);

    let (ok, _, text) = cli(&gw, &["plans", "detach", &id]);
    assert!(ok, "{text}");
    let (ok, _, text) = cli(&gw, &["plans", "delete", "gold"]);
    assert!(ok, "{text}");
    assert_eq!(status(&gw).await, 403);
    let (ok, _, text) = cli(&gw, &["plans", "delete", "gold"]);
    assert!(!ok && text.contains("no usage plan gold"), "{text}");
}
