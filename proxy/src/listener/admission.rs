//! Admission: what a node lets in before any request is read, so that a flood of connections
//! or requests is turned away cheaply instead of taking the node down.
//!
//! - Connections: at most `limits.max_connections` open on the node (all listeners, TCP and
//!   QUIC) and `limits.max_connections_per_ip` from one source address. A connection over
//!   either is closed as soon as it is accepted, before TLS or HTTP.
//! - Requests (the overload guard): once `limits.max_in_flight` requests are being answered,
//!   or the node's resident memory passes `limits.max_memory_mib` (sampled every 250 ms), a
//!   new request is answered 503 with `Retry-After: 1` without running the pipeline; when
//!   the load falls back the node serves again by itself.
//!
//! Each refusal is counted (`edgeway_refused_connections_total{reason}`,
//! `edgeway_shed_requests_total{reason}`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// `limits`: the admission bounds; 0 means no bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_in_flight: usize,
    pub max_memory_bytes: u64,
}

/// Open connections on the node (`limits.max_connections`) by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// Requests answered at once (`limits.max_in_flight`) by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            // Off: clients behind one NAT or CDN share an address.
            max_connections_per_ip: 0,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_memory_bytes: 0,
        }
    }
}

/// Why a connection or request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NodeConnections,
    IpConnections,
    InFlight,
    Memory,
}

/// The node's admission state: open connections by address, requests in flight, the memory
/// flag, and what was refused.
#[derive(Debug, Default)]
pub struct Admission {
    open: AtomicUsize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
    in_flight: AtomicUsize,
    over_memory: AtomicBool,
    refused: [AtomicU64; 4],
}

/// An admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    admission: Arc<Admission>,
    /// Set when the connection counts against its address.
    ip: Option<IpAddr>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut by_ip = crate::sync::lock(&self.admission.by_ip);
            if let Some(n) = by_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    by_ip.remove(&ip);
                }
            }
        }
    }
}

/// A request being answered; dropping it ends its count.
#[derive(Debug)]
pub struct RequestPermit(Arc<Admission>);

impl Drop for RequestPermit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    /// Lets a connection from `ip` in, or says why not.
    pub fn connection(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &AdmissionLimits,
    ) -> Result<ConnectionPermit, Refusal> {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        let mut permit = ConnectionPermit {
            admission: self.clone(),
            ip: None,
        };
        if limits.max_connections > 0 && open >= limits.max_connections {
            return Err(self.refuse(Refusal::NodeConnections));
        }
        if limits.max_connections_per_ip > 0 {
            let ip = ip.to_canonical();
            let mut by_ip = crate::sync::lock(&self.by_ip);
            let n = by_ip.entry(ip).or_insert(0);
            if *n >= limits.max_connections_per_ip {
                drop(by_ip);
                return Err(self.refuse(Refusal::IpConnections));
            }
            *n += 1;
            permit.ip = Some(ip);
        }
        Ok(permit)
    }

    /// Lets a request in, or says why the node sheds it.
    pub fn request(self: &Arc<Self>, limits: &AdmissionLimits) -> Result<RequestPermit, Refusal> {
        let in_flight = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let permit = RequestPermit(self.clone());
        if limits.max_in_flight > 0 && in_flight >= limits.max_in_flight {
            return Err(self.refuse(Refusal::InFlight));
        }
        if limits.max_memory_bytes > 0 && self.over_memory.load(Ordering::Relaxed) {
            return Err(self.refuse(Refusal::Memory));
        }
        Ok(permit)
    }

    fn refuse(&self, why: Refusal) -> Refusal {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
        why
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Refusals so far, by reason: (`node_limit`, `ip_limit`) connections and (`in_flight`,
    /// `memory`) requests.
    pub fn refused(&self) -> [(&'static str, u64); 4] {
        let n = |r: Refusal| self.refused[r as usize].load(Ordering::Relaxed);
        [
            ("node_limit", n(Refusal::NodeConnections)),
            ("ip_limit", n(Refusal::IpConnections)),
            ("in_flight", n(Refusal::InFlight)),
            ("memory", n(Refusal::Memory)),
        ]
    }

    /// Sets the memory flag from the process's resident size against `max_bytes` (0: never
    /// over).
    pub fn sample_memory(&self, max_bytes: u64) {
        let over = max_bytes > 0 && resident_bytes().is_some_and(|rss| rss > max_bytes);
        self.over_memory.store(over, Ordering::Relaxed);
    }
}

/// How often the memory flag is refreshed.
pub const MEMORY_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// This process's resident set size (`VmRSS` in `/proc/self/status`).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_bounded_per_node_and_per_address() {
        let admission = Arc::new(Admission::default());
        let limits = AdmissionLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..AdmissionLimits::default()
        };
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let a1 = admission.connection(a, &limits).unwrap();
        let _a2 = admission.connection(a, &limits).unwrap();
        assert_eq!(
            admission.connection(a, &limits).unwrap_err(),
            Refusal::IpConnections
        );
        let _b1 = admission.connection(b, &limits).unwrap();
        assert_eq!(
            admission
                .connection("10.0.0.3".parse().unwrap(), &limits)
                .unwrap_err(),
            Refusal::NodeConnections
        );
        assert_eq!(admission.open(), 3, "refused connections hold no place");
        drop(a1);
        let _a3 = admission.connection(a, &limits).unwrap();
        assert_eq!(admission.refused()[0], ("node_limit", 1));
        assert_eq!(admission.refused()[1], ("ip_limit", 1));
    }

    #[test]
    fn requests_are_shed_over_the_bound_and_let_in_again_below_it() {
        let admission = Arc::new(Admission::default());
        let limits = AdmissionLimits {
            max_in_flight: 2,
            ..AdmissionLimits::default()
        };
        let one = admission.request(&limits).unwrap();
        let _two = admission.request(&limits).unwrap();
        assert_eq!(admission.request(&limits).unwrap_err(), Refusal::InFlight);
        assert_eq!(admission.in_flight(), 2);
        drop(one);
        assert!(admission.request(&limits).is_ok());

        let memory = AdmissionLimits {
            max_memory_bytes: 1,
            ..AdmissionLimits::default()
        };
        admission.sample_memory(memory.max_memory_bytes);
        assert_eq!(admission.request(&memory).unwrap_err(), Refusal::Memory);
        admission.sample_memory(u64::MAX);
        assert!(admission.request(&memory).is_ok());
        assert_eq!(admission.refused()[3], ("memory", 1));
    }
}
