//! Stream framing: incremental, bounded, safe whatever way the bytes are split.

pub mod eventstream;
pub mod sse;

/// Largest stream event accepted from a provider (one SSE event, one eventstream message):
/// far above any real one (Bedrock's are a few KiB), and all a translator buffers.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
