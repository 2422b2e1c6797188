//! [`Origin`]: a real HTTP origin (hyper, HTTP/1.1 + h2c, optionally TLS) that records what
//! it receives, plus the misbehaving servers the error tests need.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------------------------------

/// Body type origin handlers respond with.
pub type OriginBody = BoxBody<Bytes, std::io::Error>;

/// A request as the origin received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body was read to its end without error.
    pub complete: bool,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// All values of a header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<non-utf8>").to_string())
            .collect()
    }

    pub fn path_and_query(&self) -> String {
        self.uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default()
    }
}

type Handler = Arc<
    dyn Fn(Recorded) -> Pin<Box<dyn Future<Output = Response<OriginBody>> + Send>> + Send + Sync,
>;

#[derive(Debug, Default)]
struct OriginState {
    requests: Mutex<Vec<Recorded>>,
    /// Requests whose head arrived.
    started: AtomicUsize,
    /// Requests whose body was read completely.
    complete: AtomicUsize,
    /// Body bytes received, all requests together, updated as frames arrive.
    bytes_received: AtomicU64,
    connections: AtomicUsize,
}

/// A hyper server on `127.0.0.1:0` (HTTP/1.1 and h2c, or TLS with ALPN h2/http1.1).
#[derive(Debug)]
pub struct Origin {
    pub addr: SocketAddr,
    tls: bool,
    state: Arc<OriginState>,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    /// An origin answering 200 with body `origin <METHOD> <path?query>` and header `x-origin: 1`.
    pub async fn echo() -> Origin {
        Self::start(|r: &Recorded| {
            Response::builder()
                .header("x-origin", "1")
                .header("content-type", "text/plain")
                .body(full(format!("origin {} {}", r.method, r.path_and_query())))
                .unwrap()
        })
        .await
    }

    /// An origin with a synchronous handler (called once the request body has been read).
    pub async fn start<F>(f: F) -> Origin
    where
        F: Fn(&Recorded) -> Response<OriginBody> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        Self::start_async(move |r| {
            let f = f.clone();
            async move { f(&r) }
        })
        .await
    }

    /// An origin with an async handler (called once the request body has been read).
    pub async fn start_async<F, Fut>(f: F) -> Origin
    where
        F: Fn(Recorded) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<OriginBody>> + Send + 'static,
    {
        Self::serve(None, f).await
    }

    /// An https origin using `tls` (a rustls server config).
    pub async fn start_tls<F>(tls: rustls::ServerConfig, f: F) -> Origin
    where
        F: Fn(&Recorded) -> Response<OriginBody> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        Self::serve(Some(Arc::new(tls)), move |r| {
            let f = f.clone();
            async move { f(&r) }
        })
        .await
    }

    async fn serve<F, Fut>(tls: Option<Arc<rustls::ServerConfig>>, f: F) -> Origin
    where
        F: Fn(Recorded) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<OriginBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |r| Box::pin(f(r)));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let state = Arc::new(OriginState::default());
        let st = state.clone();
        let is_tls = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                st.connections.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                let handler = handler.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let st = st.clone();
                        let handler = handler.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(st, handler, req).await) }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acc) => {
                            if let Ok(tls) = acc.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        Origin {
            addr,
            tls: is_tls,
            state,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Requests received so far (those whose body read finished, completely or not).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The only request received; panics unless exactly one.
    pub fn single_request(&self) -> Recorded {
        let reqs = self.requests();
        assert_eq!(
            reqs.len(),
            1,
            "origin expected exactly one request, got {reqs:#?}"
        );
        reqs.into_iter().next().unwrap()
    }

    /// Requests received so far whose path (without the query) is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.uri.path() == path)
            .collect()
    }

    /// How many requests whose path (without the query) is `path` the origin received.
    pub fn count_to(&self, path: &str) -> usize {
        self.requests_to(path).len()
    }

    /// Requests whose head reached the origin.
    pub fn request_count(&self) -> usize {
        self.state.started.load(Ordering::SeqCst)
    }

    /// Requests whose body the origin read completely.
    pub fn complete_count(&self) -> usize {
        self.state.complete.load(Ordering::SeqCst)
    }

    /// Body bytes received so far, all requests together.
    pub fn bytes_received(&self) -> u64 {
        self.state.bytes_received.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    pub fn connection_count(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    st: Arc<OriginState>,
    handler: Handler,
    req: Request<Incoming>,
) -> Response<OriginBody> {
    st.started.fetch_add(1, Ordering::SeqCst);
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut complete = true;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    st.bytes_received
                        .fetch_add(data.len() as u64, Ordering::SeqCst);
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(_)) => {
                complete = false;
                break;
            }
        }
    }
    let rec = Recorded {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        body: Bytes::from(buf),
        complete,
    };
    if complete {
        st.complete.fetch_add(1, Ordering::SeqCst);
    }
    st.requests.lock().unwrap().push(rec.clone());
    if !complete {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(full("incomplete body"))
            .unwrap();
    }
    handler(rec).await
}

/// A response with `status`, `headers` and a complete `body`, for origin handlers.
pub fn reply(
    status: u16,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<OriginBody> {
    let mut b = Response::builder().status(status);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(full(body)).unwrap()
}

/// A complete body.
pub fn full(b: impl Into<Bytes>) -> OriginBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// Byte `i` of the test pattern: `i % 251`, so a shifted, dropped or repeated chunk shows.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// `len` bytes of the test pattern starting at `offset`.
pub fn pattern_chunk(offset: u64, len: usize) -> Bytes {
    (0..len as u64)
        .map(|i| pattern_byte(offset + i))
        .collect::<Vec<u8>>()
        .into()
}

/// Check `data` against the pattern at `offset`.
pub fn is_pattern(offset: u64, data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(i, b)| *b == pattern_byte(offset + i as u64))
}

/// A streamed body of `total` bytes of the test pattern, sent in `chunk`-sized frames. Before each
/// frame it waits (up to 10 s) until `gate(bytes_sent_so_far)` returns true; a test uses this to
/// prove the receiver got the first bytes before the sender produced the rest (nothing buffers
/// the whole body) and to watch how far the sender got.
pub fn stream_body(
    total: u64,
    chunk: usize,
    gate: impl Fn(u64) -> bool + Send + Sync + 'static,
) -> OriginBody {
    let s = futures_util::stream::unfold((0u64, gate), move |(sent, gate)| async move {
        if sent >= total {
            return None;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gate(sent) {
            if Instant::now() > deadline {
                let err = std::io::Error::other("stream gate never opened");
                return Some((Err(err), (total, gate)));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let n = (total - sent).min(chunk as u64) as usize;
        let frame = Frame::data(pattern_chunk(sent, n));
        Some((Ok(frame), (sent + n as u64, gate)))
    });
    BodyExt::boxed(StreamBody::new(s))
}

/// An address on 127.0.0.1 where nothing listens (bound, then closed).
pub async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

/// A TCP server that accepts connections, reads a little, then resets them (RST via
/// SO_LINGER 0). Returns its address and a counter of accepted connections.
pub async fn resetting_server() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                #[allow(deprecated)]
                let _ = s.set_linger(Some(Duration::ZERO));
                drop(s);
            });
        }
    });
    (a, count, task)
}
