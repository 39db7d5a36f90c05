//! A anthropic answer body (chat, embeddings, error) translated back.
#![no_main]

use switchboard_fuzz::providers::Family;

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::seams::answer(Family::Anthropic, data));
