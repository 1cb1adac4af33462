//! napi binding of `@chaaskit/queue`: a thin translation between JavaScript values and the
//! queue core in `crates/core`. No queue logic lives here.

#![deny(clippy::all)]
// napi exports look unused to the (never run) test build of this cdylib.
#![cfg_attr(test, allow(dead_code))]

mod bridge;
mod config;
mod enqueue;
mod events;
mod logging;
mod metrics;
mod provider;
mod scheduler;
mod worker;

/// mimalloc for the addon's Rust allocations: a queue makes and frees several small
/// allocations per job, and glibc's malloc spent half the enqueue time consolidating them.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[napi_derive::module_init]
fn init() {
    logging::init();
    bridge::log_panics();
}
