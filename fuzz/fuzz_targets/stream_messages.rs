//! An OpenAI chat stream encoded as Messages events (or the native stream), whole and cut.
#![no_main]

use switchboard_fuzz::inputs::Input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz::inputs::stream(Input::Messages, data));
