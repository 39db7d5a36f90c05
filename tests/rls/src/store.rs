//! The counters, all in Redis: one Lua script per call, so a call is atomic across every
//! replica of the service (Redis runs a script alone) and the service keeps no count itself.
//!
//! An admission call is all or nothing: if any of its charges would take a counter over its
//! limit (a charge of 0, a check, needs the counter below its limit), nothing of the call is
//! counted and the over-limit charges are named. A settlement call (the settle filter's, after
//! the answer) counts every charge and refuses none. Refunds (negative hits) lower a counter,
//! never below 0, and never create one.

use crate::limits::Charge;
use redis::aio::ConnectionManager;
use std::time::Duration;

const SCRIPT: &str = r"
local settle = ARGV[1] == 'settle'
local value = {}
local over = {}
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 4
  local hits = tonumber(ARGV[at])
  local limit = tonumber(ARGV[at + 1])
  if value[key] == nil then value[key] = tonumber(redis.call('GET', key) or '0') end
  local current = value[key]
  if ARGV[at + 2] == '1' then
    value[key] = math.max(0, current - hits)
  else
    if not settle and limit >= 0 and (current + hits > limit or (hits == 0 and current >= limit)) then
      over[#over + 1] = i
    end
    value[key] = current + hits
  end
end
local after = {}
if #over > 0 then
  for i, key in ipairs(KEYS) do after[i] = tonumber(redis.call('GET', key) or '0') end
  return {0, over, after}
end
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 4
  if ARGV[at + 2] == '1' then
    if redis.call('EXISTS', key) == 1 then
      local left = redis.call('DECRBY', key, ARGV[at])
      if left < 0 then redis.call('SET', key, '0', 'KEEPTTL') end
    end
  elseif ARGV[at] ~= '0' then
    redis.call('INCRBY', key, ARGV[at])
    if ARGV[at + 3] ~= '0' then redis.call('PEXPIREAT', key, ARGV[at + 3]) end
  end
end
for i, key in ipairs(KEYS) do after[i] = tonumber(redis.call('GET', key) or '0') end
return {1, over, after}
";

/// Counters are kept this long past their window's end (then Redis forgets them).
const KEEP_AFTER_WINDOW_MS: u64 = 60_000;

/// What a call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Counted (true), or refused with nothing counted.
    pub admitted: bool,
    /// Indexes (into the charges) over their limit.
    pub over: Vec<usize>,
    /// Each charge's counter after the call (before it, when refused).
    pub counters: Vec<u64>,
}

pub struct Store {
    redis: ConnectionManager,
    script: redis::Script,
    timeout: Duration,
}

impl Store {
    /// A store on `url` whose every call gives up after `timeout`. It connects on first use
    /// and reconnects by itself, so the service starts and stays up while Redis is away.
    pub fn new(url: &str, timeout: Duration) -> Result<Store, String> {
        let client = redis::Client::open(url).map_err(|e| format!("{url}: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(Store {
            redis,
            script: redis::Script::new(SCRIPT),
            timeout,
        })
    }

    /// Applies `charges` at once; `settle`: count all, refuse none.
    pub async fn apply(&self, charges: &[Charge], settle: bool) -> Result<Outcome, String> {
        if charges.is_empty() {
            return Ok(Outcome {
                admitted: true,
                over: Vec::new(),
                counters: Vec::new(),
            });
        }
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(if settle { "settle" } else { "admit" });
        for c in charges {
            let never_refused = c.limit.shadow || c.refund;
            let limit = if never_refused {
                -1
            } else {
                i64::try_from(c.limit.amount).unwrap_or(i64::MAX)
            };
            let expire = c
                .window_end_ms
                .map_or(0, |end| end.saturating_add(KEEP_AFTER_WINDOW_MS));
            invocation
                .key(&c.counter)
                .arg(i64::try_from(c.hits).unwrap_or(i64::MAX))
                .arg(limit)
                .arg(if c.refund { "1" } else { "0" })
                .arg(expire);
        }
        let mut redis = self.redis.clone();
        let call = invocation.invoke_async::<(i64, Vec<i64>, Vec<i64>)>(&mut redis);
        let (admitted, over, counters) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| format!("Redis did not answer within {:?}", self.timeout))?
            .map_err(|e| format!("Redis: {e}"))?;
        Ok(Outcome {
            admitted: admitted == 1,
            // Lua counts from 1.
            over: over
                .into_iter()
                .filter_map(|i| usize::try_from(i - 1).ok())
                .collect(),
            counters: counters
                .into_iter()
                .map(|v| u64::try_from(v).unwrap_or(0))
                .collect(),
        })
    }
}
