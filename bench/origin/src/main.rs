//! A fixed-response HTTP/1.1 origin for Edgeway's load benchmarks (`bench/run.sh`).
//!
//! Every request, whatever its method or path, gets `200 OK` with the same small JSON body
//! and a `content-length`, over keep-alive connections. It runs on a single-threaded tokio
//! runtime so that, pinned to one core next to `wrk`, it costs as little CPU per request as
//! possible and never becomes the bottleneck the proxies are measured against.
//!
//! ```text
//! edgeway-bench-origin --addr 127.0.0.1:PORT [--body-bytes N]
//! ```
//!
//! Port 0 picks a free port. Once bound, the origin prints `listening on 127.0.0.1:PORT` on
//! stdout (one line, flushed), which the bench script reads to learn the real address.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const USAGE: &str = "usage: edgeway-bench-origin --addr HOST:PORT [--body-bytes N]\n\
    \n\
    Answers every request 200 with a fixed JSON body (default ~100 bytes).\n\
    Port 0 picks a free port; the bound address is printed as `listening on ADDR`.";

/// The default body: a small, realistic JSON document of about 100 bytes.
const DEFAULT_BODY: &str = r#"{"id":7,"name":"edgeway-bench","status":"ok","tags":["fast","small"],"message":"hello from the origin"}"#;

/// Command-line options; parsed by hand, there are only two.
#[derive(Debug)]
struct Options {
    addr: SocketAddr,
    body: Bytes,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut addr: Option<SocketAddr> = None;
    let mut body_bytes: Option<usize> = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--addr" => {
                let v = value("--addr")?;
                addr = Some(v.parse().map_err(|e| format!("--addr {v:?}: {e}"))?);
            }
            "--body-bytes" => {
                let v = value("--body-bytes")?;
                body_bytes = Some(v.parse().map_err(|e| format!("--body-bytes {v:?}: {e}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    let body = match body_bytes {
        None => Bytes::from_static(DEFAULT_BODY.as_bytes()),
        Some(n) => Bytes::from(sized_body(n)),
    };
    Ok(Options { addr, body })
}

/// A JSON string document of exactly `n` bytes (or `n` filler bytes when `n` is too small to
/// hold the JSON punctuation).
fn sized_body(n: usize) -> Vec<u8> {
    const OPEN: &[u8] = br#"{"data":""#;
    const CLOSE: &[u8] = br#""}"#;
    if n < OPEN.len() + CLOSE.len() {
        return vec![b'x'; n];
    }
    let mut body = Vec::with_capacity(n);
    body.extend_from_slice(OPEN);
    body.resize(n - CLOSE.len(), b'x');
    body.extend_from_slice(CLOSE);
    body
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("edgeway-bench-origin: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("edgeway-bench-origin: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgeway-bench-origin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(options: Options) -> std::io::Result<()> {
    let listener = TcpListener::bind(options.addr).await?;
    let local = listener.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {local}")?;
        stdout.flush()?;
    }
    let content_type = HeaderValue::from_static("application/json");
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Running out of file descriptors or a connection reset before accept: keep serving.
            Err(e) => {
                eprintln!("edgeway-bench-origin: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small responses: don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let body = options.body.clone();
        let content_type = content_type.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<Incoming>| {
                let mut response = Response::new(Full::new(body.clone()));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, content_type.clone());
                async move { Ok::<_, Infallible>(response) }
            });
            // Errors here are clients going away mid-request; nothing to report.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn parses_addr_and_body_size() {
        let o = parse_args(args(&["--addr", "127.0.0.1:0", "--body-bytes=300"])).unwrap();
        assert_eq!(o.addr.to_string(), "127.0.0.1:0");
        assert_eq!(o.body.len(), 300);
        assert!(o.body.starts_with(b"{\"data\":\"") && o.body.ends_with(b"\"}"));
    }

    #[test]
    fn default_body_is_small_json() {
        let o = parse_args(args(&["--addr=127.0.0.1:8080"])).unwrap();
        assert!((80..=120).contains(&o.body.len()), "{}", o.body.len());
    }

    #[test]
    fn rejects_missing_addr_and_unknown_flags() {
        assert!(parse_args(args(&[])).is_err());
        assert!(parse_args(args(&["--addr", "127.0.0.1:0", "--nope"])).is_err());
        assert_eq!(sized_body(3), b"xxx");
    }
}
