//! Content blocks: Converse's one-member unions (`{"text": …}`, `{"image": …}`, `{"toolUse": …}`)
//! to the IR's parts, reasoning, tool calls and tool results, and back. Shared by requests
//! (decoded strictly) and answers (a block that does not decode is kept whole instead).
//!
//! Only what maps back exactly becomes IR: an image or document from S3, a document given as
//! text, a server tool's use, guard content, video… stay the blocks they were, in
//! `Message::extra`, with their place among the others kept in `block_order`.
//!
//! Converse marks a cache breakpoint with a `cachePoint` block after the cached one; the IR
//! marks the cached part itself. A cache point after a text part becomes that part's marker,
//! after an image the image's `CACHE_POINT`, after a tool result the marker of the result's
//! last part. One after anything else has no IR place and is kept as a block.

use std::fmt;

use serde_json::{Map, Value, json};
use switchyard_types::{
    AudioPart, CacheMarker, ContentPart, FilePart, GatewayError, ImagePart, JsonMap, MediaSource, Message, Reasoning,
    Role, TextPart, ToolCall,
};

use super::{BLOCKS, CACHE_POINT, JSON_RESULT, redacted_from_wire, redacted_to_wire};
use crate::anthropic::{IS_ERROR, in_order, keep_order};

pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid(message).with_param(param)
}

/// One content block, sorted by where the IR keeps it. `Other` blocks are kept as they came;
/// the caller holds them.
pub(crate) enum Block {
    Part(ContentPart),
    Reasoning(Reasoning),
    Call(ToolCall),
    Result { id: String, content: Vec<ContentPart>, is_error: Option<bool> },
    Cache(CacheMarker),
    Other,
}

pub(crate) fn object<'a>(v: &'a Value, at: &str) -> Result<&'a JsonMap, GatewayError> {
    v.as_object().ok_or_else(|| invalid(at, format!("{at} must be an object")))
}

pub(crate) fn field<'a>(obj: &'a JsonMap, key: &str, at: &str) -> Result<&'a Value, GatewayError> {
    obj.get(key).ok_or_else(|| invalid(format!("{at}.{key}"), format!("{at}.{key}: Field required")))
}

pub(crate) fn string(v: &Value, at: &str) -> Result<String, GatewayError> {
    v.as_str().map(str::to_string).ok_or_else(|| invalid(at, format!("{at} must be a string")))
}

pub(crate) fn string_field(obj: &JsonMap, key: &str, at: &str) -> Result<String, GatewayError> {
    string(field(obj, key, at)?, &format!("{at}.{key}"))
}

/// Whether `obj` has no member but `allowed`: a block with more than the IR keeps is kept whole.
pub(crate) fn only(obj: &JsonMap, allowed: &[&str]) -> bool {
    obj.keys().all(|k| allowed.contains(&k.as_str()))
}

/// The single member of a union: its name and value.
pub(crate) fn member<'a>(b: &'a Value, at: &str) -> Result<(&'a str, &'a Value), GatewayError> {
    let obj = object(b, at)?;
    let mut members = obj.iter();
    match (members.next(), members.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => Err(invalid(
            at,
            format!("{at} must have exactly one member, naming the block type (text, image, toolUse, …)"),
        )),
    }
}

pub(crate) fn decode_block(b: &Value, at: &str) -> Result<Block, GatewayError> {
    let (kind, v) = member(b, at)?;
    let at = format!("{at}.{kind}");
    Ok(match kind {
        "text" => Block::Part(ContentPart::text(string(v, &at)?)),
        "image" => decode_image(v, &at)?.map_or(Block::Other, |i| Block::Part(ContentPart::Image(i))),
        "document" => decode_document(v, &at)?.map_or(Block::Other, |f| Block::Part(ContentPart::File(f))),
        "audio" => decode_audio(v, &at)?.map_or(Block::Other, |a| Block::Part(ContentPart::Audio(a))),
        "toolUse" => decode_tool_use(v, &at)?,
        "toolResult" => decode_tool_result(v, &at)?,
        "reasoningContent" => Block::Reasoning(decode_reasoning(v, &at)?),
        "cachePoint" => decode_cache_point(v, &at)?.map_or(Block::Other, Block::Cache),
        _ => Block::Other,
    })
}

