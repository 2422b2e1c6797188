//! Test plugin: a handler that answers 200 `version=<X>` with header `x-plugin-version: <X>`,
//! for the host's hot-swap tests. `X` is `EDGEWAY_TEST_PLUGIN_VERSION` at build time, `1`
//! when unset; scripts/build-plugins.sh builds it as `1` and `2`.

use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};

const VERSION: &str = match option_env!("EDGEWAY_TEST_PLUGIN_VERSION") {
    Some(version) => version,
    None => "1",
};

struct Version;

impl Handler for Version {
    fn new() -> Result<Self, Error> {
        Ok(Version)
    }

    fn handle(&self, _request: Request) -> Result<Response, Error> {
        Ok(Response::text(200, format!("version={VERSION}"))
            .with_header("x-plugin-version", VERSION))
    }
}

export_handler!(Version);
