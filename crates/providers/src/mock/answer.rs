//! What the mock says: a deterministic function of the request.

use serde_json::{Map, Value, json};
use switchyard_types::{ChatRequest, ContentPart, Role, ToolChoice, Usage};

const WORDS: &[&str] = &[
    "switchyard",
    "routes",
    "every",
    "request",
    "to",
    "the",
    "best",
    "model",
    "with",
    "care",
    "and",
    "speed",
    "tokens",
    "flow",
    "through",
    "a",
    "gateway",
    "that",
    "counts",
    "each",
    "cent",
    "stream",
    "answer",
    "fast",
];

/// The default answer length, in words.
pub const DEFAULT_WORDS: usize = 12;

/// A planned answer: either text words or tool calls.
pub struct Answer {
    /// Reasoning, when the request asked for it, with the signature a provider would attach.
    pub thinking: Option<Thinking>,
    pub words: Vec<String>,
    pub tool_calls: Vec<PlannedCall>,
    pub finish_reason: &'static str,
    pub usage: Usage,
}

pub struct Thinking {
    pub text: String,
    pub signature: String,
}

pub struct PlannedCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// The mock's reasoning, for a request that asks for reasoning (thinking, an effort): a fixed
/// sentence naming the prompt's first word, signed with a hash of it, so tests can check that a
/// signature comes back byte-exact. Its words are not counted in the usage.
fn thinking(req: &ChatRequest, seed: u64) -> Option<Thinking> {
    req.reasoning.as_ref()?;
    let first = req.messages.last().map(|m| m.text()).unwrap_or_default();
    let first = first.split_whitespace().next().unwrap_or("nothing").to_string();
    Some(Thinking {
        text: format!("The user wrote '{first}'; I will answer."),
        signature: format!("mocksig{seed:016x}=="),
    })
}

/// A planned answer as IR stream events, for the protocols whose encoders work from the IR:
/// text in `chunks` pieces (a word each by default), each tool call's arguments in three.
pub fn events(id: &str, model: &str, plan: &Answer, chunks: Option<usize>) -> Vec<switchyard_types::StreamEvent> {
    use switchyard_types::{FinishReason, StreamEvent};
    let mut out = vec![
        StreamEvent::Start { id: id.to_string(), model: model.to_string(), created: 0 },
        StreamEvent::Role { choice: 0 },
    ];
    if let Some(t) = &plan.thinking {
        out.push(StreamEvent::Reasoning { choice: 0, text: t.text.clone(), signature: None });
        out.push(StreamEvent::Reasoning { choice: 0, text: String::new(), signature: Some(t.signature.clone()) });
    }
    let groups = chunks.unwrap_or(plan.words.len().max(1)).max(1);
    let per = plan.words.len().div_ceil(groups).max(1);
    for words in plan.words.chunks(per) {
        out.push(StreamEvent::Text { choice: 0, text: words.concat() });
    }
    for (i, call) in plan.tool_calls.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        out.push(StreamEvent::ToolCall {
            choice: 0,
            index,
            id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            arguments: String::new(),
        });
        let chars: Vec<char> = call.arguments.chars().collect();
        for piece in chars.chunks(chars.len().div_ceil(chunks.unwrap_or(3).max(1)).max(1)) {
            out.push(StreamEvent::ToolCall {
                choice: 0,
                index,
                id: None,
                name: None,
                arguments: piece.iter().collect(),
            });
        }
    }
    out.push(StreamEvent::Finish { choice: 0, reason: FinishReason::from_openai(plan.finish_reason) });
    out.push(StreamEvent::Usage(plan.usage));
    out
}

/// FNV-1a: stable across runs and platforms, unlike the std hasher.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Whitespace words of every text part and tool call: the mock's notion of prompt tokens, so
/// tests can compute the expected usage themselves.
pub fn prompt_tokens(req: &ChatRequest) -> u64 {
    let count = |parts: &[ContentPart]| -> u64 {
        parts
            .iter()
            .map(|p| match p {
                ContentPart::Text(t) => t.text.split_whitespace().count() as u64,
                _ => 1,
            })
            .sum()
    };
    let system: u64 = req.system.iter().map(|s| count(&s.content)).sum();
    let messages: u64 = req
        .messages
        .iter()
        .map(|m| count(&m.content) + m.tool_calls.iter().map(|c| 1 + c.arguments.len() as u64 / 4).sum::<u64>())
        .sum();
    system + messages
}

