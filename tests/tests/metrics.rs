//! `GET /metrics` as an operator uses it: a real Prometheus (Debian's, installed by
//! scripts/test.sh) scrapes a node on loopback every second while the test drives a known mix
//! of requests (200s, 404s, 429s, cache misses and hits, a plugin that times out), then the
//! test asks Prometheus's HTTP API for each count and finds it exactly, and the latency
//! histograms populated.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgeway_tests::*;
use serde_json::Value;

const TOKENS: &str = "role: authorizer, config: { tokens: { ops-token: { principal: ops } } }";

/// Prometheus on a free loopback port, scraping `target` every second.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    async fn start(target: std::net::SocketAddr) -> Self {
        let dir = unique_temp_dir("prometheus");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, scrape_timeout: 1s }}\nscrape_configs:\n  - job_name: edgeway\n    static_configs: [{{ targets: ['{target}'] }}]\n"
            ),
        )
        .unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("prometheus is installed by scripts/test.sh");
        let prometheus = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let ready = eventually(Duration::from_secs(60), || async {
            let r = client()
                .get(format!("{}/-/ready", prometheus.url))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        assert!(
            ready.is_some(),
            "prometheus did not get ready: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        prometheus
    }

    /// Prometheus's answer to an instant query.
    async fn query(&self, query: &str) -> Option<Value> {
        let r = client()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?;
        serde_json::from_str(&r.text().await.ok()?).ok()
    }

    /// The value of a PromQL expression that yields one sample, once it does.
    async fn value(&self, query: &str) -> Option<f64> {
        let body = self.query(query).await?;
        let result = body["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Waits (bounded) until `query` is `expected`: scrapes land every second.
    async fn assert_eventually(&self, query: &str, expected: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.value(query).await;
            if last == Some(expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{query}: {last:?}, expected {expected}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_exact_counts_of_a_known_mix() {
    let origin = Origin::echo().await;
    let plugins = plugins_yaml(&[
        ("spin", "test_spin", "role: handler, timeout_ms: 200"),
        ("auth", "token_authorizer", TOKENS),
    ]);
    let yaml = format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0 }}
origin: {origin}
{plugins}
apis:
  - name: shop
    authorizers:
      tok: {{ plugin: auth, identity_source: [header.authorization] }}
    stages:
      prod: {{ cache: {{ ttl_s: 300 }} }}
      beta: {{ detailed_metrics: true }}
    routes:
      - {{ route: GET /items, integration: {{ http_proxy: "${{origin}}/items" }} }}
      - {{ route: GET /limited, integration: {{ http_proxy: "${{origin}}/limited" }}, throttle: {{ rate: 0.01, burst: 1 }} }}
      - {{ route: GET /cached, integration: {{ http_proxy: "${{origin}}/cached" }} }}
      - {{ route: GET /spin, integration: {{ function: spin }} }}
      - {{ route: GET /secured, auth: tok, integration: {{ http_proxy: "${{origin}}/secured" }} }}
      - {{ route: GET /down, integration: {{ http_proxy: "http://127.0.0.1:9/down" }} }}
"#,
        origin = origin.url()
    );
    let gw = Gateway::builder().start(&yaml).await;
    let c = client();
    let get = |path: &str| c.get(gw.url(path)).send();

    for _ in 0..5 {
        assert_eq!(get("/prod/items").await.unwrap().status(), 200);
    }
    for _ in 0..2 {
        assert_eq!(get("/beta/items").await.unwrap().status(), 200);
    }
    for _ in 0..3 {
        assert_eq!(get("/prod/nowhere").await.unwrap().status(), 404);
    }
    let limited: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(get("/prod/limited").await.unwrap().status().as_u16());
        }
        statuses
    };
    assert_eq!(limited, [200, 429, 429]);
    for _ in 0..3 {
        assert_eq!(get("/prod/cached").await.unwrap().status(), 200);
    }
    // A plugin that runs past its deadline: 500 FUNCTION_FAILURE (type DEFAULT_5XX).
    assert_eq!(get("/prod/spin").await.unwrap().status(), 500);
    // On beta (no stage cache, detailed metrics): an authorizer that allows a token twice
    // (a call, then its result cache) and refuses another; an origin nothing listens on.
    for (token, status) in [("ops-token", 200), ("ops-token", 200), ("wrong", 403)] {
        let r = c
            .get(gw.url("/beta/secured"))
            .header("authorization", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{token}");
    }
    assert_eq!(get("/beta/down").await.unwrap().status(), 502);

    // The text itself, as Prometheus reads it.
    let text = c
        .get(format!("http://{}/metrics", gw.addr("admin")))
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200, "no token needed by default");
    assert!(
        text.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );

    let prometheus = Prometheus::start(gw.addr("admin")).await;
    let shop = r#"api="shop",stage="prod""#;
    // 5 items + 1 limited + 3 cached; the spin's 500 is a 5xx.
    prometheus
        .assert_eventually(
            &format!(r#"edgeway_requests_total{{{shop},status_class="2xx"}}"#),
            9.0,
        )
        .await;
    prometheus
        .assert_eventually(
            &format!(r#"edgeway_requests_total{{{shop},status_class="4xx"}}"#),
            2.0,
        )
        .await;
    prometheus
        .assert_eventually(
            &format!(r#"edgeway_requests_total{{{shop},status_class="5xx"}}"#),
            1.0,
        )
        .await;
    // Unrouted requests count under empty api and stage labels.
    prometheus
        .assert_eventually(
            r#"edgeway_requests_total{api="",stage="",status_class="4xx"}"#,
            3.0,
        )
        .await;
    prometheus
        .assert_eventually(
            r#"edgeway_gateway_errors_total{api="",stage="",type="RESOURCE_NOT_FOUND"}"#,
            3.0,
        )
        .await;
    prometheus
        .assert_eventually(
            &format!(r#"edgeway_gateway_errors_total{{{shop},type="THROTTLED"}}"#),
            2.0,
        )
        .await;
    prometheus
        .assert_eventually(
            &format!(r#"edgeway_gateway_errors_total{{{shop},type="DEFAULT_5XX"}}"#),
            1.0,
        )
        .await;
    // The stage cache takes every GET route, as API Gateway's does: each route's first
    // request misses (items, limited, cached, spin), items' 4 others and cached's 2 hit.
    prometheus
        .assert_eventually(&format!("edgeway_cache_misses_total{{{shop}}}"), 4.0)
        .await;
    prometheus
        .assert_eventually(&format!("edgeway_cache_hits_total{{{shop}}}"), 6.0)
        .await;
    prometheus
        .assert_eventually(
            r#"edgeway_plugin_failures_total{plugin="spin",kind="timeout"}"#,
            1.0,
        )
        .await;
    // Detailed metrics: beta's requests by route.
    prometheus
        .assert_eventually(
            r#"edgeway_requests_total{api="shop",stage="beta",route="GET /items",status_class="2xx"}"#,
            2.0,
        )
        .await;
    // Every request of the stage is in the latency histogram; only the 4 that reached the
    // origin or the plugin (the cache misses) in the integration one.
    prometheus
        .assert_eventually(
            &format!("edgeway_request_duration_seconds_count{{{shop}}}"),
            12.0,
        )
        .await;
    prometheus
        .assert_eventually(
            &format!(r#"edgeway_request_duration_seconds_bucket{{{shop},le="+Inf"}}"#),
            12.0,
        )
        .await;
    prometheus
        .assert_eventually(
            &format!("edgeway_integration_duration_seconds_count{{{shop}}}"),
            4.0,
        )
        .await;
    let slowest = prometheus
        .value(&format!(
            "histogram_quantile(0.99, edgeway_request_duration_seconds_bucket{{{shop}}})"
        ))
        .await
        .unwrap();
    assert!(
        (0.1..=0.5).contains(&slowest),
        "the 200 ms plugin timeout is the slowest request: {slowest}"
    );
    prometheus
        .assert_eventually("edgeway_config_generation", 1.0)
        .await;

    // Throttles by level: both of limited's refusals were the route's.
    prometheus
        .assert_eventually(
            &format!(r#"edgeway_throttled_total{{{shop},level="route"}}"#),
            2.0,
        )
        .await;
    let secured = r#"api="shop",stage="beta",route="GET /secured""#;
    for (result, count) in [("allow", 2.0), ("deny", 1.0)] {
        prometheus
            .assert_eventually(
                &format!(r#"edgeway_authorizer_decisions_total{{{secured},result="{result}"}}"#),
                count,
            )
            .await;
    }
    prometheus
        .assert_eventually(
            &format!("edgeway_authorizer_cache_hits_total{{{secured}}}"),
            1.0,
        )
        .await;
    // The stage cache stored items, limited's 200 and cached (not spin's 500).
    prometheus
        .assert_eventually(&format!("edgeway_cache_stores_total{{{shop}}}"), 3.0)
        .await;
    prometheus
        .assert_eventually(&format!("edgeway_cache_entries{{{shop}}}"), 3.0)
        .await;
    prometheus
        .assert_eventually(&format!("edgeway_cache_evictions_total{{{shop}}}"), 0.0)
        .await;
    // Plugins: the timed-out call and the authorizer's one call are in the call-time
    // histograms; the authorizer's instance went back to its pool.
    prometheus
        .assert_eventually(
            r#"edgeway_plugin_call_duration_seconds_count{plugin="spin"}"#,
            1.0,
        )
        .await;
    prometheus
        .assert_eventually(
            r#"edgeway_plugin_call_duration_seconds_count{plugin="auth"}"#,
            2.0,
        )
        .await;
    prometheus
        .assert_eventually(r#"edgeway_plugin_instances_idle{plugin="auth"}"#, 1.0)
        .await;
    // Every request the origin received went over a connection opened or reused by its
    // pool; the origin nothing listens on failed to connect once.
    let upstream = format!(r#"origin="{}""#, origin.url());
    prometheus
        .assert_eventually(
            &format!(
                "edgeway_upstream_connections_opened_total{{{upstream}}} + edgeway_upstream_connections_reused_total{{{upstream}}}"
            ),
            origin.request_count() as f64,
        )
        .await;
    prometheus
        .assert_eventually(
            r#"edgeway_upstream_failures_total{origin="http://127.0.0.1:9",kind="connect"}"#,
            1.0,
        )
        .await;
    prometheus
        .assert_eventually(
            &format!(r#"edgeway_upstream_failures_total{{{upstream},kind="exchange"}}"#),
            0.0,
        )
        .await;
    // The test's client connections to the node's listener.
    prometheus
        .assert_eventually(
            &format!(
                r#"edgeway_connections_accepted_total{{listener="{}"}} >= bool 1"#,
                gw.addr("listen[0]")
            ),
            1.0,
        )
        .await;

    // examples/observability: its scrape config passes promtool, and every query of its
    // dashboard evaluates against this Prometheus (Grafana's variables filled in).
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/observability");
    let checked = Command::new("promtool")
        .args(["check", "config"])
        .arg(examples.join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(examples.join("grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queries.push(
                target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$api", ".*")
                    .replace("$stage", ".*")
                    .replace("$__rate_interval", "1m")
                    .replace("$__range", "5m"),
            );
        }
    }
    assert!(queries.len() >= 9, "{queries:?}");
    for query in &queries {
        let answer = prometheus.query(query).await.unwrap();
        assert_eq!(answer["status"], "success", "{query}: {answer}");
    }
    // The first panel (requests per second) has a series per API and stage once two scrapes
    // are in.
    let shown = eventually(Duration::from_secs(30), || async {
        let answer = prometheus.query(&queries[0]).await?;
        let series = answer["data"]["result"].as_array()?.len();
        (series >= 2).then_some(series)
    })
    .await;
    assert!(shown.is_some(), "{}", queries[0]);
}

#[tokio::test]
async fn metrics_can_require_the_admin_token() {
    let yaml = r#"
listen:
  - addr: 127.0.0.1:0
admin: { addr: 127.0.0.1:0, token_env: ADMIN_TOKEN, metrics_require_token: true }
apis:
  - name: shop
    stages: { prod: {} }
    routes:
      - { route: GET /m, integration: { mock: { status: 200 } } }
"#;
    let gw = Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .start(yaml)
        .await;
    let url = format!("http://{}/metrics", gw.addr("admin"));
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("edgeway_requests_total"));
}
