//! [`Gateway`]: the real `edgeway` binary as a child process, with its config in a temp dir
//! and its stdout (access log) and stderr (operational log) collected line by line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How long to wait for the gateway to report its listeners. Generous: a config with plugins
/// compiles them before listening (seconds for the JavaScript and Python components, once;
/// later starts load them from the shared compile cache).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Binary and temp dirs
// ---------------------------------------------------------------------------------------------

/// Path of the `edgeway` binary: `$EDGEWAY_BIN`, else `target/release/edgeway` next to the
/// directory holding this test executable (`target/release/deps/...`).
pub fn edgeway_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGEWAY_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "EDGEWAY_BIN={} is not a file; unset it or run `cargo build --release -p edgeway`",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-exe>  ->  target/release/edgeway
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is not in target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("no target dir");
    let bin = target_dir.join("release").join("edgeway");
    if !bin.is_file() {
        panic!(
            "edgeway binary not found at {}: run `cargo build --release -p edgeway` first \
             (or point EDGEWAY_BIN at it)",
            bin.display()
        );
    }
    // `cargo test` does not rebuild another package's binary: refuse to test a stale one.
    let built = modified(&bin);
    let gateway_sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proxy/src");
    if let Some((_, newer)) = newest_source(&gateway_sources).filter(|(t, _)| *t > built) {
        panic!(
            "{} is older than {}: run `cargo build --release -p edgeway` (scripts/test.sh does)",
            bin.display(),
            newer.display()
        );
    }
    bin
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(UNIX_EPOCH)
}

/// The most recently modified Rust source below `dir`, with its time.
fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let t = modified(&path);
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    newest = Some((t, path));
                }
            }
        }
    }
    newest
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory under the system temp dir, unique per process and call.
pub fn unique_temp_dir(prefix: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

/// Options for starting a [`Gateway`]; see [`Gateway::builder`].
#[derive(Debug, Default)]
pub struct GatewayBuilder {
    files: Vec<(String, Vec<u8>)>,
    symlinks: Vec<(String, String)>,
    env: Vec<(String, String)>,
    no_watch: bool,
    listeners: Option<Vec<String>>,
}

impl GatewayBuilder {
    /// Write an extra file (certificate, key, CA, JSON Schema) into the gateway's temp dir
    /// before start; `name` may contain folders (`schemas/pet.json`), which are created.
    /// Configs refer to the dir as `$DIR`.
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.to_string(), contents.into()));
        self
    }

    /// Make a symlink `name` pointing at `target` in the gateway's temp dir before start (a
    /// Kubernetes secret's `..data` layout).
    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.symlinks.push((name.to_string(), target.to_string()));
        self
    }

    /// Set an environment variable for the child.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Pass `--no-watch`.
    pub fn no_watch(mut self) -> Self {
        self.no_watch = true;
        self
    }

    /// Listener names to wait for (default: derived from the config's `listen:` and `admin:`).
    pub fn listeners(mut self, names: &[&str]) -> Self {
        self.listeners = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Write the config (with `$DIR` replaced by the temp dir) and start `edgeway serve`.
    pub async fn start(self, config_yaml: &str) -> Gateway {
        Gateway::spawn(self, config_yaml).await
    }
}

/// A running `edgeway serve` child process. Killed on drop.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    /// Temp dir holding the config and any extra files.
    pub dir: PathBuf,
    /// Path of the config file the child was started with.
    pub config_path: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    addrs: HashMap<String, SocketAddr>,
    exited: Option<ExitStatus>,
}

/// Listener names a config declares, from its block-style `listen:` list and `admin:` key.
fn listener_names(yaml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_listen = false;
    let mut n = 0;
    for line in yaml.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let top_level = !line.starts_with(' ') && !line.starts_with('\t');
        if top_level {
            in_listen = line.starts_with("listen:");
            if line.starts_with("admin:") {
                names.push("admin".to_string());
            }
        } else if in_listen && line.trim_start().starts_with("- ") {
            // only items at the first indentation level of the list
            let indent = line.len() - line.trim_start().len();
            if indent <= 2 {
                names.push(format!("listen[{n}]"));
                n += 1;
            }
        }
    }
    names
}

impl Gateway {
    /// Start a gateway with default options.
    pub async fn start(config_yaml: &str) -> Gateway {
        Self::builder().start(config_yaml).await
    }

    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    async fn spawn(opts: GatewayBuilder, config_yaml: &str) -> Gateway {
        let bin = edgeway_bin();
        let dir = unique_temp_dir("edgeway-e2e");
        for (name, contents) in &opts.files {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create folder for extra file");
            }
            std::fs::write(&path, contents).expect("write extra file");
        }
        for (name, target) in &opts.symlinks {
            std::os::unix::fs::symlink(target, dir.join(name)).expect("make symlink");
        }
        let config_path = dir.join("edgeway.yaml");
        let yaml = config_yaml.replace("$DIR", dir.to_str().expect("utf-8 temp dir"));
        std::fs::write(&config_path, &yaml).expect("write config");

