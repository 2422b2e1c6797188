//! Lingering close: a connection the gateway closes while the client may still be sending is
//! read and discarded for a while before it is closed, so the client reads the answer.
//!
//! The gateway answers some requests before it has read their body: a 413 for a declared length
//! over the limit, a 401 from an authorizer, a 429, a mock or cached answer, a 404. HTTP/1 cannot
//! go on with the connection after an unread body, so hyper closes it once the answer is
//! written. Closing a socket with unread bytes in its receive buffer (or bytes still arriving)
//! makes the kernel send a TCP reset, and a reset makes the client's kernel throw away what it
//! had received but the client had not read yet: the answer. A client that writes its whole
//! body before reading (Python's `http.client`, most SDKs without `Expect: 100-continue`) then
//! sees a broken pipe instead of the 413.
//!
//! [`LingeringStream`] wraps each accepted TCP stream. When it is dropped before the client
//! closed its side, it hands the socket to a task that sends FIN (the answer is complete), then
//! reads and discards until the client closes, [`Linger::timeout`] passes, or more than
//! [`Linger::max_bytes`] arrive, and only then closes it. nginx's `lingering_close` does the
//! same. A client that closes first (the usual end of a keep-alive connection) costs nothing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Default for `limits.linger_timeout_ms`: 5 s, as nginx's `lingering_timeout`.
pub const DEFAULT_LINGER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for `limits.linger_max_bytes`: 16 MiB.
pub const DEFAULT_LINGER_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// How long, and how much, a closing connection is read and discarded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linger {
    /// The longest the socket stays open after the gateway is done with it
    /// (`limits.linger_timeout_ms`); zero closes at once.
    pub timeout: Duration,
    /// The most bytes read and discarded before closing anyway (`limits.linger_max_bytes`).
    pub max_bytes: u64,
}

impl Default for Linger {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_LINGER_TIMEOUT,
            max_bytes: DEFAULT_LINGER_MAX_BYTES,
        }
    }
}

/// An accepted TCP stream that lingers when dropped before the client closed its side.
#[derive(Debug)]
pub struct LingeringStream {
    /// `None` only after `drop` took it.
    stream: Option<TcpStream>,
    /// The client's FIN (or an error) was read: nothing more is coming, no need to linger.
    read_closed: bool,
    linger: Linger,
}

impl LingeringStream {
    pub fn new(stream: TcpStream, linger: Linger) -> Self {
        Self {
            stream: Some(stream),
            read_closed: false,
            linger,
        }
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for LingeringStream {
    fn drop(&mut self) {
        if self.read_closed || self.linger.timeout.is_zero() {
            return;
        }
        let Some(stream) = self.stream.take() else {
            return;
        };
        // Outside a runtime (never, in the node) the socket just closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, self.linger));
        }
    }
}

/// Sends FIN, then reads and discards until the client closes or `bound` is reached.
pub async fn linger(mut stream: TcpStream, bound: Linger) -> u64 {
    let _ = stream.shutdown().await;
    let mut discarded = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(bound.timeout, async {
        while discarded <= bound.max_bytes {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n as u64,
            }
        }
    })
    .await;
    discarded
}

impl AsyncRead for LingeringStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let asked = buf.remaining() > 0;
        let polled = Pin::new(this.stream()?).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if asked && buf.filled().len() == before => this.read_closed = true,
            Poll::Ready(Err(_)) => this.read_closed = true,
            _ => {}
        }
        polled
    }
}

impl AsyncWrite for LingeringStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// A client still sending when the server is done gets the whole answer, then EOF.
    #[tokio::test]
    async fn a_client_still_sending_reads_the_answer() {
        let (mut client, server) = pair().await;
        let mut server = LingeringStream::new(server, Linger::default());
        server.write_all(b"HTTP/1.1 413 \r\n\r\n").await.unwrap();
        drop(server);
        // 4 MiB more than any socket buffer: without lingering this write hits a reset.
        client.write_all(&vec![b'a'; 4 << 20]).await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"HTTP/1.1 413 \r\n\r\n");
    }

    /// The byte bound: past `max_bytes` the socket is closed though the client goes on.
    #[tokio::test]
    async fn stops_after_max_bytes() {
        let (mut client, server) = pair().await;
        let bound = Linger {
            timeout: Duration::from_secs(60),
            max_bytes: 64 * 1024,
        };
        let task = tokio::spawn(linger(server, bound));
        let sender = tokio::spawn(async move {
            let chunk = vec![b'a'; 16 * 1024];
            for _ in 0..1024 {
                if client.write_all(&chunk).await.is_err() {
                    return true;
                }
            }
            false
        });
        let discarded = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("linger ends at the byte bound")
            .unwrap();
        assert!(discarded > bound.max_bytes, "{discarded}");
        assert!(discarded < 1024 * 16 * 1024);
        assert!(
            sender.await.unwrap(),
            "the client's writes fail once the socket is closed"
        );
    }

    /// The time bound, on tokio's paused clock: a client that sends nothing and never closes is
    /// let go after `timeout`.
    #[tokio::test(start_paused = true)]
    async fn stops_after_the_timeout() {
        let (_client, server) = pair().await;
        let bound = Linger {
            timeout: Duration::from_millis(1500),
            max_bytes: 1 << 20,
        };
        let started = tokio::time::Instant::now();
        assert_eq!(linger(server, bound).await, 0);
        assert_eq!(started.elapsed(), bound.timeout);
    }

    /// A client that closed first is not lingered on: its read side saw EOF.
    #[tokio::test]
    async fn no_linger_after_the_client_closed() {
        let (client, server) = pair().await;
        let mut server = LingeringStream::new(server, Linger::default());
        drop(client);
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        assert!(server.read_closed);
    }
}
