//! Budget books shared by every instance, in Redis.
//!
//! Per budget scope: a hash of spend by step start (billionths of a dollar; `s` marks a scope
//! whose earlier spend was loaded from the request log), a sorted set of the reservations of
//! requests in flight (`id:amount`, scored by a lease's end, so an instance that dies mid-request
//! holds nothing for long), and a hash of which alert fractions have fired. Reserving checks and
//! holds under every scope at once; settling swaps a reservation for the true cost and reports
//! the alerts it crossed, once across all instances.

use redis::Script;

use crate::{SharedCounters, StoreError};

pub(crate) const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local member = ARGV[3]
local amount = tonumber(ARGV[4])
local n = #KEYS / 2
local function spent(key, from)
  local total = 0
  local h = redis.call('HGETALL', key)
  for j = 1, #h, 2 do
    local at = tonumber(h[j])
    if at ~= nil then
      if at < from then redis.call('HDEL', key, h[j]) else total = total + tonumber(h[j + 1]) end
    end
  end
  return total
end
for i = 1, n do
  local max, from = tonumber(ARGV[3 + i * 2]), tonumber(ARGV[4 + i * 2])
  local s = spent(KEYS[i], from)
  redis.call('ZREMRANGEBYSCORE', KEYS[n + i], '-inf', now)
  local held = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[n + i], 0, -1)) do
    held = held + (tonumber(string.match(m, ':(%-?%d+)$')) or 0)
  end
  if s >= max or s + held + amount > max then return {i, s, held} end
end
for i = 1, n do
  redis.call('ZADD', KEYS[n + i], now + lease, member)
  redis.call('PEXPIRE', KEYS[n + i], lease + 60000)
end
return {0, 0, 0}
";

pub(crate) const SETTLE: &str = r"
local member = ARGV[1]
local cost = tonumber(ARGV[2])
local n = #KEYS / 3
local a = 3
local out = {}
for i = 1, n do
  local step, from, ttl, max, alerts = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 5
  if member ~= '' then redis.call('ZREM', KEYS[n + i], member) end
  redis.call('HINCRBY', KEYS[i], step, cost)
  if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
  local total = 0
  local h = redis.call('HGETALL', KEYS[i])
  for j = 1, #h, 2 do
    local at = tonumber(h[j])
    if at ~= nil and at >= from then total = total + tonumber(h[j + 1]) end
  end
  local crossed = 0
  for k = 1, alerts do
    local over = total >= tonumber(ARGV[a]) * max
    a = a + 1
    local was = redis.call('HGET', KEYS[2 * n + i], k) == '1'
    if over and not was then crossed = crossed + 2 ^ (k - 1) end
    redis.call('HSET', KEYS[2 * n + i], k, over and '1' or '0')
  end
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2 * n + i], ttl) end
  out[#out + 1] = total
  out[#out + 1] = crossed
end
return out
";

pub(crate) const SEED: &str = r"
if redis.call('HEXISTS', KEYS[1], 's') == 1 then return 0 end
redis.call('HSET', KEYS[1], 's', 1)
for j = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[j], ARGV[j + 1]) end
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
";

pub(crate) fn scripts() -> [Script; 3] {
    [Script::new(RESERVE), Script::new(SETTLE), Script::new(SEED)]
}

fn spend_key(scope: &str) -> String {
    format!("switchyard:budget:{scope}")
}

fn held_key(scope: &str) -> String {
    format!("switchyard:budget:{scope}:held")
}

fn fired_key(scope: &str) -> String {
    format!("switchyard:budget:{scope}:alerts")
}

/// One scope as the scripts see it: where its window starts, how long its books live, its
/// limit and alert fractions.
#[derive(Debug, Clone)]
pub struct BudgetBooks {
    pub id: String,
    pub from_us: i64,
    /// Where new spend goes: the start of the current step.
    pub step_us: i64,
    /// How long the books outlive their last spend (0: for ever).
    pub ttl_ms: u64,
    pub max: i64,
    pub alerts: Vec<f64>,
}

/// What the reservation script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    Held,
    /// Scope `index` refused: its spend and what requests in flight hold there.
    Refused {
        index: usize,
        spent: i64,
        reserved: i64,
    },
}

/// After settling: each scope's spend in its window, and which alert fractions (by index) the
/// settlement crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub spent: i64,
    pub crossed: Vec<usize>,
}

