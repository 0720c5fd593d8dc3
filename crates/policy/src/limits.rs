//! Rate limits: requests per minute, tokens per minute and concurrent requests, per scope: a key,
//! a team, an end user of a key, a model, or a key on one model.
//!
//! Minute limits use a sliding-window counter: the current minute's count plus the previous
//! minute's, weighted by how much of it the last sixty seconds still cover. It needs two numbers
//! per scope and no per-request log, and its error is bounded by how unevenly the previous
//! minute was spread; the same arithmetic fits an atomic Redis script when instances share
//! limits. Tokens are counted at admission from the estimate (prompt plus `max_tokens`) and
//! corrected with the usage the provider reports, so a stream of short answers is not held to
//! its worst case for long.
//!
//! This is the in-process limiter: each instance holds its own counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_types::{ErrorKind, GatewayError};

pub(crate) const WINDOW_MS: u64 = 60_000;

/// What one scope may do. Absent fields are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub concurrency: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.concurrency.is_none()
    }
}

/// The limits that apply to one key's requests, by scope. Model names are public model names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub key: Limits,
    /// Its team's, shared by every key of the team.
    pub team: Limits,
    /// Its user's, shared by every key of the user.
    pub user: Limits,
    /// Each end user's (`x-switchyard-user` or the request's `user`) under this key.
    pub per_user: Limits,
    /// This key's on one model.
    pub per_model: std::collections::BTreeMap<String, Limits>,
}

/// A count over sliding minutes.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// The minute (since the epoch) `current` counts.
    pub(crate) minute: u64,
    pub(crate) current: u64,
    pub(crate) previous: u64,
}

impl Window {
    fn roll(&mut self, now_ms: u64) {
        let minute = now_ms / WINDOW_MS;
        if minute == self.minute {
            return;
        }
        self.previous = if minute == self.minute + 1 { self.current } else { 0 };
        self.current = 0;
        self.minute = minute;
    }

    /// The count over the sixty seconds up to now.
    fn count(&self, now_ms: u64) -> f64 {
        let into = (now_ms % WINDOW_MS) as f64 / WINDOW_MS as f64;
        self.previous as f64 * (1.0 - into) + self.current as f64
    }

    /// How long until `extra` more fit under `limit` (with `extra ≤ limit`).
    pub(crate) fn wait_for(&self, now_ms: u64, extra: u64, limit: u64) -> Duration {
        let window = WINDOW_MS as f64;
        let into = (now_ms % WINDOW_MS) as f64;
        let room = limit.saturating_sub(extra) as f64;
        let ms = if self.current as f64 > room {
            // This minute's own count is too high: wait for the next minute, and then for this
            // count, become `previous`, to decay to `room`.
            let share = 1.0 - room / self.current as f64;
            (window - into) + window * share
        } else {
            // The previous minute's weight falls to zero over this one.
            let share = 1.0 - (room - self.current as f64) / self.previous.max(1) as f64;
            window * share - into
        };
        Duration::from_millis((ms.ceil().max(1.0) as u64).min(2 * WINDOW_MS))
    }
}

#[derive(Debug, Default)]
struct Counts {
    requests: Window,
    tokens: Window,
    in_flight: u64,
}

/// The state of every scope, shared by every request and kept across config reloads.
#[derive(Debug, Default)]
pub struct Limiter {
    scopes: Mutex<HashMap<String, Arc<Mutex<Counts>>>>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Requests,
    Tokens,
    Concurrency,
}

/// What a client is told about its limits (OpenAI's `x-ratelimit-*` headers).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quota {
    pub limit_requests: Option<u64>,
    pub remaining_requests: u64,
    pub reset_requests: Duration,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: u64,
    pub reset_tokens: Duration,
}

/// A request admitted under its scope's limits: holds its concurrency slot until dropped, and
/// corrects the token count once the real usage is known.
#[derive(Debug)]
pub struct Admission {
    counts: Arc<Mutex<Counts>>,
    holds_slot: bool,
    estimated_tokens: u64,
    settled: bool,
    pub quota: Quota,
}

