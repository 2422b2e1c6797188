//! Hot swap: 50 swaps between two versions under continuous load with zero failed requests,
//! a broken component and one of the wrong world refused mid-way while the served version
//! stays, and a new `.wasm` dropped into the plugin folder picked up without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgeway_tests::*;

const WAIT: Duration = Duration::from_secs(30);

async fn put(gw: &Gateway, component: &[u8]) -> reqwest::Response {
    client()
        .put(gw.admin_url("/admin/plugins/version"))
        .bearer_auth(ADMIN_TOKEN)
        .body(component.to_vec())
        .send()
        .await
        .unwrap()
}

/// Uploads `component` and expects 422 with a message containing `reason`.
async fn assert_refused(gw: &Gateway, component: &[u8], reason: &str) {
    let r = put(gw, component).await;
    assert_eq!(r.status(), 422);
    let body = json_body(r).await;
    assert!(body["message"].as_str().unwrap().contains(reason), "{body}");
}

async fn served(gw: &Gateway) -> String {
    let r = client().get(gw.url("/prod/v")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn write_version(dir: &std::path::Path, component: &str) {
    let bytes = std::fs::read(plugin_file(component)).unwrap();
    let temporary = dir.join("version.wasm.part");
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(temporary, dir.join("version.wasm")).unwrap();
}

#[tokio::test]
async fn fifty_swaps_under_load_lose_no_request_and_refuse_broken_components() {
    let v1 = std::fs::read(plugin_file("test_version_v1")).unwrap();
    let v2 = std::fs::read(plugin_file("test_version_v2")).unwrap();
    let gw = start_with(&v1).await;
    assert_eq!(served(&gw).await, "version=1");

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, failures, total, seen) =
            (stop.clone(), failures.clone(), total.clone(), seen.clone());
        let url = gw.url("/prod/v");
        clients.push(tokio::spawn(async move {
            let client = client();
            // Bounded: stops when told, or after 200 000 requests.
            for _ in 0..200_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                total.fetch_add(1, Ordering::Relaxed);
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let text = r.text().await.unwrap_or_default();
                        seen.lock().unwrap().insert(text);
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    for swap in 0..50 {
        let (component, want) = if swap % 2 == 0 {
            (&v2, "version=2")
        } else {
            (&v1, "version=1")
        };
        let r = put(&gw, component).await;
        assert_eq!(r.status(), 200, "swap {swap}: {}", r.text().await.unwrap());
        assert_eq!(served(&gw).await, want, "swap {swap} is served at once");
        if swap == 25 {
            // Not a component at all, then a component of the wrong world.
            assert_refused(&gw, b"\0asm\x01\0\0\0garbage", "not a valid component").await;
            let wrong = std::fs::read(plugin_file("token_authorizer")).unwrap();
            assert_refused(&gw, &wrong, "does not export the `handler` world").await;
            assert_eq!(
                served(&gw).await,
                want,
                "a refused component leaves the version serving"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "failed requests during swaps"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        HashSet::from(["version=1".to_owned(), "version=2".to_owned()])
    );
    assert!(
        total.load(Ordering::Relaxed) > 100,
        "the load ran throughout"
    );
    // The last swap (49, odd) made version 1 current; it was also written to the file.
    assert_eq!(served(&gw).await, "version=1");
    assert_eq!(std::fs::read(gw.dir.join("version.wasm")).unwrap(), v1);
    assert_eq!(gw.events("plugin refused").len(), 2);
    // Each upload is also written to the watched file; the watcher sees it is current already.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gw.events("plugin swapped").len(), 50, "one swap per upload");
}

async fn start_with(component: &[u8]) -> Gateway {
    let yaml = format!(
        r#"
listen:
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: ADMIN_TOKEN }}
plugins:
  dir: $DIR
  cache_dir: {cache}
  load:
    - {{ name: version, role: handler, file: version.wasm }}
apis:
  - name: hs
    stages: {{ prod: {{}} }}
    routes:
      - {{ route: GET /v, integration: {{ function: version }} }}
"#,
        cache = plugin_cache_dir().display()
    );
    Gateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .file("version.wasm", component.to_vec())
        .start(&yaml)
        .await
}

#[tokio::test]
async fn a_new_component_in_the_plugin_folder_is_swapped_in_and_a_broken_one_refused() {
    let v1 = std::fs::read(plugin_file("test_version_v1")).unwrap();
    let gw = start_with(&v1).await;
    assert_eq!(served(&gw).await, "version=1");

    write_version(&gw.dir, "test_version_v2");
    gw.wait_event("plugin swapped", WAIT, |e| {
        e["fields"]["plugin"] == "version"
    })
    .await;
    assert_eq!(served(&gw).await, "version=2");

    std::fs::write(gw.dir.join("version.wasm.part"), b"not wasm").unwrap();
    std::fs::rename(
        gw.dir.join("version.wasm.part"),
        gw.dir.join("version.wasm"),
    )
    .unwrap();
    let refused = gw
        .wait_event("plugin refused", WAIT, |e| {
            e["fields"]["plugin"] == "version"
        })
        .await;
    assert!(
        refused["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("not a valid component")
    );
    assert_eq!(
        served(&gw).await,
        "version=2",
        "the old version keeps serving"
    );
    let listed = admin_plugins(&gw.admin_url("")).await;
    let hash = listed["version"]["version"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64, "the version is the component's SHA-256");
}
