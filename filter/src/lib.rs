//! Switchboard: an LLM gateway that runs inside Envoy as a proxy-wasm filter.
//!
//! Everything but `proxy` is host-free and tested natively; `proxy` is the thin layer that
//! talks to Envoy (only built for wasm32 with the `envoy` feature).

pub mod api;
pub mod config;
pub mod flow;
pub mod providers;
#[cfg(not(target_arch = "wasm32"))]
pub mod render;
pub mod stream;
pub mod usage;

#[cfg(all(target_arch = "wasm32", feature = "envoy"))]
mod proxy;

/// `#[test]` for the unit tests: the built-in on native targets, wasm-bindgen-test's on
/// wasm32 (so the same tests run under Node).
#[cfg(test)]
mod testkit {
    #[cfg(not(target_arch = "wasm32"))]
    pub use core::prelude::v1::test;
    #[cfg(target_arch = "wasm32")]
    pub use wasm_bindgen_test::wasm_bindgen_test as test;
}
