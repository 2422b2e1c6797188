//! `edgeway serve`: a node with its listeners and admin API, until SIGTERM or SIGINT; then the
//! drain (stop accepting, let requests in flight finish for up to `drain_timeout_s`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::Config;
use crate::node::Node;
use crate::node::reload::{ReloadTriggers, Reloader, reload_loop};

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
    let config = std::sync::Arc::new(config);
    let node = Node::start(config.clone(), Some(options.config_path.clone())).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    for warning in &config.warnings {
        tracing::warn!(warning = %warning, "config warning");
    }
    let reloader = Reloader::new(
        options.config_path.clone(),
        config.sources.clone(),
        node.clone(),
        config
            .listen
            .iter()
            .map(|l| (l.addr, l.http3.is_some()))
            .collect(),
    );
    let triggers = ReloadTriggers::new(&reloader, options.watch)?;
    // SIGUSR1 reopens the access-log files (logrotate renames them, then signals).
    let mut user1 = signal(SignalKind::user_defined1()).context("SIGUSR1 handler")?;
    let reopen_node = node.clone();
    let reopens = tokio::spawn(async move {
        while user1.recv().await.is_some() {
            let log = reopen_node.log.clone();
            // Opening files is blocking work: off the request threads.
            let _ = tokio::task::spawn_blocking(move || log.reopen()).await;
        }
    });

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
        let bound = listener.local_addr()?;
        let counters = node.counters.listener(&bound.to_string());
        // HTTP/3 binds UDP on the port TCP got (the same one when the config names it).
        let alt_svc = match &listen.quic {
            Some(quic) => {
                let endpoint =
                    crate::listener::quic::bind(bound, quic.clone()).with_context(|| {
                        format!("listen[{index}]: cannot bind {bound} (UDP) for HTTP/3")
                    })?;
                tracing::info!(
                    name = format!("listen[{index}]"),
                    addr = %bound,
                    protocol = "h3",
                    "listening"
                );
                let alt_svc = std::sync::Arc::new(crate::listener::quic::AltSvc::new(bound.port()));
                servers.spawn(crate::listener::quic::serve(
                    endpoint,
                    index,
                    node.clone(),
                    node.counters.listener(&format!("{bound}/quic")),
                    alt_svc.clone(),
                    shutdown_rx.clone(),
                ));
                Some(alt_svc)
            }
            None => None,
        };
        servers.spawn(crate::listener::serve(
            listener,
            index,
            node.clone(),
            counters,
            alt_svc,
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
            admin.metrics_require_token,
            node.clone(),
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
    node.draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let drain_timeout = node.generation.load().drain_timeout;
    tracing::info!(drain_timeout_s = drain_timeout.as_secs(), "draining");
    reloads.abort();
    reopens.abort();
    let _ = shutdown_tx.send(true);
    // WebSocket connections are closed with 1001 Going Away; each runs its `$disconnect`.
    node.connections
        .close_all(crate::websocket::close_code::GOING_AWAY);
    let drained = tokio::time::timeout(drain_timeout, async {
        while servers.join_next().await.is_some() {}
        node.connections.wait_empty().await;
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
    node.stop().await?;
    Ok(())
}
