//! Edgeway: a self-hosted API gateway and edge proxy.
//!
//! The crate is the gateway; the `edgeway` binary is a thin `main` over [`cli::main`]. Start
//! reading at [`pipeline::run`], the function every request goes through; [`node`] runs a
//! process (listeners, reload, drain); [`config`] turns the YAML file into a validated model
//! that [`gateway::Gateway::build`] compiles into what requests use.

pub mod access_keys;
pub mod admin;
pub mod auth;
pub mod body;
pub mod cache;
pub mod cli;
pub mod config;
pub mod cors;
pub mod encoding;
pub mod gateway;
pub mod ip_policy;
pub mod keys;
pub mod listener;
pub mod node;
pub mod params;
pub mod pipeline;
pub mod plugins;
pub mod router;
pub mod state;
mod sync;
pub mod telemetry;
pub mod throttle;
pub mod upstream;
pub mod validation;
