//! Host-side bindings for the `edgeway:plugin` WIT package (`wit/plugin.wit`).
//!
//! The `host` world is generated once; the role worlds map their imports onto it, so
//! the shared records (`types::Request`, `types::Response`, ...) and the import traits exist
//! once. Exports are async because calls run on the request's task and may yield (epoch
//! deadline) or wait on outbound HTTP.

#![allow(missing_debug_implementations)]

/// Imports every role shares: logging, config, key-value store, metrics, outbound HTTP.
pub mod host {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "host",
        imports: { "edgeway:plugin/http.fetch": async },
    });
}

/// `world authorizer`: `authorize(identity, request) -> decision`.
pub mod authorizer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "authorizer",
        exports: { default: async },
        with: { "edgeway:plugin": super::host::edgeway::plugin },
    });
}

/// `world transformer`: `on-request` and `on-response`.
pub mod transformer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transformer",
        exports: { default: async },
        with: { "edgeway:plugin": super::host::edgeway::plugin },
    });
}

/// `world handler`: `handle(request) -> response`.
pub mod handler {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "handler",
        exports: { default: async },
        with: { "edgeway:plugin": super::host::edgeway::plugin },
    });
}

/// `world lambda`: `invoke(event, context) -> result`, JSON text both ways.
pub mod lambda {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lambda",
        exports: { default: async },
        with: { "edgeway:plugin/types": super::host::edgeway::plugin::types,
                "edgeway:plugin/log": super::host::edgeway::plugin::log,
                "edgeway:plugin/config": super::host::edgeway::plugin::config,
                "edgeway:plugin/kv": super::host::edgeway::plugin::kv,
                "edgeway:plugin/metrics": super::host::edgeway::plugin::metrics,
                "edgeway:plugin/http": super::host::edgeway::plugin::http },
    });
}

/// `world mapper`: `load(id, source)` and `render(id, input) -> rendered`.
pub mod mapper {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "mapper",
        exports: { default: async },
        with: { "edgeway:plugin/types": super::host::edgeway::plugin::types,
                "edgeway:plugin/log": super::host::edgeway::plugin::log,
                "edgeway:plugin/config": super::host::edgeway::plugin::config,
                "edgeway:plugin/kv": super::host::edgeway::plugin::kv,
                "edgeway:plugin/metrics": super::host::edgeway::plugin::metrics,
                "edgeway:plugin/http": super::host::edgeway::plugin::http },
    });
}

pub use lambda::edgeway::plugin::lambda_call::Invocation;
pub use mapper::edgeway::plugin::mapping::{MappingInput, RenderError, Rendered};

pub use host::edgeway::plugin::types::{
    Allow, Decision, Principal, Request, RequestFlow, Response,
};

impl crate::telemetry::access_log::Caller for Principal {
    fn principal_id(&self) -> &str {
        &self.id
    }

    fn context_value(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
