//! Dollar budgets per key, team and user, over a calendar period, a rolling duration, or for
//! life.
//!
//! A request reserves its worst case at admission (its estimated prompt and `max_tokens` at the
//! dearest price among the targets it may reach) and is admitted only if what was spent, what is
//! reserved by requests still running, and its own reservation all fit. When it ends, the
//! reservation gives way to the true cost. So concurrent requests cannot overshoot a budget,
//! except by what a request costs beyond its own worst case (a prompt estimate that was low),
//! and the last request before the limit is refused rather than let through.
//!
//! Money is counted in billionths of a dollar (`i64`), so sums are exact (in Redis too) and
//! a token priced at $0.02 per million still counts.
//!
//! This is the in-process ledger; `SharedBudgets` keeps the same books in Redis.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchyard_store::time::{format_us, month_start_us};
use switchyard_types::{ErrorKind, GatewayError};

/// Billionths of a dollar.
pub type Nanos = i64;

pub fn nanos(usd: f64) -> Nanos {
    if usd.is_finite() { (usd * 1e9).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64 } else { 0 }
}

pub fn usd(n: Nanos) -> f64 {
    n as f64 / 1e9
}

const DAY_US: i64 = 86_400_000_000;

/// How many steps a rolling window is counted in: the window covers between 23/24 and all of
/// its duration, and a step's spend leaves it at once.
const ROLLING_STEPS: i64 = 24;

/// Over what time spend counts against a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Calendar days, weeks (from Monday) and months, in UTC.
    Daily,
    Weekly,
    Monthly,
    /// The last `duration`, counted in 24 steps.
    Rolling(Duration),
    /// Since the budget began, never reset.
    Lifetime,
}

/// Where a period stands now: spend since `from_us` counts; new spend goes in the step that
/// began at `current_us`; `resets_at_us` is when the oldest spend stops counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_us: i64,
    pub step_us: i64,
    pub current_us: i64,
    pub resets_at_us: Option<i64>,
}

impl Period {
    /// `daily`, `weekly`, `monthly`, `lifetime`, or a duration (`30d`, `12h`, `90m`; at least
    /// an hour).
    pub fn parse(s: &str) -> Result<Period, String> {
        match s {
            "daily" => return Ok(Period::Daily),
            "weekly" => return Ok(Period::Weekly),
            "monthly" => return Ok(Period::Monthly),
            "lifetime" => return Ok(Period::Lifetime),
            _ => {}
        }
        let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = number.parse().map_err(|_| bad_period(s))?;
        let secs = match unit {
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            "w" => n * 7 * 86_400,
            _ => return Err(bad_period(s)),
        };
        if secs < 3600 {
            return Err(format!("budget period '{s}' is shorter than an hour"));
        }
        Ok(Period::Rolling(Duration::from_secs(secs)))
    }

    pub fn window(&self, now_us: i64) -> Window {
        let calendar =
            |from: i64, to: i64| Window { from_us: from, step_us: to - from, current_us: from, resets_at_us: Some(to) };
        match *self {
            Period::Daily => {
                let from = now_us.div_euclid(DAY_US) * DAY_US;
                calendar(from, from + DAY_US)
            }
            Period::Weekly => {
                // 1970-01-01 was a Thursday: days since the epoch plus 3 count from a Monday.
                let days = now_us.div_euclid(DAY_US);
                let from = (days - (days + 3).rem_euclid(7)) * DAY_US;
                calendar(from, from + 7 * DAY_US)
            }
            Period::Monthly => calendar(month_start_us(now_us, 0), month_start_us(now_us, 1)),
            Period::Rolling(d) => {
                let step = (i64::try_from(d.as_micros()).unwrap_or(i64::MAX) / ROLLING_STEPS).max(1);
                let current = now_us.div_euclid(step) * step;
                Window {
                    from_us: current - (ROLLING_STEPS - 1) * step,
                    step_us: step,
                    current_us: current,
                    resets_at_us: Some(current + step),
                }
            }
            Period::Lifetime => Window { from_us: 0, step_us: i64::MAX, current_us: 0, resets_at_us: None },
        }
    }

    /// As the config writes it: `monthly`, `30d`.
    pub fn name(&self) -> String {
        match self {
            Period::Daily => "daily".into(),
            Period::Weekly => "weekly".into(),
            Period::Monthly => "monthly".into(),
            Period::Lifetime => "lifetime".into(),
            Period::Rolling(d) => human(*d),
        }
    }

