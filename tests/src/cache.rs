//! What the stage-cache and validation tests read from responses (`x-cache`, `age`, gateway
//! errors that list validation errors) and the admin cache API they call.

use serde_json::Value;

use crate::{ADMIN_TOKEN, client, is_uuid, json};

/// A response as the cache tests look at it: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Got {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Got {
    /// Read the whole response.
    pub async fn read(r: reqwest::Response) -> Got {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.expect("response body");
        Got {
            status,
            headers,
            body,
        }
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `x-cache` header (`hit` / `miss`), if any.
    pub fn x_cache(&self) -> Option<&str> {
        self.header("x-cache")
    }

    /// The `age` header as seconds; panics when it is present but not a number.
    pub fn age(&self) -> Option<u64> {
        self.header("age").map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("age {a:?} is not a number of seconds"))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Assert a 200 cache hit with `body`: `x-cache: hit` and a numeric `age`.
    pub fn assert_hit(&self, body: &str, what: &str) {
        assert_eq!(self.status, 200, "{what}: status; body {:?}", self.text());
        assert_eq!(self.x_cache(), Some("hit"), "{what}: x-cache; {self:?}");
        assert!(
            self.age().is_some(),
            "{what}: a hit carries `age`; {self:?}"
        );
        assert_eq!(self.text(), body, "{what}: body");
    }

    /// Assert a 200 cache miss: `x-cache: miss`, no `age`. Returns the body.
    pub fn assert_miss(&self, what: &str) -> String {
        assert_eq!(self.status, 200, "{what}: status; body {:?}", self.text());
        assert_eq!(self.x_cache(), Some("miss"), "{what}: x-cache; {self:?}");
        assert_eq!(self.header("age"), None, "{what}: a miss has no `age`");
        self.text()
    }
}

/// `GET url` with `headers`, read whole.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Got::read(req.send().await.expect("GET")).await
}

/// `GET /admin/cache` with the admin token: the whole answer.
pub async fn admin_cache(admin_url: &str) -> Value {
    let r = client()
        .get(format!("{admin_url}/admin/cache"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("GET /admin/cache");
    assert_eq!(r.status(), 200, "GET /admin/cache");
    crate::json_body(r).await
}

/// The `GET /admin/cache` entry for `api`/`stage`; panics when it is not listed.
pub async fn cache_stats(admin_url: &str, api: &str, stage: &str) -> Value {
    let all = admin_cache(admin_url).await;
    all["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no `stages` array in {all}"))
        .iter()
        .find(|s| s["api"] == api && s["stage"] == stage)
        .unwrap_or_else(|| panic!("no cache for {api}/{stage} in {all}"))
        .clone()
}

/// Assert a gateway error that lists what failed: status, content type, error type, UUID
/// `x-request-id`, and a JSON body of exactly `message` and `errors` (a list of strings).
/// Returns the errors.
pub async fn assert_error_with_list(
    resp: reqwest::Response,
    status: u16,
    message: &str,
    error_type: &str,
) -> Vec<String> {
    let got = Got::read(resp).await;
    assert_eq!(got.status, status, "status; body {:?}", got.text());
    let ct = got.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "content-type {ct:?} for {status}"
    );
    assert_eq!(
        got.header("x-edgeway-error-type"),
        Some(error_type),
        "x-edgeway-error-type; body {:?}",
        got.text()
    );
    let rid = got.header("x-request-id").unwrap_or("");
    assert!(is_uuid(rid), "x-request-id {rid:?} is not a UUID");
    let v: Value = serde_json::from_slice(&got.body)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {:?}", got.text()));
    let mut keys: Vec<&String> = v
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    keys.sort();
    assert_eq!(keys, ["errors", "message"], "body keys: {v}");
    assert_eq!(v["message"], json!(message), "message: {v}");
    v["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("`errors` is not a list: {v}"))
        .iter()
        .map(|e| {
            e.as_str()
                .unwrap_or_else(|| panic!("error {e} is not a string"))
                .to_owned()
        })
        .collect()
}
