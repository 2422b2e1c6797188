//! Certificate rotation under load: the served pair is replaced 10 times, valid and broken in
//! turn, the way Kubernetes updates a mounted secret (a symlinked folder flipped in one
//! rename), while 4 clients make a new TLS connection for every request. No request fails;
//! after each valid pair, new handshakes get the new certificate; each broken pair is refused
//! with a log line and the one before serves on. `/admin/certificates` and the metrics say so.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgeway_tests::*;

const CONFIG: &str = r#"
listen:
  - addr: 127.0.0.1:0
    tls:
      certs:
        - { cert: $DIR/live/tls.crt, key: $DIR/live/tls.key }
admin: { addr: 127.0.0.1:0, token_env: EDGEWAY_ADMIN_TOKEN }
origin: http://127.0.0.1:9
apis:
  - name: t
    stages:
      prod: {}
    routes:
      - route: GET /hello
        integration: { mock: { status: 200, body: hello } }
"#;

fn client(ca: &TestCa, addr: std::net::SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.reqwest_cert())
        .resolve("a.test", addr)
        .pool_max_idle_per_host(0)
        .tls_info(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The certificate a new full handshake gets (a new client: no session to resume).
async fn served(ca: &TestCa, addr: std::net::SocketAddr) -> Vec<u8> {
    let r = client(ca, addr)
        .get("https://a.test/prod/hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("peer certificate")
        .to_vec()
}

/// Writes `cert` and `key` into `dir/vN` and flips `dir/live` to it in one rename.
fn flip(dir: &std::path::Path, n: usize, cert: &str, key: &str) {
    let version = dir.join(format!("v{n}"));
    std::fs::create_dir_all(&version).unwrap();
    std::fs::write(version.join("tls.crt"), cert).unwrap();
    std::fs::write(version.join("tls.key"), key).unwrap();
    let tmp = dir.join("live.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("v{n}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("live")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_failed_request() {
    let ca = TestCa::new("edgeway test CA");
    let first = ca.issue(&["a.test"]);
    let gw = Gateway::builder()
        .file("v0/tls.crt", first.cert_pem.clone())
        .file("v0/tls.key", first.key_pem.clone())
        .symlink("live", "v0")
        .env("EDGEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .start(CONFIG)
        .await;
    let addr = gw.addr("listen[0]");
    assert_eq!(served(&ca, addr).await, first.cert_der);

    // 4 clients, a new connection per request, until the rotations are done.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let client = client(&ca, addr);
        load.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match client.get("https://a.test/prod/hello").send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        });
    }

    let mut current = first.clone();
    let mut refused = 0;
    for step in 1..=10 {
        if step % 2 == 1 {
            let next = ca.issue(&["a.test"]);
            flip(&gw.dir, step, &next.cert_pem, &next.key_pem);
            // New handshakes get the new certificate within seconds.
            let deadline = Instant::now() + Duration::from_secs(10);
            while served(&ca, addr).await != next.cert_der {
                assert!(
                    Instant::now() < deadline,
                    "step {step}: the new certificate is served"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            current = next;
        } else {
            // Broken in turn: a key that is not the certificate's, then a cut-off certificate.
            let other = ca.issue(&["a.test"]);
            let (cert, key) = if step % 4 == 2 {
                (other.cert_pem.clone(), current.key_pem.clone())
            } else {
                (
                    other.cert_pem[..other.cert_pem.len() / 2].to_owned(),
                    other.key_pem.clone(),
                )
            };
            flip(&gw.dir, step, &cert, &key);
            refused += 1;
            gw.wait_event_count(
                "certificate refused; the one before serves on",
                refused,
                Duration::from_secs(10),
            )
            .await;
            assert_eq!(
                served(&ca, addr).await,
                current.cert_der,
                "step {step}: the old pair serves on"
            );
        }
    }
    // A moment more of load on the last pair, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("requests during the rotations: {ok} answered, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 100, "the clients kept going: {ok}");

    let refusals = gw.events("certificate refused; the one before serves on");
    assert_eq!(refusals.len(), 5, "{refusals:#?}");
    assert!(refusals.iter().all(|e| {
        e["fields"]["cert"]
            .as_str()
            .unwrap()
            .ends_with("live/tls.crt")
    }));
    assert_eq!(gw.events("certificate reloaded").len(), 5);

    let (status, body) = gw
        .admin(reqwest::Method::GET, "/admin/certificates", None)
        .await;
    assert_eq!(status, 200);
    let cert = &body["certificates"][0];
    assert_eq!(cert["names"], json!(["a.test"]));
    assert!(
        cert["last_refused"].is_string(),
        "the last replacement was broken: {cert}"
    );
    let days = cert["days_to_expiry"].as_i64().unwrap();
    assert!(days > 300, "{cert}");
    let metrics = client_plain_metrics(&gw).await;
    assert!(
        metrics.contains("edgeway_certificate_reloads_total{result=\"ok\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgeway_certificate_reloads_total{result=\"refused\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgeway_certificate_expiry_days{cert="),
        "{metrics}"
    );
}

async fn client_plain_metrics(gw: &Gateway) -> String {
    edgeway_tests::client()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
