//! A WebSocket client for the tests: tokio-tungstenite over a plain TCP connection to the
//! gateway, with the headers and subprotocols a test asks for.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

pub type Ws = WebSocketStream<TcpStream>;

/// Any WebSocket client stream (over TCP, or over an HTTP/2 stream).
pub trait WsIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> WsIo for T {}

/// The handshake's outcome: a connection and the 101's headers, or the refusal's status and
/// body.
#[derive(Debug)]
pub enum Handshake {
    Open(Box<Ws>, http::HeaderMap),
    Refused(u16, String),
}

impl Handshake {
    #[track_caller]
    pub fn open(self) -> Ws {
        match self {
            Handshake::Open(ws, _) => *ws,
            Handshake::Refused(status, body) => panic!("refused with {status}: {body}"),
        }
    }

    #[track_caller]
    pub fn refused(self) -> (u16, String) {
        match self {
            Handshake::Open(..) => panic!("the connection opened"),
            Handshake::Refused(status, body) => (status, body),
        }
    }
}

/// Opens `ws://addr{path}` with `headers`.
pub async fn ws_connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Handshake {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, response)) => Handshake::Open(Box::new(ws), response.headers().clone()),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Handshake::Refused(status, body)
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// Sends a text message.
pub async fn ws_send<S: WsIo>(ws: &mut WebSocketStream<S>, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// What came from the server next.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A text message, or a binary one as lossy text.
    Message(String),
    /// A close frame, with its code if it had one.
    Closed(Option<u16>),
    /// Nothing within the time given, or the stream ended without a close frame.
    Nothing,
}

/// The next message or close frame within `within` (pings and pongs skipped).
pub async fn ws_receive<S: WsIo>(ws: &mut WebSocketStream<S>, within: Duration) -> Received {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await else {
            return Received::Nothing;
        };
        match frame {
            Message::Text(t) => return Received::Message(t.to_string()),
            Message::Binary(b) => {
                return Received::Message(String::from_utf8_lossy(&b).into_owned());
            }
            Message::Close(frame) => {
                return Received::Closed(frame.map(|CloseFrame { code, .. }| code.into()));
            }
            _ => continue,
        }
    }
}

/// The next text or binary message within `within`, as text; `None` when none came.
pub async fn ws_next<S: WsIo>(ws: &mut WebSocketStream<S>, within: Duration) -> Option<String> {
    match ws_receive(ws, within).await {
        Received::Message(text) => Some(text),
        _ => None,
    }
}

/// The next message, which must come within 5 s.
pub async fn ws_recv<S: WsIo>(ws: &mut WebSocketStream<S>) -> String {
    ws_next(ws, Duration::from_secs(5))
        .await
        .expect("a message within 5 s")
}

/// Reads until the server's close frame; its code (`None`: the stream ended without one).
pub async fn ws_close_code<S: WsIo>(ws: &mut WebSocketStream<S>, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match ws_receive(ws, deadline - tokio::time::Instant::now()).await {
            Received::Message(_) => continue,
            Received::Closed(code) => return code,
            Received::Nothing => return None,
        }
    }
}

/// Opens `http://addr{path}` as a WebSocket over HTTP/2 (h2c with prior knowledge), with an
/// extended CONNECT (RFC 8441); the 200's headers, or the refusal's status.
pub async fn ws_connect_h2(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
        http::HeaderMap,
    ),
    u16,
> {
    use http_body_util::Empty;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    // The server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) arrive before this answer.
    let probe = http::Request::get(format!("http://{addr}/"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let _ = sender.send_request(probe).await.unwrap();
    let mut request = http::Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri(format!("http://{addr}{path}"))
        .header("sec-websocket-version", "13");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Empty::<bytes::Bytes>::new()).unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut response = sender.send_request(request).await.unwrap();
    if response.status() != http::StatusCode::OK {
        return Err(response.status().as_u16());
    }
    let headers = response.headers().clone();
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let ws = WebSocketStream::from_raw_socket(
        hyper_util::rt::TokioIo::new(upgraded),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    Ok((ws, headers))
}
