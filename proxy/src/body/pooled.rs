//! The origin's response body, and the connection it gives back to its pool once read.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;

use super::RequestBody;

/// Where an HTTP/1 origin connection goes back to when its response has been read.
pub trait IdleConnections: Send + Sync + std::fmt::Debug {
    /// Keeps `sender` for the next request, if it is still open and there is room.
    fn give_back(&self, sender: http1::SendRequest<RequestBody>);
}

/// The origin's response body; gives its connection back to the pool once read to the end.
#[derive(Debug)]
pub struct PooledBody {
    inner: Incoming,
    give_back: Option<(http1::SendRequest<RequestBody>, Arc<dyn IdleConnections>)>,
}

impl PooledBody {
    /// A body whose connection is not reused (HTTP/2, or one the pool does not keep).
    pub fn unpooled(inner: Incoming) -> Self {
        Self {
            inner,
            give_back: None,
        }
    }

    /// A body whose HTTP/1 connection goes back to `pool` once the body is read to its end.
    pub fn pooled(
        inner: Incoming,
        sender: http1::SendRequest<RequestBody>,
        pool: Arc<dyn IdleConnections>,
    ) -> Self {
        Self {
            inner,
            give_back: Some((sender, pool)),
        }
    }

    fn finished(&mut self) {
        if let Some((sender, pool)) = self.give_back.take() {
            pool.give_back(sender);
        }
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body nobody read (HEAD, 204, 304) still leaves a reusable connection.
        if self.inner.is_end_stream() {
            self.finished();
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &polled {
            None => self.finished(),
            // A broken body means a broken connection: never reuse it.
            Some(Err(_)) => self.give_back = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
