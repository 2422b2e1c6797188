//! Signing keys: derived from a secret and a credential scope by four HMACs, and cached per
//! scope so that a client's second request of the day costs one HMAC, not five.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use ring::hmac;

use super::Secret;

/// Scopes (access key × day × region × service) kept at most.
const MAX_CACHED_KEYS: u64 = 10_000;
/// A key unused this long is dropped; a day's keys go soon after the day ends.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3_600);

/// A derived key and the secret it came from, so a rotated secret is never served stale.
pub(super) struct SigningKey {
    secret: Secret,
    pub key: hmac::Key,
}

/// Signing keys by credential (`keyid/yyyymmdd/region/service/aws4_request`).
pub(super) struct SigningKeys {
    cache: Cache<String, Arc<SigningKey>>,
}

impl SigningKeys {
    pub fn new() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(MAX_CACHED_KEYS)
                .time_to_idle(IDLE_TIMEOUT)
                .build(),
        }
    }

    /// The cached key for `credential` if it was derived from `secret`; `None` otherwise.
    pub fn cached(&self, credential: &str, secret: &Secret) -> Option<Arc<SigningKey>> {
        self.cache
            .get(credential)
            .filter(|cached| cached.secret == *secret)
    }

    /// Keeps `key` for `credential`; called only once a signature made with it has verified,
    /// so made-up scopes never take room.
    pub fn remember(&self, credential: &str, key: Arc<SigningKey>) {
        self.cache.insert(credential.to_owned(), key);
    }

    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub(super) fn derive(secret: &Secret, date: &str, region: &str, service: &str) -> SigningKey {
    let mut k_secret = Vec::with_capacity(4 + secret.expose().len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.expose().as_bytes());
    let k_date = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &k_secret),
        date.as_bytes(),
    );
    let k_region = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k_date.as_ref()),
        region.as_bytes(),
    );
    let k_service = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k_region.as_ref()),
        service.as_bytes(),
    );
    let k_signing = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k_service.as_ref()),
        b"aws4_request",
    );
    SigningKey {
        secret: secret.clone(),
        key: hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signing-key example of AWS's SigV4 documentation.
    #[test]
    fn derives_the_documented_key() {
        let key = derive(
            &Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            "20120215",
            "us-east-1",
            "iam",
        );
        // The key itself is opaque in ring; a MAC made with it shows it is the same key.
        let mut k_signing = [0u8; 32];
        let documented = "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d";
        for (i, byte) in k_signing.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&documented[2 * i..2 * i + 2], 16).unwrap();
        }
        let expected = hmac::Key::new(hmac::HMAC_SHA256, &k_signing);
        assert_eq!(
            hmac::sign(&key.key, b"message").as_ref(),
            hmac::sign(&expected, b"message").as_ref()
        );
    }

    #[test]
    fn a_rotated_secret_misses_the_cache() {
        let keys = SigningKeys::new();
        let credential = "AKID/20120215/us-east-1/iam/aws4_request";
        let old = Secret::new("old");
        keys.remember(
            credential,
            Arc::new(derive(&old, "20120215", "us-east-1", "iam")),
        );
        assert!(keys.cached(credential, &old).is_some());
        assert!(keys.cached(credential, &Secret::new("new")).is_none());
    }
}
