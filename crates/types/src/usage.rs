use serde::{Deserialize, Serialize};

/// Token usage of one call.
///
/// `input_tokens` counts every prompt token, cached ones included (OpenAI's convention); the
/// cache fields say how many of them were read from or written to the provider's prompt cache.
/// `output_tokens` counts every generated token, reasoning included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}
