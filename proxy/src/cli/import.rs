//! `edgeway import openapi FILE`: an API Gateway export (or any OpenAPI document) as an
//! Edgeway API definition, with every warning on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::openapi;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import an OpenAPI 3.0/3.1 or Swagger 2.0 document (JSON or YAML).
    Openapi {
        /// The document.
        file: PathBuf,
        /// The API's name (default: from the document's `info.title`).
        #[arg(long)]
        api: Option<String>,
        /// Write the definition here instead of to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A Lambda function → the plugin that serves it: `ARN_OR_NAME=PLUGIN` (repeatable).
        #[arg(long = "function", value_name = "ARN_OR_NAME=PLUGIN")]
        functions: Vec<String>,
        /// Refuse the document if anything would only be warned about.
        #[arg(long)]
        strict: bool,
    },
}

pub fn run(command: ImportCommand) -> ExitCode {
    let ImportCommand::Openapi {
        file,
        api,
        out,
        functions,
        strict,
    } = command;
    let mut options = openapi::Options {
        name: api,
        ..Default::default()
    };
    for entry in &functions {
        let Some((function, plugin)) = entry.split_once('=') else {
            eprintln!("--function {entry}: expected ARN_OR_NAME=PLUGIN");
            return ExitCode::FAILURE;
        };
        options
            .functions
            .insert(function.trim().to_owned(), plugin.trim().to_owned());
    }
    let imported = match openapi::import(&file, &options) {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{}: {} error(s); nothing written",
                file.display(),
                e.errors.len()
            );
            return ExitCode::FAILURE;
        }
    };
    let label = if strict { "error" } else { "warning" };
    for w in &imported.warnings {
        eprintln!("{}: {label}: {w}", file.display());
    }
    if strict && !imported.warnings.is_empty() {
        eprintln!(
            "{}: {} warning(s) refused by --strict; nothing written",
            file.display(),
            imported.warnings.len()
        );
        return ExitCode::FAILURE;
    }
    for name in &imported.stage_variables {
        eprintln!(
            "{}: note: integrations use the stage variable `{name}`: give it a value in every stage's `variables`",
            file.display()
        );
    }
    let yaml = format!(
        "# Imported from {} by `edgeway import openapi`; goes under `apis:` in a config.\n{}",
        file.display(),
        indent_as_list_item(&imported.to_yaml())
    );
    match out {
        None => print!("{yaml}"),
        Some(out) => {
            if let Err(e) = std::fs::write(&out, yaml) {
                eprintln!("{}: cannot write: {e}", out.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// A YAML mapping as one item of a YAML list (`- name: x` / `  stages: ...`), so the output
/// pastes under `apis:` as it is.
fn indent_as_list_item(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + yaml.len() / 8);
    for (i, line) in yaml.lines().enumerate() {
        out.push_str(if i == 0 {
            "- "
        } else if line.is_empty() {
            ""
        } else {
            "  "
        });
        out.push_str(line);
        out.push('\n');
    }
    out
}
