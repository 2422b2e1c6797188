//! The embedded backend: one redb file, `<data dir>/state.redb`. Every write is a committed
//! transaction with redb's default durability (fsync before `commit` returns), so a write the
//! store acknowledged survives `kill -9` and power loss.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

use super::{
    Change, DEPLOYMENT_IN_USE, Deployment, StagePointer, StateError, StateFuture, StateStore,
    StoredAccessKey, StoredKey, StoredPlan, UsageIncrement, Watch,
};

/// Key id → the key as JSON.
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// Access key id → the access key (with its secret) as JSON.
const ACCESS_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("access_keys");
/// (key id, day) → requests that day.
const USAGE: TableDefinition<(&str, u32), u64> = TableDefinition::new("usage_by_day");
/// Deployment id → the deployment as JSON.
const DEPLOYMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("deployments");
/// (API, stage) → the stage's pointer (deployment and canary) as JSON.
const STAGES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("stage_pointers");

/// Deployment id → the order it was written in (1, 2, ...; the key "" holds the last), so
/// that deployments made within one second list in the order they were made.
const DEPLOYMENT_ORDER: TableDefinition<&str, u64> = TableDefinition::new("deployment_order");

/// Plan name → a usage plan created through the admin API, as JSON.
const PLANS: TableDefinition<&str, &[u8]> = TableDefinition::new("usage_plans");

/// Changes a watcher may fall behind by before it is told it missed some.
const WATCH_BACKLOG: usize = 1024;

/// State in a redb file. Each operation runs on tokio's blocking threads (a write waits for
/// the disk), and changes to deployments and stages are broadcast to this process's watchers
/// once committed.
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    changes: broadcast::Sender<Change>,
}

fn err(context: &str) -> impl Fn(&dyn std::fmt::Display) -> StateError + '_ {
    move |e| StateError::Backend(format!("{context}: {e}"))
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, creating the folder if needed.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StateError::Backend(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("state.redb");
        let db = Database::create(&path)
            .map_err(|e| StateError::Backend(format!("opening {}: {e}", path.display())))?;
        // Create the tables, so that reads never find them missing.
        let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
        txn.open_table(KEYS).map_err(|e| err("api_keys")(&e))?;
        txn.open_table(ACCESS_KEYS)
            .map_err(|e| err("access_keys")(&e))?;
        txn.open_table(USAGE).map_err(|e| err("usage_by_day")(&e))?;
        txn.open_table(DEPLOYMENTS)
            .map_err(|e| err("deployments")(&e))?;
        txn.open_table(STAGES).map_err(|e| err("stages")(&e))?;
        txn.open_table(PLANS).map_err(|e| err("usage_plans")(&e))?;
        txn.open_table(DEPLOYMENT_ORDER)
            .map_err(|e| err("deployment_order")(&e))?;
        txn.commit().map_err(|e| err("commit")(&e))?;
        Ok(Self {
            db: Arc::new(db),
            path,
            changes: broadcast::channel(WATCH_BACKLOG).0,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a blocking thread.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StateError> + Send + 'static,
    ) -> StateFuture<'static, T> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&db))
                .await
                .map_err(|e| err("state task")(&e))?
        })
    }

    /// Writes `records` as JSON by id into `table`, in one transaction.
    fn put_json<T: Serialize + Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        records: Vec<T>,
        id: fn(&T) -> &str,
    ) -> StateFuture<'static, ()> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
            {
                let mut t = txn.open_table(table).map_err(|e| err(table.name())(&e))?;
                for record in &records {
                    let json = serde_json::to_vec(record).map_err(|e| err("encoding")(&e))?;
                    t.insert(id(record), json.as_slice())
                        .map_err(|e| err(table.name())(&e))?;
                }
            }
            txn.commit().map_err(|e| err("commit")(&e))
        })
    }

    /// Removes `id` from `table`; false when it was not there.
    fn remove(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        id: &str,
    ) -> StateFuture<'static, bool> {
        let id = id.to_owned();
        self.run(move |db| {
            let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
            let removed = {
                let mut t = txn.open_table(table).map_err(|e| err(table.name())(&e))?;
                t.remove(id.as_str())
                    .map_err(|e| err(table.name())(&e))?
                    .is_some()
            };
            txn.commit().map_err(|e| err("commit")(&e))?;
            Ok(removed)
        })
    }

    /// Every record in `table`.
    fn all_json<T: DeserializeOwned + Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
    ) -> StateFuture<'static, Vec<T>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(|e| err("begin")(&e))?;
            read_all(&txn.open_table(table).map_err(|e| err(table.name())(&e))?)
        })
    }
}

