//! A running node: binds the listeners, serves, reloads config, drains on SIGTERM.
//!
//! Reload triggers are SIGHUP and (unless disabled) a change of the config file. A reload
//! parses and validates the file off the request path, builds a new [`Gateway`] and swaps it
//! in atomically; a config that fails is refused with the error logged and the running one
//! keeps serving. Listener addresses are bound once at startup: a reload that changes them is
//! applied for everything else, and the new addresses take effect at the next restart.
//!
//! With watching on, the plugin folder (`plugins.dir`) is watched too: a changed `.wasm` file
//! is compiled off the request path and swapped in for every plugin loaded from it ("plugin
//! swapped"), or refused with the old version still serving ("plugin refused").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::access_keys::AccessKeys;
use crate::config::{self, Config};
use crate::gateway::Gateway;
use crate::keys::ApiKeys;
use crate::plugins::PluginHost;
use crate::state::EmbeddedStore;
use crate::telemetry::AccessLog;
use crate::throttle::Limiter;

/// How often counted usage is added to the state store: at most this much is lost to a crash.
const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// State shared by every connection of the node.
#[derive(Debug)]
pub struct Shared {
    pub gateway: ArcSwap<Gateway>,
    pub log: Arc<AccessLog>,
    /// Set once SIGTERM arrives; `/readyz` then answers 503.
    pub draining: AtomicBool,
    /// The plugin runtime; its plugins are those of the current gateway.
    pub plugins: Arc<PluginHost>,
}

/// How `edgeway serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config_path: PathBuf,
    /// Reload when the config file changes.
    pub watch: bool,
}

/// Runs a node until SIGTERM or SIGINT, on a runtime sized by the config's `workers`.
pub fn serve(options: ServeOptions, config: Config) -> anyhow::Result<()> {
    let runtime = match config.workers {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(run(options, config))
}

async fn run(options: ServeOptions, config: Config) -> anyhow::Result<()> {
    let plugins = Arc::new(PluginHost::new().context("cannot start the plugin engine")?);
    let set = {
        let plugins = plugins.clone();
        let (specs, upstream) = (config.plugins.clone(), config.upstream.clone());
        tokio::task::spawn_blocking(move || plugins.load(&specs, &upstream))
            .await?
            .map_err(anyhow::Error::msg)?
    };
    let (keys, access_keys, limiter) = {
        let path = config.state.path.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<(ApiKeys, AccessKeys, Limiter)> {
            let store: Arc<dyn crate::state::StateStore> = Arc::new(EmbeddedStore::open(&path)?);
            Ok((
                ApiKeys::open(store.clone())?,
                AccessKeys::open(store.clone())?,
                Limiter::new(store),
            ))
        })
        .await?
        .context("cannot open the state store")?
    };
    let limiter = Arc::new(limiter);
    tokio::spawn(flush_usage(limiter.clone()));
    let gateway = Gateway::build(
        &config,
        &set,
        Arc::new(keys),
        Arc::new(access_keys),
        limiter.clone(),
        1,
        None,
    )
    .map_err(anyhow::Error::msg)?;
    plugins.install(set);
    let shared = Arc::new(Shared {
        gateway: ArcSwap::from_pointee(gateway),
        log: AccessLog::stdout(),
        draining: AtomicBool::new(false),
        plugins,
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let reloader = Reloader {
        path: options.config_path.clone(),
        shared: shared.clone(),
        last_text: std::fs::read_to_string(&options.config_path).ok(),
        bound: config.listen.iter().map(|l| l.addr).collect(),
    };
    let triggers = ReloadTriggers::new(&reloader, options.watch)?;

    let mut servers = tokio::task::JoinSet::new();
    for (index, listen) in config.listen.iter().enumerate() {
        let listener = TcpListener::bind(listen.addr)
            .await
            .with_context(|| format!("listen[{index}]: cannot bind {}", listen.addr))?;
        tracing::info!(
            name = format!("listen[{index}]"),
            addr = %listener.local_addr()?,
            tls = listen.tls.is_some(),
            "listening"
        );
        servers.spawn(crate::listener::serve(
            listener,
            index,
            shared.clone(),
            shutdown_rx.clone(),
        ));
    }
    // The admin listener outlives the drain, so `/readyz` can say 503 while it lasts.
    let (admin_stop, admin_stop_rx) = watch::channel(false);
    let mut admin_task = None;
    if let Some(admin) = &config.admin {
        let listener = TcpListener::bind(admin.addr)
            .await
            .with_context(|| format!("admin: cannot bind {}", admin.addr))?;
        tracing::info!(name = "admin", addr = %listener.local_addr()?, tls = false, "listening");
        admin_task = Some(tokio::spawn(crate::admin::serve(
            listener,
            admin.token_env.clone(),
            shared.clone(),
            admin_stop_rx,
        )));
    }
    tracing::info!(generation = 1u64, "config reloaded");
    let reloads = tokio::spawn(reload_loop(reloader, triggers));

    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }

    // `/readyz` turns 503 before the log says so: whoever reads the log can rely on it.
    shared
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let drain_timeout = shared.gateway.load().drain_timeout;
    tracing::info!(drain_timeout_s = drain_timeout.as_secs(), "draining");
    reloads.abort();
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(drain_timeout, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("drain timeout passed with requests still in flight; exiting");
    } else {
        tracing::info!("drained");
    }
    let _ = admin_stop.send(true);
    if let Some(task) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    shared.log.flush();
    let limiter = shared.gateway.load().limiter.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || limiter.flush()).await? {
        tracing::error!(error = %e, "usage counted since the last flush is lost");
    }
    Ok(())
}

