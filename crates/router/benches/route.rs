//! A routing decision: rules, the plan, and the order of targets.
//! `cargo bench -p switchyard-router`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use switchyard_providers::{Provider, ProviderSpec, ProviderType};
use switchyard_router::{Caller, Catalogue, Demand, ModelRoute, RequestView, Rule, Strategy, Target, apply_rules};

fn catalogue() -> Catalogue {
    let spec = ProviderSpec::of(ProviderType::Ollama);
    let mut providers = std::collections::HashMap::new();
    let mut targets = Vec::new();
    for name in ["a", "b", "c"] {
        let p = Arc::new(Provider::new(name, &spec).unwrap_or_else(|e| panic!("{e}")));
        providers.insert(name.to_string(), p.clone());
        let t = Target::new(p, "m");
        for ms in [20, 25, 30] {
            t.stats.record_ttft(Duration::from_millis(ms));
        }
        targets.push(Arc::new(t));
    }
    let mut route = ModelRoute::new("smart", targets);
    route.strategy = Strategy::Latency;
    route.fallbacks = vec!["cheap".into()];
    let cheap = ModelRoute::new("cheap", vec![Arc::new(Target::new(providers["a"].clone(), "small"))]);
    let mut c = Catalogue::new(providers, None);
    c.add(route);
    c.add(cheap);
    c
}

fn route(c: &mut Criterion) {
    let catalogue = catalogue();
    let headers = http::HeaderMap::new();
    let caller = Caller { key: "app", user: Some("u1"), session: None, headers: &headers };
    let demand = Demand { input_tokens: 300, max_tokens: Some(256) };
    c.bench_function("plan_and_order", |b| {
        b.iter(|| {
            let plan = catalogue.plan(black_box("smart"), &[], demand, &caller).ok();
            plan.map(|p| p.legs.iter().map(|l| l.route.order(&l.facts).len()).sum::<usize>())
        })
    });
    let rules = vec![
        Rule::compile("big", Some(&json!({"param.max_tokens": {"gt": 4000}})), Some("cheap"), None),
        Rule::compile(
            "team",
            Some(&json!({"any": [{"header.x-team": {"eq": "lab"}}, {"user": {"regex": "^bot-"}}]})),
            Some("cheap"),
            None,
        ),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect::<Vec<_>>();
    let params = json!({"max_tokens": 256, "messages": []}).as_object().cloned().unwrap_or_default();
    let tags: Vec<String> = Vec::new();
    c.bench_function("rules_no_match", |b| {
        b.iter(|| {
            let view = RequestView {
                model: "smart",
                key: "app",
                user: Some("u1"),
                session: None,
                tags: &tags,
                headers: &headers,
                params: &params,
                prompt_tokens: 300,
            };
            apply_rules(black_box(&rules), &view).is_some()
        })
    });
}

criterion_group!(benches, route);
criterion_main!(benches);
