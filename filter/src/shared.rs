//! The limit store over Envoy's shared data: one key-value map per VM id, shared by every
//! worker's VM in the Envoy process, with CAS tokens. It lives as long as the Envoy process
//! (a restart starts every counter afresh) and has no expiry, so `Limits` keeps a fixed set
//! of entries.

use proxy_wasm::hostcalls;
use switchboard_core::limits::store::{Conflict, Store};

pub struct SharedData;

impl Store for SharedData {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(bytes), Some(cas))) => Some((bytes, cas)),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Conflict> {
        hostcalls::set_shared_data(key, Some(value), cas).map_err(|_| Conflict)
    }
}
