//! Locking for the gateway's small shared lists and counters.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking the data even if a thread panicked while holding it. Only for data a
/// panic cannot leave half-changed: lists of connections or instances pushed and popped whole,
/// counters, maps of pools.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
