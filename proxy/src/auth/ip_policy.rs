//! Source-IP rules: an API's or stage's resource policy (CIDR allow and deny lists) and the
//! node's trusted proxies, which decide whether `X-Forwarded-For` names the client.
//!
//! Both are compiled when config loads. The pipeline resolves the source IP once per request
//! (`pipeline::policy::resolve_source`), before routing, so the access log and plugins see the
//! same address the policy was checked against; phase 4 (`pipeline::policy::check`) then
//! applies the route's policy.
//!
//! Addresses are compared unmapped: `::ffff:10.1.2.3` is `10.1.2.3`, on the wire and in config.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;
use ipnet::{IpNet, Ipv4Net};

/// A list of networks, checked in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetList(Box<[IpNet]>);

impl NetList {
    /// The list as given (entries already unmapped and checked by [`parse_net`]).
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets.into())
    }

    /// True when no network is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `ip` (unmapped) is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The networks, for messages and tests.
    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }
}

/// Why a `policy` or `trusted_proxies` entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNetError {
    #[error(
        "\"{text}\" is not an IP network; expected CIDR notation such as 10.0.0.0/8 or 2001:db8::/32, or one address"
    )]
    NotANetwork { text: String },
    /// `10.0.0.1/8`: `network` is what was probably meant.
    #[error("\"{text}\" has host bits set; did you mean {network}?")]
    HostBitsSet { text: String, network: IpNet },
}

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address (`/32` or `/128`).
///
/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) becomes its IPv4 network, since client
/// addresses are unmapped before they are compared. A network with host bits set
/// (`10.0.0.1/8`) is refused: it usually means a typo, and the message names the network.
pub fn parse_net(text: &str) -> Result<IpNet, ParseNetError> {
    let text = text.trim();
    let net = match IpNet::from_str(text) {
        Ok(net) => net,
        Err(_) => match IpAddr::from_str(text) {
            Ok(ip) => IpNet::from(ip),
            Err(_) => return Err(ParseNetError::NotANetwork { text: text.into() }),
        },
    };
    if net.trunc() != net {
        return Err(ParseNetError::HostBitsSet {
            text: text.into(),
            network: net.trunc(),
        });
    }
    Ok(unmap_net(net))
}

fn unmap_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Ok(mapped) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped);
    }
    net
}

/// A resource policy: who may call an API (or one stage of it) by source IP.
///
/// `deny` wins over `allow`; an empty `allow` lets in everyone not denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpPolicy {
    pub allow: NetList,
    pub deny: NetList,
}

/// Why a policy refused an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDenial {
    /// The address is in `deny`.
    Explicit,
    /// `allow` is not empty and the address is in none of it.
    NotAllowed,
}

impl IpPolicy {
    /// Checks `ip` (unmapped) against the policy.
    pub fn check(&self, ip: IpAddr) -> Result<(), PolicyDenial> {
        if self.deny.contains(ip) {
            return Err(PolicyDenial::Explicit);
        }
        if !self.allow.is_empty() && !self.allow.contains(ip) {
            return Err(PolicyDenial::NotAllowed);
        }
        Ok(())
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`trusted_proxies`). Empty: the header is
/// never read and the source IP is always the connection's peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub NetList);

static X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

impl TrustedProxies {
    /// The client's address for a request from `peer` (unmapped), by the rightmost-untrusted
    /// rule: when `peer` is a trusted proxy, walk `X-Forwarded-For` from the right (over all
    /// its header lines, in order), skipping trusted addresses, and take the first untrusted
    /// one. An entry that is not an address stops the walk at the last good one (so a client
    /// cannot hide behind garbage); when every entry is trusted, the leftmost is the client.
    /// Returns `None` when the answer is `peer` itself.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        if self.0.is_empty() || !self.0.contains(peer) {
            return None;
        }
        let mut client = peer;
        let lines = headers.get_all(&X_FORWARDED_FOR).iter().rev();
        'walk: for line in lines {
            let Ok(text) = line.to_str() else {
                break;
            };
            for entry in text.rsplit(',') {
                let Some(ip) = parse_forwarded_ip(entry) else {
                    break 'walk;
                };
                client = ip;
                if !self.0.contains(ip) {
                    break 'walk;
                }
            }
        }
        (client != peer).then_some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`10.0.0.1:5000`,
