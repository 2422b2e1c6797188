//! `edgeway keys`: API keys through a running node's admin API, for operators and scripts.
//!
//! The node is found with `--admin URL`, or from `--config FILE` (its `admin.addr`, a wildcard
//! address meaning this host); the bearer token is read from the environment variable named
//! by `--token-env`, else by the config's `admin.token_env`, else `EDGEWAY_ADMIN_TOKEN`.
//! Output is the admin API's JSON, so scripts can read it.

use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Where the node's admin API is.
#[derive(Debug, Args)]
pub struct AdminTarget {
    /// The admin API's base URL, e.g. http://127.0.0.1:9901.
    #[arg(long, env = "EDGEWAY_ADMIN_URL", global = true)]
    admin: Option<String>,
    /// A node's config file, for its admin address and token variable.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// The environment variable holding the admin token.
    #[arg(long, global = true)]
    token_env: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it with its value (shown only this once).
    Create {
        #[arg(long)]
        name: String,
        /// The usage plan, by name.
        #[arg(long)]
        plan: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Create the key disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List the keys (without values).
    List,
    /// Show one key.
    Get { id: String },
    /// Enable a key.
    Enable { id: String },
    /// Disable a key: requests with it get 403 until it is enabled again.
    Disable { id: String },
    /// Move a key to another usage plan.
    SetPlan { id: String, plan: String },
    /// Delete a key.
    Delete { id: String },
    /// Import keys from API Gateway's CSV format (Name, Key, Description, Enabled,
    /// UsagePlanIds); all rows or none.
    Import { file: PathBuf },
}

/// Runs `edgeway keys ...`.
pub fn run(target: AdminTarget, command: KeysCommand) -> ExitCode {
    match run_inner(target, command) {
        Ok((status, body)) => {
            println!("{}", String::from_utf8_lossy(&body).trim_end());
            if status.is_success() {
                ExitCode::SUCCESS
            } else {
                eprintln!("edgeway keys: the node answered {status}");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("edgeway keys: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(target: AdminTarget, command: KeysCommand) -> Result<(StatusCode, Bytes), String> {
    let (base, token) = resolve(&target)?;
    let json = |v: serde_json::Value| Some((Bytes::from(v.to_string()), "application/json"));
    let (method, path, body) = match command {
        KeysCommand::Create {
            name,
            plan,
            description,
            disabled,
        } => (
            Method::POST,
            "/admin/keys".to_owned(),
            json(serde_json::json!({
                "name": name, "plan": plan, "description": description, "enabled": !disabled,
            })),
        ),
        KeysCommand::List => (Method::GET, "/admin/keys".to_owned(), None),
        KeysCommand::Get { id } => (Method::GET, format!("/admin/keys/{id}"), None),
        KeysCommand::Enable { id } => (
            Method::PATCH,
            format!("/admin/keys/{id}"),
            json(serde_json::json!({ "enabled": true })),
        ),
        KeysCommand::Disable { id } => (
            Method::PATCH,
            format!("/admin/keys/{id}"),
            json(serde_json::json!({ "enabled": false })),
        ),
        KeysCommand::SetPlan { id, plan } => (
            Method::PATCH,
            format!("/admin/keys/{id}"),
            json(serde_json::json!({ "plan": plan })),
        ),
        KeysCommand::Delete { id } => (Method::DELETE, format!("/admin/keys/{id}"), None),
        KeysCommand::Import { file } => {
            let text =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            (
                Method::POST,
                "/admin/keys/import".to_owned(),
                Some((Bytes::from(text), "text/csv")),
            )
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(send(&base, &token, method, &path, body))
}

/// The admin base URL (`http://host:port`) and token.
pub(super) fn resolve(target: &AdminTarget) -> Result<(String, String), String> {
    let config = match &target.config {
        Some(path) => Some(crate::config::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let admin = config.as_ref().and_then(|c| c.admin.as_ref());
    let base = match (&target.admin, admin) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(admin)) => {
            let mut addr = admin.addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
        (None, None) => {
            return Err(
                "say where the node is: --admin URL, or --config FILE with an `admin` section"
                    .into(),
            );
        }
    };
    let variable = target
        .token_env
        .clone()
        .or_else(|| admin.and_then(|a| a.token_env.clone()))
        .unwrap_or_else(|| "EDGEWAY_ADMIN_TOKEN".to_owned());
    let token = std::env::var(&variable)
        .map_err(|_| format!("the admin token variable {variable} is not set"))?;
    Ok((base, token))
}

pub(super) async fn send(
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<(Bytes, &'static str)>,
) -> Result<(StatusCode, Bytes), String> {
    let uri: http::Uri = format!("{base}{path}")
        .parse()
        .map_err(|e| format!("bad admin URL {base}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "the admin URL must be http://HOST:PORT, not {base}"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("the admin URL {base} has no host"))?
        .clone();
    let stream = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(authority.as_str()),
    )
    .await
    .map_err(|_| format!("no answer from {base} within 10 s"))?
    .map_err(|e| format!("cannot connect to {base}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{base}: {e}"))?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority.as_str())
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some((bytes, content_type)) => {
            request = request.header(http::header::CONTENT_TYPE, content_type);
            bytes
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("building the request: {e}"))?;
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        sender.send_request(request),
    )
    .await
    .map_err(|_| format!("{base} did not answer within 60 s"))?
    .map_err(|e| format!("{base}: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}
