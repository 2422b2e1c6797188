//! Route keys as users write them: `"GET /pets/{id}"`, `"ANY /files/{proxy+}"`.

use std::fmt;

use http::Method;

/// The method part of a route. `Any` matches every method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    Any,
}

impl RouteMethod {
    /// The names accepted in config, for error messages.
    pub const NAMES: &'static str = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY";

    /// Parses a method name as written in config (upper case).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "HEAD" => Self::Head,
            "OPTIONS" => Self::Options,
            "ANY" => Self::Any,
            _ => return None,
        })
    }

    /// The slot of a request method in a route node's method table; `None` for methods only an
    /// `ANY` route can serve.
    pub(super) fn slot_of(method: &Method) -> Option<usize> {
        Some(match *method {
            Method::GET => 0,
            Method::POST => 1,
            Method::PUT => 2,
            Method::PATCH => 3,
            Method::DELETE => 4,
            Method::HEAD => 5,
            Method::OPTIONS => 6,
            _ => return None,
        })
    }

    /// The slot of this route method; `None` for `Any`.
    pub(super) fn slot(self) -> Option<usize> {
        match self {
            Self::Get => Some(0),
            Self::Post => Some(1),
            Self::Put => Some(2),
            Self::Patch => Some(3),
            Self::Delete => Some(4),
            Self::Head => Some(5),
            Self::Options => Some(6),
            Self::Any => None,
        }
    }

    pub(super) const SLOT_NAMES: [&'static str; 7] =
        ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
}

impl fmt::Display for RouteMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.slot() {
            Some(slot) => Self::SLOT_NAMES[slot],
            None => "ANY",
        })
    }
}

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// `{name}`: matches any one non-empty segment.
    Param(String),
    /// `{name+}`: matches one or more remaining segments; only last.
    Greedy(String),
}

/// Why a route path cannot be parsed; each names the path, and the segment at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutePatternError {
    #[error("path \"{path}\" must start with '/'")]
    NoLeadingSlash { path: String },
    #[error("path \"{path}\" has an empty segment")]
    EmptySegment { path: String },
    #[error(
        "segment \"{segment}\" of \"{path}\": unbalanced '{{'; a parameter is a whole segment, \"{{name}}\""
    )]
    UnclosedParameter { segment: String, path: String },
    #[error(
        "segment \"{segment}\" of \"{path}\": parameter names use letters, digits, '_', '-' and '.'"
    )]
    ParameterName { segment: String, path: String },
    #[error("greedy parameter \"{segment}\" must be the last segment of \"{path}\"")]
    GreedyNotLast { segment: String, path: String },
    #[error("segment \"{segment}\" of \"{path}\": unbalanced or misplaced '{{' or '}}'")]
    MisplacedBrace { segment: String, path: String },
    #[error("parameter \"{name}\" appears twice in \"{path}\"")]
    DuplicateParameter { name: String, path: String },
}

/// Why a route key cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteKeyError {
    #[error("route \"{key}\" must be \"METHOD /path\", e.g. \"GET /pets/{{id}}\"")]
    NoMethod { key: String },
    #[error(
        "unknown method \"{method}\" in route \"{key}\"; expected one of {}",
        RouteMethod::NAMES
    )]
    UnknownMethod { method: String, key: String },
    #[error(transparent)]
    Pattern(#[from] RoutePatternError),
}

/// A parsed route path such as `/pets/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    segments: Vec<Segment>,
}

impl RoutePattern {
    /// `/`: the stage itself.
    pub fn root() -> Self {
        Self {
            segments: Vec::new(),
        }
    }

