//! `generateContent` / `streamGenerateContent` request bodies, written.
//!
//! What the IR carries that Gemini cannot take is a 400 naming it, never a silent drop:
//! a file uploaded to another provider (`file_id`), inline bytes whose media type is unknown,
//! tool-call arguments that are not a JSON object, an image by URL inside a tool result, a seed
//! beyond 32 bits, an effort Gemini has no thinking level for, and a tool result whose function
//! cannot be named. Dropped because they change nothing Gemini could honour, and listed in
//! `docs/translation-gemini.md`: `user`, `metadata`, `parallel_tool_calls` (Gemini cannot forbid
//! parallel calls), `strict` on tools and schemas (Gemini always constrains), cache markers
//! (Gemini caches implicitly or through `cachedContent`), an image's `detail`, a file's name, a
//! participant's `name`, the name and description of a response schema, and Anthropic's redacted
//! reasoning (encrypted for Anthropic only).

use serde_json::{Map, Value, json};
use switchyard_types::{
    ChatRequest, ContentPart, GatewayError, JsonMap, MediaSource, Message, Protocol, ReasoningConfig, ResponseFormat,
    Role, ToolChoice,
};

use super::chat_request::MIME_TYPE;
use super::schema::json_schema_for_gemini;
use super::{FUNCTION_EXTRAS, SIGNATURE_SENTINEL, insert_at_path, invalid};

/// Encodes an IR chat request as a `generateContent` body (the model goes in the URL). Fields
/// that came from a Gemini client and the IR does not model are put back.
pub fn encode_chat_request(req: &ChatRequest) -> Result<JsonMap, GatewayError> {
    let same = req.extra.protocol == Some(Protocol::Gemini);
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(encode_contents(req, same)?));
    let system: Vec<Value> = req
        .system
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.content.iter().enumerate().map(move |(j, p)| (i, j, p)))
        .map(|(i, j, p)| encode_part(p, same, &format!("system[{i}].content[{j}]")))
        .collect::<Result<_, _>>()?;
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let tools = encode_tools(req, same);
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &req.tool_choice {
        body.insert("toolConfig".into(), json!({ "functionCallingConfig": encode_tool_choice(choice) }));
    }
    let config = encode_generation_config(req, same)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if same {
        for (key, value) in &req.extra.fields {
            if key != "tools" && key != FUNCTION_EXTRAS {
                insert_at_path(&mut body, key, value.clone());
            }
        }
    }
    Ok(body)
}

fn encode_contents(req: &ChatRequest, same: bool) -> Result<Vec<Value>, GatewayError> {
    let active_from = active_loop_start(&req.messages);
    let sentinel_ok = !before_gemini_3(&req.model);
    let mut contents = Vec::with_capacity(req.messages.len());
    // Consecutive tool results answer one model turn: Gemini wants them in one user content.
    let mut results: Vec<Value> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        if m.role == Role::Tool {
            results.push(encode_tool_result(&req.messages[..i], i, m)?);
            continue;
        }
        if !results.is_empty() {
            contents.push(json!({ "role": "user", "parts": std::mem::take(&mut results) }));
        }
        let (role, parts) = match m.role {
            Role::Assistant => ("model", encode_model_turn(m, i, same, sentinel_ok && i >= active_from, true)?),
            _ => ("user", encode_parts(&m.content, same, i)?),
        };
        // Gemini refuses a content without parts; an empty turn says nothing.
        if !parts.is_empty() {
            contents.push(json!({ "role": role, "parts": parts }));
        }
    }
    if !results.is_empty() {
        contents.push(json!({ "role": "user", "parts": results }));
    }
    Ok(contents)
}

/// Where the current turn's tool loop starts: after the last user message with text. Gemini 3
/// checks signatures there only.
fn active_loop_start(messages: &[Message]) -> usize {
    messages
        .iter()
        .rposition(|m| {
            m.role == Role::User && m.content.iter().any(|p| matches!(p, ContentPart::Text(t) if !t.text.is_empty()))
        })
        .unwrap_or(0)
}

/// Whether the model is named as a Gemini 1.x or 2.x, which check no function-call signatures
/// and know thinking budgets but not thinking levels. (The IR's model may be a public alias:
/// then it is taken for a current model.)
fn before_gemini_3(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    name.starts_with("gemini-1") || name.starts_with("gemini-2")
}

