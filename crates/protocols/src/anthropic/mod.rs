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
/// A message's block kinds in their order (`reasoning`, `text`, `tool_call`, `other`), kept
/// when it is not the usual reasoning, text, tool calls: Anthropic and Bedrock interleave
/// blocks, and a replayed turn must keep its order.
pub const BLOCK_ORDER: &str = "block_order";
/// Fields of `thinking` the IR does not model (`display`), for the same protocol.
pub const THINKING_EXTRA: &str = "anthropic.thinking";
/// Marks a request that set an effort without thinking (`output_config.effort` alone).
pub const THINKING_OFF: &str = "anthropic.thinking_off";
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

/// The kind of a block, as `BLOCK_ORDER` lists it.
pub(crate) fn block_kind(block_type: &str) -> &'static str {
    match block_type {
        "thinking" | "redacted_thinking" => "reasoning",
        "text" => "text",
        "tool_use" => "tool_call",
        _ => "other",
    }
}

/// Records the order of `kinds` on a message when it is not the usual one.
pub(crate) fn keep_order(extra: &mut switchyard_types::JsonMap, kinds: Vec<&'static str>) {
    let rank = |k: &str| ["reasoning", "text", "tool_call", "other"].iter().position(|x| *x == k).unwrap_or(3);
    if kinds.windows(2).any(|w| rank(w[0]) > rank(w[1])) {
        extra.insert(BLOCK_ORDER.into(), kinds.into_iter().map(Value::from).collect());
    }
}

/// Puts blocks grouped by kind back in a recorded order; any not named there go at the end.
pub(crate) fn in_order(extra: &switchyard_types::JsonMap, mut groups: Vec<(&'static str, Vec<Value>)>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(Value::Array(order)) = extra.get(BLOCK_ORDER) {
        for kind in order.iter().filter_map(Value::as_str) {
            if let Some((_, blocks)) = groups.iter_mut().find(|(k, _)| *k == kind)
                && !blocks.is_empty()
            {
                out.push(blocks.remove(0));
            }
        }
    }
    out.extend(groups.into_iter().flat_map(|(_, blocks)| blocks));
    out
}

/// Claude's thinking budget for another protocol's reasoning effort; Anthropic needs at least
/// 1,024. Shared with Bedrock, so a Claude model thinks as long whichever protocol serves it.
pub(crate) fn effort_budget(effort: &str) -> Result<u64, switchyard_types::GatewayError> {
    Ok(match effort {
        "minimal" | "low" => 1024,
        "medium" => 4096,
        "high" => 16_384,
        "xhigh" => 32_768,
        other => {
            return Err(switchyard_types::GatewayError::invalid(format!(
                "reasoning effort '{other}' has no thinking budget for Claude models"
            ))
            .with_param("reasoning_effort"));
        }
    })
}

/// Adds a request's `output_config.effort` to its reasoning; an effort without thinking is
/// marked (`THINKING_OFF`) so the same protocol gets back what it sent.
pub(crate) fn add_effort(
    reasoning: &mut Option<switchyard_types::ReasoningConfig>,
    extra: &mut switchyard_types::JsonMap,
    effort: String,
) {
    if reasoning.is_none() {
        extra.insert(THINKING_OFF.into(), Value::Bool(true));
    }
    reasoning.get_or_insert(switchyard_types::ReasoningConfig { effort: None, budget_tokens: None }).effort =
        Some(effort);
}

/// A Claude conversation's turns as Anthropic's Messages API and Bedrock's Converse API take
/// them: user and assistant alternating, so consecutive turns of one role become one.
#[derive(Default)]
pub(crate) struct Turns(Vec<(switchyard_types::Role, Vec<Value>)>);

impl Turns {
    pub(crate) fn push(&mut self, role: switchyard_types::Role, blocks: Vec<Value>) {
        match self.0.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(blocks),
            _ => self.0.push((role, blocks)),
        }
    }

    pub(crate) fn into_json(self) -> Vec<Value> {
        let role = |r| if r == switchyard_types::Role::User { "user" } else { "assistant" };
        self.0.into_iter().map(|(r, content)| json!({"role": role(r), "content": content})).collect()
    }
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
