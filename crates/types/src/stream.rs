use serde::{Deserialize, Serialize};

use crate::{FinishReason, GatewayError, Usage};

/// One typed event of a streamed chat answer. Any protocol's stream decodes into a sequence of
/// these and any protocol's stream can be encoded from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The answer begins.
    Start {
        id: String,
        model: String,
        created: u64,
    },
    /// The role of a choice (OpenAI's first delta), once per choice.
    Role {
        choice: u32,
    },
    Text {
        choice: u32,
        text: String,
    },
    Refusal {
        choice: u32,
        text: String,
    },
    /// Reasoning text, or the signature that closes a reasoning block.
    Reasoning {
        choice: u32,
        text: String,
        signature: Option<String>,
    },
    /// A piece of a tool call. The first piece of a call carries its id and name; later pieces
    /// add argument text. `index` orders the calls within the choice.
    ToolCall {
        choice: u32,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Finish {
        choice: u32,
        reason: FinishReason,
    },
    Usage(Usage),
    /// The upstream failed after the stream began.
    Error(GatewayError),
}
