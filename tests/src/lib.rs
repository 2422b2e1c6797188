//! Harness for the end-to-end tests: runs the real `edgeway` binary as a child process
//! against real origins (hyper servers bound to `127.0.0.1:0` in the test process).
//!
//! - [`Gateway`] writes a config into a fresh temp dir, spawns `edgeway serve`, collects its
//!   stdout (access log) and stderr (operational log) line by line, and waits for the
//!   `"listening"` events to learn the bound addresses.
//! - [`Origin`] is a hyper 1.x server (HTTP/1.1 + h2c, optionally TLS) that records every
//!   request it gets: method, URI, headers, body and whether the body arrived complete.
//! - [`TestCa`] issues certificates with rcgen.
//! - [`Moto`] runs the moto AWS emulator, signature checks on, for `aws` integrations.
//! - [`plugin_file`] finds the components `scripts/build-plugins.sh` built.
//! - [`h3_requests`] speaks HTTP/3 through aioquic (`tests/tools/h3_client.py`).
//! - [`raw_request`] speaks raw bytes over TCP for what a well-behaved client can't send.
//! - [`Got`], [`admin_cache`] and [`assert_error_with_list`] read cache headers, the admin
//!   cache API and validation errors.
//!
//! Every wait is bounded in time; only loopback addresses are used.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod cache;
mod client;
mod gateway;
mod h3;
mod moto;
mod origin;
mod plugins;
mod tls;
mod ws;

pub use cache::*;
pub use client::*;
pub use gateway::*;
pub use h3::*;
pub use moto::*;
pub use origin::*;
pub use plugins::*;
pub use tls::*;
pub use ws::*;

pub use serde_json::json;