/// Every JSON record of a table.
fn read_all<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<T>, StateError> {
    let mut out = Vec::new();
    for entry in table.iter().map_err(|e| err("reading")(&e))? {
        let (id, json) = entry.map_err(|e| err("reading")(&e))?;
        out.push(serde_json::from_slice(json.value()).map_err(|e| {
            StateError::Backend(format!("record {} is not readable: {e}", id.value()))
        })?);
    }
    Ok(out)
}

/// Inserts `json` under `id` into `table` unless it holds one already: then
/// [`StateError::Conflict`] with `taken()`. For records written once (deployments, plans).
fn insert_new(
    txn: &redb::WriteTransaction,
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    id: &str,
    json: &[u8],
    taken: impl FnOnce() -> String,
) -> Result<(), StateError> {
    let mut t = txn.open_table(table).map_err(|e| err(table.name())(&e))?;
    if t.get(id).map_err(|e| err(table.name())(&e))?.is_some() {
        return Err(StateError::Conflict(taken()));
    }
    t.insert(id, json).map_err(|e| err(table.name())(&e))?;
    Ok(())
}

fn read_deployment(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Deployment>, StateError> {
    let Some(json) = table.get(id).map_err(|e| err("deployments")(&e))? else {
        return Ok(None);
    };
    serde_json::from_slice(json.value())
        .map(Some)
        .map_err(|e| StateError::Backend(format!("deployment {id} is not readable: {e}")))
}

impl StateStore for EmbeddedStore {
    fn put_keys(&self, keys: Vec<StoredKey>) -> StateFuture<'_, ()> {
        self.put_json(KEYS, keys, |k| &k.id)
    }

    fn delete_key(&self, id: &str) -> StateFuture<'_, bool> {
        self.remove(KEYS, id)
    }

    fn keys(&self) -> StateFuture<'_, Vec<StoredKey>> {
        self.all_json(KEYS)
    }

    fn put_access_keys(&self, keys: Vec<StoredAccessKey>) -> StateFuture<'_, ()> {
        self.put_json(ACCESS_KEYS, keys, |k| &k.id)
    }

    fn delete_access_key(&self, id: &str) -> StateFuture<'_, bool> {
        self.remove(ACCESS_KEYS, id)
    }

    fn access_keys(&self) -> StateFuture<'_, Vec<StoredAccessKey>> {
        self.all_json(ACCESS_KEYS)
    }

    fn add_usage(&self, increments: Vec<UsageIncrement>) -> StateFuture<'_, ()> {
        if increments.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        self.run(move |db| {
            let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
            {
                let mut table = txn.open_table(USAGE).map_err(|e| err("usage_by_day")(&e))?;
                for inc in &increments {
                    let key = (inc.key_id.as_str(), inc.day);
                    let current = table
                        .get(key)
                        .map_err(|e| err("reading usage")(&e))?
                        .map_or(0, |v| v.value());
                    table
                        .insert(key, current.saturating_add(inc.requests))
                        .map_err(|e| err("writing usage")(&e))?;
                }
            }
            txn.commit().map_err(|e| err("commit")(&e))
        })
    }

    fn usage(&self, key_id: &str, days: RangeInclusive<u32>) -> StateFuture<'_, Vec<(u32, u64)>> {
        let key_id = key_id.to_owned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(|e| err("begin")(&e))?;
            let table = txn.open_table(USAGE).map_err(|e| err("usage_by_day")(&e))?;
            let range = table
                .range((key_id.as_str(), *days.start())..=(key_id.as_str(), *days.end()))
                .map_err(|e| err("reading usage")(&e))?;
            let mut out = Vec::new();
            for entry in range {
                let (key, count) = entry.map_err(|e| err("reading usage")(&e))?;
                out.push((key.value().1, count.value()));
            }
            Ok(out)
        })
    }

    fn put_deployment(&self, deployment: Deployment) -> StateFuture<'_, ()> {
        let changes = self.changes.clone();
        self.run(move |db| {
            let json = serde_json::to_vec(&deployment).map_err(|e| err("encoding")(&e))?;
            let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
            {
                insert_new(&txn, DEPLOYMENTS, &deployment.id, &json, || {
                    format!(
                        "deployment {} exists; a deployment is never changed",
                        deployment.id
                    )
                })?;
                let mut order = txn
                    .open_table(DEPLOYMENT_ORDER)
                    .map_err(|e| err("deployment_order")(&e))?;
                let last = order
                    .get("")
                    .map_err(|e| err("deployment_order")(&e))?
                    .map_or(0, |v| v.value());
                order
                    .insert("", last + 1)
                    .map_err(|e| err("deployment_order")(&e))?;
                order
                    .insert(deployment.id.as_str(), last + 1)
                    .map_err(|e| err("deployment_order")(&e))?;
            }
            txn.commit().map_err(|e| err("commit")(&e))?;
            // No watcher is not an error.
            let _ = changes.send(Change::Deployment {
                id: deployment.id,
                api: deployment.api,
            });
            Ok(())
        })
    }

    fn deployment(&self, id: &str) -> StateFuture<'_, Option<Deployment>> {
        let id = id.to_owned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(|e| err("begin")(&e))?;
            let table = txn
                .open_table(DEPLOYMENTS)
                .map_err(|e| err("deployments")(&e))?;
            read_deployment(&table, &id)
        })
    }

    fn deployments(&self, api: &str) -> StateFuture<'_, Vec<Deployment>> {
        let api = api.to_owned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(|e| err("begin")(&e))?;
            let all: Vec<Deployment> = read_all(
                &txn.open_table(DEPLOYMENTS)
                    .map_err(|e| err("deployments")(&e))?,
            )?;
            let order = txn
                .open_table(DEPLOYMENT_ORDER)
                .map_err(|e| err("deployment_order")(&e))?;
            let mut of_api = Vec::new();
            for d in all.into_iter().filter(|d| d.api == api) {
                let written = order
                    .get(d.id.as_str())
                    .map_err(|e| err("deployment_order")(&e))?
                    .map_or(0, |v| v.value());
                of_api.push((d.created, written, d));
            }
            // Oldest first: by the second it was made, then by the order it was written
            // (the clock's second is too coarse for two deploys in a row).
            of_api.sort_by(|a, b| (a.0, a.1, &a.2.id).cmp(&(b.0, b.1, &b.2.id)));
            Ok(of_api.into_iter().map(|(_, _, d)| d).collect())
        })
    }

    fn delete_deployment(&self, id: &str) -> StateFuture<'_, bool> {
        let changes = self.changes.clone();
        let id = id.to_owned();
        self.run(move |db| {
            let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
            let removed = {
                let stages = txn.open_table(STAGES).map_err(|e| err("stages")(&e))?;
                for entry in stages.iter().map_err(|e| err("stages")(&e))? {
                    let (_, json) = entry.map_err(|e| err("stages")(&e))?;
                    let pointer: StagePointer = serde_json::from_slice(json.value())
                        .map_err(|e| err("a stage pointer")(&e))?;
                    if pointer.deployment == id
                        || pointer.canary.as_ref().is_some_and(|c| c.deployment == id)
                    {
                        return Err(StateError::Conflict(DEPLOYMENT_IN_USE.to_owned()));
                    }
                }
                let mut table = txn
                    .open_table(DEPLOYMENTS)
                    .map_err(|e| err("deployments")(&e))?;
                let removed = table
                    .remove(id.as_str())
                    .map_err(|e| err("deployments")(&e))?;
                txn.open_table(DEPLOYMENT_ORDER)
                    .map_err(|e| err("deployment_order")(&e))?
                    .remove(id.as_str())
                    .map_err(|e| err("deployment_order")(&e))?;
                removed.map(|json| serde_json::from_slice::<Deployment>(json.value()))
            };
            txn.commit().map_err(|e| err("commit")(&e))?;
            match removed {
                Some(Ok(deployment)) => {
                    let _ = changes.send(Change::Deleted {
                        id,
                        api: deployment.api,
                    });
                    Ok(true)
                }
                Some(Err(_)) => Ok(true),
                None => Ok(false),
            }
        })
    }

    fn point_stage(&self, pointer: StagePointer) -> StateFuture<'_, ()> {
        let changes = self.changes.clone();
        self.run(move |db| {
            let json = serde_json::to_vec(&pointer).map_err(|e| err("encoding")(&e))?;
            let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
            {
                let deployments = txn
                    .open_table(DEPLOYMENTS)
                    .map_err(|e| err("deployments")(&e))?;
                let canary = pointer.canary.as_ref().map(|c| &c.deployment);
                for id in std::iter::once(&pointer.deployment).chain(canary) {
                    match read_deployment(&deployments, id)? {
                        None => {
                            return Err(StateError::Conflict(format!("no deployment {id}")));
                        }
                        Some(d) if d.api != pointer.api => {
                            return Err(StateError::Conflict(format!(
                                "deployment {} is of API {}, not {}",
                                d.id, d.api, pointer.api
                            )));
                        }
                        Some(_) => {}
                    }
                }
                let mut stages = txn.open_table(STAGES).map_err(|e| err("stages")(&e))?;
                stages
                    .insert(
                        (pointer.api.as_str(), pointer.stage.as_str()),
                        json.as_slice(),
                    )
                    .map_err(|e| err("stages")(&e))?;
            }
            txn.commit().map_err(|e| err("commit")(&e))?;
            let _ = changes.send(Change::Stage(pointer));
            Ok(())
        })
    }

    fn stages(&self, api: &str) -> StateFuture<'_, Vec<StagePointer>> {
        let api = api.to_owned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(|e| err("begin")(&e))?;
            let table = txn.open_table(STAGES).map_err(|e| err("stages")(&e))?;
            let mut out = Vec::new();
            // Every (api, stage) key with this API sorts between (api, "") and the next API.
            for entry in table
                .range((api.as_str(), "")..)
                .map_err(|e| err("stages")(&e))?
            {
                let (key, json) = entry.map_err(|e| err("stages")(&e))?;
                let (key_api, stage) = key.value();
                if key_api != api {
                    break;
                }
                let pointer = serde_json::from_slice(json.value()).map_err(|e| {
                    StateError::Backend(format!("stage {key_api}/{stage} is not readable: {e}"))
                })?;
                out.push(pointer);
            }
            Ok(out)
        })
    }

    fn put_plan(&self, plan: StoredPlan) -> StateFuture<'_, ()> {
        let changes = self.changes.clone();
        self.run(move |db| {
            let json = serde_json::to_vec(&plan).map_err(|e| err("encoding")(&e))?;
            let txn = db.begin_write().map_err(|e| err("begin")(&e))?;
            insert_new(&txn, PLANS, &plan.name, &json, || {
                format!("a usage plan named {} exists", plan.name)
            })?;
            txn.commit().map_err(|e| err("commit")(&e))?;
            let _ = changes.send(Change::Plan { name: plan.name });
            Ok(())
        })
    }

    fn delete_plan(&self, name: &str) -> StateFuture<'_, bool> {
        let changes = self.changes.clone();
        let name = name.to_owned();
        let removed = self.remove(PLANS, &name);
        Box::pin(async move {
            let removed = removed.await?;
            if removed {
                let _ = changes.send(Change::Plan { name });
            }
            Ok(removed)
        })
    }

    fn plans(&self) -> StateFuture<'_, Vec<StoredPlan>> {
        self.all_json(PLANS)
    }

    fn watch(&self) -> Watch {
        Watch::new(self.changes.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("edgeway-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn the_store_suite_holds() {
        let dir = dir("state-suite");
        crate::state::suite::run(&EmbeddedStore::open(&dir).unwrap()).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn what_was_written_survives_reopening() {
        let dir = dir("state-reopen");
        {
            let store = EmbeddedStore::open(&dir).unwrap();
            crate::state::suite::write_some(&store).await;
        }
        crate::state::suite::read_some(&EmbeddedStore::open(&dir).unwrap()).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
