//! A Messages request decoded and sent to every provider.
#![no_main]

use switchboard_fuzz::inputs::Input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::inputs::request(Input::Messages, data));
