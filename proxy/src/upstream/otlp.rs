//! Where the trace exporter sends its batches: the collector is an origin like any other,
//! reached through an `OriginPool`.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Uri};

use super::OriginPool;
use crate::body::RequestBody;
use crate::telemetry::chain;
use crate::telemetry::traces::Collector;

/// An OTLP/HTTP collector (`POST` of protobuf to its traces URL).
#[derive(Debug)]
pub struct OtlpClient {
    pool: Arc<OriginPool>,
    /// The endpoint's path and query, the request's origin form.
    path: Uri,
}

impl OtlpClient {
    pub fn new(pool: Arc<OriginPool>, endpoint: &Uri) -> Self {
        let path = endpoint
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        Self { pool, path }
    }
}

impl Collector for OtlpClient {
    fn send(
        &self,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
        let pool = self.pool.clone();
        let mut request = Request::new(RequestBody::full(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.path.clone();
        request.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        Box::pin(async move {
            use http_body_util::BodyExt as _;
            let response = pool.send(request).await.map_err(|e| chain(e.as_ref()))?;
            let status = response.status();
            // Read to the end, so the connection goes back to the pool.
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| chain(&e))?;
            if status.is_success() {
                Ok(())
            } else {
                let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                Err(format!(
                    "{status}: {}",
                    text.chars().take(200).collect::<String>()
                ))
            }
        })
    }
}
