//! WebSocket load for `bench/ws.sh`, loopback only:
//!
//! - `edgeway-bench-ws echo ADDR`: a WebSocket echo origin (every message sent back as is), the
//!   origin nginx proxies to in the pass-through row;
//! - `edgeway-bench-ws load URL CONNECTIONS SECONDS BYTES ACTION`: CONNECTIONS clients, each
//!   sending a BYTES-long JSON text message (`{"action":ACTION,"data":"xx..."}`) and waiting
//!   for its reply before the next (closed loop), for
//!   SECONDS; prints `messages=N per_s=R p50_us=A p99_us=B errors=E`;
//! - `edgeway-bench-ws idle URL COUNT`: opens COUNT connections that send nothing, prints
//!   `opened=N seconds=S`, then holds them until it is killed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {e}")));
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["echo", addr] => runtime.block_on(echo(parse(addr))),
        ["load", url, connections, seconds, bytes, action] => runtime.block_on(load(
            url,
            parse(connections),
            Duration::from_secs(parse(seconds)),
            parse(bytes),
            action,
        )),
        ["idle", url, count] => runtime.block_on(idle(url, parse(count))),
        _ => fail(
            "usage: edgeway-bench-ws echo ADDR | load URL CONNECTIONS SECONDS BYTES ACTION | idle URL COUNT",
        ),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("edgeway-bench-ws: {message}");
    std::process::exit(2)
}

fn parse<T: std::str::FromStr>(text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| fail(&format!("cannot parse {text:?}")))
}

async fn echo(addr: SocketAddr) {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("bind {addr}: {e}")));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
}

type Client = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn open(url: &str) -> Result<Client, String> {
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    let host = request.uri().host().unwrap_or("127.0.0.1").to_owned();
    let port = request.uri().port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn load(url: &str, connections: usize, duration: Duration, bytes: usize, action: &str) {
    let envelope = format!("{{\"action\":\"{action}\",\"data\":\"\"}}");
    let message = format!(
        "{{\"action\":\"{action}\",\"data\":\"{}\"}}",
        "x".repeat(bytes.saturating_sub(envelope.len()))
    );
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(
            open(url)
                .await
                .unwrap_or_else(|e| fail(&format!("connect {url}: {e}"))),
        );
    }
    let start = Instant::now();
    let end = start + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            let message = message.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < end {
                    let sent = Instant::now();
                    if ws.send(Message::text(message.clone())).await.is_err() {
                        errors += 1;
                        break;
                    }
                    match ws.next().await {
                        Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                            latencies.push(
                                u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX),
                            );
                        }
                        _ => {
                            errors += 1;
                            break;
                        }
                    }
                }
                let _ = ws.close(None).await;
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "messages={} per_s={:.0} p50_us={} p99_us={} errors={errors}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        at(0.50),
        at(0.99),
    );
}

async fn idle(url: &str, count: usize) {
    let start = Instant::now();
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(
            open(url)
                .await
                .unwrap_or_else(|e| fail(&format!("connect {url}: {e}"))),
        );
    }
    println!(
        "opened={} seconds={:.2}",
        clients.len(),
        start.elapsed().as_secs_f64()
    );
    // Held open, reading nothing, until the process is killed.
    std::future::pending::<()>().await;
    drop(clients);
}
