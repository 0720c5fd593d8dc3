//! Passive health: a circuit breaker per target.
//!
//! Closed: traffic flows. After `failures` retryable failures in a row, or an error rate above
//! `error_rate` over the recent window, the breaker opens for a cooldown that doubles with each
//! ejection in a row (up to `max_cooldown`). When the cooldown ends the breaker is half-open: one
//! request is let through as a probe; its success closes the breaker, its failure opens it again.
//! This holds for a model with a single target too: during an outage each request fails fast
//! instead of paying for doomed attempts.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// Error rate over the last `WINDOW` outcomes that opens the breaker (needs `MIN_SAMPLES`).
    pub error_rate: f64,
    pub cooldown: Duration,
    pub max_cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        // Three in a row is a pattern, not a blip; 5 s is short enough that a recovered provider
        // is back quickly, and doubling reaches the 5 min cap after about six failed probes.
        BreakerPolicy {
            failures: 3,
            error_rate: 0.5,
            cooldown: Duration::from_secs(5),
            max_cooldown: Duration::from_secs(300),
        }
    }
}

/// Outcomes remembered for the error rate.
const WINDOW: usize = 20;
/// Fewer outcomes than this say nothing about a rate.
const MIN_SAMPLES: usize = 10;

/// Why a target may not be tried now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The breaker is open (or its one probe is out).
    Open(Duration),
    /// The provider asked for a pause (`retry-after`).
    RateLimited(Duration),
}

impl Refusal {
    pub fn wait(self) -> Duration {
        match self {
            Refusal::Open(d) | Refusal::RateLimited(d) => d,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug, Default)]
pub struct Health {
    policy: BreakerPolicy,
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    consecutive_failures: u32,
    /// Recent outcomes, true for failure, as a ring.
    recent: Vec<bool>,
    next: usize,
    ejections: u32,
    open_until: Option<Instant>,
    probe_in_flight: bool,
    /// A rate limit the provider announced (`retry-after`): no attempts before this.
    limited_until: Option<Instant>,
}

impl Health {
    pub fn new(policy: BreakerPolicy) -> Self {
        Health { policy, state: Mutex::default() }
    }

    /// The state, even if a thread panicked while holding it: a breaker that silently stops
    /// working after a panic elsewhere is worse than one that carries on.
    fn lock(&self) -> MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state(&self) -> BreakerState {
        let s = self.lock();
        match s.open_until {
            None => BreakerState::Closed,
            Some(t) if Instant::now() < t => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Whether a request may be sent now, without taking the probe.
    pub fn is_available(&self) -> bool {
        let s = self.lock();
        let now = Instant::now();
        if s.limited_until.is_some_and(|t| now < t) {
            return false;
        }
        match s.open_until {
            None => true,
            Some(t) => now >= t && !s.probe_in_flight,
        }
    }

    /// Takes permission to send one request: always while closed; once, as the probe, when
    /// half-open (then `Ok(true)`: the caller must end the probe with a verdict or
    /// `release_probe`; `Target::acquire` does that with a guard). When refused, says why and
    /// for how long.
    pub fn try_acquire(&self) -> Result<bool, Refusal> {
        let mut s = self.lock();
        let now = Instant::now();
        if let Some(t) = s.limited_until.filter(|t| now < *t) {
            return Err(Refusal::RateLimited(t - now));
        }
        match s.open_until {
            None => Ok(false),
            Some(t) if now < t => Err(Refusal::Open(t - now)),
            Some(_) if s.probe_in_flight => Err(Refusal::Open(Duration::from_secs(1))),
            Some(_) => {
                s.probe_in_flight = true;
                Ok(true)
            }
        }
    }

    /// How long until this target can be tried, if it cannot now.
    pub fn wait(&self) -> Option<Duration> {
        let s = self.lock();
        let now = Instant::now();
        [s.limited_until, s.open_until].into_iter().flatten().filter(|t| now < *t).max().map(|t| t - now)
    }

    pub fn record_success(&self) {
        let mut s = self.lock();
        s.consecutive_failures = 0;
        s.ejections = 0;
        s.open_until = None;
        s.probe_in_flight = false;
        push(&mut s, false);
    }

    pub fn record_failure(&self) {
        let mut s = self.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        push(&mut s, true);
        let was_probe = s.probe_in_flight;
        s.probe_in_flight = false;
        let failures = s.recent.iter().filter(|f| **f).count();
        let rate_tripped =
            s.recent.len() >= MIN_SAMPLES && failures as f64 / s.recent.len() as f64 >= self.policy.error_rate;
        if was_probe || s.consecutive_failures >= self.policy.failures || rate_tripped {
            let factor = 1u32 << s.ejections.min(16);
            let cooldown = self.policy.cooldown.saturating_mul(factor).min(self.policy.max_cooldown);
            s.open_until = Some(after(cooldown));
            s.ejections = s.ejections.saturating_add(1);
            s.consecutive_failures = 0;
            s.recent.clear();
            s.next = 0;
        }
    }

    /// An attempt ended without a verdict on the target (the client left, or a client error).
    pub fn release_probe(&self) {
        self.lock().probe_in_flight = false;
    }

    /// The provider said to wait (`retry-after` on a 429): skip this target until then.
    pub fn limit_for(&self, wait: Duration) {
        let until = after(wait);
        let mut s = self.lock();
        s.limited_until = Some(s.limited_until.map_or(until, |t| t.max(until)));
    }

    /// A snapshot for the admin API.
    pub fn report(&self) -> HealthReport {
        let state = self.state();
        let s = self.lock();
        let now = Instant::now();
        HealthReport {
            state,
            consecutive_failures: s.consecutive_failures,
            ejections: s.ejections,
            retry_in: [s.limited_until, s.open_until].into_iter().flatten().filter(|t| now < *t).max().map(|t| t - now),
        }
    }
}

/// `now + d`, for any `d`: a provider's absurd `retry-after` must not overflow the clock.
pub(crate) fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).or_else(|| now.checked_add(Duration::from_secs(365 * 86_400))).unwrap_or(now)
}

fn push(s: &mut HealthState, failed: bool) {
    if s.recent.len() < WINDOW {
        s.recent.push(failed);
    } else {
        let i = s.next;
        s.recent[i] = failed;
    }
    s.next = (s.next + 1) % WINDOW;
}

#[derive(Debug, Clone)]
pub struct HealthReport {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub ejections: u32,
    pub retry_in: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Health {
        Health::new(BreakerPolicy { cooldown: Duration::from_millis(30), ..Default::default() })
    }

