//! The open WebSocket connections a node holds, and the `@connections` operations on them
//! behind the [`Connections`] trait (a cluster's registry reaches connections held by other
//! nodes through the same calls).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, mpsc};

use crate::sync::lock;

/// Close codes Edgeway sends (RFC 6455 §7.4.1).
pub mod close_code {
    /// `DELETE @connections/{id}`.
    pub const NORMAL: u16 = 1000;
    /// The node drains, the idle timeout or the maximum duration passed, or the API is gone.
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A binary frame to an API that does not allow binary.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Invalid UTF-8 in a text message.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame or message over the limit.
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// What `@connections` can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// No open connection has this id (410 `GoneException`).
    #[error("no open connection has this id")]
    Gone,
    /// The message is larger than the API's frame limit (413 `PayloadTooLargeException`).
    #[error("the message is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The connection's send queue is full: its client reads slower than messages arrive
    /// (429 `LimitExceededException`). The message is not queued.
    #[error("the connection's send queue is full")]
    QueueFull,
}

/// What `GET @connections/{id}` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSummary {
    pub connected_at: SystemTime,
    pub last_active_at: SystemTime,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

/// The `@connections` operations. The local registry answers for this node's connections; a
/// cluster's implementation asks the node that holds one.
pub trait Connections: Send + Sync + std::fmt::Debug {
    /// Queues `data` for the client (`POST`).
    fn post(&self, id: &str, data: Bytes) -> BoxFuture<'_, Result<(), ConnectionError>>;
    /// Describes the connection (`GET`).
    fn get(&self, id: &str) -> BoxFuture<'_, Result<ConnectionSummary, ConnectionError>>;
    /// Closes the connection with 1000 (`DELETE`); its `$disconnect` runs.
    fn delete(&self, id: &str) -> BoxFuture<'_, Result<(), ConnectionError>>;
}

/// Who opened a connection, where and when.
#[derive(Debug)]
pub struct Opened {
    pub id: Box<str>,
    pub api: Box<str>,
    pub stage: Box<str>,
    pub connected_at: SystemTime,
    pub source_ip: Box<str>,
    pub user_agent: Option<Box<str>>,
    /// The `Host` the client connected to (`$context.domainName` of its events).
    pub host: Option<Box<str>>,
}

/// One open connection, shared by its session (which owns the socket) and the registry.
#[derive(Debug)]
pub struct Connection {
    /// Who opened it, where and when.
    pub opened: Opened,
    /// Milliseconds since `connected_at` of the last frame either way.
    last_active_ms: AtomicU64,
    /// The largest message `@connections` may send (the API's frame limit).
    max_post_bytes: usize,
    queue: mpsc::Sender<Bytes>,
    close: Notify,
    close_code: AtomicU16,
    closing: AtomicBool,
}

impl Connection {
    /// A connection and the receiving end of its send queue of `queue` messages.
    pub fn new(
        opened: Opened,
        max_post_bytes: usize,
        queue: usize,
    ) -> (Arc<Self>, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let connection = Self {
            opened,
            last_active_ms: AtomicU64::new(0),
            max_post_bytes,
            queue: tx,
            close: Notify::new(),
            close_code: AtomicU16::new(close_code::NORMAL),
            closing: AtomicBool::new(false),
        };
        (Arc::new(connection), rx)
    }

