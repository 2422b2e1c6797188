//! `cargo run --release -p edgeway-chat-example`: a chat room on an Edgeway WebSocket API. One
//! process runs the chat origin on 127.0.0.1:9100 and an Edgeway node on
//! `examples/chat/edgeway.yaml` (clients on ws://127.0.0.1:8081/room).
//!
//! The origin is the room: `$connect` (`/connect`) and `$disconnect` (`/disconnect`) add and
//! remove a member by the connection id Edgeway sends in `x-edgeway-connection-id`; `join`
//! names the member and `sendmessage` says something, each broadcast to every member with
//! `POST /admin/connections/{id}` on the node's admin API.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};

const ORIGIN_ADDR: &str = "127.0.0.1:9100";
const ADMIN: &str = "http://127.0.0.1:9181";
/// The example's own admin token, for its origin's `@connections` calls.
const TOKEN: &str = "chat-example-token";

fn main() -> ExitCode {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("edgeway.yaml");
    // The node reads its admin token from this variable (`admin.token_env`).
    #[allow(unsafe_code)]
    // SAFETY: no other thread exists yet to read the environment concurrently.
    unsafe {
        std::env::set_var("CHAT_ADMIN_TOKEN", TOKEN);
    }
    let listener = match std::net::TcpListener::bind(ORIGIN_ADDR) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("chat: cannot start the chat origin on {ORIGIN_ADDR}: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || {
        if let Err(e) = run_origin(listener) {
            eprintln!("chat: the origin stopped: {e:#}");
        }
    });
    eprintln!(
        "\nEdgeway chat: ws://127.0.0.1:8081/room (origin on http://{ORIGIN_ADDR})\n\
         in two terminals:\n      \
         python3 -m websockets 'ws://127.0.0.1:8081/room'   (pip install websockets), or websocat\n\
         then send:\n      \
         {{\"action\":\"join\",\"name\":\"ann\"}}\n      \
         {{\"action\":\"sendmessage\",\"message\":\"hello\"}}\n\
         Ctrl-C stops\n"
    );
    edgeway::cli::main_with_args(
        ["edgeway", "serve", "--config"]
            .into_iter()
            .map(Into::into)
            .chain([config.into_os_string()]),
    )
}

/// The room: connection id → name (empty until `join`).
struct Room {
    members: Mutex<BTreeMap<String, String>>,
    admin: Client<HttpConnector, Full<Bytes>>,
}

fn run_origin(listener: std::net::TcpListener) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let room = Arc::new(Room {
            members: Mutex::default(),
            admin: Client::builder(TokioExecutor::new()).build_http(),
        });
        loop {
            let (stream, _) = listener.accept().await?;
            let room = room.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| handle(room.clone(), r));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn handle(
    room: Arc<Room>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let id = request
        .headers()
        .get("x-edgeway-connection-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let path = request.uri().path().to_owned();
    let name_in_query = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("name=")))
        .map(str::to_owned);
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let lock = || {
        room.members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    match path.as_str() {
        "/connect" => {
            lock().insert(id, name_in_query.unwrap_or_default());
        }
        "/disconnect" => {
            let name = lock().remove(&id).unwrap_or_default();
            if !name.is_empty() {
                broadcast(&room, json!({ "event": "left", "name": name })).await;
            }
        }
        "/join" => {
            let name = message["name"].as_str().unwrap_or("someone").to_owned();
            lock().insert(id, name.clone());
            broadcast(&room, json!({ "event": "joined", "name": name })).await;
        }
        "/sendmessage" => {
            let name = lock().get(&id).cloned().filter(|n| !n.is_empty());
            let text = message["message"].as_str().unwrap_or_default();
            broadcast(
                &room,
                json!({ "from": name.unwrap_or_else(|| "anonymous".into()), "message": text }),
            )
            .await;
        }
        _ => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return Ok(response);
        }
    }
    Ok(Response::new(Full::new(Bytes::new())))
}

/// Sends `event` to every member through `@connections`; a member gone since (410) leaves.
async fn broadcast(room: &Room, event: Value) {
    let client = &room.admin;
    let ids: Vec<String> = room
        .members
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .keys()
        .cloned()
        .collect();
    let body = Bytes::from(event.to_string());
    for id in ids {
        let request = Request::post(format!("{ADMIN}/admin/connections/{id}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(body.clone()));
        let Ok(request) = request else { continue };
        match client.request(request).await {
            Ok(response) if response.status() == StatusCode::GONE => {
                room.members
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&id);
            }
            Ok(_) => {}
            Err(e) => eprintln!("chat: cannot reach the admin API: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("edgeway.yaml");
        if let Err(errors) = edgeway::config::load(&path) {
            panic!("examples/chat/edgeway.yaml: {errors}");
        }
    }
}
