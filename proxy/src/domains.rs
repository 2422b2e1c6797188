//! Custom domains: a request's `Host` picks a domain, the domain's longest matching base path
//! picks an API's stage, and the rest of the path is the route path.
//!
//! `api.example.com/v1/pets/7` with the mapping `v1 → petstore/prod` is routed as
//! `/prod/pets/7` is on the listener's own address. A domain's empty base path (API Gateway's
//! `(none)`) takes every path no longer base path does; a path no mapping covers is refused
//! with 403 `{"message":"Forbidden"}`, as API Gateway answers. A `*.example.com` domain serves
//! any one label in its place (`a.example.com`, not `a.b.example.com`, as a wildcard
//! certificate covers it); an exact name beats the wildcard. A host no domain names keeps the
//! listener's `/{stage}/...` addressing.
//!
//! The table is compiled once per generation (`DomainTable::new`); the request path pays one
//! hash lookup of the host when the config has domains, and nothing when it has none.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::auth::ip_policy::IpPolicy;

/// One `domains[]` entry, validated.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Lower case; `*.example.com` for a wildcard domain.
    pub name: String,
    /// A private domain's source-IP policy: addresses outside it are refused (403).
    pub policy: Option<Arc<IpPolicy>>,
    /// Longest base path first, so the first match is the longest.
    pub mappings: Vec<BasePathMapping>,
    /// The certificate served for this domain's name (SNI), if it has its own: its PEM files.
    pub tls: Option<DomainTls>,
}

/// A domain's own certificate and key, served by every TLS listener to clients that name it.
#[derive(Debug, Clone)]
pub struct DomainTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// `base_path → api/stage`.
#[derive(Debug, Clone)]
pub struct BasePathMapping {
    /// Segments joined by `/`, without a leading or trailing slash; empty for `(none)`.
    pub base_path: String,
    pub api: String,
    pub stage: String,
}

/// Where a request on a domain goes: its mapping and the route path after the base path.
#[derive(Debug, Clone, Copy)]
pub struct Mapped<'d, 'p> {
    pub mapping: &'d BasePathMapping,
    /// The route path without its leading slash and one trailing slash, as the router takes it
    /// (`/v1/pets/7/` under `v1` → `pets/7`).
    pub rest: &'p str,
}

impl Domain {
    /// Sorts the mappings so that [`Self::map`] finds the longest base path first.
    pub fn new(
        name: String,
        policy: Option<Arc<IpPolicy>>,
        mut mappings: Vec<BasePathMapping>,
        tls: Option<DomainTls>,
    ) -> Self {
        mappings.sort_by_key(|m| std::cmp::Reverse(m.base_path.len()));
        Self {
            name,
            policy,
            mappings,
            tls,
        }
    }

    /// The mapping that covers `path` (a request path, `/` first), with the rest of the path;
    /// `None` when no base path covers it. A base path matches whole segments: `v1` covers
    /// `/v1` and `/v1/pets`, not `/v10`.
    pub fn map<'d, 'p>(&'d self, path: &'p str) -> Option<Mapped<'d, 'p>> {
        let path = path.strip_prefix('/').unwrap_or(path);
        self.mappings.iter().find_map(|mapping| {
            let rest = if mapping.base_path.is_empty() {
                path
            } else {
                let after = path.strip_prefix(mapping.base_path.as_str())?;
                match after.strip_prefix('/') {
                    Some(rest) => rest,
                    None if after.is_empty() => after,
                    None => return None,
                }
            };
            Some(Mapped {
                mapping,
                rest: rest.strip_suffix('/').unwrap_or(rest),
            })
        })
    }
}

/// The generation's domains, by name.
#[derive(Debug, Default)]
pub struct DomainTable {
    exact: HashMap<Box<str>, Arc<Domain>, RandomState>,
    /// `*.example.com` under `example.com`.
    wildcard: HashMap<Box<str>, Arc<Domain>, RandomState>,
}

impl DomainTable {
    pub fn new(domains: &[Domain]) -> Self {
        let mut table = Self::default();
        for domain in domains {
            let domain = Arc::new(domain.clone());
            match domain.name.strip_prefix("*.") {
                Some(parent) => table.wildcard.insert(parent.into(), domain),
                None => table.exact.insert(domain.name.as_str().into(), domain),
            };
        }
        table
    }

