//! Stream framing: incremental, bounded, safe whatever way the bytes are split.

pub mod eventstream;
pub mod sse;
