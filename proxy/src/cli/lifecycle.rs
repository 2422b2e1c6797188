//! `edgeway apis`, `stages`, `deploy`, `deployments`, `rollback` and `canary` (a node's
//! deployment lifecycle, `admin/deployments.rs`), and `domains`, `plans`, `cache` and `plugins`: a
//! running node through its admin API, found as `edgeway keys` finds it (`--admin` or
//! `EDGEWAY_ADMIN_URL`, the token from `EDGEWAY_ADMIN_TOKEN`).
//!
//! Output is a table for people, or the admin API's JSON with `--output json`; a refusal is
//! the node's message on stderr and exit status 1.

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http::Method;
use serde_json::{Value, json};

use super::keys::AdminTarget;

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns, for people.
    #[default]
    Table,
    /// The admin API's JSON, for scripts.
    Json,
}

/// What every lifecycle command takes: where the node is, and how to print.
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    target: AdminTarget,
    /// `table` for people, `json` for scripts.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
}

/// A stage of an API.
#[derive(Debug, Args)]
pub struct StageArgs {
    /// The API, by name.
    #[arg(long)]
    api: String,
    /// The stage, by name.
    #[arg(long)]
    stage: String,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    at: StageArgs,
    /// What changed, shown in `edgeway deployments list`.
    #[arg(long, short, default_value = "")]
    message: String,
    /// Who deploys (default: $USER).
    #[arg(long)]
    author: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeploymentsCommand {
    /// An API's deployments, oldest first, with the stages that serve each.
    List {
        #[arg(long)]
        api: String,
    },
    /// One deployment, with its definition.
    Show { id: String },
    /// What changed from one deployment's definition to another's.
    Diff { from: String, to: String },
    /// Delete a deployment no stage serves.
    Delete { id: String },
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    at: StageArgs,
    /// The deployment to serve (default: the one deployed before the stage's current one).
    #[arg(long)]
    to: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CanaryCommand {
    /// Deploy the config as it is now as the stage's canary, for a share of its requests.
    Start {
        #[command(flatten)]
        at: StageArgs,
        /// The share of requests the canary serves, 0 to 100.
        #[arg(long)]
        percent: f64,
        /// A stage variable the canary sees instead of the stage's (repeatable): `k=v`.
        #[arg(long = "var", value_name = "K=V")]
        vars: Vec<String>,
        /// Let the canary read and fill the stage cache.
        #[arg(long)]
        use_stage_cache: bool,
        /// A request header that picks the side: `canary` or `base`.
        #[arg(long)]
        pin_header: Option<String>,
        /// Serve this stored deployment as the canary instead of deploying the config.
        #[arg(long)]
        deployment: Option<String>,
        #[arg(long, short, default_value = "")]
        message: String,
    },
    /// Make the canary's deployment the stage's, and end the canary.
    Promote {
        #[command(flatten)]
        at: StageArgs,
    },
    /// End the canary: every request goes to the stage's deployment.
    Stop {
        #[command(flatten)]
        at: StageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum StagesCommand {
    /// Change a stage's settings over the config file's (a stage served from a deployment;
    /// one that follows the file is changed in the file). Kept across deploys and rollbacks.
    Set {
        #[command(flatten)]
        at: StageArgs,
        /// Set a stage variable: NAME=VALUE (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Remove a stage variable the file sets (repeatable).
        #[arg(long = "unset-var", value_name = "NAME")]
        unset_vars: Vec<String>,
        /// The stage's token bucket: RATE:BURST (requests per second, requests at once).
        #[arg(long, value_name = "RATE:BURST")]
        throttle: Option<String>,
        /// Remove the stage's throttle.
        #[arg(long, conflicts_with = "throttle")]
        no_throttle: bool,
        /// Cache the stage's answers for this many seconds (the file's other cache settings
        /// stay).
        #[arg(long, value_name = "SECONDS")]
        cache_ttl: Option<u64>,
        /// Turn the stage cache off.
        #[arg(long, conflicts_with = "cache_ttl")]
        no_cache: bool,
        /// Any other change: a JSON merge patch of the stage's `variables`, `cache`,
        /// `throttle`, `policy` and `docs` (`null` removes), applied after the flags above.
        #[arg(long, value_name = "JSON")]
        patch: Option<String>,
    },
    /// Drop what `stages set` changed: the config file's settings apply again.
    Reset {
        #[command(flatten)]
        at: StageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlansCommand {
    /// The config's usage plans: the stages each covers, its limits and its keys.
    List,
    /// Create a usage plan, kept in the state store beside the config file's plans.
    Create {
        /// The plan's name.
        name: String,
        /// A stage the plan's keys may call: API/STAGE (repeatable).
        #[arg(long = "stage", value_name = "API/STAGE", required = true)]
        stages: Vec<String>,
        /// Each key's token bucket: RATE:BURST (requests per second, requests at once).
        #[arg(long, value_name = "RATE:BURST")]
        throttle: Option<String>,
        /// Each key's quota: LIMIT/PERIOD, the period `day`, `week` or `month`.
        #[arg(long, value_name = "LIMIT/PERIOD")]
        quota: Option<String>,
    },
    /// Delete a usage plan made with `plans create`, once no key is in it.
    Delete {
        /// The plan, by name.
        name: String,
    },
    /// Put an API key in a plan (a key is in one plan at a time).
    Attach {
        /// The plan, by name.
        plan: String,
        /// The key, by id.
        key: String,
    },
    /// Take an API key out of its plan.
    Detach {
        /// The key, by id.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Every stage cache: entries, bytes, hits and misses.
    List,
    /// Drop a stage's cached answers (or one route's).
    Flush {
        #[command(flatten)]
        at: StageArgs,
        /// Only this route's entries, as written: `GET /pets/{id}`.
        #[arg(long)]
        route: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// The loaded plugins: role, version and call counts.
    List,
    /// Swap in a new version of a plugin from a component file, without a restart.
    Upload {
        /// The plugin, by name.
        name: String,
        /// The component (`.wasm`).
        file: std::path::PathBuf,
    },
}

/// One operator command.
#[derive(Debug)]
pub enum Lifecycle {
    Apis,
    Stages { api: String },
    StagesChange(StagesCommand),
    Deploy(DeployArgs),
    Deployments(DeploymentsCommand),
    Rollback(RollbackArgs),
    Canary(CanaryCommand),
    Plans(PlansCommand),
    Cache(CacheCommand),
    Plugins(PluginsCommand),
    Domains,
}

/// Runs a lifecycle command against the node `common` names.
pub fn run(common: Common, command: Lifecycle) -> ExitCode {
    let (method, path, body) = match request(command) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("edgeway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let answer = (|| {
        let (base, token) = super::keys::resolve(&common.target)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        runtime.block_on(super::keys::send(&base, &token, method, &path, body))
    })();
    let (status, bytes) = match answer {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("edgeway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let text = value["message"].as_str().map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_owned,
        );
        eprintln!("edgeway: the node refused ({status}): {text}");
        return ExitCode::FAILURE;
    }
    match common.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
        Output::Table => print!("{}", table(&path, &value)),
    }
    ExitCode::SUCCESS
}

/// `--throttle RATE:BURST` as a config's `throttle`.
fn rate_and_burst(throttle: &str) -> Result<Value, String> {
    let parsed = throttle
        .split_once(':')
        .and_then(|(rate, burst)| Some((rate.parse::<f64>().ok()?, burst.parse::<u64>().ok()?)));
    match parsed {
        Some((rate, burst)) => Ok(json!({ "rate": rate, "burst": burst })),
        None => Err(format!(
            "--throttle {throttle}: expected RATE:BURST such as 100:200"
        )),
    }
}

/// A request body: JSON, or a file's bytes with its media type.
type Body = Option<(Bytes, &'static str)>;

fn json_body(value: Value) -> Body {
    Some((Bytes::from(value.to_string()), "application/json"))
}

/// The admin request a command makes.
fn request(command: Lifecycle) -> Result<(Method, String, Body), String> {
    let stage_path = |at: &StageArgs, tail: &str| {
        format!(
            "/admin/apis/{}/stages/{}{tail}",
            segment(&at.api),
            segment(&at.stage)
        )
    };
    Ok(match command {
        Lifecycle::Apis => (Method::GET, "/admin/apis".into(), None),
        Lifecycle::Stages { api } => (
            Method::GET,
            format!("/admin/apis/{}/stages", segment(&api)),
            None,
        ),
        Lifecycle::StagesChange(StagesCommand::Set {
            at,
            vars,
            unset_vars,
            throttle,
            no_throttle,
            cache_ttl,
            no_cache,
            patch,
        }) => {
            let mut settings = json!({});
            for var in vars {
                let (name, value) = var
                    .split_once('=')
                    .ok_or_else(|| format!("--var {var}: expected NAME=VALUE"))?;
                settings["variables"][name] = json!(value);
            }
            for name in unset_vars {
                settings["variables"][name.as_str()] = Value::Null;
            }
            if let Some(throttle) = throttle {
                settings["throttle"] = rate_and_burst(&throttle)?;
            }
            if no_throttle {
                settings["throttle"] = Value::Null;
            }
            if let Some(ttl) = cache_ttl {
                settings["cache"] = json!({ "ttl_s": ttl });
            }
            if no_cache {
                settings["cache"] = Value::Null;
            }
            if let Some(patch) = patch {
                let patch: Value = serde_json::from_str(&patch)
                    .map_err(|e| format!("--patch is not JSON: {e}"))?;
                crate::config::deploy::compose_patches(&mut settings, &patch);
            }
            if settings.as_object().is_some_and(serde_json::Map::is_empty) {
                return Err(
                    "nothing to set: give --var, --unset-var, --throttle, --no-throttle, --cache-ttl, --no-cache or --patch".into(),
                );
            }
            (Method::PATCH, stage_path(&at, ""), json_body(settings))
        }
        Lifecycle::StagesChange(StagesCommand::Reset { at }) => {
            (Method::DELETE, stage_path(&at, "/settings"), None)
        }
        Lifecycle::Deploy(args) => (
            Method::POST,
            format!("/admin/apis/{}/deployments", segment(&args.at.api)),
            json_body(json!({
                "stage": args.at.stage,
                "description": args.message,
                "author": args.author.or_else(|| std::env::var("USER").ok()),
            })),
        ),
        Lifecycle::Deployments(DeploymentsCommand::List { api }) => (
            Method::GET,
            format!("/admin/apis/{}/deployments", segment(&api)),
            None,
        ),
        Lifecycle::Deployments(DeploymentsCommand::Show { id }) => (
            Method::GET,
            format!("/admin/deployments/{}", segment(&id)),
            None,
        ),
        Lifecycle::Deployments(DeploymentsCommand::Diff { from, to }) => (
            Method::GET,
            format!(
                "/admin/deployments/{}/diff/{}",
                segment(&from),
                segment(&to)
            ),
            None,
        ),
        Lifecycle::Deployments(DeploymentsCommand::Delete { id }) => (
            Method::DELETE,
            format!("/admin/deployments/{}", segment(&id)),
            None,
        ),
        Lifecycle::Rollback(args) => (
            Method::POST,
            stage_path(&args.at, "/rollback"),
            json_body(json!({ "to": args.to })),
        ),
        Lifecycle::Canary(CanaryCommand::Start {
            at,
            percent,
            vars,
            use_stage_cache,
            pin_header,
            deployment,
            message,
        }) => {
            let mut variables = serde_json::Map::new();
            for var in vars {
                let Some((k, v)) = var.split_once('=') else {
                    return Err(format!("--var {var}: expected NAME=VALUE"));
                };
                variables.insert(k.to_owned(), v.into());
            }
            (
                Method::PUT,
                stage_path(&at, "/canary"),
                json_body(json!({
                    "percent": percent,
                    "variables": variables,
                    "use_stage_cache": use_stage_cache,
                    "pin_header": pin_header,
                    "deployment": deployment,
                    "description": message,
                    "author": std::env::var("USER").ok(),
                })),
            )
        }
        Lifecycle::Canary(CanaryCommand::Promote { at }) => {
            (Method::POST, stage_path(&at, "/canary/promote"), None)
        }
        Lifecycle::Canary(CanaryCommand::Stop { at }) => {
            (Method::DELETE, stage_path(&at, "/canary"), None)
        }
        Lifecycle::Domains => (Method::GET, "/admin/domains".into(), None),
        Lifecycle::Plans(PlansCommand::List) => (Method::GET, "/admin/plans".into(), None),
        Lifecycle::Plans(PlansCommand::Create {
            name,
            stages,
            throttle,
            quota,
        }) => {
            let mut plan = json!({ "name": name, "apis": stages });
            if let Some(throttle) = throttle {
                plan["throttle"] = rate_and_burst(&throttle)?;
            }
            if let Some(quota) = quota {
                let parsed = quota
                    .split_once('/')
                    .and_then(|(limit, period)| Some((limit.parse::<u64>().ok()?, period)));
                let Some((limit, period)) = parsed else {
                    return Err(format!(
                        "--quota {quota}: expected LIMIT/PERIOD such as 1000/day"
                    ));
                };
                plan["quota"] = json!({ "limit": limit, "period": period });
            }
            (Method::POST, "/admin/plans".into(), json_body(plan))
        }
        Lifecycle::Plans(PlansCommand::Delete { name }) => (
            Method::DELETE,
            format!("/admin/plans/{}", segment(&name)),
            None,
        ),
        Lifecycle::Plans(PlansCommand::Attach { plan, key }) => (
            Method::PATCH,
            format!("/admin/keys/{}", segment(&key)),
            json_body(json!({ "plan": plan })),
        ),
        Lifecycle::Plans(PlansCommand::Detach { key }) => (
            Method::PATCH,
            format!("/admin/keys/{}", segment(&key)),
            json_body(json!({ "plan": null })),
        ),
        Lifecycle::Cache(CacheCommand::List) => (Method::GET, "/admin/cache".into(), None),
        Lifecycle::Cache(CacheCommand::Flush { at, route }) => {
            let query = route.map_or(String::new(), |r| format!("?route={}", segment(&r)));
            (
                Method::DELETE,
                format!(
                    "/admin/cache/{}/{}{query}",
                    segment(&at.api),
                    segment(&at.stage)
                ),
                None,
            )
        }
        Lifecycle::Plugins(PluginsCommand::List) => (Method::GET, "/admin/plugins".into(), None),
        Lifecycle::Plugins(PluginsCommand::Upload { name, file }) => {
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            (
                Method::PUT,
                format!("/admin/plugins/{}", segment(&name)),
                Some((Bytes::from(bytes), "application/wasm")),
            )
        }
    })
}

/// A name as one path segment.
fn segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The answer to `path` as a table.
fn table(path: &str, value: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or(i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let canary = |c: &Value| {
        if c.is_null() {
            "-".to_owned()
        } else {
            format!("{} at {}%", text(&c["deployment"]), c["percent"])
        }
    };
    let stage_rows = |api: &str, stages: &Value| -> Vec<Vec<String>> {
        stages
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let refused = s["refused"].as_array().map_or(String::new(), |r| {
                    r.iter()
                        .map(|r| text(&r["reason"]))
                        .collect::<Vec<_>>()
                        .join("; ")
                });
                let settings = s["settings"].as_object().map_or("-".to_owned(), |o| {
                    o.keys().cloned().collect::<Vec<_>>().join(",")
                });
                vec![
                    api.to_owned(),
                    text(&s["stage"]),
                    text(&s["serves"]),
                    text(&s["deployment"]),
                    canary(&s["canary"]),
                    settings,
                    if refused.is_empty() {
                        "-".into()
                    } else {
                        format!("REFUSED: {refused}")
                    },
                ]
            })
            .collect()
    };
    const STAGE_HEAD: [&str; 7] = [
        "API",
        "STAGE",
        "SERVES",
        "DEPLOYMENT",
        "CANARY",
        "SET HERE",
        "STATUS",
    ];
    if let Some(apis) = value["apis"].as_array() {
        let rows = apis
            .iter()
            .flat_map(|a| stage_rows(a["name"].as_str().unwrap_or_default(), &a["stages"]))
            .collect();
        return columns(&STAGE_HEAD, rows);
    }
    if value.get("stages").is_some_and(Value::is_array)
        && value.get("api").is_some()
        && value.get("id").is_none()
    {
        return columns(
            &STAGE_HEAD,
            stage_rows(&text(&value["api"]), &value["stages"]),
        );
    }
    if let Some(plans) = value["plans"].as_array() {
        let rows = plans
            .iter()
            .map(|p| {
                let throttle = &p["throttle"];
                let quota = &p["quota"];
                vec![
                    text(&p["name"]),
                    text(&p["source"]),
                    text(&p["stages"]),
                    if throttle.is_null() {
                        "-".into()
                    } else {
                        format!("{}/s burst {}", throttle["rate"], throttle["burst"])
                    },
                    if quota.is_null() {
                        "-".into()
                    } else {
                        format!("{} per {}", quota["limit"], text(&quota["period"]))
                    },
                    text(&p["keys"]),
                ]
            })
            .collect();
        return columns(
            &["PLAN", "SOURCE", "STAGES", "THROTTLE", "QUOTA", "KEYS"],
            rows,
        );
    }
    if let Some(domains) = value["domains"].as_array() {
        // One row per mapping: the domain, `/base_path`, and the stage it serves.
        let rows = domains
            .iter()
            .flat_map(|d| {
                let private = if d["private"] == true { "private" } else { "-" };
                d["mappings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |m| {
                        vec![
                            text(&d["name"]),
                            format!("/{}", m["base_path"].as_str().unwrap_or_default()),
                            format!("{}/{}", text(&m["api"]), text(&m["stage"])),
                            text(&d["tls"]),
                            private.to_owned(),
                        ]
                    })
            })
            .collect();
        return columns(
            &["DOMAIN", "BASE PATH", "SERVES", "CERTIFICATE", "ACCESS"],
            rows,
        );
    }
    if let Some(plugins) = value["plugins"].as_array() {
        let rows = plugins
            .iter()
            .map(|p| {
                vec![
                    text(&p["name"]),
                    text(&p["role"]),
                    text(&p["version"]).chars().take(12).collect(),
                    text(&p["stats"]["calls"]),
                    text(&p["file"]),
                ]
            })
            .collect();
        return columns(&["PLUGIN", "ROLE", "VERSION", "CALLS", "FILE"], rows);
    }
    if path == "/admin/cache"
        && let Some(stages) = value["stages"].as_array()
    {
        let rows = stages
            .iter()
            .map(|c| {
                ["api", "stage", "entries", "bytes", "hits", "misses"]
                    .iter()
                    .map(|f| text(&c[*f]))
                    .collect()
            })
            .collect();
        return columns(
            &["API", "STAGE", "ENTRIES", "BYTES", "HITS", "MISSES"],
            rows,
        );
    }
    if let Some(list) = value["deployments"].as_array() {
        let rows = list
            .iter()
            .map(|d| {
                vec![
                    text(&d["id"]),
                    created(&d["created"]),
                    text(&d["author"]),
                    text(&d["stages"]),
                    text(&d["description"]),
                ]
            })
            .collect();
        return columns(&["ID", "CREATED", "AUTHOR", "SERVES", "DESCRIPTION"], rows);
    }
    if let Some(changes) = value["changes"].as_array() {
        if changes.is_empty() {
            return format!(
                "{} and {} define the same API\n",
                text(&value["from"]),
                text(&value["to"])
            );
        }
        return changes.iter().map(|c| format!("{}\n", text(c))).collect();
    }
    if value.get("deployment").is_some() && value.get("stage").is_some() {
        let mut out = format!(
            "{}/{} serves deployment {}\n",
            text(&value["api"]),
            text(&value["stage"]),
            text(&value["deployment"])
        );
        if let Some(c) = value.get("canary").filter(|c| !c.is_null()) {
            out.push_str(&format!("canary: {}\n", canary(c)));
        }
        return out;
    }
    if value.get("id").is_some() && value.get("hash").is_some() {
        let mut out = String::new();
        for field in ["id", "api", "description", "author", "hash", "stages"] {
            out.push_str(&format!("{field:<12} {}\n", text(&value[field])));
        }
        out.push_str(&format!(
            "{:<12} {}\n",
            "created",
            created(&value["created"])
        ));
        if path.starts_with("/admin/deployments/")
            && let Some(definition) = value.get("definition")
        {
            out.push_str(&serde_json::to_string_pretty(definition).unwrap_or_default());
            out.push('\n');
        }
        return out;
    }
    if let Some(deleted) = value.get("deleted") {
        return format!("deleted {}\n", text(deleted));
    }
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    )
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
fn created(value: &Value) -> String {
    let Some(secs) = value.as_u64() else {
        return "-".into();
    };
    let (y, m, d) = crate::encoding::civil_from_days(secs / 86_400);
    let rest = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Rows under a header, each column as wide as its widest cell.
fn columns(head: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let mut text = String::new();
        for (cell, w) in cells.zip(&widths) {
            text.push_str(&format!("{cell:<w$}  "));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut head.iter().copied(), &mut out);
    for row in &rows {
        line(&mut row.iter().map(String::as_str), &mut out);
    }
    out
}
