//! Mapping templates and non-proxy integrations, end to end: the real binary (with its
//! built-in mapping-template component) in front of a real origin on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use edgeway_tests::*;
use serde_json::{Value, json};

/// An origin that says what it received, as JSON, and answers `/status/N` with status N.
async fn origin() -> Origin {
    Origin::start(|r: &Recorded| {
        let status = r
            .uri
            .path()
            .strip_prefix("/status/")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(200);
        let body = json!({
            "method": r.method.as_str(),
            "path": r.path_and_query(),
            "content_type": r.header("content-type"),
            "x_user": r.header("x-user"),
            "x_static": r.header("x-static"),
            "x_override": r.header("x-override"),
            "multi": r.header_all("x-multi"),
            "body": String::from_utf8_lossy(&r.body),
            "redirect": {"url": "https://example.com/next"},
        });
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("x-origin", "yes")
            .body(full(body.to_string()))
            .unwrap()
    })
    .await
}

const CONFIG: &str = r##"
listen:
  - addr: 127.0.0.1:0
origin: ORIGIN
apis:
  - name: shop
    stages:
      prod: { variables: { region: eu } }
    routes:
      # Request templates by content type; parameter mappings both ways.
      - route: POST /orders/{id}
        integration:
          http:
            method: PUT
            uri: "${origin}/backend/{orderId}"
            request_parameters:
              integration.request.path.orderId: method.request.path.id
              integration.request.header.x-user: method.request.querystring.user
              integration.request.header.x-static: "'fixed'"
              integration.request.querystring.region: stageVariables.region
              integration.request.querystring.rid: context.requestId
            request_templates:
              application/json: |
                #set($o = $input.path('$'))
                {"order": "$input.params('id')", "items": $input.json('$.items'), "count": $o.items.size()}
              application/xml: '<order id="$input.params(''id'')">$input.body</order>'
            responses:
              - default: true
                status: 201
                response_parameters:
                  method.response.header.Location: integration.response.body.redirect.url
                  method.response.header.x-from: integration.response.header.x-origin
                  method.response.header.x-stage: stageVariables.region
                response_templates:
                  application/json: |
                    #set($r = $input.path('$'))
                    {"sent_to": "$r.path", "as": "$r.content_type", "origin_saw": $input.json('$.body')}
      # The three passthrough behaviours.
      - route: POST /match
        integration:
          http:
            uri: "${origin}/pass"
            passthrough: when_no_match
            request_templates: { application/json: '{"mapped": true}' }
      - route: POST /templates
        integration:
          http:
            uri: "${origin}/pass"
            passthrough: when_no_templates
            request_templates: { application/json: '{"mapped": true}' }
      - route: POST /untemplated
        integration:
          http:
            uri: "${origin}/pass"
            passthrough: when_no_templates
      - route: POST /never
        integration:
          http:
            uri: "${origin}/pass"
            passthrough: never
            request_templates: { application/json: '{"mapped": true}' }
      # Selection patterns over the origin's status.
      - route: GET /status/{code}
        integration:
          http:
            uri: "${origin}/status/{code}"
            responses:
              - selection_pattern: "4\\d{2}"
                status: 400
                response_templates: { application/json: '{"error": "client", "was": $input.path(''$.path'').length()}' }
              - selection_pattern: "5\\d{2}"
                status: 502
                response_templates: { application/json: '{"error": "origin"}' }
              - default: true
                status: 200
                response_templates:
                  application/json: '{"ok": true}'
                  application/xml: '<ok/>'
      # Overrides: status and headers, from the request template and the response template.
      - route: GET /override
        integration:
          http:
            uri: "${origin}/override"
            request_templates:
              application/json: |
                #set($context.requestOverride.header.x-override = "from-template")
                #set($context.requestOverride.header.x-multi = ["a", "b"])
                #set($context.responseOverride.status = 418)
                {}
            responses:
              - default: true
                status: 200
                response_templates:
                  application/json: |
                    #set($context.responseOverride.header.x-mapped = "yes")
                    $input.json('$.x_override')
      # A mock whose request template chooses the status.
      - route: GET /mock
        integration:
          mock:
            request_templates:
              application/json: |
                {
                  #if( $input.params('scope') == "internal" )
                    "statusCode": 200
                  #else
                    "statusCode": 404
                  #end
                }
            responses:
              - selection_pattern: "404"
                status: 404
                response_templates: { application/json: '{"message": "no such scope: $input.params(''scope'')"}' }
              - default: true
                status: 200
                response_templates: { application/json: '{"statusCode": 200, "message": "Go ahead without me."}' }
      # Hostile templates fail their request only.
      - route: GET /hostile/loop
        integration:
          mock:
            request_templates: { application/json: '#foreach($i in [1..100000000])$i#end' }
      - route: GET /hostile/strings
        integration:
          mock:
            request_templates:
              application/json: |
                #set($s = "xxxxxxxxxxxxxxxx")
                #foreach($i in [1..40])#set($s = "$s$s")#end
                $s.length()
      - route: GET /plain
        integration: { http_proxy: "${origin}/plain" }
