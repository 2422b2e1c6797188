//! WebSocket APIs (`protocol: websocket`): the route selection, the `websocket` limits, route
//! keys and what a WebSocket route may set, and the routes Edgeway adds (`$connect` when none
//! is given, `@connections` when `connections_auth` names an authorizer).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::Errors;
use crate::config::model::{Integration, Isolation, Mock, Route, RouteCacheSettings};
use serde_saphyr::Spanned;

use crate::config::raw::{RawApi, RawRoute};
use crate::router::{RouteMethod, RoutePattern};
use crate::websocket::{self, RouteResponse, SelectionExpression, WebSocketSettings};

/// Whether the API says `protocol: websocket`.
pub(super) fn is_websocket(raw: &RawApi) -> bool {
    raw.protocol
        .as_ref()
        .is_some_and(|p| p.value.trim() == "websocket")
}

/// The API's protocol: `Some(settings)` for a WebSocket API, `None` for HTTP; errors reported.
pub(super) fn settings(
    errors: &mut Errors,
    path: &str,
    raw: &RawApi,
) -> Option<Arc<WebSocketSettings>> {
    let websocket = match raw.protocol.as_ref().map(|p| (p, p.value.trim())) {
        None | Some((_, "http")) => false,
        Some((_, "websocket")) => true,
        Some((at, other)) => {
            errors.add(
                format!("{path}.protocol"),
                Some(at),
                format!("unknown protocol \"{other}\"; expected http or websocket"),
            );
            return None;
        }
    };
    if !websocket {
        for (key, set) in [
            ("route_selection", raw.route_selection.is_some()),
            ("websocket", raw.websocket.is_some()),
        ] {
            if set {
                errors.add(
                    format!("{path}.{key}"),
                    Some(&raw.name),
                    format!("`{key}` is for WebSocket APIs; add `protocol: websocket`"),
                );
            }
        }
        return None;
    }
    let Some(selection) = &raw.route_selection else {
        errors.add(
            format!("{path}.route_selection"),
            Some(&raw.name),
            "a WebSocket API needs `route_selection`, e.g. `$request.body.action`",
        );
        return None;
    };
    let expression = match SelectionExpression::parse(selection.value.trim()) {
        Ok(e) => e,
        Err(e) => {
            errors.add(
                format!("{path}.route_selection"),
                Some(selection),
                e.to_string(),
            );
            return None;
        }
    };
    let mut settings = WebSocketSettings::new(expression);
    let Some(ws) = &raw.websocket else {
        return Some(Arc::new(settings));
    };
    let wpath = format!("{path}.websocket");
    let ws = &ws.value;
    let mut positive = |key: &str, value: &Option<Spanned<u64>>| -> Option<u64> {
        let v = value.as_ref()?;
        if v.value == 0 {
            errors.add(format!("{wpath}.{key}"), Some(v), "must be more than 0");
            return None;
        }
        Some(v.value)
    };
    if let Some(v) = positive("max_message_bytes", &ws.max_message_bytes) {
        settings.max_message_bytes = usize::try_from(v).unwrap_or(usize::MAX);
    }
    if let Some(v) = positive("max_frame_bytes", &ws.max_frame_bytes) {
        settings.max_frame_bytes = usize::try_from(v).unwrap_or(usize::MAX);
    }
    if let Some(v) = positive("idle_timeout_s", &ws.idle_timeout_s) {
        settings.idle_timeout = Duration::from_secs(v);
    }
    if let Some(v) = positive("max_duration_s", &ws.max_duration_s) {
        settings.max_duration = Duration::from_secs(v);
    }
    if let Some(v) = positive("ping_interval_s", &ws.ping_interval_s) {
        settings.ping_interval = Duration::from_secs(v);
    }
    if let Some(v) = positive("send_queue", &ws.send_queue) {
        settings.send_queue = usize::try_from(v).unwrap_or(usize::MAX);
    }
    if settings.max_frame_bytes > settings.max_message_bytes {
        errors.add(
            format!("{wpath}.max_frame_bytes"),
            ws.max_frame_bytes.as_ref(),
            format!(
                "{} is more than max_message_bytes ({}); a frame is part of a message",
                settings.max_frame_bytes, settings.max_message_bytes
            ),
        );
    }
    settings.binary = ws.binary;
    Some(Arc::new(settings))
}

/// A WebSocket route's key: `$connect`, `$disconnect`, `$default`, or a custom key (which must
/// not start with `$`). Gives the method and path the route is built with: `$connect` is the
/// stage root's `GET`; the others are reached by route selection, never by the router.
pub(super) fn route_key(
    errors: &mut Errors,
    path: &str,
    raw: &RawRoute,
) -> Option<(RouteMethod, RoutePattern, String)> {
    let key = raw.route.value.trim();
    let predefined = [
        websocket::CONNECT,
        websocket::DISCONNECT,
        websocket::DEFAULT,
    ];
    if key.is_empty() || (key.starts_with('$') && !predefined.contains(&key)) {
        errors.add(
            format!("{path}.route"),
            Some(&raw.route),
            format!(
                "\"{key}\" is not a WebSocket route key: use $connect, $disconnect, $default or a key of your own that does not start with `$`"
            ),
        );
        return None;
    }
    let method = if key == websocket::CONNECT {
        RouteMethod::Get
    } else {
        RouteMethod::Post
    };
    Some((method, RoutePattern::root(), key.to_owned()))
}

