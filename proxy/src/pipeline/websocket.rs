//! WebSocket APIs on the pipeline: `$connect` (the upgrade, authorized, throttled and
//! answered by its integration like any request before the 101), each connection's session
//! (messages routed by the API's selection expression to their route's integration, replies
//! for two-way routes, `@connections` messages, pings, limits and timeouts), `$disconnect`
//! when it ends, and the `@connections` routes.
//!
//! The node takes the [`Accepted`] connection from the 101 response and runs its session with
//! [`serve`] once hyper hands over the socket; the session reads the node's current generation
//! for each message, so a reload changes the routes of open connections without closing them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{
    CONNECTION, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE, USER_AGENT,
};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::{GatewayError, InBody, RequestContext};
use crate::auth::keys::ApiKey;
use crate::body::{ClientBody, ResponseBody};
use crate::generation::{Generation, RouteTarget};
use crate::listener::ConnInfo;
use crate::plugins::bindings::Principal;
use crate::telemetry::{RecordExtras, WebSocketEvent};
use crate::websocket::{
    Connection, LocalConnections, Opened, RouteResponse, WebSocketSettings, close_code,
};

/// The connection id, on every integration request of a WebSocket API.
pub static X_CONNECTION_ID: HeaderName = HeaderName::from_static("x-edgeway-connection-id");
/// The route key the request is for (`$connect`, a message's key, `$disconnect`).
pub static X_ROUTE_KEY: HeaderName = HeaderName::from_static("x-edgeway-route-key");
/// `CONNECT`, `MESSAGE` or `DISCONNECT`.
pub static X_EVENT_TYPE: HeaderName = HeaderName::from_static("x-edgeway-event-type");
/// A message's id (MESSAGE only).
pub static X_MESSAGE_ID: HeaderName = HeaderName::from_static("x-edgeway-message-id");

/// What a session needs from the node: the generation messages are served with, and the
/// registry its connection is listed in.
pub trait Host: Send + Sync + 'static {
    fn current(&self) -> Arc<Generation>;
    fn registry(&self) -> &LocalConnections;
}

/// A connection `$connect` accepted, waiting for its socket: put in the 101 response's
/// extensions for the node to [`serve`].
#[derive(Clone)]
pub struct Accepted(Arc<Mutex<Option<Session>>>);

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Accepted")
    }
}

struct Session {
    upgrade: hyper::upgrade::OnUpgrade,
    connection: Arc<Connection>,
    queue: mpsc::Receiver<Bytes>,
    caller: Caller,
    conn: ConnInfo,
    settings: Arc<WebSocketSettings>,
}

/// Who opened the connection, as `$connect` found: messages run as them.
#[derive(Debug, Clone)]
struct Caller {
    principal: Option<Arc<Principal>>,
    api_key: Option<Arc<ApiKey>>,
}

