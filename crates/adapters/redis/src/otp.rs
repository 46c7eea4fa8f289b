//! One-time codes and their per-phone limits.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tracing::Instrument as _;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::redis::Script;
use onboard_admin::OtpCounts;
use onboard_admin::ports::OtpStats;
use onboard_kernel::PhoneNumber;
use onboard_members::model::CodeHash;
use onboard_members::ports::{IssueOutcome, OtpLimits, OtpStore, VerifyOutcome};

use crate::{
    Pool, connection, debug_store, millis, positive_millis, retry_after_secs, unique_member,
};

/// An [`OtpStore`] in Redis: each call is one atomic Lua script over the phone's keys, so the
/// limits hold across concurrent requests and server instances.
///
/// Keys (one hash-tag slot per phone): `{prefix}otp:{<E.164>}:code` (the code: hash, wrong
/// attempts, burned flag; expires with the code), `…:sends` (send times, rolling hour),
/// `…:next` (present during the resend interval) and `…:fails` (failure times, rolling hour).
///
/// It also counts the codes sent and the wrong codes presented per hour, for the admin stats
/// ([`OtpStats`]): `{prefix}otp-stats:{<hour>}` (a hash, `s` and `f`, hours since the epoch,
/// kept 25 hours). That key lives in another slot than the phone's, so it is never touched by
/// the scripts (which stay valid on a Redis Cluster): the counts gather in the process after the
/// script answered, off the request's path, and a background task adds them to Redis four
/// times a second. The counts are eventually consistent.
pub struct RedisOtpStore {
    pool: Pool,
    prefix: String,
    issue: Script,
    verify: Script,
    traffic: Arc<Traffic>,
}

/// Traffic counts not yet written to Redis, by hour (since the epoch) and field, and whether
/// the task that writes them runs.
#[derive(Debug, Default)]
struct Traffic {
    pending: Mutex<HashMap<(i64, &'static str), u64>>,
    writer: AtomicBool,
}

/// How often the counts gathered in the process are written to Redis.
const TRAFFIC_FLUSH_EVERY: Duration = Duration::from_millis(250);

impl RedisOtpStore {
    /// A store whose keys start with `prefix` (which must not contain `{` or `}`).
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
            issue: Script::new(include_str!("scripts/otp_issue.lua")),
            verify: Script::new(include_str!("scripts/otp_verify.lua")),
            traffic: Arc::new(Traffic::default()),
        }
    }

    fn key(&self, phone: &PhoneNumber, name: &str) -> String {
        format!("{}otp:{{{}}}:{name}", self.prefix, phone.as_e164())
    }
}

impl RedisOtpStore {
    /// Adds one to `field` of the hour's traffic counters. The request does not wait for
    /// Redis: counts gather in the process and a background task writes them, every 250 ms,
    /// in one pipelined round trip (it used to be one round trip per count). A failure, or the
    /// process ending, loses at most those counts (logged).
    fn count_traffic(&self, now: DateTime<Utc>, field: &'static str) {
        let hour = now.timestamp().div_euclid(3600);
        if let Ok(mut pending) = self.traffic.pending.lock() {
            *pending.entry((hour, field)).or_default() += 1;
        }
        if !self.traffic.writer.swap(true, Ordering::AcqRel) {
            tokio::spawn(write_traffic(
                Arc::downgrade(&self.traffic),
                self.pool.clone(),
                self.prefix.clone(),
            ));
        }
    }
}

/// Writes the gathered traffic counts every [`TRAFFIC_FLUSH_EVERY`] until the store is gone.
async fn write_traffic(traffic: Weak<Traffic>, pool: Pool, prefix: String) {
    loop {
        tokio::time::sleep(TRAFFIC_FLUSH_EVERY).await;
        let Some(counts) = traffic.upgrade() else { return };
        let taken = counts.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        drop(counts);
        if taken.is_empty() {
            continue;
        }
        let mut pipe = deadpool_redis::redis::pipe();
        for ((hour, field), n) in &taken {
            let key = stats_key(&prefix, *hour);
            pipe.cmd("HINCRBY").arg(&key).arg(*field).arg(*n).ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(STATS_TTL_MS).ignore();
        }
        let written: anyhow::Result<()> = async {
            let mut conn = connection(&pool).await?;
            pipe.query_async::<()>(&mut conn).await?;
            Ok(())
        }
        .await;
        if let Err(error) = written {
            let lost: u64 = taken.values().sum();
            tracing::warn!(?error, lost, "Redis: OTP traffic counts were lost");
        }
    }
}

