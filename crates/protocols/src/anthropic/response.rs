//! Messages response bodies. Decoded leniently: a field Anthropic adds or omits must not fail an
//! answer already paid for.

use serde_json::{Map, Value, json};
use switchyard_types::{
    ChatResponse, Choice, ContentPart, Extra, JsonMap, Message, Protocol, Reasoning, Role, TextPart, ToolCall,
};

use super::{
    BLOCKS, STOP_SEQUENCE, block_kind, decode_usage, encode_usage, finish_from, finish_to, in_order, keep_order,
};

pub fn decode_messages_response(v: &Value) -> ChatResponse {
    let mut msg = Message::new(Role::Assistant, Vec::new());
    let mut others = Vec::new();
    let mut kinds = Vec::new();
    for b in v.get("content").and_then(Value::as_array).into_iter().flatten() {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
        kinds.push(block_kind(kind));
        match kind {
            "text" => {
                let mut extra = JsonMap::new();
                if let Some(c) = b.get("citations").filter(|c| !c.is_null()) {
                    extra.insert("citations".into(), c.clone());
                }
                let text = b.get("text").and_then(Value::as_str).unwrap_or_default().to_string();
                msg.content.push(ContentPart::Text(TextPart { text, cache: None, extra }));
            }
            "thinking" => msg.reasoning.push(Reasoning {
                text: b.get("thinking").and_then(Value::as_str).unwrap_or_default().to_string(),
                signature: b.get("signature").and_then(Value::as_str).map(str::to_string),
                redacted: None,
            }),
            "redacted_thinking" => msg.reasoning.push(Reasoning {
                redacted: b.get("data").and_then(Value::as_str).map(str::to_string),
                ..Reasoning::default()
            }),
            "tool_use" => msg.tool_calls.push(ToolCall {
                id: b.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                name: b.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                arguments: b.get("input").cloned().unwrap_or_else(|| json!({})).to_string(),
                signature: None,
            }),
            _ => others.push(b.clone()),
        }
    }
    if !others.is_empty() {
        msg.extra.insert(BLOCKS.into(), Value::Array(others));
    }
    keep_order(&mut msg.extra, kinds);
    let mut extra = JsonMap::new();
    if let Some(s) = v.get(STOP_SEQUENCE).filter(|s| !s.is_null()) {
        extra.insert(STOP_SEQUENCE.into(), s.clone());
    }
    let finish_reason = v.get("stop_reason").and_then(Value::as_str).map(finish_from);
    ChatResponse {
        id: v.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
        model: v.get("model").and_then(Value::as_str).unwrap_or_default().to_string(),
        created: 0,
        choices: vec![Choice { index: 0, message: msg, finish_reason }],
        usage: v.get("usage").and_then(decode_usage),
        extra: Extra { protocol: Some(Protocol::Anthropic), fields: extra },
    }
}

/// The first choice as an Anthropic message (Anthropic answers with one). Blocks go in the order
/// a turn has them: reasoning, text, tool calls.
pub fn encode_messages_response(r: &ChatResponse) -> Value {
    let choice = r.choices.first();
    let mut content = Vec::new();
    if let Some(c) = choice {
        content = encode_blocks(&c.message);
    }
    let mut body = Map::new();
    body.insert("id".into(), message_id(&r.id).into());
    body.insert("type".into(), "message".into());
    body.insert("role".into(), "assistant".into());
    body.insert("model".into(), r.model.clone().into());
    body.insert("content".into(), Value::Array(content));
    let stop_sequence = r.extra.fields.get(STOP_SEQUENCE).cloned().unwrap_or(Value::Null);
    let reason = choice.and_then(|c| c.finish_reason.as_ref()).map(|f| finish_to(f, !stop_sequence.is_null()));
    body.insert("stop_reason".into(), reason.map_or(Value::Null, Value::from));
    body.insert(STOP_SEQUENCE.into(), stop_sequence);
    body.insert("usage".into(), encode_usage(&r.usage.unwrap_or_default()));
    Value::Object(body)
}

pub(crate) fn encode_blocks(m: &Message) -> Vec<Value> {
    let reasoning = m
        .reasoning
        .iter()
        .map(|r| match &r.redacted {
            Some(data) => json!({"type": "redacted_thinking", "data": data}),
            None => {
                json!({"type": "thinking", "thinking": r.text, "signature": r.signature.clone().unwrap_or_default()})
            }
        })
        .collect();
    let text: Vec<Value> = m
        .content
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text(t) => {
                let mut block = json!({"type": "text", "text": t.text});
                if let Some(c) = t.extra.get("citations") {
                    block["citations"] = c.clone();
                }
                Some(block)
            }
            _ => None,
        })
        .collect();
    assistant_turn(m, reasoning, text)
}

/// An assistant turn's blocks from its reasoning and text blocks (written as the caller needs:
/// for a request or an answer), its tool calls and the blocks kept whole, in the turn's order.
pub(crate) fn assistant_turn(m: &Message, reasoning: Vec<Value>, mut text: Vec<Value>) -> Vec<Value> {
    if let Some(refusal) = &m.refusal {
        text.push(json!({"type": "text", "text": refusal}));
    }
    let calls = m
        .tool_calls
        .iter()
        .map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(&c.arguments)}))
        .collect();
    let others = match m.extra.get(BLOCKS) {
        Some(Value::Array(others)) => others.clone(),
        _ => Vec::new(),
    };
    in_order(&m.extra, vec![("reasoning", reasoning), ("text", text), ("tool_call", calls), ("other", others)])
}

/// Anthropic's `input` is an object; arguments a model wrote as invalid JSON are kept whole under
/// `_raw_arguments` rather than lost.
pub(crate) fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ if arguments.trim().is_empty() => json!({}),
        _ => json!({"_raw_arguments": arguments}),
    }
}

/// Anthropic ids start `msg_`; an id from another provider is given the prefix, so clients that
/// check it are content.
pub(crate) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") { id.to_string() } else { format!("msg_{}", id.trim_start_matches("chatcmpl-")) }
}

#[cfg(test)]
mod tests {
    use switchyard_types::FinishReason;

    use super::*;

    #[test]
    fn stop_reasons_and_usage_map_both_ways() {
        let v = json!({"id": "msg_1", "model": "claude", "content": [
            {"type": "thinking", "thinking": "hm", "signature": "c2ln"},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 3, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 5, "output_tokens": 7}});
        let r = decode_messages_response(&v);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
        let u = r.usage.unwrap_or_default();
        assert_eq!((u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens), (18, 10, 5, 7));
        let back = encode_messages_response(&r);
        assert_eq!(back["usage"]["input_tokens"], 3);
        assert_eq!(back["content"], v["content"]);
        assert_eq!(back["stop_reason"], "tool_use");
    }

    #[test]
    fn invalid_tool_arguments_are_kept() {
        assert_eq!(tool_input("{\"a\":"), json!({"_raw_arguments": "{\"a\":"}));
        assert_eq!(tool_input(""), json!({}));
    }
}
