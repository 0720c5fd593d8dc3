//! A key's rate limits through the real binary: requests per minute, tokens per minute and
//! concurrent requests, with OpenAI's `x-ratelimit-*` headers and 429s in its error shape.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn limited(up: &Proc, limits: &str) -> String {
    simple_config(up, &format!("keys:\n  - {{ name: app, key: sk-app-limited, limits: {limits} }}\n"))
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

#[tokio::test]
async fn requests_per_minute_count_down_then_refuse_with_retry_after() {
    let up = mock(&[]);
    let (gw, _) = gateway(&limited(&up, "{ rpm: 3 }"));
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = json!({"model": "chat", "messages": user("hi")});
    for left in [2, 1, 0] {
        let resp = post(&url, Some("sk-app-limited"), &body).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-ratelimit-limit-requests").as_deref(), Some("3"));
        assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), Some(left.to_string()));
        assert!(header(&resp, "x-ratelimit-reset-requests").is_some_and(|r| r.ends_with('s')));
    }
    let resp = post(&url, Some("sk-app-limited"), &body).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = header(&resp, "retry-after").and_then(|s| s.parse().ok()).unwrap_or(0);
    assert!((1..=120).contains(&wait), "retry-after {wait}");
    let err = json(resp).await;
    assert_eq!(err["error"]["type"], "rate_limit_error", "{err}");
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    assert!(!err.to_string().contains("sk-app-limited"), "the key itself is never echoed");
    // Other keys have their own counts.
    assert_eq!(post(&url, Some(MASTER), &body).await.status(), 200);
    assert_eq!(requests_to(&up).await, 4, "the refused request never reached the provider");
    let text = metrics(&gw).await;
    assert!(text.contains("switchyard_limit_rejections_total{code=\"rate_limit_exceeded\"} 1"), "{text}");
}