const IMAGE_FORMATS: &[(&str, &str)] =
    &[("png", "image/png"), ("jpeg", "image/jpeg"), ("gif", "image/gif"), ("webp", "image/webp")];

const DOCUMENT_FORMATS: &[(&str, &str)] = &[
    ("pdf", "application/pdf"),
    ("csv", "text/csv"),
    ("doc", "application/msword"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xls", "application/vnd.ms-excel"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("html", "text/html"),
    ("txt", "text/plain"),
    ("md", "text/markdown"),
];

fn media_type_of(table: &[(&str, &'static str)], format: &str) -> Option<&'static str> {
    table.iter().find(|(f, _)| *f == format).map(|(_, m)| *m)
}

/// `image/jpeg; charset=…` and `IMAGE/JPG` name the same thing as `image/jpeg`.
fn format_of(table: &[(&'static str, &str)], media_type: &str) -> Option<&'static str> {
    let bare = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let bare = if bare == "image/jpg" { "image/jpeg".to_string() } else { bare };
    table.iter().find(|(_, m)| *m == bare).map(|(f, _)| *f)
}

/// The inline bytes of a `source`, when that is all it holds.
fn inline_bytes(source: &Value) -> Option<String> {
    let obj = source.as_object()?;
    match (obj.get("bytes"), obj.len()) {
        (Some(Value::String(b)), 1) => Some(b.clone()),
        _ => None,
    }
}

fn decode_image(v: &Value, at: &str) -> Result<Option<ImagePart>, GatewayError> {
    let obj = object(v, at)?;
    let format = string_field(obj, "format", at)?;
    let source = field(obj, "source", at)?;
    let (Some(media_type), Some(data), true) =
        (media_type_of(IMAGE_FORMATS, &format), inline_bytes(source), only(obj, &["format", "source"]))
    else {
        return Ok(None);
    };
    let source = MediaSource::Base64 { media_type: Some(media_type.into()), data };
    Ok(Some(ImagePart { source, detail: None, extra: JsonMap::new() }))
}

fn decode_document(v: &Value, at: &str) -> Result<Option<FilePart>, GatewayError> {
    let obj = object(v, at)?;
    let name = string_field(obj, "name", at)?;
    let media_type = match obj.get("format") {
        None => None,
        Some(f) => match media_type_of(DOCUMENT_FORMATS, &string(f, &format!("{at}.format"))?) {
            Some(m) => Some(m.to_string()),
            None => return Ok(None),
        },
    };
    let (Some(data), true) = (inline_bytes(field(obj, "source", at)?), only(obj, &["format", "name", "source"])) else {
        return Ok(None);
    };
    Ok(Some(FilePart { source: MediaSource::Base64 { media_type, data }, filename: Some(name) }))
}

fn decode_audio(v: &Value, at: &str) -> Result<Option<AudioPart>, GatewayError> {
    let obj = object(v, at)?;
    let format = string_field(obj, "format", at)?;
    let (Some(data), true) = (inline_bytes(field(obj, "source", at)?), only(obj, &["format", "source"])) else {
        return Ok(None);
    };
    Ok(Some(AudioPart { data, format }))
}

/// A server tool's use (`type: server_tool_use`) is Bedrock's to run, not an IR tool call.
fn decode_tool_use(v: &Value, at: &str) -> Result<Block, GatewayError> {
    let obj = object(v, at)?;
    let client_tool = obj.get("type").is_none_or(|t| t == "tool_use");
    if !client_tool || !only(obj, &["toolUseId", "name", "input", "type"]) {
        return Ok(Block::Other);
    }
    Ok(Block::Call(ToolCall {
        id: string_field(obj, "toolUseId", at)?,
        name: string_field(obj, "name", at)?,
        arguments: field(obj, "input", at)?.to_string(),
        signature: None,
    }))
}

fn decode_tool_result(v: &Value, at: &str) -> Result<Block, GatewayError> {
    let obj = object(v, at)?;
    // A server tool's result (it has a `type`) is not an answer to an IR tool call.
    if !only(obj, &["toolUseId", "content", "status"]) {
        return Ok(Block::Other);
    }
    let id = string_field(obj, "toolUseId", at)?;
    let items = field(obj, "content", at)?
        .as_array()
        .ok_or_else(|| invalid(format!("{at}.content"), format!("{at}.content must be a list")))?;
    let mut content = Vec::new();
    for (k, item) in items.iter().enumerate() {
        match decode_result_item(item, &format!("{at}.content.{k}"))? {
            Some(part) => content.push(part),
            None => return Ok(Block::Other),
        }
    }
    let is_error = match obj.get("status").map(Value::as_str) {
        None => None,
        Some(Some("success")) => Some(false),
        Some(Some("error")) => Some(true),
        Some(_) => return Err(invalid(format!("{at}.status"), format!("{at}.status must be success or error"))),
    };
    Ok(Block::Result { id, content, is_error })
}

/// A tool result's item; `None` for one the IR cannot hold (video, a search result, …).
fn decode_result_item(item: &Value, at: &str) -> Result<Option<ContentPart>, GatewayError> {
    let (kind, v) = member(item, at)?;
    let at = format!("{at}.{kind}");
    Ok(match kind {
        "text" => Some(ContentPart::text(string(v, &at)?)),
        "json" => {
            let mut extra = JsonMap::new();
            extra.insert(JSON_RESULT.into(), Value::Bool(true));
            Some(ContentPart::Text(TextPart { text: v.to_string(), cache: None, extra }))
        }
        "image" => decode_image(v, &at)?.map(ContentPart::Image),
        "document" => decode_document(v, &at)?.map(ContentPart::File),
        _ => None,
    })
}

fn decode_reasoning(v: &Value, at: &str) -> Result<Reasoning, GatewayError> {
    let obj = object(v, at)?;
    match (obj.get("reasoningText"), obj.get("redactedContent")) {
        (Some(t), None) => {
            let at = format!("{at}.reasoningText");
            let t = object(t, &at)?;
            let signature = t.get("signature").map(|s| string(s, &format!("{at}.signature"))).transpose()?;
            Ok(Reasoning { text: string_field(t, "text", &at)?, signature, redacted: None })
        }
        (None, Some(r)) => {
            let data = string(r, &format!("{at}.redactedContent"))?;
            Ok(Reasoning { redacted: Some(redacted_from_wire(&data)), ..Reasoning::default() })
        }
        _ => Err(invalid(at, format!("{at} must have one of reasoningText or redactedContent"))),
    }
}

fn decode_cache_point(v: &Value, at: &str) -> Result<Option<CacheMarker>, GatewayError> {
    let obj = object(v, at)?;
    if string_field(obj, "type", at)? != "default" || !only(obj, &["type", "ttl"]) {
        return Ok(None);
    }
    let ttl = obj.get("ttl").map(|t| string(t, &format!("{at}.ttl"))).transpose()?;
    Ok(Some(CacheMarker { ttl }))
}

/// What the last block decoded was, for a cache point that follows it.
enum Last {
    Nothing,
    /// A content part of the turn, by index.
    Part(usize),
    /// A tool result, by its index in the output.
    Result(usize),
}

/// Builds IR messages from one Converse message: its parts, reasoning and tool calls on one
/// message, each tool result as a tool message of its own (before it, as Anthropic's codec does).
pub(crate) struct Turn<'o> {
    msg: Message,
    others: Vec<Value>,
    kinds: Vec<&'static str>,
    last: Last,
    out: &'o mut Vec<Message>,
}

impl<'o> Turn<'o> {
    pub(crate) fn new(role: Role, out: &'o mut Vec<Message>) -> Self {
        Turn { msg: Message::new(role, Vec::new()), others: Vec::new(), kinds: Vec::new(), last: Last::Nothing, out }
    }

    /// Adds one decoded block; `raw` is the block as it came. A block the role cannot have is a
    /// 400 at `at`.
    pub(crate) fn push(&mut self, block: Block, raw: &Value, at: &str) -> Result<(), GatewayError> {
        let assistant = self.msg.role == Role::Assistant;
        match block {
            Block::Part(p) => {
                self.msg.content.push(p);
                self.kinds.push("text");
                self.last = Last::Part(self.msg.content.len() - 1);
            }
            Block::Reasoning(r) if assistant => {
                self.msg.reasoning.push(r);
                self.kinds.push("reasoning");
                self.last = Last::Nothing;
            }
            Block::Call(c) if assistant => {
                self.msg.tool_calls.push(c);
                self.kinds.push("tool_call");
                self.last = Last::Nothing;
            }
            Block::Result { id, content, is_error } if !assistant => {
                let mut result = Message::new(Role::Tool, content);
                result.tool_call_id = Some(id);
                if let Some(e) = is_error {
                    result.extra.insert(IS_ERROR.into(), Value::Bool(e));
                }
                self.out.push(result);
                self.last = Last::Result(self.out.len() - 1);
            }
            Block::Cache(marker) => {
                if !self.attach(marker, raw) {
                    self.keep(raw);
                }
            }
            Block::Other => self.keep(raw),
            _ => {
                let role = if assistant { "an assistant" } else { "a user" };
                return Err(invalid(at, format!("{at}: this block is not allowed in {role} message")));
            }
        }
        Ok(())
    }

    /// Puts a cache point on the block before it, if that block can carry one.
    fn attach(&mut self, marker: CacheMarker, raw: &Value) -> bool {
        let part = match std::mem::replace(&mut self.last, Last::Nothing) {
            Last::Part(k) => self.msg.content.get_mut(k),
            Last::Result(o) => self.out.get_mut(o).and_then(|m| m.content.last_mut()),
            Last::Nothing => None,
        };
        match part {
            Some(ContentPart::Text(t)) if t.cache.is_none() => t.cache = Some(marker),
            Some(ContentPart::Image(i)) if !i.extra.contains_key(CACHE_POINT) => {
                i.extra.insert(CACHE_POINT.into(), raw.get("cachePoint").cloned().unwrap_or_else(|| json!({})));
            }
            _ => return false,
        }
        true
    }

    fn keep(&mut self, raw: &Value) {
        self.others.push(raw.clone());
        self.kinds.push("other");
        self.last = Last::Nothing;
    }

    pub(crate) fn finish(self) {
        let Turn { mut msg, others, kinds, out, .. } = self;
        if !others.is_empty() {
            msg.extra.insert(BLOCKS.into(), Value::Array(others));
        }
        keep_order(&mut msg.extra, kinds);
        // A user message of tool results only has nothing left to say.
        let empty =
            msg.content.is_empty() && msg.tool_calls.is_empty() && msg.reasoning.is_empty() && msg.extra.is_empty();
        if !(empty && msg.role == Role::User && out.last().is_some_and(|m| m.role == Role::Tool)) {
            out.push(msg);
        }
    }
}

/// Where a part is in the IR request, for errors and for naming unnamed documents.
#[derive(Clone, Copy)]
pub(crate) struct At {
    pub message: usize,
    pub part: usize,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "messages[{}].content[{}]", self.message, self.part)
    }
}

pub(crate) fn cache_point(c: &CacheMarker) -> Value {
    match &c.ttl {
        Some(ttl) => json!({"cachePoint": {"type": "default", "ttl": ttl}}),
        None => json!({"cachePoint": {"type": "default"}}),
    }
}

/// The cache point after an image: Bedrock's own, or the one an Anthropic client put on it.
fn image_cache(i: &ImagePart) -> Option<Value> {
    if let Some(point) = i.extra.get(CACHE_POINT) {
        return Some(json!({ "cachePoint": point }));
    }
    let anthropic = i.extra.get("cache_control")?;
    Some(cache_point(&CacheMarker { ttl: anthropic.get("ttl").and_then(Value::as_str).map(str::to_string) }))
}

/// A content part as Converse blocks: the block, then the cache point after it when marked.
/// An empty text part is left out (Bedrock refuses blank text blocks); its cache point is not.
pub(crate) fn encode_part(p: &ContentPart, at: At) -> Result<Vec<Value>, GatewayError> {
    let (block, cache) = match p {
        ContentPart::Text(t) => {
            ((!t.text.is_empty()).then(|| json!({"text": t.text})), t.cache.as_ref().map(cache_point))
        }
        ContentPart::Image(i) => (Some(json!({"image": encode_image(i, at)?})), image_cache(i)),
        ContentPart::File(f) => (Some(json!({"document": encode_document(f, at)?})), None),
        ContentPart::Audio(a) => (Some(json!({"audio": {"format": a.format, "source": {"bytes": a.data}}})), None),
    };
    Ok(block.into_iter().chain(cache).collect())
}

fn encode_image(i: &ImagePart, at: At) -> Result<Value, GatewayError> {
    let (media_type, data) = match &i.source {
        MediaSource::Base64 { media_type, data } => (media_type, data),
        MediaSource::Url { .. } => {
            return Err(invalid(
                at.to_string(),
                format!(
                    "{at} is an image given by URL; Bedrock takes image bytes only. Send the image inline (base64, as \
                     a data: URL)."
                ),
            ));
        }
        MediaSource::FileId { .. } => {
            return Err(invalid(
                at.to_string(),
                format!("{at} is an uploaded file id; Bedrock takes image bytes only."),
            ));
        }
    };
    let format = match media_type {
        Some(m) => format_of(IMAGE_FORMATS, m),
        None => sniff_image(data),
    };
    let Some(format) = format else {
        let what = media_type.as_deref().unwrap_or("an image of unknown type");
        return Err(invalid(at.to_string(), format!("{at}: Bedrock takes png, jpeg, gif or webp images, not {what}.")));
    };
    Ok(json!({"format": format, "source": {"bytes": data}}))
}

/// The format of base64 image bytes from their first bytes, for a client that gave no type.
fn sniff_image(data: &str) -> Option<&'static str> {
    [("iVBORw0KGgo", "png"), ("/9j/", "jpeg"), ("R0lGOD", "gif"), ("UklGR", "webp")]
        .into_iter()
        .find(|(prefix, _)| data.starts_with(prefix))
        .map(|(_, f)| f)
}

fn encode_document(f: &FilePart, at: At) -> Result<Value, GatewayError> {
    let MediaSource::Base64 { media_type, data } = &f.source else {
        return Err(invalid(
            at.to_string(),
            format!("{at} is a document given by URL or file id; Bedrock takes document bytes only."),
        ));
    };
    let mut doc = Map::new();
    if let Some(m) = media_type {
        let Some(format) = format_of(DOCUMENT_FORMATS, m) else {
            return Err(invalid(
                at.to_string(),
                format!("{at}: Bedrock takes pdf, csv, doc, docx, xls, xlsx, html, txt or md documents, not {m}."),
            ));
        };
        doc.insert("format".into(), format.into());
    }
    doc.insert("name".into(), document_name(f.filename.as_deref(), at).into());
    doc.insert("source".into(), json!({ "bytes": data }));
    Ok(Value::Object(doc))
}

/// Bedrock requires a name of letters, digits, single spaces, hyphens, parentheses and square
/// brackets: other characters become hyphens (`report.pdf` is `report-pdf`), and an unnamed
/// document is named after its place. A valid name is left as it is.
fn document_name(filename: Option<&str>, at: At) -> String {
    let mut name = String::new();
    for c in filename.unwrap_or_default().chars() {
        let c = match c {
            c if c.is_ascii_alphanumeric() || "-()[]".contains(c) => c,
            c if c.is_whitespace() => ' ',
            _ => '-',
        };
        if c == ' ' && (name.is_empty() || name.ends_with(' ')) {
            continue;
        }
        name.push(c);
    }
    let name = name.trim_end();
    if name.is_empty() { format!("Document {}-{}", at.message, at.part) } else { name.to_string() }
}

/// An IR tool message as a `toolResult` block, then the cache point of its content, which
/// Converse puts after the result rather than inside it.
pub(crate) fn encode_tool_result(m: &Message, message: usize) -> Result<Vec<Value>, GatewayError> {
    let Some(id) = m.tool_call_id.as_deref().filter(|id| !id.is_empty()) else {
        return Err(invalid(
            format!("messages[{message}].tool_call_id"),
            format!("messages[{message}] is a tool result that names no tool call."),
        ));
    };
    let mut content = Vec::new();
    let mut cache = None;
    for (part, p) in m.content.iter().enumerate() {
        let at = At { message, part };
        match p {
            ContentPart::Text(t) => {
                content.push(result_text(t));
                cache = t.cache.as_ref().map(cache_point).or(cache);
            }
            ContentPart::Image(i) => {
                content.push(json!({"image": encode_image(i, at)?}));
                cache = image_cache(i).or(cache);
            }
            ContentPart::File(f) => content.push(json!({"document": encode_document(f, at)?})),
            ContentPart::Audio(_) => {
                return Err(invalid(at.to_string(), format!("{at}: a Bedrock tool result cannot hold audio.")));
            }
        }
    }
    let mut result = Map::new();
    result.insert("toolUseId".into(), id.into());
    result.insert("content".into(), Value::Array(content));
    if let Some(e) = m.extra.get(IS_ERROR).and_then(Value::as_bool) {
        result.insert("status".into(), if e { "error" } else { "success" }.into());
    }
    Ok([Some(json!({ "toolResult": result })), cache].into_iter().flatten().collect())
}

/// A `{json}` item comes back as JSON; text that no longer parses goes as text.
fn result_text(t: &TextPart) -> Value {
    if t.extra.get(JSON_RESULT) == Some(&Value::Bool(true))
        && let Ok(v) = serde_json::from_str::<Value>(&t.text)
    {
        return json!({ "json": v });
    }
    json!({ "text": t.text })
}

fn encode_reasoning(r: &Reasoning) -> Option<Value> {
    let block = match (&r.redacted, &r.signature) {
        (Some(data), _) => json!({"redactedContent": redacted_to_wire(data)}),
        (None, Some(sig)) => json!({"reasoningText": {"text": r.text, "signature": sig}}),
        // Unsigned reasoning (gpt-oss, DeepSeek, another provider's) goes back unsigned: Converse
        // allows it, and a model that checks signatures says so itself.
        (None, None) if !r.text.is_empty() => json!({"reasoningText": {"text": r.text}}),
        (None, None) => return None,
    };
    Some(json!({ "reasoningContent": block }))
}

/// Tool arguments as the `input` document: any JSON the model wrote; arguments that are not
/// JSON are kept whole under `_raw_arguments`, as the Anthropic codec does.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v) => v,
        Err(_) if arguments.trim().is_empty() => json!({}),
        Err(_) => json!({ "_raw_arguments": arguments }),
    }
}

/// The content parts of a message, each as its group of blocks (part and cache point). With
/// `strict` unset, a part Bedrock cannot take is left out instead of failing (an answer).
fn parts(m: &Message, message: usize, strict: bool) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::new();
    for (part, p) in m.content.iter().enumerate() {
        match encode_part(p, At { message, part }) {
            Ok(blocks) => out.push(Value::Array(blocks)),
            Err(e) if strict => return Err(e),
            Err(_) => {}
        }
    }
    Ok(out)
}

