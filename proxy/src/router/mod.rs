//! Route lookup: request path and method → the route and its path parameters.
//!
//! The router is compiled once per config generation: a segment trie per stage. The stage is the
//! first path segment (`/prod/pets/7` → stage `prod`, route path `/pets/7`). At each level a
//! literal segment beats `{param}`, which beats `{proxy+}`; when the most specific path has no
//! route for the method, lookup falls back to less specific ones, so `GET /pets/dog` and
//! `ANY /{proxy+}` can live side by side. HEAD is served by a GET route unless a HEAD route
//! exists. A path that matches routes none of which takes the method is a 405 with the methods
//! that would have matched.

mod pattern;

use std::collections::HashMap;

use foldhash::fast::RandomState;
use http::Method;

pub use pattern::{
    RouteKeyError, RouteMethod, RoutePattern, RoutePatternError, Segment, parse_route_key,
};

/// A compiled routing table whose routes carry a `T` (what the pipeline needs to serve them).
#[derive(Debug)]
pub struct Router<T> {
    stages: HashMap<Box<str>, Node, RandomState>,
    routes: Vec<T>,
}

/// A successful lookup.
#[derive(Debug)]
pub struct RouteMatch<'r, 'p, T> {
    pub route: &'r T,
    /// Values of the route's parameters in the order of `RoutePattern::param_names`, still
    /// percent-encoded as they came on the wire. A greedy value spans several segments.
    pub params: Vec<&'p str>,
}

/// Why a lookup found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMiss {
    /// No route has this path in this stage, or the stage does not exist.
    NotFound,
    /// Routes have this path but none takes the method; these would.
    MethodNotAllowed(AllowedMethods),
}

/// The set of methods a path accepts, for the `Allow` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllowedMethods(u8);

/// A route with the same stage, method and path shape as one already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateRoute {
    /// Index (insertion order) of the route already there.
    pub existing: usize,
}

const NO_ROUTE: u32 = u32::MAX;
const ALL_SLOTS: u8 = 0x7f;
const GET_SLOT: usize = 0;
const HEAD_SLOT: usize = 5;

#[derive(Debug, Default)]
struct Node {
    // foldhash: the keys are route text from config, looked up with request text; its
    // per-process seed keeps lookups from being steered, at a fraction of SipHash's cost.
    literal: HashMap<Box<str>, Node, RandomState>,
    param: Option<Box<Node>>,
    /// Routes that end at this node.
    here: Methods,
    /// Routes whose greedy last segment starts below this node.
    greedy: Methods,
}

/// Route indexes by method slot (see `RouteMethod::slot`), plus the `ANY` route.
#[derive(Debug, Clone, Copy)]
struct Methods {
    slots: [u32; 7],
    any: u32,
}

impl Default for Methods {
    fn default() -> Self {
        Self {
            slots: [NO_ROUTE; 7],
            any: NO_ROUTE,
        }
    }
}

impl Methods {
    fn is_empty(&self) -> bool {
        self.any == NO_ROUTE && self.slots.iter().all(|&r| r == NO_ROUTE)
    }

    fn find(&self, method: &Method) -> Option<u32> {
        if let Some(slot) = RouteMethod::slot_of(method) {
            if self.slots[slot] != NO_ROUTE {
                return Some(self.slots[slot]);
            }
            if slot == HEAD_SLOT && self.slots[GET_SLOT] != NO_ROUTE {
                return Some(self.slots[GET_SLOT]);
            }
        }
        (self.any != NO_ROUTE).then_some(self.any)
    }

    fn allowed(&self) -> u8 {
        if self.any != NO_ROUTE {
            return ALL_SLOTS;
        }
        let mut mask = 0u8;
        for (slot, &route) in self.slots.iter().enumerate() {
            if route != NO_ROUTE {
                mask |= 1 << slot;
            }
        }
        if mask & (1 << GET_SLOT) != 0 {
            mask |= 1 << HEAD_SLOT;
        }
        mask
    }

    fn insert(&mut self, method: RouteMethod, route: u32) -> Result<(), u32> {
        let cell = match method.slot() {
            Some(slot) => &mut self.slots[slot],
            None => &mut self.any,
        };
        if *cell != NO_ROUTE {
            return Err(*cell);
        }
        *cell = route;
        Ok(())
    }
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self {
            stages: HashMap::default(),
            routes: Vec::new(),
        }
    }
}