fn encode_parts(parts: &[ContentPart], same: bool, i: usize) -> Result<Vec<Value>, GatewayError> {
    parts.iter().enumerate().map(|(j, p)| encode_part(p, same, &format!("messages[{i}].content[{j}]"))).collect()
}

/// An assistant turn: its reasoning as thought parts, then its content, then its function calls
/// (Gemini's order). Signatures go back where Gemini put them: on the call, on the thought, or
/// on the first text of the answer for a signature that came without thoughts. When no call
/// carries a signature, the last reasoning block's signature is the first call's (a streamed
/// answer leaves it there); failing that, in the current turn, the first call gets Google's
/// stand-in, without which Gemini 3 refuses the turn.
///
/// Not `strict` (an answer being encoded, which cannot fail): arguments that are not a JSON
/// object become `{}`, and media Gemini cannot take are left out.
pub(super) fn encode_model_turn(
    m: &Message,
    i: usize,
    same: bool,
    stand_in: bool,
    strict: bool,
) -> Result<Vec<Value>, GatewayError> {
    let mut parts = Vec::new();
    let calls_signed = m.tool_calls.iter().any(|c| c.signature.is_some());
    let last = m.reasoning.len().saturating_sub(1);
    let moved = match (m.tool_calls.is_empty() || calls_signed, m.reasoning.last()) {
        (false, Some(r)) => r.signature.as_deref(),
        _ => None,
    };
    let has_text = m.content.iter().any(|p| matches!(p, ContentPart::Text(_)));
    let mut on_text = None;
    for (k, r) in m.reasoning.iter().enumerate() {
        let signature = if moved.is_some() && k == last { None } else { r.signature.as_deref() };
        match (r.text.is_empty(), signature) {
            // Redacted reasoning is Anthropic's, encrypted for Anthropic: nothing Gemini can read.
            (true, None) => {}
            (true, Some(s)) if k == last && has_text => on_text = Some(s),
            (true, Some(s)) => parts.push(json!({ "text": "", "thoughtSignature": s })),
            (false, s) => {
                let mut part = json!({ "text": r.text, "thought": true });
                if let Some(s) = s {
                    part["thoughtSignature"] = s.into();
                }
                parts.push(part);
            }
        }
    }
    for (j, p) in m.content.iter().enumerate() {
        let mut part = match encode_part(p, same, &format!("messages[{i}].content[{j}]")) {
            Ok(part) => part,
            Err(e) if strict => return Err(e),
            Err(_) => continue,
        };
        if let (ContentPart::Text(_), Some(s)) = (p, on_text) {
            part["thoughtSignature"] = s.into();
            on_text = None;
        }
        parts.push(part);
    }
    if let Some(refusal) = &m.refusal {
        parts.push(json!({ "text": refusal }));
    }
    for (j, c) in m.tool_calls.iter().enumerate() {
        let args = match call_arguments(&c.arguments, &format!("messages[{i}].tool_calls[{j}].function.arguments")) {
            Ok(args) => args,
            Err(e) if strict => return Err(e),
            Err(_) => Value::Object(Map::new()),
        };
        let mut call = Map::new();
        if !c.id.is_empty() {
            call.insert("id".into(), c.id.clone().into());
        }
        call.insert("name".into(), c.name.clone().into());
        call.insert("args".into(), args);
        let mut part = json!({ "functionCall": call });
        let borrowed = if j == 0 { moved.or(stand_in.then_some(SIGNATURE_SENTINEL)) } else { None };
        if let Some(s) = c.signature.as_deref().or(if calls_signed { None } else { borrowed }) {
            part["thoughtSignature"] = s.into();
        }
        parts.push(part);
    }
    Ok(parts)
}

/// Tool-call arguments as Gemini's `args` object. Models of other providers sometimes write
/// invalid JSON; Gemini cannot carry it.
fn call_arguments(arguments: &str, param: &str) -> Result<Value, GatewayError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(invalid(param, "Gemini needs tool-call arguments that are a JSON object; these are not.")),
    }
}

