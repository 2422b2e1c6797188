//! Load for Edgeway's HTTP/3 benchmark (`bench/h3.sh`): one closed-loop client that speaks
//! HTTP/3 (quinn + h3) or HTTP/2 over TLS (hyper + rustls), so the two protocols are measured
//! with the same client on the same machine.
//!
//!   edgeway-bench-h3 h3|h2 ADDR SERVER_NAME PATH CONNECTIONS STREAMS SECONDS
//!   edgeway-bench-h3 handshakes ADDR SERVER_NAME full|resumed CONCURRENCY SECONDS
//!
//! CONNECTIONS connections, each with STREAMS requests in flight (each sends a GET, reads the
//! whole answer, sends the next), for SECONDS. Prints one line:
//! `requests=N per_s=X p50_us=P p99_us=Q errors=E`. Non-2xx answers count as errors.
//!
//! `handshakes`: CONCURRENCY loops, each opening a TCP connection, completing a TLS handshake
//! (TLS 1.3; `resumed` offers the ticket of the loop's previous connection, `full` never
//! resumes) and closing it. Prints `handshakes=N per_s=X p50_us=P p99_us=Q resumed=R
//! errors=E`, where R counts the handshakes the server actually resumed.
//! The server's certificate is not checked: this runs on loopback against a throwaway one.
#![allow(clippy::expect_used)] // a benchmark tool: a bad argument or TLS setup ends it

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty};
use tokio::task::JoinSet;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

impl Tally {
    fn record(&mut self, started: Instant, ok: bool) {
        if ok {
            let us = started.elapsed().as_micros();
            self.latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        } else {
            self.errors += 1;
        }
    }
}

#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    server_name: String,
    path: String,
}

impl Target {
    fn request(&self) -> http::Request<()> {
        http::Request::get(format!("https://{}{}", self.server_name, self.path))
            .body(())
            .expect("a valid request")
    }
}

fn tls(alpn: &[u8]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

async fn h3_connection(target: Target, streams: usize, until: Instant) -> Result<Tally, Error> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls(b"h3"))?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let connection = endpoint.connect(target.addr, &target.server_name)?.await?;
    let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(connection)).await?;
    let drive = tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
    let mut workers = JoinSet::new();
    for _ in 0..streams {
        let mut sender = sender.clone();
        let target = target.clone();
        workers.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < until {
                let started = Instant::now();
                let ok = async {
                    let mut stream = sender.send_request(target.request()).await?;
                    stream.finish().await?;
                    let response = stream.recv_response().await?;
                    while let Some(mut chunk) = stream.recv_data().await? {
                        chunk.advance(chunk.remaining());
                    }
                    Ok::<_, Error>(response.status().is_success())
                }
                .await;
                tally.record(started, matches!(ok, Ok(true)));
                if ok.is_err() {
                    break;
                }
            }
            tally
        });
    }
    let tally = gather(workers).await;
    drop(sender);
    drive.abort();
    endpoint.close(0u32.into(), b"done");
    Ok(tally)
}

async fn h2_connection(target: Target, streams: usize, until: Instant) -> Result<Tally, Error> {
    let tcp = tokio::net::TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls(b"h2")));
    let name = rustls::pki_types::ServerName::try_from(target.server_name.clone())?;
    let stream = connector.connect(name, tcp).await?;
    let (sender, connection) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await?;
    let drive = tokio::spawn(connection);
    let mut workers = JoinSet::new();
    for _ in 0..streams {
        let mut sender = sender.clone();
        let target = target.clone();
        workers.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < until {
                let started = Instant::now();
                let ok = async {
                    let request = target.request().map(|()| Empty::new());
                    let response = sender.send_request(request).await?;
                    let ok = response.status().is_success();
                    response.into_body().collect().await?;
                    Ok::<_, Error>(ok)
                }
                .await;
                tally.record(started, matches!(ok, Ok(true)));
                if ok.is_err() {
                    break;
                }
            }
            tally
        });
    }
    let tally = gather(workers).await;
    drop(sender);
    drive.abort();
    Ok(tally)
}

