//! [`UsageRepository`] in memory: usage counters that never pass their limit.

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound as _, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_payments::events::{BillingEvent, usage_events};
use onboard_payments::ports::{IncrementError, UsageRepository};

use super::MemoryBillingStore;

#[async_trait]
impl UsageRepository for MemoryBillingStore {
    async fn increment(
        &self,
        group: GroupId,
        metric: &str,
        period_start: DateTime<Utc>,
        delta: i64,
        limit: Option<i64>,
    ) -> Result<i64, IncrementError> {
        self.atomically(|state| {
            let used = state.usage.entry((group, metric.to_owned(), period_start)).or_insert(0);
            if limit.is_some_and(|l| *used + delta > l) {
                return (Err(IncrementError::LimitReached { used: *used }), Vec::new());
            }
            let before = *used;
            *used += delta;
            let after = *used;
            // Each threshold once per (group, metric, period, percent).
            let crossed: Vec<BillingEvent> =
                usage_events(group, metric, before, after, limit)
                    .into_iter()
                    .filter(|e| match e {
                        BillingEvent::UsageThreshold { percent, .. } => state
                            .usage_notices
                            .insert((group, metric.to_owned(), period_start, *percent)),
                        _ => true,
                    })
                    .collect();
            (Ok(after), Event::records(&crossed, Utc::now().trunc_subsecs(6)))
        })
    }

    async fn usage(
        &self,
        group: GroupId,
        period_start: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(self
            .lock()
            .usage
            .iter()
            .filter(|((g, _, p), _)| *g == group && *p == period_start)
            .map(|((_, m, _), n)| (m.clone(), *n))
            .collect())
    }
}
