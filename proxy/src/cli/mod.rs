//! The `edgeway` command line: `serve` runs a node, `validate` checks a config; `keys`,
//! `apis`, `stages`, `deploy`, `deployments`, `rollback` and `canary` drive a running node
//! through its admin API, as do `domains`, `plans`, `cache` and `plugins`.

mod keys;
mod lifecycle;
mod openapi;
mod sdk;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;
use serve::ServeOptions;

/// Edgeway: a self-hosted API gateway and edge proxy.
#[derive(Debug, Parser)]
#[command(name = "edgeway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node on a config file (reloaded on SIGHUP and when the file changes).
    Serve {
        /// The config file (YAML).
        #[arg(long, short)]
        config: PathBuf,
        /// Do not watch the config file; reload only on SIGHUP.
        #[arg(long)]
        no_watch: bool,
    },
    /// Check a config file and print every error with its key path and line.
    Validate {
        /// The config file (YAML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Import an API definition from another format.
    Import {
        #[command(subcommand)]
        command: openapi::ImportCommand,
    },
    /// Export an API of a config as an OpenAPI document.
    Export(openapi::ExportArgs),
    /// Generate a typed client (TypeScript or Python) for an API of a config.
    Sdk(sdk::SdkArgs),
    /// List a node's APIs, their stages and the deployment each serves.
    Apis {
        #[command(flatten)]
        common: lifecycle::Common,
    },
    /// Show an API's stages (the deployment each serves, its canary, settings set here, any
    /// refusal); `stages set` and `stages reset` change a stage's settings.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Stages {
        #[command(flatten)]
        common: lifecycle::Common,
        /// The API whose stages to show, by name.
        #[arg(long, required = true)]
        api: Option<String>,
        #[command(subcommand)]
        command: Option<lifecycle::StagesCommand>,
    },
    /// Deploy an API as the node's config file holds it now, and point a stage at it.
    Deploy {
        #[command(flatten)]
        common: lifecycle::Common,
        #[command(flatten)]
        args: lifecycle::DeployArgs,
    },
    /// List, show, compare and delete an API's deployments.
    Deployments {
        #[command(flatten)]
        common: lifecycle::Common,
        #[command(subcommand)]
        command: lifecycle::DeploymentsCommand,
    },
    /// Point a stage back at an earlier deployment (default: the one before its current).
    Rollback {
        #[command(flatten)]
        common: lifecycle::Common,
        #[command(flatten)]
        args: lifecycle::RollbackArgs,
    },
    /// Start, promote or stop a stage's canary release.
    Canary {
        #[command(flatten)]
        common: lifecycle::Common,
        #[command(subcommand)]
        command: lifecycle::CanaryCommand,
    },
    /// List the custom domains and their base path mappings.
    Domains {
        #[command(flatten)]
        common: lifecycle::Common,
    },
    /// List usage plans, and put API keys in and out of them.
    Plans {
        #[command(flatten)]
        common: lifecycle::Common,
        #[command(subcommand)]
        command: lifecycle::PlansCommand,
    },
    /// Show stage caches, and flush one.
    Cache {
        #[command(flatten)]
        common: lifecycle::Common,
        #[command(subcommand)]
        command: lifecycle::CacheCommand,
    },
    /// List plugins, and upload a new version of one.
    Plugins {
        #[command(flatten)]
        common: lifecycle::Common,
        #[command(subcommand)]
        command: lifecycle::PluginsCommand,
    },
    /// Manage API keys on a running node (through its admin API).
    Keys {
        #[command(flatten)]
        target: keys::AdminTarget,
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
}

/// Runs the command line; the binary's `main`.
pub fn main() -> ExitCode {
    main_with_args(std::env::args_os())
}

/// Runs the command line with these arguments (the first is the program name).
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Keys { target, command } => keys::run(target, command),
        Command::Apis { common } => lifecycle::run(common, lifecycle::Lifecycle::Apis),
        Command::Stages {
            common,
            api,
            command,
        } => match (command, api) {
            (Some(command), _) => {
                lifecycle::run(common, lifecycle::Lifecycle::StagesChange(command))
            }
            (None, api) => lifecycle::run(
                common,
                lifecycle::Lifecycle::Stages {
                    api: api.unwrap_or_default(),
                },
            ),
        },
        Command::Deploy { common, args } => {
            lifecycle::run(common, lifecycle::Lifecycle::Deploy(args))
        }
        Command::Deployments { common, command } => {
            lifecycle::run(common, lifecycle::Lifecycle::Deployments(command))
        }
        Command::Rollback { common, args } => {
            lifecycle::run(common, lifecycle::Lifecycle::Rollback(args))
        }
        Command::Canary { common, command } => {
            lifecycle::run(common, lifecycle::Lifecycle::Canary(command))
        }
        Command::Domains { common } => lifecycle::run(common, lifecycle::Lifecycle::Domains),
        Command::Plans { common, command } => {
            lifecycle::run(common, lifecycle::Lifecycle::Plans(command))
        }
        Command::Cache { common, command } => {
            lifecycle::run(common, lifecycle::Lifecycle::Cache(command))
        }
        Command::Plugins { common, command } => {
            lifecycle::run(common, lifecycle::Lifecycle::Plugins(command))
        }
        Command::Import { command } => openapi::import(command),
        Command::Export(args) => openapi::export(args),
        Command::Sdk(args) => sdk::run(args),
        Command::Validate { config } => match config::load(&config) {
            // Plugins are compiled and checked against their role's world too: a component
            // that would be refused at startup fails validation.
            Ok(loaded) => match crate::plugins::PluginHost::new()
                .map_err(|e| format!("{e:#}"))
                .and_then(|host| {
                    host.load(&loaded.plugins, &loaded.upstream)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }) {
                Ok(()) => {
                    for warning in &loaded.warnings {
                        eprintln!("{}: warning: {warning}", config.display());
                    }
                    println!("{}: ok", config.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!("{}: plugins refused", config.display());
                    ExitCode::FAILURE
                }
            },
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{}: {} error(s)", config.display(), errors.errors.len());
                ExitCode::FAILURE
            }
        },
        Command::Serve { config, no_watch } => {
            crate::telemetry::init_logging();
            let loaded = match config::load(&config) {
                Ok(loaded) => loaded,
                Err(errors) => {
                    eprintln!("{errors}");
                    eprintln!(
                        "{}: {} error(s); not starting",
                        config.display(),
                        errors.errors.len()
                    );
                    return ExitCode::FAILURE;
                }
            };
            let options = ServeOptions {
                config_path: config,
                watch: !no_watch,
            };
            match serve::serve(options, loaded) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "edgeway stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
