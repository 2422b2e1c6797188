//! Canary splits: which side of a canaried stage serves a request.

use std::sync::Arc;

use crate::state::Canary;

/// How a canaried stage's requests are split between its deployment and its canary's.
#[derive(Debug)]
pub struct CanarySplit {
    /// The API whose stage is split.
    pub api: Arc<str>,
    /// Of 2^32: a request goes to the canary when a random `u32` falls below it.
    threshold: u64,
    pin_header: Option<http::HeaderName>,
}

impl CanarySplit {
    pub fn new(api: &str, canary: &Canary) -> Self {
        let share = (canary.percent / 100.0).clamp(0.0, 1.0);
        Self {
            api: api.into(),
            threshold: (share * 4_294_967_296.0) as u64,
            pin_header: canary
                .pin_header
                .as_deref()
                .and_then(|h| http::HeaderName::from_bytes(h.trim().as_bytes()).ok()),
        }
    }

    /// Whether this request goes to the canary: the pin header's choice, else at random.
    pub fn to_canary(&self, headers: &http::HeaderMap) -> bool {
        if let Some(name) = &self.pin_header
            && let Some(value) = headers.get(name)
        {
            match value.as_bytes() {
                b"canary" | b"true" => return true,
                b"base" | b"false" => return false,
                _ => {}
            }
        }
        u64::from(rand::random::<u32>()) < self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_header_picks_the_side_and_the_share_holds() {
        let mut canary = Canary {
            deployment: "d2".into(),
            percent: 10.0,
            variables: Default::default(),
            use_stage_cache: false,
            pin_header: Some("X-Canary".into()),
        };
        let split = CanarySplit::new("shop", &canary);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-canary", http::HeaderValue::from_static("canary"));
        assert!((0..100).all(|_| split.to_canary(&headers)));
        headers.insert("x-canary", http::HeaderValue::from_static("base"));
        assert!((0..100).all(|_| !split.to_canary(&headers)));
        let none = http::HeaderMap::new();
        let share = (0..20_000).filter(|_| split.to_canary(&none)).count();
        assert!((1_700..=2_300).contains(&share), "{share} of 20000");
        canary.percent = 0.0;
        let never = CanarySplit::new("shop", &canary);
        assert!((0..1000).all(|_| !never.to_canary(&none)));
        canary.percent = 100.0;
        let always = CanarySplit::new("shop", &canary);
        assert!((0..1000).all(|_| always.to_canary(&none)));
    }
}