    /// Notes traffic now (for `lastActiveAt`).
    pub fn touch(&self) {
        let ms = SystemTime::now()
            .duration_since(self.opened.connected_at)
            .unwrap_or_default()
            .as_millis();
        self.last_active_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn summary(&self) -> ConnectionSummary {
        ConnectionSummary {
            connected_at: self.opened.connected_at,
            last_active_at: self.opened.connected_at
                + Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed)),
            source_ip: self.opened.source_ip.to_string(),
            user_agent: self.opened.user_agent.as_deref().map(str::to_owned),
        }
    }

    /// `connected_at` in milliseconds since the epoch (`$context.connectedAt`).
    pub fn connected_at_ms(&self) -> u64 {
        super::epoch_ms(self.opened.connected_at)
    }

    /// Queues a message without waiting.
    pub fn post(&self, data: Bytes) -> Result<(), ConnectionError> {
        if data.len() > self.max_post_bytes {
            return Err(ConnectionError::TooLarge {
                limit: self.max_post_bytes,
            });
        }
        if self.closing.load(Ordering::Relaxed) {
            return Err(ConnectionError::Gone);
        }
        self.queue.try_send(data).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ConnectionError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => ConnectionError::Gone,
        })
    }

    /// Asks the session to close with `code`; the first request wins.
    pub fn close(&self, code: u16) {
        if !self.closing.swap(true, Ordering::Relaxed) {
            self.close_code.store(code, Ordering::Relaxed);
            self.close.notify_one();
        }
    }

    /// Resolves once [`close`](Self::close) was called, with its code.
    pub async fn closed(&self) -> u16 {
        self.close.notified().await;
        self.close_code.load(Ordering::Relaxed)
    }
}

/// This node's open connections, by id.
#[derive(Debug, Default)]
pub struct LocalConnections {
    open: std::sync::Mutex<HashMap<Box<str>, Arc<Connection>>>,
    /// Woken whenever a connection leaves.
    left: Notify,
    /// Set by `close_all`, for the node's drain: connections opened since close at once.
    closing_all: std::sync::Mutex<Option<u16>>,
}

impl LocalConnections {
    pub fn register(&self, connection: Arc<Connection>) {
        // Held while inserting, so `close_all` either finds the connection or is seen here.
        let closing = lock(&self.closing_all);
        if let Some(code) = *closing {
            connection.close(code);
        }
        lock(&self.open).insert(connection.opened.id.clone(), connection);
        drop(closing);
    }

    pub fn unregister(&self, id: &str) {
        lock(&self.open).remove(id);
        self.left.notify_waiters();
    }

    pub fn find(&self, id: &str) -> Option<Arc<Connection>> {
        lock(&self.open).get(id).cloned()
    }

    pub fn len(&self) -> usize {
        lock(&self.open).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every connection with `code` (1001 when the node drains).
    pub fn close_all(&self, code: u16) {
        *lock(&self.closing_all) = Some(code);
        let open: Vec<_> = lock(&self.open).values().cloned().collect();
        for connection in open {
            connection.close(code);
        }
    }

    /// Resolves once no connection is open (their sessions have run `$disconnect`).
    pub async fn wait_empty(&self) {
        loop {
            let left = self.left.notified();
            if self.is_empty() {
                return;
            }
            left.await;
        }
    }
}

impl Connections for LocalConnections {
    fn post(&self, id: &str, data: Bytes) -> BoxFuture<'_, Result<(), ConnectionError>> {
        let found = self.find(id);
        Box::pin(async move { found.ok_or(ConnectionError::Gone)?.post(data) })
    }

    fn get(&self, id: &str) -> BoxFuture<'_, Result<ConnectionSummary, ConnectionError>> {
        let found = self.find(id);
        Box::pin(async move { Ok(found.ok_or(ConnectionError::Gone)?.summary()) })
    }

    fn delete(&self, id: &str) -> BoxFuture<'_, Result<(), ConnectionError>> {
        let found = self.find(id);
        Box::pin(async move {
            let connection = found.ok_or(ConnectionError::Gone)?;
            if connection.closing.load(Ordering::Relaxed) {
                return Err(ConnectionError::Gone);
            }
            connection.close(close_code::NORMAL);
            Ok(())
        })
    }
}

/// Carries out the `@connections` operation `method` names on connection `id` (`data`: a
/// POST's body) and answers it as API Gateway does; `None` for another method.
pub async fn operate(
    connections: &dyn Connections,
    method: &http::Method,
    id: &str,
    data: Bytes,
) -> Option<http::Response<Bytes>> {
    Some(match *method {
        http::Method::POST => answer(connections.post(id, data).await.map(|()| None), false),
        http::Method::GET => answer(connections.get(id).await.map(Some), false),
        http::Method::DELETE => answer(connections.delete(id).await.map(|()| None), true),
        _ => return None,
    })
}

