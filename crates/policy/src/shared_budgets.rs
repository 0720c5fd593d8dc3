//! Budgets shared by every instance through Redis, and what a request holds under them
//! whichever books keep it.
//!
//! Reserving is one round trip (the script in `switchyard-store`'s `spend.rs`); settling is sent
//! without waiting and reports the alerts it crossed. When Redis fails or is slow the instance
//! leaves it alone for a while, as rate limits do, and either counts on its own ledger (which
//! holds the log's spend from its start plus all it has settled since) or refuses. Spend
//! settled while Redis is away waits in memory, one sum per budget and step, and is added to
//! Redis when it answers again: none is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchyard_store::{BudgetBooks, Hold, SharedCounters, Store};
use switchyard_types::{ErrorKind, GatewayError};

use crate::OnRedisOutage;
use crate::budgets::{BudgetRefused, BudgetScope, Budgets, Crossing, Nanos, Period, Reservation, Window, nanos};
use crate::limits::now_ms;

const REDIS_WAIT: Duration = Duration::from_millis(200);
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(5);
const HOLD_LEASE_MS: u64 = 15 * 60 * 1000;
/// Alerts waiting for the webhook; past this they are dropped (and logged).
const ALERT_QUEUE: usize = 1024;

/// Where crossed alert fractions go (the gateway's webhook sender).
#[derive(Debug, Clone)]
pub struct Alerts(Option<tokio::sync::mpsc::Sender<Crossing>>);

impl Alerts {
    pub fn channel() -> (Alerts, tokio::sync::mpsc::Receiver<Crossing>) {
        let (tx, rx) = tokio::sync::mpsc::channel(ALERT_QUEUE);
        (Alerts(Some(tx)), rx)
    }

    /// Nowhere to send alerts (no webhook configured).
    pub fn off() -> Alerts {
        Alerts(None)
    }

    pub fn send(&self, crossings: Vec<Crossing>) {
        let Some(tx) = &self.0 else { return };
        for c in crossings {
            if tx.try_send(c).is_err() {
                tracing::warn!("the budget alert queue is full: an alert was dropped");
            }
        }
    }
}

/// Why a request may not spend.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetRefusal {
    Over(BudgetRefused),
    /// Redis is away and budgets are configured to fail closed.
    Unavailable,
}

impl BudgetRefusal {
    pub fn error(&self, status: u16) -> GatewayError {
        match self {
            BudgetRefusal::Over(r) => r.error(status),
            BudgetRefusal::Unavailable => GatewayError::new(
                ErrorKind::Unavailable,
                "Budgets cannot be checked right now (their shared store is unreachable); try again shortly.",
            )
            .with_code("budgets_unavailable")
            .with_retry_after(PAUSE_AFTER_FAILURE),
        }
    }
}

/// What a request holds under its budgets until it ends.
#[derive(Debug, Default)]
pub enum BudgetHold {
    #[default]
    None,
    Local {
        reservation: Reservation,
        /// Set when this stands in for Redis: the spend must reach Redis later.
        shared: Option<Arc<SharedBudgets>>,
    },
    Shared(SharedHold),
}

impl BudgetHold {
    /// The request cost `cost`: its reservation gives way to it, and alerts go out.
    pub fn settle(&mut self, cost: Nanos, alerts: &Alerts) {
        let now = switchyard_store::time::now_us();
        match self {
            BudgetHold::None => {}
            BudgetHold::Local { reservation, shared } => {
                let scopes = reservation.scopes();
                alerts.send(reservation.settle(cost, now));
                if let Some(shared) = shared {
                    for s in scopes {
                        shared.defer(&s, s.budget.period.window(now).current_us, cost);
                    }
                }
            }
            BudgetHold::Shared(h) => h.settle(cost, alerts.clone()),
        }
    }
}

#[derive(Debug)]
pub struct SharedHold {
    budgets: Arc<SharedBudgets>,
    scopes: Vec<BudgetScope>,
    id: String,
    amount: Nanos,
    done: bool,
}

