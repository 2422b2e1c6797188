//! [`Moto`]: the moto AWS emulator in server mode (installed into `target/test-venv` by
//! `scripts/test-tools.sh`), on a loopback port of its own, with the test's IAM user, queue,
//! table, state machine and stream made by `tests/tools/moto_setup.py`. From then on moto
//! checks every request's SigV4 signature against that user's key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{tool, tools_dir, unique_temp_dir};

/// How long moto may take to start listening (it imports every service's models).
const MOTO_STARTUP: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub account: String,
    pub queue_url: String,
    pub state_machine: String,
    log: PathBuf,
}

impl Moto {
    pub async fn start() -> Self {
        let dir = unique_temp_dir("moto");
        let log = dir.join("moto.log");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("local addr").port()
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(tool("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .stderr(Stdio::from(
                std::fs::File::options()
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            ))
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://{addr}");
        let mut moto = Self {
            child,
            addr,
            endpoint: endpoint.clone(),
            access_key: String::new(),
            secret_key: String::new(),
            account: String::new(),
            queue_url: String::new(),
            state_machine: String::new(),
            log,
        };
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            assert!(
                started.elapsed() < MOTO_STARTUP,
                "moto did not listen on {addr} within {MOTO_STARTUP:?}:\n{}",
                moto.log_text()
            );
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited with {status}:\n{}", moto.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let out = Command::new(tool("python"))
            .arg(tools_dir().join("moto_setup.py"))
            .arg(&endpoint)
            .output()
            .expect("run moto_setup.py");
        assert!(
            out.status.success(),
            "moto_setup.py failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            moto.log_text()
        );
        let made: Value = serde_json::from_slice(&out.stdout).expect("moto_setup.py prints JSON");
        let field = |name: &str| made[name].as_str().expect(name).to_owned();
        moto.access_key = field("access_key");
        moto.secret_key = field("secret_key");
        moto.account = field("account");
        moto.queue_url = field("queue_url");
        moto.state_machine = field("state_machine");
        moto
    }

    /// What moto logged (one line per request it served), for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
