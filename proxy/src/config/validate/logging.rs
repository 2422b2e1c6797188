//! `access_log`, on a stage or for the node: the format compiled and the destination checked
//! here, so a format with an unknown variable is refused with its line; and a stage's execution
//! logs (`logging_level`, `data_trace`).

use std::path::Path;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::Errors;
use crate::config::raw::{RawAccessLog, RawDestination, RawStage, RawStageTracing, RawTracing};
use crate::telemetry::execution::{Execution, Level};
use crate::telemetry::traces::{ExportSettings, StageTracing};
use crate::telemetry::{AccessLogSettings, Destination, LogFormat};

/// A stage's `logging_level` and `data_trace`.
pub(super) fn execution(errors: &mut Errors, path: &str, stage: &RawStage) -> Execution {
    let level = match &stage.logging_level {
        None => Level::Off,
        Some(name) => Level::from_name(&name.value).unwrap_or_else(|| {
            errors.add(
                format!("{path}.logging_level"),
                Some(name),
                format!(
                    "unknown logging level \"{}\"; expected off, error or info",
                    name.value
                ),
            );
            Level::Off
        }),
    };
    Execution {
        level,
        data_trace: stage.data_trace,
    }
}

pub(super) fn access_log(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawAccessLog>,
    base_dir: &Path,
) -> Option<AccessLogSettings> {
    let format = match &raw.value.format {
        None => None,
        Some(text) => match LogFormat::compile(&text.value) {
            Ok(format) => Some(Arc::new(format)),
            Err(e) => {
                errors.add(format!("{path}.format"), Some(text), e.0);
                return None;
            }
        },
    };
    let destination = match &raw.value.destination {
        None => Destination::Stdout,
        Some(d) => {
            match &d.value {
                RawDestination::Named(name) if name == "stdout" => Destination::Stdout,
                RawDestination::Named(name) if name == "off" => Destination::Off,
                RawDestination::Named(name) => {
                    errors.add(
                    format!("{path}.destination"),
                    Some(d),
                    format!("unknown destination \"{name}\"; expected stdout, off or {{ file: PATH }}"),
                );
                    return None;
                }
                RawDestination::File { file } => {
                    let file = base_dir.join(file);
                    let folder = file.parent().filter(|p| !p.as_os_str().is_empty());
                    if file.is_dir() || folder.is_some_and(|f| !f.is_dir()) {
                        errors.add(
                            format!("{path}.destination.file"),
                            Some(d),
                            format!(
                                "{} cannot be a log file: {}",
                                file.display(),
                                if file.is_dir() {
                                    "it is a folder"
                                } else {
                                    "its folder does not exist"
                                }
                            ),
                        );
                        return None;
                    }
                    Destination::File(file)
                }
            }
        }
    };
    Some(AccessLogSettings {
        format,
        destination,
    })
}

/// The node's `tracing`: the collector and the export queue.
pub(super) fn tracing_export(
    errors: &mut Errors,
    raw: &Spanned<RawTracing>,
) -> Option<ExportSettings> {
    let t = &raw.value;
    let endpoint = t.endpoint.value.trim();
    let uri = endpoint
        .parse::<http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some());
    if uri.is_none() {
        errors.add(
            "tracing.endpoint",
            Some(&t.endpoint),
            format!(
                "invalid collector URL \"{endpoint}\"; expected http(s)://HOST:PORT/v1/traces (OTLP over HTTP)"
            ),
        );
    }
    let mut bounded = |name: &str, raw: Option<&Spanned<u64>>, default: u64, max: u64| match raw {
        None => default,
        Some(v) if (1..=max).contains(&v.value) => v.value,
        Some(v) => {
            errors.add(
                format!("tracing.{name}"),
                Some(v),
                format!("must be between 1 and {max}"),
            );
            default
        }
    };
    let queue_size = bounded("queue_size", t.queue_size.as_ref(), 4096, 1_000_000);
    let batch_size = bounded("batch_size", t.batch_size.as_ref(), 512, 100_000);
    let interval = bounded(
        "export_interval_ms",
        t.export_interval_ms.as_ref(),
        1000,
        3_600_000,
    );
    let timeout = bounded("timeout_ms", t.timeout_ms.as_ref(), 10_000, 600_000);
    uri?;
    Some(ExportSettings {
        endpoint: endpoint.to_owned(),
        service_name: t.service_name.clone().unwrap_or_else(|| "edgeway".into()),
        queue_size: usize::try_from(queue_size).unwrap_or(usize::MAX),
        batch_size: usize::try_from(batch_size).unwrap_or(usize::MAX),
        export_interval: std::time::Duration::from_millis(interval),
        timeout: std::time::Duration::from_millis(timeout),
    })
}

/// A stage's `tracing`.
pub(super) fn stage_tracing(
    errors: &mut Errors,
    path: &str,
    raw: &Spanned<RawStageTracing>,
) -> Option<StageTracing> {
    let sampling = match &raw.value.sampling {
        None => 0.05,
        Some(s) if (0.0..=1.0).contains(&s.value) => s.value,
        Some(s) => {
            errors.add(
                format!("{path}.sampling"),
                Some(s),
                "must be between 0 and 1 (the share of new traces sampled)",
            );
            return None;
        }
    };
    Some(StageTracing {
        sampling,
        response_header: raw.value.response_header,
    })
}