/// Adds counted usage to the state store every second.
async fn flush_usage(limiter: Arc<Limiter>) {
    let mut tick = tokio::time::interval(USAGE_FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let limiter = limiter.clone();
        let flushed = tokio::task::spawn_blocking(move || limiter.flush()).await;
        match flushed {
            Ok(Ok(())) => {}
            // Kept in memory and tried again at the next tick.
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot store usage; will retry"),
            Err(e) => tracing::error!(error = %e, "usage flush task failed"),
        }
    }
}

struct Reloader {
    path: PathBuf,
    shared: Arc<Shared>,
    /// The text of the last reload attempt: a watch event that changes nothing is ignored.
    last_text: Option<String>,
    /// The `listen` addresses bound at startup; they stay until the next restart.
    bound: Vec<SocketAddr>,
}

impl Reloader {
    async fn reload(&mut self, force: bool) {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %format!("{}: cannot read the config file: {e}", self.path.display()), "config refused");
                return;
            }
        };
        if !force && self.last_text.as_deref() == Some(text.as_str()) {
            return;
        }
        self.last_text = Some(text.clone());
        let path = self.path.clone();
        let plugins = self.shared.plugins.clone();
        // Parsing loads certificates and trust roots, and plugins may need compiling: keep it
        // off the request threads.
        let parsed = tokio::task::spawn_blocking(move || {
            let config = config::parse(&text, &path).map_err(|e| e.to_string())?;
            let set = plugins.load(&config.plugins, &config.upstream)?;
            Ok::<_, String>((config, set))
        })
        .await;
        let (config, set) = match parsed {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(errors)) => {
                tracing::error!(error = %errors, "config refused");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "config refused");
                return;
            }
        };
        let current = self.shared.gateway.load_full();
        let generation = current.generation + 1;
        match Gateway::build(
            &config,
            &set,
            current.keys.clone(),
            current.access_keys.clone(),
            current.limiter.clone(),
            generation,
            Some(&current),
        ) {
            Ok(gateway) => {
                if !config
                    .listen
                    .iter()
                    .map(|l| l.addr)
                    .eq(self.bound.iter().copied())
                {
                    tracing::warn!(
                        "`listen` differs from the addresses bound at startup; they take effect at the next restart"
                    );
                }
                self.shared.gateway.store(Arc::new(gateway));
                self.shared.plugins.install(set);
                tracing::info!(generation, "config reloaded");
            }
            Err(e) => tracing::error!(error = %e, "config refused"),
        }
    }
}

