//! The WebAssembly plugin host (DESIGN.md §5).
//!
//! Plugins are components targeting one world of `wit/plugin.wit`: `authorizer`,
//! `transformer` or `handler`. A node has one [`PluginHost`]: one wasmtime engine with the
//! pooling allocator, one linker, an epoch ticker for call deadlines, and the [`PluginSet`]
//! currently configured. Each plugin is compiled once (and cached on disk by its SHA-256),
//! linked into an `InstancePre`, and checked against its role's world before it may serve.
//!
//! Versions swap atomically: [`Plugin::swap`] replaces the current version while calls
//! already running finish on theirs. A version that fails to compile or link is refused and
//! the old one keeps serving.
//!
//! The pipeline calls plugins through [`Plugin::authorize`], [`Plugin::on_request`],
//! [`Plugin::on_response`] and [`Plugin::handle`]; a failed call is a [`PluginError`], which
//! fails that request only.

pub mod bindings;
pub mod cache;
pub mod convert;
mod engine;
pub mod kv;
mod plugin;
mod state;
mod stats;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

pub use engine::{EPOCH_TICK, MAX_PLUGIN_MEMORY, PluginEngine};
pub use plugin::{MapError, Plugin, PluginVersion};
pub use state::{OutboundHttp, PluginShared};
pub use stats::{CallStats, StatsSnapshot};

use crate::sync::lock;
use crate::upstream::Upstream;
use kv::KvStore;

/// Default for a plugin's `timeout_ms`: 50 ms per call.
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_millis(50);
/// Default for a plugin's `memory_mib`: 64 MiB.
pub const DEFAULT_PLUGIN_MEMORY: u64 = 64 * 1024 * 1024;
/// Default for a plugin's `http_timeout_ms`.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// Which world a plugin implements, and so where it may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginRole {
    /// `auth:` on a route (through an API's `authorizers`).
    Authorizer,
    /// `request_transforms` / `response_transforms` on a route.
    Transformer,
    /// `integration: { function: NAME }`.
    Handler,
    /// A function in AWS Lambda's shape (JSON event in, JSON out): `integration: { function:
    /// { plugin: NAME, payload: aws-proxy-1.0 | aws-proxy-2.0 } }`, or a `lambda` authorizer.
    Lambda,
    /// Renders mapping templates (`request_templates`, `response_templates`); the built-in
    /// `mapping-template` component unless a plugin of that name is configured.
    Mapper,
}

impl PluginRole {
    /// The role's name as written in config and WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorizer => "authorizer",
            Self::Transformer => "transformer",
            Self::Handler => "handler",
            Self::Lambda => "lambda",
            Self::Mapper => "mapper",
        }
    }

    /// Parses a role name as written in config.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "authorizer" => Some(Self::Authorizer),
            "transformer" => Some(Self::Transformer),
            "handler" => Some(Self::Handler),
            "lambda" => Some(Self::Lambda),
            "mapper" => Some(Self::Mapper),
            _ => None,
        }
    }
}

impl std::fmt::Display for PluginRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a route's plugin calls share instances (`isolation` on a route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Instances are reused from call to call (the default); a fresh one after a failure.
    #[default]
    Reuse,
    /// Every call gets a fresh instance, so nothing a call leaves in memory reaches another.
    PerRequest,
}

/// Which request headers a plugin is given (`headers` in its config).
///
/// Copying headers into a plugin is most of what a call costs, so authorizers get none unless
/// they ask: their identity sources carry what they decide on. Transformers always get every
/// header, since the headers they return replace the request's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSelection {
    /// Every header (`headers: ["*"]`; the default for transformers and handlers).
    All,
    /// Only these (`headers: [authorization, x-tenant]`; none is the authorizers' default).
    Only(Vec<http::HeaderName>),
}

