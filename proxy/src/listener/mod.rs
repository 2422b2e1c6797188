//! Listeners: accept TCP connections, terminate TLS, and serve HTTP/1.1 and HTTP/2 on them.
//!
//! A plain listener speaks HTTP/1.1 and h2c (HTTP/2 with prior knowledge); a TLS listener
//! chooses by ALPN. Each request loads the current config generation, so keep-alive
//! connections follow reloads. On shutdown a listener stops accepting and lets its
//! connections finish their requests (HTTP/2 gets GOAWAY, HTTP/1 closes after the response).

pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::node::Shared;
use crate::pipeline::{self, ConnInfo};

/// Accepts connections on `listener` (the `index`th `listen` entry) until `shutdown` turns
/// true, then waits for its connections to finish.
pub async fn serve(
    listener: TcpListener,
    index: usize,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|&stop| stop) => break,
        };
        match accepted {
            Ok((stream, remote)) => {
                let watcher = graceful.watcher();
                let shared = shared.clone();
                tokio::spawn(async move {
                    serve_connection(stream, remote, index, shared, watcher).await;
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn serve_connection(
    stream: TcpStream,
    remote: std::net::SocketAddr,
    index: usize,
    shared: Arc<Shared>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let _ = stream.set_nodelay(true);
    let gateway = shared.gateway.load_full();
    let tls = gateway.listener_tls.get(index).cloned().flatten();
    let conn = ConnInfo::new(remote, if tls.is_some() { "https" } else { "http" });
    let service = {
        let shared = shared.clone();
        service_fn(move |request| {
            let shared = shared.clone();
            let conn = conn.clone();
            async move {
                let gateway = shared.gateway.load_full();
                Ok::<_, std::convert::Infallible>(
                    pipeline::run(&gateway, &shared.log, conn, request).await,
                )
            }
        })
    };
    let result = match tls {
        None => {
            let connection = gateway
                .http
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            watcher.watch(connection).await
        }
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let handshake =
                tokio::time::timeout(gateway.limits.header_read_timeout, acceptor.accept(stream))
                    .await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let connection = gateway
                .http
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            watcher.watch(connection).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%remote, error = %pipeline::chain(e.as_ref()), "connection ended with an error");
    }
}
