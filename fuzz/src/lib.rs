//! Switchboard's fuzz targets (`fuzz_targets/`, run with `cargo fuzz`, see `scripts/fuzz.sh`)
//! share this: one provider of every kind grouped by translator family (`providers`), the
//! seams they exercise with the checks their outputs must pass (`seams`, `inputs` for the
//! input APIs, `decoders`, `checks`), stream inputs cut where the fuzzer says (`cuts`), and
//! eventstream inputs that get past the checksums (`eventstream`).
//!
//! The seeds (`seeds/`) are what the mock provider (`tests/mock`) answers in every wire format,
//! with its fault directives (cut, malformed, bad events, errors, Bedrock exceptions and bad
//! checksums); client bodies and YAML documents from the core's tests and `examples/`; the
//! input APIs' requests, OpenAI answers and streams their encoders are tested with in the core
//! (and, as native streams, what those encoders write and the mock's Anthropic streams); AWS's
//! eventstream test vectors. An answer seed starts with two bytes choosing the error status, a
//! stream seed with the header of a [`cuts::Cut`] (flag [`inputs::NATIVE`]: a native stream).

pub mod checks;
pub mod cuts;
pub mod decoders;
pub mod eventstream;
pub mod inputs;
pub mod providers;
pub mod seams;