"##;

async fn setup() -> (Origin, Gateway) {
    let origin = origin().await;
    let gw = Gateway::start(&CONFIG.replace("ORIGIN", &origin.url())).await;
    (origin, gw)
}

async fn body_json(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_templates_are_chosen_by_content_type_and_parameters_map_both_ways() {
    let (origin, gw) = setup().await;
    let c = client();
    let r = c
        .post(gw.url("/prod/orders/42?user=ann%20b&ignored=1"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"items": [{"sku": "a"}, {"sku": "b"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "https://example.com/next");
    assert_eq!(r.headers()["x-from"], "yes");
    assert_eq!(r.headers()["x-stage"], "eu");
    assert_eq!(r.headers()["content-type"], "application/json");
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let got = body_json(r).await;
    let seen = origin.single_request();
    assert_eq!(seen.method, http::Method::PUT);
    assert_eq!(seen.uri.path(), "/backend/42");
    // Only mapped query parameters reach a non-proxy integration.
    assert_eq!(
        seen.uri.query(),
        Some(format!("region=eu&rid={request_id}").as_str())
    );
    assert_eq!(seen.header("x-user"), Some("ann b"));
    assert_eq!(seen.header("x-static"), Some("fixed"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    let sent: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        sent,
        json!({"order": "42", "items": [{"sku": "a"}, {"sku": "b"}], "count": 2})
    );
    assert_eq!(
        got["sent_to"],
        format!("/backend/42?region=eu&rid={request_id}")
    );
    assert_eq!(got["as"], "application/json");
    assert_eq!(
        got["origin_saw"],
        String::from_utf8_lossy(&seen.body).as_ref()
    );

    // The XML template for an XML request.
    let r = c
        .post(gw.url("/prod/orders/7"))
        .header("content-type", "application/xml")
        .body("<item>x</item>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let seen = origin.requests().pop().unwrap();
    assert_eq!(seen.header("content-type"), Some("application/xml"));
    assert_eq!(&seen.body[..], br#"<order id="7"><item>x</item></order>"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_behaviours() {
    let (origin, gw) = setup().await;
    let c = client();
    let post = |path: &'static str, ct: &'static str| {
        c.post(gw.url(path))
            .header("content-type", ct)
            .body("plain words")
            .send()
    };
    // when_no_match: an unmatched type passes through as it came.
    let r = post("/prod/match", "text/plain").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&origin.requests().pop().unwrap().body[..], b"plain words");
    let r = post("/prod/match", "application/json").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        &origin.requests().pop().unwrap().body[..],
        br#"{"mapped": true}"#
    );
    // when_no_templates: templates exist, none matches: 415 and the origin sees nothing.
    let before = origin.requests().len();
    let r = post("/prod/templates", "text/plain").await.unwrap();
    assert_gateway_error(r, 415, "Unsupported Media Type", "UNSUPPORTED_MEDIA_TYPE").await;
    let r = post("/prod/never", "text/plain").await.unwrap();
    assert_gateway_error(r, 415, "Unsupported Media Type", "UNSUPPORTED_MEDIA_TYPE").await;
    assert_eq!(origin.requests().len(), before);
    // ...and with no templates at all, it passes through.
    let r = post("/prod/untemplated", "text/plain").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&origin.requests().pop().unwrap().body[..], b"plain words");
    let r = post("/prod/never", "application/json").await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_patterns_map_the_origin_status() {
    let (_origin, gw) = setup().await;
    let c = client();
    for (code, status, body) in [
        (200, 200, json!({"ok": true})),
        (204, 200, json!({"ok": true})),
        (404, 400, json!({"error": "client", "was": 11})),
        (429, 400, json!({"error": "client", "was": 11})),
        (503, 502, json!({"error": "origin"})),
    ] {
        let r = c
            .get(gw.url(&format!("/prod/status/{code}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "origin status {code}");
        if code != 204 {
            assert_eq!(body_json(r).await, body, "origin status {code}");
        }
    }
    // The response template by Accept.
    let r = c
        .get(gw.url("/prod/status/200"))
        .header("accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/xml");
    assert_eq!(r.text().await.unwrap(), "<ok/>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_set_status_and_headers() {
    let (origin, gw) = setup().await;
    let r = client().get(gw.url("/prod/override")).send().await.unwrap();
    assert_eq!(
        r.status(),
        418,
        "the request template's responseOverride.status"
    );
    assert_eq!(r.headers()["x-mapped"], "yes");
    assert_eq!(r.text().await.unwrap(), "\"from-template\"\n");
    let seen = origin.single_request();
    assert_eq!(seen.header("x-override"), Some("from-template"));
    assert_eq!(seen.header_all("x-multi"), ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mock_template_chooses_the_status() {
    let (_origin, gw) = setup().await;
    let c = client();
    let r = c
        .get(gw.url("/prod/mock?scope=internal"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        body_json(r).await,
        json!({"statusCode": 200, "message": "Go ahead without me."})
    );
    let r = c
        .get(gw.url("/prod/mock?scope=public"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        body_json(r).await,
        json!({"message": "no such scope: public"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_templates_fail_their_request_and_the_node_keeps_serving() {
    let (origin, gw) = setup().await;
    let c = client();
    for path in ["/prod/hostile/loop", "/prod/hostile/strings"] {
        let started = std::time::Instant::now();
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert_gateway_error(r, 500, "Internal server error", "API_CONFIGURATION_ERROR").await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path} took {:?}",
            started.elapsed()
        );
        let r = c.get(gw.url("/prod/plain")).send().await.unwrap();
        assert_eq!(r.status(), 200, "the node still serves after {path}");
    }
    assert_eq!(origin.requests_to("/plain").len(), 2);
    let log = gw.stderr_text();
    assert!(
        log.contains("#foreach ran past its limit of 1000 iterations"),
        "{log}"
    );
}

fn hostile_config(origin: &Origin, template: &str) -> String {
    format!(
        r#"
listen:
  - addr: 127.0.0.1:0
origin: {}
apis:
  - name: shop
    stages: {{ prod: {{}} }}
    routes:
      - route: GET /plain
        integration: {{ http_proxy: "${{origin}}/plain" }}
      - route: GET /mapped
        integration:
          mock:
            request_templates:
              application/json: {}
"#,
        origin.url(),
        serde_json::to_string(template).unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_template_refuses_the_config_with_its_line_and_column() {
    let origin = origin().await;
    let mut gw = Gateway::start(&hostile_config(&origin, "{\"statusCode\": 200}")).await;
    let c = client();
    assert_eq!(
        c.get(gw.url("/prod/mapped")).send().await.unwrap().status(),
        200
    );
    for (refusals, (template, expected)) in (1..).zip([
        (
            "{\n  #if($x)\n  \"a\": 1\n}".to_owned(),
            "line 2, column 3 of the template: #if has no #end".to_owned(),
        ),
        (
            format!("{}x{}", "#if(true)".repeat(200), "#end".repeat(200)),
            "nested deeper than 64 levels".to_owned(),
        ),
        (
            "x".repeat(300 * 1024 + 1),
            format!(
                "the template is {} bytes, over the limit of 307200 bytes",
                300 * 1024 + 1
            ),
        ),
    ]) {
        let generation = gw.generation();
        gw.replace_config(&hostile_config(&origin, &template));
        let events = gw
            .wait_event_count("config refused", refusals, Duration::from_secs(10))
            .await;
        let text = events.last().unwrap().to_string();
        assert!(text.contains(&expected), "{expected:?} not in {text}");
        assert!(
            text.contains("apis[0].routes[1].integration.mock.request_templates.application/json"),
            "{text}"
        );
        assert_eq!(gw.generation(), generation);
        // The running config keeps serving.
        assert_eq!(
            c.get(gw.url("/prod/mapped")).send().await.unwrap().status(),
            200
        );
        assert!(gw.is_running());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_reloads_without_a_restart() {
    let origin = origin().await;
    let config = |word: &str| {
        hostile_config(
            &origin,
            &format!("{{\"statusCode\": 200, \"word\": \"{word}\"}}"),
        )
    };
    let gw = Gateway::start(&config("one")).await;
    let c = client();
    let pid = gw.pid();
    let r = c.get(gw.url("/prod/mapped")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let generation = gw.generation();
    gw.replace_config(&config("two").replace(
        "request_templates:",
        "responses: [ { default: true, status: 200, response_templates: { application/json: '{\"word\": \"two\"}' } } ]\n            request_templates:",
    ));
    let reloaded = eventually(Duration::from_secs(10), || async {
        (gw.generation() > generation).then_some(())
    })
    .await;
    assert!(
        reloaded.is_some(),
        "the config reloads: {}",
        gw.stderr_text()
    );
    let r = c.get(gw.url("/prod/mapped")).send().await.unwrap();
    assert_eq!(body_json(r).await, json!({"word": "two"}));
    assert_eq!(gw.pid(), pid);
}

/// A SOAP 1.1 weather service: answers `GetWeather` for Paris, a fault otherwise.
async fn soap_service() -> Origin {
    Origin::start(|r: &Recorded| {
        let body = String::from_utf8_lossy(&r.body);
        let (status, answer) = if body.contains("<City>Paris</City>") {
            (
                200,
                r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetWeatherResponse xmlns="urn:weather"><City>Paris</City><Temperature>21</Temperature><Conditions>Sunny</Conditions></GetWeatherResponse></soap:Body></soap:Envelope>"#,
            )
        } else {
            (
                500,
                r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Unknown city</faultstring></soap:Fault></soap:Body></soap:Envelope>"#,
            )
        };
        http::Response::builder()
            .status(status)
            .header("content-type", "text/xml; charset=utf-8")
            .body(full(answer))
            .unwrap()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soap_example_maps_json_to_xml_and_back() {
    let service = soap_service().await;
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/soap/edgeway.yaml"),
    )
    .unwrap()
    .replace("http://127.0.0.1:9000", &service.url())
    .replace("127.0.0.1:8080", "127.0.0.1:0");
    let gw = Gateway::start(&example).await;
    let c = client();
    let r = c
        .post(gw.url("/prod/weather"))
        .header("content-type", "application/json")
        .body(r#"{"city": "Paris"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        body_json(r).await,
        json!({"city": "Paris", "temperature": 21, "conditions": "Sunny"})
    );
    let seen = service.single_request();
    assert_eq!(seen.header("soapaction"), Some("urn:weather#GetWeather"));
    assert_eq!(seen.header("content-type"), Some("text/xml; charset=utf-8"));
    let envelope = String::from_utf8_lossy(&seen.body);
    assert!(
        envelope.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<soap:Envelope"),
        "{envelope}"
    );
    assert!(envelope.contains("<City>Paris</City>"), "{envelope}");

    let r = c
        .post(gw.url("/prod/weather"))
        .header("content-type", "application/json")
        .body(r#"{"city": "Atlantis & <co>"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(body_json(r).await, json!({"message": "Unknown city"}));
    let envelope = String::from_utf8_lossy(&service.requests().pop().unwrap().body).into_owned();
    assert!(
        envelope.contains("<City>Atlantis &amp; &lt;co&gt;</City>"),
        "{envelope}"
    );

    // `passthrough: never`: a body the template cannot take is refused, not sent.
    let r = c
        .post(gw.url("/prod/weather"))
        .header("content-type", "text/plain")
        .body("Paris")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(service.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_on_the_template_they_started_with() {
    let origin = Origin::start_async(|_r: Recorded| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        http::Response::builder()
            .header("content-type", "application/json")
            .body(full(r#"{"n": 1}"#))
            .unwrap()
    })
    .await;
    let config = |version: &str| {
        format!(
            r#"
listen:
  - addr: 127.0.0.1:0
origin: {}
apis:
  - name: shop
    stages: {{ prod: {{}} }}
    routes:
      - route: GET /slow
        integration:
          http:
            uri: "${{origin}}/slow"
            responses:
              - default: true
                status: 200
                response_templates:
                  application/json: '{{"n": $input.path(''$.n''), "template": "{version}"}}'
"#,
            origin.url()
        )
    };
    let gw = Gateway::start(&config("one")).await;
    let c = client();
    let in_flight = tokio::spawn(c.get(gw.url("/prod/slow")).send());
    // The request is at the origin (it holds it 1.5 s) when the new template arrives.
    let arrived = eventually(Duration::from_secs(5), || async {
        (!origin.requests().is_empty()).then_some(())
    })
    .await;
    assert!(arrived.is_some());
    let generation = gw.generation();
    gw.replace_config(&config("two"));
    let reloaded = eventually(Duration::from_secs(10), || async {
        (gw.generation() > generation).then_some(())
    })
    .await;
    assert!(reloaded.is_some(), "{}", gw.stderr_text());
    let old = in_flight.await.unwrap().unwrap();
    assert_eq!(body_json(old).await, json!({"n": 1, "template": "one"}));
    let new = c.get(gw.url("/prod/slow")).send().await.unwrap();
    assert_eq!(body_json(new).await, json!({"n": 1, "template": "two"}));
}
