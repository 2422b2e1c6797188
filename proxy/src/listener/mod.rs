//! Listeners: accept TCP connections, terminate TLS, and serve HTTP/1.1 and HTTP/2 on them;
//! HTTP/3 over QUIC is `quic.rs`, the connection and request bounds `admission.rs`.
//!
//! A plain listener speaks HTTP/1.1 and h2c (HTTP/2 with prior knowledge); a TLS listener
//! chooses by ALPN. The listener owns the transports and the HTTP server settings
//! ([`Serving`], rebuilt on each reload), and turns each request into the pipeline's request
//! type (`Request<ClientBody>`) before handing it to a [`Handler`]: the node, which runs it
//! through `pipeline::run` on the current config generation, so keep-alive connections follow
//! reloads. A connection closed under a client still sending lingers first (see [`Linger`]).
//! On shutdown a listener stops accepting and lets its connections finish their requests
//! (HTTP/2 gets GOAWAY, HTTP/1 closes after the response).

pub mod admission;
mod linger;
pub mod quic;
pub mod tls;

pub use linger::{DEFAULT_LINGER_MAX_BYTES, DEFAULT_LINGER_TIMEOUT, Linger, LingeringStream};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use http::{HeaderValue, Request, Response};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::body::{ClientBody, ResponseBody};
use crate::client_cert::ClientCert;
use crate::telemetry::chain;
use crate::telemetry::metrics::ConnectionCounters;

/// The connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// The client's IP address as text (IPv4-mapped addresses unmapped), formatted once per
    /// connection for `X-Forwarded-For` and the access log.
    pub client_ip: HeaderValue,
    /// `"http"` or `"https"`.
    pub proto: &'static str,
    /// The listener's `Alt-Svc` for HTTP/3, sent on its responses while its UDP side is up.
    pub alt_svc: Option<Arc<quic::AltSvc>>,
    /// The client's certificate (mutual TLS), verified at the handshake.
    pub client_cert: Option<Arc<ClientCert>>,
    /// The client-certificate headers of the config, removed from each request, and the one
    /// this connection's certificate is forwarded in; none when no listener names one.
    forward_cert: Option<Arc<ForwardCert>>,
}

/// The headers client certificates are forwarded in: removed from every request on every
/// listener (a client cannot set them), then set from the connection's certificate on a
/// listener that names one.
#[derive(Debug)]
struct ForwardCert {
    remove: Vec<http::HeaderName>,
    insert: Option<(http::HeaderName, HeaderValue)>,
}

impl ConnInfo {
    /// Describes a connection from `remote`; `proto` is `"http"` or `"https"`.
    pub fn new(remote: SocketAddr, proto: &'static str) -> Self {
        let ip = remote.ip().to_canonical().to_string();
        Self {
            remote,
            client_ip: HeaderValue::from_str(&ip)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            proto,
            alt_svc: None,
            client_cert: None,
            forward_cert: None,
        }
    }

