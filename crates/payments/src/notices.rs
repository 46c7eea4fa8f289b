//! Billing notifications: what a billing change tells the members with `billing.manage`
//! (messaging.md, "Notifications").
//!
//! The domain decides which notices a change brings ([`BillingNotice`]); storage creates them
//! in the transaction of the change itself (an outbox): a [`crate::ports::BillingCommit`]
//! carries its `notices`, a usage increment emits [`usage_notices`] for the thresholds it
//! crossed, and the trial-ending job records each (group, trial end, days) once
//! ([`crate::ports::BillingRepository::notify_trial_ending`]).
//!
//! Texts name the group with the placeholder `{group}` (its name) in bodies and `{slug}` in
//! links; the adapter fills them in where it knows the group ([`NoticeText::render`]).
//!
//! ```
//! use onboard_payments::notices::{BillingNotice, usage_thresholds_crossed};
//!
//! // 31 → 33 of 40 crosses 80 % (32) and nothing else.
//! assert_eq!(usage_thresholds_crossed(31, 33, Some(40)), vec![80]);
//! let notice = BillingNotice::UsageThreshold {
//!     metric: "consultations".into(), percent: 80, used: 33, limit: 40,
//! };
//! let text = notice.text().render("Acme", "acme");
//! assert_eq!(text.title, "Usage at 80 %");
//! assert_eq!(text.body, "Acme has used 33 of 40 consultations this period");
//! assert_eq!(text.link.as_deref(), Some("/groups/acme/billing"));
//! ```

use chrono::{DateTime, Duration, NaiveDate, Utc};
use onboard_notifications::NotificationType;

use crate::model::{Billing, BillingStatus};
use crate::period::BillingClock;

/// The permission whose holders get billing notifications.
pub const NOTIFIED_PERMISSION: &str = "billing.manage";

/// The usage thresholds, in percent of a limit, each notified once per period and metric.
pub const USAGE_THRESHOLDS: [u8; 3] = [50, 80, 100];

/// How many days before a trial ends its members are told (`billing.trial_ending`), largest
/// first. A notice is only due when the trial had begun by then (a 14-day trial gets no
/// 30-day notice).
pub const TRIAL_ENDING_DAYS: [u32; 3] = [30, 7, 1];

/// Where billing notifications take the member.
const BILLING_LINK: &str = "/groups/{slug}/billing";

/// One notification a billing change brings to the holders of `billing.manage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingNotice {
    /// A trial began (`billing.trial_started`).
    TrialStarted {
        /// The plan's display name.
        plan: String,
        /// The day (billing time zone) the trial ends.
        ends_on: NaiveDate,
    },
    /// A trial ends in `days` days (`billing.trial_ending`).
    TrialEnding { plan: String, days: u32, ends_on: NaiveDate },
    /// A charge was paid: the first after a trial, a renewal, a plan change, a retry
    /// (`billing.payment_succeeded`).
    PaymentSucceeded {
        plan: String,
        /// KRW, VAT included.
        amount: i64,
    },
    /// A charge failed (`billing.payment_failed`).
    PaymentFailed {
        plan: String,
        amount: i64,
        reason: String,
        /// The day of the next attempt, if one is scheduled.
        retry_on: Option<NaiveDate>,
    },
    /// The group fell back to Free: the last retry failed, a cancellation took effect, a trial
    /// was given up (`billing.downgraded`).
    Downgraded {
        /// The plan it was on.
        from: String,
    },
    /// A usage counter reached `percent` of the plan's limit (`usage.threshold`).
    UsageThreshold { metric: String, percent: u8, used: i64, limit: i64 },
}

/// The texts of a notice, with `{group}` in the body and `{slug}` in the link still to fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeText {
    pub kind: NotificationType,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
}

impl NoticeText {
    /// The texts with the group's name and slug filled in.
    #[must_use]
    pub fn render(&self, group_name: &str, slug: &str) -> Self {
        Self {
            kind: self.kind,
            title: self.title.clone(),
            body: self.body.replace("{group}", group_name),
            link: self.link.as_ref().map(|l| l.replace("{slug}", slug)),
        }
    }
}

/// KRW with thousands separators: `83,380 KRW`.
fn won(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}{out} KRW")
}

fn days(n: u32) -> String {
    if n == 1 { "1 day".to_owned() } else { format!("{n} days") }
}

impl BillingNotice {
    /// The notification type.
    pub const fn kind(&self) -> NotificationType {
        match self {
            Self::TrialStarted { .. } => NotificationType::BillingTrialStarted,
            Self::TrialEnding { .. } => NotificationType::BillingTrialEnding,
            Self::PaymentSucceeded { .. } => NotificationType::BillingPaymentSucceeded,
            Self::PaymentFailed { .. } => NotificationType::BillingPaymentFailed,
            Self::Downgraded { .. } => NotificationType::BillingDowngraded,
            Self::UsageThreshold { .. } => NotificationType::UsageThreshold,
        }
    }

