//! The events of the payments domain: what a billing or SMS credit change tells the rest of
//! the system (the notifications consumer tells the holders of `billing.manage`; outgoing
//! webhooks tell other services).
//!
//! The use cases decide them ([`BillingEvent`]) and hand their records to the storage ports,
//! which store them in the transaction of the change (the outbox): a
//! [`crate::ports::BillingCommit`] carries its `events`; a usage increment stores the
//! [`usage_events`] of the thresholds it newly crossed, once per (group, metric, period,
//! percent); the trial-ending job records each (group, trial end, days) once
//! ([`crate::ports::BillingRepository::record_trial_ending`]); a debit of SMS credit stores
//! [`low_credit_events`]. Payloads carry ids, plan names, amounts and reasons, never card
//! numbers, billing keys or customer_uids.
//!
//! ```
//! use chrono::Utc;
//! use onboard_kernel::GroupId;
//! use onboard_kernel::events::Event;
//! use onboard_payments::events::{BillingEvent, usage_events, usage_thresholds_crossed};
//!
//! // 31 → 33 of 40 crosses 80 % (32) and nothing else.
//! assert_eq!(usage_thresholds_crossed(31, 33, Some(40)), vec![80]);
//! let group = GroupId::new();
//! let crossed = usage_events(group, "consultations", 31, 33, Some(40));
//! assert_eq!(crossed, vec![BillingEvent::UsageThreshold {
//!     group_id: group, metric: "consultations".into(), percent: 80, used: 33, limit: 40,
//! }]);
//! let record = Event::record(&crossed[0], Utc::now());
//! assert_eq!(record.event_type, "billing.usage_threshold");
//! assert_eq!(record.decode::<BillingEvent>().as_ref(), Some(&crossed[0]));
//! ```

use chrono::{DateTime, Duration, NaiveDate, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::model::{Billing, BillingStatus, ReceiptId};
use crate::period::BillingClock;
use crate::sms_credit::{CreditReason, LOW_CREDIT_THRESHOLD, crossed_below};

/// The usage thresholds, in percent of a limit, each told once per period and metric.
pub const USAGE_THRESHOLDS: [u8; 3] = [50, 80, 100];

/// How many days before a trial ends its members are told (`billing.trial_ending`), largest
/// first. A notice is only due when the trial had begun by then (a 14-day trial gets no
/// 30-day notice).
pub const TRIAL_ENDING_DAYS: [u32; 3] = [30, 7, 1];

/// A change of a group's billing or SMS credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum BillingEvent {
    /// The group's plan changed from plan code `from` to `to` (a change asked for, a fall
    /// back to Free).
    #[serde(rename = "billing.plan_changed")]
    PlanChanged { group_id: GroupId, from: String, to: String },
    /// A trial began.
    #[serde(rename = "billing.trial_started")]
    TrialStarted {
        group_id: GroupId,
        /// The plan's display name.
        plan: String,
        /// The day (billing time zone) the trial ends.
        ends_on: NaiveDate,
    },
    /// A trial ends in `days` days.
    #[serde(rename = "billing.trial_ending")]
    TrialEnding { group_id: GroupId, plan: String, days: u32, ends_on: NaiveDate },
    /// A charge was paid: the first after a trial, a renewal, a plan change, a retry.
    #[serde(rename = "billing.payment_succeeded")]
    PaymentSucceeded {
        group_id: GroupId,
        plan: String,
        /// KRW, VAT included.
        amount: i64,
        /// The receipt recorded with it.
        receipt_id: ReceiptId,
    },
    /// A charge failed.
    #[serde(rename = "billing.payment_failed")]
    PaymentFailed {
        group_id: GroupId,
        plan: String,
        amount: i64,
        reason: String,
        /// When the next attempt is scheduled, if one is.
        retry_at: Option<DateTime<Utc>>,
        /// The day (billing time zone) of the next attempt, if one is scheduled.
        retry_on: Option<NaiveDate>,
    },
    /// The group fell back to Free: the last retry failed, a cancellation took effect, a trial
    /// was given up.
    #[serde(rename = "billing.downgraded")]
    Downgraded {
        group_id: GroupId,
        /// The display name of the plan it was on.
        from: String,
    },
    /// A usage counter reached `percent` of the plan's limit.
    #[serde(rename = "billing.usage_threshold")]
    UsageThreshold { group_id: GroupId, metric: String, percent: u8, used: i64, limit: i64 },
    /// SMS credit was bought (by a member or by the auto top-up) and credited.
    #[serde(rename = "sms_credit.purchased")]
    SmsCreditPurchased { group_id: GroupId, amount: i64, reason: CreditReason },
    /// A debit took the balance below [`LOW_CREDIT_THRESHOLD`].
    #[serde(rename = "sms_credit.low")]
    SmsCreditLow { group_id: GroupId, balance: i64 },
    /// An auto top-up of `amount` KRW could not be charged.
    #[serde(rename = "sms_credit.topup_failed")]
    SmsCreditTopupFailed { group_id: GroupId, amount: i64, reason: String },
}

