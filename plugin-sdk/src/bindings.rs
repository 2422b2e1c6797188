//! The code wit-bindgen generates from `wit/plugin.wit`.
//!
//! `host` is generated first and owns the shared `types` record and the host-import
//! interfaces; the role worlds map every interface onto it with `with:`, so an
//! authorizer, a transformer and a handler all speak in the same `Request`, `Response` and
//! friends. Each role world contributes only its exports and an export macro
//! (`pub_export_macro`), which the SDK's `export_*!` macros invoke in the plugin's crate.
//!
//! The libraries' component-type sections carry imports only (wit-bindgen strips exports
//! when `pub_export_macro` is on), so linking all three worlds into one plugin is harmless:
//! the world a plugin exports is the one its export macro embeds.

pub mod host {
    wit_bindgen::generate!({
        path: "../wit",
        world: "host",
        additional_derives: [PartialEq, Eq],
    });
}

pub mod authorizer {
    wit_bindgen::generate!({
        path: "../wit",
        world: "authorizer",
        pub_export_macro: true,
        default_bindings_module: "$crate::__private::authorizer",
        with: {
            "edgeway:plugin/types@0.1.0": crate::bindings::host::edgeway::plugin::types,
            "edgeway:plugin/log@0.1.0": crate::bindings::host::edgeway::plugin::log,
            "edgeway:plugin/config@0.1.0": crate::bindings::host::edgeway::plugin::config,
            "edgeway:plugin/kv@0.1.0": crate::bindings::host::edgeway::plugin::kv,
            "edgeway:plugin/metrics@0.1.0": crate::bindings::host::edgeway::plugin::metrics,
            "edgeway:plugin/http@0.1.0": crate::bindings::host::edgeway::plugin::http,
        },
    });
}

pub mod transformer {
    wit_bindgen::generate!({
        path: "../wit",
        world: "transformer",
        pub_export_macro: true,
        default_bindings_module: "$crate::__private::transformer",
        with: {
            "edgeway:plugin/types@0.1.0": crate::bindings::host::edgeway::plugin::types,
            "edgeway:plugin/log@0.1.0": crate::bindings::host::edgeway::plugin::log,
            "edgeway:plugin/config@0.1.0": crate::bindings::host::edgeway::plugin::config,
            "edgeway:plugin/kv@0.1.0": crate::bindings::host::edgeway::plugin::kv,
            "edgeway:plugin/metrics@0.1.0": crate::bindings::host::edgeway::plugin::metrics,
            "edgeway:plugin/http@0.1.0": crate::bindings::host::edgeway::plugin::http,
        },
    });
}

pub mod handler {
    wit_bindgen::generate!({
        path: "../wit",
        world: "handler",
        pub_export_macro: true,
        default_bindings_module: "$crate::__private::handler",
        with: {
            "edgeway:plugin/types@0.1.0": crate::bindings::host::edgeway::plugin::types,
            "edgeway:plugin/log@0.1.0": crate::bindings::host::edgeway::plugin::log,
            "edgeway:plugin/config@0.1.0": crate::bindings::host::edgeway::plugin::config,
            "edgeway:plugin/kv@0.1.0": crate::bindings::host::edgeway::plugin::kv,
            "edgeway:plugin/metrics@0.1.0": crate::bindings::host::edgeway::plugin::metrics,
            "edgeway:plugin/http@0.1.0": crate::bindings::host::edgeway::plugin::http,
        },
    });
}

pub mod mapper {
    wit_bindgen::generate!({
        path: "../wit",
        world: "mapper",
        pub_export_macro: true,
        default_bindings_module: "$crate::__private::mapper",
        additional_derives: [PartialEq, Eq],
        with: {
            "edgeway:plugin/types@0.1.0": crate::bindings::host::edgeway::plugin::types,
            "edgeway:plugin/log@0.1.0": crate::bindings::host::edgeway::plugin::log,
            "edgeway:plugin/config@0.1.0": crate::bindings::host::edgeway::plugin::config,
            "edgeway:plugin/kv@0.1.0": crate::bindings::host::edgeway::plugin::kv,
            "edgeway:plugin/metrics@0.1.0": crate::bindings::host::edgeway::plugin::metrics,
            "edgeway:plugin/http@0.1.0": crate::bindings::host::edgeway::plugin::http,
        },
    });
}

pub mod lambda {
    wit_bindgen::generate!({
        path: "../wit",
        world: "lambda",
        pub_export_macro: true,
        default_bindings_module: "$crate::__private::lambda",
        with: {
            "edgeway:plugin/types@0.1.0": crate::bindings::host::edgeway::plugin::types,
            "edgeway:plugin/log@0.1.0": crate::bindings::host::edgeway::plugin::log,
            "edgeway:plugin/config@0.1.0": crate::bindings::host::edgeway::plugin::config,
            "edgeway:plugin/kv@0.1.0": crate::bindings::host::edgeway::plugin::kv,
            "edgeway:plugin/metrics@0.1.0": crate::bindings::host::edgeway::plugin::metrics,
            "edgeway:plugin/http@0.1.0": crate::bindings::host::edgeway::plugin::http,
        },
    });
}

pub(crate) use host::edgeway::plugin as imports;
