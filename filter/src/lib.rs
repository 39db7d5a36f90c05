//! Switchboard's Envoy filter: the proxy-wasm layer over `switchboard_core`. The roles
//! (`gateway`, `upstream`) sequence host calls and hand every decision to `flow`; the host is
//! the `Host` trait, so they run natively against a recording fake in the tests, and in Envoy
//! through `envoy` (wasm32 only), the one module that touches proxy-wasm.

// Natively (the tests' build) the roles are only reached from tests; dead code is flagged by
// the wasm32 build, where `envoy` uses everything.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod fleet;
mod gateway;
mod host;
mod metrics;
mod pairs;
mod upstream;

#[cfg(target_arch = "wasm32")]
mod env;
#[cfg(target_arch = "wasm32")]
mod envoy;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod tests;