        let mut cmd = Command::new(&bin);
        cmd.arg("serve").arg("--config").arg(&config_path);
        if opts.no_watch {
            cmd.arg("--no-watch");
        }
        cmd.current_dir(&dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdout = collect_lines(child.stdout.take().expect("stdout"), "stdout");
        let stderr = collect_lines(child.stderr.take().expect("stderr"), "stderr");

        let mut gw = Gateway {
            child,
            dir,
            config_path,
            stdout,
            stderr,
            addrs: HashMap::new(),
            exited: None,
        };
        let expected = opts.listeners.unwrap_or_else(|| listener_names(&yaml));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            for ev in gw.events("listening") {
                let f = &ev["fields"];
                let name = f["name"].as_str();
                let addr = f["addr"]
                    .as_str()
                    .and_then(|a| a.parse::<SocketAddr>().ok());
                if let (Some(name), Some(addr)) = (name, addr) {
                    gw.addrs.insert(name.to_string(), addr);
                }
            }
            if !expected.is_empty() && expected.iter().all(|n| gw.addrs.contains_key(n)) {
                return gw;
            }
            if let Ok(Some(status)) = gw.child.try_wait() {
                gw.exited = Some(status);
                // give the reader threads a moment to drain the pipes
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "edgeway exited during startup with {status}\nconfig:\n{yaml}\nstderr:\n{}",
                    gw.stderr_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "edgeway did not report listeners {expected:?} within {STARTUP_TIMEOUT:?} \
                     (got {:?})\nstderr:\n{}",
                    gw.addrs,
                    gw.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Bound address of a listener by name (`"listen[0]"`, `"admin"`, ...).
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?}; have {:?}", self.addrs))
    }

    /// `http://<listen[0]><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("listen[0]"))
    }

    /// `http://<admin><path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("admin"))
    }

    /// An admin API call with [`crate::ADMIN_TOKEN`] and an optional JSON body: the status and
    /// the answer as JSON (`Null` when it is not JSON).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = crate::client()
            .request(method, self.admin_url(path))
            .bearer_auth(crate::ADMIN_TOKEN);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("admin request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("admin response body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `edgeway ARGS...` as an operator runs it against this node (`EDGEWAY_ADMIN_URL` and
    /// [`crate::ADMIN_TOKEN`]): whether it succeeded, and its stdout then stderr.
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(edgeway_bin())
            .args(args)
            .env("EDGEWAY_ADMIN_URL", self.admin_url(""))
            .env("EDGEWAY_ADMIN_TOKEN", crate::ADMIN_TOKEN)
            .output()
            .expect("run edgeway");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal by name (`"HUP"`, `"TERM"`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Overwrite the config file in place (`$DIR` replaced).
    pub fn write_config(&self, yaml: &str) {
        let yaml = yaml.replace("$DIR", self.dir.to_str().expect("utf-8"));
        std::fs::write(&self.config_path, yaml).expect("write config");
    }

    /// Replace the config file atomically: write a sibling file, then rename it over the config
    /// (what editors and config-management tools do).
    pub fn replace_config(&self, yaml: &str) {
        let yaml = yaml.replace("$DIR", self.dir.to_str().expect("utf-8"));
        let tmp = self.dir.join(".edgeway.yaml.tmp");
        std::fs::write(&tmp, yaml).expect("write temp config");
        std::fs::rename(&tmp, &self.config_path).expect("rename config");
    }

    /// All stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// All stdout lines so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr_lines().join("\n")
    }

    /// Stderr JSON events whose `fields.message` equals `message`.
    pub fn events(&self, message: &str) -> Vec<Value> {
        self.stderr_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"].as_str() == Some(message))
            .collect()
    }

    /// Wait (bounded) until an event with `message` satisfying `pred` appears; panics on timeout.
    pub async fn wait_event(
        &self,
        message: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.events(message).into_iter().find(|v| pred(v)) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "no {message:?} event matching the predicate within {timeout:?}\nstderr:\n{}",
                    self.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait (bounded) until at least `n` events with `message` exist; returns them all.
    pub async fn wait_event_count(&self, message: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let evs = self.events(message);
            if evs.len() >= n {
                return evs;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected >= {n} {message:?} events within {timeout:?}, got {}\nstderr:\n{}",
                    evs.len(),
                    self.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Highest `generation` among "config reloaded" events (0 if none).
    pub fn generation(&self) -> u64 {
        self.events("config reloaded")
            .iter()
            .filter_map(|v| v["fields"]["generation"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// Access-log lines (stdout) parsed as JSON; panics on a line that is not JSON.
    pub fn access_log(&self) -> Vec<Value> {
        self.stdout_lines()
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Wait (bounded) until the access log has at least `n` lines.
    pub async fn wait_access_log(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.access_log();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.exited {
            return Some(s);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exited = Some(s);
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let lines = self.stderr_lines();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- edgeway stderr (last {} lines), dir {} ---\n{}",
                tail.len(),
                self.dir.display(),
                tail.join("\n")
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn collect_lines(
    pipe: impl std::io::Read + Send + 'static,
    which: &'static str,
) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let echo = std::env::var_os("EDGEWAY_TEST_ECHO").is_some();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[edgeway {which}] {line}");
            }
            sink.lock().unwrap().push(line);
        }
    });
    lines
}
