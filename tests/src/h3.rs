//! [`h3_requests`]: HTTP/3 requests through `tests/tools/h3_client.py` (aioquic).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::tool;

/// An HTTP/3 connection's settings for [`h3_requests`].
#[derive(Debug, Clone)]
pub struct H3Client<'a> {
    /// The listener's address (its UDP side).
    pub addr: SocketAddr,
    /// The name sent as SNI and `:authority`.
    pub server_name: &'a str,
    /// The CA certificate (PEM file) the server's certificate is checked against.
    pub ca: &'a Path,
    /// A client certificate and key (PEM files), for mutual TLS.
    pub identity: Option<(&'a Path, &'a Path)>,
    /// One request after another instead of all at once.
    pub sequential: bool,
}

impl<'a> H3Client<'a> {
    pub fn new(addr: SocketAddr, server_name: &'a str, ca: &'a Path) -> Self {
        Self {
            addr,
            server_name,
            ca,
            identity: None,
            sequential: false,
        }
    }

    /// Starts the client on `requests` (see `h3_client.py`); [`H3Run::results`] waits for it.
    pub fn spawn(&self, requests: &Value) -> H3Run {
        let mut cmd = std::process::Command::new(tool("python"));
        cmd.arg(crate::workspace().join("tests/tools/h3_client.py"))
            .arg("--connect")
            .arg(self.addr.to_string())
            .arg("--server-name")
            .arg(self.server_name)
            .arg("--ca")
            .arg(self.ca);
        if let Some((cert, key)) = self.identity {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if self.sequential {
            cmd.arg("--sequential");
        }
        cmd.arg(requests.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("start tests/tools/h3_client.py");
        let read = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = read(Box::new(child.stdout.take().expect("stdout")));
        let stderr = read(Box::new(child.stderr.take().expect("stderr")));
        H3Run {
            child,
            stdout,
            stderr,
        }
    }

    /// Sends `requests` and returns one result per request, in order (see `h3_client.py`).
    pub async fn send(&self, requests: &Value) -> Vec<Value> {
        self.spawn(requests).results().await
    }
}

/// A running `h3_client.py`, killed on drop.
#[derive(Debug)]
pub struct H3Run {
    child: std::process::Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Drop for H3Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl H3Run {
    /// Its results, one per request (a single `{"connect_error"}` when the connection failed).
    pub async fn results(mut self) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while self.child.try_wait().expect("h3_client.py runs").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "h3_client.py finished within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (stdout, stderr) = (
            std::mem::replace(&mut self.stdout, std::thread::spawn(String::new)),
            std::mem::replace(&mut self.stderr, std::thread::spawn(String::new)),
        );
        let stdout = stdout.join().expect("stdout read");
        let stderr = stderr.join().expect("stderr read");
        let results: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(
            !results.is_empty(),
            "h3_client.py printed nothing; stderr:\n{stderr}"
        );
        results
    }
}

/// Sends `requests` over one HTTP/3 connection to `addr` and returns one result per request.
pub async fn h3_requests(
    addr: SocketAddr,
    server_name: &str,
    ca: &Path,
    requests: &Value,
) -> Vec<Value> {
    H3Client::new(addr, server_name, ca).send(requests).await
}
