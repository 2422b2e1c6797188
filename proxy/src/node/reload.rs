//! Reloads: SIGHUP and (unless disabled) a change of the config file. A reload parses and
//! validates the file off the request path, builds the next [`Generation`] and swaps it in
//! atomically; a config that fails is refused with the error logged and the running one keeps
//! serving. Listener addresses are bound once at startup: a reload that changes them is applied
//! for everything else, and the new addresses take effect at the next restart.
//!
//! With watching on, the plugin folder (`plugins.dir`) is watched too: a changed `.wasm` file
//! is compiled off the request path and swapped in for every plugin loaded from it ("plugin
//! swapped"), or refused with the old version still serving ("plugin refused").
//!
//! [`Generation`]: crate::generation::Generation

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::Node;
use crate::config;

/// Reloads the config file into the node.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    node: Arc<Node>,
    /// The files the config read besides itself (OpenAPI documents): watched as it is.
    sources: Vec<PathBuf>,
    /// What the last reload attempt read (the config's text and its sources'): a watch event
    /// that changes nothing is ignored.
    last_inputs: Option<Vec<u8>>,
    /// The `listen` addresses bound at startup, each with whether it serves HTTP/3 (UDP);
    /// they stay until the next restart.
    bound: Vec<(SocketAddr, bool)>,
}

impl Reloader {
    /// A reloader for the config at `path` (which read `sources` besides itself), whose
    /// listeners were bound at `bound`.
    pub fn new(
        path: PathBuf,
        sources: Vec<PathBuf>,
        node: Arc<Node>,
        bound: Vec<(SocketAddr, bool)>,
    ) -> Self {
        let mut reloader = Self {
            path,
            node,
            sources,
            last_inputs: None,
            bound,
        };
        reloader.last_inputs = reloader.sources_after(std::fs::read_to_string(&reloader.path).ok());
        reloader
    }

    /// Every file a change to which reloads the config.
    fn watched(&self) -> Vec<PathBuf> {
        std::iter::once(&self.path)
            .chain(&self.sources)
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect()
    }

    /// The config's text followed by its sources' bytes (a source that cannot be read counts
    /// as empty: the parse will say why).
    fn sources_after(&self, text: Option<String>) -> Option<Vec<u8>> {
        let mut inputs = text?.into_bytes();
        for source in &self.sources {
            inputs.push(0);
            inputs.extend(std::fs::read(source).unwrap_or_default());
        }
        Some(inputs)
    }

    async fn reload(&mut self, force: bool) {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %format!("{}: cannot read the config file: {e}", self.path.display()), "config refused");
                self.node.counters.reload_refused();
                return;
            }
        };
        let inputs = self.sources_after(Some(text.clone()));
        if !force && self.last_inputs == inputs {
            return;
        }
        self.last_inputs = inputs;
        let config_text = text.clone();
        let path = self.path.clone();
        let plugins = self.node.plugins.clone();
        // Parsing loads certificates and trust roots, and plugins may need compiling: keep it
        // off the request threads.
        let parsed = tokio::task::spawn_blocking(move || {
            let config = config::parse(&text, &path).map_err(|e| e.to_string())?;
            let set = plugins
                .load(&config.plugins, &config.upstream)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((config, set))
        })
        .await;
        let (config, set) = match parsed {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(errors)) => {
                tracing::error!(error = %errors, "config refused");
                self.node.counters.reload_refused();
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "config refused");
                self.node.counters.reload_refused();
                return;
            }
        };
        if !config
            .listen
            .iter()
            .map(|l| (l.addr, l.http3.is_some()))
            .eq(self.bound.iter().copied())
        {
            tracing::warn!(
                "`listen` differs from the addresses (or `http3`) bound at startup; they take effect at the next restart"
            );
        }
        for warning in &config.warnings {
            tracing::warn!(warning = %warning, "config warning");
        }
        if config.sources != self.sources {
            self.sources = config.sources.clone();
            self.last_inputs = self.sources_after(Some(config_text));
        }
        match self.node.swap(Arc::new(config), set).await {
            Ok(generation) => {
                tracing::info!(generation, "config reloaded");
                self.node.counters.reload_ok();
            }
            Err(e) => {
                tracing::error!(error = %e, "config refused");
                self.node.counters.reload_refused();
            }
        }
    }
}

