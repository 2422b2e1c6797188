//! Traces: W3C trace context continued or started, spans exported over OTLP/HTTP to a small
//! collector in this test that decodes the protobuf, and the origin's `traceparent` naming the
//! integration's span.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use edgeway_tests::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// An OTLP/HTTP collector on loopback: every span it is sent, with its resource's
/// `service.name`.
struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    posts: Arc<Mutex<Vec<(String, String)>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
        let posts: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (spans2, posts2) = (spans.clone(), posts.clone());
        tokio::spawn(async move {
            // Bounded: a test sends a handful of batches.
            for _ in 0..1000 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (spans, posts) = (spans2.clone(), posts2.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                        let (spans, posts) = (spans.clone(), posts.clone());
                        async move {
                            let path = req.uri().path().to_owned();
                            let content_type = req
                                .headers()
                                .get("content-type")
                                .map(|v| v.to_str().unwrap().to_owned())
                                .unwrap_or_default();
                            posts.lock().unwrap().push((path, content_type));
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let export = ExportTraceServiceRequest::decode(body).unwrap();
                            for resource in export.resource_spans {
                                let service = resource
                                    .resource
                                    .iter()
                                    .flat_map(|r| &r.attributes)
                                    .find(|a| a.key == "service.name")
                                    .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                                        AnyValue::StringValue(s) => Some(s.clone()),
                                        _ => None,
                                    })
                                    .unwrap_or_default();
                                for scope in resource.scope_spans {
                                    for span in scope.spans {
                                        spans.lock().unwrap().push((service.clone(), span));
                                    }
                                }
                            }
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::new(),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, spans, posts }
    }

    /// The spans of `trace_id` (hex), once `n` have arrived.
    async fn trace(&self, trace_id: &str, n: usize) -> Vec<Span> {
        eventually(Duration::from_secs(10), || async {
            let spans: Vec<Span> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, s)| hex(&s.trace_id) == trace_id)
                .map(|(_, s)| s.clone())
                .collect();
            (spans.len() >= n).then_some(spans)
        })
        .await
        .unwrap_or_else(|| panic!("{n} spans of trace {trace_id} never arrived"))
    }

    fn count(&self, trace_id: &str) -> usize {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| hex(&s.trace_id) == trace_id)
            .count()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone()?.value)
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}

const TOKENS: &str = "role: authorizer, config: { tokens: { ops-token: { principal: ops } } }";