/// `$connect`: checks the handshake (an HTTP/1.1 upgrade, or an HTTP/2 extended CONNECT), runs
/// the route's phases and integration with the connection id in `x-edgeway-connection-id`,
/// and accepts the connection when the integration answers 2xx: 101 (200 over HTTP/2), with
/// the subprotocol the integration named in `Sec-WebSocket-Protocol` if the client offered
/// it. Any other answer goes back as it is, refusing the connection.
pub(super) async fn connect<'g>(
    gateway: &'g Generation,
    ctx: &mut RequestContext<'g>,
    mut parts: Parts,
    body: ClientBody,
    settings: &Arc<WebSocketSettings>,
) -> Result<Response<ResponseBody>, GatewayError> {
    let accept = handshake(&parts)?;
    let upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or(GatewayError::UpgradeRequired(
            "WebSocket connections open with an HTTP/1.1 upgrade or an HTTP/2 extended CONNECT",
        ))?;
    let offered: Vec<String> = parts
        .headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let id = crate::websocket::new_connection_id();
    let text = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(Into::into)
    };
    let (user_agent, host): (Option<Box<str>>, Option<Box<str>>) = (text(USER_AGENT), text(HOST));
    event_headers(
        &mut parts.headers,
        &id,
        crate::websocket::CONNECT,
        "CONNECT",
        None,
    );
    let connected_at = std::time::SystemTime::now();
    ctx.websocket = Some(Box::new(WebSocketEvent {
        event_type: "CONNECT",
        connection_id: id.clone(),
        message_id: None,
        connected_at_ms: crate::websocket::epoch_ms(connected_at),
    }));
    let answer = super::routed(gateway, ctx, parts, InBody::Streaming(body)).await?;
    if !answer.status().is_success() {
        return Ok(answer);
    }
    let chosen = answer
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .filter(|p| p.to_str().is_ok_and(|p| offered.iter().any(|o| o == p)))
        .cloned();
    // The answer's body is not sent (a 101 has none); read it, so an origin's connection goes
    // back to its pool.
    tokio::spawn(async move {
        let _ = http_body_util::Limited::new(answer.into_body(), CONNECT_BODY_LIMIT)
            .collect()
            .await;
    });
    let Some(route) = ctx.route else {
        return Err(GatewayError::Internal("$connect without a route".into()));
    };
    let (connection, queue) = Connection::new(
        Opened {
            id,
            api: (*route.labels.api).into(),
            stage: (*route.labels.stage).into(),
            connected_at,
            source_ip: ctx.source_ip_text().to_str().unwrap_or_default().into(),
            user_agent,
            host,
        },
        settings.max_frame_bytes,
        settings.send_queue,
    );
    let session = Session {
        upgrade,
        connection,
        queue,
        caller: Caller {
            principal: ctx.principal.clone(),
            api_key: ctx.api_key.clone(),
        },
        conn: ctx.conn.clone(),
        settings: settings.clone(),
    };
    // Over HTTP/2 the stream is the connection once a 200 answers the CONNECT.
    let mut response = Response::new(ResponseBody::empty());
    if accept.is_some() {
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    }
    let headers = response.headers_mut();
    if let Some(accept) = accept {
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = chosen {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
        .extensions_mut()
        .insert(Accepted(Arc::new(Mutex::new(Some(session)))));
    Ok(response)
}

/// Whether the request is an HTTP/2 extended CONNECT for a WebSocket (RFC 8441): if so, it is
/// routed as the `GET` an HTTP/1.1 upgrade is (its `:protocol` stays in the extensions).
pub(super) fn extended_connect(parts: &mut Parts) -> bool {
    let websocket = parts.method == http::Method::CONNECT
        && parts
            .extensions
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    if websocket {
        parts.method = http::Method::GET;
    }
    websocket
}

/// The handshake's checks: RFC 6455 §4.2.1 for an HTTP/1.1 upgrade, with the
/// `Sec-WebSocket-Accept` value it answers with; RFC 8441 §5 for an HTTP/2 extended CONNECT
/// (`None`: it is answered with a bare 200).
fn handshake(parts: &Parts) -> Result<Option<HeaderValue>, GatewayError> {
    if parts.extensions.get::<hyper::ext::Protocol>().is_some() {
        if parts
            .headers
            .get(SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(GatewayError::BadRequest("Sec-WebSocket-Version must be 13"));
        }
        return Ok(None);
    }
    upgrade_handshake(parts).map(Some)
}

fn upgrade_handshake(parts: &Parts) -> Result<HeaderValue, GatewayError> {
    let has_token = |name: HeaderName, token: &str| {
        parts.headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(UPGRADE, "websocket") {
        return Err(GatewayError::UpgradeRequired(
            "a WebSocket API's stage takes WebSocket connections (Upgrade: websocket)",
        ));
    }
    if !has_token(CONNECTION, "upgrade") {
        return Err(GatewayError::BadRequest("Connection: Upgrade is missing"));
    }
    if parts
        .headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(GatewayError::UpgradeRequired(
            "Sec-WebSocket-Version must be 13",
        ));
    }
    let key = parts
        .headers
        .get(SEC_WEBSOCKET_KEY)
        .filter(|k| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(k.as_bytes())
                .is_ok_and(|k| k.len() == 16)
        })
        .ok_or(GatewayError::BadRequest(
            "Sec-WebSocket-Key must be 16 bytes in base64",
        ))?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).map_err(|e| GatewayError::Internal(e.to_string()))
}

