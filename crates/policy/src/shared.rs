//! Rate limits shared by every instance through Redis, with a fallback when Redis is away.
//!
//! Admission is one round trip: a script checks and counts all of a request's scopes atomically
//! (see `switchyard-store`'s `counters.rs`). Settling tokens and releasing concurrency slots are
//! sent without waiting. When Redis fails or is slow, the instance stops asking it for a while
//! and either counts on its own (the default: limits then hold per instance) or refuses
//! (`reject`, for those who would rather fail closed); it tries Redis again after the pause.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use switchyard_store::{ScopeLimits, SharedCounters, Verdict};
use switchyard_types::{ErrorKind, GatewayError};

use crate::limits::{Exceeded, Refused, WINDOW_MS, Window, now_ms};
use crate::{Admissions, Limiter, Quota, Scope};

/// How long a request may wait for Redis before the fallback decides.
const REDIS_WAIT: Duration = Duration::from_millis(200);

/// How long an instance leaves Redis alone after a failure.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// How long a concurrency slot is held if its release never arrives.
const SLOT_LEASE_MS: u64 = 15 * 60 * 1000;

/// What to do while Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnRedisOutage {
    /// Count in this instance, as if it were alone.
    #[default]
    Local,
    /// Refuse requests that have limits (503).
    Reject,
}

#[derive(Debug)]
pub struct SharedLimiter {
    counters: SharedCounters,
    local: Arc<Limiter>,
    on_outage: OnRedisOutage,
    /// Milliseconds since the epoch until which Redis is left alone.
    paused_until: AtomicU64,
    reported: AtomicBool,
}

/// A request counted in Redis.
#[derive(Debug)]
pub struct SharedAdmission {
    counters: SharedCounters,
    scopes: Vec<String>,
    slot_scopes: Vec<String>,
    id: String,
    minute: u64,
    estimated: u64,
    settled: bool,
    pub quota: Quota,
}

impl SharedAdmission {
    pub fn settle(&mut self, actual_tokens: u64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let delta = i64::try_from(actual_tokens).unwrap_or(i64::MAX) - i64::try_from(self.estimated).unwrap_or(0);
        if delta == 0 {
            return;
        }
        let (counters, scopes, minute) = (self.counters.clone(), self.scopes.clone(), self.minute);
        spawn_bounded(async move { counters.settle(&scopes, minute, delta).await });
    }
}

impl Drop for SharedAdmission {
    fn drop(&mut self) {
        if self.slot_scopes.is_empty() {
            return;
        }
        let (counters, scopes, id) = (self.counters.clone(), std::mem::take(&mut self.slot_scopes), self.id.clone());
        spawn_bounded(async move { counters.release(&scopes, &id).await });
    }
}

/// Runs a Redis update in the background, bounded in time; a lost update is corrected by the
/// window rolling over (tokens) or the slot's lease (concurrency).
fn spawn_bounded(f: impl Future<Output = Result<(), switchyard_store::StoreError>> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = tokio::time::timeout(REDIS_WAIT * 5, f).await;
        });
    }
}

impl SharedLimiter {
    pub fn new(counters: SharedCounters, local: Arc<Limiter>, on_outage: OnRedisOutage) -> SharedLimiter {
        SharedLimiter { counters, local, on_outage, paused_until: AtomicU64::new(0), reported: AtomicBool::new(false) }
    }

    /// Redis failed lately and the limits are per instance (or refusing) for now.
    pub fn degraded(&self) -> bool {
        now_ms() < self.paused_until.load(Ordering::Relaxed)
    }

