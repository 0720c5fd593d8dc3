//! The request log against real databases: a SQLite file, and the Postgres on 127.0.0.1:5432
//! (user `postgres`, database `test`), in a schema of its own per test. A missing Postgres
//! fails these tests; it never skips them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use switchyard_store::{Bucket, LogQuery, StatusFilter, Store, UsageQuery, time};
use switchyard_types::{AttemptEntry, CaptureMode, Cost, RequestRecord, Usage};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store of each kind, each empty. The Postgres one lives in a fresh schema, dropped by the
/// guard.
async fn stores() -> Vec<(Store, Option<String>)> {
    let dir = std::env::temp_dir().join(format!("switchyard-store-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = Store::open(&format!("sqlite://{}", dir.join("log.db").display())).await.unwrap();
    let schema = format!("sy_test_{}", fastrand::u64(..));
    let admin = Store::open(POSTGRES).await.expect("Postgres must run on 127.0.0.1:5432 for these tests");
    if let Store::Postgres(p) = &admin {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(p).await.unwrap();
    }
    let pg = Store::open(&format!("{POSTGRES}?options%5Bsearch_path%5D={schema}")).await.unwrap();
    vec![(sqlite, None), (pg, Some(schema))]
}

async fn drop_schema(schema: Option<String>) {
    if let Some(schema) = schema {
        let admin = Store::open(POSTGRES).await.unwrap();
        if let Store::Postgres(p) = &admin {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(p).await.unwrap();
        }
    }
}

fn record(i: i64) -> RequestRecord {
    let failed = i % 5 == 4;
    RequestRecord {
        id: format!("req-{i:04}"),
        trace_id: format!("{:032x}", i + 1),
        span_id: format!("{:016x}", i + 1),
        received_at_us: time::parse_us("2026-11-24T10:00:00Z").unwrap() + i * 60_000_000,
        duration_us: 1000 * (i + 1),
        first_token_us: (i % 2 == 0).then_some(500 * (i + 1)),
        key: Some(if i % 2 == 0 { "web" } else { "batch" }.into()),
        team: Some("research".into()),
        user: Some(format!("user-{}", i % 3)),
        session: Some("s-1".into()),
        tags: if i % 3 == 0 { vec!["beta".into(), "eu".into()] } else { vec!["eu".into()] },
        metadata: BTreeMap::from([("app".to_string(), format!("app-{}", i % 2))]),
        surface: "openai".into(),
        operation: "chat".into(),
        requested_model: Some("smart".into()),
        provider: Some(if failed { "backup" } else { "main" }.into()),
        upstream_model: Some("gpt-x".into()),
        stream: i % 2 == 0,
        status: if failed { 502 } else { 200 },
        attempts: vec![AttemptEntry {
            model: "smart".into(),
            provider: "main".into(),
            target_model: "gpt-x".into(),
            outcome: "answered".into(),
            reason: None,
            start_us: 10,
            duration_us: 900,
        }],
        usage: Some(Usage { input_tokens: 10, output_tokens: 5, cache_read_tokens: 2, ..Default::default() }),
        cost: Some(Cost { input: 0.001, output: 0.002, total: 0.003, ..Default::default() }),
        capture: CaptureMode::Full,
        request_body: Some(format!("{{\"q\":\"Question number {i}\"}}")),
        response_body: Some("The Answer".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn records_round_trip_and_rewrites_are_ignored() {
    for (store, schema) in stores().await {
        let records: Vec<_> = (0..10).map(record).collect();
        store.insert_records(&records).await.unwrap();
        // A retried batch (the first write's answer lost) must not double anything.
        store.insert_records(&records[..3]).await.unwrap();
        assert_eq!(store.count_records().await.unwrap(), 10, "{}", store.backend());
        let got = store.get_record("req-0003").await.unwrap().unwrap();
        assert_eq!(got, records[3], "{}: every field survives", store.backend());
        assert!(store.get_record("nope").await.unwrap().is_none());
        drop_schema(schema).await;
    }
}

#[tokio::test]
async fn filters_and_cursor_pages() {
    for (store, schema) in stores().await {
        let b = store.backend();
        store.insert_records(&(0..20).map(record).collect::<Vec<_>>()).await.unwrap();
        let ids = |q: LogQuery| {
            let store = store.clone();
            async move { store.query_records(&q).await.unwrap().records.into_iter().map(|r| r.id).collect::<Vec<_>>() }
        };
        let all = LogQuery { limit: 100, ..Default::default() };
        let got = ids(all.clone()).await;
        assert_eq!(got.len(), 20);
        assert_eq!(got[0], "req-0019", "{b}: newest first");
        assert_eq!(ids(LogQuery { key: Some("web".into()), ..all.clone() }).await.len(), 10);
        assert_eq!(ids(LogQuery { status: Some(StatusFilter::Class(5)), ..all.clone() }).await.len(), 4);
        assert_eq!(ids(LogQuery { status: Some(StatusFilter::Exact(200)), ..all.clone() }).await.len(), 16);
        assert_eq!(ids(LogQuery { provider: Some("backup".into()), ..all.clone() }).await.len(), 4);
        assert_eq!(ids(LogQuery { tags: vec!["beta".into()], ..all.clone() }).await.len(), 7, "{b}: tag");
        assert_eq!(ids(LogQuery { tags: vec!["beta".into(), "eu".into()], ..all.clone() }).await.len(), 7);
        assert_eq!(ids(LogQuery { tags: vec!["nope".into()], ..all.clone() }).await.len(), 0);
        let meta = LogQuery { metadata: vec![("app".into(), "app-1".into())], ..all.clone() };
        assert_eq!(ids(meta).await.len(), 10, "{b}: metadata");
        assert_eq!(ids(LogQuery { text: Some("question NUMBER 7".into()), ..all.clone() }).await, ["req-0007"]);
        assert_eq!(ids(LogQuery { text: Some("the answer".into()), ..all.clone() }).await.len(), 20);
        let from = time::parse_us("2026-11-24T10:05:00Z");
        let to = time::parse_us("2026-11-24T10:08:00Z");
        let range = ids(LogQuery { from_us: from, to_us: to, ..all.clone() }).await;
        assert_eq!(range, ["req-0007", "req-0006", "req-0005"], "{b}: from inclusive, to exclusive");

        // Pages of 6 walk every record once, in order.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.query_records(&LogQuery { limit: 6, cursor, ..Default::default() }).await.unwrap();
            assert!(page.records.iter().all(|r| r.request_body.is_none()), "lists leave bodies out");
            seen.extend(page.records.into_iter().map(|r| r.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let expected: Vec<_> = (0..20).rev().map(|i| format!("req-{i:04}")).collect();
        assert_eq!(seen, expected, "{b}");
        assert!(store.query_records(&LogQuery { cursor: Some("garbage".into()), ..all }).await.is_err());
        drop_schema(schema).await;
    }
}

#[tokio::test]
async fn usage_aggregates_by_bucket_and_dimension() {
    for (store, schema) in stores().await {
        let b = store.backend();
        store.insert_records(&(0..20).map(record).collect::<Vec<_>>()).await.unwrap();
        let q = UsageQuery { bucket: Some(Bucket::Hour), group_by: vec!["key".into()], ..Default::default() };
        let rows = store.usage(&q).await.unwrap();
        assert_eq!(rows.len(), 2, "{b}: one hour, two keys");
        let web = rows.iter().find(|r| r.group["key"].as_deref() == Some("web")).unwrap();
        assert_eq!(web.bucket.as_deref(), Some("2026-11-24T10:00:00.000000Z"));
        assert_eq!((web.requests, web.input_tokens, web.output_tokens, web.cache_read_tokens), (10, 100, 50, 20));
        assert!((web.cost_usd - 0.03).abs() < 1e-9);
        // Keys 'web' are the even records: 4 and 14 are failures? No: failures are i % 5 == 4,
        // so 4 and 14 are web, 9 and 19 batch.
        assert_eq!(web.errors, 2);
        assert!((web.error_rate - 0.2).abs() < 1e-9);
        // Latencies of web: 1, 3, ..., 19 ms.
        assert_eq!((web.latency_ms.p50, web.latency_ms.p99), (9.0, 19.0));
        assert!(web.ttft_ms.is_some(), "even records streamed");

        let by_meta = UsageQuery { group_by: vec!["metadata.app".into(), "status".into()], ..Default::default() };
        let rows = store.usage(&by_meta).await.unwrap();
        let total: u64 = rows.iter().map(|r| r.requests).sum();
        assert_eq!(total, 20);
        assert!(rows.iter().any(|r| r.group["status"].as_deref() == Some("502")));
        let minute = UsageQuery { bucket: Some(Bucket::Minute), ..Default::default() };
        assert_eq!(store.usage(&minute).await.unwrap().len(), 20, "{b}: one record a minute");
        let bad = UsageQuery { group_by: vec!["colour".into()], ..Default::default() };
        assert!(store.usage(&bad).await.is_err());
        drop_schema(schema).await;
    }
}

#[tokio::test]
async fn retention_deletes_old_records_and_strips_old_bodies() {
    for (store, schema) in stores().await {
        store.insert_records(&(0..10).map(record).collect::<Vec<_>>()).await.unwrap();
        let t = |m: i64| time::parse_us("2026-11-24T10:00:00Z").unwrap() + m * 60_000_000;
        assert_eq!(store.strip_bodies_before(t(6)).await.unwrap(), 6);
        assert_eq!(store.strip_bodies_before(t(6)).await.unwrap(), 0, "already stripped");
        assert!(store.get_record("req-0005").await.unwrap().unwrap().request_body.is_none());
        assert!(store.get_record("req-0006").await.unwrap().unwrap().request_body.is_some());
        assert_eq!(store.delete_before(t(3)).await.unwrap(), 3);
        assert_eq!(store.count_records().await.unwrap(), 7);
        assert!(store.get_record("req-0002").await.unwrap().is_none());
        drop_schema(schema).await;
    }
}

#[tokio::test]
async fn a_bad_url_names_no_secret() {
    let e = Store::open("mysql://root:hunter2@db/x").await.unwrap_err().to_string();
    assert!(!e.contains("hunter2"), "{e}");
    let e = Store::open("postgres://u:hunter2@127.0.0.1:1/x").await.unwrap_err().to_string();
    assert!(!e.contains("hunter2"), "{e}");
}

#[tokio::test]
async fn the_cursor_breaks_ties_between_records_of_the_same_microsecond() {
    for (store, schema) in stores().await {
        let same: Vec<_> = (0..7).map(|i| RequestRecord { received_at_us: 42, ..record(i) }).collect();
        store.insert_records(&same).await.unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.query_records(&LogQuery { limit: 3, cursor, ..Default::default() }).await.unwrap();
            seen.extend(page.records.into_iter().map(|r| r.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let expected: Vec<_> = (0..7).rev().map(|i| format!("req-{i:04}")).collect();
        assert_eq!(seen, expected, "{}", store.backend());
        drop_schema(schema).await;
    }
}