/// A tool message as a `functionResponse` part. Gemini needs the function's name, which the IR
/// keeps on the call: it is found through the call id.
fn encode_tool_result(before: &[Message], i: usize, m: &Message) -> Result<Value, GatewayError> {
    let id = m.tool_call_id.as_deref().unwrap_or_default();
    let name = before
        .iter()
        .rev()
        .flat_map(|prev| prev.tool_calls.iter())
        .find(|c| !id.is_empty() && c.id == id)
        .map(|c| c.name.clone())
        .or_else(|| m.name.clone())
        .ok_or_else(|| {
            invalid(
                format!("messages[{i}].tool_call_id"),
                format!("Gemini needs the name of the function '{id}' answers, and no earlier assistant tool call has that id."),
            )
        })?;
    let texts: Vec<&str> = m
        .content
        .iter()
        .filter_map(|p| if let ContentPart::Text(t) = p { Some(t.text.as_str()) } else { None })
        .collect();
    let response = if texts.is_empty() {
        Map::new()
    } else {
        let text = texts.concat();
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(obj)) => obj,
            _ => Map::from_iter([("output".to_string(), Value::String(text))]),
        }
    };
    let mut fr = Map::new();
    if !id.is_empty() {
        fr.insert("id".into(), id.into());
    }
    fr.insert("name".into(), name.into());
    fr.insert("response".into(), Value::Object(response));
    let media: Vec<Value> = m
        .content
        .iter()
        .enumerate()
        .filter(|(_, p)| !matches!(p, ContentPart::Text(_)))
        .map(|(j, p)| tool_result_media(p, &format!("messages[{i}].content[{j}]")))
        .collect::<Result<_, _>>()?;
    if !media.is_empty() {
        fr.insert("parts".into(), Value::Array(media));
    }
    Ok(json!({ "functionResponse": fr }))
}

/// Media in a tool result: Gemini takes inline bytes there, not URIs.
fn tool_result_media(part: &ContentPart, param: &str) -> Result<Value, GatewayError> {
    let encoded = encode_part(part, false, param)?;
    match encoded.get("inlineData") {
        Some(blob) => Ok(json!({ "inlineData": blob })),
        None => Err(invalid(param, "Gemini takes only inline data (base64) in a tool result, not a URL.")),
    }
}

/// One content part of a user, system or model turn.
fn encode_part(part: &ContentPart, same: bool, param: &str) -> Result<Value, GatewayError> {
    let value = match part {
        ContentPart::Text(t) => {
            let mut p = if same { t.extra.clone() } else { Map::new() };
            p.insert("text".into(), t.text.clone().into());
            Value::Object(p)
        }
        ContentPart::Image(img) => {
            let hint = img.extra.get(MIME_TYPE).and_then(Value::as_str);
            let mut p = media(&img.source, hint, None, param)?;
            if same {
                for (k, v) in img.extra.iter().filter(|(k, _)| *k != MIME_TYPE) {
                    p.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            Value::Object(p)
        }
        ContentPart::Audio(a) => {
            json!({ "inlineData": { "mimeType": audio_mime(&a.format), "data": a.data } })
        }
        ContentPart::File(f) => Value::Object(media(&f.source, None, f.filename.as_deref(), param)?),
    };
    Ok(value)
}

fn audio_mime(format: &str) -> String {
    if format.contains('/') { format.to_string() } else { format!("audio/{format}") }
}

/// Bytes or a URI as `inlineData` or `fileData`. Gemini needs the media type of inline bytes; it
/// is taken from the source, the file name, or the bytes' signature.
fn media(
    source: &MediaSource,
    hint: Option<&str>,
    filename: Option<&str>,
    param: &str,
) -> Result<JsonMap, GatewayError> {
    let mut out = Map::new();
    match source {
        MediaSource::Base64 { media_type, data } => {
            let mime = media_type
                .clone()
                .or_else(|| hint.map(str::to_string))
                .or_else(|| filename.and_then(mime_from_name))
                .or_else(|| sniff_base64(data))
                .ok_or_else(|| {
                    invalid(param, "Gemini needs the media type of inline data, and it could not be determined.")
                })?;
            out.insert("inlineData".into(), json!({ "mimeType": mime, "data": data }));
        }
        MediaSource::Url { url } => {
            let mut file = Map::new();
            let mime =
                hint.map(str::to_string).or_else(|| filename.and_then(mime_from_name)).or_else(|| mime_from_name(url));
            if let Some(mime) = mime {
                file.insert("mimeType".into(), mime.into());
            }
            file.insert("fileUri".into(), url.clone().into());
            out.insert("fileData".into(), Value::Object(file));
        }
        MediaSource::FileId { id } => {
            return Err(invalid(
                param,
                format!(
                    "The file '{id}' was uploaded to another provider; Gemini cannot read it. Send its data or a URL."
                ),
            ));
        }
    }
    Ok(out)
}

/// The media type a file name or URL's extension implies, for the types Gemini reads.
fn mime_from_name(name: &str) -> Option<String> {
    let path = name.split(['?', '#']).next().unwrap_or_default();
    let (_, ext) = path.rsplit_once('.')?;
    let mime = match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "text/xml",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "aiff" => "audio/aiff",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/mov",
        "webm" => "video/webm",
        "avi" => "video/avi",
        _ => return None,
    };
    Some(mime.to_string())
}

/// The media type of base64 bytes from their first bytes, for the formats clients send most.
fn sniff_base64(data: &str) -> Option<String> {
    let kinds = [
        ("iVBORw0KGgo", "image/png"),
        ("/9j/", "image/jpeg"),
        ("R0lGOD", "image/gif"),
        ("JVBERi0", "application/pdf"),
        ("SUQz", "audio/mp3"),
    ];
    if data.starts_with("UklGR") {
        // RIFF: WEBP or WAVE, named at bytes 8..12 (base64 characters 11..16).
        let tag = data.get(11..16)?;
        return Some(if tag.starts_with("XRUJQ") { "image/webp" } else { "audio/wav" }.to_string());
    }
    kinds.iter().find(|(prefix, _)| data.starts_with(prefix)).map(|(_, mime)| mime.to_string())
}

fn encode_tools(req: &ChatRequest, same: bool) -> Vec<Value> {
    let mut out = Vec::new();
    let kept = if same { req.extra.fields.get(FUNCTION_EXTRAS).and_then(Value::as_object) } else { None };
    if !req.tools.is_empty() {
        let declarations: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), t.name.clone().into());
                if let Some(description) = &t.description {
                    d.insert("description".into(), description.clone().into());
                }
                if let Some(schema) = &t.parameters {
                    d.insert("parametersJsonSchema".into(), json_schema_for_gemini(schema));
                }
                if let Some(Value::Object(extra)) = kept.and_then(|k| k.get(&t.name)) {
                    for (k, v) in extra {
                        d.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                Value::Object(d)
            })
            .collect();
        out.push(json!({ "functionDeclarations": declarations }));
    }
    if same && let Some(Value::Array(server_tools)) = req.extra.fields.get("tools") {
        out.extend(server_tools.iter().cloned());
    }
    out
}

