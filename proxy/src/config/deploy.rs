//! Deployments in config terms: what a deployment stores of an API ([`snapshot`]), and how a
//! stage pointed at one is served ([`resolve`]).
//!
//! A deployment holds the API's definition (routes, authorizers, models, CORS, policy, gateway
//! responses) as the config held it when it was deployed, with an `openapi:` document merged
//! in and model files read in, so it depends on no file. Stage settings (variables, cache,
//! throttle, policy, docs) are not part of it: as in API Gateway, they stay on the stage and
//! come from the config as it is now.
//!
//! A stage that points at a deployment is served by a copy of its API built from that
//! deployment and the stage's current settings, validated as config is, against today's
//! plugins and origin. One that fails (a plugin since removed, say) is refused for that stage
//! alone, which then serves nothing until it is pointed elsewhere; the other stages serve on.
//! A canary is served the same way, with the stage's variables overridden by the canary's.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::raw::{RawApi, RawUsagePlan};
use super::{Api, Config, ConfigError, StageSource, UsagePlan};
use crate::state::{Canary, Deployment, StagePointer, StoredPlan};

/// An API's definition as a deployment stores it: its config entry without `stages` and
/// `openapi`, model files read in.
pub fn snapshot(raw: &RawApi, base_dir: &Path) -> Result<serde_json::Value, String> {
    let mut value = serde_json::to_value(raw).map_err(|e| format!("encoding the API: {e}"))?;
    let serde_json::Value::Object(api) = &mut value else {
        return Err("the API is not a map".into());
    };
    api.remove("stages");
    if let Some(serde_json::Value::Object(models)) = api.get_mut("models") {
        for source in models.values_mut() {
            inline_schema_file(source, base_dir)?;
        }
    }
    if let Some(serde_json::Value::Array(routes)) = api.get_mut("routes") {
        for route in routes {
            if let Some(body) = route.pointer_mut("/validation/body") {
                inline_schema_file(body, base_dir)?;
            }
        }
    }
    prune_nulls(&mut value);
    Ok(value)
}

/// `{ file: PATH }` → `{ schema: ... }` with the file's JSON.
fn inline_schema_file(source: &mut serde_json::Value, base_dir: &Path) -> Result<(), String> {
    let Some(file) = source.get("file").and_then(|f| f.as_str()) else {
        return Ok(());
    };
    let full = base_dir.join(file.trim());
    let text = std::fs::read_to_string(&full)
        .map_err(|e| format!("cannot read schema file {}: {e}", full.display()))?;
    let schema: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("schema file {} is not JSON: {e}", full.display()))?;
    *source = serde_json::json!({ "schema": schema });
    Ok(())
}

/// Drops `null` members (options left out), so a stored definition reads as written.
fn prune_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// Lowercase hex SHA-256 of a definition as compact JSON.
pub fn definition_hash(definition: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(definition).unwrap_or_default();
    crate::encoding::hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
}

/// A stage pointer with the deployments it names, as read from the state store.
#[derive(Debug, Clone)]
pub struct Pointed {
    pub pointer: StagePointer,
    pub deployment: Deployment,
    /// The canary's deployment, when the pointer has a canary.
    pub canary: Option<Deployment>,
}

/// A stage that cannot serve the deployment it points at, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub api: String,
    pub stage: String,
    pub deployment: String,
    /// Whether it is the stage's canary that was refused (the base may still serve).
    pub canary: bool,
    pub reason: String,
}

/// What serving the pointed stages adds to a config: an API per deployment served (each with
/// the one stage it serves), and the stages they take over from the config's APIs.
#[derive(Debug, Default)]
pub struct Deployed {
    /// Base sides (`StageSource::Deployment`) and canaries (`StageSource::Canary`).
    pub apis: Vec<Api>,
    /// (API, stage) pairs the config's own APIs no longer serve.
    pub moved: HashSet<(String, String)>,
    /// The canaries served, by API and stage.
    pub canaries: Vec<(String, String, Canary)>,
    /// The pointers this was resolved from.
    pub pointers: Vec<StagePointer>,
    pub refused: Vec<Refusal>,
    /// Usage plans created through the admin API (`stored_plans`), served beside the file's.
    pub plans: Vec<UsagePlan>,
    /// The stored plans these were resolved from.
    pub plan_records: Vec<StoredPlan>,
    /// Each base side's definition as served, by stage (its API by its name), for export.
    pub definitions: Vec<(String, std::sync::Arc<RawApi>)>,
}

