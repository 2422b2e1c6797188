//! A node's deployment lifecycle: deploy, point a stage (rollback), canary start, promote
//! and stop, delete; each a write to the state store followed by a new generation, so when
//! the call returns the stage serves what it says. The store's watch is followed too, for
//! changes another writer made.
//!
//! A deploy reads the config file as it is now (not the config the node last loaded), so
//! "change the file, deploy" needs no reload in between; a file that does not validate
//! deploys nothing.

use std::sync::Weak;

use crate::config::Config;
use crate::config::deploy::{Pointed, Refusal, definition_hash, resolve, snapshot};
use crate::state::{Canary, Change, Deployment, StagePointer, StateError, StateStore};

use super::{Node, SwapError};

/// Why a lifecycle operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No such API, stage or deployment.
    #[error("{0}")]
    NotFound(String),
    /// The operation contradicts the stage's state (nothing to roll back to, no canary).
    #[error("{0}")]
    Conflict(String),
    /// The request or the config file cannot be deployed.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Swap(#[from] SwapError),
}

/// What `deploy` and `canary start` are asked.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The stage to point at the new deployment; none: only store it.
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub author: Option<String>,
}

/// `canary start`'s settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryRequest {
    pub percent: f64,
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub use_stage_cache: bool,
    #[serde(default)]
    pub pin_header: Option<String>,
    /// Serve this stored deployment as the canary instead of deploying the config as it is.
    #[serde(default)]
    pub deployment: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub author: Option<String>,
}

/// The settings a stage has, which `set_stage` may change.
const STAGE_SETTINGS: [&str; 5] = ["variables", "cache", "throttle", "policy", "docs"];

/// A stage as `GET /admin/apis` shows it.
#[derive(Debug, serde::Serialize)]
pub struct StageStatus {
    pub stage: String,
    /// `config` (follows the config file) or `deployment`.
    pub serves: &'static str,
    pub deployment: Option<String>,
    pub canary: Option<Canary>,
    /// The stage's settings set through the admin API, over the file's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// Why the stage (or its canary) serves nothing of what it points at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
}

/// Every stage pointer of `config`'s APIs, with the deployments it names.
pub async fn pointed(store: &dyn StateStore, config: &Config) -> Result<Vec<Pointed>, StateError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for api in &config.apis {
        if !seen.insert(api.name.as_str()) {
            continue;
        }
        for pointer in store.stages(&api.name).await? {
            let Some(deployment) = store.deployment(&pointer.deployment).await? else {
                continue;
            };
            let canary = match &pointer.canary {
                Some(c) => store.deployment(&c.deployment).await?,
                None => None,
            };
            out.push(Pointed {
                pointer,
                deployment,
                canary,
            });
        }
    }
    Ok(out)
}

/// What the store adds to `config`: the stages' deployments and the usage plans created
/// through the admin API, resolved against it. A stored plan that cannot serve is logged and
/// left out.
pub async fn resolve_stored(
    store: &dyn StateStore,
    config: &Config,
) -> Result<crate::config::deploy::Deployed, StateError> {
    let pointed = pointed(store, config).await?;
    let mut deployed = resolve(config, &pointed);
    let records = store.plans().await?;
    let (plans, problems) = crate::config::deploy::stored_plans(config, &records);
    for problem in problems {
        tracing::warn!(reason = %problem, "usage plan not served");
    }
    deployed.plans = plans;
    deployed.plan_records = records;
    Ok(deployed)
}

/// One log line per stage that cannot serve its deployment.
pub fn log_refusals(refused: &[Refusal]) {
    for r in refused {
        tracing::error!(
            api = %r.api,
            stage = %r.stage,
            deployment = %r.deployment,
            canary = r.canary,
            reason = %r.reason,
            "deployment refused; the stage serves nothing of it until it is pointed at another deployment"
        );
    }
}

