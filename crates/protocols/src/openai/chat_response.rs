//! Non-streamed chat completion bodies.

use serde_json::{Map, Value, json};
use switchyard_types::{
    ChatResponse, Choice, ContentPart, Extra, FinishReason, JsonMap, Message, Protocol, Reasoning, Role, ToolCall,
};

use super::{decode_usage, encode_usage, str_field};

/// Fields of a completion the IR models; everything else is kept in `extra`.
const KNOWN: &[&str] = &["id", "object", "created", "model", "choices", "usage"];

/// Decodes an upstream completion leniently: missing fields take defaults.
pub fn decode_chat_response(v: &Value) -> ChatResponse {
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().enumerate().map(|(i, c)| decode_choice(c, i)).collect())
        .unwrap_or_default();
    let mut extra = JsonMap::new();
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if !KNOWN.contains(&k.as_str()) {
                extra.insert(k.clone(), val.clone());
            }
        }
    }
    ChatResponse {
        id: str_field(v, "id").unwrap_or_default(),
        model: str_field(v, "model").unwrap_or_default(),
        created: v.get("created").and_then(Value::as_u64).unwrap_or(0),
        choices,
        usage: v.get("usage").and_then(decode_usage),
        extra: Extra { protocol: Some(Protocol::OpenAi), fields: extra },
    }
}

fn decode_choice(c: &Value, position: usize) -> Choice {
    let m = c.get("message").cloned().unwrap_or(Value::Null);
    let mut message = Message::new(Role::Assistant, Vec::new());
    if let Some(text) = m.get("content").and_then(Value::as_str) {
        message.content.push(ContentPart::text(text));
    }
    if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
        message.tool_calls = calls
            .iter()
            .map(|call| ToolCall {
                id: str_field(call, "id").unwrap_or_default(),
                name: call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string(),
                arguments: call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or_default().to_string(),
                signature: None,
            })
            .collect();
    }
    let reasoning = str_field(&m, "reasoning_content").or_else(|| str_field(&m, "reasoning"));
    if let Some(text) = reasoning {
        message.reasoning.push(Reasoning { text, ..Default::default() });
    }
    message.refusal = str_field(&m, "refusal");
    if let Some(obj) = m.as_object() {
        for (k, val) in obj {
            let modelled = ["role", "content", "tool_calls", "refusal", "reasoning_content", "reasoning"];
            if !modelled.contains(&k.as_str()) && !val.is_null() {
                message.extra.insert(k.clone(), val.clone());
            }
        }
    }
    Choice {
        index: c.get("index").and_then(Value::as_u64).map_or(position as u32, |i| i as u32),
        message,
        finish_reason: c.get("finish_reason").and_then(Value::as_str).map(FinishReason::from_openai),
    }
}

/// Encodes an IR completion as an OpenAI body.
pub fn encode_chat_response(r: &ChatResponse) -> Value {
    let mut body = Map::new();
    if r.extra.protocol == Some(Protocol::OpenAi) {
        body.extend(r.extra.fields.clone());
    }
    body.insert("id".into(), r.id.clone().into());
    body.insert("object".into(), "chat.completion".into());
    body.insert("created".into(), r.created.into());
    body.insert("model".into(), r.model.clone().into());
    let choices = r
        .choices
        .iter()
        .map(|c| {
            let m = &c.message;
            let mut msg = m.extra.clone();
            msg.insert("role".into(), "assistant".into());
            let text = m.text();
            let content = if text.is_empty() && !m.tool_calls.is_empty() { Value::Null } else { text.into() };
            msg.insert("content".into(), content);
            msg.insert("refusal".into(), m.refusal.clone().map_or(Value::Null, Value::String));
            if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|t| json!({"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}))
                    .collect();
                msg.insert("tool_calls".into(), calls.into());
            }
            let reasoning: String = m.reasoning.iter().map(|r| r.text.as_str()).collect();
            if !reasoning.is_empty() {
                msg.insert("reasoning_content".into(), reasoning.into());
            }
            json!({
                "index": c.index,
                "message": msg,
                "logprobs": null,
                "finish_reason": c.finish_reason.as_ref().map(FinishReason::as_openai),
            })
        })
        .collect::<Vec<_>>();
    body.insert("choices".into(), choices.into());
    if let Some(u) = &r.usage {
        body.insert("usage".into(), encode_usage(u));
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_tool_calls_usage_and_keeps_unknown_fields() {
        let v = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "gpt-4o",
            "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null, "annotations": [],
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
            }}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                      "prompt_tokens_details": {"cached_tokens": 4},
                      "completion_tokens_details": {"reasoning_tokens": 2}}
        });
        let r = decode_chat_response(&v);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(r.choices[0].message.tool_calls[0].name, "f");
        let u = r.usage.unwrap_or_default();
        assert_eq!((u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens), (10, 5, 4, 2));
        assert_eq!(r.extra.fields.get("system_fingerprint"), Some(&json!("fp_1")));
        let back = encode_chat_response(&r);
        assert_eq!(back["system_fingerprint"], "fp_1");
        assert_eq!(decode_chat_response(&back), r);
    }
}