/// What a WebSocket route may not set, and its `response`.
pub(super) fn route_checks(
    errors: &mut Errors,
    path: &str,
    raw: &RawRoute,
    key: &str,
) -> Option<RouteResponse> {
    let mut ok = true;
    if key != websocket::CONNECT {
        // As in API Gateway: the connection is authorized once, when it opens.
        if let Some(auth) = &raw.auth {
            errors.add(
                format!("{path}.auth"),
                Some(auth),
                "authorizers run on $connect only: the connection is authorized once, when it opens",
            );
            ok = false;
        }
        if raw.api_key_required {
            errors.add(
                format!("{path}.api_key_required"),
                Some(&raw.route),
                "the API key is checked on $connect only; messages count against the key the connection opened with",
            );
            ok = false;
        }
    }
    let unsupported = [
        ("cache", raw.cache.is_some()),
        ("validation", raw.validation.is_some()),
        ("request_transforms", !raw.request_transforms.is_empty()),
        ("response_transforms", !raw.response_transforms.is_empty()),
    ];
    for (field, set) in unsupported {
        if set {
            errors.add(
                format!("{path}.{field}"),
                Some(&raw.route),
                format!("`{field}` is not supported on WebSocket routes"),
            );
            ok = false;
        }
    }
    let response = match raw.response.as_ref().map(|r| (r, r.value.trim())) {
        None | Some((_, "one-way")) => RouteResponse::OneWay,
        Some((_, "two-way")) => RouteResponse::TwoWay,
        Some((at, other)) => {
            errors.add(
                format!("{path}.response"),
                Some(at),
                format!("unknown response \"{other}\"; expected two-way or one-way"),
            );
            return None;
        }
    };
    ok.then_some(response)
}

/// `response` set on an HTTP API's route.
pub(super) fn refuse_response_on_http(errors: &mut Errors, path: &str, raw: &RawRoute) {
    if let Some(at) = &raw.response {
        errors.add(
            format!("{path}.response"),
            Some(at),
            "`response` is for WebSocket routes (protocol: websocket)",
        );
    }
}

/// The routes Edgeway adds to a WebSocket API: a `$connect` that accepts every connection
/// when the API has none, and `@connections/{connectionId}` (POST, GET, DELETE; the `@` also
/// percent-encoded, as the AWS SDKs send it) behind `connections_auth` when it is set.
pub(super) fn added_routes(
    errors: &mut Errors,
    path: &str,
    raw: &RawApi,
    routes: &[Route],
) -> Vec<Route> {
    let mut added = Vec::new();
    if !routes.iter().any(|r| r.key == websocket::CONNECT) {
        let mut connect = route(
            RouteMethod::Get,
            RoutePattern::root(),
            websocket::CONNECT.into(),
            Integration::Mock(Mock {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: Bytes::new(),
                echo: false,
            }),
        );
        connect.websocket = Some(RouteResponse::OneWay);
        added.push(connect);
    }
    let Some(auth) = raw
        .websocket
        .as_ref()
        .and_then(|w| w.value.connections_auth.as_ref())
    else {
        return added;
    };
    let name = auth.value.trim();
    if !raw.authorizers.contains_key(name) {
        errors.add(
            format!("{path}.websocket.connections_auth"),
            Some(auth),
            format!("no authorizer named \"{name}\" in this api's `authorizers`"),
        );
        return added;
    }
    for prefix in ["@connections", "%40connections"] {
        for method in [RouteMethod::Post, RouteMethod::Get, RouteMethod::Delete] {
            let Ok(pattern) = RoutePattern::parse(&format!("/{prefix}/{{connectionId}}")) else {
                continue;
            };
            let mut r = route(
                method,
                pattern,
                format!("{method} /@connections/{{connectionId}}"),
                Integration::Connections,
            );
            r.auth = Some(name.to_owned());
            added.push(r);
        }
    }
    added
}

fn route(
    method: RouteMethod,
    pattern: RoutePattern,
    key: String,
    integration: Integration,
) -> Route {
    Route {
        method,
        pattern,
        key,
        integration,
        timeout: None,
        auth: None,
        scopes: Vec::new(),
        isolation: Isolation::Reuse,
        request_transforms: Vec::new(),
        response_transforms: Vec::new(),
        cache: RouteCacheSettings::default(),
        validation: None,
        api_key_required: false,
        throttle: None,
        websocket: None,
    }
}