    pub async fn admit_all(&self, scopes: &[Scope], tokens: u64) -> Result<Admissions, GatewayError> {
        let scopes: Vec<&Scope> = scopes.iter().filter(|s| !s.limits.is_empty()).collect();
        if scopes.is_empty() {
            return Ok(Admissions::default());
        }
        if self.degraded() {
            return self.fallback(&scopes, tokens);
        }
        let args: Vec<ScopeLimits> = scopes
            .iter()
            .map(|s| ScopeLimits {
                id: s.id.clone(),
                rpm: s.limits.rpm.unwrap_or(0),
                tpm: s.limits.tpm.unwrap_or(0),
                concurrency: s.limits.concurrency.unwrap_or(0),
            })
            .collect();
        let now = now_ms();
        let id = format!("{:032x}", fastrand::u128(..));
        let verdict =
            tokio::time::timeout(REDIS_WAIT, self.counters.admit(&args, tokens, now, SLOT_LEASE_MS, &id)).await;
        match verdict {
            Ok(Ok(Verdict::Admitted { remaining_requests, remaining_tokens })) => {
                if self.reported.swap(false, Ordering::Relaxed) {
                    tracing::info!("redis is back: rate limits are shared again");
                }
                let limit_requests = scopes.iter().filter_map(|s| s.limits.rpm).min();
                let limit_tokens = scopes.iter().filter_map(|s| s.limits.tpm).min();
                let reset = Duration::from_millis(WINDOW_MS - now % WINDOW_MS);
                Ok(Admissions::Shared(Box::new(SharedAdmission {
                    counters: self.counters.clone(),
                    scopes: args.iter().map(|a| a.id.clone()).collect(),
                    slot_scopes: args.iter().filter(|a| a.concurrency > 0).map(|a| a.id.clone()).collect(),
                    id,
                    minute: now / WINDOW_MS,
                    estimated: tokens,
                    settled: false,
                    quota: Quota {
                        limit_requests,
                        remaining_requests: remaining_requests.unwrap_or(0),
                        reset_requests: reset,
                        limit_tokens,
                        remaining_tokens: remaining_tokens.unwrap_or(0),
                        reset_tokens: reset,
                    },
                })))
            }
            Ok(Ok(Verdict::Refused { index, limit, requests, tokens: counted })) => {
                let scope = scopes.get(index).copied().unwrap_or(scopes[0]);
                let minute = now / WINDOW_MS;
                let window = |(current, previous): (u64, u64)| Window { minute, current, previous };
                let refused = match limit {
                    3 => Refused {
                        exceeded: Exceeded::Concurrency,
                        limit: scope.limits.concurrency.unwrap_or(0),
                        retry_after: Duration::from_secs(1),
                    },
                    2 => {
                        let tpm = scope.limits.tpm.unwrap_or(0);
                        let retry_after =
                            if tokens > tpm { Duration::ZERO } else { window(counted).wait_for(now, tokens, tpm) };
                        Refused { exceeded: Exceeded::Tokens, limit: tpm, retry_after }
                    }
                    _ => {
                        let rpm = scope.limits.rpm.unwrap_or(0);
                        Refused {
                            exceeded: Exceeded::Requests,
                            limit: rpm,
                            retry_after: window(requests).wait_for(now, 1, rpm),
                        }
                    }
                };
                Err(refused.error(&scope.label))
            }
            Ok(Err(e)) => {
                self.pause(&e.to_string());
                self.fallback(&scopes, tokens)
            }
            Err(_) => {
                self.pause("no answer in time");
                self.fallback(&scopes, tokens)
            }
        }
    }

    fn pause(&self, why: &str) {
        let until = now_ms() + PAUSE_AFTER_FAILURE.as_millis() as u64;
        self.paused_until.store(until, Ordering::Relaxed);
        if !self.reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = why, on_outage = ?self.on_outage, "redis is unreachable: rate limits fall back");
        }
    }

    fn fallback(&self, scopes: &[&Scope], tokens: u64) -> Result<Admissions, GatewayError> {
        match self.on_outage {
            OnRedisOutage::Local => {
                let owned: Vec<Scope> = scopes.iter().map(|s| (*s).clone()).collect();
                self.local.admit_all(&owned, tokens)
            }
            OnRedisOutage::Reject => Err(GatewayError::new(
                ErrorKind::Unavailable,
                "Rate limits cannot be checked right now (their shared store is unreachable); try again shortly.",
            )
            .with_code("limits_unavailable")
            .with_retry_after(PAUSE_AFTER_FAILURE)),
        }
    }
}