impl SharedHold {
    fn settle(&mut self, cost: Nanos, alerts: Alerts) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let now = switchyard_store::time::now_us();
        for s in &self.scopes {
            // This instance's ledger follows, to stand in during an outage.
            self.budgets.local.record(s, cost, now);
        }
        let (budgets, scopes, id, amount) = (self.budgets.clone(), self.scopes.clone(), self.id.clone(), self.amount);
        spawn(async move {
            let books: Vec<BudgetBooks> = scopes.iter().map(|s| books(s, now)).collect();
            let settled =
                tokio::time::timeout(REDIS_WAIT * 5, budgets.counters.budget_settle(&books, &id, amount, cost)).await;
            match settled {
                Ok(Ok(results)) => {
                    for (scope, r) in scopes.iter().zip(results) {
                        let w = scope.budget.period.window(now);
                        alerts.send(r.crossed.iter().filter_map(|&k| crossing(scope, k, r.spent, &w)).collect());
                    }
                }
                _ => {
                    budgets.pause("a settlement failed");
                    for s in &scopes {
                        budgets.defer(s, s.budget.period.window(now).current_us, cost);
                    }
                }
            }
        });
    }
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let (budgets, ids, id, amount) = (
            self.budgets.clone(),
            self.scopes.iter().map(BudgetScope::id).collect::<Vec<_>>(),
            self.id.clone(),
            self.amount,
        );
        spawn(async move {
            // A lost release only holds the amount until the lease ends.
            let _ = tokio::time::timeout(REDIS_WAIT * 5, budgets.counters.budget_release(&ids, &id, amount)).await;
        });
    }
}

fn spawn(f: impl Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(f);
    }
}

fn crossing(scope: &BudgetScope, index: usize, spent: Nanos, w: &Window) -> Option<Crossing> {
    Some(Crossing {
        owner: scope.owner,
        name: scope.name.clone(),
        threshold: *scope.budget.alerts.get(index)?,
        spent,
        max: scope.budget.max,
        period: scope.budget.period,
        resets_at_us: w.resets_at_us,
    })
}

/// How long a scope's books live in Redis after their last spend: long enough to cover the
/// window they count.
fn ttl_ms(period: Period, w: &Window) -> u64 {
    let us = match period {
        Period::Lifetime => return 0,
        Period::Rolling(_) => w.current_us - w.from_us + 2 * w.step_us,
        _ => 2 * w.step_us,
    };
    u64::try_from(us / 1000).unwrap_or(0)
}

fn books(s: &BudgetScope, now_us: i64) -> BudgetBooks {
    let w = s.budget.period.window(now_us);
    BudgetBooks {
        id: s.id(),
        from_us: w.from_us,
        step_us: w.current_us,
        ttl_ms: ttl_ms(s.budget.period, &w),
        max: s.budget.max,
        alerts: s.budget.alerts.clone(),
    }
}

#[derive(Debug)]
pub struct SharedBudgets {
    counters: SharedCounters,
    local: Arc<Budgets>,
    on_outage: OnRedisOutage,
    paused_until: AtomicU64,
    reported: AtomicBool,
    /// Spend Redis has not seen yet, by scope and step start.
    pending: Mutex<HashMap<(String, i64), (BudgetScope, Nanos)>>,
}

impl SharedBudgets {
    pub fn new(counters: SharedCounters, local: Arc<Budgets>, on_outage: OnRedisOutage) -> SharedBudgets {
        SharedBudgets {
            counters,
            local,
            on_outage,
            paused_until: AtomicU64::new(0),
            reported: AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
        }
    }

    pub fn degraded(&self) -> bool {
        now_ms() < self.paused_until.load(Ordering::Relaxed)
    }