fn config(origin: &Origin, collector: &Collector) -> String {
    let plugins = plugins_yaml(&[("auth", "token_authorizer", TOKENS)]);
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {origin}
tracing:
  endpoint: http://{collector}/v1/traces
  service_name: edge-test
  export_interval_ms: 100
{plugins}
apis:
  - name: shop
    authorizers:
      tok: {{ plugin: auth, identity_source: [header.authorization] }}
    stages:
      prod: {{ tracing: {{ sampling: 1, response_header: true }}, cache: {{ ttl_s: 60 }} }}
      never: {{ tracing: {{ sampling: 0 }} }}
      plain: {{}}
    routes:
      - route: GET /pets/{{id}}
        auth: tok
        cache: {{ key: [path.id] }}
        integration: {{ http_proxy: "${{origin}}/pets/{{id}}" }}
"#,
        origin = origin.url(),
        collector = collector.addr
    )
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_trace_is_continued_and_exported() {
    let collector = Collector::start().await;
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, &collector)).await;
    let response = client()
        .get(gw.url("/prod/pets/7"))
        .header("authorization", "Bearer ops-token")
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .header("tracestate", "vendor=opaque")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    response.bytes().await.unwrap();

    // request → authorizer, cache lookup, integration
    let spans = collector.trace(TRACE, 4).await;
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let root = by_name(&spans, "GET /pets/{id}");
    assert_eq!(hex(&root.parent_span_id), CLIENT_SPAN);
    assert_eq!(root.kind, 2, "SERVER");
    assert_eq!(
        traceresponse,
        format!("00-{TRACE}-{}-01", hex(&root.span_id))
    );
    assert_eq!(
        attribute(root, "http.response.status_code"),
        Some(AnyValue::IntValue(200))
    );
    assert_eq!(
        attribute(root, "http.route"),
        Some(AnyValue::StringValue("/pets/{id}".into()))
    );
    assert_eq!(
        attribute(root, "url.path"),
        Some(AnyValue::StringValue("/prod/pets/7".into()))
    );
    for name in ["authorizer", "cache lookup", "integration"] {
        let span = by_name(&spans, name);
        assert_eq!(span.parent_span_id, root.span_id, "{name}'s parent");
        assert!(
            span.start_time_unix_nano >= root.start_time_unix_nano
                && span.end_time_unix_nano <= root.end_time_unix_nano,
            "{name} within the request"
        );
    }
    let integration = by_name(&spans, "integration");
    assert_eq!(integration.kind, 3, "CLIENT");
    assert_eq!(
        attribute(integration, "http.response.status_code"),
        Some(AnyValue::IntValue(200))
    );
    let (service, _) = collector.spans.lock().unwrap()[0].clone();
    assert_eq!(service, "edge-test");
    let (path, content_type) = collector.posts.lock().unwrap()[0].clone();
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");

    // The origin's parent is the integration's span; the client's tracestate passes on.
    let seen = &origin.requests_to("/pets/7")[0];
    assert_eq!(
        seen.headers["traceparent"],
        format!("00-{TRACE}-{}-01", hex(&integration.span_id)).as_str()
    );
    assert_eq!(seen.headers["tracestate"], "vendor=opaque");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_started_sampled_by_the_stage_or_left_alone() {
    let collector = Collector::start().await;
    let origin = Origin::echo().await;
    let gw = Gateway::start(&config(&origin, &collector)).await;
    let get = |path: &str, traceparent: Option<String>| {
        let mut request = client()
            .get(gw.url(path))
            .header("authorization", "Bearer ops-token");
        if let Some(t) = traceparent {
            request = request.header("traceparent", t);
        }
        request.send()
    };
    let origin_traceparent = |path: &str| -> String {
        let seen = origin.requests_to(path);
        seen.last().unwrap().headers["traceparent"]
            .to_str()
            .unwrap()
            .to_owned()
    };

    // No traceparent, sampling 1: a new trace, sampled, with the request span at its root.
    let response = get("/prod/pets/1", None).await.unwrap();
    response.bytes().await.unwrap();
    let started = origin_traceparent("/pets/1");
    let fields: Vec<&str> = started.split('-').collect();
    assert_eq!((fields[0], fields[3]), ("00", "01"), "{started}");
    let spans = collector.trace(fields[1], 4).await;
    let root = by_name(&spans, "GET /pets/{id}");
    assert!(root.parent_span_id.is_empty(), "a root span");
    assert_eq!(hex(&by_name(&spans, "integration").span_id), fields[2]);

    // Sampling 0: the origin still gets a traceparent (not sampled); nothing is exported.
    let response = get("/never/pets/2", None).await.unwrap();
    assert!(response.headers().get("traceresponse").is_none());
    response.bytes().await.unwrap();
    let unsampled = origin_traceparent("/pets/2");
    let fields: Vec<&str> = unsampled.split('-').collect();
    assert_eq!(fields[3], "00", "{unsampled}");

    // A client's unsampled trace is continued unsampled.
    let response = get("/prod/pets/3", Some(format!("00-{TRACE}-{CLIENT_SPAN}-00")))
        .await
        .unwrap();
    response.bytes().await.unwrap();
    let continued = origin_traceparent("/pets/3");
    assert!(
        continued.starts_with(&format!("00-{TRACE}-")) && continued.ends_with("-00"),
        "{continued}"
    );
    assert_ne!(continued, format!("00-{TRACE}-{CLIENT_SPAN}-00"));

    // A malformed traceparent starts a new trace.
    let response = get("/prod/pets/4", Some("00-zz-yy-01".into()))
        .await
        .unwrap();
    response.bytes().await.unwrap();
    assert!(!origin_traceparent("/pets/4").contains("zz"));

    // A stage without tracing passes the client's header on as it came.
    let sent = format!("00-{TRACE}-{CLIENT_SPAN}-01");
    let response = get("/plain/pets/5", Some(sent.clone())).await.unwrap();
    assert!(response.headers().get("traceresponse").is_none());
    response.bytes().await.unwrap();
    assert_eq!(origin_traceparent("/pets/5"), sent);

    // Give the exporter two intervals: none of the unsampled requests was exported.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(collector.count(fields[1]), 0);
    assert_eq!(collector.count(TRACE), 0);
}
