//! The HTTP client OpenTelemetry's OTLP exporter sends spans with: the collector is an origin
//! like any other, reached through an `OriginPool`.

use std::sync::Arc;

use bytes::Bytes;

use super::OriginPool;

/// The exporter's HTTP client: Edgeway's origin pool for the collector, driven on the node's
/// runtime (the batch processor's thread has none of its own).
#[derive(Debug, Clone)]
pub struct OtlpClient {
    pool: Arc<OriginPool>,
    runtime: tokio::runtime::Handle,
}

impl OtlpClient {
    pub fn new(pool: Arc<OriginPool>, runtime: tokio::runtime::Handle) -> Self {
        Self { pool, runtime }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        use http_body_util::BodyExt as _;
        let pool = self.pool.clone();
        let (mut parts, body) = request.into_parts();
        parts.uri = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()?;
        parts.version = http::Version::HTTP_11;
        let request = http::Request::from_parts(parts, crate::body::RequestBody::full(body));
        let task = self.runtime.spawn(async move {
            let response = pool.send(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, crate::body::BoxError>(http::Response::from_parts(parts, body))
        });
        Ok(task.await??)
    }
}
