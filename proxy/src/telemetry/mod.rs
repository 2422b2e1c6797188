//! Telemetry: the access log (stdout or files, in Edgeway's format or the user's), operational logs on stderr, and the metrics
//! `GET /metrics` serves.
//!
//! Operational logs are JSON lines from `tracing`, filtered by `EDGEWAY_LOG` (default `info`).

pub mod access_log;
pub mod execution;
pub mod log_format;
pub mod metrics;
pub mod otlp;
pub mod traces;

pub use access_log::{
    AccessLog, AccessLogSettings, AccessRecord, Destination, RecordExtras, RouteLabels, StageLog,
    Totals, WebSocketEvent,
};
pub use log_format::LogFormat;

/// Installs the stderr JSON logger. Call once, at startup.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Execution logs are turned on per stage (`logging_level`), whatever EDGEWAY_LOG says.
    let filter = match "execution=info".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .with_span_list(false)
        .try_init();
}

/// An error and its causes on one line: "client error (Connect): tcp connect error: Connection refused".
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
