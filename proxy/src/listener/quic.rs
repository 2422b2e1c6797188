//! HTTP/3 over QUIC (`listen[].http3: true`), with quinn, h3 and h3-quinn.
//!
//! A TLS listener with `http3` also binds UDP on its port. Each QUIC connection is served by
//! h3; each request becomes a `Request<ClientBody>` (its body `ClientBody::Boxed` over the
//! request stream) and goes to the same [`Handler`] as the TCP listener's, so HTTP/3 runs the
//! same pipeline. The certificates are the TCP listener's (one `rustls` resolver: a rotated
//! certificate serves both), with ALPN `h3` and 0-RTT off: early data can be replayed by
//! anyone who captured it, and a gateway forwards non-idempotent requests.
//!
//! While the UDP listener is up, the TCP listener's responses carry `Alt-Svc` ([`AltSvc`]).
//! On shutdown each connection gets GOAWAY (no new requests) and its requests finish.
//!
//! h3 0.0.8 panics if a request stream's receive half is told to stop sending, or asked its
//! id, while one of its reads is pending (hyperium/h3 issue 330). [`H3RequestBody`] never
//! does either: it only polls for data and trailers, and dropping it only drops the stream
//! (quinn then sends STOP_SENDING itself).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::{HeaderValue, Request, Response, Version};
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use tokio::sync::watch;

use super::{ConnInfo, Handler};
use crate::body::ClientBody;
use crate::telemetry::chain;
use crate::telemetry::metrics::ConnectionCounters;

/// `listen[].http3`: QUIC's transport settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http3 {
    /// A connection with nothing sent or received for this long is closed.
    pub idle_timeout: Duration,
    /// Requests a client may have open at once on one connection.
    pub max_concurrent_streams: u32,
    /// What a client may send on one request before the gateway reads it.
    pub stream_window: u32,
    /// What a client may send on one connection, all requests together.
    pub connection_window: u32,
}

impl Default for Http3 {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            max_concurrent_streams: 100,
            stream_window: 1024 * 1024,
            connection_window: 8 * 1024 * 1024,
        }
    }
}

/// The `Alt-Svc` header a TCP listener sends while its UDP listener is up.
#[derive(Debug)]
pub struct AltSvc {
    up: AtomicBool,
    value: HeaderValue,
}

impl AltSvc {
    /// `h3=":PORT"; ma=86400`, not yet up.
    pub fn new(port: u16) -> Self {
        Self {
            up: AtomicBool::new(false),
            value: HeaderValue::try_from(format!("h3=\":{port}\"; ma=86400"))
                .unwrap_or_else(|_| HeaderValue::from_static("clear")),
        }
    }

    /// The header to send now, if any.
    pub fn current(&self) -> Option<&HeaderValue> {
        self.up.load(Ordering::Relaxed).then_some(&self.value)
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }
}

/// The QUIC server config for a TLS listener's rustls config: ALPN `h3`, no early data.
pub fn server_config(
    tls: &rustls::ServerConfig,
    settings: &Http3,
) -> Result<Arc<quinn::ServerConfig>, String> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(tls))
        .map_err(|e| e.to_string())?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(settings.idle_timeout).map_err(|e| e.to_string())?,
        ))
        .max_concurrent_bidi_streams(settings.max_concurrent_streams.into())
        // A client's control stream and QPACK's two, with room for grease.
        .max_concurrent_uni_streams(8u32.into())
        .stream_receive_window(settings.stream_window.into())
        .receive_window(settings.connection_window.into());
    config.transport_config(Arc::new(transport));
    Ok(Arc::new(config))
}

/// The receive buffer asked of the kernel for a UDP listener (it may grant less:
/// `net.core.rmem_max`).
const UDP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Binds the UDP side of a listener at `addr` with its QUIC `config`, with large socket
/// buffers where the kernel allows them (GSO and GRO are quinn's, used where the platform has
/// them).
pub fn bind(
    addr: SocketAddr,
    config: Arc<quinn::ServerConfig>,
) -> std::io::Result<quinn::Endpoint> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(true);
    }
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for QUIC"))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        // Without a server config the endpoint would drop every connection attempt; each
        // connection is then accepted with the current generation's (`Incoming::accept_with`).
        Some(Arc::unwrap_or_clone(config)),
        socket.into(),
        runtime,
    )
}

