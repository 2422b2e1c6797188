//! One origin's connections: HTTP/1.1 keep-alive connections reused newest-first, or one
//! multiplexed HTTP/2 connection when TLS negotiates h2.
//!
//! The pool is deliberately small. A request takes the most recently used idle connection (or
//! opens one), sends, and the connection goes back to the pool when the response body has been
//! read to its end; a response dropped half-read closes its connection. A request that finds a
//! pooled connection already closed by the origin, before anything was written, is retried
//! once on a fresh connection. Idle connections past `upstream.pool_idle_timeout` are dropped
//! when found, and at most `MAX_IDLE` wait per origin.

use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Upstream;
use crate::body::{BoxError, IdleConnections, PooledBody, RequestBody};
use crate::sync::lock;
use crate::telemetry::metrics::{OriginCounters, OriginFailure};

/// Idle HTTP/1 connections kept per origin.
const MAX_IDLE: usize = 256;

/// An origin that no pool can be made for.
#[derive(Debug, thiserror::Error)]
#[error("origin {origin}: {problem}")]
pub struct OriginError {
    pub origin: String,
    pub problem: OriginProblem,
}

/// What is wrong with an origin's address.
#[derive(Debug, thiserror::Error)]
pub enum OriginProblem {
    #[error("{0}")]
    NotAUri(http::uri::InvalidUri),
    #[error("has no host")]
    NoHost,
    #[error("{0}")]
    ServerName(rustls_pki_types::InvalidDnsNameError),
    #[error("{0}")]
    HostHeader(http::header::InvalidHeaderValue),
}

/// The connection pool for one origin (`scheme://authority`).
#[derive(Debug)]
pub struct OriginPool {
    /// `scheme://authority`, for logs and errors.
    pub origin: String,
    scheme: Scheme,
    authority: Authority,
    host_header: HeaderValue,
    host: String,
    port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    idle: Mutex<Vec<IdleConnection>>,
    h2: Mutex<Option<http2::SendRequest<RequestBody>>>,
    pub(super) fingerprint: String,
    /// Connections and failures, for `GET /metrics`.
    pub counters: Arc<OriginCounters>,
}

#[derive(Debug)]
struct IdleConnection {
    sender: http1::SendRequest<RequestBody>,
    since: Instant,
}

enum Connection {
    Http1 {
        sender: http1::SendRequest<RequestBody>,
        reused: bool,
    },
    Http2 {
        sender: http2::SendRequest<RequestBody>,
        /// Whether the connection was open before this request.
        reused: bool,
    },
}

