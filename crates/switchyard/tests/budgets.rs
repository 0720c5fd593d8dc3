//! Dollar budgets end to end: the real binary against the mock, with SQLite, the real Postgres
//! (127.0.0.1:5432) and the real Redis (127.0.0.1:6379), which must be running: these tests
//! fail without them, they never skip.
//!
//! Prices make the arithmetic plain: the target costs $1,000 per million tokens in and out, so
//! one token is $0.001. The mock answers `max_tokens` words and counts the prompt's words, so
//! a request of "hi" with `max_tokens: 9` costs 10 tokens, $0.010; the gateway reserves its
//! worst case, its prompt estimate (4 tokens) plus 9, $0.013.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use switchyard_store::Store;

const COST: f64 = 0.010;

fn config(up: &Proc, top: &str, keys: &str) -> String {
    format!(
        "server:\n  master_key: {MASTER}\n{top}providers:\n  up: {{ type: openai-compatible, base_url: \"{}/v1\" }}\n\
         models:\n  - name: chat\n    targets: [{{ provider: up, model: mock-large, price: {{ input_per_mtok: 1000, output_per_mtok: 1000 }} }}]\n\
         {keys}",
        up.url
    )
}

fn ask(stream: bool) -> Value {
    json!({"model": "chat", "messages": user("hi"), "max_tokens": 9, "stream": stream,
           "stream_options": {"include_usage": true}})
}

/// Sends one request; returns its status and, when answered, its cost (from the header, or the
/// stream's usage chunk).
async fn spend(gw: &str, key: &str, stream: bool) -> (u16, f64, Value) {
    let body = if stream { ask(true) } else { json!({"model": "chat", "messages": user("hi"), "max_tokens": 9}) };
    let resp = post(&format!("{gw}/v1/chat/completions"), Some(key), &body).await;
    let status = resp.status().as_u16();
    if status != 200 {
        return (status, 0.0, json(resp).await);
    }
    if !stream {
        let cost = resp.headers().get("x-switchyard-cost-usd").and_then(|v| v.to_str().ok()?.parse().ok());
        return (status, cost.unwrap_or_else(|| panic!("no cost header")), Value::Null);
    }
    let cost = sse_data(resp)
        .await
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|c| c["usage"]["cost"].as_f64())
        .unwrap_or_else(|| panic!("no cost in the stream's usage chunk"));
    (status, cost, Value::Null)
}

async fn budgets(gw: &Proc) -> Vec<Value> {
    let resp = client().get(format!("{}/admin/budgets", gw.url)).bearer_auth(MASTER).send().await;
    json(resp.unwrap_or_else(|e| panic!("{e}"))).await["data"].as_array().cloned().unwrap_or_default()
}

