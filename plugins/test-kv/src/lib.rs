//! Test plugin: a handler that uses every host import, for the host's import tests.
//!
//! Each call:
//! - adds one to the kv counter `hits` (stored as decimal text; for `ttl_ms` milliseconds
//!   when the query has `ttl_ms=<n>`), or deletes it and reports 0 on `reset=1`;
//! - logs `test-kv: hits=<n>` at info, and writes `test-kv: stderr` to stderr on `stderr=1`;
//! - adds one to the counters `calls` and, by `hits`'s value, `hits_total`;
//! - on `fetch=<url>` (percent-decoded), GETs the URL with header `x-from-plugin: test-kv`.
//!
//! It answers 200 JSON:
//!
//! ```json
//! { "hits": 3, "config": <its config, as given>,
//!   "fetch": { "status": 200, "body": "…", "headers": [["content-type", "…"]] } }
//! ```
//!
//! where `fetch` is absent without `fetch=`, and `{ "error": "…" }` when the host refused or
//! failed the request. The config is read once per instance; any JSON is accepted.

use std::time::Duration;

use edgeway_plugin_sdk::http::{self, OutgoingRequest};
use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler, kv, log, metrics};
use serde_json::{Value, json};

const KEY: &str = "hits";

struct TestKv {
    config: Value,
}

/// `%XX` escapes decoded (`+` stays: a raw URL may contain it); malformed escapes are kept
/// as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn next_hits(request: &Request) -> Result<u64, Error> {
    if request.query_param("reset") == Some("1") {
        kv::delete(KEY);
        return Ok(0);
    }
    let current = match kv::get(KEY) {
        None => 0,
        Some(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| Error::msg("test-kv: kv `hits` is not a decimal number"))?,
    };
    let hits = current + 1;
    let value = hits.to_string();
    match request.query_param("ttl_ms").map(str::parse::<u64>) {
        None => kv::set(KEY, value.as_bytes()),
        Some(Ok(ms)) => kv::set_with_ttl(KEY, value.as_bytes(), Duration::from_millis(ms)),
        Some(Err(e)) => return Err(Error::msg(format!("test-kv: ttl_ms: {e}"))),
    }
    Ok(hits)
}

fn fetch(url: &str) -> Value {
    let request = OutgoingRequest::new("GET", url).with_header("x-from-plugin", "test-kv");
    match http::fetch(&request) {
        Ok(response) => json!({
            "status": response.status,
            "body": String::from_utf8_lossy(response.body.as_deref().unwrap_or_default()),
            "headers": response.headers,
        }),
        Err(e) => json!({ "error": e.message }),
    }
}

impl Handler for TestKv {
    fn new() -> Result<Self, Error> {
        Ok(TestKv {
            config: edgeway_plugin_sdk::config()?,
        })
    }

    fn handle(&self, request: Request) -> Result<Response, Error> {
        let hits = next_hits(&request)?;
        log::info(&format!("test-kv: hits={hits}"));
        if request.query_param("stderr") == Some("1") {
            eprintln!("test-kv: stderr");
        }
        metrics::increment("calls");
        metrics::counter_add("hits_total", hits);

        let mut body = json!({ "hits": hits, "config": self.config });
        if let Some(url) = request.query_param("fetch") {
            body["fetch"] = fetch(&percent_decode(url));
        }
        Response::json(200, &body)
    }
}

export_handler!(TestKv);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("http%3A%2F%2F127.0.0.1%3A8080%2Fa"),
            "http://127.0.0.1:8080/a"
        );
        assert_eq!(percent_decode("http://x/a+b"), "http://x/a+b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