    /// Every domain, by name.
    pub fn sorted(&self) -> Vec<&Domain> {
        let mut all: Vec<&Domain> = self
            .exact
            .values()
            .chain(self.wildcard.values())
            .map(|d| &**d)
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// The domain a `Host` value names (a port and a trailing dot are ignored, case too).
    pub fn find(&self, host: &[u8]) -> Option<&Domain> {
        let host = std::str::from_utf8(host).ok()?;
        let name = host_name(host);
        let lowered;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = name.to_ascii_lowercase();
            lowered.as_str()
        } else {
            name
        };
        if let Some(domain) = self.exact.get(name) {
            return Some(domain);
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).map(|d| &**d)
    }
}

/// `Host` without its port and trailing dot (`[::1]:8443` → `[::1]`).
fn host_name(host: &str) -> &str {
    let name = match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => &host[..colon],
        _ => host,
    };
    name.strip_suffix('.').unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mapping(base_path: &str, api: &str) -> BasePathMapping {
        BasePathMapping {
            base_path: base_path.into(),
            api: api.into(),
            stage: "prod".into(),
        }
    }

    fn domain(name: &str, mappings: &[(&str, &str)]) -> Domain {
        Domain::new(
            name.into(),
            None,
            mappings.iter().map(|(b, a)| mapping(b, a)).collect(),
            None,
        )
    }

    #[test]
    fn the_longest_base_path_wins_on_whole_segments() {
        let d = domain(
            "api.example.com",
            &[
                ("", "site"),
                ("orders", "old"),
                ("orders/v2", "orders"),
                ("v1", "petstore"),
            ],
        );
        let at = |path: &'static str| d.map(path).map(|m| (m.mapping.api.clone(), m.rest));
        let is = |api: &str, rest: &'static str| Some((api.to_owned(), rest));
        assert_eq!(at("/v1/pets/7"), is("petstore", "pets/7"));
        assert_eq!(at("/v1"), is("petstore", ""));
        assert_eq!(at("/v1/"), is("petstore", ""));
        assert_eq!(at("/v10/pets"), is("site", "v10/pets"));
        assert_eq!(at("/orders/v2/items/"), is("orders", "items"));
        assert_eq!(at("/orders/v3"), is("old", "v3"));
        assert_eq!(at("/"), is("site", ""));
        let no_root = domain("b.example.com", &[("v1", "petstore")]);
        assert!(no_root.map("/").is_none());
        assert!(no_root.map("/v2/pets").is_none());
    }

    #[test]
    fn hosts_find_exact_names_before_wildcards() {
        let table = DomainTable::new(&[
            domain("api.example.com", &[("", "exact")]),
            domain("*.example.com", &[("", "wild")]),
        ]);
        let api = |host: &str| {
            table
                .find(host.as_bytes())
                .map(|d| d.mappings[0].api.clone())
        };
        assert_eq!(api("api.example.com").as_deref(), Some("exact"));
        assert_eq!(api("API.Example.com:8443").as_deref(), Some("exact"));
        assert_eq!(api("api.example.com.").as_deref(), Some("exact"));
        assert_eq!(api("shop.example.com").as_deref(), Some("wild"));
        assert_eq!(api("a.shop.example.com"), None);
        assert_eq!(api("example.com"), None);
        assert_eq!(api("127.0.0.1:8080"), None);
        assert_eq!(api("[::1]:8080"), None);
    }

    proptest! {
        #[test]
        fn a_mapped_rest_is_the_path_after_its_base(
            base in "[a-z]{1,4}(/[a-z]{1,4}){0,2}",
            tail in "(/[a-z0-9]{0,4}){0,4}",
        ) {
            let d = domain("x.test", &[(base.as_str(), "a")]);
            let path = format!("/{base}{tail}");
            let mapped = d.map(&path).unwrap();
            let expected = tail.strip_prefix('/').unwrap_or(&tail);
            prop_assert_eq!(mapped.rest, expected.strip_suffix('/').unwrap_or(expected));
        }
    }
}
