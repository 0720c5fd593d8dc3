//! Exact token counts with OpenAI's own tokenizers (tiktoken's tables, built into the binary).
//!
//! Tokenizing costs about 50 µs per KB of prompt, too much for every request; the request path
//! estimates instead (`ChatRequest::estimated_input_tokens`) and counts exactly only where the
//! estimate could change a decision: a prompt near an OpenAI model's context window. The
//! `count_tokens` endpoint always counts exactly.

use switchyard_types::{ChatRequest, ContentPart};
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// A chat request's prompt tokens the way OpenAI counts them: each message's text plus 4
/// tokens of framing (role and separators), 3 more to prime the answer, the tools' names,
/// descriptions and schemas; images at 765 (a high-detail 512×512 tile's worth; the real
/// count depends on the image's size).
pub fn openai(model: &str, req: &ChatRequest) -> u64 {
    let bpe = match get_tokenizer(model) {
        Some(Tokenizer::Cl100kBase) => tiktoken_rs::cl100k_base_singleton(),
        _ => tiktoken_rs::o200k_base_singleton(),
    };
    let count = |text: &str| bpe.encode_ordinary(text).len() as u64;
    let parts = |content: &[ContentPart]| -> u64 {
        content
            .iter()
            .map(|p| match p {
                ContentPart::Text(t) => count(&t.text),
                ContentPart::Image(_) => 765,
                _ => 1000,
            })
            .sum()
    };
    let system: u64 = req.system.iter().map(|s| 4 + parts(&s.content)).sum();
    let messages: u64 = req
        .messages
        .iter()
        .map(|m| 4 + parts(&m.content) + m.tool_calls.iter().map(|c| count(&c.name) + count(&c.arguments)).sum::<u64>())
        .sum();
    let tools: u64 = req
        .tools
        .iter()
        .map(|t| {
            let schema = t.parameters.as_ref().map(ToString::to_string).unwrap_or_default();
            8 + count(&t.name) + t.description.as_deref().map_or(0, count) + count(&schema)
        })
        .sum();
    system + messages + tools + 3
}

#[cfg(test)]
mod tests {
    use switchyard_types::{Message, Role};

    use super::*;

    #[test]
    fn counts_with_the_models_own_tokenizer() {
        let req = ChatRequest {
            messages: vec![Message::new(Role::User, vec![ContentPart::text("Hello, world!")])],
            ..ChatRequest::default()
        };
        // o200k: "Hello" "," " world" "!"; framing 4, priming 3.
        assert_eq!(openai("gpt-4o", &req), 11);
        let long = ChatRequest {
            messages: vec![Message::new(Role::User, vec![ContentPart::text("word ".repeat(1000).trim_end())])],
            ..ChatRequest::default()
        };
        assert_eq!(openai("gpt-4o", &long), 1000 + 7);
    }
}
