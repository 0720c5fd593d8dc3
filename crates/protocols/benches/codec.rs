//! Request decode/encode and stream decoding: the per-request work of the OpenAI surface.
//! `cargo bench -p switchyard-protocols`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use switchyard_protocols::{openai, sse};

/// About 1 KB, with a system prompt, a tool and sampling parameters: a typical agent turn.
fn request_body() -> Vec<u8> {
    json!({
        "model": "smart",
        "messages": [
            {"role": "system", "content": "You are a careful assistant. Answer briefly."},
            {"role": "user", "content": "x ".repeat(350)},
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        "temperature": 0.2,
        "max_tokens": 256,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
    .to_string()
    .into_bytes()
}

/// A 200-chunk OpenAI stream as a provider sends it.
fn stream_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..200 {
        let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                           "choices": [{"index": 0, "delta": {"content": format!(" word{i}")}, "finish_reason": null}]});
        out.extend_from_slice(&sse::encode(None, &chunk.to_string()));
    }
    out.extend_from_slice(&sse::encode(None, "[DONE]"));
    out
}

fn codec(c: &mut Criterion) {
    let body = request_body();
    let mut g = c.benchmark_group("openai_request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse_and_decode", |b| {
        b.iter(|| {
            let map = openai::parse_object(black_box(&body)).ok();
            map.map(|m| openai::decode_chat_request(&m).is_ok())
        })
    });
    let map = openai::parse_object(&body).unwrap_or_default();
    let ir = openai::decode_chat_request(&map);
    g.bench_function("encode", |b| {
        b.iter(|| ir.as_ref().map(|r| openai::encode_chat_request(black_box(r), "gpt-4.1")))
    });
    g.bench_function("passthrough_rewrite", |b| {
        b.iter(|| {
            let mut m = map.clone();
            m.insert("model".into(), "gpt-4.1".into());
            serde_json::to_vec(&m).map(|v| v.len())
        })
    });
    g.finish();

    let stream = stream_bytes();
    let mut g = c.benchmark_group("openai_stream");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("sse_decode_in_1k_reads", |b| {
        b.iter(|| {
            let mut d = sse::SseDecoder::default();
            let mut n = 0;
            for piece in black_box(&stream).chunks(1024) {
                n += d.feed(piece).map(|e| e.len()).unwrap_or(0);
            }
            n
        })
    });
    g.bench_function("sse_and_chunk_decode", |b| {
        b.iter(|| {
            let mut d = sse::SseDecoder::default();
            let mut chunks = openai::ChunkDecoder::default();
            let mut n = 0;
            for piece in black_box(&stream).chunks(1024) {
                for ev in d.feed(piece).unwrap_or_default() {
                    n += chunks.decode(&ev.data).map(|e| e.len()).unwrap_or(0);
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
