//! Edgeway: a self-hosted API gateway and edge proxy.
//!
//! The crate is the gateway; the `edgeway` binary is a thin `main` over [`cli::main`]. Start
//! reading at [`pipeline::run`], the function every request goes through; [`node`] is what
//! lives as long as the process (stores, plugin host, the current generation) and `cli::serve`
//! runs it (listeners, reload, drain); [`config`] turns the YAML file into a validated model
//! that [`generation::Generation::build`] compiles into what requests use. ARCHITECTURE.md at
//! the repository root maps the rest.

pub mod admin;
pub mod auth;
pub mod body;
pub mod cache;
pub mod cli;
pub mod client_cert;
pub mod config;
pub mod cors;
pub mod domains;
pub mod encoding;
pub mod gateway_responses;
pub mod generation;
pub mod lambda;
pub mod listener;
pub mod mapping;
pub mod node;
pub mod openapi;
pub mod pipeline;
pub mod plugins;
pub mod router;
pub mod state;
pub mod suggest;
mod sync;
pub mod telemetry;
pub mod throttle;
pub mod upstream;
pub mod validation;
pub mod websocket;
