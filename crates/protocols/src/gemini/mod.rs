//! The Gemini protocol: `generateContent` and `streamGenerateContent` (Google AI and Vertex AI
//! take the same body), SSE and JSON-array streams, `batchEmbedContents` (and Vertex `:predict`)
//! embeddings, and Google's error shape.
//!
//! Requests are decoded strictly: a wrong type or an unknown field is the client's 400 with the
//! parameter path (`contents[1].parts[0]`), and both spellings proto JSON allows are accepted
//! (`thoughtSignature` and `thought_signature`). Upstream answers are decoded leniently.
//!
//! Gemini has no ids for function calls (Gemini 3 sometimes sends one); the IR needs them, so a
//! call without one is named `call_<responseId>_<n>` in answers and `call_<content>_<n>` in
//! requests, the same however the answer is read (whole or streamed). A function response
//! without an id is matched by name to the earliest unanswered call of the turn before.
//!
//! Model and streaming are not in the body but in the URL (`models/NAME:streamGenerateContent`):
//! [`split_model_action`] reads them, and the caller sets `ChatRequest::model` and `stream`.

mod chat_request;
mod chat_response;
mod chat_stream;
mod embeddings;
mod error;
mod request_encode;
mod schema;

pub use chat_request::decode_chat_request;
pub use chat_response::{decode_chat_response, encode_chat_response};
pub use chat_stream::{JsonArrayFramer, StreamDecoder, StreamEncoder};
pub use embeddings::{
    decode_embedding_request, decode_embedding_response, encode_embedding_request, encode_embedding_response,
    encode_vertex_embedding_request,
};
pub use error::{decode_error, encode_error};
pub use request_encode::encode_chat_request;

use serde_json::{Map, Value};
use switchyard_types::{FinishReason, GatewayError, JsonMap, Reasoning, Usage};

/// The thought signature Google documents for function calls the model did not produce (a
/// history from another provider, or a client that dropped the signature). Gemini 3 refuses a
/// function call without any signature in the current turn; this one skips the check.
pub const SIGNATURE_SENTINEL: &str = "skip_thought_signature_validator";

/// Fields of function declarations the IR does not model (`response`, `behavior`), by function
/// name, in `ChatRequest::extra`, so that the same protocol can put them back.
pub const FUNCTION_EXTRAS: &str = "gemini.functionDeclarations";

/// Gemini request fields, as `ChatRequest::extra` names them, that change nothing about the
/// answer's content: billing labels, and whether thought summaries are shown. Nested fields the
/// IR does not model are kept under their dotted path (`generationConfig.responseModalities`).
pub const HARMLESS: &[&str] = &["labels", "generationConfig.thinkingConfig.includeThoughts"];

/// `(model, action)` of a Gemini or Vertex path: `/v1beta/models/gemini-2.5-flash:generateContent`
/// and `…/publishers/google/models/gemini-2.5-flash:streamGenerateContent` give
/// `("gemini-2.5-flash", "streamGenerateContent")`. The query string is ignored.
pub fn split_model_action(path: &str) -> Option<(&str, &str)> {
    let path = path.split('?').next().unwrap_or_default();
    let (_, tail) = path.rsplit_once("models/")?;
    let (model, action) = tail.split_once(':')?;
    (!model.is_empty() && !model.contains('/') && !action.is_empty()).then_some((model, action))
}

/// A model name without the `models/` prefix Gemini bodies use.
fn bare_model(name: &str) -> &str {
    name.strip_prefix("models/").unwrap_or(name)
}

/// Deserialises a wire type from an already-parsed object, naming the offending field the way
/// Google's proto parser does (`generationConfig.temperature`).
fn from_object<T: serde::de::DeserializeOwned>(map: &JsonMap) -> Result<T, GatewayError> {
    serde_path_to_error::deserialize(map).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            return GatewayError::invalid(format!("Invalid JSON payload received. {inner}"));
        }
        GatewayError::invalid(format!("Invalid JSON payload received at '{path}': {inner}")).with_param(path)
    })
}

/// A 400 naming the parameter at fault.
fn invalid(param: impl Into<String>, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid(message).with_param(param)
}

