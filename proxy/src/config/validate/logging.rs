//! `access_log`, on a stage or for the node: the format compiled and the destination checked
//! here, so a format with an unknown variable is refused with its line; and a stage's execution
//! logs (`logging_level`, `data_trace`).

use std::path::Path;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::Errors;
use crate::config::raw::{RawAccessLog, RawDestination, RawStage};
use crate::telemetry::execution::{Execution, Level};
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
