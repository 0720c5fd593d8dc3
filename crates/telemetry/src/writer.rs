//! The record writer: request records go from the request path into a bounded queue, and a
//! background task writes them to the store in batches and hands sampled ones to the trace
//! exporter.
//!
//! The request path never waits: `RecordSink::send` either queues a record or, when the queue is
//! full, drops it and counts the drop. The writer takes whatever has queued up as one batch (one
//! transaction), so batches grow with load without a timer adding latency at low load. A batch
//! that fails to write is retried with backoff while the queue absorbs new records; at shutdown
//! the queue is drained and the retries stop at the deadline, with any loss counted.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use switchyard_store::{Store, StoreError};
use switchyard_types::{CaptureMode, RequestRecord};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Metrics, OtlpExporter, TraceError};

/// The most records written in one transaction.
const MAX_BATCH: usize = 1000;

/// How long the writer waits for a batch to fill once a record has arrived. A commit costs the
/// same for one row as for hundreds, so under load this turns many small transactions into a
/// few large ones; at low load it only delays a record's arrival in the log by this much.
const LINGER: Duration = Duration::from_millis(50);

/// How often a lingering writer looks at the queue. Between looks the queue holds what a busy
/// gateway answers in this time (2,000 records at 200,000 requests/s), far under its bound.
const LINGER_TICK: Duration = Duration::from_millis(10);

/// Batches waiting for the trace exporter; a slow collector costs spans, never records.
const EXPORT_QUEUE: usize = 64;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long one write may take before it counts as failed and is retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The most body bytes waiting in the queue. Past it, records still queue but without their
/// bodies, so a store outage under `full` capture cannot grow memory without bound.
const QUEUED_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Where handlers send finished records. Cheap to clone.
#[derive(Clone)]
pub struct RecordSink {
    tx: Option<mpsc::Sender<RequestRecord>>,
    /// A store takes the records (not only the trace exporter).
    stores: bool,
    queued_body_bytes: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

fn body_bytes(r: &RequestRecord) -> usize {
    r.request_body.as_ref().map_or(0, String::len) + r.response_body.as_ref().map_or(0, String::len)
}

impl RecordSink {
    /// A sink for a gateway with neither a store nor trace export.
    pub fn off(metrics: Arc<Metrics>) -> RecordSink {
        RecordSink { tx: None, stores: false, queued_body_bytes: Arc::default(), metrics }
    }

    /// Whether records go anywhere; when not, handlers need not build them.
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Whether records are stored, so that capturing bodies is worth it.
    pub fn stores(&self) -> bool {
        self.stores
    }

