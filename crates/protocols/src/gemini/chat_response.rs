//! `generateContent` answers (and each chunk of a stream, which has the same shape).

use serde_json::{Map, Value, json};
use switchyard_types::{
    AudioPart, ChatResponse, Choice, ContentPart, Extra, FilePart, FinishReason, ImagePart, JsonMap, MediaSource,
    Message, Protocol, Role, ToolCall,
};

use super::chat_request::audio_format;
use super::request_encode::encode_model_turn;
use super::{
    USAGE_COUNTS, call_id, decode_finish, decode_usage, encode_finish, encode_usage, push_reasoning, rfc3339,
    str_field, unix_seconds,
};

/// Fields of an answer the IR models; the others (`createTime`, `promptFeedback`, …) are kept in
/// `extra`, with the candidates' and the usage's own leftovers under `candidates` and
/// `usageMetadata`.
const KNOWN: &[&str] = &["candidates", "usageMetadata", "modelVersion", "responseId"];
const CANDIDATE_KNOWN: &[&str] = &["content", "finishReason", "index"];

/// Decodes an upstream answer leniently: missing fields take defaults.
pub fn decode_chat_response(v: &Value) -> ChatResponse {
    let id = str_field(v, "responseId").unwrap_or_default();
    let mut extra = leftovers(v, KNOWN);
    let mut kept = Vec::new();
    let mut choices = Vec::new();
    for (pos, c) in v.get("candidates").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let (choice, rest) = decode_candidate(c, pos, &id);
        if !rest.is_empty() {
            let mut rest = rest;
            rest.insert("index".into(), choice.index.into());
            kept.push(Value::Object(rest));
        }
        choices.push(choice);
    }
    if choices.is_empty() && v.pointer("/promptFeedback/blockReason").is_some() {
        // The prompt itself was blocked: no candidate at all.
        let message = Message::new(Role::Assistant, Vec::new());
        choices.push(Choice { index: 0, message, finish_reason: Some(FinishReason::ContentFilter) });
    }
    if !kept.is_empty() {
        extra.insert("candidates".into(), Value::Array(kept));
    }
    let usage_rest = v.get("usageMetadata").map(|u| leftovers(u, USAGE_COUNTS)).unwrap_or_default();
    if !usage_rest.is_empty() {
        extra.insert("usageMetadata".into(), Value::Object(usage_rest));
    }
    ChatResponse {
        id,
        model: str_field(v, "modelVersion").unwrap_or_default(),
        created: v.get("createTime").and_then(Value::as_str).and_then(unix_seconds).unwrap_or(0),
        choices,
        usage: v.get("usageMetadata").and_then(decode_usage),
        extra: Extra { protocol: Some(Protocol::Gemini), fields: extra },
    }
}

