//! TLS: a listener with two certificates chosen by SNI, over HTTP/1.1 and HTTP/2 (ALPN);
//! h2c with prior knowledge on the plain listener; https origins verified against
//! `upstream.ca_file`, refused without it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use edgeway_tests::*;

fn config(origin: &Origin) -> String {
    r#"
listen:
  - addr: 127.0.0.1:0
  - addr: 127.0.0.1:0
    tls:
      certs:
        - { cert: $DIR/a.pem, key: $DIR/a.key }
        - { cert: $DIR/b.pem, key: $DIR/b.key }
origin: ORIGIN
apis:
  - name: t
    stages:
      prod: {}
    routes:
      - route: GET /hello
        integration: { mock: { status: 200, body: hello } }
      - route: ANY /p/{proxy+}
        integration: { http_proxy: "${origin}/{proxy+}" }
"#
    .replace("ORIGIN", &origin.url())
}

struct Setup {
    ca: TestCa,
    a: Leaf,
    b: Leaf,
    origin: Origin,
    gw: Gateway,
}

async fn setup() -> Setup {
    let ca = TestCa::new("edgeway test CA");
    let a = ca.issue(&["a.test"]);
    let b = ca.issue(&["b.test", "www.b.test"]);
    let origin = Origin::echo().await;
    let gw = Gateway::builder()
        .file("a.pem", a.cert_pem.clone())
        .file("a.key", a.key_pem.clone())
        .file("b.pem", b.cert_pem.clone())
        .file("b.key", b.key_pem.clone())
        .start(&config(&origin))
        .await;
    Setup {
        ca,
        a,
        b,
        origin,
        gw,
    }
}

fn tls_client(s: &Setup, http1_only: bool) -> reqwest::Client {
    let tls = s.gw.addr("listen[1]");
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(s.ca.reqwest_cert())
        .tls_info(true)
        .resolve("a.test", tls)
        .resolve("b.test", tls)
        .resolve("www.b.test", tls)
        .timeout(std::time::Duration::from_secs(10));
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("tls info with a peer certificate")
        .to_vec()
}