/// Accepts QUIC connections on `endpoint` (the `index`th `listen` entry) until `shutdown`
/// turns true, then sends each connection GOAWAY and waits for its requests.
///
/// A reload that turns the listener's `http3` off takes effect at the next restart, like any
/// change to `listen`: until then its connections keep the last QUIC config it had.
pub async fn serve<H: Handler>(
    endpoint: quinn::Endpoint,
    index: usize,
    handler: Arc<H>,
    counters: Arc<ConnectionCounters>,
    alt_svc: Arc<AltSvc>,
    mut shutdown: watch::Receiver<bool>,
) {
    alt_svc.set_up(true);
    let quic = |serving: &super::Serving| serving.listeners.get(index).and_then(|l| l.quic.clone());
    let mut last = quic(&handler.serving());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = shutdown.wait_for(|&stop| stop) => break,
        };
        let Some(incoming) = incoming else { break };
        let serving = handler.serving();
        let Ok(permit) = handler
            .admission()
            .connection(incoming.remote_address().ip(), &serving.admission)
        else {
            incoming.refuse();
            continue;
        };
        if let Some(current) = quic(&serving) {
            last = Some(current);
        }
        let settings = serving.listeners.get(index).cloned().unwrap_or_default();
        let Some(config) = last.clone() else {
            incoming.refuse();
            continue;
        };
        let handler = handler.clone();
        let open = counters.accepted();
        let counters = counters.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let accept = Accept {
                incoming,
                config,
                settings,
            };
            serve_connection(accept, handler, &counters, shutdown).await;
            drop(open);
            drop(permit);
        });
    }
    alt_svc.set_up(false);
    while connections.join_next().await.is_some() {}
    endpoint.close(0u32.into(), b"shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

/// A connection attempt and what to accept it with.
struct Accept {
    incoming: quinn::Incoming,
    config: Arc<quinn::ServerConfig>,
    /// The listener's settings (for its client-certificate header).
    settings: super::ListenerTls,
}

async fn serve_connection<H: Handler>(
    Accept {
        incoming,
        config,
        settings,
    }: Accept,
    handler: Arc<H>,
    counters: &ConnectionCounters,
    mut shutdown: watch::Receiver<bool>,
) {
    let remote = incoming.remote_address();
    let serving = handler.serving();
    let connecting = match incoming.accept_with(config) {
        Ok(connecting) => connecting,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "QUIC connection refused");
            return;
        }
    };
    let connection = match tokio::time::timeout(serving.handshake_timeout, connecting).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => {
            counters.tls_failed(false);
            tracing::debug!(%remote, error = %e, "QUIC handshake failed");
            return;
        }
        Err(_) => {
            counters.tls_failed(true);
            tracing::debug!(%remote, "QUIC handshake timed out");
            return;
        }
    };
    let chain = connection.peer_identity().and_then(|id| {
        id.downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
            .ok()
    });
    let conn = ConnInfo::new(remote, "https")
        .with_client_cert(chain.as_deref().map(Vec::as_slice), &settings);
    let mut h3 = match h3::server::builder()
        .max_field_section_size(serving.max_header_bytes as u64)
        .build::<_, Bytes>(h3_quinn::Connection::new(connection))
        .await
    {
        Ok(h3) => h3,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "HTTP/3 connection failed");
            return;
        }
    };
    let mut closing = false;
    loop {
        if !closing && *shutdown.borrow() {
            closing = true;
            // GOAWAY: requests already accepted finish, new ones are refused.
            if let Err(e) = h3.shutdown(0).await {
                tracing::debug!(%remote, error = %e, "HTTP/3 GOAWAY failed");
                break;
            }
        }
        let accepted = tokio::select! {
            accepted = h3.accept() => accepted,
            _ = shutdown.wait_for(|&stop| stop), if !closing => continue,
        };
        match accepted {
            Ok(Some(resolver)) => {
                let handler = handler.clone();
                let conn = conn.clone();
                let timeout = serving.handshake_timeout;
                let body_read_timeout = serving.body_read_timeout;
                tokio::spawn(async move {
                    let resolved = tokio::time::timeout(timeout, resolver.resolve_request()).await;
                    match resolved {
                        Ok(Ok((request, stream))) => {
                            serve_request(handler, conn, request, stream, body_read_timeout).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(remote = %conn.remote, error = %e, "HTTP/3 request refused")
                        }
                        Err(_) => {
                            tracing::debug!(remote = %conn.remote, "HTTP/3 request head timed out")
                        }
                    }
                });
            }
            Ok(None) => break,
            Err(e) => {
                if !e.is_h3_no_error() {
                    tracing::debug!(%remote, error = %e, "HTTP/3 connection ended with an error");
                }
                break;
            }
        }
    }
}