    /// Queues a record, or drops and counts it if the queue is full. Never waits.
    pub fn send(&self, mut record: RequestRecord) {
        let Some(tx) = &self.tx else { return };
        let bytes = body_bytes(&record);
        if bytes > 0 && self.queued_body_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > QUEUED_BODY_BYTES {
            self.queued_body_bytes.fetch_sub(bytes, Ordering::Relaxed);
            record.request_body = None;
            record.response_body = None;
            self.metrics.record_bodies_dropped();
        }
        let bytes = body_bytes(&record);
        match tx.try_send(record) {
            Ok(()) => drop(self.metrics.record_queue().inc()),
            Err(_) => {
                self.queued_body_bytes.fetch_sub(bytes, Ordering::Relaxed);
                self.metrics.records_dropped("queue_full", 1);
            }
        }
    }
}

/// Stops the writer: see `stop`.
pub struct WriterHandle {
    stop: watch::Sender<Option<Instant>>,
    writer: JoinHandle<()>,
    exporter: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Writes every queued record, retrying a down store until `deadline`, then ends. Call it
    /// after the server has stopped taking requests and the ones in flight have finished, so
    /// every answered request's record is in the queue.
    pub async fn stop(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let _ = self.stop.send(Some(deadline));
        // The tasks watch the deadline themselves; the extra second only guards against a bug
        // there turning shutdown into a hang.
        let guard = deadline + Duration::from_secs(1);
        let _ = tokio::time::timeout_at(guard, self.writer).await;
        if let Some(exporter) = self.exporter {
            let _ = tokio::time::timeout_at(guard, exporter).await;
        }
    }
}

/// Starts the writer for the store and exporter given (either may be absent; with neither, the
/// sink is off and nothing starts).
pub fn start_writer(
    store: Option<Store>,
    exporter: Option<OtlpExporter>,
    queue: usize,
    metrics: Arc<Metrics>,
) -> (RecordSink, Option<WriterHandle>) {
    if store.is_none() && exporter.is_none() {
        return (RecordSink::off(metrics), None);
    }
    let (tx, rx) = mpsc::channel(queue.max(1));
    let (stop, stopping) = watch::channel(None);
    let (spans, exporter_task) = match exporter {
        Some(exporter) => {
            let (spans_tx, spans_rx) = mpsc::channel(EXPORT_QUEUE);
            let task = tokio::spawn(export(exporter.clone(), spans_rx, stopping.clone(), metrics.clone()));
            (Some((exporter, spans_tx)), Some(task))
        }
        None => (None, None),
    };
    let queued_body_bytes = Arc::new(AtomicUsize::new(0));
    let stores = store.is_some();
    let writer = Writer {
        store,
        migrated: false,
        spans,
        metrics: metrics.clone(),
        stopping,
        queued_body_bytes: queued_body_bytes.clone(),
    };
    let task = tokio::spawn(writer.run(rx));
    let sink = RecordSink { tx: Some(tx), stores, queued_body_bytes, metrics };
    (sink, Some(WriterHandle { stop, writer: task, exporter: exporter_task }))
}

struct Writer {
    store: Option<Store>,
    /// Postgres may be down at start; its migrations run before the first write that reaches it.
    migrated: bool,
    /// The exporter, to ask which records it samples, and its queue.
    spans: Option<(OtlpExporter, mpsc::Sender<Vec<RequestRecord>>)>,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<Option<Instant>>,
    queued_body_bytes: Arc<AtomicUsize>,
}

impl Writer {
    /// The shutdown deadline, if one was set. A handle dropped without `stop` (the gateway
    /// failed to start) means now.
    fn deadline(&self) -> Option<Instant> {
        match self.stopping.has_changed() {
            Err(_) => Some(Instant::now()),
            Ok(_) => *self.stopping.borrow(),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<RequestRecord>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            if self.deadline().is_some() {
                // Shutting down: whatever is queued, then out.
                while let Ok(r) = rx.try_recv() {
                    batch.push(r);
                    if batch.len() == MAX_BATCH {
                        self.deliver(&mut batch).await;
                    }
                }
                self.deliver(&mut batch).await;
                return;
            }
            tokio::select! {
                n = rx.recv_many(&mut batch, MAX_BATCH) => {
                    if n == 0 {
                        return;
                    }
                    self.linger(&mut rx, &mut batch).await;
                    self.deliver(&mut batch).await;
                }
                _ = self.stopping.changed() => {}
            }
        }
    }

    /// Adds what arrives within `LINGER` to the batch, up to its size; a shutdown cuts it short.
    /// The queue is looked at every `LINGER_TICK` rather than waited on, so a busy gateway wakes
    /// the writer a few times per batch instead of once per request (each wake was a context
    /// switch on the request path's cores).
    async fn linger(&mut self, rx: &mut mpsc::Receiver<RequestRecord>, batch: &mut Vec<RequestRecord>) {
        let until = Instant::now() + LINGER;
        loop {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            if batch.len() >= MAX_BATCH || now >= until {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(until.min(now + LINGER_TICK)) => {}
                _ = self.stopping.changed() => return,
            }
        }
    }

    async fn deliver(&mut self, batch: &mut Vec<RequestRecord>) {
        if batch.is_empty() {
            return;
        }
        self.metrics.record_queue().dec_by(batch.len() as i64);
        self.queued_body_bytes.fetch_sub(batch.iter().map(body_bytes).sum(), Ordering::Relaxed);
        if let Some((exporter, spans)) = &self.spans {
            // Spans carry no bodies: copy the records without them.
            let sampled: Vec<_> = batch
                .iter_mut()
                .filter(|r| exporter.wants(r))
                .map(|r| {
                    let bodies = (r.request_body.take(), r.response_body.take());
                    let copy = r.clone();
                    (r.request_body, r.response_body) = bodies;
                    copy
                })
                .collect();
            let n = sampled.len() as u64;
            if n > 0 && spans.try_send(sampled).is_err() {
                self.metrics.spans(0, n);
            }
        }
        batch.retain(|r| r.capture != CaptureMode::None);
        if !batch.is_empty() {
            self.write(batch).await;
        }
        batch.clear();
    }