/// One entry of `plugins.load` in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    pub name: String,
    pub role: PluginRole,
    /// The component file (absolute, or relative to the working directory).
    pub file: PathBuf,
    /// Per-call deadline (`timeout_ms`, default 50 ms).
    pub timeout: Duration,
    /// Linear memory cap per instance (`memory_mib`, default 64).
    pub memory_bytes: u64,
    /// Whether the plugin is given request and response bodies (`body`, default false).
    pub body: bool,
    /// Which request headers the plugin is given (`headers`).
    pub headers: HeaderSelection,
    /// Hosts `http.fetch` may reach (`allowed_hosts`): `host` or `host:port`.
    pub allowed_hosts: Vec<String>,
    pub http_timeout: Duration,
    /// The plugin's own `config`, as JSON text.
    pub config_json: String,
}

/// The `plugins` section of the config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginsConfig {
    /// Watched for new component files (`dir`).
    pub dir: Option<PathBuf>,
    /// Where compiled components are kept (`cache_dir`).
    pub cache_dir: PathBuf,
    pub load: Vec<PluginSpec>,
}

/// Why a plugin call failed. Each fails the one request that made it.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin}: no result within {} ms", after.as_millis())]
    Timeout { plugin: String, after: Duration },
    #[error("plugin {plugin}: out of memory (limit {limit_mib} MiB)")]
    OutOfMemory { plugin: String, limit_mib: u64 },
    #[error("plugin {plugin}: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} returned an error: {message}")]
    Returned { plugin: String, message: String },
    #[error("plugin {plugin}: bad output: {message}")]
    BadOutput { plugin: String, message: String },
}

impl PluginError {
    fn outcome(&self) -> stats::Outcome {
        match self {
            Self::Timeout { .. } => stats::Outcome::Timeout,
            Self::OutOfMemory { .. } => stats::Outcome::OutOfMemory,
            _ => stats::Outcome::Failed,
        }
    }
}

/// The plugins of one config, by name.
#[derive(Debug, Default)]
pub struct PluginSet {
    pub by_name: HashMap<String, Arc<Plugin>>,
    pub config: PluginsConfig,
}

impl PluginSet {
    /// The plugin called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.by_name.get(name)
    }
}

/// A node's plugin runtime, alive for the whole process.
///
/// The engine starts with the first plugin: a node without plugins reserves no instance pool
/// and runs no epoch ticker.
pub struct PluginHost {
    engine: std::sync::OnceLock<PluginEngine>,
    kv: Arc<KvStore>,
    current: ArcSwap<PluginSet>,
    /// Serialises the things that replace versions: a config load and a hot swap.
    changes: Mutex<()>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("plugins", &self.current.load().by_name.len())
            .finish_non_exhaustive()
    }
}

/// What a swap did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swapped {
    /// The hash of the version now current.
    pub version: String,
    /// False when the component was already the current version (nothing changed).
    pub changed: bool,
}

/// Why a new version was refused.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("no plugin named {0:?} is configured")]
    Unknown(String),
    #[error("plugin {plugin}: {reason}")]
    Refused {
        plugin: String,
        #[source]
        reason: LoadError,
    },
}

/// Why a component cannot be loaded as a plugin. Every check a new version passes before it can
/// serve fails with one of these, at load, reload or hot swap.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "this edgeway binary was built without the built-in mapping-template component: run scripts/build-plugins.sh, then build edgeway again"
    )]
    NoBuiltin,
    #[error("cannot start the plugin engine: {0:#}")]
    Engine(anyhow::Error),
    #[error("not a valid component: {0:#}")]
    NotAComponent(wasmtime::Error),
    #[error("cannot prepare the plugin's initial memory: {0:#}")]
    MemoryImage(wasmtime::Error),
    #[error("imports something Edgeway does not provide: {0:#}")]
    Imports(wasmtime::Error),
    #[error("does not export the `{role}` world: {source:#}")]
    WrongWorld {
        role: PluginRole,
        source: wasmtime::Error,
    },
}

