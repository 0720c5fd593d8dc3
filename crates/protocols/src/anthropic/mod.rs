//! The Anthropic protocol: Messages (JSON and SSE), token counting, and its error shape.
//!
//! Requests are decoded strictly, with the parameter path in the error as Anthropic writes it
//! (`messages.0.content.1.source`); upstream answers leniently.

mod error;
mod request;
mod response;
mod stream;

pub use error::{decode_error, encode_error};
pub use request::{decode_messages_request, encode_messages_request};
pub use response::{decode_messages_response, encode_messages_response};
pub use stream::{EventDecoder, EventEncoder, Frame};

use serde_json::{Value, json};
use switchyard_types::{FinishReason, Usage};

/// A message's blocks the IR has no form for (server tool use and results, …), kept in
/// `Message::extra` under this key so the same protocol can put them back.
pub const BLOCKS: &str = "anthropic.blocks";
/// A plain-text document block's fields other than its text, on the IR text part.
pub const DOCUMENT: &str = "anthropic.document";
/// `is_error` of a tool result, on the IR tool message.
pub const IS_ERROR: &str = "is_error";
/// The stop sequence that ended an answer, in `ChatResponse::extra`.
pub const STOP_SEQUENCE: &str = "stop_sequence";

/// `max_tokens` for a request from a protocol where it is optional: Anthropic requires it.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Anthropic usage: `input_tokens` excludes cached tokens, which the IR's input includes.
pub(crate) fn decode_usage(v: &Value) -> Option<Usage> {
    let obj = v.as_object()?;
    let n = |k: &str| obj.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (read, write) = (n("cache_read_input_tokens"), n("cache_creation_input_tokens"));
    Some(Usage {
        input_tokens: n("input_tokens") + read + write,
        output_tokens: n("output_tokens"),
        cache_read_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: 0,
    })
}

pub(crate) fn encode_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens.saturating_sub(u.cache_read_tokens + u.cache_write_tokens),
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "output_tokens": u.output_tokens,
    })
}

pub(crate) fn finish_from(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

pub(crate) fn finish_to(reason: &FinishReason, stopped_by_sequence: bool) -> String {
    match reason {
        FinishReason::Stop if stopped_by_sequence => "stop_sequence".into(),
        FinishReason::Stop => "end_turn".into(),
        FinishReason::Length => "max_tokens".into(),
        FinishReason::ToolCalls => "tool_use".into(),
        FinishReason::ContentFilter => "refusal".into(),
        FinishReason::Other(s) => s.clone(),
    }
}
