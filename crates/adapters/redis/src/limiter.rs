//! Rolling-window rate limits.

use std::fmt;
use tracing::Instrument as _;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::redis::Script;
use onboard_members::ports::{RateDecision, RateLimiter};

use crate::{
    Pool, connection, debug_store, millis, positive_millis, retry_after_secs, unique_member,
};

/// A [`RateLimiter`] in Redis: a rolling window of hit times per key (`{prefix}rl:{<key>}`),
/// checked and counted by one atomic Lua script, so the limit holds across concurrent requests
/// and server instances. A refused hit is not counted.
pub struct RedisRateLimiter {
    pool: Pool,
    prefix: String,
    hit: Script,
}

impl RedisRateLimiter {
    /// A limiter whose keys start with `prefix` (which must not contain `{` or `}`).
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
            hit: Script::new(include_str!("scripts/rate_limit_hit.lua")),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}rl:{{{key}}}", self.prefix)
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_store("RedisRateLimiter", &self.pool, &self.prefix, f)
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window_secs: u64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<RateDecision> {
        let mut conn = connection(&self.pool).await?;
        let (allowed, retry_ms): (i64, i64) = self
            .hit
            .key(self.key(key))
            .arg(millis(now))
            .arg(limit)
            .arg(positive_millis(window_secs))
            .arg(unique_member())
            .invoke_async(&mut conn)
            .instrument(crate::script_span("rate_limit.hit"))
            .await
            .context("Redis: counting a rate-limited hit")?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited { retry_after_secs: retry_after_secs(retry_ms) }
        })
    }
}
