//! Usage against the plan's limits, counted per usage period.

use chrono::{DateTime, Datelike, Utc};
use onboard_groups::{Group, Slug};
use onboard_kernel::MemberId;

use crate::error::{UsageError, ViewBillingError};
use crate::model::{Billing, BillingStatus, Usage};
use crate::ports::IncrementError;

use super::PaymentsService;

impl PaymentsService {
    /// The current usage period of a group: the billing period while on a paid plan (the
    /// trial while trialing); on Free, the month-long period (same arithmetic as billing
    /// periods) running from the group's creation day, at midnight in the billing time zone.
    pub fn usage_period(
        &self,
        group: &Group,
        billing: &Billing,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        if billing.status != BillingStatus::Free
            && let (Some(s), Some(e)) = (billing.current_period_start, billing.current_period_end)
        {
            return (s, e);
        }
        let clock = self.config.clock;
        let today = clock.day_of(now);
        let mut first = clock.day_of(group.created_at);
        // Jump close to today, then walk (each step is one month).
        let months =
            (today.year() - first.year()) * 12 + today.month() as i32 - first.month() as i32;
        for _ in 0..(months - 2).max(0) {
            first = crate::period::next_first_day(first, crate::model::Interval::Month);
        }
        loop {
            let next = crate::period::next_first_day(first, crate::model::Interval::Month);
            if next > today {
                return (clock.at_pay_hour(first, 0), clock.at_pay_hour(next, 0));
            }
            first = next;
        }
    }

    /// Every limited metric's count in the current period.
    #[tracing::instrument(level = "debug", name = "payments.usage", skip_all)]
    pub async fn usage(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<Vec<Usage>, ViewBillingError> {
        let group = self.member_of(slug, caller).await?;
        let billing = self.load(group.id).await?;
        let catalogue = self.catalogue().await?;
        let (start, end) = self.usage_period(&group, &billing, self.now());
        let counted = self.ports.usage.usage(group.id, start).await?;
        let plan = catalogue.plan(&billing.plan).cloned().unwrap_or_else(|| catalogue.free());
        Ok(catalogue
            .metrics()
            .into_iter()
            .map(|metric| Usage {
                used: counted.iter().find(|(m, _)| *m == metric).map_or(0, |(_, n)| *n),
                limit: plan.limits.get(&metric).copied().flatten(),
                metric,
                period_start: start,
                period_end: end,
            })
            .collect())
    }

    /// Counts `delta` of `metric` against the current plan's limit, atomically: over the
    /// limit nothing is counted. `group` is already authorized (see [`Self::manager_of`]).
    pub(crate) async fn record_usage(
        &self,
        group: &Group,
        metric: &str,
        delta: i64,
    ) -> Result<Usage, UsageError> {
        let billing = self.load(group.id).await?;
        let catalogue = self.catalogue().await?;
        if !catalogue.metrics().iter().any(|m| m == metric) {
            return Err(UsageError::UnknownMetric(metric.to_owned()));
        }
        let plan = catalogue.plan(&billing.plan).cloned().unwrap_or_else(|| catalogue.free());
        let limit = plan.limits.get(metric).copied().flatten();
        let (start, end) = self.usage_period(group, &billing, self.now());
        let usage = |used| Usage {
            metric: metric.to_owned(),
            used,
            limit,
            period_start: start,
            period_end: end,
        };
        match self.ports.usage.increment(group.id, metric, start, delta, limit).await {
            Ok(used) => Ok(usage(used)),
            Err(IncrementError::LimitReached { used }) => {
                Err(UsageError::LimitReached(usage(used)))
            }
            Err(IncrementError::Unexpected(e)) => Err(e.into()),
        }
    }
}
