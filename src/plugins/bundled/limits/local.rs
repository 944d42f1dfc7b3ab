//! The `local` policy's counters: this node's memory, shared by every request task.
//!
//! The table is split into shards, each behind its own mutex held for one map operation, so
//! requests contend only when their counters hash to the same shard. A counter is keyed by a
//! 128-bit hash of (plugin scope, identifier) with two seeds drawn at start, the period and
//! the window start: looking one up allocates nothing, and guessing a collision would need
//! the seeds. Counters of past windows are never read again; each shard drops them (at most
//! once a second) when it next creates a counter. A shard holding [`SHARD_CAPACITY`] live
//! counters forgets the ones closest to expiry first, as Kong's fixed-size shared dictionary
//! forgets its least recently used keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

use foldhash::fast::FixedState;

use super::Period;

/// Number of shards (a power of two).
const SHARDS: usize = 64;

/// Live counters one shard keeps at most.
const SHARD_CAPACITY: usize = 16 * 1024;

/// A counter's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalKey {
    id: u128,
    period: u8,
    start: i64,
}

struct Slot {
    value: i64,
    expires: i64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<LocalKey, Slot, FixedState>,
    next_sweep: i64,
}

/// In-memory counters (see the module docs).
pub struct LocalCounters {
    shards: Box<[Mutex<Shard>]>,
    seeds: [u64; 2],
}

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters::new()
    }
}

impl std::fmt::Debug for LocalCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounters")
            .field("len", &self.len())
            .finish()
    }
}

impl LocalCounters {
    /// Empty counters with fresh random seeds.
    pub fn new() -> LocalCounters {
        LocalCounters {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            seeds: [
                RandomState::new().hash_one(0u8),
                RandomState::new().hash_one(1u8),
            ],
        }
    }

    /// The key of `identifier`'s counter for `period`'s window starting at `start`, within
    /// `scope` (a plugin's route, service and limit name).
    pub fn key(&self, scope: &str, identifier: &str, period: Period, start: i64) -> LocalKey {
        let a = FixedState::with_seed(self.seeds[0]).hash_one((scope, identifier));
        let b = FixedState::with_seed(self.seeds[1]).hash_one((scope, identifier));
        LocalKey {
            id: (u128::from(a) << 64) | u128::from(b),
            period: period as u8,
            start,
        }
    }

    fn shard(&self, key: &LocalKey) -> MutexGuard<'_, Shard> {
        let i = (key.id as usize ^ key.period as usize) & (SHARDS - 1);
        // A panic while holding a shard cannot leave a map half-updated in a way that
        // matters for counting: keep using it.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counter's value (0 when it does not exist).
    pub fn get(&self, key: &LocalKey) -> i64 {
        self.shard(key).map.get(key).map_or(0, |s| s.value)
    }

    /// Adds `value` to the counter, creating it to live until `expires` (Unix seconds); `now`
    /// drives the eviction of expired counters.
    pub fn add(&self, key: LocalKey, value: i64, expires: i64, now: i64) {
        let mut shard = self.shard(&key);
        if let Some(slot) = shard.map.get_mut(&key) {
            slot.value += value;
            return;
        }
        if now >= shard.next_sweep {
            shard.map.retain(|_, s| s.expires > now);
            shard.next_sweep = now + 1;
        }
        if shard.map.len() >= SHARD_CAPACITY {
            let mut by_expiry: Vec<(i64, LocalKey)> =
                shard.map.iter().map(|(k, s)| (s.expires, *k)).collect();
            by_expiry.sort_unstable_by_key(|(e, _)| *e);
            for (_, k) in by_expiry.iter().take(SHARD_CAPACITY / 8) {
                shard.map.remove(k);
            }
        }
        shard.map.insert(key, Slot { value, expires });
    }

    /// How many counters are held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .map
                    .len()
            })
            .sum()
    }

    /// Whether no counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_separate_per_scope_identifier_period_and_window() {
        let c = LocalCounters::new();
        let k = c.key("r:s", "1.2.3.4", Period::Minute, 60);
        c.add(k, 1, 120, 61);
        c.add(k, 2, 120, 62);
        assert_eq!(c.get(&k), 3);
        for other in [
            c.key("r:t", "1.2.3.4", Period::Minute, 60),
            c.key("r:s", "1.2.3.5", Period::Minute, 60),
            c.key("r:s", "1.2.3.4", Period::Hour, 60),
            c.key("r:s", "1.2.3.4", Period::Minute, 120),
            c.key("r:s1", ".2.3.4", Period::Minute, 60),
        ] {
            assert_eq!(c.get(&other), 0);
        }
    }

    #[test]
    fn expired_counters_are_evicted_when_a_shard_next_creates_one() {
        let c = LocalCounters::new();
        for i in 0..1000 {
            let k = c.key("s", &i.to_string(), Period::Second, 10);
            c.add(k, 1, 11, 10);
        }
        assert_eq!(c.len(), 1000);
        for i in 0..1000 {
            let k = c.key("s", &i.to_string(), Period::Second, 20);
            c.add(k, 1, 21, 20);
        }
        assert_eq!(c.len(), 1000, "the second-10 counters are gone");
    }
}
