//! One configured plugin: its current version, the instances kept warm for it, and the calls
//! the pipeline makes into it.
//!
//! A call takes an instance (an idle one, or a new one from the version's `InstancePre`),
//! arms the deadline, calls the export and gives the instance back. An instance whose call
//! trapped, timed out or ran out of memory is dropped: the next call gets a fresh one. With
//! [`Isolation::PerRequest`] every call gets a fresh instance and none is kept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::{
    Decision, Invocation, MappingInput, RenderError, Rendered, Request, RequestFlow, Response,
    authorizer, handler, lambda, mapper, transformer,
};
use super::engine::PluginEngine;
use super::state::{PluginShared, PluginState};
use super::stats::{CallStats, Outcome};
use super::{Isolation, PluginError, PluginRole, PluginSpec};
use crate::sync::lock;

/// The least time instantiation is given (a plugin's `timeout_ms` when that is longer).
const INSTANTIATION_TIMEOUT: Duration = Duration::from_secs(1);

/// Idle instances kept per version; more concurrent calls make more, which are dropped after.
const MAX_IDLE: usize = 64;

/// A plugin as configured, with whatever version is current.
pub struct Plugin {
    pub spec: PluginSpec,
    pub shared: Arc<PluginShared>,
    current: ArcSwap<PluginVersion>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.spec.name)
            .field("role", &self.spec.role)
            .field("version", &self.current.load().hash)
            .finish()
    }
}

/// One compiled version of a plugin's component.
pub struct PluginVersion {
    /// SHA-256 of the component, hex.
    pub hash: String,
    pub loaded_at: SystemTime,
    pub component: Component,
    pub stats: CallStats,
    pre: RolePre,
    idle: Mutex<Vec<Instance>>,
}

impl std::fmt::Debug for PluginVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginVersion")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

enum RolePre {
    Authorizer(authorizer::AuthorizerPre<PluginState>),
    Transformer(transformer::TransformerPre<PluginState>),
    Handler(handler::HandlerPre<PluginState>),
    Lambda(lambda::LambdaPre<PluginState>),
    Mapper(mapper::MapperPre<PluginState>),
}

enum Exports {
    Authorizer(authorizer::Authorizer),
    Transformer(transformer::Transformer),
    Handler(handler::Handler),
    Lambda(lambda::Lambda),
    Mapper(mapper::Mapper),
}

struct Instance {
    store: Store<PluginState>,
    exports: Exports,
}

impl PluginVersion {
    /// Links `component` for `role`: every import must be one the host gives and the exports
    /// must be the role's world. This is the check a new version passes before it can serve.
    pub fn link(
        engine: &PluginEngine,
        role: PluginRole,
        component: Component,
        hash: String,
    ) -> Result<Self, super::LoadError> {
        super::cache::prepare_memory_images(&component)?;
        let pre = engine
            .linker
            .instantiate_pre(&component)
            .map_err(super::LoadError::Imports)?;
        let wrong_world = |source| super::LoadError::WrongWorld { role, source };
        let pre = match role {
            PluginRole::Authorizer => {
                RolePre::Authorizer(authorizer::AuthorizerPre::new(pre).map_err(wrong_world)?)
            }
            PluginRole::Transformer => {
                RolePre::Transformer(transformer::TransformerPre::new(pre).map_err(wrong_world)?)
            }
            PluginRole::Handler => {
                RolePre::Handler(handler::HandlerPre::new(pre).map_err(wrong_world)?)
            }
            PluginRole::Lambda => {
                RolePre::Lambda(lambda::LambdaPre::new(pre).map_err(wrong_world)?)
            }
            PluginRole::Mapper => {
                RolePre::Mapper(mapper::MapperPre::new(pre).map_err(wrong_world)?)
            }
        };
        Ok(Self {
            hash,
            loaded_at: SystemTime::now(),
            component,
            stats: CallStats::default(),
            pre,
            idle: Mutex::new(Vec::new()),
        })
    }

    async fn checkout(
        &self,
        plugin: &Plugin,
        isolation: Isolation,
    ) -> Result<Instance, PluginError> {
        if isolation == Isolation::Reuse
            && let Some(instance) = lock(&self.idle).pop()
        {
            return Ok(instance);
        }
        self.instantiate(plugin).await
    }