impl Deployed {
    /// Whether the config's API `api` still serves `stage` itself.
    pub fn config_serves(&self, api: &str, stage: &str) -> bool {
        self.moved.is_empty() || !self.moved.contains(&(api.to_owned(), stage.to_owned()))
    }
}

/// Builds what the pointed stages serve on top of `config`.
pub fn resolve(config: &Config, pointed: &[Pointed]) -> Deployed {
    let mut deployed = Deployed {
        pointers: pointed.iter().map(|p| p.pointer.clone()).collect(),
        ..Deployed::default()
    };
    if pointed.is_empty() {
        return deployed;
    }
    // (stage, method, path shape) → API, for every route the config's APIs still serve.
    let mut claimed: HashMap<(String, String, String), String> = HashMap::new();
    let moved: HashSet<(&str, &str)> = pointed
        .iter()
        .map(|p| (p.pointer.api.as_str(), p.pointer.stage.as_str()))
        .collect();
    for api in &config.apis {
        for stage in &api.stages {
            if moved.contains(&(api.name.as_str(), stage.name.as_str())) {
                continue;
            }
            for route in &api.routes {
                claimed.insert(
                    (
                        stage.name.clone(),
                        route.method.to_string(),
                        route.pattern.shape(),
                    ),
                    api.name.clone(),
                );
            }
        }
    }
    for p in pointed {
        let (api, stage) = (&p.pointer.api, &p.pointer.stage);
        let refuse = |deployment: &str, canary: bool, reason: String| Refusal {
            api: api.clone(),
            stage: stage.clone(),
            deployment: deployment.to_owned(),
            canary,
            reason,
        };
        let Some(raw) = config
            .definitions
            .iter()
            .find(|d| d.name.value.trim() == api)
        else {
            // The API left the config: nothing of it is served, pointed or not.
            continue;
        };
        let Some(raw_stage) = raw.stages.get(stage) else {
            continue;
        };
        deployed.moved.insert((api.clone(), stage.clone()));
        let stage_settings = match serde_json::to_value(raw_stage) {
            Ok(mut v) => {
                if let Some(patch) = &p.pointer.settings {
                    merge_patch(&mut v, patch);
                }
                v
            }
            Err(e) => {
                let reason = format!("cannot read the stage's settings: {e}");
                deployed
                    .refused
                    .push(refuse(&p.deployment.id, false, reason));
                continue;
            }
        };
        let base = served_api(config, &p.deployment, stage, &stage_settings, None);
        match base.and_then(|(a, raw)| Ok((claim(&mut claimed, a)?, raw))) {
            Ok((api, raw)) => {
                deployed.apis.push(api);
                deployed
                    .definitions
                    .push((stage.clone(), std::sync::Arc::new(raw)));
            }
            Err(reason) => deployed
                .refused
                .push(refuse(&p.deployment.id, false, reason)),
        }
        if let (Some(canary), Some(deployment)) = (&p.pointer.canary, &p.canary) {
            // The canary's routes may repeat the base's: they are served from their own
            // router, so they claim nothing.
            match served_api(config, deployment, stage, &stage_settings, Some(canary)) {
                Ok((api, _)) => {
                    deployed.apis.push(api);
                    deployed
                        .canaries
                        .push((p.pointer.api.clone(), stage.clone(), canary.clone()));
                }
                Err(reason) => deployed.refused.push(refuse(&deployment.id, true, reason)),
            }
        }
    }
    deployed
}

/// The usage plans created through the admin API, validated against `config` (its APIs and
/// stages as they are now). A stored plan that no longer validates, or whose name the file
/// now declares too, is left out with the reason, for the node to log; the rest serve beside
/// the file's plans.
pub fn stored_plans(config: &Config, stored: &[StoredPlan]) -> (Vec<UsagePlan>, Vec<String>) {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for plan in stored {
        if config.usage_plans.iter().any(|p| p.name == plan.name) {
            problems.push(format!(
                "usage plan {}: the config file declares one of this name, which serves instead",
                plan.name
            ));
            continue;
        }
        match plan_from_definition(config, &plan.definition) {
            Ok(valid) => plans.push(valid),
            Err(reason) => problems.push(format!("usage plan {}: {reason}", plan.name)),
        }
    }
    (plans, problems)
}

