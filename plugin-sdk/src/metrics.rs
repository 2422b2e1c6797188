//! Counters shown per plugin by `GET /admin/plugins`.

use crate::bindings::imports::metrics as host;

/// Adds `delta` to counter `name`, creating it at zero first.
pub fn counter_add(name: &str, delta: u64) {
    host::counter_add(name, delta);
}

/// Adds one to counter `name`.
pub fn increment(name: &str) {
    host::counter_add(name, 1);
}
