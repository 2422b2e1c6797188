//! Telemetry: the access log on stdout and operational logs on stderr.
//!
//! Operational logs are JSON lines from `tracing`, filtered by `EDGEWAY_LOG` (default `info`).

pub mod access_log;

pub use access_log::{AccessLog, AccessRecord};

/// Installs the stderr JSON logger. Call once, at startup.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .with_span_list(false)
        .try_init();
}