fn encode_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Tool(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
    }
}

fn encode_generation_config(req: &ChatRequest, same: bool) -> Result<JsonMap, GatewayError> {
    let s = &req.sampling;
    let mut g = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            g.insert(key.into(), v);
        }
    };
    put("maxOutputTokens", s.max_tokens.map(Value::from));
    put("temperature", s.temperature.map(Value::from));
    put("topP", s.top_p.map(Value::from));
    put("topK", s.top_k.map(Value::from));
    put("stopSequences", (!s.stop.is_empty()).then(|| Value::from(s.stop.clone())));
    put("presencePenalty", s.presence_penalty.map(Value::from));
    put("frequencyPenalty", s.frequency_penalty.map(Value::from));
    put("candidateCount", s.n.map(Value::from));
    put("responseLogprobs", s.logprobs.map(Value::from));
    put("logprobs", s.top_logprobs.map(Value::from));
    if let Some(seed) = s.seed {
        let seed = i32::try_from(seed).map_err(|_| invalid("seed", "Gemini takes a seed of at most 32 bits."))?;
        g.insert("seed".into(), seed.into());
    }
    match &req.response_format {
        None => {}
        Some(ResponseFormat::Text) => {
            g.insert("responseMimeType".into(), "text/plain".into());
        }
        Some(ResponseFormat::JsonObject) => {
            g.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.insert("responseMimeType".into(), "application/json".into());
            if let Some(schema) = schema {
                g.insert("responseJsonSchema".into(), json_schema_for_gemini(schema));
            }
        }
    }
    if let Some(r) = &req.reasoning {
        // A Gemini client's own settings go as they came, whatever the model.
        let budgets_only = !same && before_gemini_3(&req.model);
        g.insert("thinkingConfig".into(), Value::Object(encode_thinking(r, same, budgets_only)?));
    }
    Ok(g)
}