fn kept_blocks(m: &Message) -> Vec<Value> {
    match m.extra.get(BLOCKS) {
        Some(Value::Array(blocks)) => blocks.iter().map(|b| Value::Array(vec![b.clone()])).collect(),
        _ => Vec::new(),
    }
}

/// Groups of blocks in order, flattened.
fn flatten(groups: Vec<Value>) -> Vec<Value> {
    groups.into_iter().flat_map(|g| if let Value::Array(blocks) = g { blocks } else { vec![g] }).collect()
}

/// An assistant turn's blocks: reasoning, text, tool calls, unless `block_order` says otherwise.
pub(crate) fn assistant_blocks(m: &Message, message: usize, strict: bool) -> Result<Vec<Value>, GatewayError> {
    let one = |b: Value| Value::Array(vec![b]);
    let reasoning = m.reasoning.iter().filter_map(encode_reasoning).map(one).collect();
    let mut text = parts(m, message, strict)?;
    if let Some(refusal) = m.refusal.as_deref().filter(|r| !r.is_empty()) {
        text.push(one(json!({"text": refusal})));
    }
    let calls = m
        .tool_calls
        .iter()
        .map(|c| one(json!({"toolUse": {"toolUseId": c.id, "name": c.name, "input": tool_input(&c.arguments)}})))
        .collect();
    let groups = vec![("reasoning", reasoning), ("text", text), ("tool_call", calls), ("other", kept_blocks(m))];
    Ok(flatten(in_order(&m.extra, groups)))
}