async fn gather(mut workers: JoinSet<Tally>) -> Tally {
    let mut all = Tally::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(t) => {
                all.latencies_us.extend(t.latencies_us);
                all.errors += t.errors;
            }
            Err(_) => all.errors += 1,
        }
    }
    all
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One loop of `handshakes`: (latencies, resumed, errors).
async fn handshake_loop(
    addr: SocketAddr,
    name: rustls::pki_types::ServerName<'static>,
    resume: bool,
    until: Instant,
) -> (Vec<u32>, u64, u64) {
    let mut config = tls(b"h2");
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let (mut latencies, mut resumed, mut errors) = (Vec::new(), 0, 0);
    while Instant::now() < until {
        let started = Instant::now();
        let done = async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let mut stream = connector.connect(name.clone(), tcp).await?;
            let kind = stream.get_ref().1.handshake_kind();
            tokio::io::AsyncWriteExt::shutdown(&mut stream).await?;
            // Read to the server's close: TLS 1.3 tickets arrive after the handshake.
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest),
            )
            .await;
            Ok::<_, Error>(kind == Some(rustls::HandshakeKind::Resumed))
        }
        .await;
        match done {
            Ok(was_resumed) => {
                let us = started.elapsed().as_micros();
                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                resumed += u64::from(was_resumed);
            }
            Err(_) => errors += 1,
        }
    }
    (latencies, resumed, errors)
}

async fn handshakes(args: &[String]) -> Result<(), Error> {
    let [addr, server_name, kind, concurrency, seconds] = args else {
        return Err(
            "usage: edgeway-bench-h3 handshakes ADDR SERVER_NAME full|resumed CONCURRENCY SECONDS"
                .into(),
        );
    };
    let addr: SocketAddr = addr.parse()?;
    let name = rustls::pki_types::ServerName::try_from(server_name.clone())?;
    let resume = match kind.as_str() {
        "full" => false,
        "resumed" => true,
        other => return Err(format!("unknown handshake kind {other}: full or resumed").into()),
    };
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds.parse()?);
    let mut loops = JoinSet::new();
    for _ in 0..concurrency.parse::<usize>()? {
        loops.spawn(handshake_loop(addr, name.clone(), resume, until));
    }
    let (mut latencies, mut resumed, mut errors) = (Vec::new(), 0, 0);
    while let Some(done) = loops.join_next().await {
        let (l, r, e) = done?;
        latencies.extend(l);
        resumed += r;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let n = latencies.len();
    println!(
        "handshakes={n} per_s={:.0} p50_us={} p99_us={} resumed={resumed} errors={errors}",
        n as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "handshakes") {
        return handshakes(&args[1..]).await;
    }
    let [
        protocol,
        addr,
        server_name,
        path,
        connections,
        streams,
        seconds,
    ] = &args[..]
    else {
        return Err(
            "usage: edgeway-bench-h3 h3|h2 ADDR SERVER_NAME PATH CONNECTIONS STREAMS SECONDS"
                .into(),
        );
    };
    let target = Target {
        addr: addr.parse()?,
        server_name: server_name.clone(),
        path: path.clone(),
    };
    let connections: usize = connections.parse()?;
    let streams: usize = streams.parse()?;
    let seconds: f64 = seconds.parse()?;
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut all = JoinSet::new();
    for _ in 0..connections {
        let target = target.clone();
        match protocol.as_str() {
            "h3" => all.spawn(h3_connection(target, streams, until)),
            "h2" => all.spawn(h2_connection(target, streams, until)),
            other => return Err(format!("unknown protocol {other}: h3 or h2").into()),
        };
    }
    let mut tally = Tally::default();
    while let Some(done) = all.join_next().await {
        match done? {
            Ok(t) => {
                tally.latencies_us.extend(t.latencies_us);
                tally.errors += t.errors;
            }
            Err(e) => {
                eprintln!("connection failed: {e}");
                tally.errors += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    tally.latencies_us.sort_unstable();
    let n = tally.latencies_us.len();
    println!(
        "requests={n} per_s={:.0} p50_us={} p99_us={} errors={}",
        n as f64 / elapsed,
        percentile(&tally.latencies_us, 0.50),
        percentile(&tally.latencies_us, 0.99),
        tally.errors
    );
    Ok(())
}

/// Accepts any server certificate (see the module's doc).
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
