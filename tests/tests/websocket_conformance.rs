//! Conformance: the Autobahn test suite's fuzzing client (`wstest -m fuzzingclient`,
//! installed into `target/autobahn-venv` by `scripts/test-tools.sh`) against a WebSocket API
//! whose `$default` route echoes each message (`mock: { echo: true }`): framing,
//! fragmentation, UTF-8 validation, close handling, ping/pong, large messages. Every case must
//! be OK, NON-STRICT or INFORMATIONAL. Compression (cases 12 and 13, permessage-deflate) is
//! not offered, so those cases are not run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use edgeway_tests::*;
use serde_json::Value;

/// Large enough for case 9's 16 MiB messages in one frame.
const ECHO: &str = r#"
listen:
  - addr: 127.0.0.1:0
limits: { max_body_bytes: 20000000 }
apis:
  - name: echo
    protocol: websocket
    route_selection: '\$default'
    websocket: { binary: true, max_message_bytes: 17000000, max_frame_bytes: 17000000 }
    stages: { echo: {} }
    routes:
      - { route: $default, response: two-way, integration: { mock: { echo: true } } }
"#;

#[tokio::test]
async fn the_autobahn_fuzzing_client_finds_every_case_ok() {
    let wstest = workspace().join("target/autobahn-venv/bin/wstest");
    assert!(
        wstest.is_file(),
        "{} is missing: run scripts/test-tools.sh (scripts/test.sh does)",
        wstest.display()
    );
    let gw = Gateway::start(ECHO).await;
    let dir = unique_temp_dir("autobahn");
    let spec = serde_json::json!({
        "outdir": "./reports",
        "servers": [{ "agent": "edgeway", "url": format!("ws://{}/echo", gw.addr("listen[0]")) }],
        "cases": ["*"],
        "exclude-cases": ["12.*", "13.*"],
        "exclude-agent-cases": {},
    });
    std::fs::write(dir.join("spec.json"), spec.to_string()).unwrap();
    let dir_for_run = dir.clone();
    let status = tokio::task::spawn_blocking(move || {
        Command::new(wstest)
            .args(["-m", "fuzzingclient", "-s", "spec.json"])
            .current_dir(&dir_for_run)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(dir_for_run.join("wstest.log")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir_for_run.join("wstest.err")).unwrap(),
            ))
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        status.success(),
        "wstest failed: {}",
        std::fs::read_to_string(dir.join("wstest.err")).unwrap_or_default()
    );
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reports/index.json")).unwrap())
            .unwrap();
    let cases = index["edgeway"].as_object().expect("results for edgeway");
    let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    for (case, result) in cases {
        let behavior = result["behavior"].as_str().unwrap_or("?");
        *verdicts.entry(behavior).or_default() += 1;
        let close = result["behaviorClose"].as_str().unwrap_or("?");
        if !matches!(behavior, "OK" | "NON-STRICT" | "INFORMATIONAL")
            || !matches!(close, "OK" | "INFORMATIONAL")
        {
            failed.push(format!("{case}: {behavior} (close {close})"));
        }
    }
    eprintln!("autobahn: {} cases, {verdicts:?}", cases.len());
    assert!(cases.len() > 290, "only {} cases ran", cases.len());
    assert!(
        failed.is_empty(),
        "cases that failed:\n{}",
        failed.join("\n")
    );
}