impl OriginPool {
    /// A pool for `origin` (`http://host:port` or `https://host:port`).
    pub fn new(origin: &str, upstream: &Upstream) -> Result<Self, OriginError> {
        let error = |problem| OriginError {
            origin: origin.to_owned(),
            problem,
        };
        let uri: Uri = origin
            .parse()
            .map_err(|e| error(OriginProblem::NotAUri(e)))?;
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| error(OriginProblem::NoHost))?;
        let https = scheme == Scheme::HTTPS;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let mut config = (*upstream.tls).clone();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.clone())
                .map_err(|e| error(OriginProblem::ServerName(e)))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|e| error(OriginProblem::HostHeader(e)))?;
        Ok(Self {
            origin: origin.to_owned(),
            scheme,
            authority,
            host_header,
            host,
            port,
            tls,
            connect_timeout: upstream.connect_timeout,
            idle_timeout: upstream.pool_idle_timeout,
            idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
            fingerprint: upstream.fingerprint.clone(),
            counters: Arc::default(),
        })
    }

    /// Sends a request whose URI is in origin form (`/path?query`) and returns the response
    /// head; the body streams afterwards.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<RequestBody>,
    ) -> Result<Response<PooledBody>, BoxError> {
        request.headers_mut().insert(HOST, self.host_header.clone());
        loop {
            let connection = match self.checkout().await {
                Some(connection) => connection,
                // Boxed: a new connection's future (TCP, TLS, HTTP handshakes) is most of the
                // size of this one, and every request's future would carry it unboxed.
                None => Box::pin(self.connect()).await?,
            };
            match connection {
                Connection::Http2 { mut sender, reused } => {
                    if reused {
                        self.counters.reused();
                    }
                    let mut parts = request.uri().clone().into_parts();
                    parts.scheme = Some(self.scheme.clone());
                    parts.authority = Some(self.authority.clone());
                    *request.uri_mut() = Uri::from_parts(parts)?;
                    let response = sender
                        .send_request(request)
                        .await
                        .inspect_err(|_| self.counters.failed(OriginFailure::Exchange))?;
                    return Ok(response.map(PooledBody::unpooled));
                }
                Connection::Http1 { mut sender, reused } => {
                    let sent = sender.try_send_request(request).await;
                    // Counted once written: an unsent request is retried on a new connection.
                    if reused && !matches!(&sent, Err(e) if e.message().is_some()) {
                        self.counters.reused();
                    }
                    match sent {
                        Ok(response) => {
                            let pool = self.clone();
                            return Ok(
                                response.map(|inner| PooledBody::pooled(inner, sender, pool))
                            );
                        }
                        Err(mut error) => match error.take_message() {
                            // Never written: the pooled connection had closed. Try a new one.
                            Some(unsent) if reused => request = unsent,
                            _ => {
                                self.counters.failed(OriginFailure::Exchange);
                                return Err(error.into_error().into());
                            }
                        },
                    }
                }
            }
        }
    }

    async fn checkout(&self) -> Option<Connection> {
        {
            let mut h2 = lock(&self.h2);
            match h2.as_ref() {
                Some(sender) if !sender.is_closed() => {
                    return Some(Connection::Http2 {
                        sender: sender.clone(),
                        reused: true,
                    });
                }
                Some(_) => *h2 = None,
                None => {}
            }
        }
        loop {
            let candidate = lock(&self.idle).pop()?;
            if candidate.sender.is_closed() || candidate.since.elapsed() > self.idle_timeout {
                continue;
            }
            let mut sender = candidate.sender;
            // Ready as soon as the connection has finished the previous exchange.
            if sender.ready().await.is_ok() {
                return Some(Connection::Http1 {
                    sender,
                    reused: true,
                });
            }
        }
    }

    fn return_idle(&self, sender: http1::SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(IdleConnection {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Opens a connection, counting what failed.
    async fn connect(&self) -> Result<Connection, BoxError> {
        self.open().await.map_err(|(failure, error)| {
            self.counters.failed(failure);
            error
        })
    }

    async fn open(&self) -> Result<Connection, (OriginFailure, BoxError)> {
        use OriginFailure::{Connect, ConnectTimeout, Exchange, Tls};
        let address = format!("{}:{}", self.host, self.port);
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| {
            let timeout = self.connect_timeout.as_millis();
            (
                ConnectTimeout,
                format!("connect {address}: timed out after {timeout} ms").into(),
            )
        })?
        .map_err(|e| (Connect, format!("connect {address}: {e}").into()))?;
        let _ = stream.set_nodelay(true);
        let Some((tls, name)) = &self.tls else {
            return self
                .handshake_http1(TokioIo::new(stream))
                .await
                .map_err(|e| (Exchange, e));
        };
        let connector = TlsConnector::from(tls.clone());
        let stream = tokio::time::timeout(
            self.connect_timeout,
            connector.connect(name.clone(), stream),
        )
        .await
        .map_err(|_| {
            let error = format!("TLS handshake with {address}: timed out");
            (ConnectTimeout, error.into())
        })?
        .map_err(|e| (Tls, format!("TLS handshake with {address}: {e}").into()))?;
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| (Exchange, e.into()))?;
            let open = self.counters.opened();
            tokio::spawn(async move {
                let _open = open;
                connection.await
            });
            *lock(&self.h2) = Some(sender.clone());
            return Ok(Connection::Http2 {
                sender,
                reused: false,
            });
        }
        self.handshake_http1(TokioIo::new(stream))
            .await
            .map_err(|e| (Exchange, e))
    }

    async fn handshake_http1<T>(&self, io: TokioIo<T>) -> Result<Connection, BoxError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::Builder::new().handshake(io).await?;
        let open = self.counters.opened();
        tokio::spawn(async move {
            let _open = open;
            connection.await
        });
        Ok(Connection::Http1 {
            sender,
            reused: false,
        })
    }
}

impl IdleConnections for OriginPool {
    fn give_back(&self, sender: http1::SendRequest<RequestBody>) {
        self.return_idle(sender);
    }
}
