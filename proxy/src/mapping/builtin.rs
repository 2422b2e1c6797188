//! The built-in mapper: the `mapping-template` component (plugins/mapping-template), embedded
//! in the binary by `build.rs` when scripts/build-plugins.sh has built it (both of the
//! README's commands do). Config that uses templates gets it as a plugin named
//! [`NAME`] unless it configures a plugin of that name itself.

/// The built-in mapper's plugin name (and a user's plugin of this name replaces it).
pub const NAME: &str = "mapping-template";

/// The `file` a built-in plugin's spec names: read from the binary, not the disk.
pub const FILE: &str = "builtin:mapping-template";

/// Per-call deadline of the built-in mapper: a template is bounded by its own limits first
/// (1,000 iterations per `#foreach`, 5 million steps), the deadline is the backstop.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

/// The component's bytes, when this binary was built with it.
pub fn component() -> Option<&'static [u8]> {
    #[cfg(edgeway_builtin_mapper)]
    {
        Some(include_bytes!(env!("EDGEWAY_MAPPER_WASM_PATH")))
    }
    #[cfg(not(edgeway_builtin_mapper))]
    {
        None
    }
}
