//! WebSocket APIs, the parts that do no I/O: an API's settings ([`WebSocketSettings`]), route
//! selection expressions (`selection.rs`), the connection registry behind the `@connections`
//! operations (`connections.rs`) and connection and message ids. The handshake, `$connect`
//! and each connection's session are `pipeline/websocket.rs`.

mod connections;
mod selection;

use std::time::Duration;

use base64::Engine as _;

pub use connections::{
    Connection, ConnectionError, ConnectionSummary, Connections, LocalConnections, Opened,
    close_code, operate,
};
pub use selection::{SelectionError, SelectionExpression};

/// The route keys API Gateway predefines.
pub const CONNECT: &str = "$connect";
pub const DISCONNECT: &str = "$disconnect";
pub const DEFAULT: &str = "$default";

/// A WebSocket API's settings (`route_selection` and `websocket`).
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketSettings {
    /// Picks each message's route key (`route_selection`, e.g. `$request.body.action`).
    pub route_selection: SelectionExpression,
    /// The largest message a client may send (default 128 KiB; 1009 beyond it).
    pub max_message_bytes: usize,
    /// The largest frame a client may send, and the largest `@connections` message (default
    /// 32 KiB; 1009 beyond it).
    pub max_frame_bytes: usize,
    /// Whether clients may send binary frames (default no: 1003).
    pub binary: bool,
    /// A connection with no frame either way for this long is closed (default 10 minutes).
    pub idle_timeout: Duration,
    /// A connection is closed this long after it opened (default 2 hours).
    pub max_duration: Duration,
    /// How often an idle connection is pinged; a ping unanswered by the next one closes it
    /// (default 30 s).
    pub ping_interval: Duration,
    /// Messages waiting to be written to one client, beyond which `@connections` answers 429
    /// (default 64).
    pub send_queue: usize,
}

impl WebSocketSettings {
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 128 << 10;
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 32 << 10;
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
    pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(7200);
    pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_SEND_QUEUE: usize = 64;

    /// The defaults, with this route selection.
    pub fn new(route_selection: SelectionExpression) -> Self {
        Self {
            route_selection,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            max_frame_bytes: Self::DEFAULT_MAX_FRAME_BYTES,
            binary: false,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_duration: Self::DEFAULT_MAX_DURATION,
            ping_interval: Self::DEFAULT_PING_INTERVAL,
            send_queue: Self::DEFAULT_SEND_QUEUE,
        }
    }
}

/// Whether a route sends the integration's answer back to the client (`response`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteResponse {
    /// The integration's answer is sent back as a message.
    TwoWay,
    /// The answer is dropped (API Gateway's default for a route without a route response).
    #[default]
    OneWay,
}

/// A new connection id: 12 random bytes, URL-safe base64 (16 characters, safe in a path).
pub fn new_connection_id() -> Box<str> {
    random_id()
}

/// A new message id (`$context.messageId`).
pub fn new_message_id() -> Box<str> {
    random_id()
}

/// `time` in milliseconds since the epoch.
pub fn epoch_ms(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn random_id() -> Box<str> {
    let bytes: [u8; 12] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(bytes)
        .into_boxed_str()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_sixteen_url_safe_characters_and_differ() {
        let a = super::new_connection_id();
        let b = super::new_connection_id();
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
    }
}