/// What the reload loop listens to. Set up before the node reports its listeners, so a change
/// (or SIGHUP) that follows the "listening" log line is never missed.
struct ReloadTriggers {
    watch_file: bool,
    hangup: tokio::signal::unix::Signal,
    file_events: mpsc::UnboundedReceiver<()>,
    _config_watcher: Option<notify::RecommendedWatcher>,
    plugin_tx: mpsc::UnboundedSender<PathBuf>,
    plugin_events: mpsc::UnboundedReceiver<PathBuf>,
    plugin_watch: Option<(PathBuf, notify::RecommendedWatcher)>,
}

impl ReloadTriggers {
    fn new(reloader: &Reloader, watch_file: bool) -> anyhow::Result<Self> {
        let hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let (tx, file_events) = mpsc::unbounded_channel();
        let config_watcher = if watch_file {
            match watch_config(&reloader.path, tx) {
                Ok(watcher) => Some(watcher),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
                    None
                }
            }
        } else {
            None
        };
        let (plugin_tx, plugin_events) = mpsc::unbounded_channel::<PathBuf>();
        let mut triggers = Self {
            watch_file,
            hangup,
            file_events,
            _config_watcher: config_watcher,
            plugin_tx,
            plugin_events,
            plugin_watch: None,
        };
        triggers.watch_plugin_dir(&reloader.shared);
        Ok(triggers)
    }

    /// Watches the current `plugins.dir` (again, if a reload changed it).
    fn watch_plugin_dir(&mut self, shared: &Shared) {
        let dir = shared.plugins.current().config.dir.clone();
        if !self.watch_file || self.plugin_watch.as_ref().map(|(d, _)| d) == dir.as_ref() {
            return;
        }
        self.plugin_watch = dir.and_then(|dir| match watch_plugins(&dir, self.plugin_tx.clone()) {
            Ok(watcher) => Some((dir, watcher)),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the plugin folder");
                None
            }
        });
    }
}

async fn reload_loop(mut reloader: Reloader, mut triggers: ReloadTriggers) {
    loop {
        tokio::select! {
            Some(()) = triggers.hangup.recv() => {
                reloader.reload(true).await;
                triggers.watch_plugin_dir(&reloader.shared);
            }
            Some(()) = triggers.file_events.recv() => {
                // Editors write in several steps; act once the burst is over.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while triggers.file_events.try_recv().is_ok() {}
                reloader.reload(false).await;
                triggers.watch_plugin_dir(&reloader.shared);
            }
            Some(first) = triggers.plugin_events.recv() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut changed = vec![first];
                while let Ok(path) = triggers.plugin_events.try_recv() {
                    if !changed.contains(&path) {
                        changed.push(path);
                    }
                }
                swap_changed_plugins(&reloader.shared, changed).await;
            }
            else => break,
        }
    }
}

async fn swap_changed_plugins(shared: &Shared, paths: Vec<PathBuf>) {
    let host = shared.plugins.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .flat_map(|path| host.file_changed(path))
            .collect::<Vec<_>>()
    })
    .await;
    for (plugin, result) in outcome.unwrap_or_default() {
        match result {
            Ok(swapped) if swapped.changed => {
                tracing::info!(
                    plugin,
                    version = swapped.version,
                    source = "file",
                    "plugin swapped"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(plugin, error = %error, source = "file", "plugin refused");
            }
        }
    }
}

/// Watches the plugin folder and signals each `.wasm` file created, written or renamed into it.
fn watch_plugins(
    dir: &Path,
    events: mpsc::UnboundedSender<PathBuf>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_)) {
            return;
        }
        for path in event.paths {
            if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
                let _ = events.send(path);
            }
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Watches the config file's folder (editors replace files rather than write them in place)
/// and signals changes to the file.
fn watch_config(
    path: &Path,
    events: mpsc::UnboundedSender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| p.file_name() == name.as_deref()) {
            let _ = events.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
