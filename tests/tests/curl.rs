//! The gateway as users first meet it: through curl. HTTP/2 over TLS chosen by ALPN, h2c with
//! prior knowledge, a chunked upload over the body limit, and the quickstart and benchmark
//! configs shipped in the repository passing `edgeway validate`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

use edgeway_tests::*;

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--noproxy",
            "*",
        ])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test.sh installs it)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CONFIG: &str = r#"
listen:
  - addr: 127.0.0.1:0
  - addr: 127.0.0.1:0
    tls:
      certs:
        - { cert: $DIR/api.pem, key: $DIR/api.key }
origin: ORIGIN
limits:
  max_body_bytes: 65536
apis:
  - name: t
    stages:
      prod: {}
    routes:
      - route: GET /hello
        integration: { mock: { status: 200, headers: { content-type: text/plain }, body: hello } }
      - route: ANY /p/{proxy+}
        integration: { http_proxy: "${origin}/{proxy+}" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_over_tls_http2_and_h2c() {
    let ca = TestCa::new("edgeway curl CA");
    let leaf = ca.issue(&["api.test"]);
    let origin = Origin::echo().await;
    let gw = Gateway::builder()
        .file("api.pem", leaf.cert_pem.clone())
        .file("api.key", leaf.key_pem.clone())
        .file("ca.pem", ca.cert_pem.clone())
        .start(&CONFIG.replace("ORIGIN", &origin.url()))
        .await;
    let tls = gw.addr("listen[1]");
    let resolve = format!("api.test:{}:127.0.0.1", tls.port());
    let ca_file = gw.dir.join("ca.pem");
    let url = format!("https://api.test:{}/prod/p/items?x=1", tls.port());
    let (out, err) = curl(&[
        "--http2",
        "--include",
        "--cacert",
        ca_file.to_str().unwrap(),
        "--resolve",
        &resolve,
        &url,
    ]);
    assert!(out.starts_with("HTTP/2 200"), "{out}\n{err}");
    assert!(out.contains("x-request-id: "), "{out}");
    assert!(out.ends_with("origin GET /items?x=1"), "{out}");

    let (out, err) = curl(&[
        "--http2-prior-knowledge",
        "--include",
        &gw.url("/prod/hello"),
    ]);
    assert!(out.starts_with("HTTP/2 200"), "{out}\n{err}");
    assert!(out.ends_with("hello"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_chunked_upload_over_the_limit_gets_413() {
    let origin = Origin::echo().await;
    let gw = Gateway::start(&CONFIG.replace("ORIGIN", &origin.url()).replace(
        "  - addr: 127.0.0.1:0\n    tls:\n      certs:\n        - { cert: $DIR/api.pem, key: $DIR/api.key }\n",
        "",
    ))
    .await;
    let body = gw.dir.join("big.bin");
    std::fs::write(&body, vec![b'x'; 200 * 1024]).unwrap();
    let (out, err) = curl(&[
        "--include",
        "--header",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", body.display()),
        &gw.url("/prod/p/upload"),
    ]);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}\n{err}");
    assert!(
        out.contains("x-edgeway-error-type: REQUEST_TOO_LARGE"),
        "{out}"
    );
    assert!(out.ends_with(r#"{"message":"Request Too Long"}"#), "{out}");
    assert_eq!(
        origin.complete_count(),
        0,
        "the origin never saw a complete body"
    );
}

#[test]
fn shipped_configs_validate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for config in [
        "examples/quickstart/edgeway.yaml",
        "bench/edgeway/proxy.yaml",
        "bench/edgeway/authorizer.yaml",
        "bench/edgeway/authorizer-cached.yaml",
        "bench/edgeway/cache.yaml",
        "bench/edgeway/mapped.yaml",
        "bench/edgeway/canary.yaml",
        "bench/edgeway/domain.yaml",
        "bench/edgeway/function.yaml",
        "bench/edgeway/function-proxy.yaml",
        "examples/soap/edgeway.yaml",
        "examples/aws/edgeway.yaml",
    ] {
        let out = Command::new(edgeway_bin())
            .args(["validate", "--config"])
            .arg(root.join(config))
            // examples/aws signs with the standard variables' keys: validation checks that
            // they are set.
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "example-secret")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{config}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