/// What the reload loop listens to. Set up before the node reports its listeners, so a change
/// (or SIGHUP) that follows the "listening" log line is never missed.
#[derive(Debug)]
pub struct ReloadTriggers {
    watch_file: bool,
    hangup: tokio::signal::unix::Signal,
    file_tx: mpsc::UnboundedSender<()>,
    file_events: mpsc::UnboundedReceiver<()>,
    /// The watched files (the config and its sources) and their watcher.
    config_watch: Option<(Vec<PathBuf>, notify::RecommendedWatcher)>,
    plugin_tx: mpsc::UnboundedSender<PathBuf>,
    plugin_events: mpsc::UnboundedReceiver<PathBuf>,
    plugin_watch: Option<(PathBuf, notify::RecommendedWatcher)>,
}

impl ReloadTriggers {
    pub fn new(reloader: &Reloader, watch_file: bool) -> anyhow::Result<Self> {
        let hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let (file_tx, file_events) = mpsc::unbounded_channel();
        let (plugin_tx, plugin_events) = mpsc::unbounded_channel::<PathBuf>();
        let mut triggers = Self {
            watch_file,
            hangup,
            file_tx,
            file_events,
            config_watch: None,
            plugin_tx,
            plugin_events,
            plugin_watch: None,
        };
        triggers.watch_config_files(reloader);
        triggers.watch_plugin_dir(&reloader.node);
        Ok(triggers)
    }

    /// Watches the config file and its sources (again, if a reload changed the sources).
    fn watch_config_files(&mut self, reloader: &Reloader) {
        let files = reloader.watched();
        if !self.watch_file || self.config_watch.as_ref().map(|(f, _)| f) == Some(&files) {
            return;
        }
        self.config_watch = match watch_config(&files, self.file_tx.clone()) {
            Ok(watcher) => Some((files, watcher)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
                None
            }
        };
    }

    /// Watches the current `plugins.dir` (again, if a reload changed it).
    fn watch_plugin_dir(&mut self, node: &Node) {
        let dir = node.plugins.current().config.dir.clone();
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

/// Reloads on each trigger until the task is aborted.
pub async fn reload_loop(mut reloader: Reloader, mut triggers: ReloadTriggers) {
    loop {
        tokio::select! {
            Some(()) = triggers.hangup.recv() => {
                reloader.reload(true).await;
                triggers.watch_config_files(&reloader);
                triggers.watch_plugin_dir(&reloader.node);
            }
            Some(()) = triggers.file_events.recv() => {
                // Editors write in several steps; act once the burst is over.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while triggers.file_events.try_recv().is_ok() {}
                reloader.reload(false).await;
                triggers.watch_config_files(&reloader);
                triggers.watch_plugin_dir(&reloader.node);
            }
            Some(first) = triggers.plugin_events.recv() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut changed = vec![first];
                while let Ok(path) = triggers.plugin_events.try_recv() {
                    if !changed.contains(&path) {
                        changed.push(path);
                    }
                }
                swap_changed_plugins(&reloader.node, changed).await;
            }
            else => break,
        }
    }
}

async fn swap_changed_plugins(node: &Node, paths: Vec<PathBuf>) {
    let host = node.plugins.clone();
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

/// Watches the folders of the config file and its sources (editors replace files rather than
/// write them in place) and signals changes to any of those files.
fn watch_config(
    files: &[PathBuf],
    events: mpsc::UnboundedSender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let watched = files.to_vec();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| watched.contains(p)) {
            let _ = events.send(());
        }
    })?;
    let mut dirs: Vec<&Path> = files
        .iter()
        .map(|f| f.parent().unwrap_or(Path::new("/")))
        .collect();
    dirs.dedup();
    for dir in dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}
