//! The configuration parser and runtime assembly on any text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::seams::config(data));