type Stream<S> = h3::server::RequestStream<S, Bytes>;

async fn serve_request<H: Handler>(
    handler: Arc<H>,
    conn: ConnInfo,
    request: Request<()>,
    stream: Stream<h3_quinn::BidiStream<Bytes>>,
    body_read_timeout: Duration,
) {
    let remote = conn.remote;
    let (mut send, recv) = stream.split();
    let (mut parts, ()) = request.into_parts();
    parts.version = Version::HTTP_3;
    let body = ClientBody::boxed(H3RequestBody {
        stream: recv,
        state: ReadState::Data,
    })
    .with_idle_timeout(body_read_timeout);
    let mut request = Request::from_parts(parts, body);
    conn.stamp(&mut request);
    let Ok(response) = handler.handle(conn, request).await;
    if let Err(e) = send_response(&mut send, response).await {
        tracing::debug!(%remote, error = %chain(e.as_ref()), "HTTP/3 response not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::AltSvc;

    #[test]
    fn alt_svc_is_sent_only_while_up() {
        let alt = AltSvc::new(8443);
        assert_eq!(alt.current(), None);
        alt.set_up(true);
        assert_eq!(alt.current().unwrap(), "h3=\":8443\"; ma=86400");
        alt.set_up(false);
        assert_eq!(alt.current(), None);
    }
}

/// Header fields HTTP/3 forbids (RFC 9114 §4.2): the connection's own, meaningless here.
const CONNECTION_FIELDS: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

async fn send_response(
    send: &mut Stream<h3_quinn::SendStream<Bytes>>,
    response: Response<crate::body::ResponseBody>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (mut parts, mut body) = response.into_parts();
    for name in CONNECTION_FIELDS {
        parts.headers.remove(name);
    }
    send.send_response(Response::from_parts(parts, ())).await?;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                // The origin's body broke off: the client must not take it as whole.
                send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                return Err(e);
            }
        };
        match frame.into_data() {
            Ok(data) => {
                if !data.is_empty() {
                    send.send_data(data).await?;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send.send_trailers(trailers).await?;
                    return Ok(());
                }
            }
        }
    }
    send.finish().await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Data,
    Trailers,
    Done,
}

/// A request's body as it arrives on its HTTP/3 stream.
struct H3RequestBody {
    stream: Stream<h3_quinn::RecvStream>,
    state: ReadState,
}

impl Body for H3RequestBody {
    type Data = Bytes;
    type Error = h3::error::StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        loop {
            match self.state {
                ReadState::Data => match ready!(self.stream.poll_recv_data(cx)) {
                    Ok(Some(mut data)) => {
                        let bytes = data.copy_to_bytes(data.remaining());
                        return Poll::Ready(Some(Ok(Frame::data(bytes))));
                    }
                    Ok(None) => self.state = ReadState::Trailers,
                    Err(e) => {
                        self.state = ReadState::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                ReadState::Trailers => {
                    let trailers = ready!(self.stream.poll_recv_trailers(cx));
                    self.state = ReadState::Done;
                    return Poll::Ready(trailers.map(|t| t.map(Frame::trailers)).transpose());
                }
                ReadState::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == ReadState::Done
    }
}