    fn pause(&self, why: &str) {
        self.paused_until.store(now_ms() + PAUSE_AFTER_FAILURE.as_millis() as u64, Ordering::Relaxed);
        if !self.reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = why, on_outage = ?self.on_outage, "redis is unreachable: budgets fall back");
        }
    }

    fn defer(&self, scope: &BudgetScope, step_us: i64, cost: Nanos) {
        if cost == 0 {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.entry((scope.id(), step_us)).or_insert_with(|| (scope.clone(), 0)).1 += cost;
    }

    /// Spend waiting for Redis, in dollars billionths.
    pub fn pending(&self) -> Nanos {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).values().map(|(_, n)| n).sum()
    }

    pub async fn reserve(self: &Arc<Self>, scopes: &[BudgetScope], amount: Nanos) -> Result<BudgetHold, BudgetRefusal> {
        if scopes.is_empty() {
            return Ok(BudgetHold::None);
        }
        let now = switchyard_store::time::now_us();
        if self.degraded() {
            return self.fallback(scopes, amount, now);
        }
        let books: Vec<BudgetBooks> = scopes.iter().map(|s| books(s, now)).collect();
        let id = format!("{:032x}", fastrand::u128(..));
        let held = tokio::time::timeout(
            REDIS_WAIT,
            self.counters.budget_reserve(&books, amount, now_ms(), HOLD_LEASE_MS, &id),
        )
        .await;
        match held {
            Ok(Ok(Hold::Held)) => {
                if self.reported.swap(false, Ordering::Relaxed) {
                    tracing::info!("redis is back: budgets are shared again");
                }
                Ok(BudgetHold::Shared(SharedHold {
                    budgets: self.clone(),
                    scopes: scopes.to_vec(),
                    id,
                    amount,
                    done: false,
                }))
            }
            Ok(Ok(Hold::Refused { index, spent, reserved })) => {
                let scope = scopes.get(index).unwrap_or(&scopes[0]).clone();
                let resets_at_us = scope.budget.period.window(now).resets_at_us;
                Err(BudgetRefusal::Over(BudgetRefused { scope, spent, reserved, asked: amount, resets_at_us }))
            }
            Ok(Err(e)) => {
                self.pause(&e.to_string());
                self.fallback(scopes, amount, now)
            }
            Err(_) => {
                self.pause("no answer in time");
                self.fallback(scopes, amount, now)
            }
        }
    }

    fn fallback(
        self: &Arc<Self>,
        scopes: &[BudgetScope],
        amount: Nanos,
        now: i64,
    ) -> Result<BudgetHold, BudgetRefusal> {
        match self.on_outage {
            OnRedisOutage::Local => match self.local.reserve(scopes, amount, now) {
                Ok(reservation) => Ok(BudgetHold::Local { reservation, shared: Some(self.clone()) }),
                Err(r) => Err(BudgetRefusal::Over(r)),
            },
            OnRedisOutage::Reject => Err(BudgetRefusal::Unavailable),
        }
    }

    /// Adds the spend Redis missed, once it answers. Returns how much is still waiting.
    pub async fn flush(&self) -> Nanos {
        if self.degraded() {
            return self.pending();
        }
        let batch: Vec<((String, i64), (BudgetScope, Nanos))> =
            self.pending.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        for ((_, step), (scope, cost)) in batch {
            let now = switchyard_store::time::now_us();
            let b = BudgetBooks { step_us: step, ..books(&scope, now) };
            let done = tokio::time::timeout(REDIS_WAIT * 5, self.counters.budget_settle(&[b], "", 0, cost)).await;
            if !matches!(done, Ok(Ok(_))) {
                self.pause("adding deferred spend failed");
                self.defer(&scope, step, cost);
            }
        }
        self.pending()
    }

    /// A scope's spend in its window and what requests in flight hold, from Redis; this
    /// instance's ledger while Redis is away.
    pub async fn spent(&self, scope: &BudgetScope) -> (Nanos, Nanos) {
        let now = switchyard_store::time::now_us();
        if !self.degraded() {
            let w = scope.budget.period.window(now);
            let id = scope.id();
            let read = tokio::time::timeout(REDIS_WAIT * 5, self.counters.budget_state(&id, w.from_us, now_ms()));
            if let Ok(Ok(v)) = read.await {
                return v;
            }
        }
        self.local.spent(scope, now)
    }

    /// Loads a scope's spend from the request log into Redis, unless another instance did.
    pub async fn seed(&self, store: &Store, scope: &BudgetScope) -> Result<(), switchyard_store::StoreError> {
        if self.counters.budget_seeded(&scope.id()).await? {
            return Ok(());
        }
        let now = switchyard_store::time::now_us();
        let w = scope.budget.period.window(now);
        let steps = spend_steps(store, scope, &w, now).await?;
        self.counters.budget_seed(&scope.id(), &steps, ttl_ms(scope.budget.period, &w)).await?;
        Ok(())
    }
}

/// A scope's spend in the log within its window, received before `until_us`, by step.
pub async fn spend_steps(
    store: &Store,
    scope: &BudgetScope,
    w: &Window,
    until_us: i64,
) -> Result<Vec<(i64, Nanos)>, switchyard_store::StoreError> {
    let rows = store.spend_steps(scope.owner.as_str(), &scope.name, w.from_us, until_us, w.step_us).await?;
    Ok(rows.into_iter().map(|(at, usd)| (at, nanos(usd))).collect())
}

impl Budgets {
    /// Loads a scope's spend before `started_us` (this instance's start) from the request log,
    /// once.
    pub async fn seed_from(
        &self,
        store: &Store,
        scope: &BudgetScope,
        started_us: i64,
    ) -> Result<(), switchyard_store::StoreError> {
        if self.is_seeded(&scope.id()) {
            return Ok(());
        }
        let w = scope.budget.period.window(started_us);
        let steps = spend_steps(store, scope, &w, started_us).await?;
        self.seed(&scope.id(), &steps);
        self.mark_seeded(&scope.id());
        Ok(())
    }
}
