//! Filling an entry from a response on its way to the client: the body streams to the client
//! as it arrives, a copy is collected alongside, and the entry is stored once the body has
//! ended whole and within the size limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::AGE;
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::sync::watch;
use tokio::time::Instant;

use super::entry::{CachedResponse, Storable, X_CACHE, storable};
use super::{CacheKey, StageCache};
use crate::upstream::headers::X_REQUEST_ID;
use crate::validation::params::RequestParam;

/// The right to store one key's response. A leader's fill also holds back the requests
/// coalesced behind it: they wake when it is dropped, stored or not.
#[derive(Debug)]
pub struct Fill {
    cache: Arc<StageCache>,
    key: CacheKey,
    /// Dropped (with the fill) to wake the waiters.
    leader: Option<watch::Sender<()>>,
}

impl Fill {
    pub(super) fn leader(cache: Arc<StageCache>, key: CacheKey, done: watch::Sender<()>) -> Self {
        Self {
            cache,
            key,
            leader: Some(done),
        }
    }

    pub(super) fn unled(cache: Arc<StageCache>, key: CacheKey) -> Self {
        Self {
            cache,
            key,
            leader: None,
        }
    }

    /// Starts collecting a response with this head, if it may be stored; otherwise the fill
    /// ends here and any waiters go to the origin themselves.
    pub fn begin(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        rules: &Storable<'_>,
        ttl: Duration,
        key_params: Arc<[RequestParam]>,
    ) -> Option<CacheFill> {
        if !storable(status, headers, rules) {
            return None;
        }
        let mut headers = headers.clone();
        headers.remove(&X_REQUEST_ID);
        // Stored as a hit's: a hit then only overwrites `age` in place, with no map growth.
        headers.insert(X_CACHE.clone(), HeaderValue::from_static("hit"));
        headers.insert(AGE, HeaderValue::from_static("0"));
        Some(CacheFill {
            fill: self,
            status,
            headers,
            chunks: Vec::new(),
            size: 0,
            limit: rules.max_entry_bytes,
            ttl,
            key_params,
        })
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        if self.leader.is_some() {
            self.cache.release(&self.key);
        }
    }
}

/// A response being collected for the cache.
#[derive(Debug)]
pub struct CacheFill {
    fill: Fill,
    status: StatusCode,
    headers: HeaderMap,
    chunks: Vec<Bytes>,
    size: usize,
    limit: usize,
    ttl: Duration,
    key_params: Arc<[RequestParam]>,
}

impl CacheFill {
    /// Adds a chunk of the body; false once the body is over the size limit, when the caller
    /// drops the fill (the response still reaches the client whole).
    pub fn data(&mut self, chunk: &Bytes) -> bool {
        self.size += chunk.len();
        if self.size > self.limit {
            return false;
        }
        self.chunks.push(chunk.clone());
        true
    }

    /// The body ended whole: stores the entry. The chunks are copied into one buffer, so the
    /// entry does not pin the connection's read buffers.
    pub fn finish(self) {
        let mut body = BytesMut::with_capacity(self.size);
        for chunk in &self.chunks {
            body.extend_from_slice(chunk);
        }
        let entry = CachedResponse {
            status: self.status,
            headers: self.headers,
            body: body.freeze(),
            stored_at: Instant::now(),
            ttl: self.ttl,
            key_params: self.key_params,
        };
        self.fill.cache.store(self.fill.key.clone(), entry);
    }
}

impl crate::body::BodyTap for CacheFill {
    fn data(&mut self, data: &Bytes) -> bool {
        CacheFill::data(self, data)
    }

    fn finish(self: Box<Self>) {
        CacheFill::finish(*self);
    }
}
