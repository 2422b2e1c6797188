//! Mutual TLS: `tls.client_auth` with `mode: require` refuses a client without a certificate
//! the truststore vouches for (none, an untrusted CA's, an expired one) over TCP and HTTP/3;
//! `mode: optional` lets one without a certificate through, to authorizers without one. The
//! certificate's fields reach a plugin authorizer (an identity source), the access log
//! (`$context.identity.clientCert.*`) and the origin (the forwarded header, which a client can
//! never set itself, on any listener). A replaced truststore file is taken without a restart;
//! a broken one is refused and the one before serves on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;

fn config(origin: &Origin) -> String {
    let plugins = plugins_yaml(&[(
        "auth",
        "token_authorizer",
        "role: authorizer, config: { tokens: { \"0a:01\": { principal: alice } } }",
    )]);
    format!(
        r#"{plugins}
listen:
  - addr: 127.0.0.1:0
    tls:
      certs:
        - {{ cert: $DIR/a.pem, key: $DIR/a.key }}
      client_auth: {{ ca: $DIR/clients.pem, forward_header: x-client-cert }}
    http3: true
  - addr: 127.0.0.1:0
    tls:
      certs:
        - {{ cert: $DIR/a.pem, key: $DIR/a.key }}
      client_auth: {{ ca: $DIR/clients.pem, mode: optional, forward_header: x-client-cert }}
  - addr: 127.0.0.1:0
admin: {{ addr: 127.0.0.1:0, token_env: EDGEWAY_ADMIN_TOKEN }}
origin: ORIGIN
access_log:
  format: '{{"path":"$context.path","subject":"$context.identity.clientCert.subjectDN","serial":"$context.identity.clientCert.serialNumber","not_after":"$context.identity.clientCert.validity.notAfter"}}'
apis:
  - name: t
    stages:
      prod: {{}}
    authorizers:
      cert: {{ plugin: auth, identity_source: [context.identity.clientCert.serialNumber], principal_header: x-user }}
    routes:
      - route: ANY /private/{{proxy+}}
        auth: cert
        integration: {{ http_proxy: "${{origin}}/{{proxy+}}" }}
      - route: ANY /p/{{proxy+}}
        integration: {{ http_proxy: "${{origin}}/{{proxy+}}" }}
"#
    )
    .replace("ORIGIN", &origin.url())
}

struct Setup {
    gw: Gateway,
    server_ca: TestCa,
    clients: TestCa,
}

async fn start(origin: &Origin) -> Setup {
    let server_ca = TestCa::new("edgeway server CA");
    let a = server_ca.issue(&["a.test"]);
    let clients = TestCa::new("edgeway client CA");
    let gw = Gateway::builder()
        .file("a.pem", a.cert_pem.clone())
        .file("a.key", a.key_pem.clone())
        .file("server-ca.pem", server_ca.cert_pem.clone())
        .file("clients.pem", clients.cert_pem.clone())
        .env("EDGEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .start(&config(origin))
        .await;
    Setup {
        gw,
        server_ca,
        clients,
    }
}

impl Setup {
    /// A TLS client to `listen[index]` as `a.test`, presenting `identity` if given; one new
    /// connection per request.
    fn client(&self, index: usize, identity: Option<&Leaf>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(self.server_ca.reqwest_cert())
            .resolve("a.test", self.gw.addr(&format!("listen[{index}]")))
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10));
        if let Some(leaf) = identity {
            b = b.identity(leaf.reqwest_identity());
        }
        b.build().unwrap()
    }

    /// Writes PEM files for `leaf` into the gateway's folder (for the HTTP/3 client).
    fn files(&self, name: &str, leaf: &Leaf) -> (std::path::PathBuf, std::path::PathBuf) {
        let cert = self.gw.dir.join(format!("{name}.pem"));
        let key = self.gw.dir.join(format!("{name}.key"));
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        (cert, key)
    }
}

/// A forwarded header's value, URL-decoded, line ends as in the test's PEM.
fn decoded(header: &str) -> String {
    let bytes = header.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap().replace("\r\n", "\n")
}

