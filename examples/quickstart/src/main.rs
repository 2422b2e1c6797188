//! `./scripts/quickstart.sh` builds the Rust plugins into `target/plugins/` and then runs this:
//! a demo origin on 127.0.0.1:9000 and an Edgeway node on `examples/quickstart/edgeway.yaml`, in
//! one process, so a new user can `curl` at once. (`cargo run --release -p edgeway-quickstart`
//! alone works once the plugins are built.)
//!
//! The origin is a tiny pet store (`GET /v1/pets`, `GET /v1/pets/{id}`) plus `/echo/...`, which
//! answers with what it received, to show what Edgeway sends to an origin.

use std::convert::Infallible;
use std::path::Path;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;

const ORIGIN_ADDR: &str = "127.0.0.1:9000";

fn main() -> ExitCode {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config_path = manifest_dir.join("edgeway.yaml");
    // The config's `plugins.dir`: the workspace's target/plugins.
    let workspace = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
    let plugins = workspace.join("target/plugins");
    if !plugins.join("token_authorizer.wasm").is_file() {
        eprintln!(
            "quickstart: the plugins are not built in {}; run ./scripts/quickstart.sh",
            plugins.display()
        );
        return ExitCode::FAILURE;
    }
    let listener = match std::net::TcpListener::bind(ORIGIN_ADDR) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("quickstart: cannot start the demo origin on {ORIGIN_ADDR}: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || {
        if let Err(e) = run_origin(listener) {
            eprintln!("quickstart: demo origin stopped: {e:#}");
        }
    });
    eprintln!(
        "\nEdgeway quickstart: demo origin on http://{ORIGIN_ADDR}, gateway on http://127.0.0.1:8080\n\
         try:  curl -i http://127.0.0.1:8080/prod/hello\n      \
         curl -i http://127.0.0.1:8080/prod/pets/1\n      \
         curl -i 'http://127.0.0.1:8080/prod/echo/a/b?x=1'\n      \
         curl -i -H 'authorization: Bearer demo-token' http://127.0.0.1:8080/prod/private/a\n      \
         curl -i -H 'cookie: a=1' http://127.0.0.1:8080/prod/rewrite/a\n      \
         curl -i 'http://127.0.0.1:8080/prod/function/a?x=1'\n      \
         curl -i http://127.0.0.1:8080/prod/pets/2   (twice: x-cache miss, then hit)\n      \
         curl -i -X POST -d '{{\"name\":7}}' http://127.0.0.1:8080/prod/pets   (400: invalid body)\n      \
         curl -i -X POST -H 'content-type: application/json' -d '{{\"name\":\"Rex\"}}' http://127.0.0.1:8080/prod/orders   (templates)\n\
         config: {} (edits are reloaded live); Ctrl-C stops\n",
        config_path.display()
    );
    edgeway::cli::main_with_args(
        ["edgeway", "serve", "--config"]
            .into_iter()
            .map(Into::into)
            .chain([config_path.into_os_string()]),
    )
}

fn run_origin(listener: std::net::TcpListener) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn pets() -> serde_json::Value {
    json!([
        { "id": 1, "name": "Rex", "type": "dog", "price": 249.99 },
        { "id": 2, "name": "Tom", "type": "cat", "price": 124.99 },
        { "id": 3, "name": "Nemo", "type": "fish", "price": 0.99 }
    ])
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let (status, body) = if path == "/v1/pets" {
        (StatusCode::OK, pets())
    } else if let Some(id) = path.strip_prefix("/v1/pets/") {
        match pets().as_array().and_then(|all| {
            all.iter()
                .find(|p| id.parse::<u64>().is_ok_and(|id| p["id"] == id))
                .cloned()
        }) {
            Some(pet) => (StatusCode::OK, pet),
            None => (
                StatusCode::NOT_FOUND,
                json!({ "message": format!("no pet {id}") }),
            ),
        }
    } else if path.starts_with("/echo/") {
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let headers: serde_json::Map<String, serde_json::Value> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("<binary>"))))
            .collect();
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        (
            StatusCode::OK,
            json!({ "method": method, "uri": uri, "headers": headers, "body": body }),
        )
    } else {
        (StatusCode::NOT_FOUND, json!({ "message": "not found" }))
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