impl<T> Router<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of routes in the table (over all stages).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Adds a route to a stage. Fails if the stage already has a route with the same method and
    /// path shape (parameter names aside).
    pub fn insert(
        &mut self,
        stage: &str,
        method: RouteMethod,
        pattern: &RoutePattern,
        route: T,
    ) -> Result<(), DuplicateRoute> {
        let index = u32::try_from(self.routes.len()).unwrap_or(NO_ROUTE - 1);
        let mut node = self.stages.entry(stage.into()).or_default();
        let mut methods = None;
        for segment in pattern.segments() {
            match segment {
                Segment::Literal(text) => {
                    node = node.literal.entry(text.as_str().into()).or_default();
                }
                Segment::Param(_) => {
                    node = node.param.get_or_insert_with(Box::default);
                }
                Segment::Greedy(_) => {
                    methods = Some(&mut node.greedy);
                    break;
                }
            }
        }
        let methods = match methods {
            Some(methods) => methods,
            None => &mut node.here,
        };
        methods
            .insert(method, index)
            .map_err(|existing| DuplicateRoute {
                existing: existing as usize,
            })?;
        self.routes.push(route);
        Ok(())
    }

    /// Finds the route for a request path (`/stage/...`, without the query) and method.
    pub fn lookup<'r, 'p>(
        &'r self,
        method: &Method,
        path: &'p str,
    ) -> Result<RouteMatch<'r, 'p, T>, RouteMiss> {
        let (stage, rest) = split_stage(path);
        self.lookup_at(method, stage, rest)
    }

    /// [`Self::lookup`] of a path already split: `stage`, and the route path without its
    /// leading slash and one trailing slash (`pets/7`). Parameter values are slices of `rest`.
    pub fn lookup_at<'r, 'p>(
        &'r self,
        method: &Method,
        stage: &str,
        rest: &'p str,
    ) -> Result<RouteMatch<'r, 'p, T>, RouteMiss> {
        let Some(root) = self.stages.get(stage) else {
            return Err(RouteMiss::NotFound);
        };
        let mut params = Vec::new();
        let mut allowed = 0u8;
        match walk(root, rest, method, &mut params, &mut allowed) {
            Some(index) => Ok(RouteMatch {
                route: &self.routes[index as usize],
                params,
            }),
            None if allowed != 0 => Err(RouteMiss::MethodNotAllowed(AllowedMethods(allowed))),
            None => Err(RouteMiss::NotFound),
        }
    }
}

/// `/prod/pets/7/` → (`prod`, `pets/7`): the stage, then the route path without its leading
/// slash and one trailing slash.
pub fn split_stage(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (stage, rest) = path.split_once('/').unwrap_or((path, ""));
    (stage, rest.strip_suffix('/').unwrap_or(rest))
}

