//! The Bedrock Converse protocol: the JSON of `POST /model/{modelId}/converse` (and
//! `/converse-stream`), the JSON payloads of ConverseStream's events, and Bedrock's error shape.
//! The model is in the URL, never in the body; the event-stream framing is the providers'
//! business, this module sees each event's type and payload.
//!
//! Like the Anthropic codec, requests are decoded strictly, with the parameter path in the error
//! (`messages.0.content.1.image.format`), and upstream answers leniently. A block the IR has no
//! form for is kept whole, so the same protocol gets it back and another protocol refuses it
//! (see `check_translatable`) rather than lose it.

mod b64;
mod content;
mod error;
mod request;
mod response;
mod stream;

pub use error::{decode_error, encode_error};
pub use request::{decode_converse_request, encode_converse_request};
pub use response::{decode_converse_response, encode_converse_response};
pub use stream::{Frame, StreamDecoder, StreamEncoder};

use serde_json::{Map, Value};
use switchyard_types::{FinishReason, Usage};

/// A message's blocks the IR has no form for (guard content, video, citations, search results,
/// server tool use, a cache point after a block that cannot carry one, …), in
/// `Message::extra`, for the same protocol only.
pub const BLOCKS: &str = "bedrock.blocks";
/// On an IR image part: the `cachePoint` that followed the image.
pub const CACHE_POINT: &str = "bedrock.cache_point";
/// On an IR text part of a tool message: the tool result item was `{json}`, not `{text}`.
pub const JSON_RESULT: &str = "bedrock.json";
/// `toolConfig.tools` entries other than tool specs (`systemTool`, and a cache point that
/// follows one), in `ChatRequest::extra`.
pub const SYSTEM_TOOLS: &str = "toolConfig.tools";
/// The stop reason as Bedrock spelled it, in `ChatResponse::extra`, when the IR's finish reason
/// would be written back otherwise (`stop_sequence`, `guardrail_intervened`, …).
pub const STOP_REASON: &str = "stopReason";

/// A new answer id: Bedrock's answers have none, the IR's must.
pub(crate) fn new_id() -> String {
    format!("bedrock-{:024x}", fastrand::u128(..) >> 32)
}

/// Bedrock usage: `inputTokens` excludes the tokens read from or written to the prompt cache,
/// which the IR's input includes. The `*Count` twins say the same thing; Nova's own events
/// (InvokeModel) have only those.
pub(crate) fn decode_usage(v: &Value) -> Option<Usage> {
    let obj = v.as_object()?;
    let n = |k: &str| obj.get(k).and_then(Value::as_u64);
    let cache = |k: &str| n(&format!("{k}Tokens")).or_else(|| n(&format!("{k}TokenCount"))).unwrap_or(0);
    let (read, write) = (cache("cacheReadInput"), cache("cacheWriteInput"));
    let n = |k: &str| n(k).unwrap_or(0);
    Some(Usage {
        input_tokens: n("inputTokens").saturating_add(read).saturating_add(write),
        output_tokens: n("outputTokens"),
        cache_read_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: 0,
    })
}

/// The cache counts are written only when there are some, as Bedrock does for models without
/// prompt caching.
pub(crate) fn encode_usage(u: &Usage) -> Value {
    let cached = u.cache_read_tokens.saturating_add(u.cache_write_tokens);
    let mut obj = Map::new();
    obj.insert("inputTokens".into(), u.input_tokens.saturating_sub(cached).into());
    obj.insert("outputTokens".into(), u.output_tokens.into());
    obj.insert("totalTokens".into(), u.total_tokens().into());
    if u.cache_read_tokens > 0 {
        obj.insert("cacheReadInputTokens".into(), u.cache_read_tokens.into());
    }
    if u.cache_write_tokens > 0 {
        obj.insert("cacheWriteInputTokens".into(), u.cache_write_tokens.into());
    }
    Value::Object(obj)
}