    /// Adds the client certificate a TLS handshake verified (from its chain's leaf), forwarded
    /// as `settings` says.
    pub fn with_client_cert(
        mut self,
        chain: Option<&[rustls_pki_types::CertificateDer<'_>]>,
        settings: &ListenerTls,
    ) -> Self {
        self.client_cert = chain.and_then(|c| c.first()).and_then(ClientCert::from_der);
        self.forward_cert = self.forwarding(settings);
        self
    }

    /// Removes the config's client-certificate headers from this connection's requests (a
    /// listener without mutual TLS).
    pub fn with_cert_headers_removed(mut self, settings: &ListenerTls) -> Self {
        self.forward_cert = self.forwarding(settings);
        self
    }

    fn forwarding(&self, settings: &ListenerTls) -> Option<Arc<ForwardCert>> {
        if settings.cert_headers.is_empty() {
            return None;
        }
        let insert = settings
            .client_cert_header
            .as_ref()
            .zip(self.client_cert.as_ref())
            .and_then(|(name, cert)| {
                let encoded: String =
                    form_urlencoded::byte_serialize(cert.pem.as_bytes()).collect();
                Some((name.clone(), HeaderValue::try_from(encoded).ok()?))
            });
        Some(Arc::new(ForwardCert {
            remove: settings.cert_headers.to_vec(),
            insert,
        }))
    }

    /// What the connection adds to each of its requests: the client certificate in the
    /// extensions (for authorizers, `$context` and Lambda events) and in the forwarded header,
    /// which a client cannot set itself.
    fn stamp<B>(&self, request: &mut Request<B>) {
        if let Some(forward) = &self.forward_cert {
            let headers = request.headers_mut();
            for name in &forward.remove {
                headers.remove(name);
            }
            if let Some((name, value)) = &forward.insert {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(cert) = &self.client_cert {
            request.extensions_mut().insert(cert.clone());
        }
    }
}

/// What serves the requests a listener receives.
pub trait Handler: Send + Sync + 'static {
    /// The listener settings of the current config.
    fn serving(&self) -> Arc<Serving>;

    /// The node's admission state (connections and requests let in).
    fn admission(&self) -> &Arc<admission::Admission>;

    /// Answers one request (never with an error: failures are gateway responses).
    fn handle(
        self: Arc<Self>,
        conn: ConnInfo,
        request: Request<ClientBody>,
    ) -> impl Future<Output = Result<Response<ResponseBody>, std::convert::Infallible>> + Send + 'static;
}

/// A `listen` entry's encryption, as the current config says.
#[derive(Debug, Clone, Default)]
pub struct ListenerTls {
    /// Present for a TLS listener.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Present when it serves HTTP/3.
    pub quic: Option<Arc<quinn::ServerConfig>>,
    /// The certificates it serves and the truststore it checks clients against, for the
    /// node's rotation check and `/admin/certificates`.
    pub certs: Vec<Arc<tls::CertSlot>>,
    pub truststore: Option<Arc<tls::Truststore>>,
    /// The header client certificates are forwarded in.
    pub client_cert_header: Option<http::HeaderName>,
    /// Every listener's `client_cert_header`: no client may send these itself.
    pub cert_headers: Arc<[http::HeaderName]>,
}

impl Serving {
    /// Every certificate the listeners serve, each once (a domain's is every TLS listener's).
    pub fn certificates(&self) -> Vec<Arc<tls::CertSlot>> {
        let mut all: Vec<Arc<tls::CertSlot>> = Vec::new();
        for cert in self.listeners.iter().flat_map(|l| &l.certs) {
            if !all.iter().any(|c| Arc::ptr_eq(c, cert)) {
                all.push(cert.clone());
            }
        }
        all
    }
}

/// How listeners serve new connections, as the current config says.
#[derive(Debug)]
pub struct Serving {
    /// HTTP/1 and HTTP/2 server settings.
    pub http: auto::Builder<TokioExecutor>,
    /// Per `listen` entry: its TLS, QUIC and mutual TLS settings.
    pub listeners: Vec<ListenerTls>,
    /// The longest a TLS handshake may take (`limits.header_read_timeout_ms`, like the head).
    pub handshake_timeout: Duration,
    /// The largest request head (`limits.max_header_bytes`).
    pub max_header_bytes: usize,
    pub linger: Linger,
    /// The connections and requests the node lets in.
    pub admission: admission::AdmissionLimits,
    /// The longest a request body may stall (slow POST).
    pub body_read_timeout: Duration,
}

impl Serving {
    /// Settings for listeners with these TLS configs (one per `listen` entry), header limits and
    /// lingering.
    pub fn new(listeners: Vec<ListenerTls>, limits: &ServingLimits) -> Self {
        let ServingLimits {
            header_read_timeout,
            max_header_bytes,
            max_headers,
            max_streams,
            linger,
            admission,
            body_read_timeout,
        } = *limits;
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_buf_size(max_header_bytes)
            .max_headers(max_headers)
            .keep_alive(true);
        http.http2()
            .timer(TokioTimer::new())
            // RFC 8441: WebSocket connections over HTTP/2 (extended CONNECT).
            .enable_connect_protocol()
            .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(max_streams)
            // Rapid reset (CVE-2023-44487): a client that opens and cancels streams faster
            // than they are served gets GOAWAY; so does one whose streams keep erroring.
            .max_pending_accept_reset_streams(MAX_PENDING_RESET_STREAMS)
            .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS);
        Self {
            http,
            listeners,
            handshake_timeout: header_read_timeout,
            max_header_bytes,
            linger,
            admission,
            body_read_timeout,
        }
    }
}

/// What [`Serving::new`] takes from the config's `limits`.
#[derive(Debug, Clone, Copy)]
pub struct ServingLimits {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_streams: u32,
    pub linger: Linger,
    pub admission: admission::AdmissionLimits,
    pub body_read_timeout: Duration,
}

/// HTTP/2 streams a client may reset before the server has accepted them (hyper's default).
const MAX_PENDING_RESET_STREAMS: usize = 20;
/// HTTP/2 streams the server may reset for a client's errors before it sends GOAWAY.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// Accepts connections on `listener` (the `index`th `listen` entry) until `shutdown` turns
/// true, then waits for its connections to finish.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    index: usize,
    handler: Arc<H>,
    counters: Arc<ConnectionCounters>,
    alt_svc: Option<Arc<quic::AltSvc>>,
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
                let limits = handler.serving().admission;
                let Ok(permit) = handler.admission().connection(remote.ip(), &limits) else {
                    // Over a connection bound: closed before TLS or HTTP (counted).
                    drop(stream);
                    continue;
                };
                let watcher = graceful.watcher();
                let handler = handler.clone();
                let open = counters.accepted();
                let counters = counters.clone();
                let alt_svc = alt_svc.clone();
                tokio::spawn(async move {
                    let tcp = Tcp {
                        stream,
                        remote,
                        index,
                        alt_svc,
                    };
                    serve_connection(tcp, handler, &counters, watcher).await;
                    drop(open);
                    drop(permit);
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

/// An accepted TCP connection of the `index`th `listen` entry.
struct Tcp {
    stream: TcpStream,
    remote: SocketAddr,
    index: usize,
    alt_svc: Option<Arc<quic::AltSvc>>,
}

async fn serve_connection<H: Handler>(
    Tcp {
        stream,
        remote,
        index,
        alt_svc,
    }: Tcp,
    handler: Arc<H>,
    counters: &ConnectionCounters,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let _ = stream.set_nodelay(true);
    let serving = handler.serving();
    let stream = LingeringStream::new(stream, serving.linger);
    // Borrowed for the connection's life (`serving` is held as long); a listener a reload
    // dropped from `listen` serves with defaults until the restart.
    let fallback;
    let settings = match serving.listeners.get(index) {
        Some(settings) => settings,
        None => {
            fallback = ListenerTls::default();
            &fallback
        }
    };
    let mut conn = ConnInfo::new(
        remote,
        if settings.tls.is_some() {
            "https"
        } else {
            "http"
        },
    );
    conn.alt_svc = alt_svc;
    let result = match settings.tls.clone() {
        None => {
            let service = service(
                handler,
                conn.with_cert_headers_removed(settings),
                serving.body_read_timeout,
            );
            let connection = serving
                .http
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            watcher.watch(connection).await
        }
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let handshake =
                tokio::time::timeout(serving.handshake_timeout, acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    counters.tls_failed(false);
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    counters.tls_failed(true);
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let conn = conn.with_client_cert(stream.get_ref().1.peer_certificates(), settings);
            let service = service(handler, conn, serving.body_read_timeout);
            let connection = serving
                .http
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            watcher.watch(connection).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%remote, error = %chain(e.as_ref()), "connection ended with an error");
    }
}

/// The hyper service of a connection: each request stamped with what the connection adds,
/// then the handler's own future, unwrapped (the pipeline's future is kilobytes large, and
/// each layer around it costs a copy of it per request).
fn service<H: Handler>(
    handler: Arc<H>,
    conn: ConnInfo,
    body_read_timeout: Duration,
) -> impl hyper::service::Service<
    Request<hyper::body::Incoming>,
    Response = Response<ResponseBody>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response<ResponseBody>, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone {
    let service = move |request: Request<hyper::body::Incoming>| {
        let mut request =
            request.map(|body| ClientBody::from(body).with_idle_timeout(body_read_timeout));
        conn.stamp(&mut request);
        handler.clone().handle(conn.clone(), request)
    };
    service_fn(service)
}

#[cfg(test)]
mod tests {
    use super::ConnInfo;

    #[test]
    fn client_ip_is_unmapped_text() {
        let conn = ConnInfo::new("[::ffff:10.1.2.3]:5000".parse().unwrap(), "http");
        assert_eq!(conn.client_ip, "10.1.2.3");
        let conn = ConnInfo::new("[2001:db8::1]:443".parse().unwrap(), "https");
        assert_eq!(conn.client_ip, "2001:db8::1");
    }
}
