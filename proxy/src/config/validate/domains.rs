//! `domains`: custom domains and their base path mappings (see `crate::domains`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::Errors;
use super::access::validate_policy;
use crate::config::model::Api;
use crate::config::raw::{RawBasePathMapping, RawDomain};
use crate::domains::{BasePathMapping, Domain, DomainTls};
use crate::listener::tls::CertSlot;
use std::sync::Arc;

/// The domains, and the certificates of those that have their own (for every TLS listener).
pub(super) fn validate_domains(
    errors: &mut Errors,
    raw: &[RawDomain],
    apis: &[Api],
    base_dir: &Path,
) -> (Vec<Domain>, Vec<Arc<CertSlot>>) {
    let mut domains = Vec::new();
    let mut certs = Vec::new();
    let mut names = HashMap::new();
    for (i, d) in raw.iter().enumerate() {
        let path = format!("domains[{i}]");
        let name = d.name.value.trim().to_ascii_lowercase();
        let name_ok = match domain_name_problem(&name) {
            Some(problem) => {
                errors.add(format!("{path}.name"), Some(&d.name), problem);
                false
            }
            None => match names.insert(name.clone(), i) {
                Some(first) => {
                    errors.add(
                        format!("{path}.name"),
                        Some(&d.name),
                        format!("domain {name} is already defined by domains[{first}]"),
                    );
                    false
                }
                None => true,
            },
        };
        let tls = d.tls.as_ref().and_then(|c| {
            let loaded = super::load_cert(errors, &format!("{path}.tls"), c, base_dir)?;
            let names = loaded.current().names.clone();
            if !names.iter().any(|n| covers(n, &name)) {
                errors.add(
                    format!("{path}.tls.cert"),
                    Some(&c.cert),
                    format!(
                        "certificate {} does not cover {name} (it names {})",
                        c.cert.value,
                        names.join(", ")
                    ),
                );
                return None;
            }
            certs.push(loaded);
            Some(DomainTls {
                cert: base_dir.join(&c.cert.value),
                key: base_dir.join(&c.key.value),
            })
        });
        let policy = d
            .policy
            .as_ref()
            .and_then(|p| validate_policy(errors, &format!("{path}.policy"), p));
        let mappings = validate_mappings(errors, &path, &d.mappings.value, apis);
        if d.mappings.value.is_empty() {
            errors.add(
                format!("{path}.mappings"),
                Some(&d.mappings),
                "a domain needs at least one base path mapping",
            );
        }
        if name_ok {
            domains.push(Domain::new(name, policy, mappings, tls));
        }
    }
    (domains, certs)
}

fn validate_mappings(
    errors: &mut Errors,
    path: &str,
    raw: &[RawBasePathMapping],
    apis: &[Api],
) -> Vec<BasePathMapping> {
    let mut mappings = Vec::new();
    let mut seen = HashSet::new();
    for (j, m) in raw.iter().enumerate() {
        let path = format!("{path}.mappings[{j}]");
        let written = m.base_path.as_ref().map_or("", |b| b.value.as_str());
        let base_path = match written.trim_matches('/') {
            "(none)" => "",
            trimmed => trimmed,
        };
        if let Some(problem) = base_path_problem(base_path) {
            errors.add(format!("{path}.base_path"), m.base_path.as_ref(), problem);
            continue;
        }
        if !seen.insert(base_path.to_owned()) {
            errors.add(
                format!("{path}.base_path"),
                m.base_path.as_ref(),
                format!(
                    "base path \"{base_path}\" is mapped twice in this domain; a base path maps to one stage"
                ),
            );
            continue;
        }
        let Some(api) = apis.iter().find(|a| a.name == m.api.value) else {
            let hint =
                crate::config::did_you_mean(&m.api.value, apis.iter().map(|a| a.name.as_str()))
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
            errors.add(
                format!("{path}.api"),
                Some(&m.api),
                format!("no API is named `{}`{hint}", m.api.value),
            );
            continue;
        };
        if !api.stages.iter().any(|s| s.name == m.stage.value) {
            let stages: Vec<&str> = api.stages.iter().map(|s| s.name.as_str()).collect();
            errors.add(
                format!("{path}.stage"),
                Some(&m.stage),
                format!(
                    "API {} has no stage `{}` (its stages: {})",
                    api.name,
                    m.stage.value,
                    stages.join(", ")
                ),
            );
            continue;
        }
        mappings.push(BasePathMapping {
            base_path: base_path.to_owned(),
            api: api.name.clone(),
            stage: m.stage.value.clone(),
        });
    }
    mappings
}

/// Why `name` is not a domain name Edgeway can serve, if it is not.
fn domain_name_problem(name: &str) -> Option<String> {
    let labels = name.strip_prefix("*.").unwrap_or(name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    (name.len() > 253 || !labels.contains('.') || !labels.split('.').all(label_ok)).then(|| {
        format!(
            "invalid domain name \"{name}\"; expected a DNS name such as api.example.com, or *.example.com for a wildcard"
        )
    })
}

/// Why `base_path` (slashes trimmed) is not one, if it is not.
fn base_path_problem(base_path: &str) -> Option<String> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            && s != "."
            && s != ".."
    };
    (!base_path.is_empty() && !base_path.split('/').all(segment_ok)).then(|| {
        format!(
            "invalid base path \"{base_path}\"; expected segments of letters, digits and -._~ such as v1 or orders/v2, or empty for every path"
        )
    })
}

/// Whether a certificate name (`*.example.com` or exact) covers the domain `name`.
fn covers(cert_name: &str, name: &str) -> bool {
    if cert_name == name {
        return true;
    }
    match (cert_name.strip_prefix("*."), name.split_once('.')) {
        (Some(parent), Some((_, rest))) => parent == rest,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_base_paths_are_checked() {
        assert!(domain_name_problem("api.example.com").is_none());
        assert!(domain_name_problem("*.example.com").is_none());
        assert!(domain_name_problem("localhost").is_some());
        assert!(domain_name_problem("a..b").is_some());
        assert!(domain_name_problem("a.*.b").is_some());
        assert!(domain_name_problem("-a.b").is_some());
        assert!(base_path_problem("").is_none());
        assert!(base_path_problem("orders/v2").is_none());
        assert!(base_path_problem("a//b").is_some());
        assert!(base_path_problem("a/../b").is_some());
        assert!(base_path_problem("a b").is_some());
        assert!(covers("*.example.com", "api.example.com"));
        assert!(covers("*.example.com", "*.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("api.example.com", "www.example.com"));
    }
}
