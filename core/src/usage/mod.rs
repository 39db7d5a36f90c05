//! Token usage as providers report it, normalised to one shape; what it costs (`pricing`);
//! prices imported from LiteLLM's price file (`litellm`).

pub mod litellm;
pub mod pricing;

/// Token counts of one answer. `prompt_tokens` counts every input token, cached or not;
/// `cached_tokens` and `cache_write_tokens` are the parts of it read from or written to a
/// prompt cache. `completion_tokens` includes `reasoning_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}
