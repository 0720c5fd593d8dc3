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

use switchyard_store::Store;
use switchyard_types::{CaptureMode, RequestRecord};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Metrics, OtlpExporter};

/// The most records written in one transaction.
const MAX_BATCH: usize = 1000;

/// How long the writer waits for a batch to fill once a record has arrived. A commit costs the
/// same for one row as for hundreds, so under load this turns many small transactions into a
/// few large ones; at low load it only delays a record's arrival in the log by this much.
const LINGER: Duration = Duration::from_millis(50);

/// Batches waiting for the trace exporter; a slow collector costs spans, never records.
const EXPORT_QUEUE: usize = 64;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where handlers send finished records. Cheap to clone.
#[derive(Clone)]
pub struct RecordSink {
    tx: Option<mpsc::Sender<RequestRecord>>,
    metrics: Arc<Metrics>,
}

impl RecordSink {
    /// A sink for a gateway with neither a store nor trace export.
    pub fn off(metrics: Arc<Metrics>) -> RecordSink {
        RecordSink { tx: None, metrics }
    }

    /// Whether records go anywhere; when not, handlers need not build them.
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues a record, or drops and counts it if the queue is full. Never waits.
    pub fn send(&self, record: RequestRecord) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(record) {
            Ok(()) => drop(self.metrics.record_queue().inc()),
            Err(_) => self.metrics.records_dropped("queue_full", 1),
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
    let writer = Writer { store, migrated: false, spans, metrics: metrics.clone(), stopping };
    let task = tokio::spawn(writer.run(rx));
    (RecordSink { tx: Some(tx), metrics }, Some(WriterHandle { stop, writer: task, exporter: exporter_task }))
}

struct Writer {
    store: Option<Store>,
    /// Postgres may be down at start; its migrations run before the first write that reaches it.
    migrated: bool,
    /// The exporter, to ask which records it samples, and its queue.
    spans: Option<(OtlpExporter, mpsc::Sender<Vec<RequestRecord>>)>,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<Option<Instant>>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<RequestRecord>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            if self.stopping.borrow().is_some() {
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
    async fn linger(&mut self, rx: &mut mpsc::Receiver<RequestRecord>, batch: &mut Vec<RequestRecord>) {
        let until = tokio::time::sleep(LINGER);
        tokio::pin!(until);
        while batch.len() < MAX_BATCH {
            let room = MAX_BATCH - batch.len();
            tokio::select! {
                n = rx.recv_many(batch, room) => if n == 0 { return },
                () = &mut until => return,
                _ = self.stopping.changed() => return,
            }
        }
    }

    async fn deliver(&mut self, batch: &mut Vec<RequestRecord>) {
        if batch.is_empty() {
            return;
        }
        self.metrics.record_queue().dec_by(batch.len() as i64);
        if let Some((exporter, spans)) = &self.spans {
            let sampled: Vec<_> = batch.iter().filter(|r| exporter.wants(r)).cloned().collect();
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
    /// deadline ends the retries, cutting short an attempt in progress.
    async fn write(&mut self, batch: &[RequestRecord]) {
        let Some(store) = self.store.clone() else { return };
        let mut backoff = FIRST_BACKOFF;
        let mut reported = false;
        loop {
            let deadline = shutdown_deadline(self.stopping.clone());
            let migrated = &mut self.migrated;
            let attempt = async {
                if !*migrated {
                    store.migrate().await?;
                    *migrated = true;
                }
                store.insert_records(batch).await
            };
            let result = tokio::select! {
                r = attempt => r,
                () = deadline => return self.give_up(batch.len()),
            };
            match result {
                Ok(()) => {
                    self.metrics.records_written(batch.len() as u64);
                    if reported {
                        tracing::info!(backend = store.backend(), "the request log store is writable again");
                    }
                    return;
                }
                Err(e) => {
                    self.metrics.record_write_error();
                    if !reported {
                        tracing::warn!(backend = store.backend(), error = %e, records = batch.len(),
                            "cannot write request records; retrying while new ones queue");
                        reported = true;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown_deadline(self.stopping.clone()) => return self.give_up(batch.len()),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
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
        if stopping.changed().await.is_err() {
            return std::future::pending().await;
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
    while let Some(batch) = rx.recv().await {
        let n = batch.len() as u64;
        let deadline = *stopping.borrow();
        let sent = match deadline {
            Some(d) => matches!(tokio::time::timeout_at(d, exporter.export(&batch)).await, Ok(Ok(()))),
            None => exporter.export(&batch).await.is_ok(),
        };
        if sent {
            metrics.spans(n, 0);
        } else {
            metrics.spans(0, n);
        }
    }
}
