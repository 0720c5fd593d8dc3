//! Routing and resilience, end to end: the real gateway in front of `switchyard mock` targets with
//! scripted faults. Each test shows one behaviour by what the client and the mocks observe.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn provider(name: &str, mock: &Proc) -> String {
    format!("  {name}: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n", mock.url)
}

async fn chat(gw: &Proc, model: &str, extra: Value) -> reqwest::Response {
    let mut body = json!({"model": model, "messages": user("route me")});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &body).await
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

async fn requests(mock: &Proc) -> u64 {
    mock_stats(mock).await["requests"].as_u64().unwrap_or(0)
}

fn config(providers: &str, models: &str) -> String {
    format!("server:\n  master_key: {MASTER}\nproviders:\n{providers}models:\n{models}")
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let up = mock(&["--status", "429", "--retry-after", "1", "--fail-first", "1"]);
    let cfg = config(
        &provider("p", &up),
        "  - name: m\n    targets: [{ provider: p, model: x }]\n    retry: { attempts: 2 }\n",
    );
    let (gw, _) = gateway(&cfg);
    let started = Instant::now();
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
    assert!(started.elapsed() >= Duration::from_secs(1), "the retry waited out retry-after");
    assert_eq!(requests(&up).await, 2);
}

#[tokio::test]
async fn a_long_retry_after_is_not_waited_for() {
    let up = mock(&["--status", "429", "--retry-after", "60"]);
    let cfg = config(
        &provider("p", &up),
        "  - name: m\n    targets: [{ provider: p, model: x }]\n    retry: { attempts: 3, max_wait: 2s }\n",
    );
    let (gw, _) = gateway(&cfg);
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "60");
    assert_eq!(requests(&up).await, 1, "no doomed retries");
}

#[tokio::test]
async fn a_late_first_token_moves_to_the_next_target_before_the_client_sees_a_byte() {
    let slow_headers = mock(&["--latency-ms", "3000"]);
    let slow_token = mock(&["--stall-after", "1"]); // headers and the role chunk, then nothing
    let good = mock(&[]);
    let providers = provider("slowh", &slow_headers) + &provider("slowt", &slow_token) + &provider("good", &good);
    let models = "  - name: m\n    targets:\n      - { provider: slowh, model: a }\n      - { provider: slowt, model: b, tier: 2 }\n      - { provider: good, model: c, tier: 3 }\n    timeout: { first_token: 300ms }\n";
    let (gw, _) = gateway(&config(&providers, models));
    // Headers that never come fail the first target either way; a first token that never comes
    // after the headers fails the second one only for a stream.
    for (stream, answered, attempts) in [(false, "slowt", "2"), (true, "good", "3")] {
        let resp = chat(&gw, "m", json!({"stream": stream})).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-switchyard-provider"), answered, "stream: {stream}");
        assert_eq!(header(&resp, "x-switchyard-attempts"), attempts, "stream: {stream}");
        if stream {
            let frames = sse_data(resp).await;
            assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
            assert!(!frames.iter().any(|f| f.contains("\"error\"")));
        }
    }
}