/// `require`: a trusted certificate gets through with its fields at the authorizer, in the
/// access log and in the forwarded header (the client's own value replaced); no certificate,
/// an untrusted CA's and an expired one are refused before anything reaches the origin; the
/// same over HTTP/3.
#[tokio::test]
async fn require_refuses_clients_without_a_trusted_certificate() {
    let origin = Origin::echo().await;
    let s = start(&origin).await;
    let alice = s.clients.issue_client("alice", &[0x0a, 0x01], false);
    let bob = s.clients.issue_client("bob", &[0x0b, 0x02], false);

    let r = s
        .client(0, Some(&alice))
        .get("https://a.test/prod/p/hello")
        .header("x-client-cert", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = origin.requests_to("/hello");
    assert_eq!(got.len(), 1);
    let forwarded = got[0].header_all("x-client-cert");
    assert_eq!(
        forwarded.len(),
        1,
        "the client's own value is gone: {forwarded:?}"
    );
    assert_eq!(decoded(&forwarded[0]), alice.cert_pem.replace("\r\n", "\n"));

    // The authorizer decides on the certificate's serial: alice's is known, bob's is not.
    let r = s
        .client(0, Some(&alice))
        .get("https://a.test/prod/private/me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(origin.requests_to("/me")[0].header("x-user"), Some("alice"));
    let r = s
        .client(0, Some(&bob))
        .get("https://a.test/prod/private/me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let log = s.gw.wait_access_log(3, Duration::from_secs(5)).await;
    let line = log.iter().find(|l| l["path"] == "/prod/p/hello").unwrap();
    assert!(
        line["subject"].as_str().unwrap().contains("CN=alice"),
        "{line}"
    );
    assert_eq!(line["serial"], "0a:01");
    assert!(
        line["not_after"].as_str().unwrap().ends_with(" GMT"),
        "{line}"
    );

    // Refused at the handshake: no certificate, another CA's, an expired one.
    let stranger = TestCa::new("someone else").issue_client("mallory", &[0x0a, 0x01], false);
    let expired = s.clients.issue_client("old", &[0x0a, 0x01], true);
    let before = origin.request_count();
    for (what, identity) in [
        ("no certificate", None),
        ("an untrusted CA's", Some(&stranger)),
        ("an expired one", Some(&expired)),
    ] {
        let r = s
            .client(0, identity)
            .get("https://a.test/prod/p/refused")
            .send()
            .await;
        assert!(r.is_err(), "{what}: {r:?}");
    }
    assert_eq!(origin.request_count(), before, "nothing reached the origin");

    // HTTP/3: the same truststore at the QUIC handshake.
    let ca = s.gw.dir.join("server-ca.pem");
    let (cert, key) = s.files("alice", &alice);
    let mut h3 = H3Client::new(s.gw.addr("listen[0]"), "a.test", &ca);
    h3.identity = Some((&cert, &key));
    let results = h3.send(&json!([{ "path": "/prod/p/over-h3" }])).await;
    assert_eq!(results[0]["status"], 200, "{results:?}");
    let got = origin.requests_to("/over-h3");
    assert_eq!(
        decoded(got[0].header("x-client-cert").unwrap()),
        alice.cert_pem.replace("\r\n", "\n")
    );
    let results = H3Client::new(s.gw.addr("listen[0]"), "a.test", &ca)
        .send(&json!([{ "path": "/prod/p/h3-refused" }]))
        .await;
    assert!(
        results[0].get("connect_error").is_some() || results[0]["status"].is_null(),
        "{results:?}"
    );
    assert_eq!(origin.count_to("/h3-refused"), 0);
}

/// `optional`: no certificate gets through (the forwarded header absent, whatever the client
/// sent; the authorizer without its identity: 401), a trusted one is forwarded, an untrusted
/// one is still refused. A listener without mutual TLS removes the header too.
#[tokio::test]
async fn optional_lets_clients_without_a_certificate_through() {
    let origin = Origin::echo().await;
    let s = start(&origin).await;
    let alice = s.clients.issue_client("alice", &[0x0a, 0x01], false);

    let r = s
        .client(1, None)
        .get("https://a.test/prod/p/anonymous")
        .header("x-client-cert", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        origin.requests_to("/anonymous")[0].header("x-client-cert"),
        None
    );
    let r = s
        .client(1, None)
        .get("https://a.test/prod/private/me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = s
        .client(1, Some(&alice))
        .get("https://a.test/prod/private/me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(origin.requests_to("/me")[0].header("x-user"), Some("alice"));
    assert!(
        origin.requests_to("/me")[0]
            .header("x-client-cert")
            .is_some()
    );

    let stranger = TestCa::new("someone else").issue_client("mallory", &[0x0a, 0x01], false);
    let r = s
        .client(1, Some(&stranger))
        .get("https://a.test/prod/p/stranger")
        .send()
        .await;
    assert!(r.is_err(), "{r:?}");

    let r = client()
        .get(format!("http://{}/prod/p/plain", s.gw.addr("listen[2]")))
        .header("x-client-cert", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        origin.requests_to("/plain")[0].header("x-client-cert"),
        None
    );
}

/// The truststore file replaced (a new CA) is taken within seconds: the old CA's clients are
/// refused and the new one's let in; a broken file is refused with a log line and the new CA
/// serves on.
#[tokio::test]
async fn a_replaced_truststore_is_taken_without_a_restart() {
    let origin = Origin::echo().await;
    let s = start(&origin).await;
    let old = s.clients.issue_client("alice", &[0x0a, 0x01], false);
    let next_ca = TestCa::new("next client CA");
    let new = next_ca.issue_client("alice", &[0x0a, 0x01], false);
    let get = |identity: Leaf| {
        let client = s.client(0, Some(&identity));
        async move { client.get("https://a.test/prod/p/x").send().await }
    };
    assert_eq!(get(old.clone()).await.unwrap().status(), 200);
    assert!(get(new.clone()).await.is_err());

    let path = s.gw.dir.join("clients.pem");
    let tmp = s.gw.dir.join("clients.pem.tmp");
    std::fs::write(&tmp, &next_ca.cert_pem).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    s.gw.wait_event("truststore reloaded", Duration::from_secs(5), |_| true)
        .await;
    assert!(
        get(old.clone()).await.is_err(),
        "the old CA is no longer trusted"
    );
    assert_eq!(get(new.clone()).await.unwrap().status(), 200);

    std::fs::write(&tmp, "not a certificate").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let refused =
        s.gw.wait_event(
            "truststore refused; the one before serves on",
            Duration::from_secs(5),
            |_| true,
        )
        .await;
    assert!(
        refused["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("clients.pem"),
        "{refused}"
    );
    assert_eq!(get(new).await.unwrap().status(), 200);
    let body: serde_json::Value =
        s.gw.admin(reqwest::Method::GET, "/admin/certificates", None)
            .await
            .1;
    assert!(body["truststores"][0]["last_refused"].is_string(), "{body}");
}
