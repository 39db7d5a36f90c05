//! The SSE parser, whole and cut at fuzzer-chosen points.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::decoders::sse(data));