pub fn plan(req: &ChatRequest, words: Option<usize>) -> Answer {
    let last = req.messages.last();
    let prompt: String = last.map(|m| m.text()).unwrap_or_default();
    let seed = fnv(prompt.as_bytes());
    let input_tokens = prompt_tokens(req);
    let wants_tools = !req.tools.is_empty()
        && req.tool_choice != Some(ToolChoice::None)
        && last.is_some_and(|m| m.role == Role::User);
    if wants_tools {
        let chosen: Vec<_> = match &req.tool_choice {
            Some(ToolChoice::Tool(name)) => req.tools.iter().filter(|t| &t.name == name).collect(),
            _ if req.parallel_tool_calls == Some(false) => req.tools.iter().take(1).collect(),
            _ => req.tools.iter().collect(),
        };
        let tool_calls: Vec<PlannedCall> = chosen
            .iter()
            .enumerate()
            .map(|(i, t)| PlannedCall {
                id: format!("call_{:016x}", seed.wrapping_add(i as u64)),
                name: t.name.clone(),
                arguments: arguments_for(t.parameters.as_ref(), seed).to_string(),
            })
            .collect();
        let output_tokens = tool_calls.iter().map(|c| 1 + c.arguments.len() as u64 / 4).sum();
        return Answer {
            thinking: thinking(req, seed),
            words: Vec::new(),
            tool_calls,
            finish_reason: "tool_calls",
            usage: Usage { input_tokens, output_tokens, ..Default::default() },
        };
    }
    let wanted = words.unwrap_or(DEFAULT_WORDS);
    let limit = req.sampling.max_tokens.map_or(usize::MAX, |m| m as usize);
    let n = wanted.min(limit);
    let mut state = seed;
    let words: Vec<String> = (0..n)
        .map(|i| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let w = WORDS[(state >> 33) as usize % WORDS.len()];
            if i == 0 { w.to_string() } else { format!(" {w}") }
        })
        .collect();
    Answer {
        thinking: thinking(req, seed),
        words,
        tool_calls: Vec::new(),
        finish_reason: if n < wanted { "length" } else { "stop" },
        usage: Usage { input_tokens, output_tokens: n as u64, ..Default::default() },
    }
}

/// Arguments that satisfy the simple JSON schemas tools use: one value per property.
fn arguments_for(schema: Option<&Value>, seed: u64) -> Value {
    let mut args = Map::new();
    let props = schema.and_then(|s| s.get("properties")).and_then(Value::as_object);
    for (i, (name, prop)) in props.into_iter().flatten().enumerate() {
        let value = match prop.get("type").and_then(Value::as_str) {
            Some("integer") => json!((seed >> (i % 48)) % 100),
            Some("number") => json!(((seed >> (i % 48)) % 1000) as f64 / 10.0),
            Some("boolean") => json!(seed.rotate_left(i as u32).is_multiple_of(2)),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => match prop.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
                Some(first) => first.clone(),
                None => json!(format!("{name}-{}", seed % 1000)),
            },
        };
        args.insert(name.clone(), value);
    }
    Value::Object(args)
}

/// A deterministic unit vector for an input.
pub fn embedding(input: &str, dims: usize) -> Vec<f32> {
    let mut state = fnv(input.as_bytes());
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Standard base64 of little-endian f32s, as OpenAI sends `encoding_format: base64`.
pub fn base64_f32(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_types::Message;

    #[test]
    fn answers_are_deterministic_and_usage_counts_words() {
        let mut req = ChatRequest::default();
        req.messages.push(Message::new(Role::User, vec![ContentPart::text("hello there mock")]));
        let a = plan(&req, Some(5));
        let b = plan(&req, Some(5));
        assert_eq!(a.words, b.words);
        assert_eq!(a.usage.output_tokens, 5);
        assert_eq!(a.usage.input_tokens, 3);
        req.sampling.max_tokens = Some(2);
        let c = plan(&req, Some(5));
        assert_eq!((c.words.len(), c.finish_reason), (2, "length"));
    }

    #[test]
    fn base64_matches_known_encoding() {
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 2.0]), "AACAPwAAAEA=");
    }
}