    /// Parses a path as written after the method. Errors say what is wrong with it.
    pub fn parse(path: &str) -> Result<Self, RoutePatternError> {
        use RoutePatternError as E;
        let Some(rest) = path.strip_prefix('/') else {
            return Err(E::NoLeadingSlash { path: path.into() });
        };
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(Self { segments });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if part.is_empty() {
                if last {
                    // A trailing slash names the same route as without it.
                    break;
                }
                return Err(E::EmptySegment { path: path.into() });
            }
            let segment = if let Some(inner) = part.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return Err(E::UnclosedParameter {
                        segment: (*part).into(),
                        path: path.into(),
                    });
                };
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
                {
                    return Err(E::ParameterName {
                        segment: (*part).into(),
                        path: path.into(),
                    });
                }
                if greedy {
                    if !last {
                        return Err(E::GreedyNotLast {
                            segment: (*part).into(),
                            path: path.into(),
                        });
                    }
                    Segment::Greedy(name.to_owned())
                } else {
                    Segment::Param(name.to_owned())
                }
            } else {
                if part.contains(['{', '}']) {
                    return Err(E::MisplacedBrace {
                        segment: (*part).into(),
                        path: path.into(),
                    });
                }
                Segment::Literal((*part).to_owned())
            };
            segments.push(segment);
        }
        let mut names: Vec<&str> = segments.iter().filter_map(Segment::param_name).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(E::DuplicateParameter {
                name: pair[0].into(),
                path: path.into(),
            });
        }
        Ok(Self { segments })
    }

    /// The segments in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Parameter names in the order their values appear in a match.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(Segment::param_name)
    }

    /// The pattern with parameter names erased: two routes with the same shape and method
    /// can never both be reached.
    pub fn shape(&self) -> String {
        let mut shape = String::new();
        for segment in &self.segments {
            shape.push('/');
            shape.push_str(match segment {
                Segment::Literal(text) => text,
                Segment::Param(_) => "{}",
                Segment::Greedy(_) => "{+}",
            });
        }
        shape
    }
}

impl Segment {
    fn param_name(&self) -> Option<&str> {
        match self {
            Segment::Literal(_) => None,
            Segment::Param(name) | Segment::Greedy(name) => Some(name),
        }
    }
}

/// Splits `"GET /pets/{id}"` into its method and pattern.
pub fn parse_route_key(key: &str) -> Result<(RouteMethod, RoutePattern), RouteKeyError> {
    let Some((method, path)) = key.trim().split_once(' ') else {
        return Err(RouteKeyError::NoMethod { key: key.into() });
    };
    let method = RouteMethod::parse(method).ok_or_else(|| RouteKeyError::UnknownMethod {
        method: method.into(),
        key: key.into(),
    })?;
    let pattern = RoutePattern::parse(path.trim())?;
    Ok((method, pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_params_and_greedy() {
        let (method, pattern) = parse_route_key("ANY /files/{id}/{proxy+}").unwrap();
        assert_eq!(method, RouteMethod::Any);
        assert_eq!(
            pattern.segments(),
            &[
                Segment::Literal("files".into()),
                Segment::Param("id".into()),
                Segment::Greedy("proxy".into())
            ]
        );
        assert_eq!(pattern.shape(), "/files/{}/{+}");
        assert_eq!(RoutePattern::parse("/").unwrap().segments(), &[]);
        assert_eq!(
            RoutePattern::parse("/pets/").unwrap(),
            RoutePattern::parse("/pets").unwrap()
        );
    }

    #[test]
    fn rejects_bad_patterns() {
        for (key, needle) in [
            ("GET /a/{proxy+}/b", "must be the last segment"),
            ("GET /a/{id", "unbalanced"),
            ("GET /a/id}", "unbalanced"),
            ("GET /a/x{id}", "unbalanced"),
            ("GET /a/{}", "parameter names"),
            ("GET /a//b", "empty segment"),
            ("GET a/b", "must start with '/'"),
            ("FETCH /a", "unknown method"),
            ("GET/a", "must be \"METHOD /path\""),
            ("GET /{id}/{id}", "appears twice"),
        ] {
            let err = parse_route_key(key).unwrap_err().to_string();
            assert!(err.contains(needle), "{key}: {err}");
        }
    }
}