    /// For messages: `this month`, `in the last 30d`.
    pub fn describe(&self) -> String {
        match self {
            Period::Daily => "today (UTC)".into(),
            Period::Weekly => "this week (UTC)".into(),
            Period::Monthly => "this month (UTC)".into(),
            Period::Rolling(d) => format!("in the last {}", human(*d)),
            Period::Lifetime => "in total".into(),
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        format!("{}m", s / 60)
    }
}

fn bad_period(s: &str) -> String {
    format!("budget period '{s}' is not daily, weekly, monthly, lifetime or a duration like 30d, 12h")
}

/// A budget: at most `max` over its period, with webhook alerts when spend crosses each of the
/// `alerts` fractions of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub max: Nanos,
    pub period: Period,
    pub alerts: Vec<f64>,
}

/// What a budget belongs to, named as the request log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Key,
    Team,
    User,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Key => "key",
            Owner::Team => "team",
            Owner::User => "user",
        }
    }
}

/// One budget a request counts against.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetScope {
    pub owner: Owner,
    pub name: String,
    pub budget: Budget,
}

impl BudgetScope {
    /// Its name in the ledger and in Redis.
    pub fn id(&self) -> String {
        format!("{}:{}", self.owner.as_str(), self.name)
    }

    pub fn label(&self) -> String {
        format!("the {} '{}'", self.owner.as_str(), self.name)
    }
}

/// A budget's spend crossed one of its alert fractions (or its limit, at 1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    pub owner: Owner,
    pub name: String,
    pub threshold: f64,
    pub spent: Nanos,
    pub max: Nanos,
    pub period: Period,
    pub resets_at_us: Option<i64>,
}

/// Why a request was refused: the scope, what it had spent and held, and what it asked.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRefused {
    pub scope: BudgetScope,
    pub spent: Nanos,
    pub reserved: Nanos,
    pub asked: Nanos,
    pub resets_at_us: Option<i64>,
}

impl BudgetRefused {
    /// 402 (or `status`) with the code `budget_exceeded`, saying which budget, how much is
    /// left, and when it resets.
    pub fn error(&self, status: u16) -> GatewayError {
        let b = &self.scope.budget;
        let when = self.resets_at_us.map_or(String::new(), |at| format!(" It resets at {}.", format_us(at)));
        let message = if self.spent >= b.max {
            format!(
                "The budget of {} is used up: ${:.4} of ${:.2} {}.{when}",
                self.scope.label(),
                usd(self.spent),
                usd(b.max),
                b.period.describe()
            )
        } else {
            format!(
                "This request could cost up to ${:.4}, more than is left of the budget of {} (${:.4} of ${:.2} {}, \
                 ${:.4} of it held by requests in flight). Lower max_tokens, or wait.{when}",
                usd(self.asked),
                self.scope.label(),
                usd(b.max - self.spent - self.reserved).max(0.0),
                usd(b.max),
                b.period.describe(),
                usd(self.reserved)
            )
        };
        GatewayError::new(ErrorKind::BudgetExceeded, message).with_code("budget_exceeded").with_status(status)
    }
}

/// One scope's books in this process.
#[derive(Debug, Default)]
struct Ledger {
    /// Spend by the start of the step it fell in.
    steps: BTreeMap<i64, Nanos>,
    reserved: Nanos,
    /// Which alert fractions have fired and not yet been gone under again.
    fired: Vec<bool>,
}

impl Ledger {
    fn spent(&mut self, w: &Window) -> Nanos {
        self.steps.retain(|&at, _| at >= w.from_us);
        self.steps.values().sum()
    }
}

/// Every scope's ledger, kept across config reloads.
#[derive(Debug, Default)]
pub struct Budgets {
    ledgers: Mutex<HashMap<String, Arc<Mutex<Ledger>>>>,
    /// Scopes whose earlier spend the request log has given.
    seeded: Mutex<HashSet<String>>,
}