impl BillingEvent {
    /// The group the event is about.
    pub const fn group_id(&self) -> GroupId {
        match self {
            Self::PlanChanged { group_id, .. }
            | Self::TrialStarted { group_id, .. }
            | Self::TrialEnding { group_id, .. }
            | Self::PaymentSucceeded { group_id, .. }
            | Self::PaymentFailed { group_id, .. }
            | Self::Downgraded { group_id, .. }
            | Self::UsageThreshold { group_id, .. }
            | Self::SmsCreditPurchased { group_id, .. }
            | Self::SmsCreditLow { group_id, .. }
            | Self::SmsCreditTopupFailed { group_id, .. } => *group_id,
        }
    }
}

impl DomainEvent for BillingEvent {
    fn aggregate(&self) -> Aggregate {
        Aggregate::group(self.group_id())
    }

    fn group(&self) -> Option<GroupId> {
        Some(self.group_id())
    }
}

/// The thresholds of [`USAGE_THRESHOLDS`] a counter crossed going from `before` to `after`
/// against `limit` (none without a limit, or with a limit of 0): each `p` with
/// `before < p % of limit <= after`, smallest first.
pub fn usage_thresholds_crossed(before: i64, after: i64, limit: Option<i64>) -> Vec<u8> {
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return Vec::new();
    };
    // `used >= p % of limit` without rounding: `used * 100 >= p * limit`.
    let reached = |used: i64, p: u8| used.saturating_mul(100) >= i64::from(p).saturating_mul(limit);
    USAGE_THRESHOLDS.into_iter().filter(|p| !reached(before, *p) && reached(after, *p)).collect()
}

/// The events of a usage increment of `metric` of `group` from `before` to `after` against
/// `limit`: one [`BillingEvent::UsageThreshold`] per threshold crossed
/// ([`usage_thresholds_crossed`]). Storage stores each at most once per (group, metric,
/// period, percent).
pub fn usage_events(
    group: GroupId,
    metric: &str,
    before: i64,
    after: i64,
    limit: Option<i64>,
) -> Vec<BillingEvent> {
    usage_thresholds_crossed(before, after, limit)
        .into_iter()
        .map(|percent| BillingEvent::UsageThreshold {
            group_id: group,
            metric: metric.to_owned(),
            percent,
            used: after,
            limit: limit.unwrap_or_default(),
        })
        .collect()
}

/// The events of a change of `group`'s SMS credit balance from `before` to `after`: a
/// [`BillingEvent::SmsCreditLow`] when a debit (`after < before`) crossed below
/// [`LOW_CREDIT_THRESHOLD`] ([`crossed_below`]), else none. Every adapter that debits SMS
/// credit stores them in the debit's transaction.
pub fn low_credit_events(group: GroupId, before: i64, after: i64) -> Vec<BillingEvent> {
    if after < before && crossed_below(before, after, LOW_CREDIT_THRESHOLD) {
        vec![BillingEvent::SmsCreditLow { group_id: group, balance: after }]
    } else {
        Vec::new()
    }
}

/// Which trial-ending notice (days before the end, of [`TRIAL_ENDING_DAYS`]) is due for
/// `billing` at `now`: while trialing and before the trial's end, the fewest days `d` whose
/// moment (`trial end - d days`) has come and fell within the trial. `None` when none is due.
pub fn trial_ending_due(billing: &Billing, now: DateTime<Utc>) -> Option<u32> {
    if billing.status != BillingStatus::Trialing {
        return None;
    }
    let end = billing.trial_ends_at?;
    if now >= end {
        return None;
    }
    let began = billing.current_period_start.unwrap_or(now);
    TRIAL_ENDING_DAYS
        .into_iter()
        .filter(|d| {
            let moment = end - Duration::days(i64::from(*d));
            moment <= now && began <= moment
        })
        .min()
}

