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
        // Saturating: the counts come from providers, and a broken one must not overflow them.
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_saturate_instead_of_overflowing() {
        let u = Usage { input_tokens: u64::MAX, output_tokens: 1, ..Default::default() };
        assert_eq!(u.total_tokens(), u64::MAX);
    }
}