fn event_headers(
    headers: &mut http::HeaderMap,
    id: &str,
    route_key: &str,
    event: &'static str,
    message_id: Option<&str>,
) {
    let value = |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static(""));
    headers.insert(X_CONNECTION_ID.clone(), value(id));
    headers.insert(X_ROUTE_KEY.clone(), value(route_key));
    headers.insert(X_EVENT_TYPE.clone(), HeaderValue::from_static(event));
    if let Some(message_id) = message_id {
        headers.insert(X_MESSAGE_ID.clone(), value(message_id));
    }
}

/// Runs the session of a connection `$connect` accepted (from the 101 response's
/// extensions), once its socket is handed over.
pub fn serve<H: Host>(response: &mut Response<ResponseBody>, host: &Arc<H>) {
    let Some(accepted) = response.extensions_mut().remove::<Accepted>() else {
        return;
    };
    let Some(session) = crate::sync::lock(&accepted.0).take() else {
        return;
    };
    // Registered before the 101 goes out: a backend that learns the id from `$connect` may
    // post to the connection as soon as the client has its answer. Messages posted before the
    // upgrade completes wait in the connection's queue.
    host.registry().register(session.connection.clone());
    tokio::spawn(run(session, host.clone()));
}

/// The most of a `$connect` answer's body read (and dropped) before its origin connection is
/// given up rather than reused.
const CONNECT_BODY_LIMIT: usize = 64 << 10;

/// How long a peer has to answer a close frame before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

async fn run<H: Host>(session: Session, host: Arc<H>) {
    let Session {
        upgrade,
        connection,
        mut queue,
        caller,
        conn,
        settings,
    } = session;
    let session = Frames {
        host: &*host,
        connection: &connection,
        caller: &caller,
        conn: &conn,
        settings: &settings,
    };
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            // The client went away after the 101: its `$connect` ran, so `$disconnect` does.
            tracing::debug!(error = %e, "WebSocket upgrade failed");
            connection.close(close_code::GOING_AWAY);
            session.disconnect().await;
            host.registry().unregister(&connection.opened.id);
            return;
        }
    };
    // A small read buffer keeps idle connections cheap; frames larger than it are read
    // into a buffer grown for them. Writes go out at once.
    let config = WebSocketConfig::default()
        .max_message_size(Some(settings.max_message_bytes))
        .max_frame_size(Some(settings.max_frame_bytes))
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let ending = session.serve(&mut ws, &mut queue).await;
    // From here `@connections` finds the connection gone.
    connection.close(ending.map_or(close_code::NORMAL, |(code, _)| code));
    if let Some((code, reason)) = ending {
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            if ws.close(Some(frame)).await.is_ok() {
                // The peer's close frame, then the end of the stream.
                while ws.next().await.is_some() {}
            }
        })
        .await;
    }
    drop(ws);
    session.disconnect().await;
    host.registry().unregister(&connection.opened.id);
}

/// One connection's session, between the upgrade and `$disconnect`.
struct Frames<'s, H> {
    host: &'s H,
    connection: &'s Arc<Connection>,
    caller: &'s Caller,
    conn: &'s ConnInfo,
    settings: &'s WebSocketSettings,
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

