//! Exporting a role implementation as the component's exports.
//!
//! Each `export_*!` macro expands, in the plugin's crate, to a private type implementing the
//! wit-bindgen `Guest` trait of the role's world by forwarding to the plugin's trait impl,
//! a thread-local [`Instance`] holding the plugin value, and wit-bindgen's own export macro,
//! which writes the canonical-ABI functions and the component-type section naming the
//! world. The unsafe ABI glue comes from this crate's macros, so a plugin crate can keep
//! `unsafe_code = "forbid"`.

use std::cell::OnceCell;
use std::fmt;

use crate::Error;

/// The plugin value of one instance, built on its first call.
///
/// A component instance is single-threaded, so a thread-local `OnceCell` is the whole
/// synchronisation; on wasm32 a thread-local is a plain static, so a call costs one
/// initialised-check and no allocation beyond what the plugin does.
#[doc(hidden)]
pub struct Instance<T> {
    plugin: OnceCell<Result<T, String>>,
}

impl<T> Instance<T> {
    /// An instance whose plugin is not built yet.
    pub const fn new() -> Self {
        Instance {
            plugin: OnceCell::new(),
        }
    }

    /// Runs `call` on the plugin, building it with `new` first if this is the first call.
    /// A failed `new` is kept: every call fails with its message.
    pub fn call<R>(
        &self,
        new: fn() -> Result<T, Error>,
        call: impl FnOnce(&T) -> Result<R, Error>,
    ) -> Result<R, String> {
        match self
            .plugin
            .get_or_init(|| new().map_err(|e| format!("plugin setup failed: {e}")))
        {
            Ok(plugin) => call(plugin).map_err(Error::into_message),
            Err(message) => Err(message.clone()),
        }
    }
}

impl<T> Default for Instance<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Instance<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.plugin.get() {
            None => "not built",
            Some(Ok(_)) => "built",
            Some(Err(_)) => "failed",
        };
        f.debug_struct("Instance").field("plugin", &state).finish()
    }
}

/// Exports an [`Authorizer`](crate::Authorizer) implementation as the component's
/// `authorizer` world. Use once per crate, at the top level.
///
/// ```no_run,standalone_crate
/// use edgeway_plugin_sdk::{Authorizer, Decision, Error, Identity, Request, export_authorizer};
///
/// struct AllowAll;
///
/// impl Authorizer for AllowAll {
///     fn new() -> Result<Self, Error> {
///         Ok(AllowAll)
///     }
///     fn authorize(&self, _identity: Identity, _request: Request) -> Result<Decision, Error> {
///         Ok(Decision::allow("anyone"))
///     }
/// }
///
/// export_authorizer!(AllowAll);
/// ```
#[macro_export]
macro_rules! export_authorizer {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __EDGEWAY_INSTANCE: $crate::__private::Instance<$plugin> =
                    const { $crate::__private::Instance::new() };
            }

            struct __EdgewayExport;

            impl $crate::__private::authorizer::Guest for __EdgewayExport {
                fn authorize(
                    identity: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    request: $crate::Request,
                ) -> ::core::result::Result<$crate::Decision, ::std::string::String> {
                    __EDGEWAY_INSTANCE.with(|instance| {
                        instance.call(<$plugin as $crate::Authorizer>::new, |plugin| {
                            <$plugin as $crate::Authorizer>::authorize(
                                plugin,
                                $crate::Identity::from(identity),
                                request,
                            )
                        })
                    })
                }
            }

            $crate::__private::authorizer::export!(
                __EdgewayExport with_types_in $crate::__private::authorizer
            );
        };
    };
}

/// Exports a [`Transformer`](crate::Transformer) implementation as the component's
/// `transformer` world. Use once per crate, at the top level.
///
/// ```no_run,standalone_crate
/// use edgeway_plugin_sdk::{Error, Transformer, export_transformer};
///
/// struct PassThrough;
///
/// impl Transformer for PassThrough {
///     fn new() -> Result<Self, Error> {
///         Ok(PassThrough)
///     }
/// }
///
/// export_transformer!(PassThrough);
/// ```
#[macro_export]
macro_rules! export_transformer {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __EDGEWAY_INSTANCE: $crate::__private::Instance<$plugin> =
                    const { $crate::__private::Instance::new() };
            }

            struct __EdgewayExport;

            impl $crate::__private::transformer::Guest for __EdgewayExport {
                fn on_request(
                    request: $crate::Request,
                ) -> ::core::result::Result<$crate::RequestFlow, ::std::string::String> {
                    __EDGEWAY_INSTANCE.with(|instance| {
                        instance.call(<$plugin as $crate::Transformer>::new, |plugin| {
                            <$plugin as $crate::Transformer>::on_request(plugin, request)
                        })
                    })
                }

                fn on_response(
                    request: $crate::Request,
                    response: $crate::Response,
                ) -> ::core::result::Result<$crate::Response, ::std::string::String> {
                    __EDGEWAY_INSTANCE.with(|instance| {
                        instance.call(<$plugin as $crate::Transformer>::new, |plugin| {
                            <$plugin as $crate::Transformer>::on_response(plugin, request, response)
                        })
                    })
                }
            }

            $crate::__private::transformer::export!(
                __EdgewayExport with_types_in $crate::__private::transformer
            );
        };
    };
}

