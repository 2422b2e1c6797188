//! Test plugin: a handler that tries what a plugin must not be able to do and reports each
//! outcome as JSON, for the host's sandbox tests:
//!
//! ```json
//! { "file": "error: …", "dir": "error: …", "env_home": null, "env_count": 0, "tcp": "error: …" }
//! ```
//!
//! `file` reads `/etc/passwd`, `dir` lists `/`, `env_home` is `$HOME`, `env_count` counts
//! the environment, `tcp` connects to `127.0.0.1:1`. A success reads `ok: …`.

use std::fmt::Display;

use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};

fn outcome<T, E: Display>(result: Result<T, E>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("ok: {}", ok(value)),
        Err(e) => format!("error: {e}"),
    }
}

struct Sandbox;

impl Handler for Sandbox {
    fn new() -> Result<Self, Error> {
        Ok(Sandbox)
    }

    fn handle(&self, _request: Request) -> Result<Response, Error> {
        let file = outcome(std::fs::read_to_string("/etc/passwd"), |s| {
            format!("{} bytes", s.len())
        });
        let dir = outcome(std::fs::read_dir("/"), |d| format!("{} entries", d.count()));
        let env_home = std::env::var("HOME").ok();
        let env_count = std::env::vars_os().count();
        let tcp = outcome(std::net::TcpStream::connect("127.0.0.1:1"), |_| {
            "connected".to_owned()
        });
        Response::json(
            200,
            &serde_json::json!({
                "file": file,
                "dir": dir,
                "env_home": env_home,
                "env_count": env_count,
                "tcp": tcp,
            }),
        )
    }
}

export_handler!(Sandbox);
