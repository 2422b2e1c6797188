//! Write Edgeway plugins in Rust.
//!
//! An Edgeway plugin is a WebAssembly component that plays one role in a route's pipeline
//! (see `wit/plugin.wit`, package `edgeway:plugin@0.1.0`):
//!
//! - an [`Authorizer`] decides who the caller is (`auth: NAME` on a route);
//! - a [`Transformer`] changes requests on their way to the integration and responses on
//!   their way back (`request_transforms` / `response_transforms`);
//! - a [`Handler`] answers requests itself (`integration: { function: NAME }`);
//! - a [`Lambda`] is a function in AWS Lambda's shape, JSON event in, JSON result out: a
//!   handler of API Gateway's proxy events (`function: { plugin: NAME, payload:
//!   aws-proxy-2.0 }`) or a Lambda authorizer returning an IAM policy (`type: lambda`).
//!
//! Implement the role's trait on a type, export it with the role's macro
//! ([`export_authorizer!`], [`export_transformer!`], [`export_handler!`], [`export_lambda!`]) and build the crate
//! as a `cdylib` for `wasm32-wasip2`; the `.wasm` that cargo writes is the component.
//!
//! Edgeway reuses an instance for many requests. The SDK builds the plugin value once per
//! instance, on its first call, through the trait's `new`: parse the config
//! ([`config`]) and build lookup tables there, not per call. A trap (a panic) discards the
//! instance; the next call gets a fresh one and so a fresh `new`.
//!
//! The host imports are wrapped in [`log`], [`kv`], [`metrics`] and [`http`]; the plugin's
//! config is read with [`config`]. Requests and responses are the WIT records with helper
//! methods ([`Request::header`], [`Response::json`], [`HeaderList`], ...).
//!
//! ```no_run,standalone_crate
//! use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     greeting: String,
//! }
//!
//! struct Greeter {
//!     config: Config,
//! }
//!
//! impl Handler for Greeter {
//!     fn new() -> Result<Self, Error> {
//!         Ok(Greeter { config: edgeway_plugin_sdk::config()? })
//!     }
//!
//!     fn handle(&self, request: Request) -> Result<Response, Error> {
//!         let name = request.path_param("name").unwrap_or("stranger");
//!         Ok(Response::text(200, format!("{}, {name}!", self.config.greeting)))
//!     }
//! }
//!
//! export_handler!(Greeter);
//! ```
//!
//! The bindings compile on every target (imports are unreachable off wasm32), so plugin
//! logic can be unit-tested on the host; only calls into the host imports need the real
//! Edgeway.
#![deny(missing_docs)]

#[allow(missing_docs, missing_debug_implementations, clippy::all)]
mod bindings;
mod config;
mod error;
mod export;
mod headers;
pub mod http;
mod identity;
pub mod kv;
pub mod log;
pub mod metrics;
mod roles;
mod types;

/// What a [`Mapper`] reads and makes.
pub use bindings::mapper::edgeway::plugin::mapping::{MappingInput, RenderError, Rendered};
pub use config::{ConfigError, config, config_from_json, config_text};
pub use error::Error;
pub use headers::HeaderList;
pub use identity::Identity;
pub use roles::{Authorizer, Handler, Lambda, LambdaContext, Mapper, Transformer};
pub use types::{Allow, Decision, Headers, Principal, Request, RequestFlow, Response};

/// What the export macros expand to. Not part of the API: names and shapes change freely.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::{authorizer, handler, lambda, mapper, transformer};
    pub use crate::export::{Instance, lambda_context, parse_event};
}
