//! Switchboard's core: everything the filter decides, with no host in sight. Configuration
//! (`config`, the schema) and its assembly (`runtime`), OpenAI wire types (`api`), provider
//! translators (`providers`), stream framing (`stream`), usage and prices (`usage`), keys,
//! limits and budgets (`limits`), and the two filter roles' decisions (`flow`). Tested natively
//! and on wasm32; the `switchboard` filter crate moves bytes between Envoy and this.

pub mod api;
pub mod config;
pub mod flow;
pub mod inputs;
pub mod limits;
pub mod names;
pub mod providers;
pub mod runtime;
pub mod stream;
pub mod usage;

/// `#[test]` for the unit tests: the built-in on native targets, wasm-bindgen-test's on
/// wasm32 (so the same tests run under Node).
#[cfg(test)]
mod testkit {
    #[cfg(not(target_arch = "wasm32"))]
    pub use core::prelude::v1::test;
    #[cfg(target_arch = "wasm32")]
    pub use wasm_bindgen_test::wasm_bindgen_test as test;
}
