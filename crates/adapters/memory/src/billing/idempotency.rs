//! [`IdempotencyRepository`] in memory: `Idempotency-Key` claims, living a day.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use onboard_kernel::GroupId;
use onboard_payments::ports::{Claim, IdempotencyRepository};

use super::{KEY_TTL_HOURS, KeyRow, MemoryBillingStore};

#[async_trait]
impl IdempotencyRepository for MemoryBillingStore {
    async fn claim(
        &self,
        group: GroupId,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Claim> {
        let mut state = self.lock();
        let slot = (group, key.to_owned());
        if let Some(row) = state.keys.get(&slot)
            && row.claimed_at > now - Duration::hours(KEY_TTL_HOURS)
        {
            return Ok(Claim::Existing {
                request_hash: row.request_hash.clone(),
                outcome: row.outcome.clone(),
            });
        }
        state.keys.insert(
            slot,
            KeyRow { request_hash: request_hash.to_owned(), claimed_at: now, outcome: None },
        );
        Ok(Claim::Claimed)
    }

    async fn complete(
        &self,
        group: GroupId,
        key: &str,
        outcome: &serde_json::Value,
    ) -> anyhow::Result<()> {
        if let Some(row) = self.lock().keys.get_mut(&(group, key.to_owned())) {
            row.outcome = Some(outcome.clone());
        }
        Ok(())
    }

    async fn release(&self, group: GroupId, key: &str) -> anyhow::Result<()> {
        let mut state = self.lock();
        let slot = (group, key.to_owned());
        if state.keys.get(&slot).is_some_and(|r| r.outcome.is_none()) {
            state.keys.remove(&slot);
        }
        Ok(())
    }
}
