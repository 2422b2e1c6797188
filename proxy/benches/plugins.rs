//! Plugin calls through the real host: an authorizer on a reused instance, the same call on a
//! fresh instance (`isolation: per_request`), a transformer given a 4 KiB body, and the
//! built-in mapper rendering velocity's bench template (2 KB) over its 4 KiB JSON body.
#![allow(clippy::expect_used)] // a bench with a bad fixture should stop at once
//!
//! Needs the components: `scripts/build-plugins.sh`, then
//! `cargo bench --release -p edgeway --bench plugins`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway::config::Upstream;
use edgeway::plugins::bindings::{Decision, Request, RequestFlow};
use edgeway::plugins::{
    DEFAULT_HTTP_TIMEOUT, DEFAULT_PLUGIN_MEMORY, DEFAULT_PLUGIN_TIMEOUT, HeaderSelection,
    Isolation, Plugin, PluginHost, PluginRole, PluginSet, PluginSpec, PluginsConfig,
};
use std::hint::black_box;

/// The velocity crate's bench fixture: its 2 KB template and 4 KiB input.
#[path = "../../velocity/benches/velocity.rs"]
#[allow(dead_code, missing_docs)]
mod velocity_bench;

/// Where `scripts/build-plugins.sh` leaves the components.
fn components_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins")
}

fn component(file: &str) -> PathBuf {
    let path = components_dir().join(file);
    assert!(
        path.is_file(),
        "{} is missing: build the plugin components first with scripts/build-plugins.sh",
        path.display()
    );
    path
}

fn spec(name: &str, role: PluginRole, file: &str, body: bool, config_json: &str) -> PluginSpec {
    PluginSpec {
        name: name.to_owned(),
        role,
        file: component(file),
        timeout: DEFAULT_PLUGIN_TIMEOUT,
        memory_bytes: DEFAULT_PLUGIN_MEMORY,
        body,
        // Headers are chosen per call in this bench, by the request each case builds.
        headers: HeaderSelection::All,
        allowed_hosts: Vec::new(),
        http_timeout: DEFAULT_HTTP_TIMEOUT,
        config_json: config_json.to_owned(),
    }
}

/// A host with the two plugins loaded, compiled into a cache folder of its own.
fn load(cache_dir: &Path) -> (PluginHost, Arc<PluginSet>) {
    let config = PluginsConfig {
        dir: None,
        cache_dir: cache_dir.to_owned(),
        load: vec![
            spec(
                "token-authorizer",
                PluginRole::Authorizer,
                "token_authorizer.wasm",
                false,
                r#"{"tokens":{"s3cr3t":{"principal":"alice","context":{"tier":"gold"},"usage_key":"k-alice"}}}"#,
            ),
            spec(
                "header-rewrite",
                PluginRole::Transformer,
                "header_rewrite.wasm",
                true,
                r#"{"request":{"rename":{"x-old":"x-new"},"remove":["cookie"],"set":{"x-env":"prod"},"add":{"via":"edgeway"}}}"#,
            ),
            spec(
                "mapping-template",
                PluginRole::Mapper,
                "mapping_template.wasm",
                true,
                "null",
            ),
        ],
    };
    let (tls, digest) = edgeway::upstream::client_tls(None).expect("client TLS config");
    let upstream = Upstream {
        tls,
        connect_timeout: Duration::from_secs(5),
        pool_idle_timeout: Duration::from_secs(90),
        fingerprint: format!("{digest:x}"),
    };
    let host = PluginHost::new().expect("plugin engine");
    let set = host.load(&config, &upstream).expect("plugins load");
    (host, set)
}

/// A request as the pipeline hands it to plugins: ten headers and `body`.
fn request(body: Option<Vec<u8>>) -> Request {
    let headers = [
        ("host", "api.example.com"),
        ("user-agent", "bench/1.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, br"),
        ("authorization", "Bearer s3cr3t"),
        ("content-type", "application/json"),
        ("cookie", "session=0123456789abcdef"),
        ("x-old", "renamed"),
        ("x-request-id", "0f8fad5b-d9cb-469f-a165-70867728950e"),
        ("x-forwarded-for", "203.0.113.7"),
    ];
    Request {
        method: "POST".into(),
        path: "/prod/pets/7".into(),
        query: "verbose=1".into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        path_params: vec![("id".into(), "7".into())],
        stage_variables: Vec::new(),
        api: "pets".into(),
        stage: "prod".into(),
        route: "POST /pets/{id}".into(),
        request_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
        source_ip: "203.0.113.7".into(),
        principal: None,
        body,
    }
}