pub(crate) fn finish_from(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "content_filtered" | "guardrail_intervened" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

pub(crate) fn finish_to(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "content_filtered",
        FinishReason::Other(s) => s,
    }
}

/// The stop reason to write for `reason`: the one Bedrock sent when it is recorded and still
/// means the same, else the usual spelling.
pub(crate) fn stop_reason_for<'a>(reason: &'a FinishReason, recorded: Option<&'a str>) -> &'a str {
    match recorded {
        Some(raw) if finish_from(raw) == *reason => raw,
        _ => finish_to(reason),
    }
}

/// Redacted reasoning is a blob; the IR keeps its bytes as text, which for Claude is exactly the
/// `data` of Anthropic's `redacted_thinking`, so it crosses between Anthropic and Bedrock as is.
/// A blob that is not UTF-8 (no model is known to send one) keeps its base64 behind a prefix
/// that base64 never contains, so that it goes back to Bedrock unchanged.
pub(crate) fn redacted_from_wire(b64: &str) -> String {
    match b64::decode(b64).map(String::from_utf8) {
        Some(Ok(text)) => text,
        _ => format!("{RAW_BLOB}{b64}"),
    }
}

pub(crate) fn redacted_to_wire(data: &str) -> String {
    match data.strip_prefix(RAW_BLOB) {
        Some(b64) => b64.to_string(),
        None => b64::encode(data.as_bytes()),
    }
}

const RAW_BLOB: &str = "bedrock-base64:";

/// Copies into `dst` what `src` has and `dst` lacks, objects merged key by key: the same
/// protocol's fields the IR does not model go back beside the ones it built.
pub(crate) fn merge_missing(dst: &mut Map<String, Value>, src: &Map<String, Value>) {
    for (k, v) in src {
        match (dst.get_mut(k), v) {
            (Some(Value::Object(d)), Value::Object(s)) => merge_missing(d, s),
            (Some(_), _) => {}
            (None, _) => drop(dst.insert(k.clone(), v.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn usage_adds_the_cache_to_the_input_and_takes_it_back_out() {
        let wire = json!({"inputTokens": 2, "outputTokens": 5, "totalTokens": 1329,
                          "cacheReadInputTokens": 0, "cacheWriteInputTokens": 1322});
        let u = decode_usage(&wire).unwrap_or_default();
        assert_eq!((u.input_tokens, u.cache_write_tokens, u.output_tokens), (1324, 1322, 5));
        assert_eq!(
            encode_usage(&u),
            json!({"inputTokens": 2, "outputTokens": 5, "totalTokens": 1329, "cacheWriteInputTokens": 1322})
        );
        let nova = json!({"inputTokens": 47, "outputTokens": 12, "cacheReadInputTokenCount": 40});
        assert_eq!(decode_usage(&nova).map(|u| (u.input_tokens, u.cache_read_tokens)), Some((87, 40)));
    }

    #[test]
    fn stop_reasons_keep_bedrock_spelling_when_recorded() {
        for raw in ["end_turn", "tool_use", "max_tokens", "content_filtered", "malformed_tool_use"] {
            assert_eq!(finish_to(&finish_from(raw)), raw);
        }
        let stop = finish_from("stop_sequence");
        assert_eq!(stop, FinishReason::Stop);
        assert_eq!(stop_reason_for(&stop, Some("stop_sequence")), "stop_sequence");
        assert_eq!(stop_reason_for(&FinishReason::Length, Some("stop_sequence")), "max_tokens");
        assert_eq!(finish_from("guardrail_intervened"), FinishReason::ContentFilter);
    }

    #[test]
    fn redacted_reasoning_is_kept_decoded() {
        assert_eq!(redacted_from_wire("RXRrRUNr"), "EtkECk");
        assert_eq!(redacted_to_wire("EtkECk"), "RXRrRUNr");
        let raw = redacted_from_wire("//79");
        assert_eq!(raw, "bedrock-base64://79", "not UTF-8: kept as sent");
        assert_eq!(redacted_to_wire(&raw), "//79");
    }
}
