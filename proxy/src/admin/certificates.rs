//! `GET /admin/certificates`: each certificate the listeners serve (names, serial, validity,
//! when it was loaded, why its last replacement was refused) and each truststore.

use std::time::SystemTime;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::json;
use crate::node::Node;

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

pub fn list(node: &Node) -> Response<Full<Bytes>> {
    let serving = node.serving.load();
    let now = SystemTime::now();
    let certificates: Vec<serde_json::Value> = serving
        .certificates()
        .iter()
        .map(|slot| {
            let cert = slot.current();
            let (loaded_at, refused) = slot.status();
            let days = match cert.not_after.duration_since(now) {
                Ok(left) => (left.as_secs() / 86_400) as i64,
                Err(past) => -((past.duration().as_secs() / 86_400) as i64) - 1,
            };
            json!({
                "cert": slot.cert_path.display().to_string(),
                "key": slot.key_path.display().to_string(),
                "names": cert.names,
                "serial": cert.serial,
                "not_before": rfc3339(cert.not_before),
                "not_after": rfc3339(cert.not_after),
                "days_to_expiry": days,
                "loaded_at": rfc3339(loaded_at),
                "last_refused": refused,
            })
        })
        .collect();
    let truststores: Vec<serde_json::Value> = serving
        .listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let t = l.truststore.as_ref()?;
            Some(json!({
                "listener": format!("listen[{i}]"),
                "ca": t.path.display().to_string(),
                "mode": match t.mode {
                    crate::listener::tls::ClientAuthMode::Require => "require",
                    crate::listener::tls::ClientAuthMode::Optional => "optional",
                },
                "last_refused": t.last_error(),
            }))
        })
        .collect();
    json(
        StatusCode::OK,
        json!({ "certificates": certificates, "truststores": truststores }).to_string(),
    )
}