async fn sni_case(http1_only: bool, want: http::Version) {
    let s = setup().await;
    let port = s.gw.addr("listen[1]").port();
    let c = tls_client(&s, http1_only);
    for (name, leaf) in [("a.test", &s.a), ("b.test", &s.b), ("www.b.test", &s.b)] {
        let r = c
            .get(format!("https://{name}:{port}/prod/hello"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("https://{name}: {e:?}"));
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.version(), want, "{name}: negotiated version");
        assert_eq!(
            peer_cert(&r),
            leaf.cert_der,
            "{name}: certificate chosen by SNI"
        );
        assert_eq!(r.text().await.unwrap(), "hello");

        let r = c
            .post(format!("https://{name}:{port}/prod/p/x?q=1"))
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name} proxied");
        assert_eq!(r.version(), want);
        assert_eq!(r.text().await.unwrap(), "origin POST /x?q=1");
    }
    let reqs = s.origin.requests();
    assert_eq!(reqs.len(), 3);
    for (rec, name) in reqs.iter().zip(["a.test", "b.test", "www.b.test"]) {
        assert_eq!(rec.header("x-forwarded-proto"), Some("https"));
        assert_eq!(
            rec.header("x-forwarded-host"),
            Some(format!("{name}:{port}").as_str())
        );
        assert_eq!(rec.body, "payload");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sni_selects_certificate_over_http1() {
    sni_case(true, http::Version::HTTP_11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sni_selects_certificate_over_http2() {
    sni_case(false, http::Version::HTTP_2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_on_plain_listener() {
    let s = setup().await;
    let c = h2c_client();
    let r = c.get(s.gw.url("/prod/hello")).send().await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello");

    let r = c
        .put(s.gw.url("/prod/p/h2c?z=9"))
        .body("over h2c")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert!(is_uuid(r.headers()["x-request-id"].to_str().unwrap()));
    assert_eq!(r.text().await.unwrap(), "origin PUT /h2c?z=9");
    let rec = s.origin.single_request();
    assert_eq!(rec.body, "over h2c");
    assert_eq!(rec.header("x-forwarded-proto"), Some("http"));

    // and the same listener still speaks HTTP/1.1
    let r = client().get(s.gw.url("/prod/hello")).send().await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_11);
    assert_eq!(r.status(), 200);
}

fn https_origin_config(origin: &Origin, with_ca: bool) -> String {
    let upstream = if with_ca {
        "upstream:\n  ca_file: $DIR/ca.pem\n"
    } else {
        ""
    };
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {}
{upstream}apis:
  - name: t
    stages:
      prod: {{}}
    routes:
      - route: ANY /{{proxy+}}
        integration: {{ http_proxy: "${{origin}}/secure/{{proxy+}}" }}
"#,
        origin.url()
    )
}

async fn https_origin() -> (TestCa, Origin) {
    let ca = TestCa::new("origin CA");
    let leaf = ca.issue(&["127.0.0.1", "localhost"]);
    let origin = Origin::start_tls(leaf.server_config(), |r: &Recorded| {
        http::Response::builder()
            .body(full(format!("secure {} {}", r.method, r.path_and_query())))
            .unwrap()
    })
    .await;
    (ca, origin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_origin_verified_with_configured_ca() {
    let (ca, origin) = https_origin().await;
    assert!(origin.url().starts_with("https://127.0.0.1:"));
    let gw = Gateway::builder()
        .file("ca.pem", ca.cert_pem.clone())
        .start(&https_origin_config(&origin, true))
        .await;
    let r = client().get(gw.url("/prod/x/y?z=1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "secure GET /secure/x/y?z=1");
    assert_eq!(origin.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_origin_with_unknown_ca_is_502() {
    let (_ca, origin) = https_origin().await;
    let gw = Gateway::start(&https_origin_config(&origin, false)).await;
    let r = client().get(gw.url("/prod/x")).send().await.unwrap();
    assert_gateway_error(
        r,
        502,
        "Network error communicating with endpoint",
        "INTEGRATION_FAILURE",
    )
    .await;
    assert_eq!(
        origin.request_count(),
        0,
        "no request over an unverified connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificates_are_reloaded() {
    let s = setup().await;
    let port = s.gw.addr("listen[1]").port();
    let url = format!("https://a.test:{port}/prod/hello");
    let r = tls_client(&s, true).get(&url).send().await.unwrap();
    assert_eq!(peer_cert(&r), s.a.cert_der);

    // a renewed certificate for a.test in new files; the config points at them
    let renewed = s.ca.issue(&["a.test"]);
    std::fs::write(s.gw.dir.join("a2.pem"), &renewed.cert_pem).unwrap();
    std::fs::write(s.gw.dir.join("a2.key"), &renewed.key_pem).unwrap();
    let cfg = config(&s.origin)
        .replace("$DIR/a.pem", "$DIR/a2.pem")
        .replace("$DIR/a.key", "$DIR/a2.key");
    s.gw.write_config(&cfg);
    s.gw.signal("HUP");
    s.gw.wait_event("config reloaded", std::time::Duration::from_secs(10), |e| {
        e["fields"]["generation"] == 2
    })
    .await;

    // a new client (new connection) gets the renewed certificate; b.test is unchanged
    let c = tls_client(&s, true);
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        peer_cert(&r),
        renewed.cert_der,
        "renewed certificate served after reload"
    );
    let r = c
        .get(format!("https://b.test:{port}/prod/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(peer_cert(&r), s.b.cert_der);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_certificate_is_the_default_without_a_matching_sni() {
    let s = setup().await;
    let tls = s.gw.addr("listen[1]");
    // no verification here: the point is which certificate is presented
    let c = reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .resolve("c.test", tls)
        .http1_only()
        .build()
        .unwrap();
    // an unknown name, and an IP address (no SNI at all)
    for url in [
        format!("https://c.test:{}/prod/hello", tls.port()),
        format!("https://{tls}/prod/hello"),
    ] {
        let r = c
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(
            peer_cert(&r),
            s.a.cert_der,
            "{url}: default (first) certificate"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tls_handshakes_and_connections_are_counted() {
    let origin = Origin::echo().await;
    let ca = TestCa::new("edgeway test CA");
    let (a, b) = (ca.issue(&["a.test"]), ca.issue(&["b.test"]));
    let gw = Gateway::builder()
        .file("a.pem", a.cert_pem.clone())
        .file("a.key", a.key_pem.clone())
        .file("b.pem", b.cert_pem.clone())
        .file("b.key", b.key_pem.clone())
        .start(&format!(
            "{}admin: {{ addr: 127.0.0.1:0 }}\n",
            config(&origin)
        ))
        .await;
    let tls = gw.addr("listen[1]");
    // Plain HTTP to the TLS listener: the handshake fails and the connection is closed.
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(tls).await.unwrap();
        stream
            .write_all(b"GET /prod/hello HTTP/1.1\r\nhost: a.test\r\n\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut rest),
        )
        .await;
        assert!(read.is_ok(), "the listener closes the connection");
    }
    let metrics = format!("http://{}/metrics", gw.addr("admin"));
    let scraped = eventually(std::time::Duration::from_secs(10), || async {
        let text = client()
            .get(&metrics)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains(&format!(
            "edgeway_connections_open{{listener=\"{tls}\"}} 0\n"
        ))
        .then_some(text)
    })
    .await
    .expect("the closed connection is no longer open");
    for line in [
        format!("edgeway_tls_handshake_failures_total{{listener=\"{tls}\",reason=\"failed\"}} 1"),
        format!("edgeway_tls_handshake_failures_total{{listener=\"{tls}\",reason=\"timeout\"}} 0"),
        format!("edgeway_connections_accepted_total{{listener=\"{tls}\"}} 1"),
    ] {
        assert!(scraped.contains(&line), "{line} in\n{scraped}");
    }
}
