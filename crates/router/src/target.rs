//! One deployment and what the router learns about it while it serves.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchyard_providers::Provider;

use crate::health::{BreakerPolicy, Refusal};
use crate::{Health, Price};

/// A deployment: a provider and the model name it knows, with its routing attributes.
#[derive(Debug)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    pub weight: u32,
    /// Lower tiers are used first; a higher tier only when no lower one is available.
    pub tier: u32,
    pub price: Option<Price>,
    /// The model's context window in tokens, when known: longer requests skip this target.
    pub context_window: Option<u64>,
    pub health: Health,
    pub stats: TargetStats,
    /// Taken out of rotation by an operator.
    pub drained: AtomicBool,
}

impl Target {
    pub fn new(provider: Arc<Provider>, model: impl Into<String>) -> Self {
        Target {
            provider,
            model: model.into(),
            weight: 1,
            tier: 1,
            price: None,
            context_window: None,
            health: Health::new(BreakerPolicy::default()),
            stats: TargetStats::default(),
            drained: AtomicBool::new(false),
        }
    }

    /// `provider/model`, for messages and headers.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider.name, self.model)
    }

    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    /// Routable now: not drained, and its breaker and rate limit allow a request.
    pub fn is_available(&self) -> bool {
        !self.is_drained() && self.health.is_available()
    }

    /// The estimated cost of a request, for the `cost` strategy. Unpriced targets cost nothing
    /// known, so they sort after priced ones rather than before.
    pub fn estimated_cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        match self.price {
            Some(p) => {
                let r = p.rates_for(input_tokens);
                (input_tokens as f64 * r.input_per_mtok + output_tokens as f64 * r.output_per_mtok) / 1e6
            }
            None => f64::INFINITY,
        }
    }
}

impl Target {
    /// Permission to send one request to this target. When the request is the breaker's probe,
    /// the permit ends the probe when it is dropped, however the attempt ends (a verdict, a
    /// cancelled hedge, a client that left), so a target can never be locked out by a lost probe.
    pub fn acquire(self: &Arc<Self>) -> Result<Permit, Refusal> {
        let probe = self.health.try_acquire()?;
        Ok(Permit { target: self.clone(), probe })
    }
}

pub struct Permit {
    target: Arc<Target>,
    probe: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe {
            self.target.health.release_probe();
        }
    }
}

/// Samples kept for the latency percentile.
const SAMPLES: usize = 64;
/// Weight of the newest sample in the moving average: recent enough to follow a provider that
/// slows down within a few requests, smooth enough that one outlier does not flip routing.
const EWMA_ALPHA: f64 = 0.3;

/// Live counters. Plain atomics and one small lock: the hot path touches them twice a request.
#[derive(Debug, Default)]
pub struct TargetStats {
    pub in_flight: AtomicU64,
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    /// Moving average of time to first token, in microseconds (0 = no sample yet).
    ewma_ttft_us: AtomicU64,
    samples: Mutex<Vec<u32>>,
}

impl TargetStats {
    pub fn record_ttft(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u32::MAX)) as u64;
        let old = self.ewma_ttft_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (EWMA_ALPHA * us as f64 + (1.0 - EWMA_ALPHA) * old as f64) as u64 };
        self.ewma_ttft_us.store(new.max(1), Ordering::Relaxed);
        if let Ok(mut s) = self.samples.lock() {
            if s.len() >= SAMPLES {
                s.remove(0);
            }
            s.push(us as u32);
        }
    }

    pub fn ewma_ttft(&self) -> Option<Duration> {
        let us = self.ewma_ttft_us.load(Ordering::Relaxed);
        (us > 0).then(|| Duration::from_micros(us))
    }

    /// The 95th percentile of recent times to first token.
    pub fn p95_ttft(&self) -> Option<Duration> {
        let s = self.samples.lock().ok()?;
        if s.len() < 5 {
            return None;
        }
        let mut sorted = s.clone();
        sorted.sort_unstable();
        let i = ((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len()) - 1;
        Some(Duration::from_micros(u64::from(sorted[i])))
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Counts a request in flight on a target for as long as it lives: the answer or stream holds
/// it, so `least-busy` and `latency` see streams that are still running.
#[derive(Debug)]
pub struct InFlight {
    target: Arc<Target>,
    started: Instant,
}

impl InFlight {
    pub fn new(target: Arc<Target>) -> Self {
        target.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        target.stats.requests.fetch_add(1, Ordering::Relaxed);
        InFlight { target, started: Instant::now() }
    }

    /// Takes the attempt's time-to-first-token sample now, for an attempt that answered before
    /// its first token (see `Attempt::time_first_token_later`).
    pub fn first_token(&self) {
        self.target.stats.record_ttft(self.started.elapsed());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.target.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_probe_permit_frees_the_probe() {
        use switchyard_providers::{ProviderSpec, ProviderType};
        let spec = ProviderSpec::of(ProviderType::Ollama);
        let provider = Arc::new(Provider::new("p", &spec).unwrap_or_else(|e| panic!("{e}")));
        let mut t = Target::new(provider, "m");
        t.health = Health::new(BreakerPolicy { cooldown: Duration::from_millis(10), ..Default::default() });
        let t = Arc::new(t);
        for _ in 0..3 {
            t.health.record_failure();
        }
        std::thread::sleep(Duration::from_millis(15));
        let probe = t.acquire();
        assert!(probe.is_ok());
        assert!(t.acquire().is_err(), "one probe at a time");
        // The client left before any verdict: the probe must not stay taken.
        drop(probe);
        assert!(t.acquire().is_ok());
    }

    #[test]
    fn ewma_follows_and_p95_reads_the_tail() {
        let s = TargetStats::default();
        assert!(s.ewma_ttft().is_none());
        for _ in 0..19 {
            s.record_ttft(Duration::from_millis(10));
        }
        s.record_ttft(Duration::from_millis(1000));
        let ewma = s.ewma_ttft().unwrap_or_default();
        assert!(ewma > Duration::from_millis(10) && ewma < Duration::from_millis(400), "{ewma:?}");
        assert_eq!(s.p95_ttft(), Some(Duration::from_millis(10)));
        s.record_ttft(Duration::from_millis(1000));
        assert_eq!(s.p95_ttft(), Some(Duration::from_millis(1000)));
    }
}
