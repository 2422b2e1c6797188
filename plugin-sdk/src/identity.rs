//! The identity sources an authorizer is called with.

/// The identity sources the authorizer's config names, as
/// `("header.authorization", "Bearer ...")`, in config order.
///
/// Edgeway caches the decision per identity for the authorizer's `result_ttl_s`, so a
/// decision should depend on the identity alone.
///
/// ```
/// use edgeway_plugin_sdk::Identity;
///
/// let identity = Identity::from(vec![
///     ("header.authorization".to_owned(), "Bearer abc".to_owned()),
///     ("query.key".to_owned(), "k1".to_owned()),
/// ]);
/// assert_eq!(identity.first(), Some("Bearer abc"));
/// assert_eq!(identity.get("query.key"), Some("k1"));
/// assert_eq!(identity.get("header.x-missing"), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    sources: Vec<(String, String)>,
}

impl Identity {
    /// The value of the first source; `None` when the list is empty.
    pub fn first(&self) -> Option<&str> {
        self.sources.first().map(|(_, v)| v.as_str())
    }

    /// The value of source `source` (`header.authorization`, `query.key`, ... exactly as the
    /// host names it), if present.
    pub fn get(&self, source: &str) -> Option<&str> {
        self.sources
            .iter()
            .find(|(k, _)| k == source)
            .map(|(_, v)| v.as_str())
    }

    /// `(source, value)` pairs in config order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sources.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many sources there are.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The pairs themselves.
    pub fn into_inner(self) -> Vec<(String, String)> {
        self.sources
    }
}

impl From<Vec<(String, String)>> for Identity {
    fn from(sources: Vec<(String, String)>) -> Self {
        Identity { sources }
    }
}
