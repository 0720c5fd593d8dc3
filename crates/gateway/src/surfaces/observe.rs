//! Per-request metrics: started when a request arrives, finished when its answer ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use switchyard_router::{Execution, Outcome};
use switchyard_telemetry::{Metrics, ModelLabels, RequestLabels};
use switchyard_types::{GatewayError, Usage};

use crate::runtime::Runtime;

/// One request's measurements. Dropped without `finish_*` (a client that left mid-stream), it
/// records the request as `cancelled`, so every request is counted once.
pub struct Observed {
    metrics: Arc<Metrics>,
    surface: &'static str,
    operation: &'static str,
    started: Instant,
    model: String,
    provider: String,
    in_flight: Gauge,
    finished: bool,
}

impl Observed {
    pub fn start(metrics: &Arc<Metrics>, surface: &'static str, operation: &'static str) -> Self {
        let in_flight = metrics.in_flight(surface);
        in_flight.inc();
        Observed {
            metrics: metrics.clone(),
            surface,
            operation,
            started: Instant::now(),
            model: "none".into(),
            provider: "none".into(),
            in_flight,
            finished: false,
        }
    }

    /// The requested model, as a label: configured names as they are; anything else a client
    /// invented (`provider/model`) as `direct`, so clients cannot grow the label set.
    pub fn model(&mut self, rt: &Runtime, requested: &str) {
        self.model = if rt.catalogue.contains(requested) { requested.to_string() } else { "direct".to_string() };
    }

    /// Records the attempts and the gateway's own time up to now (the first byte), excluding
    /// the time spent in upstream attempts.
    pub fn routed<T>(&mut self, exec: &Execution<T>) {
        let mut upstream = Duration::ZERO;
        for a in &exec.attempts {
            let outcome = match a.outcome {
                Outcome::Answered => "answered",
                Outcome::Failed(_) => "failed",
                Outcome::Skipped(_) => "skipped",
                Outcome::Cancelled => "cancelled",
            };
            if a.was_sent() {
                upstream += a.elapsed;
            }
            self.metrics.attempt(&self.model, &a.provider, outcome);
        }
        if let Some((route, target)) = &exec.answered {
            self.provider = target.provider.name.clone();
            let first_leg = exec.attempts.first().map(|a| a.model.as_str());
            if first_leg.is_some_and(|m| m != route.name) {
                self.metrics.fallback(&self.model);
            }
        }
        self.metrics.overhead(self.surface, self.started.elapsed().saturating_sub(upstream));
    }

    /// The first token went out (streams).
    pub fn first_token(&self) {
        self.metrics.time_to_first_token(&self.labels(), self.started.elapsed());
    }

    pub fn finish_ok(mut self, usage: Option<&Usage>) {
        let labels = self.labels();
        if let Some(u) = usage {
            self.metrics.usage(&labels, u);
        }
        self.end("2xx");
    }

    pub fn finish_err(mut self, e: &GatewayError) {
        let status = e.http_status();
        let error_type = e.code.clone().unwrap_or_else(|| format!("{:?}", e.kind).to_lowercase());
        self.metrics.error(self.surface, &self.model, &error_type);
        self.end(if status < 500 { "4xx" } else { "5xx" });
    }

    fn labels(&self) -> ModelLabels {
        ModelLabels {
            gen_ai_operation_name: self.operation,
            gen_ai_request_model: self.model.clone(),
            gen_ai_provider_name: self.provider.clone(),
        }
    }

    fn end(&mut self, status_class: &'static str) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.in_flight.dec();
        self.metrics.duration(&self.labels(), self.started.elapsed());
        self.metrics.request(RequestLabels {
            surface: self.surface,
            gen_ai_operation_name: self.operation,
            gen_ai_request_model: self.model.clone(),
            gen_ai_provider_name: self.provider.clone(),
            status_class,
        });
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.end("cancelled");
    }
}
