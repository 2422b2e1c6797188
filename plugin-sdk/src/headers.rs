//! Editing header lists: the `list<tuple<string, string>>` every request and response
//! carries.

/// Lookups and edits on a header list ([`Headers`](crate::Headers)), matching names
/// ASCII-case-insensitively. Names the methods write are lowercased; values are kept as
/// given. Edgeway rejects (fails the call for) a name or value that is not a valid HTTP
/// header.
///
/// ```
/// use edgeway_plugin_sdk::{HeaderList, Headers};
///
/// let mut headers: Headers = vec![("x-a".into(), "1".into()), ("x-b".into(), "2".into())];
/// headers.rename_header("X-A", "x-renamed");
/// headers.set_header("x-b", "3");
/// headers.add_header("Vary", "origin");
/// headers.remove_header("x-missing");
/// assert_eq!(headers.header("x-renamed"), Some("1"));
/// assert_eq!(headers.header("x-b"), Some("3"));
/// assert_eq!(headers.header("vary"), Some("origin"));
/// ```
pub trait HeaderList {
    /// The first value of `name`, if present.
    fn header(&self, name: &str) -> Option<&str>;

    /// Every value of `name`, in list order.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a;

    /// Whether `name` is present.
    fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// Replaces every value of `name` with `value`: the first occurrence keeps its place,
    /// later ones are removed; appended when absent.
    fn set_header(&mut self, name: &str, value: impl Into<String>);

    /// Appends `name: value`, after any values `name` already has.
    fn add_header(&mut self, name: &str, value: impl Into<String>);

    /// Removes every value of `name`; returns how many were removed.
    fn remove_header(&mut self, name: &str) -> usize;

    /// Renames every occurrence of `from` to `to`, keeping values and positions; returns how
    /// many were renamed. Values `to` already had stay, so both sets are then under `to`.
    fn rename_header(&mut self, from: &str, to: &str) -> usize;
}

impl HeaderList for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.iter().position(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some(first) => {
                let mut index = 0;
                self.retain(|(k, _)| {
                    let keep = index <= first || !k.eq_ignore_ascii_case(name);
                    index += 1;
                    keep
                });
                self[first] = (lowercase(name), value);
            }
            None => self.push((lowercase(name), value)),
        }
    }

    fn add_header(&mut self, name: &str, value: impl Into<String>) {
        self.push((lowercase(name), value.into()));
    }

    fn remove_header(&mut self, name: &str) -> usize {
        let before = self.len();
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        before - self.len()
    }

    fn rename_header(&mut self, from: &str, to: &str) -> usize {
        let mut renamed = 0;
        for (k, _) in self
            .iter_mut()
            .filter(|(k, _)| k.eq_ignore_ascii_case(from))
        {
            *k = lowercase(to);
            renamed += 1;
        }
        renamed
    }
}

/// `name` lowercased, without a second pass when it already is (the common case).
pub(crate) fn lowercase(name: &str) -> String {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        name.to_ascii_lowercase()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn set_replaces_all_values_keeping_the_first_position() {
        let mut h = list(&[("a", "1"), ("B", "2"), ("a", "3"), ("c", "4"), ("A", "5")]);
        h.set_header("A", "9");
        assert_eq!(h, list(&[("a", "9"), ("B", "2"), ("c", "4")]));
        h.set_header("d", "new");
        assert_eq!(h.header("D"), Some("new"));
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn add_remove_rename() {
        let mut h = list(&[("a", "1"), ("b", "2"), ("A", "3")]);
        h.add_header("B", "x");
        assert_eq!(h.header_values("b").collect::<Vec<_>>(), ["2", "x"]);
        assert_eq!(h.remove_header("a"), 2);
        assert_eq!(h.remove_header("a"), 0);
        assert_eq!(h.rename_header("b", "C"), 2);
        assert_eq!(h, list(&[("c", "2"), ("c", "x")]));
        assert!(h.has_header("C"));
        assert!(!h.has_header("b"));
    }
}
