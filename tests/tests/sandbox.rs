//! The sandbox, with purpose-built bad plugins: an infinite loop, a memory bomb, a trap and a
//! plugin that tries to read files and the environment. Each fails its own request (or sees
//! nothing), is counted, and the process keeps serving everything else.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::{Duration, Instant};

use edgeway_tests::*;

async fn start() -> Gateway {
    let plugins = plugins_yaml(&[
        ("spin", "test_spin", "role: handler, timeout_ms: 1000"),
        (
            "bomb",
            "test_memory_bomb",
            "role: handler, memory_mib: 32, timeout_ms: 5000",
        ),
        ("trap", "test_trap", "role: handler"),
        ("sandbox", "test_sandbox", "role: handler"),
        ("echo", "echo_function", "role: handler"),
    ]);
    let yaml = format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
workers: 1
{plugins}
apis:
  - name: bad
    stages: {{ prod: {{}} }}
    routes:
      - {{ route: GET /spin, integration: {{ function: spin }} }}
      - {{ route: GET /bomb, integration: {{ function: bomb }} }}
      - {{ route: GET /trap, integration: {{ function: trap }} }}
      - {{ route: GET /fresh, isolation: per-request, integration: {{ function: trap }} }}
      - {{ route: GET /sandbox, integration: {{ function: sandbox }} }}
      - {{ route: GET /echo, integration: {{ function: echo }} }}
      - {{ route: GET /mock, integration: {{ mock: {{ body: ok }} }} }}
"#
    );
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("EDGEWAY_SECRET", "must-not-leak")
        .start(&yaml)
        .await
}

async fn stats(gw: &Gateway, name: &str) -> serde_json::Value {
    admin_plugins(&gw.admin_url("")).await[name]["stats"].clone()
}

#[tokio::test]
async fn an_infinite_loop_fails_its_request_within_the_deadline_and_others_go_on() {
    // One worker thread: the loop must yield, or it would hold every other request.
    let gw = start().await;
    let spinning: Vec<_> = (0..3)
        .map(|_| {
            let url = gw.url("/prod/spin");
            tokio::spawn(async move {
                let started = Instant::now();
                let r = client().get(url).send().await.unwrap();
                (started.elapsed(), r)
            })
        })
        .collect();
    // While the loops run (a second each), other routes answer: a loop yields its thread on
    // every epoch tick, so nothing waits for a deadline to pass.
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        let path = if i % 2 == 0 {
            "/prod/echo"
        } else {
            "/prod/mock"
        };
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a request waited {slowest:?} behind the loop"
    );
    for task in spinning {
        let (elapsed, r) = task.await.unwrap();
        assert!(
            (Duration::from_secs(1)..Duration::from_secs(3)).contains(&elapsed),
            "the loop was stopped after {elapsed:?}; its deadline is 1 s"
        );
        assert_gateway_error(r, 500, "Internal server error", "FUNCTION_FAILURE").await;
    }
    let s = stats(&gw, "spin").await;
    assert_eq!(
        (s["calls"].as_u64(), s["timeouts"].as_u64()),
        (Some(3), Some(3)),
        "{s}"
    );
    gw.wait_event("request failed", Duration::from_secs(5), |e| {
        e["fields"]["error"] == "plugin spin: no result within 1000 ms"
    })
    .await;
}

#[tokio::test]
async fn a_memory_bomb_is_capped_and_fails_only_its_call() {
    let mut gw = start().await;
    for _ in 0..2 {
        let r = client().get(gw.url("/prod/bomb")).send().await.unwrap();
        assert_gateway_error(r, 500, "Internal server error", "FUNCTION_FAILURE").await;
    }
    let s = stats(&gw, "bomb").await;
    assert_eq!(s["out_of_memory"], 2, "{s}");
    gw.wait_event("request failed", Duration::from_secs(5), |e| {
        e["fields"]["error"] == "plugin bomb: out of memory (limit 32 MiB)"
    })
    .await;
    let r = client().get(gw.url("/prod/echo")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(gw.is_running());
}

#[tokio::test]
async fn a_trap_is_counted_and_the_next_call_gets_a_fresh_instance() {
    let gw = start().await;
    let calls = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    assert_eq!(
        calls(client().get(gw.url("/prod/trap")).send().await.unwrap()).await,
        "calls=1"
    );
    assert_eq!(
        calls(client().get(gw.url("/prod/trap")).send().await.unwrap()).await,
        "calls=2"
    );
    let r = client()
        .get(gw.url("/prod/trap?trap=1"))
        .send()
        .await
        .unwrap();
    assert_gateway_error(r, 500, "Internal server error", "FUNCTION_FAILURE").await;
    // The trapped instance is gone; the next call starts from a new one.
    assert_eq!(
        calls(client().get(gw.url("/prod/trap")).send().await.unwrap()).await,
        "calls=1"
    );
    let s = stats(&gw, "trap").await;
    assert_eq!(
        (s["calls"].as_u64(), s["failures"].as_u64()),
        (Some(4), Some(1)),
        "{s}"
    );
    // `isolation: per-request` never reuses an instance.
    for _ in 0..3 {
        let r = client().get(gw.url("/prod/fresh")).send().await.unwrap();
        assert_eq!(calls(r).await, "calls=1");
    }
}

#[tokio::test]
async fn files_environment_and_sockets_are_out_of_reach() {
    let gw = start().await;
    let v = json_body(client().get(gw.url("/prod/sandbox")).send().await.unwrap()).await;
    assert!(v["file"].as_str().unwrap().starts_with("error:"), "{v}");
    assert!(v["dir"].as_str().unwrap().starts_with("error:"), "{v}");
    assert_eq!(v["env_home"], serde_json::Value::Null, "{v}");
    assert_eq!(
        v["env_count"], 0,
        "the gateway's environment (EDGEWAY_SECRET) is not visible"
    );
    assert!(v["tcp"].as_str().unwrap().starts_with("error:"), "{v}");
}