impl<H: Host> Frames<'_, H> {
    /// Serves frames until the connection ends; gives the close code and reason Edgeway
    /// sends, or `None` when the peer closed or went away.
    async fn serve(
        &self,
        ws: &mut Socket,
        queue: &mut mpsc::Receiver<Bytes>,
    ) -> Option<(u16, &'static str)> {
        let settings = self.settings;
        let idle = tokio::time::sleep(settings.idle_timeout);
        let lifetime = tokio::time::sleep(settings.max_duration);
        tokio::pin!(idle, lifetime);
        let start = tokio::time::Instant::now();
        let mut ping =
            tokio::time::interval_at(start + settings.ping_interval, settings.ping_interval);
        // After a long message, one late tick, not a burst of them.
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Set when a ping goes out; any frame from the peer clears it.
        let mut awaiting_pong = false;
        // A client that does not take a message within this long is gone.
        let send_timeout = settings.ping_interval.max(Duration::from_secs(10));
        loop {
            // In this order: a frame already read (a pong, say) is seen before a tick or a
            // timeout that it answers.
            let outgoing = tokio::select! {
                biased;
                code = self.connection.closed() => {
                    let reason = if code == close_code::GOING_AWAY { "going away" } else { "" };
                    return Some((code, reason));
                }
                frame = ws.next() => {
                    let frame = match frame {
                        None => return None,
                        Some(Ok(frame)) => frame,
                        Some(Err(e)) => return refusal(&e),
                    };
                    awaiting_pong = false;
                    let (data, binary) = match frame {
                        Message::Text(text) => (Bytes::from(text), false),
                        Message::Binary(data) if settings.binary => (data, true),
                        Message::Binary(_) => {
                            return Some((close_code::UNSUPPORTED_DATA, "binary frames are not accepted"));
                        }
                        Message::Pong(_) => continue,
                        // Answered by tungstenite; a client's ping keeps the connection alive.
                        Message::Ping(_) => {
                            self.touch(idle.as_mut(), settings);
                            continue;
                        }
                        // Answered by tungstenite; the stream ends next.
                        Message::Close(_) | Message::Frame(_) => continue,
                    };
                    self.touch(idle.as_mut(), settings);
                    match self.message(data, binary).await {
                        Some(reply) => reply,
                        None => continue,
                    }
                }
                Some(data) = queue.recv() => {
                    self.touch(idle.as_mut(), settings);
                    text_or_binary(data, false)
                }
                _ = ping.tick() => {
                    if awaiting_pong {
                        return Some((close_code::GOING_AWAY, "no answer to ping"));
                    }
                    awaiting_pong = true;
                    Message::Ping(Bytes::new())
                }
                () = &mut idle => return Some((close_code::GOING_AWAY, "idle timeout")),
                () = &mut lifetime => return Some((close_code::GOING_AWAY, "maximum connection duration")),
            };
            match tokio::time::timeout(send_timeout, ws.send(outgoing)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    fn touch(&self, idle: std::pin::Pin<&mut tokio::time::Sleep>, settings: &WebSocketSettings) {
        self.connection.touch();
        idle.reset(tokio::time::Instant::now() + settings.idle_timeout);
    }

    /// Routes one message and calls its route's integration; the reply to send, if any: the
    /// integration's answer on a two-way route, or an error frame.
    async fn message(&self, data: Bytes, binary: bool) -> Option<Message> {
        let gateway = self.host.current();
        let Some(stage) = gateway
            .websockets
            .get(&self.connection.opened.api, &self.connection.opened.stage)
        else {
            // The API or stage was removed by a reload.
            self.connection.close(close_code::GOING_AWAY);
            return None;
        };
        let selection = &stage.settings.route_selection;
        let reads_body = selection.reads_body();
        let body = (!binary && reads_body)
            .then(|| serde_json::from_slice::<serde_json::Value>(&data).ok())
            .flatten();
        let json = body.is_some()
            || (!binary
                && !reads_body
                && serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_ok());
        let key = if reads_body && body.is_none() {
            // Not JSON: the `$default` route.
            crate::websocket::DEFAULT.to_owned()
        } else {
            selection.evaluate(body.as_ref())
        };
        drop(body);
        let message_id = crate::websocket::new_message_id();
        let mut ctx = self.context("MESSAGE", Some(message_id.clone()));
        let request_id = ctx.request_id.clone();
        let Some(route) = stage.select(&key) else {
            let error = GatewayError::AccessDenied("no route for the message".into());
            log_failure(&gateway, ctx, &error);
            return Some(error_frame(
                &self.connection.opened.id,
                &request_id,
                "Forbidden",
            ));
        };
        let content_type = match (binary, json) {
            (true, _) => "application/octet-stream",
            (false, true) => "application/json",
            (false, false) => "text/plain; charset=utf-8",
        };
        let outcome = self
            .call(
                &gateway,
                &mut ctx,
                route,
                &route.labels.route,
                "MESSAGE",
                Some(&message_id),
                content_type,
                data,
                true,
            )
            .await;
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                if error.is_server_side() {
                    tracing::warn!(
                        request_id = request_id.to_str().unwrap_or_default(),
                        route = &*route.labels.route,
                        error = %error,
                        "WebSocket message failed"
                    );
                }
                let message = error.client_message();
                log_failure(&gateway, ctx, &error);
                return Some(error_frame(
                    &self.connection.opened.id,
                    &request_id,
                    &message,
                ));
            }
        };
        let answer = read_logged(&gateway, ctx, response, self.settings.max_message_bytes).await;
        if route.integration.response == RouteResponse::OneWay {
            return None;
        }
        Some(match answer {
            Some(reply) => text_or_binary(reply, binary),
            None => error_frame(
                &self.connection.opened.id,
                &request_id,
                "Internal server error",
            ),
        })
    }

    /// A context for one event of this connection, with its access-log fields.
    fn context<'g>(
        &self,
        event_type: &'static str,
        message_id: Option<Box<str>>,
    ) -> RequestContext<'g> {
        let mut ctx = RequestContext::new(self.conn.clone());
        ctx.websocket = Some(Box::new(WebSocketEvent {
            event_type,
            connection_id: self.connection.opened.id.clone(),
            message_id,
            connected_at_ms: self.connection.connected_at_ms(),
        }));
        ctx
    }

    /// Calls `route`'s integration for one event of this connection, as its caller, after the
    /// route's throttle when `throttled`.
    #[allow(clippy::too_many_arguments)]
    async fn call<'g>(
        &self,
        gateway: &'g Generation,
        ctx: &mut RequestContext<'g>,
        route: &'g RouteTarget,
        route_key: &str,
        event: &'static str,
        message_id: Option<&str>,
        content_type: &'static str,
        data: Bytes,
        throttled: bool,
    ) -> Result<Response<ResponseBody>, GatewayError> {
        ctx.route = Some(route);
        ctx.principal = self.caller.principal.clone();
        if let Some(key) = &self.caller.api_key {
            ctx.plan = key.plan.as_deref().and_then(|plan| {
                route
                    .access
                    .api_key
                    .as_ref()
                    .and_then(|check| check.plans.iter().find(|p| *p.name == *plan))
            });
            ctx.api_key = Some(key.clone());
        }
        if throttled {
            super::throttle::check(gateway, ctx).await?;
        }
        let mut request = Request::new(());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = http::Uri::from_static("/");
        let headers = request.headers_mut();
        event_headers(
            headers,
            &self.connection.opened.id,
            route_key,
            event,
            message_id,
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        if let Some(host) = self
            .connection
            .opened
            .host
            .as_deref()
            .and_then(|h| HeaderValue::from_str(h).ok())
        {
            headers.insert(HOST, host);
        }
        let (parts, ()) = request.into_parts();
        super::spans::integration(gateway, ctx, parts, InBody::Buffered(data)).await
    }

    /// `$disconnect`, if the API has one (best effort: its outcome is only logged).
    async fn disconnect(&self) {
        let gateway = self.host.current();
        let Some(route) = gateway
            .websockets
            .get(&self.connection.opened.api, &self.connection.opened.stage)
            .and_then(|stage| stage.disconnect())
        else {
            return;
        };
        let mut ctx = self.context("DISCONNECT", None);
        let outcome = self
            .call(
                &gateway,
                &mut ctx,
                route,
                crate::websocket::DISCONNECT,
                "DISCONNECT",
                None,
                "text/plain; charset=utf-8",
                Bytes::new(),
                false,
            )
            .await;
        match outcome {
            // Read to the end, so an origin's connection goes back to its pool.
            Ok(response) => {
                read_logged(&gateway, ctx, response, self.settings.max_message_bytes).await;
            }
            Err(error) => {
                tracing::warn!(
                    connection_id = &*self.connection.opened.id,
                    error = %error,
                    "$disconnect failed"
                );
                log_failure(&gateway, ctx, &error);
            }
        }
    }
}

