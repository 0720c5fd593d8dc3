//! Spend for real recorded usage (`../shared/fixtures/`), cached tokens included, priced by the
//! built-in table, equals the provider's price arithmetic done by hand here. Each case names the
//! table row it uses; a change to one of those rows makes this test say so.
//!
//! OpenAI answers go through the gateway's own decoders (whole and streamed); the Anthropic and
//! Gemini usage blocks are mapped to the IR's convention here (prompt tokens include cached
//! ones; output includes reasoning) until their decoders arrive with the translation work.

use std::path::PathBuf;

use serde_json::Value;
use switchyard_protocols::{openai, sse};
use switchyard_router::PriceTable;
use switchyard_types::{StreamEvent, Usage};

fn fixture(path: &str) -> Value {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let file = PathBuf::from(crate_dir).join("../../../shared/fixtures").join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The recorded response body of interaction `i`, as JSON (vcrpy's `parsed_body`, or go-vcr's
/// body text).
fn response(doc: &Value, i: usize) -> Value {
    let resp = &doc["interactions"][i]["response"];
    match resp.get("parsed_body") {
        Some(v) => v.clone(),
        None => match &resp["body"] {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
            other => other.clone(),
        },
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn spend(provider: &str, model: &str, usage: &Usage) -> f64 {
    let table = PriceTable::builtin();
    let price = table.lookup(provider, model).unwrap_or_else(|| panic!("no price row {provider}/{model}"));
    println!("row {provider}/{model} (table {}): {price:?}", table.version());
    price.cost(usage).total
}

fn assert_usd(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-12, "{what}: {got} != {want}");
}

#[test]
fn openai_whole_answer_with_reasoning() {
    // gpt-5-nano: 12 prompt, 100 completion of which 100 reasoning. Row openai/gpt-5-nano
    // (alias gpt-5-nano-2025-08-07): $0.05 in, $0.40 out per Mtok.
    let doc = fixture("openai/envoy-cassette-chat-detailed-usage.yaml");
    let r = openai::decode_chat_response(&response(&doc, 0));
    let u = r.usage.unwrap_or_else(|| panic!("no usage"));
    assert_eq!((u.input_tokens, u.output_tokens, u.reasoning_tokens), (12, 100, 100));
    assert_usd(spend("openai", &r.model, &u), (12.0 * 0.05 + 100.0 * 0.40) / 1e6, "gpt-5-nano");
}

#[test]
fn openai_streamed_usage_chunk() {
    let doc = fixture("openai/envoy-cassette-chat-streaming-detailed-usage.yaml");
    let Value::String(body) = response(&doc, 0) else { panic!("the stream body is text") };
    let mut d = sse::SseDecoder::default();
    let mut frames = d.feed(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    frames.extend(d.finish());
    let mut chunks = openai::ChunkDecoder::default();
    let usage = frames
        .iter()
        .flat_map(|f| chunks.decode(&f.data).unwrap_or_default())
        .find_map(|e| if let StreamEvent::Usage(u) = e { Some(u) } else { None })
        .unwrap_or_else(|| panic!("no usage chunk"));
    assert_eq!((usage.input_tokens, usage.output_tokens), (12, 100));
    assert_usd(spend("openai", "gpt-5-nano-2025-08-07", &usage), (12.0 * 0.05 + 100.0 * 0.40) / 1e6, "stream");
}

#[test]
fn openai_cached_prompt_tokens() {
    // Responses API, gpt-5: 2,087 input of which 2,048 cached, 124 output. Row openai/gpt-5:
    // $1.25 in, $0.125 cached, $10 out.
    let doc = fixture("openai-responses/pydantic-cassette-nonstream-reasoning-tool-calls-gpt-5.yaml");
    let u = &response(&doc, 1)["usage"];
    let usage = Usage {
        input_tokens: n(&u["input_tokens"]),
        cache_read_tokens: n(&u["input_tokens_details"]["cached_tokens"]),
        output_tokens: n(&u["output_tokens"]),
        reasoning_tokens: n(&u["output_tokens_details"]["reasoning_tokens"]),
        ..Usage::default()
    };
    assert_eq!((usage.input_tokens, usage.cache_read_tokens, usage.output_tokens), (2087, 2048, 124));
    let want = (39.0 * 1.25 + 2048.0 * 0.125 + 124.0 * 10.0) / 1e6;
    assert_usd(spend("openai", "gpt-5-2025-08-07", &usage), want, "gpt-5 cached");
}

#[test]
fn anthropic_cache_reads_and_writes() {
    // claude-sonnet-4-5: 3 uncached, 1,111 read from the cache, 418 written to it, 33 out. Row
    // anthropic/claude-sonnet-4-5 (alias -20250929): $3 in, $0.30 cache read, $3.75 cache write
    // (5 minutes), $15 out.
    let doc = fixture("anthropic/pydantic-cassette-prompt-caching.yaml");
    let body = response(&doc, 1);
    let u = &body["usage"];
    let (uncached, read, write) =
        (n(&u["input_tokens"]), n(&u["cache_read_input_tokens"]), n(&u["cache_creation_input_tokens"]));
    assert_eq!((uncached, read, write, n(&u["output_tokens"])), (3, 1111, 418, 33));
    let usage = Usage {
        input_tokens: uncached + read + write,
        cache_read_tokens: read,
        cache_write_tokens: write,
        output_tokens: n(&u["output_tokens"]),
        reasoning_tokens: 0,
    };
    let model = body["model"].as_str().unwrap_or_default();
    let want = (3.0 * 3.0 + 1111.0 * 0.30 + 418.0 * 3.75 + 33.0 * 15.0) / 1e6;
    assert_usd(spend("anthropic", model, &usage), want, "claude cache");
}

#[test]
fn gemini_cached_content_and_thoughts() {
    // gemini-2.5-flash: 3,520 prompt of which 3,512 cached, 2 candidates and 42 thoughts (billed
    // as output). Row gemini/gemini-2.5-flash: $0.30 in, $0.03 cached, $2.50 out.
    let doc = fixture("gemini/pydantic-cassette-cached-content.yaml");
    let u = &response(&doc, 1)["usageMetadata"];
    let thoughts = n(&u["thoughtsTokenCount"]);
    let usage = Usage {
        input_tokens: n(&u["promptTokenCount"]),
        cache_read_tokens: n(&u["cachedContentTokenCount"]),
        output_tokens: n(&u["candidatesTokenCount"]) + thoughts,
        reasoning_tokens: thoughts,
        cache_write_tokens: 0,
    };
    assert_eq!((usage.input_tokens, usage.cache_read_tokens, usage.output_tokens), (3520, 3512, 44));
    let want = (8.0 * 0.30 + 3512.0 * 0.03 + 44.0 * 2.50) / 1e6;
    assert_usd(spend("gemini", "models/gemini-2.5-flash", &usage), want, "gemini cached");
}