/// `[2001:db8::1]:443`) as some proxies write it; unmapped.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = if let Some(bracketed) = entry.strip_prefix('[') {
        let (inside, _) = bracketed.split_once(']')?;
        IpAddr::from_str(inside).ok()?
    } else {
        match IpAddr::from_str(entry) {
            Ok(ip) => ip,
            // `a.b.c.d:port`; a bare IPv6 address parsed above, so one colon means a port.
            Err(_) => match entry.split_once(':') {
                Some((v4, port)) if !port.contains(':') && port.parse::<u16>().is_ok() => {
                    IpAddr::V4(v4.parse().ok()?)
                }
                _ => return None,
            },
        }
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn list(nets: &[&str]) -> NetList {
        NetList::new(nets.iter().map(|n| parse_net(n).unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn parses_cidrs_single_addresses_and_mapped_networks() {
        assert_eq!(
            parse_net("10.0.0.0/8").unwrap(),
            "10.0.0.0/8".parse().unwrap()
        );
        assert_eq!(
            parse_net(" 192.0.2.7 ").unwrap(),
            "192.0.2.7/32".parse().unwrap()
        );
        assert_eq!(
            parse_net("2001:db8::1").unwrap(),
            "2001:db8::1/128".parse().unwrap()
        );
        assert_eq!(
            parse_net("::ffff:10.0.0.0/104").unwrap(),
            "10.0.0.0/8".parse().unwrap()
        );
        let err = parse_net("10.0.0.1/8").unwrap_err().to_string();
        assert!(err.contains("did you mean 10.0.0.0/8"), "{err}");
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("example.com").is_err());
        assert!(parse_net("").is_err());
    }

    #[test]
    fn deny_wins_and_empty_allow_admits_everyone_else() {
        let policy = IpPolicy {
            allow: list(&["10.0.0.0/8"]),
            deny: list(&["10.9.0.0/16"]),
        };
        assert_eq!(policy.check(ip("10.1.2.3")), Ok(()));
        assert_eq!(policy.check(ip("10.9.1.1")), Err(PolicyDenial::Explicit));
        assert_eq!(policy.check(ip("192.0.2.1")), Err(PolicyDenial::NotAllowed));
        let deny_only = IpPolicy {
            allow: NetList::default(),
            deny: list(&["2001:db8::/32"]),
        };
        assert_eq!(deny_only.check(ip("192.0.2.1")), Ok(()));
        assert_eq!(
            deny_only.check(ip("2001:db8::5")),
            Err(PolicyDenial::Explicit)
        );
        assert_eq!(deny_only.check(ip("2001:db9::5")), Ok(()));
    }

    #[test]
    fn xff_is_ignored_without_a_trusted_peer() {
        let headers = xff(&["10.1.2.3"]);
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), &headers),
            None
        );
        let trusted = TrustedProxies(list(&["192.168.0.0/16"]));
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), &headers), None);
    }

    #[test]
    fn rightmost_untrusted_address_is_the_client() {
        let trusted = TrustedProxies(list(&["127.0.0.1", "192.168.0.0/16"]));
        let peer = ip("127.0.0.1");
        // The client can write anything on the left; only what trusted proxies added counts.
        let headers = xff(&["1.1.1.1, 10.1.2.3, 192.168.1.1"]);
        assert_eq!(trusted.client_ip(peer, &headers), Some(ip("10.1.2.3")));
        // Several header lines are one list, in order.
        let headers = xff(&["1.1.1.1", "10.1.2.3", "192.168.1.1"]);
        assert_eq!(trusted.client_ip(peer, &headers), Some(ip("10.1.2.3")));
        // Every entry trusted: the leftmost is as far as the chain goes.
        let headers = xff(&["192.168.7.7, 192.168.1.1"]);
        assert_eq!(trusted.client_ip(peer, &headers), Some(ip("192.168.7.7")));
        // No header: the peer.
        assert_eq!(trusted.client_ip(peer, &HeaderMap::new()), None);
    }

    #[test]
    fn unparseable_entry_stops_at_the_last_good_address() {
        let trusted = TrustedProxies(list(&["127.0.0.0/8", "192.168.0.0/16"]));
        let peer = ip("127.0.0.1");
        let headers = xff(&["10.1.2.3, unknown, 192.168.1.1"]);
        assert_eq!(trusted.client_ip(peer, &headers), Some(ip("192.168.1.1")));
        let headers = xff(&["10.1.2.3, garbage"]);
        assert_eq!(trusted.client_ip(peer, &headers), None);
        let headers = xff(&["10.1.2.3,"]);
        assert_eq!(trusted.client_ip(peer, &headers), None);
    }

    #[test]
    fn forwarded_entries_with_ports_and_mapped_addresses() {
        let trusted = TrustedProxies(list(&["127.0.0.1"]));
        let peer = ip("127.0.0.1");
        for (value, client) in [
            ("10.1.2.3:5000", "10.1.2.3"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
            ("::ffff:10.1.2.3", "10.1.2.3"),
        ] {
            assert_eq!(
                trusted.client_ip(peer, &xff(&[value])),
                Some(ip(client)),
                "{value}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn forwarded_walk_never_panics(value in "[0-9a-f:.\\[\\], ]{0,64}") {
            let trusted = TrustedProxies(NetList::new(vec![parse_net("0.0.0.0/0").unwrap()]));
            if let Ok(header) = http::HeaderValue::from_str(&value) {
                let mut headers = HeaderMap::new();
                headers.insert("x-forwarded-for", header);
                let _ = trusted.client_ip("127.0.0.1".parse().unwrap(), &headers);
            }
        }

        #[test]
        fn cidr_parsing_never_panics(text in ".{0,48}") {
            let _ = parse_net(&text);
        }
    }
}
