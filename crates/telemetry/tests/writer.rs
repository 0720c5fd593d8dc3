//! The record writer against the real Postgres on 127.0.0.1:5432, reached through a proxy the
//! test can cut: an outage must cost no record, and a shutdown must end by its deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_store::Store;
use switchyard_telemetry::{Metrics, start_writer};
use switchyard_types::{CaptureMode, RequestRecord};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A TCP proxy to Postgres that can be cut (open connections dropped, new ones refused) and
/// restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn record(i: usize) -> RequestRecord {
    RequestRecord {
        id: format!("w-{i:05}"),
        trace_id: format!("{:032x}", i + 1),
        span_id: format!("{:016x}", i + 1),
        received_at_us: 1_700_000_000_000_000 + i as i64,
        surface: "openai".into(),
        operation: "chat".into(),
        status: 200,
        capture: CaptureMode::Metadata,
        ..Default::default()
    }
}

async fn wait_for(store: &Store, n: u64, within: Duration) {
    let start = Instant::now();
    loop {
        let have = store.count_records().await.unwrap_or(0);
        if have == n {
            return;
        }
        assert!(have < n, "{have} records, more than the {n} sent");
        assert!(start.elapsed() < within, "{have} of {n} records after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(metrics: &Metrics, line_start: &str) -> f64 {
    let text = metrics.scrape(std::iter::empty());
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn a_store_outage_loses_no_record_and_shutdown_keeps_its_deadline() {
    let schema = format!("sy_writer_{}", fastrand::u64(..));
    let direct = Store::connect(POSTGRES).await.unwrap();
    let Store::Postgres(pool) = &direct else { unreachable!() };
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(pool)
        .await
        .expect("Postgres must run on 127.0.0.1:5432 for this test");
    let observer = Store::open(&format!("{POSTGRES}?options%5Bsearch_path%5D={schema}")).await.unwrap();

    let proxy = Proxy::start().await;
    let via_proxy = format!("postgres://postgres@127.0.0.1:{}/test?options%5Bsearch_path%5D={schema}", proxy.port);
    let metrics = Arc::new(Metrics::new());
    let store = Store::connect(&via_proxy).await.unwrap();
    let (sink, handle) = start_writer(Some(store), None, 1000, metrics.clone());
    let handle = handle.unwrap();

    for i in 0..20 {
        sink.send(record(i));
    }
    wait_for(&observer, 20, Duration::from_secs(10)).await;

    proxy.cut();
    for i in 20..50 {
        sink.send(record(i));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(observer.count_records().await.unwrap(), 20, "the outage is real");
    proxy.restore();
    wait_for(&observer, 50, Duration::from_secs(30)).await;
    assert!(metric(&metrics, "switchyard_record_write_errors_total") >= 1.0);
    assert_eq!(metric(&metrics, "switchyard_records_written_total"), 50.0);

    // Down again at shutdown: the writer tries until the deadline, then counts what it lost.
    proxy.cut();
    for i in 50..55 {
        sink.send(record(i));
    }
    // Bounded, not timed: a stop that ignored its deadline would hang here until the guard.
    tokio::time::timeout(Duration::from_secs(30), handle.stop(Duration::from_secs(1)))
        .await
        .expect("stop ignored its deadline");
    assert_eq!(metric(&metrics, "switchyard_records_dropped_total{reason=\"store_unavailable\"}"), 5.0);
    assert_eq!(observer.count_records().await.unwrap(), 50);

    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(pool).await.unwrap();
}

#[tokio::test]
async fn a_record_the_database_refuses_is_dropped_alone() {
    let schema = format!("sy_reject_{}", fastrand::u64(..));
    let url = format!("{POSTGRES}?options%5Bsearch_path%5D={schema}");
    let direct = Store::connect(POSTGRES).await.unwrap();
    let Store::Postgres(pool) = &direct else { unreachable!() };
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(pool).await.expect("Postgres must run");
    let observer = Store::open(&url).await.unwrap();
    // A rule the database enforces and the gateway does not know: rows breaking it are refused.
    let Store::Postgres(p) = &observer else { unreachable!() };
    sqlx::query("ALTER TABLE requests ADD CONSTRAINT no_evil CHECK (user_id IS DISTINCT FROM 'evil')")
        .execute(p)
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::new());
    let (sink, handle) = start_writer(Some(Store::connect(&url).await.unwrap()), None, 100, metrics.clone());
    for i in 0..30 {
        let mut r = record(i);
        if i == 7 {
            r.user = Some("evil".into());
        }
        sink.send(r);
    }
    wait_for(&observer, 29, Duration::from_secs(10)).await;
    handle.unwrap().stop(Duration::from_secs(5)).await;
    assert!(observer.get_record("w-00007").await.unwrap().is_none());
    assert_eq!(metric(&metrics, "switchyard_records_dropped_total{reason=\"rejected\"}"), 1.0);
    assert_eq!(metric(&metrics, "switchyard_records_written_total"), 29.0);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(pool).await.unwrap();
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let dir = std::env::temp_dir().join(format!("switchyard-writer-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("log.db").display());
    let metrics = Arc::new(Metrics::new());
    let (sink, handle) = start_writer(Some(Store::open(&url).await.unwrap()), None, 4, metrics.clone());
    // Sent faster than any write: the queue of 4 overflows, and `send` drops instead of waiting
    // (a waiting send would never drop).
    for i in 0..2000 {
        sink.send(record(i));
    }
    handle.unwrap().stop(Duration::from_secs(5)).await;
    let written = metric(&metrics, "switchyard_records_written_total");
    let dropped = metric(&metrics, "switchyard_records_dropped_total{reason=\"queue_full\"}");
    assert!(dropped > 0.0, "nothing was dropped");
    assert_eq!(written + dropped, 2000.0, "every record is either written or counted as dropped");
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.count_records().await.unwrap() as f64, written);
}
