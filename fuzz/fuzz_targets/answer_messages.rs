//! An OpenAI chat answer encoded as a Messages answer.
#![no_main]

use switchboard_fuzz::inputs::Input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::inputs::answer(Input::Messages, data));