/// A request's reservations under its budgets: given back when dropped, or turned into its
/// true cost by `settle`.
#[derive(Debug)]
pub struct Reservation {
    held: Vec<(Arc<Mutex<Ledger>>, BudgetScope)>,
    amount: Nanos,
    done: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Budgets {
    fn ledger(&self, id: String) -> Arc<Mutex<Ledger>> {
        lock(&self.ledgers).entry(id).or_default().clone()
    }

    /// Reserves `amount` under every scope, or under none.
    pub fn reserve(&self, scopes: &[BudgetScope], amount: Nanos, now_us: i64) -> Result<Reservation, BudgetRefused> {
        let ids: Vec<String> = scopes.iter().map(BudgetScope::id).collect();
        let ledgers: Vec<_> = ids.iter().map(|id| self.ledger(id.clone())).collect();
        // Lock in one order (by scope id) so two requests over the same scopes cannot deadlock
        // and all scopes are checked and charged as one step.
        let mut order: Vec<usize> = (0..scopes.len()).collect();
        order.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
        order.dedup_by(|a, b| ids[*a] == ids[*b]);
        let mut guards: Vec<_> = order.iter().map(|&i| (i, lock(&ledgers[i]))).collect();
        for (i, ledger) in &mut guards {
            let scope = &scopes[*i];
            let w = scope.budget.period.window(now_us);
            let spent = ledger.spent(&w);
            if spent.saturating_add(ledger.reserved).saturating_add(amount) > scope.budget.max
                || spent >= scope.budget.max
            {
                return Err(BudgetRefused {
                    scope: scope.clone(),
                    spent,
                    reserved: ledger.reserved,
                    asked: amount,
                    resets_at_us: w.resets_at_us,
                });
            }
        }
        for (_, ledger) in &mut guards {
            ledger.reserved += amount;
        }
        drop(guards);
        let held = order.iter().map(|&i| (ledgers[i].clone(), scopes[i].clone())).collect();
        Ok(Reservation { held, amount, done: false })
    }

    /// Adds spend this process did not see (the request log's, at start) to a scope's steps.
    pub fn seed(&self, scope_id: &str, steps: &[(i64, Nanos)]) {
        let ledger = self.ledger(scope_id.to_string());
        let mut l = lock(&ledger);
        for &(at, n) in steps {
            *l.steps.entry(at).or_default() += n;
        }
    }

    pub fn is_seeded(&self, scope_id: &str) -> bool {
        lock(&self.seeded).contains(scope_id)
    }

    pub fn mark_seeded(&self, scope_id: &str) {
        lock(&self.seeded).insert(scope_id.to_string());
    }

    /// Spend counted now in a scope's window, and what requests in flight hold.
    pub fn spent(&self, scope: &BudgetScope, now_us: i64) -> (Nanos, Nanos) {
        let ledger = self.ledger(scope.id());
        let mut l = lock(&ledger);
        let spent = l.spent(&scope.budget.period.window(now_us));
        (spent, l.reserved)
    }

    /// Adds spend settled elsewhere (in Redis, while it answers) so this ledger can stand in
    /// for it during an outage.
    pub fn record(&self, scope: &BudgetScope, cost: Nanos, now_us: i64) -> Vec<Crossing> {
        let ledger = self.ledger(scope.id());
        let mut l = lock(&ledger);
        charge(&mut l, scope, cost, now_us)
    }
}

/// Adds `cost` to the current step and says which alert fractions it crossed.
fn charge(l: &mut Ledger, scope: &BudgetScope, cost: Nanos, now_us: i64) -> Vec<Crossing> {
    let w = scope.budget.period.window(now_us);
    *l.steps.entry(w.current_us).or_default() += cost;
    let spent = l.spent(&w);
    crossings(&mut l.fired, scope, spent, &w)
}

/// The alert fractions `spent` is at or over and had not fired; those it is under again are
/// re-armed (a new period, a rolling window moving on).
pub(crate) fn crossings(fired: &mut Vec<bool>, scope: &BudgetScope, spent: Nanos, w: &Window) -> Vec<Crossing> {
    let b = &scope.budget;
    fired.resize(b.alerts.len(), false);
    let mut out = Vec::new();
    for (i, &t) in b.alerts.iter().enumerate() {
        let over = spent as f64 >= t * b.max as f64;
        if over && !fired[i] {
            out.push(Crossing {
                owner: scope.owner,
                name: scope.name.clone(),
                threshold: t,
                spent,
                max: b.max,
                period: b.period,
                resets_at_us: w.resets_at_us,
            });
        }
        fired[i] = over;
    }
    out
}

impl Reservation {
    pub fn none() -> Reservation {
        Reservation { held: Vec::new(), amount: 0, done: true }
    }

    pub fn amount(&self) -> Nanos {
        self.amount
    }

    pub fn scopes(&self) -> Vec<BudgetScope> {
        self.held.iter().map(|(_, s)| s.clone()).collect()
    }