/// The id of the `n`th function call of a candidate that came without one. Derived from the
/// response id so that calls of different turns never share an id, and the same for a streamed
/// and a whole answer.
fn call_id(response_id: &str, candidate: u32, n: usize) -> String {
    match (response_id.is_empty(), candidate) {
        (true, 0) => format!("call_{n}"),
        (true, c) => format!("call_{c}_{n}"),
        (false, 0) => format!("call_{response_id}_{n}"),
        (false, c) => format!("call_{response_id}_{c}_{n}"),
    }
}

/// Adds reasoning the way `StreamAssembler` does, so that a whole answer and the same answer
/// streamed give the same blocks: text extends the last block until a signature closes it, and a
/// signature on an answer part (Gemini puts it on the part after the thoughts) closes the open
/// block, or stands alone as a block with no text.
fn push_reasoning(blocks: &mut Vec<Reasoning>, text: &str, signature: Option<String>) {
    if blocks.last().is_none_or(|b| b.signature.is_some() || b.redacted.is_some()) {
        blocks.push(Reasoning::default());
    }
    if let Some(block) = blocks.last_mut() {
        block.text.push_str(text);
        if signature.is_some() {
            block.signature = signature;
        }
    }
}

/// Gemini usage. `promptTokenCount` includes the cached tokens (`cachedContentTokenCount`), as
/// the IR's input does; tool-use prompt tokens (a server tool's results fed back) are input too.
/// `candidatesTokenCount` excludes the thoughts, which the IR's output includes.
fn decode_usage(v: &Value) -> Option<Usage> {
    let obj = v.as_object()?;
    let n = |k: &str| obj.get(k).and_then(Value::as_u64).unwrap_or(0);
    let reasoning = n("thoughtsTokenCount");
    Some(Usage {
        input_tokens: n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
        output_tokens: n("candidatesTokenCount").saturating_add(reasoning),
        cache_read_tokens: n("cachedContentTokenCount"),
        // Gemini reports no cache writes: explicit caches are created by a separate call.
        cache_write_tokens: 0,
        reasoning_tokens: reasoning,
    })
}

/// The usage fields `decode_usage` reads; the others (per-modality details, `serviceTier`,
/// Vertex's `trafficType`) travel in `extra`.
const USAGE_COUNTS: &[&str] = &[
    "promptTokenCount",
    "toolUsePromptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "totalTokenCount",
];

fn encode_usage(u: &Usage, mut extra: JsonMap) -> Value {
    extra.insert("promptTokenCount".into(), u.input_tokens.into());
    extra.insert("candidatesTokenCount".into(), u.output_tokens.saturating_sub(u.reasoning_tokens).into());
    if u.reasoning_tokens > 0 {
        extra.insert("thoughtsTokenCount".into(), u.reasoning_tokens.into());
    }
    if u.cache_read_tokens > 0 {
        extra.insert("cachedContentTokenCount".into(), u.cache_read_tokens.into());
    }
    extra.insert("totalTokenCount".into(), u.total_tokens().into());
    Value::Object(extra)
}