/// A plan as the file writes one (JSON), validated against `config`.
pub fn plan_from_definition(
    config: &Config,
    definition: &serde_json::Value,
) -> Result<UsagePlan, String> {
    // JSON is YAML: the config's own reader reads it, with its types and checks.
    let text = serde_json::to_string_pretty(definition).map_err(|e| e.to_string())?;
    let raw: RawUsagePlan = serde_saphyr::from_str_with_options(&text, super::yaml_options())
        .map_err(|e| format!("not a usage plan: {e}"))?;
    super::validate::validate_stored_plan(&raw, config).map_err(|errors| {
        errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.path.trim_start_matches("usage_plans[0]."),
                    e.message
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge key by key, `null`
/// removes a key, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::json!({});
    }
    if let serde_json::Value::Object(into) = target {
        for (key, value) in fields {
            if value.is_null() {
                into.remove(key);
            } else {
                merge_patch(
                    into.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

/// Lays merge patch `patch` over merge patch `base`, keeping its `null`s (they still remove
/// what the file sets), so that applying `base` afterwards does what applying the two in
/// turn would, for patches that do not replace an object removed by the one before.
pub fn compose_patches(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(into), serde_json::Value::Object(fields)) => {
            for (key, value) in fields {
                match into.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        compose_patches(existing, value);
                    }
                    _ => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

/// Claims `api`'s routes in its stage; an error names a route another API serves there.
fn claim(claimed: &mut HashMap<(String, String, String), String>, api: Api) -> Result<Api, String> {
    let stage = &api.stages[0].name;
    let keys: Vec<_> = api
        .routes
        .iter()
        .map(|r| {
            (
                (stage.clone(), r.method.to_string(), r.pattern.shape()),
                &r.key,
            )
        })
        .collect();
    for (key, route) in &keys {
        if let Some(other) = claimed.get(key) {
            return Err(format!(
                "route \"{route}\" clashes with api \"{other}\", which serves this method and path in stage \"{stage}\""
            ));
        }
    }
    for (key, _) in keys {
        claimed.insert(key, api.name.clone());
    }
    Ok(api)
}

/// The API a deployment serves in `stage`, validated against today's config, with its
/// definition as served (the deployment's, with the stage's settings) for export.
fn served_api(
    config: &Config,
    deployment: &Deployment,
    stage: &str,
    stage_settings: &serde_json::Value,
    canary: Option<&Canary>,
) -> Result<(Api, RawApi), String> {
    let mut definition = deployment.definition.clone();
    let serde_json::Value::Object(api) = &mut definition else {
        return Err("the stored definition is not a map".into());
    };
    let mut settings = stage_settings.clone();
    if let Some(canary) = canary
        && !canary.variables.is_empty()
    {
        // The canary sees the stage's variables with its overrides on top.
        let variables = settings.as_object_mut().map(|s| {
            s.entry("variables")
                .or_insert_with(|| serde_json::json!({}))
        });
        if let Some(serde_json::Value::Object(variables)) = variables {
            for (k, v) in &canary.variables {
                variables.insert(k.clone(), v.clone().into());
            }
        }
    }
    api.insert("stages".into(), serde_json::json!({ stage: settings }));
    // JSON is YAML: the config's own reader reads it, with its types and checks.
    let text = serde_json::to_string_pretty(&definition).map_err(|e| e.to_string())?;
    let raw: RawApi = serde_saphyr::from_str_with_options(&text, super::yaml_options())
        .map_err(|e| format!("the stored definition is not an API: {e}"))?;
    let mut api = super::validate::validate_deployed(&raw, config)
        .map_err(|errors| errors.iter().map(describe).collect::<Vec<_>>().join("; "))?;
    let id = deployment.id.clone();
    api.stages[0].source = match canary {
        Some(c) => StageSource::Canary {
            deployment: id,
            use_stage_cache: c.use_stage_cache,
        },
        None => StageSource::Deployment(id),
    };
    Ok((api, raw))
}

/// One validation error of a stored definition, without the line (of JSON no one wrote).
fn describe(error: &ConfigError) -> String {
    if error.path.is_empty() {
        error.message.clone()
    } else {
        format!(
            "{}: {}",
            error.path.trim_start_matches("apis[0]."),
            error.message
        )
    }
}

/// A JSON path → what changed, between two definitions: `~` changed, `+` added, `-` removed.
/// Routes are matched by their `route` key, so inserting one does not shift the others.
pub fn diff(from: &serde_json::Value, to: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("", from, to, &mut out);
    out
}

fn diff_at(path: &str, from: &serde_json::Value, to: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => diff_at(&child(k), v, w, out),
                    None => out.push(format!("- {}: {v}", child(k))),
                }
            }
            for (k, w) in b {
                if !a.contains_key(k) {
                    out.push(format!("+ {}: {w}", child(k)));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if keyed(a) && keyed(b) => {
            let key = |v: &Value| v["route"].as_str().unwrap_or_default().to_owned();
            for v in a {
                let k = key(v);
                match b.iter().find(|w| key(w) == k) {
                    Some(w) => diff_at(&format!("{path}[{k}]"), v, w, out),
                    None => out.push(format!("- {path}[{k}]: {v}")),
                }
            }
            for w in b {
                let k = key(w);
                if !a.iter().any(|v| key(v) == k) {
                    out.push(format!("+ {path}[{k}]: {w}"));
                }
            }
        }
        (a, b) if a != b => out.push(format!("~ {path}: {a} -> {b}")),
        _ => {}
    }
}

/// An array of routes: objects that each have a `route` key.
fn keyed(items: &[serde_json::Value]) -> bool {
    !items.is_empty() && items.iter().all(|v| v["route"].is_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_apply_and_compose_as_rfc_7386_says() {
        let file = serde_json::json!({
            "variables": { "color": "red", "size": "m" },
            "cache": { "ttl_s": 60 }
        });
        let mut overrides = serde_json::json!({ "variables": { "color": "green" } });
        compose_patches(
            &mut overrides,
            &serde_json::json!({ "variables": { "size": null }, "cache": null, "throttle": { "rate": 5, "burst": 10 } }),
        );
        assert_eq!(
            overrides,
            serde_json::json!({
                "variables": { "color": "green", "size": null },
                "cache": null,
                "throttle": { "rate": 5, "burst": 10 }
            })
        );
        let mut served = file.clone();
        merge_patch(&mut served, &overrides);
        assert_eq!(
            served,
            serde_json::json!({
                "variables": { "color": "green" },
                "throttle": { "rate": 5, "burst": 10 }
            })
        );
    }

    fn config(dir: &Path, prod_vars: &str, target: &str) -> Config {
        let yaml = format!(
            "listen: [{{ addr: 127.0.0.1:0 }}]\norigin: http://127.0.0.1:9\napis:\n  - name: shop\n    stages:\n      prod: {{ variables: {{ {prod_vars} }} }}\n      beta: {{ variables: {{ color: red }} }}\n    models:\n      pet: {{ file: pet.json }}\n    routes:\n      - route: POST /v\n        validation: {{ body: {{ model: pet }} }}\n        integration: {{ http_proxy: \"${{origin}}/{target}\" }}\n"
        );
        super::super::parse(&yaml, &dir.join("edgeway.yaml")).unwrap()
    }

    fn deployment(config: &Config, id: &str) -> Deployment {
        let definition = snapshot(&config.definitions[0], &config.base_dir).unwrap();
        Deployment {
            id: id.into(),
            api: "shop".into(),
            description: String::new(),
            author: None,
            created: 0,
            hash: definition_hash(&definition),
            definition,
        }
    }

    fn pointed(stage: &str, deployment: &Deployment) -> Pointed {
        Pointed {
            pointer: StagePointer {
                api: "shop".into(),
                stage: stage.into(),
                deployment: deployment.id.clone(),
                canary: None,
                settings: None,
            },
            deployment: deployment.clone(),
            canary: None,
        }
    }

    #[test]
    fn a_deployment_depends_on_no_file_and_serves_only_its_stage() {
        let dir = std::env::temp_dir().join(format!("edgeway-deploy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("pet.json"),
            r#"{"type":"object","required":["name"]}"#,
        )
        .unwrap();
        let v1 = config(&dir, "color: blue", "v1/${stageVariables.color}");
        let d1 = deployment(&v1, "d1");
        assert!(d1.definition.get("stages").is_none(), "{}", d1.definition);
        assert_eq!(
            d1.definition["models"]["pet"],
            serde_json::json!({ "schema": { "type": "object", "required": ["name"] } })
        );
        assert_eq!(d1.hash, deployment(&v1, "again").hash);
        std::fs::remove_file(dir.join("pet.json")).unwrap();

        let deployed = resolve(&v1, &[pointed("prod", &d1)]);
        assert!(deployed.refused.is_empty(), "{:?}", deployed.refused);
        assert!(!deployed.config_serves("shop", "prod"));
        assert!(deployed.config_serves("shop", "beta"));
        let api = &deployed.apis[0];
        assert_eq!(api.stages.len(), 1);
        assert_eq!(api.stages[0].source, StageSource::Deployment("d1".into()));
        assert_eq!(api.stages[0].variables["color"], "blue");
        assert!(api.models.contains_key("pet"));

        // Today's prod lacks the variable the deployment uses: refused there, not in beta.
        std::fs::write(dir.join("pet.json"), "{}").unwrap();
        let today = config(&dir, "", "v2");
        let deployed = resolve(&today, &[pointed("prod", &d1), pointed("beta", &d1)]);
        assert_eq!(deployed.refused.len(), 1, "{:?}", deployed.refused);
        let refusal = &deployed.refused[0];
        assert_eq!((refusal.stage.as_str(), refusal.canary), ("prod", false));
        assert!(refusal.reason.contains("\"color\""), "{}", refusal.reason);
        assert_eq!(deployed.apis.len(), 1);
        assert_eq!(deployed.apis[0].stages[0].name, "beta");
        assert!(
            !deployed.config_serves("shop", "prod"),
            "a refused stage serves nothing"
        );
    }

    #[test]
    fn a_canary_sees_the_stage_variables_with_its_overrides() {
        let dir = std::env::temp_dir().join(format!("edgeway-canary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pet.json"), "{}").unwrap();
        let v1 = config(&dir, "color: blue, size: big", "v1/${stageVariables.color}");
        let d1 = deployment(&v1, "d1");
        let mut p = pointed("prod", &d1);
        p.pointer.canary = Some(Canary {
            deployment: "d1".into(),
            percent: 5.0,
            variables: [("color".to_owned(), "green".to_owned())].into(),
            use_stage_cache: false,
            pin_header: None,
        });
        p.canary = Some(d1.clone());
        let deployed = resolve(&v1, &[p]);
        assert_eq!(deployed.apis.len(), 2);
        let canary = &deployed.apis[1].stages[0];
        assert_eq!(
            canary.source,
            StageSource::Canary {
                deployment: "d1".into(),
                use_stage_cache: false
            }
        );
        assert_eq!(canary.variables["color"], "green");
        assert_eq!(canary.variables["size"], "big");
        assert_eq!(deployed.apis[0].stages[0].variables["color"], "blue");
        assert_eq!(deployed.canaries.len(), 1);
    }

    #[test]
    fn diff_matches_routes_by_key() {
        let from = serde_json::json!({
            "name": "shop",
            "routes": [
                { "route": "GET /a", "integration": { "http_proxy": "http://o/a" } },
                { "route": "GET /b", "integration": { "mock": {} } },
            ]
        });
        let to = serde_json::json!({
            "name": "shop",
            "routes": [
                { "route": "GET /new", "integration": { "mock": {} } },
                { "route": "GET /a", "integration": { "http_proxy": "http://o/a2" } },
            ],
            "cors": { "allow_origins": ["*"] }
        });
        assert_eq!(
            diff(&from, &to),
            [
                r#"~ routes[GET /a].integration.http_proxy: "http://o/a" -> "http://o/a2""#,
                r#"- routes[GET /b]: {"integration":{"mock":{}},"route":"GET /b"}"#,
                r#"+ routes[GET /new]: {"integration":{"mock":{}},"route":"GET /new"}"#,
                r#"+ cors: {"allow_origins":["*"]}"#,
            ]
        );
        assert!(diff(&from, &from).is_empty());
    }
}
