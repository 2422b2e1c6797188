//! Reload: SIGHUP (with --no-watch), file watching, in-flight requests finishing on the old
//! config, and acceptance 2: 20 alternating valid/invalid changes under load with zero failed
//! requests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgeway_tests::*;

const WAIT: Duration = Duration::from_secs(10);

fn valid(origin: &Origin, body: &str) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
apis:
  - name: r
    stages:
      prod: {}
    routes:
      - route: GET /v
        integration: { mock: { status: 200, body: "BODY" } }
      - route: ANY /p/{proxy+}
        integration: { http_proxy: "${origin}/{proxy+}" }
"#
    .replace("ORIGIN", &origin.url())
    .replace("BODY", body)
}

/// Invalid configs of several kinds; `n` picks one.
fn invalid(origin: &Origin, n: usize) -> String {
    let v = valid(origin, "never-served");
    match n % 5 {
        0 => v.replace("apis:", "apis: [\n  oops"), // YAML syntax error
        1 => format!("{v}bogus_top_level_key: 1\n"), // unknown key
        2 => v.replace("GET /v", "FETCH /v"),       // bad method
        3 => v.replace("status: 200", "status: 999"), // mock status out of range
        _ => v.replace("${origin}/{proxy+}", "${origin}/${stageVariables.nope}"), // undefined var
    }
}

