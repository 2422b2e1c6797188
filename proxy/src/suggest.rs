//! "Did you mean ...?" for names a user got almost right: config keys, response types, path
//! parameters.

/// The candidate closest to `given` by edit distance, if it is close enough to be a typo.
pub fn did_you_mean<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (given.chars().count() / 3).max(1);
    candidates
        .map(|c| {
            // A key cut short (`max_body` for `max_body_bytes`) is as likely as a typo.
            let distance = if given.len() >= 3 && c.len() > given.len() && c.starts_with(given) {
                1
            } else {
                edit_distance(given, c)
            };
            (distance, c)
        })
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        assert_eq!(did_you_mean("zzzz", ["limits", "listen"].into_iter()), None);
        assert_eq!(
            did_you_mean("version", ["versions"].into_iter()),
            Some("versions")
        );
        assert_eq!(edit_distance("versoin", "version"), 2);
    }
}