    /// The title, body (with `{group}`) and link (with `{slug}`).
    pub fn text(&self) -> NoticeText {
        let (title, body) = match self {
            Self::TrialStarted { plan, ends_on } => {
                ("Trial started".to_owned(), format!("{{group}} is trying {plan} until {ends_on}"))
            }
            Self::TrialEnding { plan, days: n, ends_on } => (
                "Trial ending soon".to_owned(),
                format!("The {plan} trial of {{group}} ends in {}, on {ends_on}", days(*n)),
            ),
            Self::PaymentSucceeded { plan, amount } => (
                "Payment received".to_owned(),
                format!("{{group}} paid {} for {plan}", won(*amount)),
            ),
            Self::PaymentFailed { plan, amount, reason, retry_on } => {
                let next = match retry_on {
                    Some(day) => format!("; it is tried again on {day}"),
                    None => String::new(),
                };
                (
                    "Payment failed".to_owned(),
                    format!(
                        "A charge of {} for {plan} of {{group}} failed: {reason}{next}",
                        won(*amount)
                    ),
                )
            }
            Self::Downgraded { from } => (
                "Moved to the Free plan".to_owned(),
                format!("{{group}} is no longer on {from}: it is on the Free plan now"),
            ),
            Self::UsageThreshold { metric, percent, used, limit } => (
                format!("Usage at {percent} %"),
                format!("{{group}} has used {used} of {limit} {metric} this period"),
            ),
        };
        NoticeText { kind: self.kind(), title, body, link: Some(BILLING_LINK.to_owned()) }
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

/// The notices of a usage increment of `metric` from `before` to `after` against `limit`:
/// one [`BillingNotice::UsageThreshold`] per threshold crossed. Storage emits them in the
/// increment's transaction, each at most once per (group, metric, period, percent).
pub fn usage_notices(
    metric: &str,
    before: i64,
    after: i64,
    limit: Option<i64>,
) -> Vec<BillingNotice> {
    usage_thresholds_crossed(before, after, limit)
        .into_iter()
        .map(|percent| BillingNotice::UsageThreshold {
            metric: metric.to_owned(),
            percent,
            used: after,
            limit: limit.unwrap_or_default(),
        })
        .collect()
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
/// involved): a trial began, or the group fell back to Free.
pub fn status_notices(
    before: &Billing,
    after: &Billing,
    plan_name: impl Fn(&str) -> String,
    clock: &BillingClock,
) -> Vec<BillingNotice> {
    let mut notices = Vec::new();
    if after.status == BillingStatus::Trialing
        && before.status != BillingStatus::Trialing
        && let Some(end) = after.trial_ends_at
    {
        notices.push(BillingNotice::TrialStarted {
            plan: plan_name(after.plan.as_str()),
            ends_on: clock.day_of(end),
        });
    }
    if after.status == BillingStatus::Free && before.status != BillingStatus::Free {
        notices.push(BillingNotice::Downgraded { from: plan_name(before.plan.as_str()) });
    }
    notices
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use onboard_kernel::GroupId;

    use super::*;
    use crate::model::PlanCode;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).single().expect("a time")
    }

    fn trialing(began: DateTime<Utc>, ends: DateTime<Utc>) -> Billing {
        let mut b = Billing::free(GroupId::new(), 10);
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
    fn usage_notices_say_the_count_and_the_limit() {
        let notices = usage_notices("customers", 7, 8, Some(10));
        assert_eq!(
            notices,
            vec![BillingNotice::UsageThreshold {
                metric: "customers".into(),
                percent: 80,
                used: 8,
                limit: 10
            }]
        );
        assert_eq!(notices[0].kind(), NotificationType::UsageThreshold);
    }

    #[test]
    fn a_fourteen_day_trial_gets_the_seven_and_one_day_notices_but_not_the_thirty_day_one() {
        let b = trialing(at(1, 1), at(15, 1));
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
        let b = trialing(began, at(15, 1));
        assert_eq!(trial_ending_due(&b, at(1, 1) - Duration::days(14)), Some(30));
        assert_eq!(trial_ending_due(&b, at(14, 12)), Some(1), "not 30 nor 7 any more");
    }

    #[test]
    fn only_a_trialing_account_has_a_trial_ending() {
        let mut b = trialing(at(1, 1), at(15, 1));
        b.status = BillingStatus::Active;
        assert_eq!(trial_ending_due(&b, at(14, 1)), None);
    }

    #[test]
    fn a_trial_start_and_a_fall_to_free_tell_the_billing_managers() {
        let clock = BillingClock::seoul();
        let free = Billing::free(GroupId::new(), 10);
        let trial = trialing(at(1, 1), at(15, 1));
        let name = |code: &str| code.to_uppercase();
        assert_eq!(
            status_notices(&free, &trial, name, &clock),
            vec![BillingNotice::TrialStarted {
                plan: "PRO".into(),
                ends_on: NaiveDate::from_ymd_opt(2026, 12, 15).expect("a day"),
            }]
        );
        assert_eq!(
            status_notices(&trial, &free, name, &clock),
            vec![BillingNotice::Downgraded { from: "PRO".into() }]
        );
        assert_eq!(status_notices(&trial, &trial, name, &clock), vec![]);
    }

    #[test]
    fn texts_name_the_group_and_link_to_its_billing() {
        let failed = BillingNotice::PaymentFailed {
            plan: "Pro".into(),
            amount: 83_380,
            reason: "card declined".into(),
            retry_on: NaiveDate::from_ymd_opt(2026, 12, 16),
        }
        .text()
        .render("Acme", "acme");
        assert_eq!(failed.kind, NotificationType::BillingPaymentFailed);
        assert_eq!(failed.title, "Payment failed");
        assert_eq!(
            failed.body,
            "A charge of 83,380 KRW for Pro of Acme failed: card declined; it is tried again on 2026-12-16"
        );
        assert_eq!(failed.link.as_deref(), Some("/groups/acme/billing"));
        let ending = BillingNotice::TrialEnding {
            plan: "Pro".into(),
            days: 1,
            ends_on: NaiveDate::from_ymd_opt(2026, 12, 15).expect("a day"),
        };
        assert_eq!(
            ending.text().render("Acme", "acme").body,
            "The Pro trial of Acme ends in 1 day, on 2026-12-15"
        );
        assert_eq!(won(1_234_567), "1,234,567 KRW");
        assert_eq!(won(100), "100 KRW");
    }
}