fn walk<'p>(
    node: &Node,
    rest: &'p str,
    method: &Method,
    params: &mut Vec<&'p str>,
    allowed: &mut u8,
) -> Option<u32> {
    if rest.is_empty() {
        *allowed |= node.here.allowed();
        return node.here.find(method);
    }
    let (segment, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if let Some(child) = node.literal.get(segment)
        && let Some(found) = walk(child, tail, method, params, allowed)
    {
        return Some(found);
    }
    if !segment.is_empty()
        && let Some(child) = &node.param
    {
        params.push(segment);
        if let Some(found) = walk(child, tail, method, params, allowed) {
            return Some(found);
        }
        params.pop();
    }
    if !node.greedy.is_empty() {
        *allowed |= node.greedy.allowed();
        if let Some(found) = node.greedy.find(method) {
            params.push(rest);
            return Some(found);
        }
    }
    None
}

impl AllowedMethods {
    /// `"GET, HEAD, POST"`: the value of an `Allow` header.
    pub fn header_value(self) -> String {
        let mut names = Vec::new();
        for (slot, name) in RouteMethod::SLOT_NAMES.iter().enumerate() {
            if self.0 & (1 << slot) != 0 {
                names.push(*name);
            }
        }
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(keys: &[&str]) -> Router<String> {
        let mut router = Router::new();
        for key in keys {
            let (method, pattern) = parse_route_key(key).unwrap();
            router
                .insert("prod", method, &pattern, (*key).to_owned())
                .unwrap();
        }
        router
    }

    fn found(router: &Router<String>, method: Method, path: &str) -> (String, Vec<String>) {
        let m = router.lookup(&method, path).unwrap();
        (
            m.route.clone(),
            m.params.iter().map(|p| (*p).to_owned()).collect(),
        )
    }

    #[test]
    fn literal_beats_param_beats_greedy() {
        let r = router(&[
            "GET /pets/dog",
            "GET /pets/{id}",
            "GET /pets/{proxy+}",
            "GET /{proxy+}",
        ]);
        assert_eq!(found(&r, Method::GET, "/prod/pets/dog").0, "GET /pets/dog");
        assert_eq!(
            found(&r, Method::GET, "/prod/pets/7"),
            ("GET /pets/{id}".into(), vec!["7".into()])
        );
        assert_eq!(
            found(&r, Method::GET, "/prod/pets/7/toys"),
            ("GET /pets/{proxy+}".into(), vec!["7/toys".into()])
        );
        assert_eq!(
            found(&r, Method::GET, "/prod/cats/1"),
            ("GET /{proxy+}".into(), vec!["cats/1".into()])
        );
    }

    #[test]
    fn falls_back_to_less_specific_route_for_the_method() {
        let r = router(&["GET /pets/dog", "ANY /{proxy+}"]);
        assert_eq!(found(&r, Method::POST, "/prod/pets/dog").0, "ANY /{proxy+}");
    }

    #[test]
    fn head_uses_get_and_405_lists_allowed() {
        let r = router(&["GET /pets", "POST /pets", "DELETE /pets/{id}"]);
        assert_eq!(found(&r, Method::HEAD, "/prod/pets").0, "GET /pets");
        match r.lookup(&Method::PUT, "/prod/pets") {
            Err(RouteMiss::MethodNotAllowed(allowed)) => {
                assert_eq!(allowed.header_value(), "GET, POST, HEAD")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.lookup(&Method::GET, "/prod/nope").unwrap_err(),
            RouteMiss::NotFound
        );
        assert_eq!(
            r.lookup(&Method::GET, "/beta/pets").unwrap_err(),
            RouteMiss::NotFound
        );
    }

    #[test]
    fn root_trailing_slash_and_empty_segments() {
        let r = router(&["GET /", "GET /pets/{id}", "GET /files/{proxy+}"]);
        assert_eq!(found(&r, Method::GET, "/prod").0, "GET /");
        assert_eq!(found(&r, Method::GET, "/prod/").0, "GET /");
        assert_eq!(
            found(&r, Method::GET, "/prod/pets/7/"),
            ("GET /pets/{id}".into(), vec!["7".into()])
        );
        // `{param}` never matches an empty segment; `{proxy+}` needs at least one segment.
        assert!(r.lookup(&Method::GET, "/prod/pets//").is_err());
        assert!(r.lookup(&Method::GET, "/prod/files").is_err());
        assert_eq!(
            found(&r, Method::GET, "/prod/files/a/b/c.txt").1,
            vec!["a/b/c.txt".to_owned()]
        );
    }

    #[test]
    fn other_methods_only_reach_any() {
        let r = router(&["GET /x", "ANY /y"]);
        let trace = Method::from_bytes(b"TRACE").unwrap();
        assert!(matches!(
            r.lookup(&trace, "/prod/x"),
            Err(RouteMiss::MethodNotAllowed(_))
        ));
        assert_eq!(found(&r, trace, "/prod/y").0, "ANY /y");
    }

    #[test]
    fn duplicates_are_refused() {
        let mut r = router(&["GET /pets/{id}"]);
        let (method, pattern) = parse_route_key("GET /pets/{petId}").unwrap();
        assert_eq!(
            r.insert("prod", method, &pattern, String::new()),
            Err(DuplicateRoute { existing: 0 })
        );
        assert!(r.insert("beta", method, &pattern, String::new()).is_ok());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.~-]{1,12}".prop_filter("not a dot segment", |s| s != "." && s != "..")
    }

    proptest! {
        #[test]
        fn route_keys_never_panic(key in ".{0,64}") {
            let _ = parse_route_key(&key);
        }

        #[test]
        fn lookup_never_panics(path in "(/[^/]{0,8}){0,6}/?", method in "[A-Z]{1,8}") {
            let mut router = Router::new();
            for key in ["GET /a/{id}", "ANY /{proxy+}", "POST /a/b", "GET /"] {
                let (m, p) = parse_route_key(key).unwrap();
                router.insert("prod", m, &p, key).unwrap();
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let _ = router.lookup(&method, &format!("/prod{path}"));
        }

        #[test]
        fn literal_routes_find_themselves(segments in prop::collection::vec(segment(), 1..5)) {
            let path = format!("/{}", segments.join("/"));
            let (m, p) = parse_route_key(&format!("GET {path}")).unwrap();
            let mut router = Router::new();
            router.insert("prod", m, &p, path.clone()).unwrap();
            let full = format!("/prod{path}");
            let found = router.lookup(&Method::GET, &full).unwrap();
            prop_assert_eq!(found.route, &path);
            prop_assert!(found.params.is_empty());
        }

        #[test]
        fn params_and_greedy_capture_exactly(id in segment(), rest in prop::collection::vec(segment(), 1..4)) {
            let mut router = Router::new();
            for key in ["GET /pets/{id}", "GET /files/{id}/{proxy+}"] {
                let (m, p) = parse_route_key(key).unwrap();
                router.insert("prod", m, &p, key).unwrap();
            }
            let pets = format!("/prod/pets/{id}");
            let found = router.lookup(&Method::GET, &pets).unwrap();
            prop_assert_eq!(found.params, vec![id.as_str()]);
            let tail = rest.join("/");
            let files = format!("/prod/files/{id}/{tail}");
            let found = router.lookup(&Method::GET, &files).unwrap();
            prop_assert_eq!(found.params, vec![id.as_str(), tail.as_str()]);
        }
    }
}
