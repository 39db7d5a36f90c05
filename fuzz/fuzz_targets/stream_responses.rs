//! An OpenAI chat stream encoded as Responses events (or the native stream), whole and cut.
#![no_main]

use switchboard_fuzz::inputs::Input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::inputs::stream(Input::Responses, data));
