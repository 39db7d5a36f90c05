//! The proxy-wasm host calls the filter makes, declared against the ABI directly. The
//! proxy-wasm crate's wrappers `panic!` on any status they do not expect (a body written in a
//! phase without one, a call Envoy refuses) and `unwrap` header values as UTF-8 — and a panic
//! kills the VM for every request on the worker. A client can send header bytes that are not
//! UTF-8, so these return statuses and decode leniently instead.
//!
//! Values the host returns are allocated by the VM's `proxy_on_memory_allocate`, which the
//! proxy-wasm crate exports (a `Vec` of exactly that size), and taken back as one.

use crate::pairs::{decode_pairs, encode_pairs, lossy};
use std::ptr::{null, null_mut};

/// proxy-wasm's `Ok` status; anything else is an error code.
const OK: u32 = 0;
/// proxy-wasm's `NotFound` status: the value does not exist.
const NOT_FOUND: u32 = 1;

pub const REQUEST_HEADERS: u32 = 0;
pub const RESPONSE_HEADERS: u32 = 2;
pub const REQUEST_BODY: u32 = 0;
pub const RESPONSE_BODY: u32 = 1;

// The proxy-wasm crate declares the same imports with its own enum types (the same u32s).
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// The call's status as a result; a returned value is taken over when there is one.
fn taken(status: u32, data: *mut u8, size: usize) -> Result<Option<Vec<u8>>, u32> {
    match status {
        // SAFETY: the host filled `data` with `size` bytes allocated by this VM's
        // `proxy_on_memory_allocate` (a Vec with capacity `size`), now ours to free.
        OK if !data.is_null() => Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) })),
        OK => Ok(Some(Vec::new())),
        NOT_FOUND => Ok(None),
        other => Err(other),
    }
}

pub fn get_buffer(buffer_type: u32, size: usize) -> Result<Option<Vec<u8>>, u32> {
    let (mut data, mut len) = (null_mut(), 0);
    // SAFETY: the out-pointers point at live locals.
    let status = unsafe { proxy_get_buffer_bytes(buffer_type, 0, size, &mut data, &mut len) };
    taken(status, data, len)
}

pub fn set_buffer(buffer_type: u32, size: usize, value: &[u8]) -> Result<(), u32> {
    // SAFETY: `value` is a live slice for the duration of the call.
    let status =
        unsafe { proxy_set_buffer_bytes(buffer_type, 0, size, value.as_ptr(), value.len()) };
    checked(status)
}

pub fn get_header(map_type: u32, name: &str) -> Result<Option<String>, u32> {
    let (mut data, mut len) = (null_mut(), 0);
    // SAFETY: `name` is live for the call; the out-pointers point at live locals.
    let status = unsafe {
        proxy_get_header_map_value(map_type, name.as_ptr(), name.len(), &mut data, &mut len)
    };
    Ok(taken(status, data, len)?.map(lossy))
}

pub fn get_headers(map_type: u32) -> Result<Vec<(String, String)>, u32> {
    let (mut data, mut len) = (null_mut(), 0);
    // SAFETY: the out-pointers point at live locals.
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut len) };
    Ok(taken(status, data, len)?.map_or_else(Vec::new, |bytes| decode_pairs(&bytes)))
}

/// Sets (`Some`) or removes (`None`) a header.
pub fn set_header(map_type: u32, name: &str, value: Option<&str>) -> Result<(), u32> {
    // SAFETY: `name` and `value` are live for the call.
    let status = unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(
                map_type,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => proxy_remove_header_map_value(map_type, name.as_ptr(), name.len()),
        }
    };
    checked(status)
}

pub fn send_local_response(status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), u32> {
    let headers = encode_pairs(headers);
    // SAFETY: every pointer is to a live buffer for the call; no details (null, 0).
    let status = unsafe {
        proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    };
    checked(status)
}

pub fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, u32> {
    let path = path.join("\0");
    let (mut data, mut len) = (null_mut(), 0);
    // SAFETY: `path` is live for the call; the out-pointers point at live locals.
    let status = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut len) };
    taken(status, data, len)
}

pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), u32> {
    let path = path.join("\0");
    // SAFETY: `path` and `value` are live for the call.
    let status =
        unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
    checked(status)
}

fn checked(status: u32) -> Result<(), u32> {
    if status == OK {
        Ok(())
    } else {
        Err(status)
    }
}