async fn spent(gw: &Proc, owner: &str, name: &str) -> f64 {
    let all = budgets(gw).await;
    let b = all.iter().find(|b| b["owner"] == owner && b["name"] == name);
    b.and_then(|b| b["spent_usd"].as_f64()).unwrap_or_else(|| panic!("no budget {owner} {name} in {all:?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// An HTTP receiver of the test's own for budget alerts.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                let mut alert = body.0;
                alert["auth"] = json!(headers.get("authorization").and_then(|v| v.to_str().ok()));
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(alert);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{}/hook", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn a_key_budget_refuses_with_402_once_spent_and_alerts_the_webhook() {
    let up = mock(&[]);
    let (hook, alerts) = webhook().await;
    let top = format!("budgets: {{ webhook: \"{hook}\", webhook_headers: {{ authorization: Bearer hook-secret }} }}\n");
    let keys =
        "keys:\n  - { name: web, key: sk-web-budget, budget: { usd: 0.1, period: daily, alerts: [0.5, 1.0] } }\n";
    let (gw, _) = gateway(&config(&up, &top, keys));
    let mut answered = Vec::new();
    let mut refused = None;
    for _ in 0..12 {
        match spend(&gw.url, "sk-web-budget", false).await {
            (200, cost, _) => answered.push(cost),
            (402, _, body) => {
                refused = Some(body);
                break;
            }
            (status, _, body) => panic!("{status}: {body}"),
        }
    }
    // 9 × $0.010 spent; a tenth would need $0.013 of the $0.010 left.
    assert_eq!(answered.len(), 9, "{answered:?}");
    assert!(answered.iter().all(|c| close(*c, COST)), "{answered:?}");
    let err = &refused.unwrap_or_else(|| panic!("never refused"))["error"];
    assert_eq!(err["code"], "budget_exceeded");
    let msg = err["message"].as_str().unwrap_or_default();
    assert!(msg.contains("the key 'web'") && msg.contains("max_tokens") && msg.contains("resets at"), "{msg}");
    assert!(close(spent(&gw, "key", "web").await, 0.09));
    // A request that would cost nothing is still refused once the budget is used up.
    let rest = budgets(&gw).await;
    assert!(rest.iter().any(|b| close(b["remaining_usd"].as_f64().unwrap_or(-1.0), 0.01)), "{rest:?}");
    // Half the budget was crossed at the fifth request: one alert, with the configured header.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alerts.lock().map(|a| a.is_empty()).unwrap_or(true) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = alerts.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "budget.threshold");
    assert_eq!((got[0]["owner"].as_str(), got[0]["name"].as_str()), (Some("key"), Some("web")));
    assert_eq!(got[0]["threshold"], 0.5);
    assert!(close(got[0]["spent_usd"].as_f64().unwrap_or(0.0), 0.05), "{got:?}");
    assert_eq!(got[0]["auth"], "Bearer hook-secret");
    let text = metrics(&gw).await;
    assert!(text.contains("switchyard_budget_rejections_total{owner=\"key\"} 1"), "metrics: rejections");
    assert!(text.contains("switchyard_budget_alerts_total{outcome=\"sent\"} 1"), "metrics: alerts");
}

#[tokio::test]
async fn team_and_user_budgets_span_their_keys() {
    let up = mock(&[]);
    let keys = "teams:\n  - { name: research, budget: { usd: 0.05, period: monthly } }\n\
                users:\n  - { name: alice, budget: { usd: 0.03, period: 7d } }\n\
                keys:\n  - { name: a, key: sk-team-a-budget, team: research }\n\
                \x20 - { name: b, key: sk-team-b-budget, team: research }\n\
                \x20 - { name: c, key: sk-user-c-budget, user: alice }\n\
                \x20 - { name: d, key: sk-user-d-budget, user: alice }\n";
    let (gw, _) = gateway(&config(&up, "", keys));
    // The team: $0.05 over both keys; 4 fit (0.03 + 0.013 ≤ 0.05 < 0.04 + 0.013).
    let mut ok = 0;
    for i in 0..8 {
        let key = if i % 2 == 0 { "sk-team-a-budget" } else { "sk-team-b-budget" };
        match spend(&gw.url, key, false).await {
            (200, ..) => ok += 1,
            (402, _, body) => assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("team 'research'"))),
            (s, _, body) => panic!("{s} {body}"),
        }
    }
    assert_eq!(ok, 4);
    // The user: $0.03 over both of alice's keys; 2 fit. Her requests are logged as hers.
    let mut ok = 0;
    for i in 0..6 {
        let key = if i % 2 == 0 { "sk-user-c-budget" } else { "sk-user-d-budget" };
        if spend(&gw.url, key, i % 3 == 0).await.0 == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 2);
    assert!(close(spent(&gw, "user", "alice").await, 0.02));
    assert!(close(spent(&gw, "team", "research").await, 0.04));
}

#[tokio::test]
async fn spend_survives_a_restart_through_the_request_log() {
    let up = mock(&[]);
    let db = temp_dir().join("log.db");
    let top = format!("storage: \"sqlite://{}\"\n", db.display());
    let keys = "keys:\n  - { name: web, key: sk-web-restart, budget: { usd: 0.1, period: daily } }\n";
    let cfg = config(&up, &top, keys);
    let (gw, path) = gateway(&cfg);
    for _ in 0..5 {
        assert_eq!(spend(&gw.url, "sk-web-restart", false).await.0, 200);
    }
    let pid = gw.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success()));
    let mut gw = gw;
    let waited = Instant::now();
    while gw.child.try_wait().ok().flatten().is_none() {
        assert!(waited.elapsed() < Duration::from_secs(20), "the gateway did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = path.display().to_string();
    let gw = spawn(&["serve", "--config", &p, "--listen", "127.0.0.1:0"]);
    // The new process loads the day's spend from the log in the background.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !close(spent(&gw, "key", "web").await, 0.05) {
        assert!(Instant::now() < deadline, "the log's spend was not loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ok = 0;
    while spend(&gw.url, "sk-web-restart", false).await.0 == 200 {
        ok += 1;
        assert!(ok < 10, "the budget does not hold after a restart");
    }
    assert_eq!(ok, 4, "$0.05 spent before the restart, 4 × $0.010 after");
}

fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), fastrand::u32(..))
}