    /// Replaces the reservation with the true cost; returns the alerts it set off.
    pub fn settle(&mut self, cost: Nanos, now_us: i64) -> Vec<Crossing> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        for (ledger, scope) in &self.held {
            let mut l = lock(ledger);
            l.reserved = (l.reserved - self.amount).max(0);
            out.extend(charge(&mut l, scope, cost, now_us));
        }
        out
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for (ledger, _) in &self.held {
            let mut l = lock(ledger);
            l.reserved = (l.reserved - self.amount).max(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_store::time::parse_us;

    use super::*;

    fn at(s: &str) -> i64 {
        parse_us(s).unwrap_or_else(|| panic!("{s}"))
    }

    fn scope(name: &str, max_usd: f64, period: Period) -> BudgetScope {
        BudgetScope {
            owner: Owner::Key,
            name: name.into(),
            budget: Budget { max: nanos(max_usd), period, alerts: vec![0.5, 1.0] },
        }
    }

    #[test]
    fn periods_parse_and_place_their_windows() {
        assert_eq!(Period::parse("monthly"), Ok(Period::Monthly));
        assert_eq!(Period::parse("30d"), Ok(Period::Rolling(Duration::from_secs(30 * 86_400))));
        assert!(Period::parse("10m").is_err_and(|e| e.contains("shorter")));
        assert!(Period::parse("fortnightly").is_err());
        let now = at("2026-11-26T15:00:00Z"); // a Thursday
        let w = Period::Weekly.window(now);
        assert_eq!(format_us(w.from_us), "2026-11-23T00:00:00.000000Z");
        assert_eq!(w.resets_at_us.map(format_us).as_deref(), Some("2026-11-30T00:00:00.000000Z"));
        let m = Period::Monthly.window(now);
        assert_eq!(format_us(m.from_us), "2026-11-01T00:00:00.000000Z");
        assert_eq!(m.resets_at_us.map(format_us).as_deref(), Some("2026-12-01T00:00:00.000000Z"));
        let r = Period::Rolling(Duration::from_secs(24 * 3600)).window(now);
        assert_eq!((r.step_us, r.current_us - r.from_us), (3_600_000_000, 23 * 3_600_000_000));
        assert_eq!(Period::Lifetime.window(now).resets_at_us, None);
    }

    #[test]
    fn reservations_hold_the_line_and_settle_to_the_true_cost() {
        let b = Budgets::default();
        let s = scope("web", 1.0, Period::Daily);
        let now = at("2026-11-24T10:00:00Z");
        let r1 = b.reserve(std::slice::from_ref(&s), nanos(0.6), now);
        assert!(r1.is_ok());
        let refused = b.reserve(std::slice::from_ref(&s), nanos(0.5), now).err();
        assert_eq!(refused.as_ref().map(|r| r.reserved), Some(nanos(0.6)), "0.6 held + 0.5 > 1");
        let e = refused.map(|r| r.error(402));
        assert_eq!(e.as_ref().map(GatewayError::http_status), Some(402));
        assert!(e.is_some_and(|e| e.message.contains("max_tokens") && e.code.as_deref() == Some("budget_exceeded")));
        let mut r1 = r1.unwrap_or_else(|r| panic!("{r:?}"));
        let alerts = r1.settle(nanos(0.55), now);
        assert_eq!(alerts.iter().map(|c| c.threshold).collect::<Vec<_>>(), [0.5], "crossed half");
        assert_eq!(b.spent(&s, now), (nanos(0.55), 0));
        assert!(b.reserve(std::slice::from_ref(&s), nanos(0.45), now).is_ok(), "exactly what is left");
        // A dropped reservation (a failed request) gives its hold back.
        assert_eq!(b.spent(&s, now), (nanos(0.55), 0));
        // The next day starts afresh.
        assert!(b.reserve(std::slice::from_ref(&s), nanos(0.9), at("2026-11-25T00:00:01Z")).is_ok());
    }

    #[test]
    fn a_spent_budget_refuses_even_free_requests_and_alerts_once() {
        let b = Budgets::default();
        let s = scope("web", 1.0, Period::Lifetime);
        let now = at("2026-11-24T10:00:00Z");
        let crossed = b.record(&s, nanos(1.2), now);
        assert_eq!(crossed.len(), 2, "half and all, at once");
        assert!(b.record(&s, 1, now).is_empty(), "each fires once");
        let r = b.reserve(std::slice::from_ref(&s), 0, now).err().map(|r| r.error(402).message);
        assert!(r.is_some_and(|m| m.contains("used up")));
    }

    #[test]
    fn one_scope_refusing_holds_nothing_in_the_others() {
        let b = Budgets::default();
        let key = scope("k", 10.0, Period::Monthly);
        let team = BudgetScope { owner: Owner::Team, ..scope("t", 1.0, Period::Monthly) };
        let now = at("2026-11-24T10:00:00Z");
        assert!(b.reserve(&[key.clone(), team.clone()], nanos(2.0), now).is_err());
        assert_eq!(b.spent(&key, now), (0, 0));
    }

    #[test]
    fn rolling_windows_forget_old_steps() {
        let b = Budgets::default();
        let s = scope("k", 1.0, Period::Rolling(Duration::from_secs(24 * 3600)));
        let t0 = at("2026-11-24T10:30:00Z");
        b.seed(&s.id(), &[(s.budget.period.window(t0).current_us, nanos(0.9))]);
        assert!(b.reserve(std::slice::from_ref(&s), nanos(0.2), t0).is_err());
        // 23 hours later the step is still in the window; at 24 it has left.
        assert!(b.reserve(std::slice::from_ref(&s), nanos(0.2), t0 + 23 * 3_600_000_000).is_err());
        assert!(b.reserve(std::slice::from_ref(&s), nanos(0.2), t0 + 24 * 3_600_000_000).is_ok());
    }
}
