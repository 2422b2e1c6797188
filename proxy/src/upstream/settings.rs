//! How the gateway connects to origins (`upstream` in config).

use std::sync::Arc;
use std::time::Duration;

/// How the gateway connects to origins.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// System roots plus `ca_file`, for https origins.
    pub tls: Arc<rustls::ClientConfig>,
    pub connect_timeout: Duration,
    pub pool_idle_timeout: Duration,
    /// Identifies the settings above (the trust roots by a digest of their contents), so a
    /// reload that keeps them keeps warm connections.
    pub fingerprint: String,
}
