//! Rate-limit counters shared by every instance, in Redis.
//!
//! One Lua script admits a request under all of its scopes at once: it rolls each scope's minute
//! windows, checks every limit, and only then counts the request everywhere, so a refusal by one
//! scope charges none (and two instances cannot both take the last slot). Concurrency is a sorted
//! set of request ids scored by a lease's end, so a slot whose release was lost (an instance
//! that died) frees itself when the lease runs out.

use redis::aio::ConnectionManager;
use redis::{Client, Script};

use crate::StoreError;

const ADMIT: &str = r"
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local id = ARGV[4]
local n = #KEYS / 2
local minute = math.floor(now / 60000)
local into = (now % 60000) / 60000
local state = {}
for i = 1, n do
  local v = redis.call('HMGET', KEYS[i], 'm', 'rc', 'rp', 'tc', 'tp')
  local m = tonumber(v[1]) or minute
  local rc, rp = tonumber(v[2]) or 0, tonumber(v[3]) or 0
  local tc, tp = tonumber(v[4]) or 0, tonumber(v[5]) or 0
  if m ~= minute then
    if m == minute - 1 then rp, tp = rc, tc else rp, tp = 0, 0 end
    rc, tc = 0, 0
  end
  local base = 5 + (i - 1) * 3
  local rpm, tpm, conc = tonumber(ARGV[base]), tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[n + i], '-inf', now)
    if redis.call('ZCARD', KEYS[n + i]) >= conc then return {i, 3, rc, rp, tc, tp} end
  end
  if rpm > 0 and rp * (1 - into) + rc + 1 > rpm then return {i, 1, rc, rp, tc, tp} end
  if tpm > 0 and tp * (1 - into) + tc + tokens > tpm then return {i, 2, rc, rp, tc, tp} end
  state[i] = {rc, rp, tc, tp, rpm, conc, tpm}
end
local remaining, remaining_tokens = -1, -1
for i = 1, n do
  local s = state[i]
  redis.call('HSET', KEYS[i], 'm', minute, 'rc', s[1] + 1, 'rp', s[2], 'tc', s[3] + tokens, 'tp', s[4])
  redis.call('PEXPIRE', KEYS[i], 180000)
  if s[6] > 0 then
    redis.call('ZADD', KEYS[n + i], now + lease, id)
    redis.call('PEXPIRE', KEYS[n + i], lease + 60000)
  end
  if s[5] > 0 then
    local r = math.floor(s[5] - (s[2] * (1 - into) + s[1] + 1))
    if remaining < 0 or r < remaining then remaining = r end
  end
  if s[7] > 0 then
    local r = math.max(0, math.floor(s[7] - (s[4] * (1 - into) + s[3] + tokens)))
    if remaining_tokens < 0 or r < remaining_tokens then remaining_tokens = r end
  end
end
return {0, 0, remaining, remaining_tokens, 0, 0}
";

/// Corrects the token estimate to the real usage in each scope's current minute.
const SETTLE: &str = r"
local minute = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
for i = 1, #KEYS do
  if tonumber(redis.call('HGET', KEYS[i], 'm')) == minute then
    local tc = tonumber(redis.call('HGET', KEYS[i], 'tc')) or 0
    redis.call('HSET', KEYS[i], 'tc', math.max(0, tc + delta))
  end
end
return 0
";

/// One scope's limits as the script reads them; 0 is unlimited.
#[derive(Debug, Clone)]
pub struct ScopeLimits {
    pub id: String,
    pub rpm: u64,
    pub tpm: u64,
    pub concurrency: u64,
}

/// What the script decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Counted in every scope; what is left under the tightest `rpm` and `tpm`.
    Admitted { remaining_requests: Option<u64>, remaining_tokens: Option<u64> },
    /// Scope `index` refused: `limit` is 1 (rpm), 2 (tpm) or 3 (concurrency), with that scope's
    /// window counts so the caller can say when to retry.
    Refused { index: usize, limit: u8, requests: (u64, u64), tokens: (u64, u64) },
}

/// The connection to Redis and the scripts. Cheap to clone.
#[derive(Clone)]
pub struct SharedCounters {
    pub(crate) conn: ConnectionManager,
    admit: Script,
    settle: Script,
    pub(crate) budget_reserve: Script,
    pub(crate) budget_settle: Script,
    pub(crate) budget_seed: Script,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedCounters")
    }
}

fn hash_key(scope: &str) -> String {
    format!("switchyard:limits:{scope}")
}

fn slots_key(scope: &str) -> String {
    format!("switchyard:limits:{scope}:in-flight")
}

impl SharedCounters {
    /// Connects lazily: a Redis that is down at start is found out by the first request, which
    /// then falls back as configured.
    pub fn connect(url: &str, timeout: std::time::Duration) -> Result<SharedCounters, StoreError> {
        let client = Client::open(url).map_err(|_| StoreError::Url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(StoreError::Redis)?;
        let [budget_reserve, budget_settle, budget_seed] = crate::spend::scripts();
        Ok(SharedCounters {
            conn,
            admit: Script::new(ADMIT),
            settle: Script::new(SETTLE),
            budget_reserve,
            budget_settle,
            budget_seed,
        })
    }

    pub async fn admit(
        &self,
        scopes: &[ScopeLimits],
        tokens: u64,
        now_ms: u64,
        lease_ms: u64,
        request_id: &str,
    ) -> Result<Verdict, StoreError> {
        let mut inv = self.admit.prepare_invoke();
        for s in scopes {
            inv.key(hash_key(&s.id));
        }
        for s in scopes {
            inv.key(slots_key(&s.id));
        }
        inv.arg(now_ms).arg(tokens).arg(lease_ms).arg(request_id);
        for s in scopes {
            inv.arg(s.rpm).arg(s.tpm).arg(s.concurrency);
        }
        let mut conn = self.conn.clone();
        let v: Vec<i64> = inv.invoke_async(&mut conn).await.map_err(StoreError::Redis)?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        let count = |i: usize| u64::try_from(at(i)).unwrap_or(0);
        Ok(match at(0) {
            0 => Verdict::Admitted {
                remaining_requests: u64::try_from(at(2)).ok(),
                remaining_tokens: u64::try_from(at(3)).ok(),
            },
            index => Verdict::Refused {
                index: usize::try_from(index - 1).unwrap_or(0),
                limit: u8::try_from(at(1)).unwrap_or(1),
                requests: (count(2), count(3)),
                tokens: (count(4), count(5)),
            },
        })
    }

    /// Replaces the token estimate of minute `minute` with `delta` more (or fewer) tokens.
    pub async fn settle(&self, scopes: &[String], minute: u64, delta: i64) -> Result<(), StoreError> {
        let mut inv = self.settle.prepare_invoke();
        for s in scopes {
            inv.key(hash_key(s));
        }
        inv.arg(minute).arg(delta);
        let mut conn = self.conn.clone();
        inv.invoke_async::<i64>(&mut conn).await.map(|_| ()).map_err(StoreError::Redis)
    }

    /// Frees the request's concurrency slots.
    pub async fn release(&self, scopes: &[String], request_id: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for s in scopes {
            pipe.zrem(slots_key(s), request_id).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(StoreError::Redis)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(StoreError::Redis)
    }
}