/// The plugins of a config that failed to load, each with why.
/// A component's bytes: from its file, or from the binary for a built-in one.
fn read_component(file: &Path) -> Result<std::borrow::Cow<'static, [u8]>, LoadError> {
    if file == Path::new(crate::mapping::builtin::FILE) {
        return crate::mapping::builtin::component()
            .map(std::borrow::Cow::Borrowed)
            .ok_or(LoadError::NoBuiltin);
    }
    std::fs::read(file)
        .map(std::borrow::Cow::Owned)
        .map_err(|source| LoadError::Read {
            path: file.to_owned(),
            source,
        })
}

#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|(name, e)| format!("plugins: {name}: {e}")).collect::<Vec<_>>().join("\n"))]
pub struct LoadErrors(pub Vec<(String, LoadError)>);

impl PluginHost {
    /// A host with no plugins; the engine starts when the first plugin loads.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            engine: std::sync::OnceLock::new(),
            kv: Arc::new(KvStore::new(kv::DEFAULT_KV_CAPACITY)),
            current: ArcSwap::from_pointee(PluginSet::default()),
            changes: Mutex::new(()),
        })
    }

    /// The plugins currently configured.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    /// Loads the plugins `config` names, reusing the current ones whose settings and file are
    /// unchanged. Blocks while compiling: call it off the request threads. The set becomes
    /// current with [`PluginHost::install`], once the gateway built on it is.
    pub fn load(
        &self,
        config: &PluginsConfig,
        upstream: &Upstream,
    ) -> Result<Arc<PluginSet>, LoadErrors> {
        let _changes = lock(&self.changes);
        let previous = self.current.load_full();
        let mut by_name = HashMap::new();
        let mut errors = Vec::new();
        for spec in &config.load {
            match self.load_one(spec, config, upstream, &previous) {
                Ok(plugin) => {
                    by_name.insert(spec.name.clone(), plugin);
                }
                Err(e) => errors.push((spec.name.clone(), e)),
            }
        }
        if !errors.is_empty() {
            return Err(LoadErrors(errors));
        }
        Ok(Arc::new(PluginSet {
            by_name,
            config: config.clone(),
        }))
    }

    /// Makes `set` the current plugins (for hot swaps and `GET /admin/plugins`).
    pub fn install(&self, set: Arc<PluginSet>) {
        let _changes = lock(&self.changes);
        self.current.store(set);
    }

    fn load_one(
        &self,
        spec: &PluginSpec,
        config: &PluginsConfig,
        upstream: &Upstream,
        previous: &PluginSet,
    ) -> Result<Arc<Plugin>, LoadError> {
        let bytes = read_component(&spec.file)?;
        let hash = cache::sha256_hex(&bytes);
        if let Some(old) = previous.get(&spec.name)
            && old.spec == *spec
            && old.current().hash == hash
            && previous.config.cache_dir == config.cache_dir
        {
            return Ok(old.clone());
        }
        // Same component under other settings: reuse the compiled code, not the instances
        // (they hold the old config).
        let compiled = previous
            .by_name
            .values()
            .map(|p| p.current())
            .find(|v| v.hash == hash)
            .map(|v| v.component.clone());
        let component = match compiled {
            Some(component) => component,
            None => self.compile(&bytes, &config.cache_dir)?.0,
        };
        let version = PluginVersion::link(self.engine()?, spec.role, component, hash)?;
        let shared = Arc::new(PluginShared {
            name: spec.name.as_str().into(),
            config_json: spec.config_json.clone(),
            kv: self.kv.clone(),
            counters: Mutex::new(Default::default()),
            http: (!spec.allowed_hosts.is_empty()).then(|| {
                OutboundHttp::new(
                    spec.allowed_hosts.clone(),
                    spec.http_timeout,
                    upstream.clone(),
                )
            }),
        });
        Ok(Arc::new(Plugin::new(spec.clone(), shared, version)))
    }

    fn compile(
        &self,
        bytes: &[u8],
        cache_dir: &Path,
    ) -> Result<(wasmtime::component::Component, String), LoadError> {
        cache::load(&self.engine()?.engine, bytes, cache_dir).map_err(LoadError::NotAComponent)
    }

    /// The engine, started on first use.
    fn engine(&self) -> Result<&PluginEngine, LoadError> {
        if let Some(engine) = self.engine.get() {
            return Ok(engine);
        }
        let engine = PluginEngine::new().map_err(LoadError::Engine)?;
        // Loads and swaps hold `changes`, so only one thread gets here at a time.
        Ok(self.engine.get_or_init(|| engine))
    }

    /// Compiles `bytes` as a new version of plugin `name`, checks it against the plugin's
    /// role and swaps it in. With `persist`, the component is also written over the
    /// plugin's file (atomically), so a restart or reload keeps it. Blocks while compiling.
    /// Returns the new version's hash, with `changed: false` when `bytes` is already current.
    pub fn swap(&self, name: &str, bytes: &[u8], persist: bool) -> Result<Swapped, SwapError> {
        let _changes = lock(&self.changes);
        self.swap_locked(name, bytes, persist)
    }

    /// [`PluginHost::swap`], with `changes` held by the caller.
    fn swap_locked(&self, name: &str, bytes: &[u8], persist: bool) -> Result<Swapped, SwapError> {
        let set = self.current.load_full();
        let plugin = set
            .get(name)
            .ok_or_else(|| SwapError::Unknown(name.to_owned()))?;
        let refused = |reason: LoadError| SwapError::Refused {
            plugin: name.to_owned(),
            reason,
        };
        let hash = cache::sha256_hex(bytes);
        if plugin.current().hash == hash {
            return Ok(Swapped {
                version: hash,
                changed: false,
            });
        }
        let (component, hash) = self
            .compile(bytes, &set.config.cache_dir)
            .map_err(refused)?;
        let engine = self.engine().map_err(refused)?;
        let version = PluginVersion::link(engine, plugin.spec.role, component, hash.clone())
            .map_err(refused)?;
        // A built-in component has no file of its own: a new version of it lasts until the
        // process ends (configure a plugin of its name to keep one).
        let builtin = plugin.spec.file == Path::new(crate::mapping::builtin::FILE);
        if persist && !builtin {
            write_atomically(&plugin.spec.file, bytes).map_err(|source| {
                refused(LoadError::Write {
                    path: plugin.spec.file.clone(),
                    source,
                })
            })?;
        }
        plugin.swap(version);
        Ok(Swapped {
            version: hash,
            changed: true,
        })
    }

    /// Reacts to a change of `path` in the plugin folder: every plugin loaded from that file
    /// gets its new contents. Returns what happened to each, for the log.
    ///
    /// The file is read under the same lock as swaps: an event that arrives late cannot put
    /// back contents an admin upload has since replaced.
    pub fn file_changed(&self, path: &Path) -> Vec<(String, Result<Swapped, SwapError>)> {
        let _changes = lock(&self.changes);
        let set = self.current.load_full();
        let names: Vec<String> = set
            .by_name
            .values()
            .filter(|p| same_file(&p.spec.file, path))
            .map(|p| p.spec.name.clone())
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                return names
                    .into_iter()
                    .map(|name| {
                        let reason = LoadError::Read {
                            path: path.to_owned(),
                            source: std::io::Error::new(e.kind(), e.to_string()),
                        };
                        (
                            name.clone(),
                            Err(SwapError::Refused {
                                plugin: name,
                                reason,
                            }),
                        )
                    })
                    .collect();
            }
        };
        names
            .into_iter()
            .map(|name| {
                let result = self.swap_locked(&name, &bytes, false);
                (name, result)
            })
            .collect()
    }
}

/// The totals a plugin reported through `metrics.counter-add`.
pub fn counters(plugin: &Plugin) -> std::collections::BTreeMap<String, u64> {
    lock(&plugin.shared.counters).clone()
}

fn same_file(a: &Path, b: &Path) -> bool {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    absolute(a) == absolute(b)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("plugin.wasm");
    let temporary = dir.join(format!(".{name}.{}.upload", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
