//! The one wasmtime `Engine` of a node, its `Linker`, and the epoch ticker that enforces call
//! deadlines.
//!
//! Instances come from the pooling allocator: memories, tables and fiber stacks are slots
//! reserved once, and a fresh instance maps its memory's initial image copy-on-write instead
//! of copying it. That is what makes a fresh instance per request affordable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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
        // Resetting a slot for the next instance: zero this much in place rather than
        // returning the pages to the kernel and faulting them back in.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(1 << 16)
        .async_stack_keep_resident(1 << 16);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .async_stack_size(2 << 20)
        .max_wasm_stack(1 << 20)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
