//! A key-value store local to this Edgeway node and private to this plugin.
//!
//! Entries may be evicted before their TTL when the store is full, so treat it as a cache.
//!
//! ```no_run
//! use std::time::Duration;
//! use edgeway_plugin_sdk::kv;
//!
//! let hits = kv::get("hits")
//!     .and_then(|v| String::from_utf8(v).ok())
//!     .and_then(|s| s.parse::<u64>().ok())
//!     .unwrap_or(0);
//! kv::set_with_ttl("hits", (hits + 1).to_string().as_bytes(), Duration::from_secs(60));
//! ```

use std::time::Duration;

use crate::bindings::imports::kv as host;

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    host::get(key)
}

/// Stores `value` under `key` until evicted or replaced.
pub fn set(key: &str, value: &[u8]) {
    host::set(key, value, None);
}

/// Stores `value` under `key` for `ttl` (whole milliseconds; saturates at `u64::MAX`).
pub fn set_with_ttl(key: &str, value: &[u8], ttl: Duration) {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    host::set(key, value, Some(ttl_ms));
}

/// Removes `key`; nothing happens when it is absent.
pub fn delete(key: &str) {
    host::delete(key);
}
