//! The request log's write cost: records per second into a SQLite file, in the batches the
//! writer makes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use switchyard_store::Store;
use switchyard_types::{AttemptEntry, CaptureMode, Cost, RequestRecord, Usage};

fn record(i: u64) -> RequestRecord {
    RequestRecord {
        id: format!("01a20f67-d280-7729-bb96-{i:012}"),
        trace_id: format!("{:032x}", i + 1),
        span_id: format!("{:016x}", i + 1),
        received_at_us: 1_795_554_792_064_161 + i as i64,
        first_byte_us: Some(51_687),
        first_token_us: Some(51_747),
        duration_us: 278_098,
        upstream_us: Some(51_328),
        overhead_us: Some(359),
        key: Some("web-app".into()),
        team: Some("research".into()),
        user: Some("user-42".into()),
        session: Some("s-1".into()),
        tags: vec!["beta".into()],
        metadata: BTreeMap::from([("app".into(), "web".into())]),
        surface: "openai".into(),
        operation: "chat".into(),
        requested_model: Some("smart".into()),
        provider: Some("openai".into()),
        upstream_model: Some("gpt-4.1".into()),
        response_model: Some("gpt-4.1-2025-04-14".into()),
        status: 200,
        attempts: vec![AttemptEntry {
            model: "smart".into(),
            provider: "openai".into(),
            target_model: "gpt-4.1".into(),
            outcome: "answered".into(),
            reason: None,
            start_us: 362,
            duration_us: 51_257,
        }],
        finish_reasons: vec!["stop".into()],
        usage: Some(Usage { input_tokens: 1200, output_tokens: 300, ..Default::default() }),
        cost: Some(Cost { input: 0.0024, output: 0.0024, total: 0.0048, ..Default::default() }),
        capture: CaptureMode::Metadata,
        request_bytes: 1024,
        response_bytes: 2048,
        ..Default::default()
    }
}

fn insert(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = rt.block_on(Store::open(&format!("sqlite://{}", dir.join("bench.db").display()))).unwrap();
    let mut next = 0u64;
    let mut group = c.benchmark_group("request_log");
    for batch in [1u64, 50, 500] {
        group.throughput(Throughput::Elements(batch));
        group.bench_function(format!("sqlite_insert_batch_{batch}"), |b| {
            b.iter_batched(
                || {
                    let records: Vec<_> = (next..next + batch).map(record).collect();
                    next += batch;
                    records
                },
                |records| rt.block_on(store.insert_records(&records)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("record_to_json", |b| {
        let r = record(1);
        b.iter(|| serde_json::to_vec(&r).unwrap())
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, insert);
criterion_main!(benches);
