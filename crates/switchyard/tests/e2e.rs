//! The gateway, end to end: the real binary in front of `switchyard mock`, over real sockets.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};

#[tokio::test]
async fn chat_answers_like_the_upstream_with_routing_headers() {
    let up = mock(&[]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    let body = json!({"model": "chat", "messages": user("what is a gateway")});
    let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["x-switchyard-provider"], "up");
    assert_eq!(h["x-switchyard-model"], "mock-large");
    assert_eq!(h["x-switchyard-attempts"], "1");
    assert_eq!(h["x-request-id"].len(), 36);
    let via_gateway = json(resp).await;

    let direct = json(
        post(
            &format!("{}/v1/chat/completions", up.url),
            None,
            &json!({"model": "mock-large", "messages": user("what is a gateway")}),
        )
        .await,
    )
    .await;
    assert_eq!(via_gateway["choices"][0]["message"]["content"], direct["choices"][0]["message"]["content"]);
    assert_eq!(via_gateway["usage"], direct["usage"]);
    assert_eq!(via_gateway["usage"]["prompt_tokens"], 4);
}

#[tokio::test]
async fn unknown_fields_reach_the_upstream_untouched() {
    let up = mock(&[]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    let body = json!({
        "model": "chat",
        "messages": [{"role": "user", "content": "hi", "vendor_message_flag": {"keep": true}}],
        "vendor_knob": {"a": [1, 2, {"b": null}], "z": "last"},
        "logit_bias": {"50256": -100},
    });
    let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await;
    assert_eq!(resp.status(), 200);
    let seen = &mock_stats(&up).await["last_request"]["body"];
    assert_eq!(seen["model"], "mock-large", "the model is the target's");
    assert_eq!(seen["vendor_knob"], body["vendor_knob"]);
    assert_eq!(seen["logit_bias"], body["logit_bias"]);
    assert_eq!(seen["messages"], body["messages"]);
    // Field order is kept too: the body is the client's, with only the model replaced.
    let keys: Vec<&String> = seen.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    assert_eq!(keys, ["model", "messages", "vendor_knob", "logit_bias"]);
}

#[tokio::test]
async fn streams_match_the_whole_answer_and_usage_shows_only_when_asked() {
    let up = mock(&["--chunks", "4"]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    let whole = json(post(&url, Some(MASTER), &json!({"model": "chat", "messages": user("stream me")})).await).await;

    for include_usage in [true, false] {
        let body = json!({"model": "chat", "messages": user("stream me"), "stream": true,
                          "stream_options": {"include_usage": include_usage}});
        let resp = post(&url, Some(MASTER), &body).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let frames = sse_data(resp).await;
        assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> =
            frames[..frames.len() - 1].iter().map(|f| serde_json::from_str(f).unwrap_or(Value::Null)).collect();
        let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, whole["choices"][0]["message"]["content"].as_str().unwrap_or("?"));
        let usage: Vec<&Value> = chunks.iter().filter(|c| !c["usage"].is_null()).map(|c| &c["usage"]).collect();
        if include_usage {
            assert_eq!(usage, vec![&whole["usage"]]);
        } else {
            assert!(usage.is_empty(), "usage leaked to a client that did not ask: {usage:?}");
        }
    }
    // The gateway always asked the upstream for usage, so it can account for the call.
    assert_eq!(mock_stats(&up).await["last_request"]["body"]["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn client_errors_have_openai_shape_and_status() {
    let up = mock(&[]);
    let extra = "keys:\n  - { name: limited, key: sk-limited-key-1, models: [embed] }\n";
    let config = simple_config(&up, extra).replace("server:\n", "server:\n  max_body_bytes: 4096\n");
    let (gw, _) = gateway(&config);
    let url = format!("{}/v1/chat/completions", gw.url);
    let ok = json!({"model": "chat", "messages": user("hi")});

    let cases: Vec<(Option<&str>, Value, u16, &str)> = vec![
        (None, ok.clone(), 401, "missing_api_key"),
        (Some("sk-not-a-real-key"), ok.clone(), 401, "invalid_api_key"),
        (Some("sk-limited-key-1"), ok.clone(), 403, "model_not_allowed"),
        (Some(MASTER), json!({"model": "nope", "messages": user("hi")}), 404, "model_not_found"),
        (Some(MASTER), json!({"model": "chat", "messages": []}), 400, "empty_array"),
        (Some(MASTER), json!({"model": "chat", "messages": "hi"}), 400, ""),
        (Some(MASTER), json!({"model": "chat", "messages": user("hi"), "temperature": "hot"}), 400, ""),
        (Some(MASTER), json!({"messages": user("hi")}), 400, ""),
        (Some(MASTER), json!({"model": "chat", "messages": user(&"x".repeat(5000))}), 413, "request_too_large"),
    ];
    for (key, body, status, code) in cases {
        let resp = post(&url, key, &body).await;
        assert_eq!(resp.status(), status, "{body}");
        assert!(resp.headers().contains_key("x-request-id"));
        let err = json(resp).await;
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
        assert!(err["error"]["type"].is_string(), "{err}");
        if !code.is_empty() {
            assert_eq!(err["error"]["code"], code, "{err}");
        }
    }
    // Wrong types name the parameter.
    let err =
        json(post(&url, Some(MASTER), &json!({"model": "chat", "messages": user("hi"), "temperature": "hot"})).await)
            .await;
    assert_eq!(err["error"]["param"], "temperature");
    // Invalid JSON.
    let resp = client().post(&url).bearer_auth(MASTER).body("{not json").send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 400);
    // The key never appears in an error.
    let resp = post(&url, Some("sk-secret-value-123"), &ok).await;
    assert!(!resp.text().await.unwrap_or_default().contains("sk-secret-value-123"));
    // Unknown paths are OpenAI-shaped 404s too.
    let resp = client().get(format!("{}/v1/nothing", gw.url)).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 404);
    assert!(json(resp).await["error"]["message"].is_string());
}

#[tokio::test]
async fn upstream_errors_keep_status_message_and_retry_after() {
    let up = mock(&[]);
    // Each fault gets a model of its own: rate limits and breakers carry across requests.
    let models: String = ["s400", "s429", "s503", "json"]
        .iter()
        .map(|m| format!("  - name: {m}\n    targets: [{{ provider: up, model: mock-large }}]\n"))
        .collect();
    let (gw, _) = gateway(&simple_config(&up, &models));
    let url = format!("{}/v1/chat/completions", gw.url);
    // Broken JSON from the upstream is a 502, not a crash.
    let body = json!({"model": "json", "messages": user("hi"), "mock": {"malformed": "json"}});
    let resp = post(&url, Some(MASTER), &body).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(json(resp).await["error"]["code"], "upstream_invalid_json");
    for status in [400u16, 503, 429] {
        let body = json!({"model": format!("s{status}"), "messages": user("hi"), "mock": {"status": status, "retry_after": 7}});
        let resp = post(&url, Some(MASTER), &body).await;
        assert_eq!(resp.status(), status);
        if status == 429 {
            assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
        }
        let err = json(resp).await;
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("mock fault: status {status}")), "{message}");
    }
    // While the provider's retry-after runs, the target is held back: the next request is told
    // to come back later without a doomed call upstream.
    let before = mock_stats(&up).await["requests"].as_u64();
    let resp = post(&url, Some(MASTER), &json!({"model": "s429", "messages": user("hi")})).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(resp.headers()["x-switchyard-attempts"], "0");
    assert_eq!(json(resp).await["error"]["code"], "all_targets_rate_limited");
    assert_eq!(mock_stats(&up).await["requests"].as_u64(), before);
    // Other models' targets are not held back.
    let resp = post(&url, Some(MASTER), &json!({"model": "chat", "messages": user("hi")})).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn falls_back_on_5xx_and_on_connection_refused() {
    let good = mock(&[]);
    let bad = mock(&["--status", "500"]);
    // A port with nothing listening: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(9);
    let config = format!(
        "providers:\n  good: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n  bad: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n\
         \x20 gone: {{ type: openai-compatible, base_url: \"http://127.0.0.1:{closed}/v1\" }}\n\
         models:\n  - name: a\n    targets: [{{ provider: bad, model: m }}]\n    fallbacks: [b]\n\
         \x20 - name: b\n    targets: [{{ provider: gone, model: m }}]\n    fallbacks: [c]\n\
         \x20 - name: c\n    targets: [{{ provider: good, model: m }}]\n",
        good.url, bad.url
    );
    let (gw, _) = gateway(&config);
    let resp =
        post(&format!("{}/v1/chat/completions", gw.url), None, &json!({"model": "a", "messages": user("hi")})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-provider"], "good");
    // A lone target gets one retry by default: bad twice, gone twice, then good.
    assert_eq!(resp.headers()["x-switchyard-attempts"], "5");

    // All targets down: the last error, with every attempt listed.
    let resp =
        post(&format!("{}/v1/chat/completions", gw.url), None, &json!({"model": "b", "messages": user("hi")})).await;
    assert_eq!(resp.status(), 200, "b falls back to c");
    let config_all_bad = config.replace("fallbacks: [c]", "fallbacks: []");
    let (gw2, _) = gateway(&config_all_bad);
    let resp =
        post(&format!("{}/v1/chat/completions", gw2.url), None, &json!({"model": "a", "messages": user("hi")})).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-switchyard-attempts"], "4");
    let msg = json(resp).await["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("bad/m") && msg.contains("gone/m"), "{msg}");
}

#[tokio::test]
async fn a_client_that_disconnects_leaves_no_upstream_stream_open() {
    let up = mock(&["--words", "200", "--chunk-delay-ms", "20"]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    let body = json!({"model": "chat", "messages": user("long story"), "stream": true});
    let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await;
    let mut stream = resp.bytes_stream();
    let first = stream.next().await;
    assert!(matches!(first, Some(Ok(_))));
    assert_eq!(mock_stats(&up).await["open_streams"], 1);
    drop(stream);
    let dropped = Instant::now();
    loop {
        if mock_stats(&up).await["open_streams"] == 0 {
            break;
        }
        assert!(dropped.elapsed() < Duration::from_secs(1), "upstream stream still open 1 s after the client left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn mid_stream_failures_end_in_an_error_event_never_a_hang() {
    let up = mock(&["--chunk-delay-ms", "10"]);
    let config = simple_config(
        &up,
        "  - name: strict\n    targets: [{ provider: up, model: m }]\n    timeout: { stall: 500ms }\n",
    );
    let (gw, _) = gateway(&config);
    let url = format!("{}/v1/chat/completions", gw.url);
    for (fault, code) in [
        (json!({"cut_after": 3}), "upstream_transport_error"),
        (json!({"stall_after": 3}), "stream_stall_timeout"),
        (json!({"malformed": "sse"}), ""),
    ] {
        let started = Instant::now();
        let body = json!({"model": "strict", "messages": user("hi"), "stream": true, "mock": fault});
        let resp = post(&url, Some(MASTER), &body).await;
        assert_eq!(resp.status(), 200, "the stream had begun");
        let frames = sse_data(resp).await;
        let last: Value = frames.last().and_then(|f| serde_json::from_str(f).ok()).unwrap_or(Value::Null);
        assert!(last["error"]["message"].is_string(), "{fault}: last frame {last}");
        if !code.is_empty() {
            assert_eq!(last["error"]["code"], code, "{fault}");
        }
        assert!(!frames.iter().any(|f| f == "[DONE]"), "a failed stream must not claim success");
        assert!(started.elapsed() < Duration::from_secs(5), "{fault} took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn embeddings_and_models() {
    let up = mock(&[]);
    let extra = "keys:\n  - { name: limited, key: sk-limited-key-1, models: [embed] }\n";
    let (gw, _) = gateway(&simple_config(&up, extra));
    let resp = post(
        &format!("{}/v1/embeddings", gw.url),
        Some(MASTER),
        &json!({"model": "embed", "input": ["a b", "c"], "dimensions": 4}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-model"], "mock-embed");
    let v = json(resp).await;
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["data"][1]["embedding"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["usage"]["prompt_tokens"], 3);

    let list = |key: &'static str| {
        let url = format!("{}/v1/models", gw.url);
        async move { json(client().get(url).bearer_auth(key).send().await.unwrap_or_else(|e| panic!("{e}"))).await }
    };
    let ids = |v: &Value| -> Vec<String> {
        v["data"].as_array().into_iter().flatten().filter_map(|m| m["id"].as_str().map(str::to_string)).collect()
    };
    assert_eq!(ids(&list(MASTER).await), ["chat", "embed"]);
    assert_eq!(ids(&list("sk-limited-key-1").await), ["embed"]);
}

#[tokio::test]
async fn azure_uses_deployment_paths_api_version_and_api_key_header() {
    let up = mock(&[]);
    let config = format!(
        "providers:\n  az: {{ type: azure-openai, base_url: \"{}\", api_key: az-secret-key, api_version: 2024-10-21 }}\n\
         models:\n  - name: gpt\n    targets: [{{ provider: az, model: my-deployment }}]\n",
        up.url
    );
    let (gw, _) = gateway(&config);
    let resp =
        post(&format!("{}/v1/chat/completions", gw.url), None, &json!({"model": "gpt", "messages": user("hi")})).await;
    assert_eq!(resp.status(), 200);
    let last = &mock_stats(&up).await["last_request"];
    assert_eq!(last["path"], "/openai/deployments/my-deployment/chat/completions");
    assert_eq!(last["query"], "api-version=2024-10-21");
    assert_eq!(last["headers"]["api-key"], "az-secret-key");
    assert!(last["headers"]["authorization"].is_null());
}

#[tokio::test]
async fn hot_reload_applies_good_configs_and_keeps_the_old_one_on_errors() {
    let up = mock(&[]);
    let config = simple_config(&up, "");
    let (gw, path) = gateway(&config);
    let models = || async {
        let v = json(
            client()
                .get(format!("{}/v1/models", gw.url))
                .bearer_auth(MASTER)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await;
        v["data"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(models().await, 2);
    std::fs::write(&path, simple_config(&up, "  - name: added\n    targets: [{ provider: up, model: x }]\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let waited = Instant::now();
    while models().await != 3 {
        assert!(waited.elapsed() < Duration::from_secs(5), "reload not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken file: the running config stays, and readiness says why.
    std::fs::write(&path, "models:\n  - name: broken\n    targetz: []\n").unwrap_or_else(|e| panic!("{e}"));
    let waited = Instant::now();
    loop {
        let ready =
            json(client().get(format!("{}/health/ready", gw.url)).send().await.unwrap_or_else(|e| panic!("{e}"))).await;
        if let Some(err) = ready["config"]["last_reload_error"].as_str() {
            assert!(err.contains(":3:"), "error names the line: {err}");
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(5), "reload error not reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(models().await, 3);
    let resp = post(
        &format!("{}/v1/chat/completions", gw.url),
        Some(MASTER),
        &json!({"model": "added", "messages": user("hi")}),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn health_endpoints() {
    let up = mock(&[]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    for path in ["/health/live", "/health/ready"] {
        let resp = client().get(format!("{}{path}", gw.url)).send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_slow_client_is_timed_out_and_the_gateway_stays_healthy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = mock(&[]);
    let config = simple_config(&up, "").replace("server:\n", "server:\n  client_timeout: 500ms\n");
    let (gw, _) = gateway(&config);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\""
    );
    sock.write_all(head.as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no answer to a stalled body"))
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let resp = client().get(format!("{}/health/live", gw.url)).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn more_than_a_hundred_concurrent_streams_all_complete() {
    // Providers cap streams per HTTP/2 connection at about 100; the upstream pool must not.
    let up = mock(&["--chunk-delay-ms", "20", "--words", "10"]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    let client = client();
    let tasks: Vec<_> = (0..150)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let body = json!({"model": "chat", "messages": user(&format!("stream {i}")), "stream": true});
                let resp = client.post(&url).bearer_auth(MASTER).json(&body).send().await.ok()?;
                let text = resp.text().await.ok()?;
                text.contains("data: [DONE]").then_some(())
            })
        })
        .collect();
    let mut completed = 0;
    for t in tasks {
        if matches!(t.await, Ok(Some(()))) {
            completed += 1;
        }
    }
    assert_eq!(completed, 150);
    assert_eq!(mock_stats(&up).await["streams_started"], 150);
}

#[tokio::test]
async fn a_client_that_stops_reading_releases_the_upstream_after_the_stall_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Far more than socket buffers hold, so the gateway feels the client's back-pressure.
    let up = mock(&["--words", "100000", "--chunks", "100000"]);
    let config = simple_config(
        &up,
        "  - name: strict\n    targets: [{ provider: up, model: m }]\n    timeout: { stall: 500ms }\n",
    );
    let (gw, _) = gateway(&config);
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap_or_else(|e| panic!("{e}"));
    let body = json!({"model": "strict", "stream": true, "messages": user("a very long answer")}).to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut first = [0u8; 64];
    let n = sock.read(&mut first).await.unwrap_or(0);
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // Now read nothing more, but keep the connection open.
    let waited = Instant::now();
    while mock_stats(&up).await["open_streams"] != 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the upstream stream is still held by a client that stopped reading"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(sock);
}

/// Parses Prometheus text into (name with labels, value) pairs.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sum(samples: &[(String, f64)], prefix: &str, contains: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(n, _)| n.starts_with(prefix) && contains.iter().all(|c| n.contains(c)))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_count_requests_tokens_errors_and_cancellations() {
    let up = mock(&["--words", "7", "--chunk-delay-ms", "5"]);
    let (gw, _) = gateway(&simple_config(&up, ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    for text in ["one two three", "four five"] {
        let resp = post(&url, Some(MASTER), &json!({"model": "chat", "messages": user(text)})).await;
        assert_eq!(resp.status(), 200);
    }
    let resp = post(&url, Some(MASTER), &json!({"model": "chat", "stream": true, "messages": user("six")})).await;
    assert!(sse_data(resp).await.iter().any(|f| f == "[DONE]"));
    assert_eq!(post(&url, Some(MASTER), &json!({"model": "nope", "messages": user("x")})).await.status(), 404);
    // A stream the client abandons is counted once, as cancelled.
    let long = json!({"model": "chat", "stream": true, "messages": user("long"), "mock": {"words": 500}});
    let resp = post(&url, Some(MASTER), &long).await;
    let mut body = resp.bytes_stream();
    let _ = body.next().await;
    drop(body);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let text = client().get(format!("{}/metrics", gw.url)).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(text.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/plain"));
    let text = text.text().await.unwrap_or_default();
    let s = samples(&text);
    let chat = "gen_ai_request_model=\"chat\"";
    assert_eq!(sum(&s, "switchyard_requests_total", &[chat, "status_class=\"2xx\""]), 3.0, "{text}");
    assert_eq!(sum(&s, "switchyard_requests_total", &[chat, "status_class=\"cancelled\""]), 1.0, "{text}");
    assert_eq!(sum(&s, "switchyard_errors_total", &["error_type=\"model_not_found\""]), 1.0);
    // Tokens equal what the mock sent: 7 words per answer, prompt words counted by the mock.
    assert_eq!(sum(&s, "switchyard_tokens_total", &[chat, "gen_ai_token_type=\"output\""]), 21.0);
    assert_eq!(sum(&s, "switchyard_tokens_total", &[chat, "gen_ai_token_type=\"input\""]), 3.0 + 2.0 + 1.0);
    assert_eq!(sum(&s, "gen_ai_server_time_to_first_token_seconds_count", &[chat]), 2.0, "two streams");
    assert_eq!(
        sum(&s, "switchyard_gateway_overhead_seconds_count", &[]),
        4.0,
        "every routed request (the 404 never was)"
    );
    assert_eq!(sum(&s, "switchyard_attempts_total", &["outcome=\"answered\""]), 4.0);
    assert_eq!(sum(&s, "switchyard_breaker_state", &[chat]), 0.0);
    assert!(text.contains("switchyard_breaker_state{gen_ai_request_model=\"chat\""));
    assert_eq!(sum(&s, "switchyard_in_flight_requests", &[]), 0.0);
    assert!(!text.contains(MASTER), "no key in metrics");
}

#[tokio::test]
async fn sigterm_lets_streams_in_flight_finish_and_refuses_new_connections() {
    let up = mock(&["--words", "20", "--chunk-delay-ms", "40"]);
    let (mut gw, _) = gateway(&simple_config(&up, ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = json!({"model": "chat", "stream": true, "messages": user("finish me")});
    let mut streams = Vec::new();
    for _ in 0..5 {
        let resp = post(&url, Some(MASTER), &body).await;
        assert_eq!(resp.status(), 200);
        streams.push(tokio::spawn(sse_data(resp)));
    }
    // Every stream is running (about 0.8 s each) when the gateway is told to stop.
    let pid = gw.child.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap_or_else(|e| panic!("{e}"));
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = client().get(format!("{}/health/live", gw.url)).send().await;
    assert!(refused.is_err(), "a stopping gateway accepts no new connection");
    for s in streams {
        let frames = s.await.unwrap_or_default();
        assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "a stream in flight was cut by the shutdown");
    }
    let waited = Instant::now();
    loop {
        if let Ok(Some(status)) = gw.child.try_wait() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(10), "the gateway did not exit after its streams ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