/// Exports a [`Handler`](crate::Handler) implementation as the component's `handler` world.
/// Use once per crate, at the top level.
///
/// ```no_run,standalone_crate
/// use edgeway_plugin_sdk::{Error, Handler, Request, Response, export_handler};
///
/// struct NoContent;
///
/// impl Handler for NoContent {
///     fn new() -> Result<Self, Error> {
///         Ok(NoContent)
///     }
///     fn handle(&self, _request: Request) -> Result<Response, Error> {
///         Ok(Response::new(204))
///     }
/// }
///
/// export_handler!(NoContent);
/// ```
#[macro_export]
macro_rules! export_handler {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __EDGEWAY_INSTANCE: $crate::__private::Instance<$plugin> =
                    const { $crate::__private::Instance::new() };
            }

            struct __EdgewayExport;

            impl $crate::__private::handler::Guest for __EdgewayExport {
                fn handle(
                    request: $crate::Request,
                ) -> ::core::result::Result<$crate::Response, ::std::string::String> {
                    __EDGEWAY_INSTANCE.with(|instance| {
                        instance.call(<$plugin as $crate::Handler>::new, |plugin| {
                            <$plugin as $crate::Handler>::handle(plugin, request)
                        })
                    })
                }
            }

            $crate::__private::handler::export!(
                __EdgewayExport with_types_in $crate::__private::handler
            );
        };
    };
}

/// Exports a [`Mapper`](crate::Mapper) implementation as the component's `mapper` world.
/// Use once per crate, at the top level.
#[macro_export]
macro_rules! export_mapper {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __EDGEWAY_INSTANCE: $crate::__private::Instance<$plugin> =
                    const { $crate::__private::Instance::new() };
            }

            struct __EdgewayExport;

            impl $crate::__private::mapper::Guest for __EdgewayExport {
                fn load(
                    id: u64,
                    source: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    __EDGEWAY_INSTANCE.with(|instance| {
                        instance.call(<$plugin as $crate::Mapper>::new, |plugin| {
                            <$plugin as $crate::Mapper>::load(plugin, id, source)
                        })
                    })
                }

                fn render(
                    id: u64,
                    input: $crate::MappingInput,
                ) -> ::core::result::Result<$crate::Rendered, $crate::RenderError> {
                    __EDGEWAY_INSTANCE.with(|instance| {
                        let mut outcome = None;
                        let built = instance.call(<$plugin as $crate::Mapper>::new, |plugin| {
                            outcome = Some(<$plugin as $crate::Mapper>::render(plugin, id, input));
                            Ok(())
                        });
                        match (built, outcome) {
                            (Ok(()), Some(outcome)) => outcome,
                            (Err(message), _) => Err($crate::RenderError::Failed(message)),
                            (Ok(()), None) => {
                                Err($crate::RenderError::Failed("the mapper did not run".into()))
                            }
                        }
                    })
                }
            }

            $crate::__private::mapper::export!(
                __EdgewayExport with_types_in $crate::__private::mapper
            );
        };
    };
}

/// Exports a [`Lambda`](crate::Lambda) implementation as the component's `lambda` world.
/// Use once per crate, at the top level. The event is parsed from JSON before `invoke` and
/// the result written as JSON after it; an event that is not JSON fails the call.
#[macro_export]
macro_rules! export_lambda {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __EDGEWAY_INSTANCE: $crate::__private::Instance<$plugin> =
                    const { $crate::__private::Instance::new() };
            }

            struct __EdgewayExport;

            impl $crate::__private::lambda::Guest for __EdgewayExport {
                fn invoke(
                    event: ::std::string::String,
                    context: $crate::__private::lambda::edgeway::plugin::lambda_call::Invocation,
                ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    let context = $crate::__private::lambda_context(context);
                    __EDGEWAY_INSTANCE.with(|instance| {
                        instance.call(<$plugin as $crate::Lambda>::new, |plugin| {
                            let event = $crate::__private::parse_event(&event)?;
                            let result =
                                <$plugin as $crate::Lambda>::invoke(plugin, event, &context)?;
                            ::core::result::Result::Ok(result.to_string())
                        })
                    })
                }
            }

            $crate::__private::lambda::export!(
                __EdgewayExport with_types_in $crate::__private::lambda
            );
        };
    };
}

/// The [`LambdaContext`](crate::LambdaContext) of a call, its deadline counted from now.
#[doc(hidden)]
pub fn lambda_context(
    invocation: crate::bindings::lambda::edgeway::plugin::lambda_call::Invocation,
) -> crate::LambdaContext {
    crate::LambdaContext {
        request_id: invocation.request_id,
        function_name: invocation.function_name,
        deadline: std::time::Instant::now()
            + std::time::Duration::from_millis(invocation.remaining_ms),
    }
}

/// The event of a call, parsed.
#[doc(hidden)]
pub fn parse_event(event: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(event).map_err(|e| Error::msg(format!("the event is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        static BUILT: Cell<u32> = const { Cell::new(0) };
    }

    struct Counter;

    fn build() -> Result<Counter, Error> {
        BUILT.with(|b| b.set(b.get() + 1));
        Ok(Counter)
    }

    #[test]
    fn builds_once_and_keeps_a_failed_build() {
        let instance = Instance::<Counter>::new();
        for _ in 0..3 {
            assert_eq!(instance.call(build, |_| Ok(1)), Ok(1));
        }
        assert_eq!(BUILT.with(Cell::get), 1);
        assert_eq!(
            instance.call(build, |_| Err::<(), _>(Error::msg("no"))),
            Err("no".into())
        );

        let failed = Instance::<Counter>::new();
        let fail = || Err(Error::msg("bad config"));
        assert_eq!(
            failed.call(fail, |_| Ok(1)),
            Err("plugin setup failed: bad config".into())
        );
        assert_eq!(
            failed.call(build, |_| Ok(1)),
            Err("plugin setup failed: bad config".into())
        );
    }
}