/// An `@connections` operation's outcome as API Gateway answers it: 200 (with the
/// connection's description for `GET`), 204 for `DELETE`, else the error's status with
/// `{"message": ...}` and the exception name AWS SDKs read from `x-amzn-ErrorType`.
fn answer(
    outcome: Result<Option<ConnectionSummary>, ConnectionError>,
    delete: bool,
) -> http::Response<Bytes> {
    use http::StatusCode;
    let (status, error_type, body) = match outcome {
        Ok(Some(summary)) => (StatusCode::OK, None, summary_json(&summary)),
        Ok(None) if delete => (StatusCode::NO_CONTENT, None, Bytes::new()),
        Ok(None) => (StatusCode::OK, None, Bytes::new()),
        Err(e) => {
            let (status, name) = match e {
                ConnectionError::Gone => (StatusCode::GONE, "GoneException"),
                ConnectionError::TooLarge { .. } => {
                    (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException")
                }
                ConnectionError::QueueFull => {
                    (StatusCode::TOO_MANY_REQUESTS, "LimitExceededException")
                }
            };
            let body = serde_json::json!({ "message": e.to_string() }).to_string();
            (status, Some(name), Bytes::from(body))
        }
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    if !response.body().is_empty() {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    if let Some(name) = error_type {
        response.headers_mut().insert(
            http::HeaderName::from_static("x-amzn-errortype"),
            http::HeaderValue::from_static(name),
        );
    }
    response
}

fn summary_json(summary: &ConnectionSummary) -> Bytes {
    let time = |t: SystemTime| {
        let mut out = Vec::new();
        crate::telemetry::access_log::push_time(&mut out, t);
        String::from_utf8(out).unwrap_or_default()
    };
    let body = serde_json::json!({
        "connectedAt": time(summary.connected_at),
        "identity": { "sourceIp": summary.source_ip, "userAgent": summary.user_agent },
        "lastActiveAt": time(summary.last_active_at),
    });
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(queue: usize) -> (Arc<Connection>, mpsc::Receiver<Bytes>) {
        Connection::new(
            Opened {
                id: "abc".into(),
                api: "chat".into(),
                stage: "prod".into(),
                connected_at: SystemTime::now(),
                source_ip: "127.0.0.1".into(),
                user_agent: None,
                host: None,
            },
            4,
            queue,
        )
    }

    #[tokio::test]
    async fn post_get_delete_answer_as_the_connections_api_does() {
        let registry = LocalConnections::default();
        assert_eq!(
            registry.post("abc", "x".into()).await,
            Err(ConnectionError::Gone)
        );
        let (c, mut rx) = connection(1);
        registry.register(c.clone());
        assert_eq!(registry.post("abc", "hi".into()).await, Ok(()));
        assert_eq!(
            registry.post("abc", "more".into()).await,
            Err(ConnectionError::QueueFull)
        );
        assert_eq!(
            registry.post("abc", "12345".into()).await,
            Err(ConnectionError::TooLarge { limit: 4 })
        );
        assert_eq!(rx.recv().await.as_deref(), Some(&b"hi"[..]));
        assert_eq!(registry.get("abc").await.unwrap().source_ip, "127.0.0.1");
        assert_eq!(registry.delete("abc").await, Ok(()));
        assert_eq!(c.closed().await, close_code::NORMAL);
        // Closing but not yet gone: a second DELETE and a POST find it gone.
        assert_eq!(registry.delete("abc").await, Err(ConnectionError::Gone));
        assert_eq!(
            registry.post("abc", "x".into()).await,
            Err(ConnectionError::Gone)
        );
        registry.unregister("abc");
        assert!(registry.is_empty());
        registry.wait_empty().await;
    }

    #[tokio::test]
    async fn the_first_close_code_wins() {
        let (c, _rx) = connection(1);
        c.close(close_code::GOING_AWAY);
        c.close(close_code::NORMAL);
        assert_eq!(c.closed().await, close_code::GOING_AWAY);
    }
}