impl SharedCounters {
    pub async fn budget_reserve(
        &self,
        scopes: &[BudgetBooks],
        amount: i64,
        now_ms: u64,
        lease_ms: u64,
        request_id: &str,
    ) -> Result<Hold, StoreError> {
        let mut inv = self.budget_reserve.prepare_invoke();
        for s in scopes {
            inv.key(spend_key(&s.id));
        }
        for s in scopes {
            inv.key(held_key(&s.id));
        }
        inv.arg(now_ms).arg(lease_ms).arg(format!("{request_id}:{amount}")).arg(amount);
        for s in scopes {
            inv.arg(s.max).arg(s.from_us);
        }
        let mut conn = self.conn.clone();
        let v: Vec<i64> = inv.invoke_async(&mut conn).await.map_err(StoreError::Redis)?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Ok(match at(0) {
            0 => Hold::Held,
            index => Hold::Refused { index: usize::try_from(index - 1).unwrap_or(0), spent: at(1), reserved: at(2) },
        })
    }

    /// Adds `cost` to each scope's current step, giving back the reservation `request_id` of
    /// `amount` (none if `request_id` is empty: spend counted while Redis was away).
    pub async fn budget_settle(
        &self,
        scopes: &[BudgetBooks],
        request_id: &str,
        amount: i64,
        cost: i64,
    ) -> Result<Vec<Settled>, StoreError> {
        let mut inv = self.budget_settle.prepare_invoke();
        for s in scopes {
            inv.key(spend_key(&s.id));
        }
        for s in scopes {
            inv.key(held_key(&s.id));
        }
        for s in scopes {
            inv.key(fired_key(&s.id));
        }
        let member = if request_id.is_empty() { String::new() } else { format!("{request_id}:{amount}") };
        inv.arg(member).arg(cost);
        for s in scopes {
            inv.arg(s.step_us).arg(s.from_us).arg(s.ttl_ms).arg(s.max).arg(s.alerts.len());
            for a in &s.alerts {
                inv.arg(*a);
            }
        }
        let mut conn = self.conn.clone();
        let v: Vec<i64> = inv.invoke_async(&mut conn).await.map_err(StoreError::Redis)?;
        Ok(v.chunks(2)
            .map(|c| {
                let bits = c.get(1).copied().unwrap_or(0);
                Settled { spent: c[0], crossed: (0..63).filter(|k| bits & (1 << k) != 0).map(|k| k as usize).collect() }
            })
            .collect())
    }

    /// Gives back a reservation of a request that ended without a cost.
    pub async fn budget_release(&self, scopes: &[String], request_id: &str, amount: i64) -> Result<(), StoreError> {
        let member = format!("{request_id}:{amount}");
        let mut pipe = redis::pipe();
        for s in scopes {
            pipe.zrem(held_key(s), &member).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(StoreError::Redis)
    }

    /// A scope's spend in its window (from `from_us`) and what requests in flight hold, for the
    /// admin API.
    pub async fn budget_state(&self, scope: &str, from_us: i64, now_ms: u64) -> Result<(i64, i64), StoreError> {
        let mut conn = self.conn.clone();
        let (steps, held): (Vec<(String, i64)>, Vec<String>) = redis::pipe()
            .hgetall(spend_key(scope))
            .zrangebyscore(held_key(scope), now_ms, "+inf")
            .query_async(&mut conn)
            .await
            .map_err(StoreError::Redis)?;
        let spent =
            steps.iter().filter(|(at, _)| at.parse::<i64>().is_ok_and(|at| at >= from_us)).map(|(_, n)| n).sum();
        let held = held.iter().filter_map(|m| m.rsplit(':').next()?.parse::<i64>().ok()).sum();
        Ok((spent, held))
    }

    /// Whether a scope's books hold the request log's earlier spend yet.
    pub async fn budget_seeded(&self, scope: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("HEXISTS").arg(spend_key(scope)).arg("s").query_async(&mut conn).await.map_err(StoreError::Redis)
    }

    /// Loads earlier spend (by step start) into a scope's books, unless another instance did
    /// first. Returns whether this call did.
    pub async fn budget_seed(&self, scope: &str, steps: &[(i64, i64)], ttl_ms: u64) -> Result<bool, StoreError> {
        let mut inv = self.budget_seed.prepare_invoke();
        inv.key(spend_key(scope)).arg(ttl_ms);
        for (at, n) in steps {
            inv.arg(*at).arg(*n);
        }
        let mut conn = self.conn.clone();
        inv.invoke_async::<i64>(&mut conn).await.map(|v| v == 1).map_err(StoreError::Redis)
    }
}
