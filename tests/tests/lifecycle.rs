//! Process lifecycle: startup log, SIGTERM drain (in-flight request completes, new connections
//! refused, /readyz 503, exit 0), `--help` / `--version`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;
use std::time::Duration;

use edgeway_tests::*;

fn config(origin: &Origin) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
admin: { addr: 127.0.0.1:0, token_env: EDGEWAY_TEST_ADMIN_TOKEN }
origin: ORIGIN
drain_timeout_s: 10
apis:
  - name: l
    stages:
      prod: {}
    routes:
      - route: GET /slow
        integration: { http_proxy: "${origin}/slow" }
      - route: GET /fast
        integration: { mock: { status: 200, body: fast } }
"#
    .replace("ORIGIN", &origin.url())
}

async fn slow_origin(delay: Duration) -> Origin {
    Origin::start_async(move |_r: Recorded| async move {
        tokio::time::sleep(delay).await;
        http::Response::builder().body(full("slow done")).unwrap()
    })
    .await
}

/// Sends `GET /prod/slow` in the background and returns once the origin has it.
async fn slow_request_in_flight(
    gw: &Gateway,
    origin: &Origin,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let url = gw.url("/prod/slow");
    let inflight = tokio::spawn(async move { client().get(url).send().await });
    eventually(Duration::from_secs(5), || async {
        (origin.request_count() == 1).then_some(())
    })
    .await
    .expect("slow request reached the origin");
    inflight
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_logs_listeners_and_generation_1() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin)).await;
    let listening = gw.events("listening");
    let names: Vec<&str> = listening
        .iter()
        .filter_map(|e| e["fields"]["name"].as_str())
        .collect();
    assert!(
        names.contains(&"listen[0]") && names.contains(&"admin"),
        "{names:?}"
    );
    for e in &listening {
        assert_eq!(e["level"], "INFO", "{e}");
        let addr = e["fields"]["addr"].as_str().unwrap();
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{e}");
    }
    let l0 = listening
        .iter()
        .find(|e| e["fields"]["name"] == "listen[0]")
        .unwrap();
    assert_eq!(l0["fields"]["tls"], false);
    gw.wait_event("config reloaded", Duration::from_secs(5), |e| {
        e["fields"]["generation"] == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    let origin = slow_origin(Duration::from_millis(1500)).await;
    let mut gw = Gateway::start(&config(&origin)).await;
    let listen = gw.addr("listen[0]");
    let admin = gw.admin_url("/readyz");
    let inflight = slow_request_in_flight(&gw, &origin).await;

    gw.signal("TERM");
    gw.wait_event("draining", Duration::from_secs(5), |_| true)
        .await;

    // readiness flips to 503 while draining (if the admin listener still answers at all)
    if let Ok(r) = client().get(&admin).send().await {
        assert_eq!(r.status(), 503, "/readyz while draining");
    }

    // new connections are refused once draining (allow the listener a moment to close)
    let refused = eventually(Duration::from_secs(1), || async {
        tokio::net::TcpStream::connect(listen)
            .await
            .err()
            .map(|_| ())
    })
    .await;
    assert!(
        refused.is_some(),
        "new connections still accepted while draining"
    );

    let r = inflight
        .await
        .unwrap()
        .expect("in-flight request completes during the drain");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "slow done");

    let status = gw.wait_exit(Duration::from_secs(8)).await;
    let status =
        status.unwrap_or_else(|| panic!("still running after the drain\n{}", gw.stderr_text()));
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_draining() {
    let origin = slow_origin(Duration::from_millis(2500)).await;
    let gw = Gateway::start(&config(&origin)).await;
    let _inflight = slow_request_in_flight(&gw, &origin).await;
    gw.signal("TERM");
    gw.wait_event("draining", Duration::from_secs(5), |_| true)
        .await;
    let r = client()
        .get(gw.admin_url("/readyz"))
        .send()
        .await
        .expect("admin listener answers while draining");
    assert_eq!(r.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_bounds_the_wait() {
    let origin = slow_origin(Duration::from_secs(30)).await;
    let mut gw =
        Gateway::start(&config(&origin).replace("drain_timeout_s: 10", "drain_timeout_s: 1")).await;
    let _inflight = slow_request_in_flight(&gw, &origin).await;
    gw.signal("TERM");
    let status = gw.wait_exit(Duration::from_secs(6)).await;
    let status = status.unwrap_or_else(|| panic!("did not exit after drain_timeout_s: 1"));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn version_and_help() {
    let out = Command::new(edgeway_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with("edgeway "), "--version: {v:?}");

    let out = Command::new(edgeway_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let h = String::from_utf8_lossy(&out.stdout);
    assert!(h.contains("serve") && h.contains("validate"), "--help: {h}");

    let out = Command::new(edgeway_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let h = String::from_utf8_lossy(&out.stdout);
    assert!(
        h.contains("--config") && h.contains("--no-watch"),
        "serve --help: {h}"
    );
}
