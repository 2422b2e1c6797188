//! Cache settings that requests consult: who may invalidate an entry.

/// Who may make the cache refetch an entry with `Cache-Control: max-age=0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidationPolicy {
    /// False: any client may.
    pub require_authorization: bool,
    /// What happens to a client that may not.
    pub unauthorized: UnauthorizedStrategy,
    /// Principal ids (from the route's authorizer) that may.
    pub principals: Vec<String>,
    /// Usage keys (an authorizer's `usage-key`) that may.
    pub api_keys: Vec<String>,
}

impl InvalidationPolicy {
    /// Whether a request from `principal` with `usage_key` (both set only by the route's
    /// authorizer) may invalidate.
    pub fn allows(&self, principal: Option<&str>, usage_key: Option<&str>) -> bool {
        !self.require_authorization
            || principal.is_some_and(|p| self.principals.iter().any(|q| q == p))
            || usage_key.is_some_and(|k| self.api_keys.iter().any(|q| q == k))
    }
}

/// API Gateway's `unauthorizedCacheControlHeaderStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnauthorizedStrategy {
    /// 403, and the origin sees nothing.
    FailWith403,
    /// The header is ignored; the response says so in `x-cache-invalidation: denied`.
    SucceedWithResponseHeader,
    /// The header is ignored silently.
    SucceedWithoutResponseHeader,
}