async fn requests_to(up: &Proc) -> u64 {
    mock_stats(up).await["requests"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn tokens_per_minute_count_the_estimate_and_refuse_what_can_never_fit() {
    let up = mock(&[]);
    let (gw, _) = gateway(&limited(&up, "{ tpm: 1000 }"));
    let url = format!("{}/v1/chat/completions", gw.url);
    // max_tokens counts at admission: 900 + the prompt leave too little for a second one…
    let big = json!({"model": "chat", "max_tokens": 900, "messages": user("hi")});
    let resp = post(&url, Some("sk-app-limited"), &big).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-limit-tokens").as_deref(), Some("1000"));
    let _ = resp.text().await;
    // …but the answer used far fewer tokens, and the count is corrected to that.
    let resp = post(&url, Some("sk-app-limited"), &big).await;
    assert_eq!(resp.status(), 200, "settled to the real usage, the first no longer holds 900");
    let huge = json!({"model": "chat", "max_tokens": 5000, "messages": user("hi")});
    let resp = post(&url, Some("sk-app-limited"), &huge).await;
    assert_eq!(resp.status(), 429);
    assert!(header(&resp, "retry-after").is_none(), "waiting cannot help");
    assert_eq!(json(resp).await["error"]["code"], "tokens_exceed_limit");
}

#[tokio::test]
async fn concurrency_counts_streams_until_they_end() {
    let up = mock(&["--words", "40", "--chunk-delay-ms", "20"]);
    let (gw, _) = gateway(&limited(&up, "{ concurrency: 1 }"));
    let url = format!("{}/v1/chat/completions", gw.url);
    let stream = json!({"model": "chat", "stream": true, "messages": user("long")});
    let first = post(&url, Some("sk-app-limited"), &stream).await;
    assert_eq!(first.status(), 200);
    // While the first stream runs, a second request is refused.
    let second = post(&url, Some("sk-app-limited"), &json!({"model": "chat", "messages": user("hi")})).await;
    assert_eq!(second.status(), 429);
    assert_eq!(json(second).await["error"]["code"], "concurrency_limit_exceeded");
    let frames = sse_data(first).await;
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    // The slot is free once the stream has ended (the release follows the last byte closely).
    let mut status = 0;
    for _ in 0..50 {
        status = post(&url, Some("sk-app-limited"), &json!({"model": "chat", "messages": user("hi")}))
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_zero_limit_is_a_config_error() {
    let up = mock(&[]);
    let path = temp_dir().join("switchyard.yaml");
    std::fs::write(&path, limited(&up, "{ rpm: 0 }")).unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(bin())
        .args(["config", "check", &path.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a limit of 0"));
}

#[tokio::test]
async fn team_user_model_and_key_model_limits_each_hold() {
    let up = mock(&[]);
    let cfg = simple_config(
        &up,
        r"  - name: capped
    targets: [{ provider: up, model: mock-large }]
    limits: { rpm: 2 }
teams:
  - { name: research, limits: { rpm: 3 } }
keys:
  - { name: a, key: sk-team-a-key, team: research, user_limits: { rpm: 1 } }
  - { name: b, key: sk-team-b-key, team: research, model_limits: { embed: { rpm: 1 } } }
  - { name: c, key: sk-loner-c-key }
",
    );
    let (gw, _) = gateway(&cfg);
    let url = format!("{}/v1/chat/completions", gw.url);
    let chat = |user: &str| json!({"model": "chat", "user": user, "messages": user_msg()});
    let status = |resp: reqwest::Response| resp.status().as_u16();
    // Per end user of key a: one request a minute each.
    assert_eq!(status(post(&url, Some("sk-team-a-key"), &chat("ann")).await), 200);
    let second = post(&url, Some("sk-team-a-key"), &chat("ann")).await;
    assert_eq!(second.status(), 429);
    assert!(json(second).await["error"]["message"].as_str().is_some_and(|m| m.contains("the user 'ann'")));
    assert_eq!(status(post(&url, Some("sk-team-a-key"), &chat("bob")).await), 200, "another user");
    // The team's 3 a minute are now used by key a (the refused request did not count) … and b.
    assert_eq!(status(post(&url, Some("sk-team-b-key"), &chat("x")).await), 200);
    let team = post(&url, Some("sk-team-b-key"), &chat("x")).await;
    assert_eq!(team.status(), 429);
    assert!(json(team).await["error"]["message"].as_str().is_some_and(|m| m.contains("the team 'research'")));
    // A model's own limit holds over every key.
    let capped = json!({"model": "capped", "messages": user_msg()});
    assert_eq!(status(post(&url, Some("sk-loner-c-key"), &capped).await), 200);
    assert_eq!(status(post(&url, Some(MASTER), &capped).await), 200);
    let over = post(&url, Some("sk-loner-c-key"), &capped).await;
    assert_eq!(over.status(), 429);
    assert!(json(over).await["error"]["message"].as_str().is_some_and(|m| m.contains("the model 'capped'")));
}

#[tokio::test]
async fn a_key_model_limit_applies_to_that_model_only() {
    let up = mock(&[]);
    let cfg = simple_config(&up, "keys:\n  - { name: b, key: sk-key-b-0001, model_limits: { embed: { rpm: 1 } } }\n");
    let (gw, _) = gateway(&cfg);
    let embed = json!({"model": "embed", "input": "hi"});
    let url = format!("{}/v1/embeddings", gw.url);
    assert_eq!(post(&url, Some("sk-key-b-0001"), &embed).await.status(), 200);
    let over = post(&url, Some("sk-key-b-0001"), &embed).await;
    assert_eq!(over.status(), 429);
    assert!(json(over).await["error"]["message"].as_str().is_some_and(|m| m.contains("on the model 'embed'")));
    let chat = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..3 {
        let body = json!({"model": "chat", "messages": user_msg()});
        assert_eq!(post(&chat, Some("sk-key-b-0001"), &body).await.status(), 200);
    }
}

fn user_msg() -> serde_json::Value {
    user("hi")
}

// ---------------------------------------------------------------------------------------------
// Shared mode: several instances, one Redis (127.0.0.1:6379, which must be running)
// ---------------------------------------------------------------------------------------------

/// A key name no other test (or earlier run) shares, since its counts live in Redis.
fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), fastrand::u32(..))
}

fn shared(up: &Proc, redis: &str, key: &str, limits: &str, extra: &str) -> String {
    simple_config(up, &format!("keys:\n  - {{ name: {key}, key: sk-{key}, limits: {limits} }}\n")).replacen(
        "providers:\n",
        &format!("redis: \"{redis}\"\n{extra}providers:\n"),
        1,
    )
}

async fn ready(gw: &Proc) -> serde_json::Value {
    json(client().get(format!("{}/health/ready", gw.url)).send().await.unwrap_or_else(|e| panic!("{e}"))).await
}

#[tokio::test]
async fn three_instances_share_one_requests_per_minute_limit() {
    let up = mock(&[]);
    let key = unique("shared-rpm");
    let cfg = shared(&up, "redis://127.0.0.1:6379", &key, "{ rpm: 30 }", "");
    let gateways: Vec<Proc> = (0..3).map(|_| gateway(&cfg).0).collect();
    for gw in &gateways {
        assert_eq!(ready(gw).await["limits"], "shared", "Redis must run on 127.0.0.1:6379 for this test");
    }
    let mut calls = Vec::new();
    for i in 0..90 {
        let url = format!("{}/v1/chat/completions", gateways[i % 3].url);
        let secret = format!("sk-{key}");
        calls.push(tokio::spawn(async move {
            post(&url, Some(&secret), &json!({"model": "chat", "messages": user("hi")})).await.status().as_u16()
        }));
    }
    let mut ok = 0;
    for c in calls {
        match c.await.unwrap_or(0) {
            200 => ok += 1,
            429 => {}
            other => panic!("status {other}"),
        }
    }
    // One global limit, not 30 per instance (which would let all 90 through).
    assert!((27..=33).contains(&ok), "{ok} of 90 passed a shared limit of 30");
}

#[tokio::test]
async fn shared_limits_answer_with_request_and_token_headers() {
    let up = mock(&[]);
    let key = unique("shared-headers");
    let (gw, _) = gateway(&shared(&up, "redis://127.0.0.1:6379", &key, "{ rpm: 100, tpm: 100000 }", ""));
    assert_eq!(ready(&gw).await["limits"], "shared");
    let body = json!({"model": "chat", "messages": user("hi"), "max_tokens": 10});
    let resp = post(&format!("{}/v1/chat/completions", gw.url), Some(&format!("sk-{key}")), &body).await;
    assert_eq!(resp.status(), 200);
    let h = |n: &str| header(&resp, n).and_then(|v| v.parse::<u64>().ok());
    assert_eq!(h("x-ratelimit-limit-requests"), Some(100));
    assert_eq!(h("x-ratelimit-remaining-requests"), Some(99));
    assert_eq!(h("x-ratelimit-limit-tokens"), Some(100_000));
    // The estimate (4 for the prompt, 10 for max_tokens) is counted at admission.
    assert_eq!(h("x-ratelimit-remaining-tokens"), Some(100_000 - 14));
}

#[tokio::test]
async fn concurrency_is_shared_and_slots_come_back() {
    let up = mock(&["--words", "30", "--chunk-delay-ms", "20"]);
    let key = unique("shared-conc");
    let cfg = shared(&up, "redis://127.0.0.1:6379", &key, "{ concurrency: 2 }", "");
    let (a, _) = gateway(&cfg);
    let (b, _) = gateway(&cfg);
    let secret = format!("sk-{key}");
    let stream = json!({"model": "chat", "stream": true, "messages": user("long")});
    let s1 = post(&format!("{}/v1/chat/completions", a.url), Some(&secret), &stream).await;
    let s2 = post(&format!("{}/v1/chat/completions", b.url), Some(&secret), &stream).await;
    assert_eq!((s1.status().as_u16(), s2.status().as_u16()), (200, 200));
    let third = post(
        &format!("{}/v1/chat/completions", a.url),
        Some(&secret),
        &json!({"model": "chat", "messages": user("x")}),
    )
    .await;
    assert_eq!(third.status(), 429, "two streams hold both slots, across instances");
    let _ = (sse_data(s1).await, sse_data(s2).await);
    let mut status = 0;
    for _ in 0..50 {
        let r = post(
            &format!("{}/v1/chat/completions", b.url),
            Some(&secret),
            &json!({"model": "chat", "messages": user("x")}),
        )
        .await;
        status = r.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "the slots were released when the streams ended");
}

#[tokio::test]
async fn without_redis_limits_fall_back_per_instance_or_reject() {
    let up = mock(&[]);
    // Nothing listens on port 1: every Redis call fails at once.
    let key = unique("no-redis");
    let (gw, _) = gateway(&shared(&up, "redis://127.0.0.1:1", &key, "{ rpm: 2 }", ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = json!({"model": "chat", "messages": user("hi")});
    let secret = format!("sk-{key}");
    let statuses: Vec<u16> = futures_util::future::join_all(
        (0..3).map(|_| async { post(&url, Some(&secret), &body).await.status().as_u16() }),
    )
    .await;
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 200, 429], "the local limit holds while Redis is away");
    let health = ready(&gw).await;
    assert_eq!((health["status"].as_str(), health["limits"].as_str()), (Some("degraded"), Some("redis-unreachable")));
    // Requests without limits are not affected at all.
    assert_eq!(post(&url, Some(MASTER), &body).await.status(), 200);

    let key = unique("no-redis-strict");
    let (strict, _) = gateway(&shared(&up, "redis://127.0.0.1:1", &key, "{ rpm: 2 }", "redis_outage: reject\n"));
    let resp = post(&format!("{}/v1/chat/completions", strict.url), Some(&format!("sk-{key}")), &body).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(json(resp).await["error"]["code"], "limits_unavailable");
}

#[tokio::test]
async fn limits_are_shared_again_once_redis_returns() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let up = mock(&[]);
    let reachable = std::sync::Arc::new(AtomicBool::new(true));
    let port = tcp_proxy(6379, reachable.clone()).await;
    let key = unique("recovers");
    let (gw, _) = gateway(&shared(&up, &format!("redis://127.0.0.1:{port}"), &key, "{ rpm: 1000 }", ""));
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = json!({"model": "chat", "messages": user("hi")});
    let secret = format!("sk-{key}");
    assert_eq!(post(&url, Some(&secret), &body).await.status(), 200);
    assert_eq!(ready(&gw).await["limits"], "shared");
    reachable.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(post(&url, Some(&secret), &body).await.status(), 200, "served through the outage");
    assert_eq!(ready(&gw).await["limits"], "redis-unreachable");
    reachable.store(true, Ordering::SeqCst);
    // After its pause (5 s) the gateway asks Redis again, and the next request finds it.
    let mut shared_again = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(post(&url, Some(&secret), &body).await.status(), 200);
        if ready(&gw).await["limits"] == "shared" {
            shared_again = true;
            break;
        }
    }
    assert!(shared_again, "the gateway did not go back to Redis");
}