/// Logs and counts an event that failed with `error`.
fn log_failure(gateway: &Generation, ctx: RequestContext<'_>, error: &GatewayError) {
    let kind = error.kind();
    let metrics = ctx
        .route
        .map_or(gateway.metrics.unrouted(), |r| &r.labels.metrics);
    metrics.error(kind.response_type);
    if let GatewayError::Throttled(refusal) = error {
        metrics.throttled(refusal.scope);
    }
    let record = super::access_record(
        gateway,
        ctx,
        EVENT_LINE,
        kind.status.as_u16(),
        Some(kind),
        RecordExtras::default(),
    );
    ResponseBody::empty().log_on_end(record, None);
}

/// Reads an integration's answer whole (up to `limit` bytes), logging and counting the event
/// when it ends; `None` when it could not be read or was larger.
async fn read_logged(
    gateway: &Generation,
    ctx: RequestContext<'_>,
    mut response: Response<ResponseBody>,
    limit: usize,
) -> Option<Bytes> {
    let status = response.status().as_u16();
    let record = super::access_record(
        gateway,
        ctx,
        EVENT_LINE,
        status,
        None,
        RecordExtras::default(),
    );
    response.body_mut().log_on_end(record, None);
    http_body_util::Limited::new(response.into_body(), limit)
        .collect()
        .await
        .ok()
        .map(http_body_util::Collected::to_bytes)
}