impl Admission {
    /// Takes the request back out of the counts: another scope refused it, so it never ran.
    fn revoke(mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.requests.current = c.requests.current.saturating_sub(1);
        c.tokens.current = c.tokens.current.saturating_sub(self.estimated_tokens);
        self.settled = true;
    }

    /// Replaces the admission's token estimate with what the provider reported.
    pub fn settle(&mut self, actual_tokens: u64) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_ms();
        c.tokens.roll(now);
        // The estimate may have been counted in the previous minute; correct the current one,
        // never below zero.
        if actual_tokens >= self.estimated_tokens {
            c.tokens.current += actual_tokens - self.estimated_tokens;
        } else {
            c.tokens.current = c.tokens.current.saturating_sub(self.estimated_tokens - actual_tokens);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.holds_slot {
            let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One scope a request counts against: its name in the limiter, its label in errors
/// (`the key 'web'`), and its limits.
#[derive(Debug, Clone)]
pub struct Scope {
    pub id: String,
    pub label: String,
    pub limits: Limits,
}

/// A request admitted under every scope it counts against, in this process or in Redis.
#[derive(Debug)]
pub enum Admissions {
    Local(Vec<Admission>),
    Shared(Box<crate::shared::SharedAdmission>),
}

impl Default for Admissions {
    fn default() -> Self {
        Admissions::Local(Vec::new())
    }
}

impl Admissions {
    pub fn settle(&mut self, actual_tokens: u64) {
        match self {
            Admissions::Local(all) => all.iter_mut().for_each(|a| a.settle(actual_tokens)),
            Admissions::Shared(a) => a.settle(actual_tokens),
        }
    }

    /// The quota to tell the client: the scope closest to its request limit.
    pub fn quota(&self) -> Option<Quota> {
        match self {
            Admissions::Local(all) => {
                all.iter().map(|a| a.quota).min_by_key(|q| (q.limit_requests.is_none(), q.remaining_requests))
            }
            Admissions::Shared(a) => Some(a.quota),
        }
    }
}

impl Limiter {
    /// Admits a request under every scope, or none: when one refuses, those already counted are
    /// taken back, so a refused request costs no scope anything.
    pub fn admit_all(&self, scopes: &[Scope], estimated_tokens: u64) -> Result<Admissions, GatewayError> {
        let mut admitted = Vec::with_capacity(scopes.len());
        for scope in scopes.iter().filter(|s| !s.limits.is_empty()) {
            match self.admit(&scope.id, &scope.limits, estimated_tokens) {
                Ok(a) => admitted.push(a),
                Err(refused) => {
                    admitted.into_iter().for_each(Admission::revoke);
                    return Err(refused.error(&scope.label));
                }
            }
        }
        Ok(Admissions::Local(admitted))
    }

    /// Forgets scopes idle for two minutes (nothing in flight, both windows empty by now), so
    /// scopes named by clients (end users) cannot grow the map for ever.
    pub fn sweep(&self) {
        let now = now_ms();
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        scopes.retain(|_, counts| {
            let c = counts.lock().unwrap_or_else(PoisonError::into_inner);
            c.in_flight > 0 || now / WINDOW_MS <= c.requests.minute.max(c.tokens.minute) + 1
        });
    }

    pub fn scopes(&self) -> usize {
        self.scopes.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Admits a request of `estimated_tokens` under `limits` for `scope`, or says which limit it
    /// exceeds and when to retry.
    pub fn admit(&self, scope: &str, limits: &Limits, estimated_tokens: u64) -> Result<Admission, Refused> {
        self.admit_at(scope, limits, estimated_tokens, now_ms())
    }

    fn admit_at(&self, scope: &str, limits: &Limits, tokens: u64, now: u64) -> Result<Admission, Refused> {
        let counts = {
            let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
            scopes.entry(scope.to_string()).or_default().clone()
        };
        let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.requests.roll(now);
        c.tokens.roll(now);
        if let Some(max) = limits.concurrency
            && c.in_flight >= max
        {
            return Err(Refused { exceeded: Exceeded::Concurrency, limit: max, retry_after: Duration::from_secs(1) });
        }
        if let Some(rpm) = limits.rpm
            && c.requests.count(now) + 1.0 > rpm as f64
        {
            let retry_after = c.requests.wait_for(now, 1, rpm);
            return Err(Refused { exceeded: Exceeded::Requests, limit: rpm, retry_after });
        }
        if let Some(tpm) = limits.tpm
            && c.tokens.count(now) + tokens as f64 > tpm as f64
        {
            // A request larger than the whole minute's allowance can never pass; waiting for it
            // would loop, so it says so with no retry time.
            let retry_after = if tokens > tpm { Duration::ZERO } else { c.tokens.wait_for(now, tokens, tpm) };
            return Err(Refused { exceeded: Exceeded::Tokens, limit: tpm, retry_after });
        }
        c.requests.current += 1;
        c.tokens.current += tokens;
        let holds_slot = limits.concurrency.is_some();
        if holds_slot {
            c.in_flight += 1;
        }
        let reset = Duration::from_millis(WINDOW_MS - now % WINDOW_MS);
        let remaining = |w: &Window, limit: Option<u64>| limit.map_or(0, |l| (l as f64 - w.count(now)).max(0.0) as u64);
        let quota = Quota {
            limit_requests: limits.rpm,
            remaining_requests: remaining(&c.requests, limits.rpm),
            reset_requests: reset,
            limit_tokens: limits.tpm,
            remaining_tokens: remaining(&c.tokens, limits.tpm),
            reset_tokens: reset,
        };
        drop(c);
        Ok(Admission { counts, holds_slot, estimated_tokens: tokens, settled: false, quota })
    }
}

/// A request over a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refused {
    pub exceeded: Exceeded,
    pub limit: u64,
    /// Zero when waiting cannot help (a request larger than the token limit).
    pub retry_after: Duration,
}

impl Refused {
    /// The error the caller gets: 429 with `retry-after`, naming the scope (`the key 'web'`) and
    /// the limit.
    pub fn error(&self, scope: &str) -> GatewayError {
        let (what, code) = match self.exceeded {
            Exceeded::Requests => (format!("{} requests per minute", self.limit), "rate_limit_exceeded"),
            Exceeded::Tokens if self.retry_after.is_zero() => {
                let e = GatewayError::new(
                    ErrorKind::RateLimited,
                    format!(
                        "This request needs more tokens than the {} tokens per minute {scope} may use.",
                        self.limit
                    ),
                )
                .with_code("tokens_exceed_limit");
                return e;
            }
            Exceeded::Tokens => (format!("{} tokens per minute", self.limit), "rate_limit_exceeded"),
            Exceeded::Concurrency => (format!("{} concurrent requests", self.limit), "concurrency_limit_exceeded"),
        };
        let secs = self.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        GatewayError::new(
            ErrorKind::RateLimited,
            format!("Rate limit reached for {scope}: {what}. Try again in {secs}s."),
        )
        .with_code(code)
        .with_retry_after(Duration::from_secs(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_699_999_980_000; // a minute boundary in the past (divisible by 60,000)

    #[test]
    fn requests_per_minute_hold_and_slide() {
        let l = Limiter::default();
        let limits = Limits { rpm: Some(3), ..Limits::default() };
        for i in 0..3 {
            let a = l.admit_at("k", &limits, 0, T0 + i).map(|a| a.quota.remaining_requests);
            assert_eq!(a, Ok(2 - i));
        }
        let refused = l.admit_at("k", &limits, 0, T0 + 10).err();
        assert_eq!(refused.map(|r| r.exceeded), Some(Exceeded::Requests));
        // Three in this minute: the next minute starts in 60 s, and they must decay to 2 (a third
        // of it) before one more fits: 80 s.
        assert_eq!(refused.map(|r| r.retry_after.as_secs()), Some(79));
        assert!(l.admit_at("k", &limits, 0, T0 + 10 + 79_990).is_ok(), "admitted when it said");
        // Half a minute later, the previous minute's three weigh 1.5, plus the one just admitted.
        assert!(l.admit_at("k", &limits, 0, T0 + 90_000).is_err());
        assert!(l.admit_at("k", &limits, 0, T0 + 100_000).is_ok(), "3 × 1/3 + 1 + 1 ≤ 3");
        // Two minutes later everything has slid out.
        for i in 0..3 {
            assert!(l.admit_at("k", &limits, 0, T0 + 240_000 + i).is_ok());
        }
        // Scopes are separate.
        assert!(l.admit_at("other", &limits, 0, T0 + 240_010).is_ok());
    }

    #[test]
    fn tokens_are_estimated_then_settled() {
        let l = Limiter::default();
        let limits = Limits { tpm: Some(1000), ..Limits::default() };
        let mut a = l.admit_at("k", &limits, 800, T0).unwrap_or_else(|r| panic!("{r:?}"));
        assert!(l.admit_at("k", &limits, 300, T0 + 1).is_err(), "800 + 300 > 1000 on the estimate");
        a.settle(100);
        assert!(l.admit_at("k", &limits, 300, T0 + 2).is_ok(), "the real usage was 100");
        let too_big = l.admit_at("k", &limits, 5000, T0 + 3).err();
        assert_eq!(too_big.map(|r| r.retry_after), Some(Duration::ZERO), "can never fit");
        assert_eq!(too_big.map(|r| r.error("k").code), Some(Some("tokens_exceed_limit".to_string())));
    }

    #[test]
    fn concurrency_slots_are_released_on_drop() {
        let l = Limiter::default();
        let limits = Limits { concurrency: Some(2), ..Limits::default() };
        let a = l.admit_at("k", &limits, 0, T0);
        let b = l.admit_at("k", &limits, 0, T0);
        assert!(a.is_ok() && b.is_ok());
        let c = l.admit_at("k", &limits, 0, T0).err().map(|r| r.error("k"));
        assert_eq!(c.as_ref().map(GatewayError::http_status), Some(429));
        assert!(c.is_some_and(|e| e.retry_after.is_some()));
        drop(a);
        assert!(l.admit_at("k", &limits, 0, T0).is_ok());
    }

    #[test]
    fn a_refusal_in_one_scope_costs_the_others_nothing() {
        let l = Limiter::default();
        let scope = |id: &str, rpm| Scope {
            id: id.into(),
            label: id.into(),
            limits: Limits { rpm: Some(rpm), ..Limits::default() },
        };
        let key = scope("key", 10);
        let team = scope("team", 2);
        assert!(l.admit_all(&[key.clone(), team.clone()], 0).is_ok());
        assert!(l.admit_all(&[key.clone(), team.clone()], 0).is_ok());
        let refused = l.admit_all(&[key.clone(), team.clone()], 0).err();
        assert!(refused.is_some_and(|e| e.message.contains("team")), "the team's limit refuses");
        // The key counted 2, not 3: the refused request was taken back.
        let quota = l.admit_all(std::slice::from_ref(&key), 0).ok().and_then(|a| a.quota());
        assert_eq!(quota.map(|q| q.remaining_requests), Some(7));
    }

    #[test]
    fn idle_scopes_are_swept_and_busy_ones_kept() {
        let l = Limiter::default();
        let limits = Limits { concurrency: Some(5), ..Limits::default() };
        let _busy = l.admit_at("busy", &limits, 0, T0);
        drop(l.admit_at("idle", &limits, 0, T0));
        l.sweep(); // now is long after T0: "idle" has no count left in any window
        assert_eq!(l.scopes(), 1);
    }

    #[test]
    fn errors_name_the_limit_not_the_key_value() {
        let r = Refused { exceeded: Exceeded::Requests, limit: 600, retry_after: Duration::from_millis(11_200) };
        let e = r.error("the key 'web-app'");
        assert_eq!(e.retry_after, Some(Duration::from_secs(12)));
        assert!(e.message.contains("600 requests per minute") && e.message.contains("'web-app'"), "{}", e.message);
    }
}
