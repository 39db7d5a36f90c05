//! A anthropic stream translated whole and cut at fuzzer-chosen points.
#![no_main]

use switchboard_fuzz::providers::Family;

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::seams::stream(Family::Anthropic, data));
