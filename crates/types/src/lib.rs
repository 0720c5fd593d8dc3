//! Switchyard's canonical model (the IR).
//!
//! Every client surface decodes its wire format into these types and every provider encodes them
//! into its own, so N surfaces and M providers need N + M adapters rather than N × M. The types
//! hold the union of what the supported protocols can express; a field that only one protocol
//! knows lives in the `extra` maps, tagged by the protocol that produced it.

mod chat;
mod embeddings;
mod error;
mod record;
mod stream;
mod usage;

pub use chat::*;
pub use embeddings::*;
pub use error::*;
pub use record::*;
pub use stream::*;
pub use usage::*;

/// The wire protocols Switchyard speaks, on either side of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
            Protocol::Bedrock => "bedrock",
        }
    }
}

/// A JSON object, for fields the IR does not model.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;