/// A candidate's finish reason. A natural stop that produced function calls is `ToolCalls` (Gemini
/// says `STOP`); every filter (safety, recitation, blocklists, PII, Model Armor) is
/// `ContentFilter`; the rest (`MALFORMED_FUNCTION_CALL`, `LANGUAGE`, …) keep Gemini's name.
fn decode_finish(reason: &str, has_tool_calls: bool) -> FinishReason {
    match reason {
        "STOP" if has_tool_calls => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "MODEL_ARMOR"
        | "JAILBREAK" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

fn encode_finish(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop | FinishReason::ToolCalls => "STOP",
        FinishReason::Length => "MAX_TOKENS",
        FinishReason::ContentFilter => "SAFETY",
        FinishReason::Other(s) if s.is_empty() => "OTHER",
        FinishReason::Other(s) => s,
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Unix seconds of an RFC 3339 time (`2025-06-27T08:48:21.154666Z`), as Vertex's `createTime`
/// gives it; `None` for anything else.
fn unix_seconds(time: &str) -> Option<u64> {
    let (date, rest) = time.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let hms = rest.get(..8)?;
    let mut parts = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (parts.next()??, parts.next()??, parts.next()??);
    // Days from the civil date (Howard Hinnant's algorithm), then seconds; offsets other than Z
    // are applied so that any valid time gives the right instant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let offset = utc_offset_seconds(&rest[8..])?;
    u64::try_from(days * 86_400 + h * 3600 + min * 60 + s - offset).ok()
}

/// Unix seconds as an RFC 3339 time in UTC (`2025-06-27T08:48:21Z`), as Vertex writes
/// `createTime`.
fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // The civil date of a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The offset of an RFC 3339 time's tail (`.154666Z`, `+02:00`), in seconds east of UTC.
fn utc_offset_seconds(tail: &str) -> Option<i64> {
    let tail = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if tail.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match tail.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let (h, m) = tail[1..].split_once(':')?;
    Some(sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60))
}

/// Puts a value at a dotted path (`generationConfig.thinkingConfig.includeThoughts`) unless the
/// path is already set: the fields the IR models win over what `extra` kept.
fn insert_at_path(body: &mut JsonMap, path: &str, value: Value) {
    let mut keys = path.split('.').peekable();
    let mut map = body;
    while let Some(key) = keys.next() {
        if keys.peek().is_none() {
            map.entry(key.to_string()).or_insert(value);
            return;
        }
        let slot = map.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
        match slot {
            Value::Object(inner) => map = inner,
            // A modelled scalar already sits where the kept object would go: the model wins.
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths_of_gemini_and_vertex() {
        assert_eq!(
            split_model_action("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
            Some(("gemini-2.5-flash", "streamGenerateContent"))
        );
        assert_eq!(
            split_model_action(
                "https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/publishers/google/models/gemini-3-flash-preview:generateContent"
            ),
            Some(("gemini-3-flash-preview", "generateContent"))
        );
        assert_eq!(split_model_action("/v1/chat/completions"), None);
        assert_eq!(split_model_action("/v1beta/models/:generateContent"), None);
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2025-06-27T08:48:21.154666Z"), Some(1_751_014_101));
        assert_eq!(unix_seconds("2025-06-27T10:48:21+02:00"), Some(1_751_014_101));
        assert_eq!(unix_seconds("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(unix_seconds("yesterday"), None);
        for t in [0, 951_782_400, 1_709_164_800, 1_751_014_101, 4_102_444_799] {
            assert_eq!(unix_seconds(&rfc3339(t)), Some(t), "{}", rfc3339(t));
        }
        assert_eq!(rfc3339(1_751_014_101), "2025-06-27T08:48:21Z");
    }

    #[test]
    fn usage_counts_thoughts_as_output_and_cache_as_input() {
        let u = decode_usage(&serde_json::json!({
            "promptTokenCount": 3520, "cachedContentTokenCount": 3512, "candidatesTokenCount": 2,
            "thoughtsTokenCount": 42, "toolUsePromptTokenCount": 5, "totalTokenCount": 3569
        }))
        .unwrap_or_default();
        assert_eq!((u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens), (3525, 44, 3512, 42));
        let back = encode_usage(&u, JsonMap::new());
        assert_eq!(decode_usage(&back), Some(u));
        assert_eq!(back["totalTokenCount"], 3569);
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(decode_finish("STOP", true), FinishReason::ToolCalls);
        assert_eq!(decode_finish("RECITATION", false), FinishReason::ContentFilter);
        assert_eq!(
            decode_finish("MALFORMED_FUNCTION_CALL", false),
            FinishReason::Other("MALFORMED_FUNCTION_CALL".into())
        );
        for r in
            [FinishReason::Stop, FinishReason::Length, FinishReason::ContentFilter, FinishReason::Other("SPAM".into())]
        {
            assert_eq!(decode_finish(encode_finish(&r), false), r);
        }
    }

    #[test]
    fn kept_fields_never_override_modelled_ones() {
        let mut body = JsonMap::new();
        body.insert("generationConfig".into(), serde_json::json!({"temperature": 0.5}));
        insert_at_path(&mut body, "generationConfig.temperature", 1.0.into());
        insert_at_path(&mut body, "generationConfig.thinkingConfig.includeThoughts", true.into());
        insert_at_path(&mut body, "safetySettings", serde_json::json!([]));
        assert_eq!(
            Value::Object(body),
            serde_json::json!({"generationConfig": {"temperature": 0.5, "thinkingConfig": {"includeThoughts": true}},
                               "safetySettings": []})
        );
    }
}
