//! # onboard-redis
//!
//! Redis adapters for Onboard: one-time codes ([`RedisOtpStore`]), rate limits
//! ([`RedisRateLimiter`]) and access-token revocations ([`RedisRevocationList`]), shared by every
//! server instance that talks to the same Redis; also live invite codes
//! ([`RedisInviteCodeStore`]) and single sign-on logins and login codes
//! ([`RedisSsoStateStore`]).
//!
//! Every change is one atomic Lua script (or one pipelined round trip of independent writes),
//! so concurrent requests and several instances see one consistent count. Every key is
//! `{prefix}` + a name that carries a Redis Cluster hash tag (`{+79174445566}`, `{<member id>}`,
//! `{<limiter key>}`), so each script touches a single slot.
//!
//! Time: the adapters take `now` from the caller for everything they count (rolling windows);
//! only key expiry (code TTL, resend interval, revocation TTL) uses Redis' own clock.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use onboard_redis::{RedisConfig, RedisOtpStore, RedisRateLimiter, RedisRevocationList};
//!
//! let config = RedisConfig::new("redis://127.0.0.1:6379");
//! let pool = config.pool()?;
//! assert!(onboard_redis::ping(&pool).await);
//! let otp = RedisOtpStore::new(pool.clone(), &config.key_prefix);
//! let limiter = RedisRateLimiter::new(pool.clone(), &config.key_prefix);
//! let revocations = RedisRevocationList::new(pool, &config.key_prefix);
//! # Ok(())
//! # }
//! ```

mod invites;
mod limiter;
mod otp;
mod revocations;
mod sso;

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use deadpool_redis::redis;

pub use deadpool_redis::Pool;
pub use invites::RedisInviteCodeStore;
pub use limiter::RedisRateLimiter;
pub use otp::RedisOtpStore;
pub use revocations::RedisRevocationList;
pub use sso::RedisSsoStateStore;
mod notifications;
pub use notifications::{RedisNotificationBus, RedisStreamTicketStore};

/// The key prefix used when none is configured.
pub const DEFAULT_KEY_PREFIX: &str = "onboard:";

/// The span of one Lua script call (its keys and arguments are never recorded); debug level, so
/// it costs nothing unless traces are exported.
fn script_span(script: &'static str) -> tracing::Span {
    tracing::debug_span!(
        target: "onboard_redis::script",
        "redis.script",
        otel.name = %format_args!("EVALSHA {script}"),
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = "EVALSHA",
        script,
    )
}

/// The pool size used when none is configured.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a caller waits for a free pooled connection before the call fails.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the Redis adapters connect and how they name their keys.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// Put in front of every key, so several deployments (or tests) can share one Redis.
    /// Must not contain `{` or `}` (the keys' hash tags come after it).
    pub key_prefix: String,
    /// Most connections the pool opens.
    pub pool_size: usize,
}

impl RedisConfig {
    /// A config for `url` with the default prefix ([`DEFAULT_KEY_PREFIX`]) and pool size
    /// ([`DEFAULT_POOL_SIZE`]).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
        }
    }

    /// A connection pool for this config; see [`pool`].
    ///
    /// # Errors
    /// When the URL cannot be read.
    pub fn pool(&self) -> anyhow::Result<Pool> {
        pool(&self.url, self.pool_size)
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// The URL with any user and password replaced by `***`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A pool of at most `max_size` multiplexed connections to the Redis at `url`, on the Tokio
/// runtime. No connection is opened until one is needed; a caller waits at most a few seconds
/// for a free connection.
///
/// # Errors
/// When the URL cannot be read.
pub fn pool(url: &str, max_size: usize) -> anyhow::Result<Pool> {
    deadpool_redis::Config::from_url(url)
        .builder()
        .context("invalid Redis URL")?
        .max_size(max_size.max(1))
        .runtime(deadpool_redis::Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .build()
        .context("cannot build the Redis pool")
}

/// Whether Redis answers a `PING` through this pool (for readiness checks).
pub async fn ping(pool: &Pool) -> bool {
    let Ok(mut conn) = pool.get().await else {
        return false;
    };
    redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok_and(|reply| reply == "PONG")
}

/// A pooled connection, with the error said in words.
async fn connection(pool: &Pool) -> anyhow::Result<deadpool_redis::Connection> {
    pool.get().await.context("no Redis connection")
}

/// Milliseconds since the epoch.
fn millis(now: DateTime<Utc>) -> i64 {
    now.timestamp_millis()
}

/// Seconds to wait for `ms` milliseconds to pass, rounded up, at least 1.
fn retry_after_secs(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).div_ceil(1000).max(1)
}

/// `secs` seconds in milliseconds, at least 1 (Redis refuses a zero expiry).
fn positive_millis(secs: u64) -> u64 {
    secs.saturating_mul(1000).max(1)
}

/// A member for a zset that no other call uses (UUID v7: time-ordered and random).
fn unique_member() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Debug for a store: its prefix and the pool's state, never connections.
fn debug_store(name: &str, pool: &Pool, prefix: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let status = pool.status();
    f.debug_struct(name)
        .field("key_prefix", &prefix)
        .field("pool_size", &status.size)
        .field("pool_max_size", &status.max_size)
        .finish_non_exhaustive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(-5), 1);
        assert_eq!(retry_after_secs(3_600_000), 3600);
    }

    #[test]
    fn the_config_never_prints_a_password() {
        let config = RedisConfig::new("redis://user:s3cret@redis.internal:6379/0");
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("redis.internal:6379/0"), "{printed}");
        assert_eq!(redact_url("redis://127.0.0.1"), "redis://127.0.0.1");
    }

    #[test]
    fn a_bad_url_is_refused() {
        assert!(pool("not a url", 4).is_err());
        assert!(pool("redis://127.0.0.1:6379", 4).is_ok());
    }
}