/// What a change of the account from `before` to `after` tells by itself (no payment
/// involved): the plan changed, a trial began, or the group fell back to Free.
pub fn status_events(
    before: &Billing,
    after: &Billing,
    plan_name: impl Fn(&str) -> String,
    clock: &BillingClock,
) -> Vec<BillingEvent> {
    let group_id = after.group;
    let mut events = Vec::new();
    if after.plan != before.plan {
        events.push(BillingEvent::PlanChanged {
            group_id,
            from: before.plan.as_str().to_owned(),
            to: after.plan.as_str().to_owned(),
        });
    }
    if after.status == BillingStatus::Trialing
        && before.status != BillingStatus::Trialing
        && let Some(end) = after.trial_ends_at
    {
        events.push(BillingEvent::TrialStarted {
            group_id,
            plan: plan_name(after.plan.as_str()),
            ends_on: clock.day_of(end),
        });
    }
    if after.status == BillingStatus::Free && before.status != BillingStatus::Free {
        events.push(BillingEvent::Downgraded { group_id, from: plan_name(before.plan.as_str()) });
    }
    events
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::PlanCode;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).single().expect("a time")
    }

    fn trialing(group: GroupId, began: DateTime<Utc>, ends: DateTime<Utc>) -> Billing {
        let mut b = Billing::free(group, 10);
        b.plan = PlanCode::from_trusted("pro");
        b.status = BillingStatus::Trialing;
        b.trial_used = true;
        b.trial_ends_at = Some(ends);
        b.current_period_start = Some(began);
        b.current_period_end = Some(ends);
        b
    }

    #[test]
    fn each_threshold_is_crossed_by_the_increment_that_reaches_it() {
        assert_eq!(usage_thresholds_crossed(0, 1, Some(3)), Vec::<u8>::new());
        assert_eq!(usage_thresholds_crossed(1, 2, Some(3)), vec![50]);
        assert_eq!(usage_thresholds_crossed(2, 3, Some(3)), vec![80, 100]);
        assert_eq!(usage_thresholds_crossed(0, 40, Some(40)), vec![50, 80, 100]);
        assert_eq!(usage_thresholds_crossed(20, 21, Some(40)), Vec::<u8>::new(), "50 % was 20");
        assert_eq!(usage_thresholds_crossed(19, 20, Some(40)), vec![50]);
        assert_eq!(usage_thresholds_crossed(0, 1_000, None), Vec::<u8>::new(), "no limit");
        assert_eq!(usage_thresholds_crossed(0, 1, Some(0)), Vec::<u8>::new(), "a zero limit");
    }

    #[test]
    fn usage_events_say_the_count_and_the_limit() {
        let group = GroupId::new();
        assert_eq!(
            usage_events(group, "customers", 7, 8, Some(10)),
            vec![BillingEvent::UsageThreshold {
                group_id: group,
                metric: "customers".into(),
                percent: 80,
                used: 8,
                limit: 10
            }]
        );
    }

    #[test]
    fn only_a_debit_crossing_below_the_line_says_the_credit_is_low() {
        let group = GroupId::new();
        assert_eq!(
            low_credit_events(group, 1_005, 968),
            vec![BillingEvent::SmsCreditLow { group_id: group, balance: 968 }]
        );
        assert_eq!(low_credit_events(group, 968, 931), vec![]);
        assert_eq!(low_credit_events(group, 500, 2_000), vec![]);
    }

    #[test]
    fn a_fourteen_day_trial_gets_the_seven_and_one_day_notices_but_not_the_thirty_day_one() {
        let b = trialing(GroupId::new(), at(1, 1), at(15, 1));
        assert_eq!(trial_ending_due(&b, at(1, 2)), None, "30 days before lies before the start");
        assert_eq!(trial_ending_due(&b, at(7, 23)), None);
        assert_eq!(trial_ending_due(&b, at(8, 1)), Some(7));
        assert_eq!(trial_ending_due(&b, at(13, 23)), Some(7));
        assert_eq!(trial_ending_due(&b, at(14, 1)), Some(1));
        assert_eq!(trial_ending_due(&b, at(15, 1)), None, "the trial is over");
    }

    #[test]
    fn a_long_trial_gets_the_thirty_day_notice_and_a_late_run_only_the_latest_one() {
        let began = Utc.with_ymd_and_hms(2026, 10, 1, 1, 0, 0).single().expect("a time");
        let b = trialing(GroupId::new(), began, at(15, 1));
        assert_eq!(trial_ending_due(&b, at(1, 1) - Duration::days(14)), Some(30));
        assert_eq!(trial_ending_due(&b, at(14, 12)), Some(1), "not 30 nor 7 any more");
    }

    #[test]
    fn only_a_trialing_account_has_a_trial_ending() {
        let mut b = trialing(GroupId::new(), at(1, 1), at(15, 1));
        b.status = BillingStatus::Active;
        assert_eq!(trial_ending_due(&b, at(14, 1)), None);
    }

    #[test]
    fn a_trial_start_and_a_fall_to_free_are_told_with_the_plan_change() {
        let clock = BillingClock::seoul();
        let group = GroupId::new();
        let free = Billing::free(group, 10);
        let trial = trialing(group, at(1, 1), at(15, 1));
        let name = |code: &str| code.to_uppercase();
        let changed = |from: &str, to: &str| BillingEvent::PlanChanged {
            group_id: group,
            from: from.into(),
            to: to.into(),
        };
        assert_eq!(
            status_events(&free, &trial, name, &clock),
            vec![
                changed("free", "pro"),
                BillingEvent::TrialStarted {
                    group_id: group,
                    plan: "PRO".into(),
                    ends_on: NaiveDate::from_ymd_opt(2026, 12, 15).expect("a day"),
                }
            ]
        );
        assert_eq!(
            status_events(&trial, &free, name, &clock),
            vec![
                changed("pro", "free"),
                BillingEvent::Downgraded { group_id: group, from: "PRO".into() }
            ]
        );
        assert_eq!(status_events(&trial, &trial, name, &clock), vec![]);
    }
}
