//! A client body (chat or embeddings) translated for every anthropic provider.
#![no_main]

use switchboard_fuzz::providers::Family;

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::seams::request(
    Family::Anthropic,
    data
));
