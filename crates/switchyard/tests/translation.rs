//! Across protocols end to end: the real binary, the mock speaking OpenAI and Anthropic, the
//! raw wire as a client sees it. (The official SDKs drive the same paths in tests/python.)

mod common;

use common::*;
use serde_json::{Value, json};

/// Four providers on one mock, one per protocol: `up` (OpenAI), `claude` (Anthropic), `gem`
/// (Gemini) and `bed` (Bedrock Converse, signed).
fn config(mock: &Proc) -> String {
    format!(
        "server:\n  master_key: {MASTER}\nproviders:\n  up: {{ type: openai-compatible, base_url: \"{url}/v1\" }}\n\
         \x20 claude: {{ type: anthropic, api_key: sk-ant-test, base_url: \"{url}/v1\" }}\n\
         \x20 gem: {{ type: gemini, api_key: gm-test, base_url: \"{url}/v1beta\" }}\n\
         \x20 bed: {{ type: bedrock, region: us-east-1, aws_access_key_id: AKIDTEST, aws_secret_access_key: s3cr3t, base_url: \"{url}\" }}\n\
         models:\n  - name: oai\n    targets: [{{ provider: up, model: m }}]\n\
         \x20 - name: ant\n    targets: [{{ provider: claude, model: m }}]\n\
         \x20 - name: gem\n    targets: [{{ provider: gem, model: m }}]\n\
         \x20 - name: bed\n    targets: [{{ provider: bed, model: \"anthropic.m-v1:0\" }}]\n",
        url = mock.url
    )
}

const EVERY_PROTOCOL: [&str; 4] = ["oai", "ant", "gem", "bed"];

async fn post_messages(gw: &Proc, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The `(event, data)` pairs of an SSE body.
async fn sse_events(resp: reqwest::Response) -> Vec<(String, Value)> {
    let text = resp.text().await.unwrap_or_else(|e| panic!("{e}"));
    text.split("\n\n")
        .filter_map(|frame| {
            let name = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("").to_string();
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).unwrap_or(Value::String(data.to_string()))))
        })
        .collect()
}

