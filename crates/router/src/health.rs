//! Passive health: a target that fails several times in a row is skipped for a cooldown.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures that eject a target. One failure is often a blip; three in a row is a
/// pattern worth routing around.
const EJECT_AFTER: u32 = 3;
/// How long an ejected target is skipped; each ejection in a row doubles it, up to the cap.
const BASE_COOLDOWN: Duration = Duration::from_secs(5);
const MAX_COOLDOWN: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    consecutive_failures: u32,
    ejections: u32,
    cool_until: Option<Instant>,
}

impl Health {
    /// Whether the target should be tried now. After a cooldown the next request is the probe.
    pub fn is_available(&self) -> bool {
        let Ok(s) = self.state.lock() else { return true };
        s.cool_until.is_none_or(|t| Instant::now() >= t)
    }

    pub fn record_success(&self) {
        if let Ok(mut s) = self.state.lock() {
            *s = HealthState::default();
        }
    }

    pub fn record_failure(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.consecutive_failures += 1;
            if s.consecutive_failures >= EJECT_AFTER {
                let factor = 1u32 << s.ejections.min(6);
                s.cool_until = Some(Instant::now() + (BASE_COOLDOWN * factor).min(MAX_COOLDOWN));
                s.ejections += 1;
                s.consecutive_failures = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejects_after_consecutive_failures_and_success_resets() {
        let h = Health::default();
        h.record_failure();
        h.record_failure();
        assert!(h.is_available());
        h.record_success();
        h.record_failure();
        h.record_failure();
        assert!(h.is_available());
        h.record_failure();
        assert!(!h.is_available());
    }
}