/// A user turn's own blocks (its tool results are the tool messages before it).
pub(crate) fn user_blocks(m: &Message, message: usize) -> Result<Vec<Value>, GatewayError> {
    let groups = vec![("text", parts(m, message, true)?), ("other", kept_blocks(m))];
    Ok(flatten(in_order(&m.extra, groups)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_turn(role: Role, blocks: Value) -> Result<Vec<Message>, GatewayError> {
        let mut out = Vec::new();
        let mut turn = Turn::new(role, &mut out);
        for (j, b) in blocks.as_array().into_iter().flatten().enumerate() {
            let at = format!("messages.0.content.{j}");
            turn.push(decode_block(b, &at)?, b, &at)?;
        }
        turn.finish();
        Ok(out)
    }

    #[test]
    fn cache_points_land_on_the_block_before_them() {
        let blocks = json!([
            {"toolResult": {"toolUseId": "t1", "content": [{"json": {"a": 1}}], "status": "error"}},
            {"cachePoint": {"type": "default"}},
            {"text": "look"}, {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
            {"cachePoint": {"type": "default", "ttl": "1h"}},
            {"document": {"format": "pdf", "name": "Doc", "source": {"bytes": "JVBE"}}},
            {"cachePoint": {"type": "default"}}
        ]);
        let out = decode_turn(Role::User, blocks.clone()).unwrap_or_else(|e| panic!("{e}"));
        let [tool, user] = &out[..] else { panic!("{out:?}") };
        assert_eq!(tool.extra.get(IS_ERROR), Some(&Value::Bool(true)));
        assert!(matches!(&tool.content[0], ContentPart::Text(t) if t.cache.is_some() && t.text == r#"{"a":1}"#));
        assert!(matches!(&user.content[1], ContentPart::Image(i) if i.extra[CACHE_POINT]["ttl"] == "1h"));
        assert_eq!(user.extra[BLOCKS], json!([{"cachePoint": {"type": "default"}}]), "after a document: kept");
        let mut back = encode_tool_result(tool, 0).unwrap_or_else(|e| panic!("{e}"));
        back.extend(user_blocks(user, 1).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(Value::Array(back), blocks);
    }

    #[test]
    fn blocks_the_ir_cannot_hold_are_kept_in_place() {
        let blocks = json!([
            {"reasoningContent": {"redactedContent": "RXRrRUNr"}},
            {"text": "a"},
            {"toolUse": {"toolUseId": "s1", "name": "web", "input": {}, "type": "server_tool_use"}},
            {"text": "b"},
            {"toolUse": {"toolUseId": "t1", "name": "f", "input": [1, 2]}}
        ]);
        let out = decode_turn(Role::Assistant, blocks.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out[0].reasoning[0].redacted.as_deref(), Some("EtkECk"));
        assert_eq!(out[0].tool_calls[0].arguments, "[1,2]");
        assert_eq!(assistant_blocks(&out[0], 0, true).ok(), blocks.as_array().cloned());
    }

    #[test]
    fn malformed_or_misplaced_blocks_are_400s_with_their_path() {
        let cases = [
            (Role::User, json!([{"text": "a", "image": {}}]), "messages.0.content.0"),
            (Role::User, json!([{"text": 1}]), "messages.0.content.0.text"),
            (Role::User, json!([{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}]), "messages.0.content.0"),
            (Role::Assistant, json!([{"toolResult": {"toolUseId": "t", "content": []}}]), "messages.0.content.0"),
            (Role::User, json!([{"reasoningContent": {"reasoningText": {"text": "x"}}}]), "messages.0.content.0"),
            (
                Role::User,
                json!([{"toolResult": {"toolUseId": "t", "content": [], "status": "ok"}}]),
                "messages.0.content.0.toolResult.status",
            ),
            (Role::User, json!([{"image": {"source": {"bytes": ""}}}]), "messages.0.content.0.image.format"),
            (Role::Assistant, json!([{"reasoningContent": {}}]), "messages.0.content.0.reasoningContent"),
        ];
        for (role, blocks, param) in cases {
            let e = decode_turn(role, blocks.clone()).err();
            assert_eq!(e.as_ref().map(GatewayError::http_status), Some(400), "{blocks}");
            assert_eq!(e.and_then(|e| e.param).as_deref(), Some(param), "{blocks}");
        }
    }

    #[test]
    fn parts_bedrock_cannot_take_are_400s_naming_them() {
        let at = At { message: 2, part: 1 };
        let url = ContentPart::Image(ImagePart {
            source: MediaSource::Url { url: "https://x/y.png".into() },
            detail: None,
            extra: JsonMap::new(),
        });
        let e = encode_part(&url, at).err();
        assert_eq!(e.as_ref().and_then(|e| e.param.as_deref()), Some("messages[2].content[1]"));
        assert!(e.is_some_and(|e| e.message.contains("URL")));
        let json_doc = ContentPart::File(FilePart {
            source: MediaSource::Base64 { media_type: Some("application/json".into()), data: "e30=".into() },
            filename: None,
        });
        assert!(encode_part(&json_doc, at).is_err());
        let unnamed = ContentPart::File(FilePart {
            source: MediaSource::Base64 { media_type: Some("application/pdf".into()), data: "JVBE".into() },
            filename: Some("my report.v2.pdf".into()),
        });
        let blocks = encode_part(&unnamed, at).unwrap_or_default();
        assert_eq!(blocks[0]["document"]["name"], "my report-v2-pdf");
        assert_eq!(document_name(None, at), "Document 2-1");
        let sniffed = ContentPart::Image(ImagePart {
            source: MediaSource::Base64 { media_type: None, data: "/9j/4AAQ".into() },
            detail: Some("low".into()),
            extra: JsonMap::new(),
        });
        assert_eq!(encode_part(&sniffed, at).unwrap_or_default()[0]["image"]["format"], "jpeg");
    }
}