#[tokio::test]
async fn a_stream_that_starts_immediately_begins_before_its_first_token() {
    let stalls = mock(&["--stall-after", "1"]); // headers and the role chunk, then nothing
    let good = mock(&[]);
    let targets =
        "    targets:\n      - { provider: stalls, model: a }\n      - { provider: good, model: b, tier: 2 }\n";
    let models = format!(
        "  - name: held\n    targets: [{{ provider: stalls, model: a }}]\n    timeout: {{ first_token: 300ms }}\n\
         \x20 - name: early\n    targets: [{{ provider: stalls, model: a }}]\n    timeout: {{ stall: 300ms }}\n    stream_start: immediately\n\
         \x20 - name: restarted\n{targets}    timeout: {{ stall: 300ms }}\n    stream_start: immediately\n    recover_streams: true\n"
    );
    let (gw, _) = gateway(&config(&(provider("stalls", &stalls) + &provider("good", &good)), &models));

    // By default the role chunk alone does not start the client's stream: with no other
    // target, the missing first token is an HTTP error.
    let resp = chat(&gw, "held", json!({"stream": true})).await;
    assert_eq!(resp.status(), 504, "{}", resp.text().await.unwrap_or_default());

    // Started at once, the client has its 200 and the role chunk; the stall is then a
    // mid-stream failure, told in the stream.
    let resp = chat(&gw, "early", json!({"stream": true})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-provider"), "stalls");
    let frames = sse_data(resp).await;
    assert!(frames[0].contains("\"role\":\"assistant\""), "{frames:?}");
    assert!(frames.iter().any(|f| f.contains("stream_stall_timeout")), "{frames:?}");

    // With recovery on, the stream that stalled before its first token is asked again of the
    // next target behind the open stream: one role chunk, the whole text, a normal end.
    let resp = chat(&gw, "restarted", json!({"stream": true})).await;
    assert_eq!(resp.status(), 200);
    let frames = sse_data(resp).await;
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = frames.iter().filter_map(|f| serde_json::from_str(f).ok()).collect();
    assert!(chunks.iter().all(|c| c["error"].is_null()), "{frames:?}");
    let roles = chunks.iter().filter(|c| c["choices"][0]["delta"]["role"].is_string()).count();
    assert_eq!(roles, 1, "{frames:?}");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(!text.is_empty());
    // Nothing had been said, so the second target got the request as it was.
    let asked = &mock_stats(&good).await["last_request"]["body"]["messages"];
    assert_eq!(asked.as_array().map(Vec::len), Some(1), "{asked}");
}

#[tokio::test]
async fn a_stream_begun_immediately_is_timed_at_its_first_token() {
    // The role chunk at once, the first word 300 ms later.
    let slow = mock(&["--chunk-delay-ms", "300", "--words", "2"]);
    let models = "  - name: m\n    targets: [{ provider: slow, model: a }]\n    stream_start: immediately\n";
    let (gw, _) = gateway(&config(&provider("slow", &slow), models));
    let resp = chat(&gw, "m", json!({"stream": true})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(sse_data(resp).await.last().map(String::as_str), Some("[DONE]"));
    // The latency statistics see the wait for the first word, not the role chunk's arrival.
    let ttft = admin_target(&gw, "m", 0).await["ewma_ttft_ms"].as_f64().unwrap_or(0.0);
    assert!(ttft >= 250.0, "time to first token {ttft} ms");
}

#[tokio::test]
async fn the_breaker_opens_and_recovers() {
    let flaky = mock(&["--status", "500", "--fail-first", "3"]);
    let backup = mock(&[]);
    let models = "  - name: m\n    targets:\n      - { provider: flaky, model: a }\n      - { provider: backup, model: b, tier: 2 }\n    breaker: { failures: 3, cooldown: 600ms }\n";
    let (gw, _) = gateway(&config(&(provider("flaky", &flaky) + &provider("backup", &backup)), models));
    for _ in 0..3 {
        let resp = chat(&gw, "m", json!({})).await;
        assert_eq!(
            (header(&resp, "x-switchyard-provider"), header(&resp, "x-switchyard-attempts")),
            ("backup".into(), "2".into())
        );
    }
    // Open: the flaky target is not even tried.
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(
        (header(&resp, "x-switchyard-provider"), header(&resp, "x-switchyard-attempts")),
        ("backup".into(), "1".into())
    );
    assert_eq!(requests(&flaky).await, 3);
    let state = admin_target(&gw, "m", 0).await;
    assert_eq!(state["breaker"], "open");
    // After the cooldown, one probe goes through; it succeeds and the breaker closes.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(header(&resp, "x-switchyard-provider"), "flaky");
    assert_eq!(admin_target(&gw, "m", 0).await["breaker"], "closed");
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(header(&resp, "x-switchyard-provider"), "flaky");
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker_at_once() {
    let down = mock(&["--status", "500"]);
    let cfg = config(
        &provider("down", &down),
        "  - name: m\n    targets: [{ provider: down, model: a }]\n    breaker: { cooldown: 300ms }\n",
    );
    let (gw, _) = gateway(&cfg);
    for _ in 0..2 {
        chat(&gw, "m", json!({})).await; // two requests, three failures: open
    }
    assert_eq!(admin_target(&gw, "m", 0).await["breaker"], "open");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let before = requests(&down).await;
    chat(&gw, "m", json!({})).await; // the probe, which fails
    assert_eq!(requests(&down).await, before + 1, "one probe");
    assert_eq!(admin_target(&gw, "m", 0).await["breaker"], "open", "a failed probe reopens at once");
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(requests(&down).await, before + 1, "no request pays for a known-bad target");
}

#[tokio::test]
async fn a_break_after_the_finish_ends_the_stream_normally() {
    // role, three words, finish, then the connection drops before the usage chunk and [DONE].
    let breaks = mock(&["--words", "3", "--cut-after", "5", "--chunk-delay-ms", "10"]);
    let good = mock(&[]);
    let models = "  - name: m\n    targets:\n      - { provider: breaks, model: a }\n      - { provider: good, model: b, tier: 2 }\n    recover_streams: true\n";
    let (gw, _) = gateway(&config(&(provider("breaks", &breaks) + &provider("good", &good)), models));
    let frames = sse_data(chat(&gw, "m", json!({"stream": true})).await).await;
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = frames.iter().filter_map(|f| serde_json::from_str(f).ok()).collect();
    assert!(chunks.iter().all(|c| c["error"].is_null()));
    assert_eq!(chunks.iter().filter(|c| c["choices"][0]["finish_reason"].is_string()).count(), 1);
    assert_eq!(requests(&good).await, 0, "a finished answer is not continued");
}

#[tokio::test]
async fn a_lone_target_cools_down_so_requests_fail_fast() {
    let down = mock(&["--status", "500"]);
    let cfg = config(
        &provider("down", &down),
        "  - name: m\n    targets: [{ provider: down, model: a }]\n    breaker: { cooldown: 30s }\n",
    );
    let (gw, _) = gateway(&cfg);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let resp = chat(&gw, "m", json!({})).await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 503 {
            assert!(resp.headers().contains_key("retry-after"));
            assert_eq!(header(&resp, "x-switchyard-attempts"), "0");
        }
    }
    // The first request is retried once (both fail), the second fails a third time and opens the
    // breaker; from then on requests fail fast.
    assert_eq!(statuses, [500, 500, 503, 503, 503, 503, 503, 503, 503, 503]);
    assert_eq!(requests(&down).await, 3, "only the requests before the breaker opened reached the provider");
}

#[tokio::test]
async fn latency_routing_sends_most_traffic_to_the_faster_target() {
    let fast = mock(&["--latency-ms", "5"]);
    let slow = mock(&["--latency-ms", "150"]);
    let models = "  - name: m\n    routing: latency\n    targets:\n      - { provider: fast, model: a }\n      - { provider: slow, model: b }\n";
    let (gw, _) = gateway(&config(&(provider("fast", &fast) + &provider("slow", &slow)), models));
    let mut by = BTreeMap::new();
    for _ in 0..40 {
        let resp = chat(&gw, "m", json!({})).await;
        *by.entry(header(&resp, "x-switchyard-provider")).or_insert(0) += 1;
    }
    let fast_share = by.get("fast").copied().unwrap_or(0);
    assert!(fast_share >= 34, "fast got {fast_share} of 40: {by:?}");
}

#[tokio::test]
async fn hedging_answers_from_the_second_target_when_the_first_is_slow() {
    let slow = mock(&["--latency-ms", "2000"]);
    let fast = mock(&[]);
    let models = "  - name: m\n    targets:\n      - { provider: slow, model: a }\n      - { provider: fast, model: b, tier: 2 }\n    hedge: { after: 100ms }\n";
    let (gw, _) = gateway(&config(&(provider("slow", &slow) + &provider("fast", &fast)), models));
    for stream in [false, true] {
        let resp = chat(&gw, "m", json!({"stream": stream})).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-switchyard-provider"), "fast");
        assert_eq!(header(&resp, "x-switchyard-attempts"), "2", "both attempts were sent");
    }
    assert_eq!(requests(&slow).await, 2);
}

#[tokio::test]
async fn mid_stream_recovery_gives_one_continuous_answer() {
    let breaks = mock(&["--cut-after", "4", "--chunk-delay-ms", "20"]);
    let good = mock(&[]);
    let models = "  - name: m\n    targets:\n      - { provider: breaks, model: a }\n      - { provider: good, model: b, tier: 2 }\n    recover_streams: true\n";
    let (gw, _) = gateway(&config(&(provider("breaks", &breaks) + &provider("good", &good)), models));
    let resp = chat(&gw, "m", json!({"stream": true, "stream_options": {"include_usage": true}})).await;
    assert_eq!(resp.status(), 200);
    let frames = sse_data(resp).await;
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = frames.iter().filter_map(|f| serde_json::from_str(f).ok()).collect();
    assert!(chunks.iter().all(|c| c["error"].is_null()), "no error reached the client");
    let ids: std::collections::BTreeSet<&str> = chunks.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one answer, one id: {ids:?}");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    // The continuation request carried the partial answer, and the client got partial + rest.
    let continued = &mock_stats(&good).await["last_request"]["body"];
    let messages = continued["messages"].as_array().cloned().unwrap_or_default();
    let partial =
        messages.iter().rev().find(|m| m["role"] == "assistant").and_then(|m| m["content"].as_str()).unwrap_or("");
    assert!(!partial.is_empty() && text.starts_with(partial), "{text:?} should start with {partial:?}");
    assert!(text.len() > partial.len(), "the continuation added text");
    let finishes = chunks.iter().filter(|c| c["choices"][0]["finish_reason"].is_string()).count();
    assert_eq!(finishes, 1);
    assert_eq!(chunks.iter().filter(|c| c["usage"].is_object()).count(), 1);
}

#[tokio::test]
async fn rules_route_by_header_and_parameters_and_split_traffic() {
    let up = mock(&[]);
    let models = "  - name: default\n    targets: [{ provider: p, model: d }]\n  - name: research\n    targets: [{ provider: p, model: r }]\n\
                  \x20 - name: long\n    targets: [{ provider: p, model: l }]\n  - name: a\n    targets: [{ provider: p, model: sa }]\n  - name: b\n    targets: [{ provider: p, model: sb }]\n";
    let rules = "rules:\n  - name: research-team\n    when: { header.x-team: { eq: research } }\n    model: research\n\
                 \x20 - name: big-outputs\n    when: { all: [ { model: { eq: default } }, { param.max_tokens: { gt: 1000 } } ] }\n    model: long\n\
                 \x20 - name: experiment\n    when: { model: { eq: split } }\n    split: { a: 50, b: 50 }\n";
    let cfg = config(&provider("p", &up), models) + rules + "  \n";
    let cfg = cfg.replace(
        "models:\n  - name: default",
        "models:\n  - name: split\n    targets: [{ provider: p, model: s }]\n  - name: default",
    );
    let (gw, _) = gateway(&cfg);
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = json!({"model": "default", "messages": user("hi")});
    let resp = client()
        .post(&url)
        .bearer_auth(MASTER)
        .header("x-team", "research")
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(header(&resp, "x-switchyard-model"), "r");
    let resp = chat(&gw, "default", json!({"max_tokens": 2000})).await;
    assert_eq!(header(&resp, "x-switchyard-model"), "l");
    let resp = chat(&gw, "default", json!({"max_tokens": 20})).await;
    assert_eq!(header(&resp, "x-switchyard-model"), "d");
    let mut split = BTreeMap::new();
    for _ in 0..60 {
        let resp = chat(&gw, "split", json!({})).await;
        *split.entry(header(&resp, "x-switchyard-model")).or_insert(0) += 1;
    }
    assert!(split.get("sa").copied().unwrap_or(0) >= 15 && split.get("sb").copied().unwrap_or(0) >= 15, "{split:?}");
}

#[tokio::test]
async fn the_request_can_list_alternative_models() {
    let down = mock(&["--status", "503"]);
    let up = mock(&[]);
    let models = "  - name: a\n    targets: [{ provider: down, model: x }]\n  - name: c\n    targets: [{ provider: up, model: y }]\n";
    let (gw, _) = gateway(&config(&(provider("down", &down) + &provider("up", &up)), models));
    let resp = chat(&gw, "a", json!({"models": ["c"]})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-provider"), "up");
    assert!(
        mock_stats(&up).await["last_request"]["body"].get("models").is_none(),
        "`models` is the gateway's, not the provider's"
    );
    let resp = chat(&gw, "a", json!({"models": ["nope"]})).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(json(resp).await["error"]["param"], "models");
}

#[tokio::test]
async fn too_long_requests_go_to_context_fallbacks() {
    let small = mock(&[]);
    let big = mock(&[]);
    let refusing = mock(&["--status", "400", "--error-code", "context_length_exceeded"]);
    let models = "  - name: m\n    targets: [{ provider: small, model: s, context_window: 50 }]\n    context_fallbacks: [large]\n\
                  \x20 - name: r\n    targets: [{ provider: refusing, model: s }]\n    context_fallbacks: [large]\n\
                  \x20 - name: large\n    targets: [{ provider: big, model: l, context_window: 100000 }]\n";
    let providers = provider("small", &small) + &provider("big", &big) + &provider("refusing", &refusing);
    let (gw, _) = gateway(&config(&providers, models));
    let long = "word ".repeat(200);
    let resp =
        post(&format!("{}/v1/chat/completions", gw.url), Some(MASTER), &json!({"model": "m", "messages": user(&long)}))
            .await;
    assert_eq!(header(&resp, "x-switchyard-provider"), "big");
    assert_eq!(requests(&small).await, 0, "known too long before sending");
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(header(&resp, "x-switchyard-provider"), "small", "short requests stay");
    // Known only from the provider's error.
    let resp = chat(&gw, "r", json!({})).await;
    assert_eq!(header(&resp, "x-switchyard-provider"), "big");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
}

#[tokio::test]
async fn content_policy_refusals_go_to_content_fallbacks() {
    let strict = mock(&["--status", "400", "--error-code", "content_policy_violation"]);
    let lenient = mock(&[]);
    let models = "  - name: m\n    targets: [{ provider: strict, model: s }]\n    content_policy_fallbacks: [other]\n\
                  \x20 - name: plain\n    targets: [{ provider: strict, model: s }]\n  - name: other\n    targets: [{ provider: lenient, model: o }]\n";
    let (gw, _) = gateway(&config(&(provider("strict", &strict) + &provider("lenient", &lenient)), models));
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(header(&resp, "x-switchyard-provider"), "lenient");
    let resp = chat(&gw, "plain", json!({})).await;
    assert_eq!(resp.status(), 400, "without content fallbacks the refusal is the client's answer");
}

#[tokio::test]
async fn several_keys_rotate_and_a_refused_key_is_retired() {
    let up = mock(&["--deny-key", "sk-revoked-key-1"]);
    let providers = format!(
        "  p: {{ type: openai-compatible, base_url: \"{}/v1\", api_keys: [sk-revoked-key-1, sk-good-key-2] }}\n",
        up.url
    );
    let (gw, _) = gateway(&config(&providers, "  - name: m\n    targets: [{ provider: p, model: x }]\n"));
    for _ in 0..6 {
        assert_eq!(chat(&gw, "m", json!({})).await.status(), 200);
    }
    let keys = &mock_stats(&up).await["keys"];
    assert_eq!(keys["sk-revoked-key-1"], 1, "used once, then retired: {keys}");
    assert_eq!(keys["sk-good-key-2"], 6);
}

#[tokio::test]
async fn a_provider_refusing_the_gateway_key_is_not_shown_as_the_clients_auth_error() {
    let up = mock(&["--deny-key", "sk-gateway-provider-key"]);
    let providers =
        format!("  p: {{ type: openai-compatible, base_url: \"{}/v1\", api_key: sk-gateway-provider-key }}\n", up.url);
    let (gw, _) = gateway(&config(&providers, "  - name: m\n    targets: [{ provider: p, model: x }]\n"));
    let resp = chat(&gw, "m", json!({})).await;
    assert_eq!(resp.status(), 502, "not 401: the client's key is fine");
    let text = resp.text().await.unwrap_or_default();
    assert!(text.contains("upstream_auth_error"), "{text}");
    assert!(!text.contains("sk-gateway-provider-key"), "{text}");
}

async fn admin_target(gw: &Proc, model: &str, index: usize) -> Value {
    let v = json(
        client()
            .get(format!("{}/admin/targets", gw.url))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    v["models"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == model)
        .map(|m| m["targets"][index].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn admin_shows_health_and_drains_targets() {
    let up = mock(&[]);
    let models = "  - name: m\n    routing: round-robin\n    targets: [{ provider: p, model: t0 }, { provider: p, model: t1 }]\n";
    let cfg = config(&provider("p", &up), models) + "keys:\n  - { name: app, key: sk-app-key-123 }\n";
    let (gw, _) = gateway(&cfg);
    for _ in 0..4 {
        chat(&gw, "m", json!({})).await;
    }
    let t0 = admin_target(&gw, "m", 0).await;
    assert_eq!((t0["breaker"].as_str(), t0["requests"].as_u64()), (Some("closed"), Some(2)));
    assert!(t0["ewma_ttft_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    let resp = client()
        .get(format!("{}/admin/targets", gw.url))
        .bearer_auth("sk-app-key-123")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 403, "the admin API needs the master key");

    let drain = |action: &'static str| {
        let url = format!("{}/admin/models/m/targets/0/{action}", gw.url);
        async move { client().post(url).bearer_auth(MASTER).send().await.unwrap_or_else(|e| panic!("{e}")) }
    };
    assert_eq!(json(drain("drain").await).await["drained"], true);
    for _ in 0..4 {
        assert_eq!(header(&chat(&gw, "m", json!({})).await, "x-switchyard-model"), "t1");
    }
    drain("undrain").await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        seen.insert(header(&chat(&gw, "m", json!({})).await, "x-switchyard-model"));
    }
    assert_eq!(seen.len(), 2);
    let resp = client()
        .post(format!("{}/admin/models/m/targets/9/drain", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn sticky_routing_keeps_a_user_on_one_target() {
    let up = mock(&[]);
    let models = "  - name: m\n    sticky: user\n    targets: [{ provider: p, model: t0 }, { provider: p, model: t1 }, { provider: p, model: t2 }]\n";
    let (gw, _) = gateway(&config(&provider("p", &up), models));
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut per_user = BTreeMap::new();
    for u in 0..12 {
        for _ in 0..4 {
            let resp = client()
                .post(&url)
                .bearer_auth(MASTER)
                .header("x-switchyard-user", format!("user-{u}"))
                .json(&json!({"model": "m", "messages": user("hi")}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            per_user
                .entry(u)
                .or_insert_with(std::collections::BTreeSet::new)
                .insert(header(&resp, "x-switchyard-model"));
        }
    }
    assert!(per_user.values().all(|s| s.len() == 1), "a user moved: {per_user:?}");
    let used: std::collections::BTreeSet<_> = per_user.values().flatten().collect();
    assert!(used.len() >= 2, "users spread over targets: {used:?}");
}

#[tokio::test]
async fn cost_routing_prefers_the_cheapest_target() {
    let up = mock(&[]);
    let models = "  - name: m\n    routing: cost\n    targets:\n      - { provider: p, model: dear, price: { input_per_mtok: 3, output_per_mtok: 15 } }\n      - { provider: p, model: cheap, price: { input_per_mtok: 0.1, output_per_mtok: 0.4 } }\n";
    let (gw, _) = gateway(&config(&provider("p", &up), models));
    for _ in 0..5 {
        assert_eq!(header(&chat(&gw, "m", json!({})).await, "x-switchyard-model"), "cheap");
    }
}

#[tokio::test]
async fn active_health_checks_open_the_breaker_without_client_traffic() {
    let down = mock(&["--status", "503"]);
    let providers = format!(
        "  p: {{ type: openai-compatible, base_url: \"{}/v1\", health_check: {{ interval_secs: 0.1 }} }}\n",
        down.url
    );
    let (gw, _) = gateway(&config(&providers, "  - name: m\n    targets: [{ provider: p, model: x }]\n"));
    let waited = Instant::now();
    while admin_target(&gw, "m", 0).await["breaker"] != "open" {
        assert!(waited.elapsed() < Duration::from_secs(5), "probes did not open the breaker");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(requests(&down).await, 0, "no chat request was needed");
}