fn plugin<'a>(set: &'a PluginSet, name: &str) -> &'a Plugin {
    set.get(name).expect("plugin loaded")
}

fn calls(c: &mut Criterion) {
    let cache_dir =
        std::env::temp_dir().join(format!("edgeway-bench-plugins-{}", std::process::id()));
    let (_host, set) = load(&cache_dir);
    // Criterion's async support is not enabled; `block_on` on a current-thread runtime is a
    // few tens of nanoseconds, well under what is measured here.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let authorizer = plugin(&set, "token-authorizer");
    let identity = vec![(
        "header.authorization".to_owned(),
        "Bearer s3cr3t".to_owned(),
    )];
    let bare = request(None);
    // Fail now, not in the middle of a measurement, if the fixture is wrong.
    let decision = rt
        .block_on(authorizer.authorize(Isolation::Reuse, &identity, &bare))
        .expect("authorizer call");
    assert!(matches!(decision, Decision::Allow(_)), "{decision:?}");

    // What the pipeline hands an authorizer by default: no headers (its identity sources
    // carry what it decides on; `headers:` in its config adds some). Each header costs the
    // boundary two strings; the ten-header case is an authorizer configured with `headers: ["*"]`.
    let mut no_headers = request(None);
    no_headers.headers.clear();

    let mut group = c.benchmark_group("plugin_call");
    for (name, isolation, request) in [
        ("authorize_reuse", Isolation::Reuse, &no_headers),
        ("authorize_reuse_all_10_headers", Isolation::Reuse, &bare),
        ("authorize_per_request", Isolation::PerRequest, &no_headers),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let decision = rt.block_on(authorizer.authorize(
                    black_box(isolation),
                    black_box(&identity),
                    black_box(request),
                ));
                black_box(decision.expect("authorizer call"))
            })
        });
    }

    let transformer = plugin(&set, "header-rewrite");
    let with_body = request(Some(vec![b'x'; 4096]));
    let flow = rt
        .block_on(transformer.on_request(Isolation::Reuse, &with_body))
        .expect("transformer call");
    let RequestFlow::Continue(rewritten) = flow else {
        panic!("header-rewrite answered early: {flow:?}");
    };
    assert_eq!(rewritten.body.as_ref().map(Vec::len), Some(4096));
    assert!(rewritten.headers.iter().any(|(n, _)| n == "x-new"));
    group.bench_function("transform_4k_body_reuse", |b| {
        b.iter(|| {
            let flow = rt.block_on(transformer.on_request(Isolation::Reuse, black_box(&with_body)));
            black_box(flow.expect("transformer call"))
        })
    });

    // The mapper: the same template and input as velocity's own (native) bench.
    let mapper = plugin(&set, "mapping-template");
    let template = edgeway::mapping::MappingTemplate::new(velocity_bench::TEMPLATE);
    let native = velocity_bench::input();
    let input = edgeway::plugins::bindings::MappingInput {
        body: native.body.clone(),
        path: native.params.path.clone().into_iter().collect(),
        querystring: native.params.querystring.clone().into_iter().collect(),
        header: native.params.header.clone().into_iter().collect(),
        context: native.context.clone(),
        stage_variables: native.stage_variables.clone().into_iter().collect(),
    };
    let rendered = rt
        .block_on(mapper.render(Isolation::Reuse, template.id, &template.source, &input))
        .expect("mapper call");
    serde_json::from_str::<serde_json::Value>(&rendered.body).expect("the render is JSON");
    group.bench_function("mapper_render_2k_template_4k_body", |b| {
        b.iter(|| {
            let rendered = rt.block_on(mapper.render(
                Isolation::Reuse,
                template.id,
                &template.source,
                black_box(&input),
            ));
            black_box(rendered.expect("mapper call"))
        })
    });
    group.finish();

    let _ = std::fs::remove_dir_all(&cache_dir);
}

criterion_group!(benches, calls);
criterion_main!(benches);