async fn body_of(url: &str) -> String {
    let r = client().get(url).send().await.expect("request");
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Wait until GET `url` answers `want`; panics after [`WAIT`].
async fn wait_body(gw: &Gateway, url: &str, want: &str) {
    let ok = eventually(WAIT, || async {
        let r = client().get(url).send().await.ok()?;
        (r.text().await.ok()? == want).then_some(())
    })
    .await;
    assert!(
        ok.is_some(),
        "{url} never answered {want:?}\nstderr:\n{}",
        gw.stderr_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_with_no_watch() {
    let origin = Origin::echo().await;
    let gw = Gateway::builder()
        .no_watch()
        .start(&valid(&origin, "one"))
        .await;
    gw.wait_event("config reloaded", WAIT, |e| e["fields"]["generation"] == 1)
        .await;
    let url = gw.url("/prod/v");
    assert_eq!(body_of(&url).await, "one");

    gw.write_config(&valid(&origin, "two"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        body_of(&url).await,
        "one",
        "--no-watch: a file change alone does not reload"
    );

    gw.signal("HUP");
    let ev = gw
        .wait_event("config reloaded", WAIT, |e| e["fields"]["generation"] == 2)
        .await;
    assert_eq!(ev["level"], "INFO");
    assert_eq!(body_of(&url).await, "two");

    // an invalid config is refused, logged, and the old one keeps serving
    gw.write_config(&invalid(&origin, 1));
    gw.signal("HUP");
    let ev = gw.wait_event("config refused", WAIT, |_| true).await;
    assert_eq!(ev["level"], "ERROR");
    let err = ev["fields"]["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("bogus_top_level_key"),
        "refusal names the problem: {ev}"
    );
    assert_eq!(body_of(&url).await, "two");
    assert_eq!(gw.generation(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_change_reloads_when_watching() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&valid(&origin, "one")).await;
    let url = gw.url("/prod/v");
    assert_eq!(body_of(&url).await, "one");

    // in-place write
    gw.write_config(&valid(&origin, "two"));
    wait_body(&gw, &url, "two").await;
    // The log line can reach the test after the new config has served a request.
    gw.wait_event("config reloaded", WAIT, |e| e["fields"]["generation"] == 2)
        .await;

    // invalid: refused, previous keeps serving
    gw.write_config(&invalid(&origin, 2));
    gw.wait_event("config refused", WAIT, |_| true).await;
    assert_eq!(body_of(&url).await, "two");

    // atomic replace (write + rename, as editors and deploy tools do)
    gw.replace_config(&valid(&origin, "three"));
    wait_body(&gw, &url, "three").await;
    gw.replace_config(&valid(&origin, "four"));
    wait_body(&gw, &url, "four").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_finishes_on_the_config_it_started_with() {
    let origin = Origin::start_async(|_r: Recorded| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        http::Response::builder().body(full("slow done")).unwrap()
    })
    .await;
    let gw = Gateway::builder()
        .no_watch()
        .start(&valid(&origin, "one"))
        .await;
    let url = gw.url("/prod/p/slow");
    let inflight = tokio::spawn(async move { client().get(url).send().await });
    let started = eventually(WAIT, || async {
        (origin.request_count() == 1).then_some(())
    })
    .await;
    assert!(started.is_some(), "request never reached the origin");

    // the new config has no proxy route any more
    gw.write_config(
        &valid(&origin, "two").replace("      - route: ANY /p/{proxy+}\n        integration: { http_proxy: \"${origin}/{proxy+}\" }\n", ""),
    );
    gw.signal("HUP");
    gw.wait_event("config reloaded", WAIT, |e| e["fields"]["generation"] == 2)
        .await;
    assert_eq!(body_of(&gw.url("/prod/v")).await, "two");

    let r = inflight
        .await
        .unwrap()
        .expect("in-flight request survives the reload");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "slow done");
    let r = client().get(gw.url("/prod/p/slow")).send().await.unwrap();
    assert_eq!(r.status(), 404, "new requests use the new config");
}

/// Acceptance 2: requests keep flowing while the config changes 20 times, valid and invalid
/// alternately. Zero requests fail; each valid change is seen; each invalid one is refused and
/// the previous config keeps serving.
async fn reload_under_load(signal: bool) {
    let origin = Origin::echo().await;
    let builder = if signal {
        Gateway::builder().no_watch()
    } else {
        Gateway::builder()
    };
    let gw = builder.start(&valid(&origin, "v0")).await;
    gw.wait_event("config reloaded", WAIT, |e| e["fields"]["generation"] == 1)
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(HashSet::<String>::new()));
    let mut clients = Vec::new();
    for t in 0..4 {
        let (stop, total, failures, seen) =
            (stop.clone(), total.clone(), failures.clone(), seen.clone());
        let mock_url = gw.url("/prod/v");
        let proxy_url = gw.url(&format!("/prod/p/client{t}"));
        clients.push(tokio::spawn(async move {
            let c = client();
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) && i < 200_000 && Instant::now() < deadline {
                i += 1;
                let mock = i & 1 == 0;
                let url = if mock { &mock_url } else { &proxy_url };
                match c.get(url).send().await {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(body) if mock => {
                            seen.lock().unwrap().insert(body);
                        }
                        Ok(_) => {}
                        Err(e) => failures.lock().unwrap().push(format!("{url}: body: {e}")),
                    },
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{url}: status {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("{url}: {e:?}")),
                }
                total.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut current = "v0".to_string();
    for step in 1..=20usize {
        let gen_before = gw.generation();
        let refused_before = gw.events("config refused").len();
        if step % 2 == 1 {
            current = format!("v{}", step.div_ceil(2));
            let cfg = valid(&origin, &current);
            if signal {
                gw.write_config(&cfg);
                gw.signal("HUP");
            } else {
                gw.replace_config(&cfg);
            }
            let ok = eventually(WAIT, || async {
                (gw.generation() > gen_before).then_some(())
            })
            .await;
            assert!(
                ok.is_some(),
                "step {step}: valid config not reloaded\n{}",
                gw.stderr_text()
            );
            // the clients see it
            let want = current.clone();
            let ok = eventually(WAIT, || async {
                seen.lock().unwrap().contains(&want).then_some(())
            })
            .await;
            assert!(ok.is_some(), "step {step}: clients never saw {current:?}");
        } else {
            let cfg = invalid(&origin, step / 2);
            if signal {
                gw.write_config(&cfg);
                gw.signal("HUP");
            } else {
                gw.replace_config(&cfg);
            }
            gw.wait_event_count("config refused", refused_before + 1, WAIT)
                .await;
            assert_eq!(
                gw.generation(),
                gen_before,
                "step {step}: invalid config was applied"
            );
            assert_eq!(body_of(&gw.url("/prod/v")).await, current, "step {step}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    let total = total.load(Ordering::SeqCst);
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed during reloads, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total >= 100, "only {total} requests were made");
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.contains("never-served"), "an invalid config served");
    for k in 0..=10 {
        assert!(
            seen.contains(&format!("v{k}")),
            "v{k} never seen; seen {seen:?}"
        );
    }
    assert!(gw.events("config refused").len() >= 10);
    for ev in gw.events("config refused") {
        assert_eq!(ev["level"], "ERROR", "{ev}");
        assert!(
            ev["fields"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{ev}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_with_sighup() {
    reload_under_load(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_with_file_watch() {
    reload_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_listen_list_applies_at_restart_with_a_warning() {
    let origin = Origin::echo().await;
    let gw = Gateway::builder()
        .no_watch()
        .start(&valid(&origin, "one"))
        .await;
    let before = gw.addr("listen[0]");
    let warnings_before = gw
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .count();

    // a second listener appears; the rest of the change applies now
    let cfg = valid(&origin, "two").replace(
        "listen:\n  - addr: 127.0.0.1:0\n",
        "listen:\n  - addr: 127.0.0.1:0\n  - addr: 127.0.0.1:0\n",
    );
    gw.write_config(&cfg);
    gw.signal("HUP");
    gw.wait_event("config reloaded", WAIT, |e| e["fields"]["generation"] == 2)
        .await;
    assert_eq!(body_of(&gw.url("/prod/v")).await, "two");
    assert_eq!(gw.addr("listen[0]"), before);
    assert_eq!(
        gw.events("listening").len(),
        1,
        "no new listener before a restart"
    );
    let warnings = gw
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .count();
    assert!(
        warnings > warnings_before,
        "changed listen list is logged as a warning\n{}",
        gw.stderr_text()
    );
}