/// The IR's reasoning as `thinkingConfig`: a budget is `thinkingBudget`, an effort is
/// `thinkingLevel` (`none` turns thinking off with a zero budget), and neither is the dynamic
/// budget. Gemini 2 refuses thinking levels: for it an effort is a budget (see
/// [`effort_budget`]). A client of another protocol that asks for reasoning expects to see it:
/// thought summaries are requested for it (a Gemini client says so itself).
fn encode_thinking(r: &ReasoningConfig, same: bool, budgets_only: bool) -> Result<JsonMap, GatewayError> {
    let mut t = Map::new();
    if let Some(budget) = r.budget_tokens {
        t.insert("thinkingBudget".into(), budget.into());
    }
    let effort = r.effort.as_deref().map(str::to_ascii_lowercase);
    match effort.as_deref() {
        None => {}
        Some(effort) if budgets_only && r.budget_tokens.is_none() => {
            let budget = effort_budget(effort).ok_or_else(|| unknown_effort(effort))?;
            t.insert("thinkingBudget".into(), budget.into());
        }
        Some("none") => {
            t.entry("thinkingBudget").or_insert(0.into());
        }
        Some(level @ ("minimal" | "low" | "medium" | "high")) => {
            t.insert("thinkingLevel".into(), level.to_ascii_uppercase().into());
        }
        Some("xhigh" | "max") => {
            t.insert("thinkingLevel".into(), "HIGH".into());
        }
        Some(other) if same => {
            t.insert("thinkingLevel".into(), other.to_ascii_uppercase().into());
        }
        Some(other) => return Err(unknown_effort(other)),
    }
    if t.is_empty() {
        t.insert("thinkingBudget".into(), (-1).into());
    }
    let off = t.get("thinkingBudget").and_then(Value::as_i64) == Some(0);
    if !same && !off {
        t.insert("includeThoughts".into(), true.into());
    }
    Ok(t)
}

/// A thinking budget for an effort, for models that take budgets only. Every budget is within
/// the range of each Gemini 2.5 model (Pro 128–32768, Flash 0–24576, Flash-Lite 512–24576).
fn effort_budget(effort: &str) -> Option<u64> {
    Some(match effort {
        "none" => 0,
        "minimal" => 512,
        "low" => 1024,
        "medium" => 8192,
        "high" | "xhigh" | "max" => 24576,
        _ => return None,
    })
}

fn unknown_effort(effort: &str) -> GatewayError {
    invalid(
        "reasoning_effort",
        format!("Gemini has no thinking level for the effort '{effort}' (minimal, low, medium, high)."),
    )
}

#[cfg(test)]
mod tests {
    use switchyard_types::{FilePart, ImagePart, SystemPrompt, Tool, ToolCall};

    use super::*;

    fn user(text: &str) -> Message {
        Message::new(Role::User, vec![ContentPart::text(text)])
    }

    fn assistant_calling(id: &str, args: &str) -> Message {
        let mut m = Message::new(Role::Assistant, Vec::new());
        m.tool_calls.push(ToolCall { id: id.into(), name: "f".into(), arguments: args.into(), signature: None });
        m
    }

    fn tool(id: &str, text: &str) -> Message {
        let mut m = Message::new(Role::Tool, vec![ContentPart::text(text)]);
        m.tool_call_id = Some(id.into());
        m
    }

    #[test]
    fn what_gemini_cannot_take_is_a_400() {
        let base = ChatRequest { messages: vec![user("hi")], ..Default::default() };
        let with = |f: &dyn Fn(&mut ChatRequest)| {
            let mut r = base.clone();
            f(&mut r);
            encode_chat_request(&r).err().map(|e| (e.http_status(), e.param.unwrap_or_default()))
        };
        let file_id =
            ContentPart::File(FilePart { source: MediaSource::FileId { id: "file-1".into() }, filename: None });
        assert_eq!(
            with(&|r| r.messages[0].content.push(file_id.clone())),
            Some((400, "messages[0].content[1]".into()))
        );
        let unknown = ContentPart::Image(ImagePart {
            source: MediaSource::Base64 { media_type: None, data: "AAAA".into() },
            detail: None,
            extra: JsonMap::new(),
        });
        assert_eq!(
            with(&|r| r.messages[0].content.push(unknown.clone())),
            Some((400, "messages[0].content[1]".into()))
        );
        assert_eq!(
            with(&|r| r.messages.push(assistant_calling("c", "{not json"))),
            Some((400, "messages[1].tool_calls[0].function.arguments".into()))
        );
        assert_eq!(with(&|r| r.messages.push(tool("nobody", "x"))), Some((400, "messages[1].tool_call_id".into())));
        assert_eq!(with(&|r| r.sampling.seed = Some(1 << 40)), Some((400, "seed".into())));
        assert_eq!(
            with(&|r| r.reasoning = Some(ReasoningConfig { effort: Some("galaxy-brain".into()), budget_tokens: None })),
            Some((400, "reasoning_effort".into()))
        );
        let url_image = ContentPart::Image(ImagePart {
            source: MediaSource::Url { url: "https://x/y.png".into() },
            detail: None,
            extra: JsonMap::new(),
        });
        assert_eq!(
            with(&|r| {
                r.messages.push(assistant_calling("c", "{}"));
                let mut t = tool("c", "seen");
                t.content.push(url_image.clone());
                r.messages.push(t);
            }),
            Some((400, "messages[2].content[1]".into()))
        );
    }