/// How long an hour's traffic counters are kept: 25 hours.
const STATS_TTL_MS: i64 = 25 * 3_600_000;

/// The traffic counters of hour `hour` (since the epoch).
fn stats_key(prefix: &str, hour: i64) -> String {
    format!("{prefix}otp-stats:{{{hour}}}")
}

#[async_trait]
impl OtpStats for RedisOtpStore {
    /// One pipelined round trip over the 24 hourly counters.
    async fn last_24h(&self, now: DateTime<Utc>) -> anyhow::Result<OtpCounts> {
        let hour = now.timestamp().div_euclid(3600);
        let mut pipe = deadpool_redis::redis::pipe();
        for h in hour - 23..=hour {
            pipe.cmd("HMGET").arg(stats_key(&self.prefix, h)).arg("s").arg("f");
        }
        let mut conn = connection(&self.pool).await?;
        let buckets: Vec<(Option<u64>, Option<u64>)> =
            pipe.query_async(&mut conn).await.context("Redis: reading OTP traffic")?;
        Ok(buckets.into_iter().fold(OtpCounts::default(), |sum, (s, f)| OtpCounts {
            sends: sum.sends + s.unwrap_or(0),
            failures: sum.failures + f.unwrap_or(0),
        }))
    }
}

impl fmt::Debug for RedisOtpStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_store("RedisOtpStore", &self.pool, &self.prefix, f)
    }
}

/// The hash as lower-case hex, the form the scripts store and compare.
fn hex(hash: &CodeHash) -> String {
    use fmt::Write as _;
    hash.0.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[async_trait]
impl OtpStore for RedisOtpStore {
    async fn issue(
        &self,
        phone: &PhoneNumber,
        code: &CodeHash,
        now: DateTime<Utc>,
        limits: &OtpLimits,
    ) -> anyhow::Result<IssueOutcome> {
        let mut conn = connection(&self.pool).await?;
        let (issued, retry_ms): (i64, i64) = self
            .issue
            .key(self.key(phone, "code"))
            .key(self.key(phone, "sends"))
            .key(self.key(phone, "next"))
            .arg(millis(now))
            .arg(hex(code))
            .arg(positive_millis(limits.ttl_secs))
            .arg(limits.resend_interval_secs.saturating_mul(1000))
            .arg(limits.max_sends_per_hour)
            .arg(unique_member())
            .invoke_async(&mut conn)
            .instrument(crate::script_span("otp.issue"))
            .await
            .context("Redis: issuing a one-time code")?;
        Ok(if issued == 1 {
            self.count_traffic(now, "s");
            IssueOutcome::Issued
        } else {
            IssueOutcome::Limited { retry_after_secs: retry_after_secs(retry_ms) }
        })
    }

    async fn verify(
        &self,
        phone: &PhoneNumber,
        candidate: &CodeHash,
        now: DateTime<Utc>,
        limits: &OtpLimits,
    ) -> anyhow::Result<VerifyOutcome> {
        let mut conn = connection(&self.pool).await?;
        let (kind, value, wrong): (i64, i64, i64) = self
            .verify
            .key(self.key(phone, "code"))
            .key(self.key(phone, "fails"))
            .arg(millis(now))
            .arg(hex(candidate))
            .arg(limits.max_attempts)
            .arg(limits.max_failures_per_hour)
            .arg(unique_member())
            .invoke_async(&mut conn)
            .instrument(crate::script_span("otp.verify"))
            .await
            .context("Redis: verifying a one-time code")?;
        if wrong == 1 {
            self.count_traffic(now, "f");
        }
        Ok(match kind {
            0 => VerifyOutcome::Valid,
            1 => VerifyOutcome::Invalid { attempts_left: u32::try_from(value).unwrap_or(0) },
            2 => VerifyOutcome::NoCode,
            3 => VerifyOutcome::Burned,
            4 => VerifyOutcome::Locked { retry_after_secs: retry_after_secs(value) },
            other => anyhow::bail!("Redis: unexpected answer {other} from the verify script"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_hash_is_sent_as_64_hex_digits() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x01;
        let h = hex(&CodeHash(bytes));
        assert_eq!(h.len(), 64);
        assert!(h.starts_with("ab00"));
        assert!(h.ends_with("01"));
    }
}