/// The request line a WebSocket event's access-log record carries.
const EVENT_LINE: (http::Method, Option<http::uri::PathAndQuery>, http::Version) =
    (http::Method::POST, None, http::Version::HTTP_11);

/// The close code for a frame the client sent wrong.
fn refusal(error: &tungstenite::Error) -> Option<(u16, &'static str)> {
    use tungstenite::Error as E;
    match error {
        E::Capacity(_) => Some((close_code::TOO_BIG, "message too big")),
        E::Utf8(_) => Some((close_code::INVALID_PAYLOAD, "invalid UTF-8")),
        E::Protocol(_) => Some((close_code::PROTOCOL_ERROR, "protocol error")),
        _ => None,
    }
}

/// A text frame when `data` is UTF-8 (and the message it answers was text), else binary.
fn text_or_binary(data: Bytes, binary: bool) -> Message {
    if binary {
        return Message::Binary(data);
    }
    match tungstenite::Utf8Bytes::try_from(data.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(data),
    }
}

/// API Gateway's error message to a client: `{"message", "connectionId", "requestId"}`.
fn error_frame(connection_id: &str, request_id: &HeaderValue, message: &str) -> Message {
    let body = serde_json::json!({
        "message": message,
        "connectionId": connection_id,
        "requestId": request_id.to_str().unwrap_or_default(),
    });
    Message::text(body.to_string())
}

/// `POST`, `GET` or `DELETE /{stage}/@connections/{connectionId}` on the listener, once the
/// route's authorizer (`connections_auth`) allowed it.
pub(super) async fn manage(
    gateway: &Generation,
    ctx: &mut RequestContext<'_>,
    parts: Parts,
    mut body: InBody,
) -> Result<Response<ResponseBody>, GatewayError> {
    let id = ctx
        .param_values(parts.uri.path())
        .first()
        .map(|id| {
            percent_encoding::percent_decode_str(id)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let data = match parts.method {
        http::Method::POST => body.buffer(gateway.limits.max_body_bytes).await?,
        _ => Bytes::new(),
    };
    let answer = crate::websocket::operate(&*gateway.connections, &parts.method, &id, data)
        .await
        .ok_or(GatewayError::Internal(
            "@connections reached with a method it does not serve".into(),
        ))?;
    ctx.integration_status = Some(answer.status().as_u16());
    Ok(answer.map(ResponseBody::full))
}
