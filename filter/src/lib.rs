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