#[tokio::test]
async fn three_instances_hold_one_budget_under_concurrent_streams() {
    let up = mock(&["--chunk-delay-ms", "5"]);
    let key = unique("shared-budget");
    let keys = format!("keys:\n  - {{ name: {key}, key: sk-{key}, budget: {{ usd: 0.1, period: lifetime }} }}\n");
    let cfg = config(&up, "redis: \"redis://127.0.0.1:6379\"\n", &keys);
    let gateways: Arc<Vec<Proc>> = Arc::new((0..3).map(|_| gateway(&cfg).0).collect());
    let mut total = 0.0;
    let mut answered = 0;
    // Waves of 24 concurrent streams over the three instances until a wave is refused whole.
    for _ in 0..6 {
        let calls: Vec<_> = (0..24)
            .map(|i| {
                let (gws, secret) = (gateways.clone(), format!("sk-{key}"));
                tokio::spawn(async move { spend(&gws[i % 3].url, &secret, true).await })
            })
            .collect();
        let mut wave = 0;
        for c in calls {
            match c.await.unwrap_or_else(|e| panic!("{e}")) {
                (200, cost, _) => {
                    wave += 1;
                    total += cost;
                }
                (402, ..) => {}
                (s, _, body) => panic!("{s} {body}"),
            }
        }
        answered += wave;
        if wave == 0 {
            break;
        }
    }
    // Every answer's worst case was held before it ran, so the budget is never passed; and it
    // is used to within one reservation ($0.013).
    assert!(total <= 0.1 + 1e-9, "{answered} answers spent ${total:.4} of a $0.10 budget");
    assert!(total > 0.1 - 0.013, "only ${total:.4} spent: refusals came too early");
    let shown = spent(&gateways[2], "key", &key).await;
    assert!(close(shown, total), "Redis holds ${shown}, the answers cost ${total}");
}

#[tokio::test]
async fn stopping_postgres_mid_load_loses_no_spend() {
    let up = mock(&[]);
    let schema = PgSchema::new().await;
    let reachable = Arc::new(AtomicBool::new(true));
    let port = tcp_proxy(5432, reachable.clone()).await;
    let via_proxy = schema.url().replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
    // The queue holds the whole outage at any speed this machine reaches (about 1,000 requests
    // a second): past its bound records are dropped by design, which is not what this tests.
    let top = format!("storage: \"{via_proxy}\"\nlogging: {{ queue: 100000 }}\n");
    let keys = "keys:\n  - { name: load, key: sk-load-outage, budget: { usd: 1000000, period: monthly } }\n";
    let (gw, _) = gateway(&config(&up, &top, keys));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (url, stop) = (gw.url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut costs = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let (status, cost, body) = spend(&url, "sk-load-outage", i % 2 == 0).await;
                    assert_eq!(status, 200, "{body}");
                    costs.push(cost);
                }
                costs
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    reachable.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let text = metrics(&gw).await;
    let queued =
        text.lines().find_map(|l| l.strip_prefix("switchyard_record_queue ")).and_then(|v| v.parse::<f64>().ok());
    reachable.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let mut costs = Vec::new();
    for w in workers {
        costs.extend(w.await.unwrap_or_else(|e| panic!("{e}")));
    }
    assert!(queued.is_some_and(|q| q > 0.0), "records must have queued while Postgres was away ({queued:?})");
    let answered: f64 = costs.iter().sum();
    let store = Store::open(&schema.url()).await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let steps = store.spend_steps("key", "load", 0, i64::MAX, i64::MAX).await.unwrap_or_default();
        let stored: f64 = steps.iter().map(|(_, usd)| usd).sum();
        if (stored - answered).abs() < 1e-6 {
            break;
        }
        if Instant::now() > deadline {
            let dropped: Vec<String> = metrics(&gw)
                .await
                .lines()
                .filter(|l| l.starts_with("switchyard_records_dropped_total"))
                .map(str::to_string)
                .collect();
            panic!("stored ${stored:.6} of ${answered:.6} over {} requests; {dropped:?}", costs.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(costs.len() > 50, "only {} requests in 16 s", costs.len());
}
