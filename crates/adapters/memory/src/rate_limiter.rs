//! Rolling-window counters in memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_members::ports::{RateDecision, RateLimiter};

use crate::window::{Window, seconds};

/// Hits between two sweeps of keys whose window has emptied.
const SWEEP_EVERY: u32 = 1024;

/// Counts hits per key in a rolling window, by the `now` passed in: a hit is allowed when fewer
/// than `limit` allowed hits of the key fall in the `window_secs` before `now`; a refused hit
/// is not counted. The wait it answers is the time until the oldest counted hit leaves the
/// window (at least 1 s).
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: HashMap<String, (Window, u64)>,
    hits_since_sweep: u32,
}

impl MemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<RateDecision> {
        let mut inner = self.inner();
        inner.hits_since_sweep += 1;
        if inner.hits_since_sweep >= SWEEP_EVERY {
            inner.hits_since_sweep = 0;
            inner.keys.retain(|_, (hits, window)| hits.count(now, seconds(*window)) > 0);
        }
        let window = seconds(window_secs);
        let (hits, kept_for) = inner.keys.entry(key.to_owned()).or_default();
        *kept_for = window_secs;
        if hits.count(now, window) >= usize::try_from(limit).unwrap_or(usize::MAX) {
            let retry_after_secs = hits.retry_after(now, window);
            if hits.is_empty() {
                inner.keys.remove(key);
            }
            return Ok(RateDecision::Limited { retry_after_secs });
        }
        hits.push(now);
        Ok(RateDecision::Allowed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{Duration, TimeZone};

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid") + Duration::seconds(s)
    }

    async fn hit(limiter: &MemoryRateLimiter, key: &str, at: i64) -> RateDecision {
        limiter.hit(key, 3, 60, t(at)).await.expect("counts")
    }

    #[tokio::test]
    async fn hits_within_the_limit_are_allowed_and_the_next_is_refused() {
        let limiter = MemoryRateLimiter::new();
        for at in [0, 10, 20] {
            assert_eq!(hit(&limiter, "ip:1", at).await, RateDecision::Allowed);
        }
        assert_eq!(hit(&limiter, "ip:1", 30).await, RateDecision::Limited { retry_after_secs: 30 });
    }

    #[tokio::test]
    async fn the_window_rolls_one_hit_at_a_time() {
        let limiter = MemoryRateLimiter::new();
        for at in [0, 10, 20] {
            hit(&limiter, "ip:1", at).await;
        }
        assert_eq!(hit(&limiter, "ip:1", 59).await, RateDecision::Limited { retry_after_secs: 1 });
        assert_eq!(hit(&limiter, "ip:1", 60).await, RateDecision::Allowed);
        assert_eq!(hit(&limiter, "ip:1", 61).await, RateDecision::Limited { retry_after_secs: 9 });
        assert_eq!(hit(&limiter, "ip:1", 70).await, RateDecision::Allowed);
    }

    #[tokio::test]
    async fn refused_hits_are_not_counted() {
        let limiter = MemoryRateLimiter::new();
        for at in [0, 1, 2] {
            hit(&limiter, "ip:1", at).await;
        }
        for at in 3..59 {
            assert!(matches!(hit(&limiter, "ip:1", at).await, RateDecision::Limited { .. }));
        }
        // Had the refusals counted, the window would still be full.
        assert_eq!(hit(&limiter, "ip:1", 60).await, RateDecision::Allowed);
    }

    #[tokio::test]
    async fn keys_are_counted_separately() {
        let limiter = MemoryRateLimiter::new();
        for at in [0, 1, 2] {
            hit(&limiter, "ip:1", at).await;
        }
        assert_eq!(hit(&limiter, "ip:2", 3).await, RateDecision::Allowed);
    }

    #[tokio::test]
    async fn a_limit_of_zero_refuses_everything_for_a_window() {
        let limiter = MemoryRateLimiter::new();
        let decision = limiter.hit("k", 0, 60, t(0)).await.expect("counts");
        assert_eq!(decision, RateDecision::Limited { retry_after_secs: 60 });
        assert!(limiter.inner().keys.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_hits_never_exceed_the_limit() {
        let limiter = Arc::new(MemoryRateLimiter::new());
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                tokio::spawn(async move { limiter.hit("k", 10, 60, t(0)).await.expect("counts") })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            if task.await.expect("no panic") == RateDecision::Allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 10);
    }

    #[tokio::test]
    async fn emptied_keys_are_swept() {
        let limiter = MemoryRateLimiter::new();
        for n in 1..SWEEP_EVERY {
            limiter.hit(&format!("k{n}"), 1, 60, t(0)).await.expect("counts");
        }
        limiter.hit("late", 1, 60, t(120)).await.expect("counts");
        assert_eq!(limiter.inner().keys.len(), 1);
    }
}
