//! Usage plans created and deleted through the admin API, beside the config file's: each a
//! write to the state store followed by a new generation, so the call returns once keys in
//! the plan are held to it. The file's plans are changed in the file.

use super::Node;
use super::deploy::LifecycleError;
use crate::config::UsagePlan;
use crate::state::{StateError, StoredPlan};

impl Node {
    /// Stores `definition` (a plan as the file writes one under `usage_plans`) and serves it.
    pub async fn create_plan(
        &self,
        definition: serde_json::Value,
    ) -> Result<UsagePlan, LifecycleError> {
        let Some(name) = definition
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_owned)
        else {
            return Err(LifecycleError::Invalid(
                "a usage plan needs a name: {\"name\": \"gold\", \"apis\": [\"petstore/prod\"], ...}".into(),
            ));
        };
        let config = self.config();
        if config.usage_plans.iter().any(|p| p.name == name) {
            return Err(LifecycleError::Conflict(format!(
                "the config file declares usage plan {name}; change it there"
            )));
        }
        let plan = crate::config::deploy::plan_from_definition(&config, &definition)
            .map_err(|reason| LifecycleError::Invalid(format!("usage plan {name}: {reason}")))?;
        let record = StoredPlan {
            name: name.clone(),
            definition,
            created: super::deploy::now(),
        };
        match self.store.put_plan(record).await {
            Ok(()) => {}
            Err(StateError::Conflict(message)) => return Err(LifecycleError::Conflict(message)),
            Err(e) => return Err(e.into()),
        }
        self.redeploy().await?;
        Ok(plan)
    }

    /// Deletes a plan created through the admin API that no key is in.
    pub async fn delete_plan(&self, name: &str) -> Result<(), LifecycleError> {
        if self.config().usage_plans.iter().any(|p| p.name == name) {
            return Err(LifecycleError::Conflict(format!(
                "usage plan {name} is declared in the config file; remove it there"
            )));
        }
        let members: Vec<String> = self
            .keys
            .list()
            .into_iter()
            .filter(|k| k.plan.as_deref() == Some(name))
            .map(|k| k.id)
            .collect();
        if !members.is_empty() {
            return Err(LifecycleError::Conflict(format!(
                "keys are in usage plan {name}: take them out first (edgeway plans detach KEY): {}",
                members.join(", ")
            )));
        }
        if !self.store.delete_plan(name).await? {
            return Err(LifecycleError::NotFound(format!("no usage plan {name}")));
        }
        self.redeploy().await?;
        Ok(())
    }
}
