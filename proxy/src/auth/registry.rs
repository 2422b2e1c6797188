//! The shape both key registries share ([`ApiKeys`](crate::auth::keys::ApiKeys) and
//! [`AccessKeys`](crate::auth::access_keys::AccessKeys)): records kept in the [`StateStore`],
//! mirrored in memory with a lookup view built from them, and replaced whole after each
//! change has committed.
//!
//! The request path reads a [`Snapshot`] with no lock ([`Registry::load`]); changes are
//! serialized (store write, then swap), so a reader never sees a record the store does not
//! hold. Registries are node state: they outlive config reloads.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::state::{StateError, StateFuture, StateStore, StoredAccessKey, StoredKey};

/// A record a registry keeps, and how the store holds it.
pub trait Record: Clone + Send + Sync + 'static {
    fn id(&self) -> &str;
    fn load(store: &dyn StateStore) -> StateFuture<'_, Vec<Self>>;
    fn put(store: &dyn StateStore, records: Vec<Self>) -> StateFuture<'_, ()>;
    fn delete<'a>(store: &'a dyn StateStore, id: &'a str) -> StateFuture<'a, bool>;
}

/// What the request path looks records up in, rebuilt from every record after each change.
pub trait View<R>: Default + Send + Sync + 'static {
    /// `previous` is the view being replaced, for what must stay stable across changes.
    fn build(records: &HashMap<String, R>, previous: &Self) -> Self;
}

/// Every record by id, and the view built from them.
#[derive(Debug, Default)]
pub struct Snapshot<R, V> {
    pub records: HashMap<String, R>,
    pub view: V,
}

/// Records of one kind, in the store and in memory.
#[derive(Debug)]
pub struct Registry<R, V> {
    store: Arc<dyn StateStore>,
    current: ArcSwap<Snapshot<R, V>>,
    /// Serializes changes: store write, then swap.
    changes: tokio::sync::Mutex<()>,
}

impl<R: Record, V: View<R>> Registry<R, V> {
    /// Loads the records in `store`.
    pub async fn open(store: Arc<dyn StateStore>) -> Result<Self, StateError> {
        let records: HashMap<String, R> = R::load(store.as_ref())
            .await?
            .into_iter()
            .map(|r| (r.id().to_owned(), r))
            .collect();
        let view = V::build(&records, &V::default());
        Ok(Self {
            store,
            current: ArcSwap::from_pointee(Snapshot { records, view }),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// The records as they are now: no lock.
    pub fn load(&self) -> Guard<Arc<Snapshot<R, V>>> {
        self.current.load()
    }

    /// Writes the records `prepare` returns (new ones, or changed copies of existing ones)
    /// and returns them. `prepare` sees the records as they are, with no other change in
    /// between; returning none writes nothing, an error refuses the change.
    pub async fn put<E: From<StateError>>(
        &self,
        prepare: impl FnOnce(&Snapshot<R, V>) -> Result<Vec<R>, E>,
    ) -> Result<Vec<R>, E> {
        let _guard = self.changes.lock().await;
        let current = self.current.load_full();
        let written = prepare(&current)?;
        if written.is_empty() {
            return Ok(written);
        }
        R::put(self.store.as_ref(), written.clone()).await?;
        let mut records = current.records.clone();
        for record in &written {
            records.insert(record.id().to_owned(), record.clone());
        }
        self.swap(records, &current.view);
        Ok(written)
    }

    /// Deletes a record; false when there is none with this id.
    pub async fn delete(&self, id: &str) -> Result<bool, StateError> {
        let _guard = self.changes.lock().await;
        let current = self.current.load_full();
        if !current.records.contains_key(id) {
            return Ok(false);
        }
        R::delete(self.store.as_ref(), id).await?;
        let mut records = current.records.clone();
        records.remove(id);
        self.swap(records, &current.view);
        Ok(true)
    }

    fn swap(&self, records: HashMap<String, R>, previous: &V) {
        let view = V::build(&records, previous);
        self.current.store(Arc::new(Snapshot { records, view }));
    }
}

impl Record for StoredKey {
    fn id(&self) -> &str {
        &self.id
    }
    fn load(store: &dyn StateStore) -> StateFuture<'_, Vec<Self>> {
        store.keys()
    }
    fn put(store: &dyn StateStore, records: Vec<Self>) -> StateFuture<'_, ()> {
        store.put_keys(records)
    }
    fn delete<'a>(store: &'a dyn StateStore, id: &'a str) -> StateFuture<'a, bool> {
        store.delete_key(id)
    }
}

impl Record for StoredAccessKey {
    fn id(&self) -> &str {
        &self.id
    }
    fn load(store: &dyn StateStore) -> StateFuture<'_, Vec<Self>> {
        store.access_keys()
    }
    fn put(store: &dyn StateStore, records: Vec<Self>) -> StateFuture<'_, ()> {
        store.put_access_keys(records)
    }
    fn delete<'a>(store: &'a dyn StateStore, id: &'a str) -> StateFuture<'a, bool> {
        store.delete_access_key(id)
    }
}