#[tokio::test]
async fn a_stream_that_breaks_ends_with_the_clients_own_error_event() {
    let mock = mock(&["--words", "20", "--cut-after", "6", "--chunk-delay-ms", "5"]);
    let (gw, _) = gateway(&config(&mock));
    for model in EVERY_PROTOCOL {
        // An Anthropic client: whatever the upstream, the break is an `error` event last.
        let body =
            json!({"model": model, "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let events = sse_events(post_messages(&gw, &body).await).await;
        assert_eq!(events.first().map(|(n, _)| n.as_str()), Some("message_start"), "{model}: {events:?}");
        let (name, data) = events.last().cloned().unwrap_or_default();
        assert_eq!(name, "error", "{model}: {events:?}");
        assert_eq!(data["type"], "error");
        assert!(data["error"]["type"].is_string() && data["error"]["message"].is_string(), "{data}");
        assert!(!events.iter().any(|(n, _)| n == "message_stop"), "{model}: a broken answer does not claim to end");
        // An OpenAI client: the break is an error chunk, and no [DONE].
        let body = json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let data = sse_data(post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await).await;
        let last: Value = data.last().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
        assert!(last["error"]["message"].is_string(), "{model}: {data:?}");
        assert!(!data.iter().any(|d| d == "[DONE]"), "{model}");
    }
}

#[tokio::test]
async fn what_a_target_cannot_do_is_a_400_in_the_callers_shape() {
    let mock = mock(&[]);
    let (gw, _) = gateway(&config(&mock));
    // OpenAI clients asking an Anthropic model for what it does not have.
    for (extra, param) in [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"seed": 7}), "seed"),
        (json!({"modalities": ["text", "audio"]}), "modalities"),
    ] {
        let mut body = json!({"model": "ant", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await;
        assert_eq!(resp.status(), 400, "{extra}");
        let err = json(resp).await;
        assert_eq!(err["error"]["param"], param, "{err}");
    }
    // An Anthropic client's server tool cannot go to an OpenAI model.
    let body = json!({"model": "oai", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}],
                      "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    let resp = post_messages(&gw, &body).await;
    assert_eq!(resp.status(), 400);
    let err = json(resp).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["error"]["message"].as_str().is_some_and(|m| m.contains("tools")), "{err}");
    // The same request to an Anthropic model goes through as it came.
    let body = json!({"model": "ant", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}],
                      "tools": [{"type": "web_search_20250305", "name": "web_search"}], "service_tier": "auto"});
    let resp = post_messages(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    let seen = mock_stats(&mock).await;
    assert_eq!(seen["last_request"]["body"]["tools"][0]["type"], "web_search_20250305");
    assert_eq!(seen["last_request"]["headers"]["x-api-key"], "sk-ant-test", "the provider's key, not the client's");
    assert_eq!(seen["last_request"]["headers"]["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn usage_and_finish_reasons_map_in_every_direction() {
    let mock = mock(&["--words", "8"]);
    let (gw, _) = gateway(&config(&mock));
    for model in EVERY_PROTOCOL {
        for stream in [false, true] {
            // Cut by max_tokens: OpenAI says `length`, Anthropic `max_tokens`.
            let body = json!({"model": model, "max_tokens": 3, "stream": stream,
                              "messages": [{"role": "user", "content": "one two three"}]});
            let resp = post_messages(&gw, &body).await;
            let (stop, usage) = if stream {
                let events = sse_events(resp).await;
                let delta =
                    events.iter().find(|(n, _)| n == "message_delta").map(|(_, d)| d.clone()).unwrap_or_default();
                (delta["delta"]["stop_reason"].clone(), delta["usage"].clone())
            } else {
                let v = json(resp).await;
                (v["stop_reason"].clone(), v["usage"].clone())
            };
            assert_eq!(stop, "max_tokens", "{model} stream={stream}");
            assert_eq!(
                (usage["input_tokens"].as_u64(), usage["output_tokens"].as_u64()),
                (Some(3), Some(3)),
                "{model} {usage}"
            );
            let body = json!({"model": model, "max_tokens": 3, "stream": stream, "stream_options": {"include_usage": true},
                              "messages": [{"role": "user", "content": "one two three"}]});
            let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await;
            let (finish, usage) = if stream {
                let chunks: Vec<Value> =
                    sse_data(resp).await.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
                let finish = chunks.iter().find_map(|c| c["choices"][0]["finish_reason"].as_str().map(str::to_string));
                let usage = chunks.iter().rev().find(|c| c["usage"].is_object()).map(|c| c["usage"].clone());
                (Value::from(finish), usage.unwrap_or_default())
            } else {
                let v = json(resp).await;
                (v["choices"][0]["finish_reason"].clone(), v["usage"].clone())
            };
            assert_eq!(finish, "length", "{model} stream={stream}");
            assert_eq!(
                (usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64()),
                (Some(3), Some(3)),
                "{model}"
            );
        }
    }
}

#[tokio::test]
async fn near_a_context_window_openai_models_are_counted_with_their_tokenizer() {
    let mock = mock(&[]);
    let cfg = format!(
        "server:\n  master_key: {MASTER}\nproviders:\n  o: {{ type: openai, api_key: sk-test, base_url: \"{url}/v1\" }}\n\
         models:\n  - name: small\n    targets: [{{ provider: o, model: gpt-4o, context_window: 100 }}]\n    context_fallbacks: [big]\n\
         \x20 - name: big\n    targets: [{{ provider: o, model: gpt-4o-big }}]\n",
        url = mock.url
    );
    let (gw, _) = gateway(&cfg);
    // 300 characters estimate at 79 tokens, which would fit; gpt-4o's tokenizer counts 150 " a"
    // tokens and framing, which do not.
    let text = "a ".repeat(150);
    let body = json!({"model": "small", "messages": [{"role": "user", "content": text.trim_end()}]});
    let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await;
    assert_eq!(resp.status(), 200);
    let served = resp.headers().get("x-switchyard-model").and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(served.as_deref(), Some("gpt-4o-big"), "the exact count sends it to the context fallback");
    // Short prompts are not tokenized, and fit.
    let body = json!({"model": "small", "messages": [{"role": "user", "content": "hello there"}]});
    let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await;
    let served = resp.headers().get("x-switchyard-model").and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(served.as_deref(), Some("gpt-4o"));
}

#[tokio::test]
async fn a_bad_provider_key_is_retired_whatever_status_the_protocol_refuses_it_with() {
    // Gemini refuses a bad key with 400 API_KEY_INVALID, not 401: the gateway must still see a
    // refused credential, rotate to the next key, and hide the refusal from the client.
    let mock = mock(&["--deny-key", "gm-bad-key"]);
    let cfg = format!(
        "server:\n  master_key: {MASTER}\nproviders:\n  gem: {{ type: gemini, api_keys: [gm-bad-key, gm-good-key], base_url: \"{url}/v1beta\" }}\n\
         models:\n  - name: gem\n    targets: [{{ provider: gem, model: m }}]\n",
        url = mock.url
    );
    let (gw, _) = gateway(&cfg);
    for _ in 0..4 {
        let body = json!({"model": "gem", "messages": [{"role": "user", "content": "hi"}]});
        let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await;
        assert_eq!(resp.status(), 200);
    }
    let keys = mock_stats(&mock).await["keys"].clone();
    assert_eq!(keys["gm-bad-key"], 1, "retired after its first refusal: {keys}");
    assert_eq!(keys["gm-good-key"], 4, "{keys}");
}

#[tokio::test]
async fn an_anthropic_clients_broken_stream_is_continued_on_another_target() {
    let breaks = mock(&["--words", "30", "--cut-after", "8", "--chunk-delay-ms", "5"]);
    let good = mock(&[]);
    for kind in ["anthropic", "openai-compatible"] {
        let cfg = format!(
            "server:\n  master_key: {MASTER}\nproviders:\n  breaks: {{ type: {kind}, api_key: k, base_url: \"{}/v1\" }}\n\
             \x20 good: {{ type: {kind}, api_key: k, base_url: \"{}/v1\" }}\n\
             models:\n  - name: m\n    targets:\n      - {{ provider: breaks, model: a }}\n      - {{ provider: good, model: b, tier: 2 }}\n    recover_streams: true\n",
            breaks.url, good.url
        );
        let (gw, _) = gateway(&cfg);
        let before = mock_stats(&good).await["requests"].as_u64().unwrap_or(0);
        let body = json!({"model": "m", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "go on"}]});
        let events = sse_events(post_messages(&gw, &body).await).await;
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!names.contains(&"error"), "{kind}: {names:?}");
        assert_eq!(names.iter().filter(|n| **n == "message_start").count(), 1, "{kind}: one message: {names:?}");
        assert_eq!(names.last(), Some(&"message_stop"), "{kind}: {names:?}");
        // One text block, opened once, closed once, holding both the broken part and the rest.
        assert_eq!(names.iter().filter(|n| **n == "content_block_start").count(), 1, "{kind}: {names:?}");
        let text: String = events
            .iter()
            .filter(|(n, d)| n == "content_block_delta" && d["index"] == 0)
            .filter_map(|(_, d)| d["delta"]["text"].as_str())
            .collect();
        assert!(text.split_whitespace().count() > 5, "{kind}: {text}");
        let after = mock_stats(&good).await["requests"].as_u64().unwrap_or(0);
        assert_eq!(after, before + 1, "{kind}: the rest came from the other target");
    }
}