    /// Writes the batch, retrying with backoff while the store is down. Only a shutdown's
    /// deadline ends the retries, cutting short an attempt in progress. Rows the database
    /// refuses for what they hold are found by writing the batch one row at a time, and dropped
    /// and counted, so one bad record can never stop the log.
    async fn write(&mut self, batch: &[RequestRecord]) {
        let Some(store) = self.store.clone() else { return };
        let mut pending = batch;
        let mut singly = false;
        let mut backoff = FIRST_BACKOFF;
        let mut failing = false;
        while !pending.is_empty() {
            let chunk = if singly { &pending[..1] } else { pending };
            let deadline = shutdown_deadline(self.stopping.clone());
            let result = tokio::select! {
                r = self.attempt(&store, chunk) => r,
                () = deadline => return self.give_up(pending.len()),
            };
            match result {
                Ok(()) => {
                    self.metrics.records_written(chunk.len() as u64);
                    pending = &pending[chunk.len()..];
                    if failing {
                        tracing::info!(backend = store.backend(), "the request log store is writable again");
                        failing = false;
                    }
                    continue;
                }
                Err(e) if e.is_rejection() && chunk.len() == 1 => {
                    tracing::warn!(error = %e, id = %chunk[0].id, "the store refused a request record; it is dropped");
                    self.metrics.records_dropped("rejected", 1);
                    pending = &pending[1..];
                    continue;
                }
                Err(e) if e.is_rejection() => {
                    singly = true;
                    continue;
                }
                Err(e) => {
                    self.metrics.record_write_error();
                    if !failing {
                        tracing::warn!(backend = store.backend(), error = %e, records = pending.len(),
                            "cannot write request records; retrying while new ones queue");
                        failing = true;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown_deadline(self.stopping.clone()) => return self.give_up(pending.len()),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One write, migrating first if that has not happened yet, bounded in time.
    async fn attempt(&mut self, store: &Store, rows: &[RequestRecord]) -> Result<(), StoreError> {
        let migrated = &mut self.migrated;
        let work = async {
            if !*migrated {
                store.migrate().await?;
                *migrated = true;
            }
            store.insert_records(rows).await
        };
        tokio::time::timeout(WRITE_TIMEOUT, work).await.unwrap_or(Err(StoreError::Timeout(WRITE_TIMEOUT)))
    }

    fn give_up(&self, records: usize) {
        tracing::error!(records, "the store stayed down past the shutdown deadline; these request records are lost");
        self.metrics.records_dropped("store_unavailable", records as u64);
    }
}

/// Resolves at the shutdown deadline, once one is set; never before.
async fn shutdown_deadline(mut stopping: watch::Receiver<Option<Instant>>) {
    loop {
        let deadline = *stopping.borrow_and_update();
        if let Some(d) = deadline {
            return tokio::time::sleep_until(d).await;
        }
        // A handle dropped without `stop`: the deadline is now.
        if stopping.changed().await.is_err() {
            return;
        }
    }
}

/// Sends sampled records to the collector, one export per batch. A failed export is counted
/// and not retried: traces are for looking at recent behaviour, and the record log keeps the
/// facts.
async fn export(
    exporter: OtlpExporter,
    mut rx: mpsc::Receiver<Vec<RequestRecord>>,
    stopping: watch::Receiver<Option<Instant>>,
    metrics: Arc<Metrics>,
) {
    let mut failing = false;
    while let Some(batch) = rx.recv().await {
        let n = batch.len() as u64;
        let deadline = *stopping.borrow();
        let sent = match deadline {
            Some(d) => tokio::time::timeout_at(d, exporter.export(&batch))
                .await
                .unwrap_or_else(|_| Err(TraceError::Timeout(d.saturating_duration_since(Instant::now())))),
            None => exporter.export(&batch).await,
        };
        match sent {
            Ok(()) => {
                metrics.spans(n, 0);
                if failing {
                    tracing::info!("trace export works again");
                    failing = false;
                }
            }
            Err(e) => {
                metrics.spans(0, n);
                if !failing {
                    tracing::warn!(error = %e, "trace export failed; spans are dropped until it works");
                    failing = true;
                }
            }
        }
    }
}