    async fn instantiate(&self, plugin: &Plugin) -> Result<Instance, PluginError> {
        let engine = match &self.pre {
            RolePre::Authorizer(pre) => pre.engine(),
            RolePre::Transformer(pre) => pre.engine(),
            RolePre::Handler(pre) => pre.engine(),
            RolePre::Lambda(pre) => pre.engine(),
            RolePre::Mapper(pre) => pre.engine(),
        };
        let memory_cap = usize::try_from(plugin.spec.memory_bytes).unwrap_or(usize::MAX);
        let mut store = Store::new(engine, PluginState::new(plugin.shared.clone(), memory_cap));
        store.limiter(|state| state);
        store.epoch_deadline_callback(|mut store| {
            let state = store.data();
            if Instant::now() >= state.deadline {
                store.data_mut().timed_out = true;
                return Err(wasmtime::Error::msg("deadline exceeded"));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        // Start-up code (constructors, a language runtime's init) runs under a deadline too, a
        // longer one: a JavaScript or Python component takes milliseconds to start, and a call's
        // 50 ms must not be spent on that when the machine is busy.
        let started = arm(&mut store, plugin.spec.timeout.max(INSTANTIATION_TIMEOUT));
        let made = match &self.pre {
            RolePre::Authorizer(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Exports::Authorizer),
            RolePre::Transformer(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Exports::Transformer),
            RolePre::Handler(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Exports::Handler),
            RolePre::Lambda(pre) => pre.instantiate_async(&mut store).await.map(Exports::Lambda),
            RolePre::Mapper(pre) => pre.instantiate_async(&mut store).await.map(Exports::Mapper),
        };
        self.stats.instantiated();
        match made {
            Ok(exports) => Ok(Instance { store, exports }),
            Err(error) => {
                let error = classify(&plugin.spec, store.data(), &error, "instantiation failed");
                self.stats.record(started.elapsed(), error.outcome());
                Err(error)
            }
        }
    }

    /// Records the call, keeps the instance if it is healthy and reusable, and turns the
    /// outcome into the caller's result.
    fn finish<T>(
        &self,
        plugin: &Plugin,
        instance: Instance,
        isolation: Isolation,
        started: Instant,
        outcome: wasmtime::Result<Result<T, String>>,
    ) -> Result<T, PluginError> {
        let elapsed = started.elapsed();
        match outcome {
            Ok(Ok(value)) => {
                self.stats.record(elapsed, Outcome::Ok);
                self.give_back(instance, isolation);
                Ok(value)
            }
            Ok(Err(message)) => {
                self.stats.record(elapsed, Outcome::Failed);
                // The plugin reported an error itself: its instance is still sound.
                self.give_back(instance, isolation);
                Err(PluginError::Returned {
                    plugin: plugin.spec.name.clone(),
                    message,
                })
            }
            Err(trap) => {
                let error = classify(&plugin.spec, instance.store.data(), &trap, "trapped");
                self.stats.record(elapsed, error.outcome());
                Err(error)
            }
        }
    }

    /// Instances kept warm for the next call.
    pub fn idle_instances(&self) -> usize {
        lock(&self.idle).len()
    }

    fn give_back(&self, instance: Instance, isolation: Isolation) {
        if isolation == Isolation::Reuse {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_IDLE {
                idle.push(instance);
            }
        }
    }
}

fn arm(store: &mut Store<PluginState>, timeout: Duration) -> Instant {
    let now = Instant::now();
    let state = store.data_mut();
    state.armed_at = now;
    state.deadline = now + timeout;
    state.timed_out = false;
    state.out_of_memory = false;
    store.set_epoch_deadline(1);
    now
}

fn classify(
    spec: &PluginSpec,
    state: &PluginState,
    error: &wasmtime::Error,
    what: &str,
) -> PluginError {
    let plugin = spec.name.clone();
    if state.timed_out {
        PluginError::Timeout {
            plugin,
            after: state.deadline.saturating_duration_since(state.armed_at),
        }
    } else if state.out_of_memory {
        PluginError::OutOfMemory {
            plugin,
            limit_mib: spec.memory_bytes >> 20,
        }
    } else {
        PluginError::Trap {
            plugin,
            message: format!("{what}: {error:#}"),
        }
    }
}

/// One call into a plugin's current version: take an instance, arm its deadline, call the
/// export when the instance plays `$role`, then record the call and give the instance back.
/// The role methods below differ only in the export they call.
macro_rules! call_export {
    ($plugin:expr, $isolation:expr, $role:ident, |$export:ident, $store:ident| $call:expr) => {{
        let plugin: &Plugin = $plugin;
        let version = plugin.current.load_full();
        let mut instance = version.checkout(plugin, $isolation).await?;
        let started = arm(&mut instance.store, plugin.spec.timeout);
        let outcome = match &instance.exports {
            Exports::$role($export) => {
                let $store = &mut instance.store;
                $call.await
            }
            _ => Err(wrong_role(PluginRole::$role)),
        };
        version.finish(plugin, instance, $isolation, started, outcome)
    }};
}

impl Plugin {
    /// A plugin serving `version`.
    pub fn new(spec: PluginSpec, shared: Arc<PluginShared>, version: PluginVersion) -> Self {
        Self {
            spec,
            shared,
            current: ArcSwap::from_pointee(version),
        }
    }

    /// The version new calls go to.
    pub fn current(&self) -> Arc<PluginVersion> {
        self.current.load_full()
    }

    /// Makes `version` current; calls already running finish on the version they started with.
    pub fn swap(&self, version: PluginVersion) {
        self.current.store(Arc::new(version));
    }

    /// Runs an authorizer.
    pub async fn authorize(
        &self,
        isolation: Isolation,
        identity: &[(String, String)],
        request: &Request,
    ) -> Result<Decision, PluginError> {
        call_export!(self, isolation, Authorizer, |export, store| export
            .call_authorize(store, identity, request))
    }

    /// Runs a transformer on a request.
    pub async fn on_request(
        &self,
        isolation: Isolation,
        request: &Request,
    ) -> Result<RequestFlow, PluginError> {
        call_export!(self, isolation, Transformer, |export, store| export
            .call_on_request(store, request))
    }

    /// Runs a transformer on a response.
    pub async fn on_response(
        &self,
        isolation: Isolation,
        request: &Request,
        response: &Response,
    ) -> Result<Response, PluginError> {
        call_export!(self, isolation, Transformer, |export, store| export
            .call_on_response(store, request, response))
    }

    /// Runs a handler.
    pub async fn handle(
        &self,
        isolation: Isolation,
        request: &Request,
    ) -> Result<Response, PluginError> {
        call_export!(self, isolation, Handler, |export, store| export
            .call_handle(store, request))
    }

    /// Runs a Lambda-style function on `event` (JSON text); its result is JSON text too.
    pub async fn invoke(
        &self,
        isolation: Isolation,
        event: &str,
        request_id: &str,
    ) -> Result<String, PluginError> {
        let invocation = Invocation {
            request_id: request_id.to_owned(),
            function_name: self.spec.name.clone(),
            remaining_ms: u64::try_from(self.spec.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        call_export!(self, isolation, Lambda, |export, store| export.call_invoke(
            store,
            event,
            &invocation
        ))
    }
}

/// How a mapper call failed.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The template failed on this input (or would not parse in the mapper).
    #[error("mapping template: {0}")]
    Template(String),
    /// The mapper itself failed: trap, timeout, out of memory.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

impl Plugin {
    /// Renders template `id` (whose text is `source`) with a mapper. An instance that has not
    /// seen the template yet is given it first, in the same checkout, so each instance parses
    /// each template once.
    pub async fn render(
        &self,
        isolation: Isolation,
        id: u64,
        source: &str,
        input: &MappingInput,
    ) -> Result<Rendered, MapError> {
        let version = self.current.load_full();
        let mut instance = version.checkout(self, isolation).await?;
        let started = arm(&mut instance.store, self.spec.timeout);
        let outcome: wasmtime::Result<Result<Rendered, String>> = match &instance.exports {
            Exports::Mapper(export) => {
                let store = &mut instance.store;
                match export.call_render(&mut *store, id, input).await {
                    Ok(Err(RenderError::UnknownTemplate)) => {
                        match export.call_load(&mut *store, id, source).await {
                            Ok(Ok(())) => match export.call_render(&mut *store, id, input).await {
                                Ok(Ok(rendered)) => Ok(Ok(rendered)),
                                Ok(Err(RenderError::Failed(why))) => Ok(Err(why)),
                                Ok(Err(RenderError::UnknownTemplate)) => {
                                    Ok(Err("the mapper forgot a template it just loaded".into()))
                                }
                                Err(trap) => Err(trap),
                            },
                            Ok(Err(why)) => Ok(Err(why)),
                            Err(trap) => Err(trap),
                        }
                    }
                    Ok(Ok(rendered)) => Ok(Ok(rendered)),
                    Ok(Err(RenderError::Failed(why))) => Ok(Err(why)),
                    Err(trap) => Err(trap),
                }
            }
            _ => Err(wrong_role(PluginRole::Mapper)),
        };
        match version.finish(self, instance, isolation, started, outcome) {
            Ok(rendered) => Ok(rendered),
            Err(PluginError::Returned { message, .. }) => Err(MapError::Template(message)),
            Err(other) => Err(MapError::Plugin(other)),
        }
    }
}

/// Config validation ties each use to a plugin of the right role; this is the guard if that
/// ever slips.
fn wrong_role(wanted: PluginRole) -> wasmtime::Error {
    wasmtime::Error::msg(format!("plugin is not a {wanted}"))
}
