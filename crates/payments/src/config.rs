//! Settings of the payments domain.

use chrono::Duration;

use crate::period::BillingClock;

/// Tunables of the payments domain. [`PaymentsConfig::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentsConfig {
    /// `TRIAL_DAYS`: the length of the one trial a group gets (14).
    pub trial_days: i64,
    /// `BILLING_PAY_HOUR`: the hour (0–23, billing time zone) at which a new billing account's
    /// charges run (10).
    pub pay_hour: u32,
    /// `BILLING_TZ`: the billing time zone (Asia/Seoul, +09:00).
    pub clock: BillingClock,
    /// Days after a failed charge's first attempt at which it is retried (1, 3, 7); after the
    /// last retry fails, the group falls back to Free.
    pub retry_days: Vec<i64>,
    /// A scheduled charge this long past its time without an outcome is re-read from the
    /// gateway (10 minutes).
    pub reconcile_after: Duration,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            trial_days: 14,
            pay_hour: 10,
            clock: BillingClock::seoul(),
            retry_days: vec![1, 3, 7],
            reconcile_after: Duration::minutes(10),
        }
    }
}
