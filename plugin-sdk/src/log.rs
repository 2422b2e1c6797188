//! Lines for Edgeway's log, tagged with the plugin's name.
//!
//! A plugin's stdout and stderr also become log lines; these give the line a level.

use crate::bindings::imports::log as host;

pub use host::Level;

/// Writes `message` at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Writes `message` at trace level.
pub fn trace(message: &str) {
    host::log(Level::Trace, message);
}

/// Writes `message` at debug level.
pub fn debug(message: &str) {
    host::log(Level::Debug, message);
}

/// Writes `message` at info level.
pub fn info(message: &str) {
    host::log(Level::Info, message);
}

/// Writes `message` at warn level.
pub fn warn(message: &str) {
    host::log(Level::Warn, message);
}

/// Writes `message` at error level.
pub fn error(message: &str) {
    host::log(Level::Error, message);
}
