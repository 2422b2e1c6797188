//! The one wasmtime `Engine` of a node, its `Linker`, and the epoch ticker that enforces call
//! deadlines.
//!
//! Instances come from the pooling allocator: memories, tables and fiber stacks are slots
//! reserved once, and a fresh instance maps its memory's initial image copy-on-write instead
//! of copying it. When an instance ends, only the pages it wrote are put back (found with
//! Linux's `PAGEMAP_SCAN`), so the slot is ready for the next instance of the same plugin
//! without system calls to unmap or page faults to map again. That is what makes a fresh
//! instance per request affordable (`cargo bench -p edgeway --bench plugins`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::state::{HostImports, PluginState};

/// How often the epoch advances. A call's deadline is checked on each tick, so it is honoured
/// to within one tick; a long call also yields to the runtime on each tick, so one busy plugin
/// cannot hold a worker thread for its whole deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// The largest memory any plugin may be given (`memory_mib` is capped to this).
pub const MAX_PLUGIN_MEMORY: u64 = 1024 * 1024 * 1024;

/// Pool sizes: how many instances may exist at once across all plugins.
const TOTAL_COMPONENT_INSTANCES: u32 = 1000;

/// The engine, linker and ticker every plugin of the node shares.
pub struct PluginEngine {
    pub engine: Engine,
    pub linker: Linker<PluginState>,
    ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine").finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// Builds the engine and starts its epoch ticker thread (stopped when this is dropped).
    pub fn new() -> anyhow::Result<Self> {
        let engine = Engine::new(&engine_config())?;
        let mut linker = Linker::<PluginState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        super::bindings::host::Host_::add_to_linker::<PluginState, HostImports>(
            &mut linker,
            PluginState::imports,
        )?;
        let ticker = Arc::new(AtomicBool::new(true));
        let running = ticker.clone();
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("edgeway-epoch".into())
            .spawn(move || {
                while running.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self {
            engine,
            linker,
            ticker,
        })
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.ticker.store(false, Ordering::Relaxed);
    }
}

fn engine_config() -> Config {
    let pagemap_scan = PoolingAllocationConfig::is_pagemap_scan_available();
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(TOTAL_COMPONENT_INSTANCES)
        // Components built from JavaScript or Python hold several core modules each.
        .total_core_instances(TOTAL_COMPONENT_INSTANCES * 4)
        .total_memories(TOTAL_COMPONENT_INSTANCES * 2)
        .total_tables(TOTAL_COMPONENT_INSTANCES * 4)
        .total_stacks(TOTAL_COMPONENT_INSTANCES)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_memories_per_module(1)
        .max_tables_per_module(4)
        .table_elements(100_000)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .max_memory_size(usize::try_from(MAX_PLUGIN_MEMORY).unwrap_or(usize::MAX))
        .linear_memory_keep_resident(memory_keep_resident(pagemap_scan))
        // Tables are reset the same way; most are a page or two.
        .table_keep_resident(1 << 16)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        // A fiber stack holds only the host's and compiled code's frames, which the next
        // instance cannot read, so it is not zeroed between instances.
        .async_stack_zeroing(false)
        .async_stack_size(2 << 20)
        .max_wasm_stack(1 << 20)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// How much of a linear memory is reset in place, rather than given back to the kernel, when
/// its instance ends.
///
/// With `PAGEMAP_SCAN` (Linux 6.7+) this caps the pages the instance wrote that are copied back
/// from the initial image: a call touches a few pages of stack, data and heap, all reset in
/// place, and only an instance that wrote more than this has the rest unmapped. Without it,
/// the *lowest* bytes are reset whether written or not; those are the shadow stack in
/// toolchains that lay it out first (Rust does), mostly untouched, so resetting them costs more
/// (a 1 MiB fill) than faulting back the few pages a call really uses.
fn memory_keep_resident(pagemap_scan: bool) -> usize {
    if pagemap_scan { 1 << 20 } else { 0 }
}