/// Rebuilds the node's generation when the store reports a stage change it does not serve
/// yet, until the node is gone.
pub async fn follow_stages(node: Weak<Node>) {
    let mut watch = match node.upgrade() {
        Some(node) => node.store.watch(),
        None => return,
    };
    while let Some(change) = watch.next().await {
        let Some(node) = node.upgrade() else { return };
        let stale = match &change {
            Change::Stage(pointer) => !node.generation.load().pointers.contains(pointer),
            Change::Plan { .. } => match node.store.plans().await {
                Ok(records) => node.generation.load().plan_records != records,
                Err(_) => true,
            },
            Change::Missed => true,
            Change::Deployment { .. } | Change::Deleted { .. } => false,
        };
        if stale && let Err(e) = node.redeploy().await {
            tracing::error!(error = %e, "a stage changed in the state store but cannot be served");
        }
    }
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Node {
    /// Stores the API's definition as the config file holds it now as a new deployment and,
    /// with a stage, points the stage at it (its canary, if any, stays).
    pub async fn deploy(
        &self,
        api: &str,
        request: DeployRequest,
    ) -> Result<Deployment, LifecycleError> {
        let (deployment, current) = self.new_deployment(api, &request).await?;
        if let Some(stage) = &request.stage {
            self.point(StagePointer {
                api: api.to_owned(),
                stage: stage.clone(),
                deployment: deployment.id.clone(),
                canary: current.as_ref().and_then(|p| p.canary.clone()),
                settings: current.and_then(|p| p.settings),
            })
            .await?;
        }
        Ok(deployment)
    }

    /// Points a stage at a stored deployment of its API (rollback, or `--to`), keeping its
    /// canary. With no deployment named, the one deployed before the stage's current one.
    pub async fn rollback(
        &self,
        api: &str,
        stage: &str,
        to: Option<&str>,
    ) -> Result<StagePointer, LifecycleError> {
        self.known_stage(api, stage)?;
        let current = self.pointer(api, stage).await?;
        let target = match to {
            Some(id) => id.to_owned(),
            None => {
                let Some(current) = &current else {
                    return Err(LifecycleError::Conflict(format!(
                        "stage {api}/{stage} follows the config and has no deployment to roll back from; deploy it first, or name one with --to"
                    )));
                };
                let all = self.store.deployments(api).await?;
                let at = all.iter().position(|d| d.id == current.deployment);
                match at.and_then(|i| i.checked_sub(1)).map(|i| &all[i]) {
                    Some(previous) => previous.id.clone(),
                    None => {
                        return Err(LifecycleError::Conflict(format!(
                            "deployment {} is the oldest of api {api}; there is none before it to roll back to",
                            current.deployment
                        )));
                    }
                }
            }
        };
        let (canary, settings) = current.map_or((None, None), |p| (p.canary, p.settings));
        let pointer = StagePointer {
            api: api.to_owned(),
            stage: stage.to_owned(),
            deployment: target,
            canary,
            settings,
        };
        self.point(pointer.clone()).await?;
        Ok(pointer)
    }

    /// Starts (or changes) a stage's canary: the config as it is now deployed, or a stored
    /// deployment, served to `percent` of the stage's requests.
    pub async fn start_canary(
        &self,
        api: &str,
        stage: &str,
        request: CanaryRequest,
    ) -> Result<StagePointer, LifecycleError> {
        if !(0.0..=100.0).contains(&request.percent) {
            return Err(LifecycleError::Invalid(format!(
                "percent must be from 0 to 100, not {}",
                request.percent
            )));
        }
        self.known_stage(api, stage)?;
        let Some(mut pointer) = self.pointer(api, stage).await? else {
            return Err(LifecycleError::Conflict(format!(
                "stage {api}/{stage} follows the config; deploy it first (edgeway deploy --api {api} --stage {stage}) so the canary has a deployment to run beside"
            )));
        };
        let deployment = match &request.deployment {
            Some(id) => id.clone(),
            None => {
                let asked = DeployRequest {
                    stage: Some(stage.to_owned()),
                    description: request.description.clone(),
                    author: request.author.clone(),
                };
                self.new_deployment(api, &asked).await?.0.id
            }
        };
        pointer.canary = Some(Canary {
            deployment,
            percent: request.percent,
            variables: request.variables,
            use_stage_cache: request.use_stage_cache,
            pin_header: request.pin_header.filter(|h| !h.trim().is_empty()),
        });
        self.point(pointer.clone()).await?;
        Ok(pointer)
    }

    /// Makes the canary's deployment the stage's and ends the canary. Its variable
    /// overrides are not copied: stage variables live in the config file.
    pub async fn promote_canary(
        &self,
        api: &str,
        stage: &str,
    ) -> Result<StagePointer, LifecycleError> {
        let mut pointer = self.canaried(api, stage).await?;
        if let Some(canary) = pointer.canary.take() {
            pointer.deployment = canary.deployment;
        }
        self.point(pointer.clone()).await?;
        Ok(pointer)
    }

    /// Ends a stage's canary: every request goes to the stage's deployment again.
    pub async fn stop_canary(
        &self,
        api: &str,
        stage: &str,
    ) -> Result<StagePointer, LifecycleError> {
        let mut pointer = self.canaried(api, stage).await?;
        pointer.canary = None;
        self.point(pointer.clone()).await?;
        Ok(pointer)
    }

    /// Changes a stage's settings through the admin API: `patch` (a JSON merge patch of the
    /// stage's `variables`, `cache`, `throttle`, `policy`, `docs`) is laid over the overrides
    /// it already has, and the stage serves the config file's settings with them on top. With
    /// `patch` none, the overrides are dropped. Only a stage served from a deployment has
    /// overrides: one that follows the config file is changed in the file.
    pub async fn set_stage(
        &self,
        api: &str,
        stage: &str,
        patch: Option<serde_json::Value>,
    ) -> Result<StagePointer, LifecycleError> {
        self.known_stage(api, stage)?;
        let Some(mut pointer) = self.pointer(api, stage).await? else {
            return Err(LifecycleError::Conflict(format!(
                "stage {api}/{stage} follows the config file: change its settings there, or deploy it first (edgeway deploy --api {api} --stage {stage}) to manage them here"
            )));
        };
        pointer.settings = match patch {
            None => None,
            Some(patch) => {
                let Some(fields) = patch.as_object() else {
                    return Err(LifecycleError::Invalid(
                        "stage settings are a JSON object such as {\"variables\": {\"color\": \"green\"}}".into(),
                    ));
                };
                if let Some(key) = fields
                    .keys()
                    .find(|k| !STAGE_SETTINGS.contains(&k.as_str()))
                {
                    return Err(LifecycleError::Invalid(format!(
                        "unknown stage setting `{key}`; a stage has {}",
                        STAGE_SETTINGS.join(", ")
                    )));
                }
                let mut settings = pointer
                    .settings
                    .take()
                    .unwrap_or_else(|| serde_json::json!({}));
                crate::config::deploy::compose_patches(&mut settings, &patch);
                Some(settings)
            }
        };
        let config = self.config();
        let deployment = self
            .store
            .deployment(&pointer.deployment)
            .await?
            .ok_or_else(|| {
                LifecycleError::NotFound(format!("no deployment {}", pointer.deployment))
            })?;
        if let Some(reason) = unservable(&config, &pointer, &deployment) {
            return Err(LifecycleError::Invalid(format!(
                "stage {api}/{stage} cannot serve with these settings: {reason}"
            )));
        }
        self.point(pointer.clone()).await?;
        Ok(pointer)
    }

    /// Deletes a deployment no stage serves.
    pub async fn delete_deployment(&self, id: &str) -> Result<(), LifecycleError> {
        match self.store.delete_deployment(id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(LifecycleError::NotFound(format!("no deployment {id}"))),
            Err(StateError::Conflict(message)) => Err(LifecycleError::Conflict(message)),
            Err(e) => Err(e.into()),
        }
    }

    /// An API's stages (as the current config names them) and what each serves.
    pub async fn stage_status(&self, api: &str) -> Result<Vec<StageStatus>, LifecycleError> {
        let config = self.config();
        let Some(model) = config.apis.iter().find(|a| a.name == api) else {
            return Err(self.no_api(api, &config));
        };
        let pointers = self.store.stages(api).await?;
        let refused = self.generation.load().refused.clone();
        Ok(model
            .stages
            .iter()
            .map(|stage| {
                let pointer = pointers.iter().find(|p| p.stage == stage.name);
                StageStatus {
                    stage: stage.name.clone(),
                    serves: if pointer.is_some() {
                        "deployment"
                    } else {
                        "config"
                    },
                    deployment: pointer.map(|p| p.deployment.clone()),
                    canary: pointer.and_then(|p| p.canary.clone()),
                    settings: pointer.and_then(|p| p.settings.clone()),
                    refused: refused
                        .iter()
                        .filter(|r| r.api == api && r.stage == stage.name)
                        .cloned()
                        .collect(),
                }
            })
            .collect())
    }

    /// Writes a pointer and serves it.
    async fn point(&self, pointer: StagePointer) -> Result<(), LifecycleError> {
        match self.store.point_stage(pointer).await {
            Ok(()) => {}
            Err(StateError::Conflict(message)) => return Err(LifecycleError::NotFound(message)),
            Err(e) => return Err(e.into()),
        }
        self.redeploy().await?;
        Ok(())
    }

    async fn pointer(&self, api: &str, stage: &str) -> Result<Option<StagePointer>, StateError> {
        Ok(self
            .store
            .stages(api)
            .await?
            .into_iter()
            .find(|p| p.stage == stage))
    }

    async fn canaried(&self, api: &str, stage: &str) -> Result<StagePointer, LifecycleError> {
        self.known_stage(api, stage)?;
        match self.pointer(api, stage).await? {
            Some(pointer) if pointer.canary.is_some() => Ok(pointer),
            _ => Err(LifecycleError::Conflict(format!(
                "stage {api}/{stage} has no canary; start one with edgeway canary start"
            ))),
        }
    }

    /// The API and stage exist in the config the node serves.
    fn known_stage(&self, api: &str, stage: &str) -> Result<(), LifecycleError> {
        let config = self.config();
        let Some(model) = config.apis.iter().find(|a| a.name == api) else {
            return Err(self.no_api(api, &config));
        };
        if model.stages.iter().any(|s| s.name == stage) {
            return Ok(());
        }
        let stages: Vec<&str> = model.stages.iter().map(|s| s.name.as_str()).collect();
        Err(LifecycleError::NotFound(format!(
            "api {api} has no stage {stage}; its stages are {}",
            stages.join(", ")
        )))
    }

    fn no_api(&self, api: &str, config: &Config) -> LifecycleError {
        let mut names: Vec<&str> = config.apis.iter().map(|a| a.name.as_str()).collect();
        names.dedup();
        LifecycleError::NotFound(format!(
            "no api {api}; the config has {}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ))
    }

    /// Reads the config file, snapshots the API, checks the snapshot serves in the stage and
    /// stores it.
    async fn new_deployment(
        &self,
        api: &str,
        request: &DeployRequest,
    ) -> Result<(Deployment, Option<StagePointer>), LifecycleError> {
        let Some(path) = self.config_path.clone() else {
            return Err(LifecycleError::Invalid(
                "this node was started without a config file to deploy from".into(),
            ));
        };
        let config = tokio::task::spawn_blocking(move || crate::config::load(&path))
            .await
            .map_err(|e| LifecycleError::Invalid(e.to_string()))?
            .map_err(|errors| {
                LifecycleError::Invalid(format!(
                    "the config file does not validate, so nothing was deployed:\n{errors}"
                ))
            })?;
        let Some(raw) = config
            .definitions
            .iter()
            .find(|d| d.name.value.trim() == api)
        else {
            return Err(self.no_api(api, &config));
        };
        let stage = match &request.stage {
            Some(stage) if raw.stages.contains_key(stage) => stage.clone(),
            Some(stage) => {
                let stages: Vec<&str> = raw.stages.keys().map(String::as_str).collect();
                return Err(LifecycleError::NotFound(format!(
                    "api {api} has no stage {stage} in the config file; its stages are {}",
                    stages.join(", ")
                )));
            }
            None => raw.stages.keys().next().cloned().unwrap_or_default(),
        };
        let definition =
            snapshot(raw, &config.base_dir).map_err(|e| LifecycleError::Invalid(e.clone()))?;
        let deployment = Deployment {
            id: uuid::Uuid::new_v4().simple().to_string()[..10].to_owned(),
            api: api.to_owned(),
            description: request.description.clone(),
            author: request.author.clone(),
            created: now(),
            hash: definition_hash(&definition),
            definition,
        };
        let current = self.pointer(api, &stage).await?;
        if raw.stages.contains_key(&stage) {
            let trial = StagePointer {
                api: deployment.api.clone(),
                stage: stage.clone(),
                deployment: deployment.id.clone(),
                canary: None,
                settings: current.as_ref().and_then(|p| p.settings.clone()),
            };
            if let Some(reason) = unservable(&config, &trial, &deployment) {
                return Err(LifecycleError::Invalid(format!(
                    "api {api} cannot be served from a deployment: {reason}"
                )));
            }
        }
        self.store.put_deployment(deployment.clone()).await?;
        Ok((deployment, current))
    }
}

/// Why `config` could not serve `deployment` in `pointer`'s stage with its settings (its
/// canary aside), if it could not: the check before a deployment or a stage change is stored.
fn unservable(config: &Config, pointer: &StagePointer, deployment: &Deployment) -> Option<String> {
    let trial = Pointed {
        pointer: StagePointer {
            canary: None,
            ..pointer.clone()
        },
        deployment: deployment.clone(),
        canary: None,
    };
    resolve(config, &[trial])
        .refused
        .into_iter()
        .next()
        .map(|r| r.reason)
}