    #[test]
    fn another_protocols_request_becomes_gemini() {
        let mut req = ChatRequest {
            model: "gpt-4o".into(),
            system: vec![SystemPrompt { developer: false, content: vec![ContentPart::text("sys")] }],
            messages: vec![
                user("weather?"),
                assistant_calling("call_a", r#"{"city":"Paris"}"#),
                tool("call_a", "sunny"),
            ],
            tools: vec![Tool {
                name: "f".into(),
                description: Some("d".into()),
                parameters: Some(
                    json!({"type": "object", "properties": {"c": {"$ref": "#/$defs/C", "description": "c"}}}),
                ),
                strict: Some(true),
                cache: None,
            }],
            tool_choice: Some(ToolChoice::Required),
            response_format: Some(ResponseFormat::JsonSchema {
                name: "out".into(),
                description: None,
                schema: Some(json!({"type": "object"})),
                strict: Some(true),
            }),
            reasoning: Some(ReasoningConfig { effort: Some("high".into()), budget_tokens: None }),
            ..Default::default()
        };
        req.sampling.n = Some(2);
        req.sampling.stop = vec!["x".into()];
        let body = Value::Object(encode_chat_request(&req).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "sys"}]}));
        let call = &body["contents"][1]["parts"][0];
        assert_eq!(call["functionCall"], json!({"id": "call_a", "name": "f", "args": {"city": "Paris"}}));
        // An unsigned call of the current turn gets Google's stand-in signature.
        assert_eq!(call["thoughtSignature"], SIGNATURE_SENTINEL);
        assert_eq!(
            body["contents"][2],
            json!({"role": "user", "parts": [{"functionResponse": {"id": "call_a", "name": "f", "response": {"output": "sunny"}}}]})
        );
        let decl = &body["tools"][0]["functionDeclarations"][0];
        assert_eq!(
            decl["parametersJsonSchema"]["properties"]["c"],
            json!({"description": "c", "anyOf": [{"$ref": "#/$defs/C"}]})
        );
        assert_eq!(body["toolConfig"], json!({"functionCallingConfig": {"mode": "ANY"}}));
        let g = &body["generationConfig"];
        assert_eq!(g["responseMimeType"], "application/json");
        assert_eq!(g["responseJsonSchema"], json!({"type": "object"}));
        assert_eq!(g["candidateCount"], 2);
        assert_eq!(g["thinkingConfig"], json!({"thinkingLevel": "HIGH", "includeThoughts": true}));

        // Gemini 2 models check no signatures (no stand-in for them) and refuse thinking levels.
        req.model = "gemini-2.5-flash".into();
        let body = encode_chat_request(&req).unwrap_or_else(|e| panic!("{e}"));
        assert!(body["contents"][1]["parts"][0].get("thoughtSignature").is_none());
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 24576, "includeThoughts": true})
        );
    }

    #[test]
    fn a_streamed_signature_goes_back_on_the_first_call() {
        // What a streamed Gemini answer assembles to: the call's signature is a reasoning block.
        let mut m = assistant_calling("call_r_0", "{}");
        m.reasoning.push(switchyard_types::Reasoning {
            text: String::new(),
            signature: Some("SIG".into()),
            redacted: None,
        });
        let req = ChatRequest { messages: vec![user("go"), m], ..Default::default() };
        let body = encode_chat_request(&req).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body["contents"][1]["parts"],
            json!([{"functionCall": {"id": "call_r_0", "name": "f", "args": {}}, "thoughtSignature": "SIG"}])
        );
    }
}