    #[test]
    fn opens_after_consecutive_failures_and_success_resets() {
        let h = fast();
        h.record_failure();
        h.record_failure();
        h.record_success();
        h.record_failure();
        h.record_failure();
        assert_eq!(h.state(), BreakerState::Closed);
        h.record_failure();
        assert_eq!(h.state(), BreakerState::Open);
        assert!(h.try_acquire().is_err());
    }

    #[test]
    fn half_open_lets_one_probe_through_and_a_failed_probe_doubles_the_cooldown() {
        let h = fast();
        for _ in 0..3 {
            h.record_failure();
        }
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(h.state(), BreakerState::HalfOpen);
        assert_eq!(h.try_acquire(), Ok(true), "the probe");
        assert!(h.try_acquire().is_err(), "only one probe at a time");
        h.record_failure();
        let wait = h.wait().unwrap_or_default();
        assert!(wait > Duration::from_millis(40), "second ejection lasts longer: {wait:?}");
        std::thread::sleep(wait + Duration::from_millis(5));
        assert_eq!(h.try_acquire(), Ok(true));
        h.record_success();
        assert_eq!(h.state(), BreakerState::Closed);
        assert!(h.try_acquire().is_ok() && h.try_acquire().is_ok());
    }

    #[test]
    fn error_rate_trips_without_consecutive_failures() {
        let h = Health::new(BreakerPolicy { failures: 100, ..Default::default() });
        for i in 0..=MIN_SAMPLES {
            if i % 2 == 0 { h.record_failure() } else { h.record_success() }
        }
        // Successes reset the consecutive count but not the window.
        assert_eq!(h.state(), BreakerState::Open);
    }

    #[test]
    fn absurd_waits_do_not_overflow() {
        let h = fast();
        h.limit_for(Duration::MAX);
        assert!(matches!(h.try_acquire(), Err(Refusal::RateLimited(_))));
    }

    #[test]
    fn rate_limits_hold_a_target_back() {
        let h = fast();
        h.limit_for(Duration::from_millis(50));
        assert!(!h.is_available());
        assert!(h.try_acquire().is_err());
        assert_eq!(h.state(), BreakerState::Closed, "a rate limit is not a failure");
    }
}
