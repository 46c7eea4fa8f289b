//! One-time codes in memory, by the rules of the Redis scripts.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use onboard_admin::OtpCounts;
use onboard_admin::ports::OtpStats;
use onboard_kernel::PhoneNumber;
use onboard_members::CodeHash;
use onboard_members::ports::{IssueOutcome, OtpLimits, OtpStore, VerifyOutcome};
use subtle::ConstantTimeEq;

use crate::window::{Window, after, seconds, secs_until};

/// The rolling window of the hourly limits.
const HOUR: Duration = Duration::hours(1);

/// Codes and per-phone limits, one mutex for all phones, so each call is atomic.
///
/// The rules (the same as the Redis adapter's):
/// - `issue` is refused while the previous code's resend interval runs (the wait is what is
///   left of it), else when the phone had `max_sends_per_hour` codes in the rolling hour (the
///   wait is until the oldest leaves the hour). Otherwise the new code replaces the old one (fresh attempts, fresh TTL) and counts a send.
/// - `verify` answers `Locked` while the phone had `max_failures_per_hour` failures in the
///   rolling hour, checking and counting nothing. Otherwise: no code or an expired one is
///   `NoCode`; a burned code is `Burned` until a new code replaces it or it expires; a match
///   (compared in constant time) consumes the code; a miss counts one attempt and one failure
///   of the phone, and the miss that reaches `max_attempts` burns the code and answers
///   `Burned`. A new code does not reset the phone's failures. `NoCode`, `Burned` and `Locked`
///   count no failure.
///
/// Time is the `now` passed in.
#[derive(Debug, Default)]
pub struct MemoryOtpStore {
    inner: Mutex<Inner>,
}

/// Issues between two sweeps of idle phones.
const SWEEP_EVERY: u32 = 1024;

#[derive(Debug, Default)]
struct Inner {
    phones: HashMap<String, PhoneState>,
    issues_since_sweep: u32,
    /// Codes sent and wrong codes presented, per hour since the epoch (the last 25 hours).
    traffic: std::collections::BTreeMap<i64, OtpCounts>,
}

impl Inner {
    /// Counts one send or one failure in the hour of `now`, forgetting hours older than a day.
    fn count(&mut self, now: DateTime<Utc>, send: bool) {
        let hour = now.timestamp().div_euclid(3600);
        let bucket = self.traffic.entry(hour).or_default();
        if send {
            bucket.sends += 1;
        } else {
            bucket.failures += 1;
        }
        self.traffic.retain(|h, _| *h > hour - 25);
    }
}

#[derive(Debug, Default)]
struct PhoneState {
    code: Option<LiveCode>,
    sends: Window,
    next_send_at: Option<DateTime<Utc>>,
    failures: Window,
}

struct LiveCode {
    hash: [u8; 32],
    attempts: u32,
    burned: bool,
    expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for LiveCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCode")
            .field("attempts", &self.attempts)
            .field("burned", &self.burned)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl PhoneState {
    /// Whether nothing about this phone matters any more at `now`.
    fn is_idle(&mut self, now: DateTime<Utc>) -> bool {
        self.code.as_ref().is_none_or(|c| c.expires_at <= now)
            && self.sends.count(now, HOUR) == 0
            && self.failures.count(now, HOUR) == 0
            && self.next_send_at.is_none_or(|t| t <= now)
    }
}

impl MemoryOtpStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every change is made whole before the lock is released, so a poisoned lock still
        // guards consistent state.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl OtpStore for MemoryOtpStore {
    async fn issue(
        &self,
        phone: &PhoneNumber,
        code: &CodeHash,
        now: DateTime<Utc>,
        limits: &OtpLimits,
    ) -> anyhow::Result<IssueOutcome> {
        let mut inner = self.inner();
        inner.issues_since_sweep += 1;
        if inner.issues_since_sweep >= SWEEP_EVERY {
            inner.issues_since_sweep = 0;
            inner.phones.retain(|_, state| !state.is_idle(now));
        }
        let state = inner.phones.entry(phone.as_e164().to_owned()).or_default();

        if let Some(next) = state.next_send_at
            && next > now
        {
            return Ok(IssueOutcome::Limited { retry_after_secs: secs_until(now, next) });
        }
        let max_sends = usize::try_from(limits.max_sends_per_hour).unwrap_or(usize::MAX);
        if state.sends.count(now, HOUR) >= max_sends {
            let retry_after_secs = state.sends.retry_after(now, HOUR);
            return Ok(IssueOutcome::Limited { retry_after_secs });
        }

        state.code = Some(LiveCode {
            hash: code.0,
            attempts: 0,
            burned: false,
            expires_at: after(now, seconds(limits.ttl_secs)),
        });
        state.sends.push(now);
        state.next_send_at = Some(after(now, seconds(limits.resend_interval_secs)));
        inner.count(now, true);
        Ok(IssueOutcome::Issued)
    }

    async fn verify(
        &self,
        phone: &PhoneNumber,
        candidate: &CodeHash,
        now: DateTime<Utc>,
        limits: &OtpLimits,
    ) -> anyhow::Result<VerifyOutcome> {
        let mut inner = self.inner();
        let phones = &mut inner.phones;
        let Some(state) = phones.get_mut(phone.as_e164()) else {
            return Ok(VerifyOutcome::NoCode);
        };
        let failures_before = state.failures.count(now, HOUR);
        let outcome = check(state, candidate, now, limits);
        let failed = state.failures.count(now, HOUR) > failures_before;
        if state.is_idle(now) {
            phones.remove(phone.as_e164());
        }
        if failed {
            inner.count(now, false);
        }
        Ok(outcome)
    }
}

#[async_trait]
impl OtpStats for MemoryOtpStore {
    async fn last_24h(&self, now: DateTime<Utc>) -> anyhow::Result<OtpCounts> {
        let hour = now.timestamp().div_euclid(3600);
        let inner = self.inner();
        Ok(inner.traffic.range(hour - 23..=hour).fold(OtpCounts::default(), |sum, (_, c)| {
            OtpCounts { sends: sum.sends + c.sends, failures: sum.failures + c.failures }
        }))
    }
}

fn check(
    state: &mut PhoneState,
    candidate: &CodeHash,
    now: DateTime<Utc>,
    limits: &OtpLimits,
) -> VerifyOutcome {
    let max_failures = usize::try_from(limits.max_failures_per_hour).unwrap_or(usize::MAX);
    if state.failures.count(now, HOUR) >= max_failures {
        return VerifyOutcome::Locked { retry_after_secs: state.failures.retry_after(now, HOUR) };
    }
    let Some(code) = state.code.as_mut() else {
        return VerifyOutcome::NoCode;
    };
    if code.expires_at <= now {
        state.code = None;
        return VerifyOutcome::NoCode;
    }
    if code.burned {
        return VerifyOutcome::Burned;
    }
    if bool::from(code.hash.ct_eq(&candidate.0)) {
        state.code = None;
        return VerifyOutcome::Valid;
    }
    code.attempts = code.attempts.saturating_add(1);
    state.failures.push(now);
    if code.attempts >= limits.max_attempts {
        code.burned = true;
        VerifyOutcome::Burned
    } else {
        VerifyOutcome::Invalid { attempts_left: limits.max_attempts - code.attempts }
    }
}

#[cfg(test)]
mod tests;
