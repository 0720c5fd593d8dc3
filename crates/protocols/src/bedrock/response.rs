//! Converse answers. Decoded leniently: a block that does not decode is kept whole, a field
//! Bedrock adds or omits must not fail an answer already paid for.
//!
//! A Converse answer has no id and no model name: the id is made up, the model is the caller's
//! to set (it chose it, in the URL), unless a prompt router says which model it invoked.

use serde_json::{Map, Value, json};
use switchyard_types::{ChatResponse, Choice, Extra, JsonMap, Protocol, Role};

use super::content::{Block, Turn, assistant_blocks, decode_block};
use super::{STOP_REASON, decode_usage, encode_usage, finish_from, finish_to, new_id, stop_reason_for};

/// Answer fields the IR does not model, kept for the same protocol.
const KEPT: &[&str] = &["additionalModelResponseFields", "trace", "performanceConfig", "serviceTier"];

pub fn decode_converse_response(v: &Value) -> ChatResponse {
    let mut messages = Vec::new();
    let mut turn = Turn::new(Role::Assistant, &mut messages);
    for (j, b) in v.pointer("/output/message/content").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let at = format!("output.message.content.{j}");
        let block = decode_block(b, &at).unwrap_or(Block::Other);
        if turn.push(block, b, &at).is_err() {
            // A block an answer should not hold (a tool result) is kept, not refused.
            let _ = turn.push(Block::Other, b, &at);
        }
    }
    turn.finish();
    let message = messages.pop().unwrap_or_else(|| switchyard_types::Message::new(Role::Assistant, Vec::new()));
    let raw_stop = v.get("stopReason").and_then(Value::as_str);
    let finish_reason = raw_stop.map(finish_from);
    let mut extra = JsonMap::new();
    if let (Some(raw), Some(reason)) = (raw_stop, &finish_reason)
        && finish_to(reason) != raw
    {
        extra.insert(STOP_REASON.into(), raw.into());
    }
    for key in KEPT {
        if let Some(field) = v.get(*key).filter(|f| !f.is_null()) {
            extra.insert((*key).into(), field.clone());
        }
    }
    let model = v.pointer("/trace/promptRouter/invokedModelId").and_then(Value::as_str).unwrap_or_default();
    ChatResponse {
        id: new_id(),
        model: model.to_string(),
        created: 0,
        choices: vec![Choice { index: 0, message, finish_reason }],
        usage: v.get("usage").and_then(decode_usage),
        extra: Extra { protocol: Some(Protocol::Bedrock), fields: extra },
    }
}

/// The first choice as a Converse answer (Converse answers with one). A part Bedrock cannot
/// carry (an image given by URL) is left out. `metrics.latencyMs` is the gateway's to measure,
/// not the IR's: it is written as 0.
pub fn encode_converse_response(r: &ChatResponse) -> Value {
    let choice = r.choices.first();
    let content = choice.and_then(|c| assistant_blocks(&c.message, 0, false).ok()).unwrap_or_default();
    let recorded = r.extra.fields.get(STOP_REASON).and_then(Value::as_str);
    let stop = match choice.and_then(|c| c.finish_reason.as_ref()) {
        Some(reason) => stop_reason_for(reason, recorded).to_string(),
        None => "end_turn".to_string(),
    };
    let mut body = Map::new();
    body.insert("output".into(), json!({"message": {"role": "assistant", "content": content}}));
    body.insert("stopReason".into(), stop.into());
    body.insert("usage".into(), encode_usage(&r.usage.unwrap_or_default()));
    body.insert("metrics".into(), json!({"latencyMs": 0}));
    if r.extra.protocol == Some(Protocol::Bedrock) {
        for key in KEPT {
            if let Some(field) = r.extra.fields.get(*key) {
                body.insert((*key).into(), field.clone());
            }
        }
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use switchyard_types::FinishReason;

    use super::*;

    #[test]
    fn an_answer_decodes_and_re_encodes() {
        let v = json!({
            "output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "c2ln"}}},
                {"text": "hi"},
                {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}},
                {"citationsContent": {"content": [{"text": "x"}]}}]}},
            "stopReason": "stop_sequence",
            "usage": {"inputTokens": 3, "outputTokens": 7, "totalTokens": 25, "cacheReadInputTokens": 10, "cacheWriteInputTokens": 5},
            "metrics": {"latencyMs": 12},
            "trace": {"promptRouter": {"invokedModelId": "arn:aws:bedrock:us-east-1::foundation-model/x"}}
        });
        let r = decode_converse_response(&v);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Stop));
        assert_eq!(r.model, "arn:aws:bedrock:us-east-1::foundation-model/x");
        assert!(!r.id.is_empty());
        let u = r.usage.unwrap_or_default();
        assert_eq!((u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens), (18, 10, 5, 7));
        let back = encode_converse_response(&r);
        assert_eq!(back["output"], v["output"]);
        assert_eq!(back["stopReason"], "stop_sequence");
        assert_eq!(back["usage"], v["usage"]);
        assert_eq!(back["trace"], v["trace"]);
    }

    #[test]
    fn odd_answers_decode_without_failing() {
        for v in [json!({}), json!({"output": {"message": {"content": [{"toolResult": {}}, "x", {"text": 1}]}}})] {
            let r = decode_converse_response(&v);
            assert_eq!(r.choices.len(), 1);
            assert_eq!(r.choices[0].finish_reason, None);
        }
    }
}
