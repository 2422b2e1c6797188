//! `edgeway import openapi FILE`: an API Gateway export (or any OpenAPI document) as an
//! Edgeway API definition, with every warning on stderr; and `edgeway export`: an API of a
//! config as an OpenAPI document.

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

pub fn import(command: ImportCommand) -> ExitCode {
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
    emit(out.as_deref(), &yaml)
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

/// `edgeway export`'s options.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The config file (YAML).
    #[arg(long, short)]
    config: PathBuf,
    /// The API to export.
    #[arg(long)]
    api: String,
    /// The stage the document describes (default: the API's first).
    #[arg(long)]
    stage: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// `aws`: with API Gateway's extensions, so the document imports again as the same API;
    /// `none`: a plain OpenAPI document for client generators and docs.
    #[arg(long, value_enum, default_value = "aws")]
    extensions: Extensions,
    /// Where clients reach the stage, without the stage (`https://api.example.com`); by
    /// default the server URL is relative (`/prod`).
    #[arg(long)]
    server_url: Option<String>,
    /// Write the document here instead of to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Extensions {
    Aws,
    None,
}

pub fn export(args: ExportArgs) -> ExitCode {
    let config = match crate::config::load(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} error(s)",
                args.config.display(),
                errors.errors.len()
            );
            return ExitCode::FAILURE;
        }
    };
    let Some(document) = crate::config::Definitions::from_config(&config).export(
        &args.api,
        args.stage.as_deref(),
        matches!(args.extensions, Extensions::Aws),
        args.server_url.clone(),
    ) else {
        let names: Vec<&str> = config.apis.iter().map(|a| a.name.as_str()).collect();
        eprintln!(
            "{}: no api \"{}\" with stage {}; the apis are: {}",
            args.config.display(),
            args.api,
            args.stage.as_deref().unwrap_or("(any)"),
            names.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&document).unwrap_or_default() + "\n",
        Format::Yaml => serde_saphyr::to_string(&document).unwrap_or_default(),
    };
    emit(args.out.as_deref(), &text)
}

/// Writes `text` to `out`, or to stdout without one.
fn emit(out: Option<&std::path::Path>, text: &str) -> ExitCode {
    match out {
        None => print!("{text}"),
        Some(out) => {
            if let Err(e) = std::fs::write(out, text) {
                eprintln!("{}: cannot write: {e}", out.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
