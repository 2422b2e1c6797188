//! CORS for APIs that configure it (`cors` on an API; the rules are in `crate::cors`).
//!
//! Phase 3, [`preflight`]: an `OPTIONS` request with `Origin` and
//! `Access-Control-Request-Method` is answered here, 204, before the resource policy,
//! authorizers, throttling or the origin. It is routed by the method it asks about, so the
//! route (and its API's CORS rules) is the one the actual request will reach; an `OPTIONS`
//! route of such an API never sees preflights, as in API Gateway HTTP APIs. A preflight the
//! rules refuse still gets a 204, without `Access-Control-*` headers, which is what makes the
//! browser stop (API Gateway answers so too; a 403 would tell a probing page no more).
//!
//! Phase 12, [`finish`]: every other response to a route of such an API, the origin's and the
//! gateway's own errors alike (so browser code can read a 401, 403 or 429), gets the CORS
//! headers for an allowed `Origin`, and `Vary: Origin` always. A 404 or 405 that matched no
//! route gets none: several APIs may share a stage name, so no API's rules apply.

use http::header::ORIGIN;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};

use super::{Flow, RequestContext};
use crate::body::ResponseBody;
use crate::cors::PreflightRequest;
use crate::generation::{Generation, RouteTarget};
use crate::router::RouteMiss;

/// What phase 12 needs of a request to an API with CORS.
#[derive(Debug)]
pub struct CorsRequest {
    /// The request's `Origin`, if it had one.
    pub origin: Option<HeaderValue>,
}

/// The methods a preflight for a method no route takes is tried with, to find the API that
/// owns the path (and so whose rules refuse it).
const PATH_PROBES: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// Phase 3: answers a CORS preflight to a route of an API with CORS. Anything else, including
/// a preflight to an API without CORS (which is routed as any `OPTIONS` request), goes on.
pub fn preflight<'g>(gateway: &'g Generation, ctx: &mut RequestContext<'g>, parts: &Parts) -> Flow {
    if parts.method != Method::OPTIONS {
        return Flow::Continue;
    }
    let Some(request) = PreflightRequest::from_headers(&parts.headers) else {
        return Flow::Continue;
    };
    let at = ctx.address(parts.uri.path());
    let with_cors = |route: &'g RouteTarget| route.cors.is_some().then_some(route);
    // A route of the API the path is in, whatever the method: its rules refuse the preflight.
    let any_route = || {
        PATH_PROBES.iter().find_map(|probe| {
            let found = at.lookup(&gateway.router, probe).ok()?;
            with_cors(found.route)
        })
    };
    let route = match Method::from_bytes(request.method.as_bytes()) {
        Ok(method) => match at.lookup(&gateway.router, &method) {
            Ok(found) => with_cors(found.route),
            // The path exists, not for that method.
            Err(RouteMiss::MethodNotAllowed(_)) => any_route(),
            Err(RouteMiss::NotFound) => None,
        },
        // Not a method at all: answered, never passed on to an `ANY` route's origin.
        Err(_) => any_route(),
    };
    let Some(route) = route else {
        return Flow::Continue;
    };
    let Some(cors) = route.cors.as_deref() else {
        return Flow::Continue;
    };
    ctx.route = Some(route);
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    cors.answer_preflight(&request, response.headers_mut());
    Flow::Respond(response)
}

/// After routing: remembers what phase 12 needs, when the route's API has CORS.
pub fn remember(ctx: &mut RequestContext<'_>, parts: &Parts) {
    if ctx.route.is_some_and(|r| r.cors.is_some()) {
        ctx.cors = Some(CorsRequest {
            origin: parts.headers.get(ORIGIN).cloned(),
        });
    }
}

/// Phase 12: the CORS headers on the response (see the module docs).
pub fn finish(ctx: &mut RequestContext<'_>, response: &mut Response<ResponseBody>) {
    let Some(request) = ctx.cors.take() else {
        return;
    };
    if let Some(cors) = ctx.route.and_then(|r| r.cors.as_deref()) {
        cors.apply(request.origin.as_ref(), response.headers_mut());
    }
}
