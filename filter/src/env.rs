//! The host environment, read through WASI's `environ_get` (Envoy provides it; its content is
//! what `vm_config.environment_variables` lets through). wasm32-unknown-unknown's std has no
//! environment, hence the direct call.

use std::collections::HashMap;

pub fn host_env() -> HashMap<String, String> {
    // SAFETY: WASI fills exactly the sizes it reported; we only read the byte buffer.
    let Ok((count, size)) = (unsafe { wasi::environ_sizes_get() }) else {
        return HashMap::new();
    };
    let mut pointers: Vec<*mut u8> = vec![std::ptr::null_mut(); count];
    let mut buffer: Vec<u8> = vec![0; size];
    // SAFETY: both buffers have the sizes environ_sizes_get reported.
    if unsafe { wasi::environ_get(pointers.as_mut_ptr(), buffer.as_mut_ptr()) }.is_err() {
        return HashMap::new();
    }
    // The buffer holds NUL-terminated `NAME=value` entries back to back.
    buffer
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let text = std::str::from_utf8(entry).ok()?;
            let (name, value) = text.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}