/// The fields of an object other than `known`.
fn leftovers(v: &Value, known: &[&str]) -> JsonMap {
    let Some(obj) = v.as_object() else { return JsonMap::new() };
    obj.iter().filter(|(k, _)| !known.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// One candidate as a choice, with the fields the IR does not model (safety ratings, citations,
/// grounding, log probabilities, `finishMessage`).
fn decode_candidate(c: &Value, pos: usize, response_id: &str) -> (Choice, JsonMap) {
    let index = c.get("index").and_then(Value::as_u64).map_or(pos as u32, |i| i as u32);
    let mut message = Message::new(Role::Assistant, Vec::new());
    for part in c.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
        add_part(&mut message, part, response_id, index);
    }
    let reason = c.get("finishReason").and_then(Value::as_str);
    let finish_reason = reason.map(|r| decode_finish(r, !message.tool_calls.is_empty()));
    let mut rest = leftovers(c, CANDIDATE_KNOWN);
    // Reasons the IR merges (RECITATION and SPII are content filters, like SAFETY) are kept, so
    // that a Gemini client sees Gemini's own.
    if let (Some(r), Some(f)) = (reason, &finish_reason)
        && encode_finish(f) != r
    {
        rest.insert("finishReason".into(), r.into());
    }
    (Choice { index, message, finish_reason }, rest)
}

/// One part of an answer. Thoughts are reasoning; a signature on any other part closes the
/// reasoning before it (see `push_reasoning`), except on a function call, which keeps its own.
fn add_part(m: &mut Message, part: &Value, response_id: &str, candidate: u32) {
    let signature = str_field(part, "thoughtSignature");
    if let Some(call) = part.get("functionCall") {
        let n = m.tool_calls.len();
        m.tool_calls.push(ToolCall {
            id: str_field(call, "id").unwrap_or_else(|| call_id(response_id, candidate, n)),
            name: str_field(call, "name").unwrap_or_default(),
            arguments: call_arguments(call),
            signature,
        });
        return;
    }
    let thought = part.get("thought").and_then(Value::as_bool).unwrap_or(false);
    if let (true, Some(text)) = (thought, part.get("text").and_then(Value::as_str)) {
        if !text.is_empty() || signature.is_some() {
            push_reasoning(&mut m.reasoning, text, signature);
        }
        return;
    }
    if signature.is_some() {
        push_reasoning(&mut m.reasoning, "", signature);
    }
    if let Some(content) = answer_content(part) {
        m.content.push(content);
    }
}

/// A function call's `args` as the IR's argument text (`{}` when Gemini sends none).
pub(super) fn call_arguments(call: &Value) -> String {
    match call.get("args") {
        Some(args @ Value::Object(_)) => args.to_string(),
        _ => "{}".to_string(),
    }
}

/// Text, media, and code execution (shown as fenced text, which is how a client of another
/// protocol can see it) of an answer part.
pub(super) fn answer_content(part: &Value) -> Option<ContentPart> {
    if let Some(text) = part.get("text").and_then(Value::as_str) {
        return (!text.is_empty()).then(|| ContentPart::text(text));
    }
    if let Some(blob) = part.get("inlineData") {
        let mime = str_field(blob, "mimeType").unwrap_or_default();
        let data = str_field(blob, "data").unwrap_or_default();
        return Some(media(&mime, MediaSource::Base64 { media_type: Some(mime.clone()), data }));
    }
    if let Some(file) = part.get("fileData") {
        let mime = str_field(file, "mimeType").unwrap_or_default();
        return Some(media(&mime, MediaSource::Url { url: str_field(file, "fileUri").unwrap_or_default() }));
    }
    if let Some(code) = part.get("executableCode") {
        let language = str_field(code, "language").unwrap_or_default().to_ascii_lowercase();
        let code = str_field(code, "code").unwrap_or_default();
        return Some(ContentPart::text(format!("```{language}\n{code}\n```\n")));
    }
    let result = part.get("codeExecutionResult")?;
    Some(ContentPart::text(format!("```\n{}\n```\n", str_field(result, "output").unwrap_or_default())))
}

fn media(mime: &str, source: MediaSource) -> ContentPart {
    if mime.starts_with("image/") {
        return ContentPart::Image(ImagePart { source, detail: None, extra: JsonMap::new() });
    }
    match (audio_format(mime), source) {
        (Some(format), MediaSource::Base64 { data, .. }) => ContentPart::Audio(AudioPart { data, format }),
        (_, source) => ContentPart::File(FilePart { source, filename: None }),
    }
}

/// Encodes an IR answer as a `generateContent` answer. Fields a Gemini upstream sent that the IR
/// does not model are put back.
pub fn encode_chat_response(r: &ChatResponse) -> Value {
    let same = r.extra.protocol == Some(Protocol::Gemini);
    let kept = |key: &str| if same { r.extra.fields.get(key) } else { None };
    let kept_candidates: Vec<&Value> = kept("candidates").and_then(Value::as_array).into_iter().flatten().collect();
    let mut body = Map::new();
    let blocked = kept("promptFeedback").is_some_and(|p| p.get("blockReason").is_some())
        && r.choices.iter().all(|c| c.message.content.is_empty() && c.message.tool_calls.is_empty());
    if !blocked {
        let candidates: Vec<Value> = r
            .choices
            .iter()
            .map(|c| {
                let rest =
                    kept_candidates.iter().find(|k| k.get("index").and_then(Value::as_u64) == Some(c.index.into()));
                encode_candidate(c, same, rest.and_then(|k| k.as_object()))
            })
            .collect();
        body.insert("candidates".into(), Value::Array(candidates));
    }
    if let Some(u) = &r.usage {
        let rest = kept("usageMetadata").and_then(Value::as_object).cloned().unwrap_or_default();
        body.insert("usageMetadata".into(), encode_usage(u, rest));
    }
    body.insert("modelVersion".into(), r.model.clone().into());
    body.insert("responseId".into(), r.id.clone().into());
    if r.created > 0 && !(same && r.extra.fields.contains_key("createTime")) {
        body.insert("createTime".into(), rfc3339(r.created).into());
    }
    if same {
        for (k, v) in r.extra.fields.iter().filter(|(k, _)| *k != "candidates" && *k != "usageMetadata") {
            body.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Value::Object(body)
}

fn encode_candidate(c: &Choice, same: bool, rest: Option<&JsonMap>) -> Value {
    let mut obj = Map::new();
    let parts = encode_model_turn(&c.message, c.index as usize, same, false, false).unwrap_or_default();
    if !parts.is_empty() {
        obj.insert("content".into(), json!({ "parts": parts, "role": "model" }));
    }
    if let Some(reason) = &c.finish_reason {
        // Gemini's own reason when it was kept and still says the same thing.
        let has_calls = !c.message.tool_calls.is_empty();
        let own = rest
            .and_then(|r| r.get("finishReason"))
            .and_then(Value::as_str)
            .filter(|own| decode_finish(own, has_calls) == *reason);
        obj.insert("finishReason".into(), own.unwrap_or_else(|| encode_finish(reason)).into());
    }
    obj.insert("index".into(), c.index.into());
    for (k, v) in rest.into_iter().flatten() {
        obj.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_calls_thoughts_signatures_and_keeps_the_rest() {
        let v = json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "hmm", "thought": true},
                    {"text": "Sure.", "thoughtSignature": "U0lH"},
                    {"functionCall": {"name": "f", "args": {"b": 1, "a": 2}}, "thoughtSignature": "Q0FMTA=="},
                    {"functionCall": {"id": "own", "name": "g"}}
                ]},
                "finishReason": "STOP", "index": 0, "finishMessage": "Model generated function call(s).",
                "safetyRatings": []
            }],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7,
                              "totalTokenCount": 22, "serviceTier": "standard"},
            "modelVersion": "gemini-3-flash-preview", "responseId": "R1",
            "createTime": "2025-06-27T08:48:21.154666Z"
        });
        let r = decode_chat_response(&v);
        let m = &r.choices[0].message;
        assert_eq!(m.text(), "Sure.");
        assert_eq!(m.reasoning.len(), 1);
        assert_eq!((m.reasoning[0].text.as_str(), m.reasoning[0].signature.as_deref()), ("hmm", Some("U0lH")));
        assert_eq!(m.tool_calls[0].id, "call_R1_0");
        assert_eq!(m.tool_calls[0].arguments, r#"{"b":1,"a":2}"#);
        assert_eq!(m.tool_calls[0].signature.as_deref(), Some("Q0FMTA=="));
        assert_eq!((m.tool_calls[1].id.as_str(), m.tool_calls[1].arguments.as_str()), ("own", "{}"));
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(r.created, 1_751_014_101);
        let u = r.usage.unwrap_or_default();
        assert_eq!((u.input_tokens, u.output_tokens, u.reasoning_tokens), (10, 12, 7));
        let back = encode_chat_response(&r);
        assert_eq!(back["candidates"][0]["finishMessage"], "Model generated function call(s).");
        assert_eq!(back["usageMetadata"]["serviceTier"], "standard");
        assert_eq!(back["createTime"], v["createTime"]);
        assert_eq!(back["candidates"][0]["content"]["parts"][2]["thoughtSignature"], "Q0FMTA==");
        assert_eq!(decode_chat_response(&back), r);
    }

    #[test]
    fn filters_and_blocked_prompts_are_content_filters() {
        let v = json!({"candidates": [{"finishReason": "RECITATION", "index": 0}], "responseId": "x"});
        let r = decode_chat_response(&v);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ContentFilter));
        assert_eq!(encode_chat_response(&r)["candidates"][0]["finishReason"], "RECITATION");

        let blocked = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                             "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}});
        let r = decode_chat_response(&blocked);
        assert_eq!(r.choices.len(), 1);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ContentFilter));
        let back = encode_chat_response(&r);
        assert!(back.get("candidates").is_none());
        assert_eq!(decode_chat_response(&back), r);
    }

    #[test]
    fn other_protocols_answers_encode() {
        let mut m = Message::new(Role::Assistant, vec![ContentPart::text("hi")]);
        m.tool_calls.push(ToolCall { id: "c1".into(), name: "f".into(), arguments: "{broken".into(), signature: None });
        let r = ChatResponse {
            id: "chatcmpl-1".into(),
            model: "gpt-4o".into(),
            choices: vec![Choice { index: 0, message: m, finish_reason: Some(FinishReason::ToolCalls) }],
            ..Default::default()
        };
        let v = encode_chat_response(&r);
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        assert_eq!(
            v["candidates"][0]["content"]["parts"][1]["functionCall"],
            json!({"id": "c1", "name": "f", "args": {}})
        );
    }
}
