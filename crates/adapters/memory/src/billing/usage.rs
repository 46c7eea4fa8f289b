//! [`UsageRepository`] in memory: usage counters that never pass their limit.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_payments::notices::{BillingNotice, usage_notices};
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
            let notices =
                usage_notices(metric, before, after, limit)
                    .into_iter()
                    .filter(|n| match n {
                        BillingNotice::UsageThreshold { percent, .. } => state
                            .usage_notices
                            .insert((group, metric.to_owned(), period_start, *percent)),
                        _ => true,
                    })
                    .map(|n| (group, n))
                    .collect();
            (Ok(after), notices)
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
