//! The wasmtime engine a chain's modules share: pooling allocator, fuel and epoch interruption,
//! the linker with caje's imports of every contract version (every other import traps), and the
//! thread ticking the epoch.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};

use super::bindings::{World, v1, v2};
use super::config::PolicyConfig;
use super::host::StoreState;
use super::instance::Pre;

/// Per-component ceilings of the pool. A Rust `wasm32-wasip2` policy has one memory, two
/// tables and three core instances; the headroom admits other toolchains.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;
/// Memory reset with `memset` (only resident pages, with PAGEMAP_SCAN) instead of `madvise`
/// when a slot is reused, which avoids page faults on the next instantiation (DESIGN §5).
const KEEP_RESIDENT: usize = 2 << 20;
const WASM_PAGE: u64 = 64 << 10;

/// The limits of one hook call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub fuel: u64,
    pub hook_timeout: Duration,
    /// `hook_timeout` in epoch ticks, rounded up, plus one for the tick already under way.
    pub epoch_ticks: u64,
    pub memory_limit: usize,
}

/// An engine configured for policies, and the linker every module is instantiated with.
pub(crate) struct Runtime {
    engine: Engine,
    linker: Linker<StoreState>,
    pub limits: CallLimits,
}

impl Runtime {
    /// Builds the engine and starts its epoch ticker, which stops once the engine is dropped.
    pub fn new(config: &PolicyConfig) -> anyhow::Result<Arc<Runtime>> {
        config.validate()?;
        let memory_limit = usize::try_from(config.memory_limit)
            .context("policies.memory_limit does not fit in memory")?;
        let instances = config.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .max_memory_size(memory_limit)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        let mut wasm = Config::new();
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .consume_fuel(true)
            .epoch_interruption(true)
            // Reserve only what the limit allows: with thousands of pool slots, the default
            // 4 GiB reservations would claim terabytes of address space.
            .memory_reservation(config.memory_limit.next_multiple_of(WASM_PAGE))
            .memory_reservation_for_growth(0)
            .memory_may_move(false);
        let engine = Engine::new(&wasm)
            .map_err(anyhow::Error::from)
            .context("could not configure the wasm engine for policies")?;
        let mut linker = Linker::new(&engine);
        v1::Policy::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |state| state)?;
        v2::Policy::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |state| state)?;

        let tick =
            (config.hook_timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(10));
        let epoch_ticks = u64::try_from(config.hook_timeout.as_nanos().div_ceil(tick.as_nanos()))
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        start_epoch_ticker(&engine, tick)?;
        Ok(Arc::new(Runtime {
            engine,
            linker,
            limits: CallLimits {
                fuel: config.fuel,
                hook_timeout: config.hook_timeout,
                epoch_ticks,
                memory_limit,
            },
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Links `component`, built against `world`, with caje's imports; any other import (WASI,
    /// ...) traps if called.
    pub fn link(&self, component: &Component, world: World) -> anyhow::Result<Pre> {
        let mut linker = self.linker.clone();
        linker.define_unknown_imports_as_traps(component)?;
        Ok(Pre::new(world, linker.instantiate_pre(component)?)?)
    }

    /// A store for one instance, with the memory limiter installed.
    pub fn new_store(&self) -> Store<StoreState> {
        let mut store = Store::new(&self.engine, StoreState::new(self.limits.memory_limit));
        store.limiter(|state| state);
        store
    }
}

/// Epoch time is wall-clock time: it must advance even while every tokio worker is inside a
/// guest, so it is ticked by a dedicated OS thread.
fn start_epoch_ticker(engine: &Engine, tick: Duration) -> anyhow::Result<()> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("caje-policy-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(tick);
            }
        })
        .context("could not start the policy epoch thread")?;
    Ok(())
}
