//! napi binding of `@chaaskit/queue`: a thin translation between JavaScript values and the
//! queue core in `crates/core`. No queue logic lives here.

#![deny(clippy::all)]

mod bridge;
mod logging;
mod provider;
mod scheduler;
mod worker;

#[napi_derive::module_init]
fn init() {
    logging::init();
}
