//! `edgeway sdk`: a typed client for an API of a config, made by the well-kept generator of
//! each ecosystem from the API's OpenAPI export (without API Gateway's extensions), with the
//! stage's base URL and the API-key header wired in.
//!
//! - `typescript`: `openapi-typescript` (npm) writes the types (`schema.d.ts`); the client is
//!   `openapi-fetch` (npm, a dependency of the generated package) typed by them (`client.ts`).
//! - `python`: `openapi-python-client` (PyPI) writes a package; `edgeway_client.py` in it
//!   makes a client for the stage.
//!
//! The generators are found on `PATH` (or named by `EDGEWAY_OPENAPI_TYPESCRIPT` and
//! `EDGEWAY_OPENAPI_PYTHON_CLIENT`); a missing one is an error that says how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(Debug, clap::Args)]
pub struct SdkArgs {
    /// The client's language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// The config file (YAML).
    #[arg(long, short)]
    config: PathBuf,
    /// The API (default: the config's only API).
    #[arg(long)]
    api: Option<String>,
    /// The stage the client calls (default: the API's first).
    #[arg(long)]
    stage: Option<String>,
    /// Where clients reach the gateway, without the stage (`https://api.example.com`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server_url: String,
    /// The folder to write the client into (created; files in it are replaced).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Lang {
    Typescript,
    Python,
}

pub fn run(args: SdkArgs) -> ExitCode {
    match generate(&args) {
        Ok(()) => {
            println!("{}: client written", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edgeway sdk: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(args: &SdkArgs) -> Result<(), String> {
    let config = crate::config::load(&args.config).map_err(|e| e.to_string())?;
    let definitions = crate::config::Definitions::from_config(&config);
    let api = match &args.api {
        Some(api) => api.clone(),
        None => match definitions.names().collect::<Vec<_>>()[..] {
            [only] => only.to_owned(),
            ref names => return Err(format!("name the API with --api: {}", names.join(", "))),
        },
    };
    let server = args.server_url.trim_end_matches('/').to_owned();
    let document = definitions
        .export(&api, args.stage.as_deref(), false, Some(server))
        .ok_or_else(|| {
            format!(
                "no api \"{api}\" with that stage in {}",
                args.config.display()
            )
        })?;
    let base_url = document
        .pointer("/servers/0/url")
        .and_then(|u| u.as_str())
        .unwrap_or_default()
        .to_owned();
    let uses_key = document
        .pointer("/components/securitySchemes/api_key")
        .is_some();
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let spec = args.out.join("openapi.json");
    write(
        &spec,
        &serde_json::to_string_pretty(&document).unwrap_or_default(),
    )?;
    match args.lang {
        Lang::Typescript => typescript(&args.out, &spec, &api, &base_url, uses_key),
        Lang::Python => python(&args.out, &spec, &api, &base_url, uses_key),
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs a generator found on `PATH` (or named by `env`).
fn run_tool(name: &str, env: &str, install: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let program = std::env::var_os(env).unwrap_or_else(|| name.into());
    let out = Command::new(&program).args(args).output().map_err(|e| {
        format!("cannot run {name} ({e}): install it ({install}) or name it with {env}")
    })?;
    if !out.status.success() {
        return Err(format!(
            "{name} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn typescript(
    out: &Path,
    spec: &Path,
    api: &str,
    base_url: &str,
    uses_key: bool,
) -> Result<(), String> {
    let schema = out.join("schema.d.ts");
    run_tool(
        "openapi-typescript",
        "EDGEWAY_OPENAPI_TYPESCRIPT",
        "npm install openapi-typescript",
        &[spec.as_os_str(), "-o".as_ref(), schema.as_os_str()],
    )?;
    let key = if uses_key {
        "\n  /** Sent as `x-api-key`, for the routes that need an API key. */\n  apiKey?: string;"
    } else {
        ""
    };
    let key_header = if uses_key {
        "...(options.apiKey ? { \"x-api-key\": options.apiKey } : {}), "
    } else {
        ""
    };
    write(
        &out.join("client.ts"),
        &format!(
            r#"// A typed client for the API `{api}`, written by `edgeway sdk`: the types are
// openapi-typescript's (schema.d.ts), the calls openapi-fetch's.
import createClient from "openapi-fetch";
import type {{ paths }} from "./schema";

export type {{ paths, components, operations }} from "./schema";

/** Where the stage is served. */
export const baseUrl = {base_url:?};

export interface ApiClientOptions {{{key}
  /** Another base URL than the stage's. */
  baseUrl?: string;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** The fetch to use (the global one by default). */
  fetch?: typeof globalThis.fetch;
}}

/** A client for the stage: `client.GET("/pets/{{petId}}", {{ params: {{ path: {{ petId: "1" }} }} }})`. */
export function createApiClient(options: ApiClientOptions = {{}}) {{
  return createClient<paths>({{
    baseUrl: options.baseUrl ?? baseUrl,
    headers: {{ {key_header}...options.headers }},
    fetch: options.fetch,
  }});
}}
"#
        ),
    )?;
    write(
        &out.join("package.json"),
        &format!(
            r#"{{
  "name": "{api}-client",
  "private": true,
  "type": "module",
  "main": "client.ts",
  "dependencies": {{ "openapi-fetch": "^0.14.0" }},
  "devDependencies": {{ "openapi-typescript": "^7.8.0", "typescript": "^5.9.2" }}
}}
"#
        ),
    )?;
    write(
        &out.join("tsconfig.json"),
        r#"{
  "compilerOptions": {
    "target": "ES2022",
    "module": "ES2022",
    "moduleResolution": "bundler",
    "strict": true,
    "skipLibCheck": true,
    "outDir": "dist"
  }
}
"#,
    )
}

fn python(
    out: &Path,
    spec: &Path,
    api: &str,
    base_url: &str,
    uses_key: bool,
) -> Result<(), String> {
    let package = format!("{}_client", api.replace('-', "_"));
    let target = out.join(&package);
    // Formatting hooks (ruff) are the generator's default; the client needs none.
    let settings = out.join(".openapi-python-client.yaml");
    write(&settings, "post_hooks: []\n")?;
    run_tool(
        "openapi-python-client",
        "EDGEWAY_OPENAPI_PYTHON_CLIENT",
        "pip install openapi-python-client",
        &[
            "generate".as_ref(),
            "--path".as_ref(),
            spec.as_os_str(),
            "--meta".as_ref(),
            "none".as_ref(),
            "--overwrite".as_ref(),
            "--config".as_ref(),
            settings.as_os_str(),
            "--output-path".as_ref(),
            target.as_os_str(),
        ],
    )?;
    let _ = std::fs::remove_file(&settings);
    let (key_param, key_header) = if uses_key {
        (
            ", api_key: str | None = None",
            "    if api_key is not None:\n        headers[\"x-api-key\"] = api_key\n",
        )
    } else {
        ("", "")
    };
    write(
        &target.join("edgeway_client.py"),
        &format!(
            r#""""A client for the API `{api}` at its stage, written by `edgeway sdk`.

    from {package}.edgeway_client import connect
    from {package}.api.default import get_pets
    response = get_pets.sync_detailed(client=connect(), type_="dog")
"""

from .client import Client

BASE_URL = {base_url:?}


def connect(base_url: str = BASE_URL{key_param}, headers: dict[str, str] | None = None) -> Client:
    """A client for the stage{key_doc}."""
    headers = dict(headers or {{}})
{key_header}    return Client(base_url=base_url, headers=headers)
"#,
            key_doc = if uses_key {
                "; `api_key` is sent as `x-api-key`"
            } else {
                ""
            },
        ),
    )
}
