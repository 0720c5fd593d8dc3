//! The request log's wiring: the store named by `storage:`, the OTLP exporter named by
//! `tracing:`, the writer that feeds both from the handlers, and retention.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use switchyard_store::Store;
use switchyard_telemetry::{OtlpExporter, OtlpProtocol, TraceConfig, WriterHandle, start_writer};

use crate::config::{LoggingConfig, TracingConfig};
use crate::{AppState, Runtime, StartError};

/// Records waiting for the writer, unless `logging.queue` says otherwise.
const DEFAULT_QUEUE: usize = 10_000;

/// How long a shutdown gives the writer to store what is queued (retrying a down store).
const FLUSH_GRACE: Duration = Duration::from_secs(10);

/// How long start waits for a database server before going on without it.
const MIGRATE_AT_START: Duration = Duration::from_secs(5);

/// How often retention runs (and once at start).
const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// Opens the store and the exporter the config names, starts the writer and retention, and
/// points the handlers at them. A SQLite file that cannot be opened stops the start; a Postgres
/// that is down does not: records queue until it is back.
pub async fn start(
    state: &mut AppState,
    storage: Option<&str>,
    logging: &LoggingConfig,
    tracing_cfg: Option<&TracingConfig>,
) -> Result<Option<WriterHandle>, StartError> {
    let store = match storage {
        None => None,
        Some(url) => {
            let store = Store::connect(url).await?;
            match tokio::time::timeout(MIGRATE_AT_START, store.migrate()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if matches!(store, Store::Sqlite(_)) => return Err(e.into()),
                Ok(Err(e)) => tracing::warn!(error = %e, "the store is not ready; records will queue until it is"),
                Err(_) => tracing::warn!("the store did not answer in time; records will queue until it does"),
            }
            Some(store)
        }
    };
    let exporter = tracing_cfg.map(trace_config).transpose()?.map(OtlpExporter::new).transpose()?;
    let queue = logging.queue.unwrap_or(DEFAULT_QUEUE);
    let (sink, writer) = start_writer(store.clone(), exporter, queue, state.metrics.clone());
    state.records = sink;
    state.store = store.clone();
    if let Some(store) = store {
        tokio::spawn(retention(state.runtime.clone(), store.clone()));
        tokio::spawn(crate::surfaces::keys::refresh_loop(state.clone(), store));
    }
    Ok(writer)
}

/// Flushes the records of the requests that finished.
pub async fn stop(writer: Option<WriterHandle>) {
    if let Some(w) = writer {
        w.stop(FLUSH_GRACE).await;
    }
}

fn trace_config(t: &TracingConfig) -> Result<TraceConfig, StartError> {
    let protocol = match t.protocol.as_deref() {
        None => OtlpProtocol::Grpc,
        Some(p) => OtlpProtocol::parse(p)
            .ok_or_else(|| StartError::Config(format!("tracing.protocol '{p}' is not one of grpc, http/protobuf")))?,
    };
    let sample_rate = t.sample_rate.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_rate) {
        return Err(StartError::Config(format!("tracing.sample_rate {sample_rate} is not between 0 and 1")));
    }
    Ok(TraceConfig {
        endpoint: t.endpoint.clone(),
        protocol,
        sample_rate,
        headers: t.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        service_name: t.service_name.clone().unwrap_or_else(|| "switchyard".into()),
        timeout: Duration::from_secs(10),
    })
}

/// Deletes records past `logging.retention` and bodies past `logging.body_retention`, reading
/// both from the running config each time so a reload applies.
async fn retention(runtime: Arc<ArcSwap<Runtime>>, store: Store) {
    loop {
        let policy = runtime.load().logging.clone();
        let now = switchyard_store::time::now_us();
        let cutoff = |age: Duration| now.saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX));
        if let Some(age) = policy.retention {
            match store.delete_before(cutoff(age)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "retention: deleted old request records"),
                Err(e) => tracing::warn!(error = %e, "retention: deleting old records failed"),
            }
        }
        if let Some(age) = policy.body_retention {
            match store.strip_bodies_before(cutoff(age)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "retention: deleted old bodies"),
                Err(e) => tracing::warn!(error = %e, "retention: deleting old bodies failed"),
            }
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}