#[tokio::test]
async fn an_anthropic_stream_begun_immediately_is_restarted_behind_its_message_start() {
    let stalls = mock(&["--stall-after", "1"]); // the opening event, then nothing
    let good = mock(&[]);
    for kind in ["anthropic", "openai-compatible"] {
        let cfg = format!(
            "server:\n  master_key: {MASTER}\nproviders:\n  stalls: {{ type: {kind}, api_key: k, base_url: \"{}/v1\" }}\n\
             \x20 good: {{ type: {kind}, api_key: k, base_url: \"{}/v1\" }}\n\
             models:\n  - name: m\n    targets:\n      - {{ provider: stalls, model: a }}\n      - {{ provider: good, model: b, tier: 2 }}\n\
             \x20   timeout: {{ stall: 300ms }}\n    stream_start: immediately\n    recover_streams: true\n",
            stalls.url, good.url
        );
        let (gw, _) = gateway(&cfg);
        let body =
            json!({"model": "m", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let resp = post_messages(&gw, &body).await;
        assert_eq!(resp.status(), 200, "{kind}");
        let begun_by = resp.headers().get("x-switchyard-provider").and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(begun_by.as_deref(), Some("stalls"), "{kind}: the stream began with the first target");
        let events = sse_events(resp).await;
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!names.contains(&"error"), "{kind}: {names:?}");
        assert_eq!(names.first(), Some(&"message_start"), "{kind}: {names:?}");
        assert_eq!(names.iter().filter(|n| **n == "message_start").count(), 1, "{kind}: {names:?}");
        assert_eq!(names.last(), Some(&"message_stop"), "{kind}: {names:?}");
        let text: String = events
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .filter_map(|(_, d)| d["delta"]["text"].as_str())
            .collect();
        assert!(!text.is_empty(), "{kind}: {names:?}");
    }
}
