//! [`BillingRepository`] in memory: accounts, charges, receipts, the periodic queries and what
//! deleted groups leave at the gateway.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_payments::model::{
    Billing, BillingStatus, Catalogue, Charge, ChargeStatus, MerchantUid, Receipt, ReceiptCursor,
};
use onboard_payments::ports::{BillingCommit, BillingRepository, CommitError, GatewayLeftover};

use super::MemoryBillingStore;

#[async_trait]
impl BillingRepository for MemoryBillingStore {
    async fn catalogue(&self) -> anyhow::Result<Catalogue> {
        Ok(self.lock().catalogue.clone().unwrap_or_else(Catalogue::seed))
    }

    async fn billing(&self, group: GroupId) -> anyhow::Result<Option<Billing>> {
        Ok(self.lock().account(group))
    }

    async fn commit(&self, commit: &BillingCommit) -> Result<(), CommitError> {
        self.atomically(|state| state.commit_recorded(commit))
    }

    async fn charge(&self, merchant_uid: &MerchantUid) -> anyhow::Result<Option<Charge>> {
        Ok(self.lock().charges.get(merchant_uid).cloned())
    }

    async fn receipt_exists(&self, imp_uid: &str) -> anyhow::Result<bool> {
        Ok(self.lock().receipts.iter().any(|r| r.imp_uid == imp_uid))
    }

    async fn receipts(
        &self,
        group: GroupId,
        after: Option<ReceiptCursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<Receipt>> {
        let state = self.lock();
        let mut rows: Vec<Receipt> = state
            .receipts
            .iter()
            .filter(|r| r.group == group)
            .filter(|r| after.is_none_or(|a| (r.created_at, r.id) < (a.created_at, a.id)))
            .cloned()
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        rows.truncate(limit as usize);
        Ok(rows)
    }

    async fn overdue_charges(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Charge>> {
        let state = self.lock();
        let mut rows: Vec<Charge> = state
            .charges
            .values()
            .filter(|c| c.status == ChargeStatus::Scheduled && c.at < before)
            .cloned()
            .collect();
        rows.sort_by_key(|c| c.at);
        rows.truncate(limit as usize);
        Ok(rows)
    }

    async fn expired_billings(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Billing>> {
        let state = self.lock();
        let mut rows: Vec<Billing> = state
            .accounts
            .keys()
            .filter_map(|g| state.account(*g))
            .filter(|b| {
                b.status != BillingStatus::Free
                    && b.current_period_end.is_some_and(|end| end < now)
                    && (b.status == BillingStatus::Canceling
                        || b.next_charge
                            .as_ref()
                            .is_none_or(|c| c.status != ChargeStatus::Scheduled))
            })
            .collect();
        rows.sort_by_key(|b| b.current_period_end);
        rows.truncate(limit as usize);
        Ok(rows)
    }

    async fn trials_ending(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<(DateTime<Utc>, GroupId)>,
        limit: u32,
    ) -> anyhow::Result<Vec<Billing>> {
        let state = self.lock();
        let mut rows: Vec<(DateTime<Utc>, Billing)> = state
            .accounts
            .keys()
            .filter_map(|g| state.account(*g))
            .filter(|b| b.status == BillingStatus::Trialing)
            .filter_map(|b| b.trial_ends_at.map(|end| (end, b)))
            .filter(|(end, b)| {
                *end > now && *end <= until && after.is_none_or(|a| (*end, b.group) > a)
            })
            .collect();
        rows.sort_by_key(|(end, b)| (*end, b.group));
        rows.truncate(limit as usize);
        Ok(rows.into_iter().map(|(_, b)| b).collect())
    }

    async fn record_trial_ending(
        &self,
        group: GroupId,
        trial_ends_at: DateTime<Utc>,
        days: u32,
        events: &[Event],
    ) -> anyhow::Result<bool> {
        Ok(self.atomically(|state| {
            let still = state.accounts.get(&group).is_some_and(|(b, _)| {
                b.status == BillingStatus::Trialing && b.trial_ends_at == Some(trial_ends_at)
            });
            if still && state.trial_notices.insert((group, trial_ends_at, days)) {
                (true, events.to_vec())
            } else {
                (false, Vec::new())
            }
        }))
    }

    async fn gateway_leftovers(&self, limit: u32) -> anyhow::Result<Vec<GatewayLeftover>> {
        Ok(self.lock().leftovers.iter().take(limit as usize).cloned().collect())
    }

    async fn forget_leftover(&self, id: i64) -> anyhow::Result<()> {
        self.lock().leftovers.retain(|l| l.id != id);
        Ok(())
    }
}

impl MemoryBillingStore {
    /// Forgets a deleted group's billing data, as PostgreSQL's cascade does, and records what
    /// it leaves at the gateway (its scheduled charges, then every customer_uid issued to it)
    /// for [`BillingRepository::gateway_leftovers`]. Called by the member store under its lock
    /// when it deletes a group.
    pub fn group_deleted(&self, group: GroupId) {
        let mut state = self.lock();
        let state = &mut *state;
        let mut left: Vec<(String, Option<String>)> = state
            .charges
            .values()
            .filter(|c| c.group == group && c.status == ChargeStatus::Scheduled)
            .map(|c| (c.customer_uid.as_str().to_owned(), Some(c.merchant_uid.as_str().to_owned())))
            .collect();
        left.sort();
        let mut keys: Vec<String> = state
            .prepared
            .iter()
            .filter(|(_, g)| **g == group)
            .map(|(uid, _)| uid.as_str().to_owned())
            .collect();
        keys.sort();
        left.extend(keys.into_iter().map(|uid| (uid, None)));
        for (customer_uid, merchant_uid) in left {
            state.next_leftover += 1;
            state.leftovers.push(GatewayLeftover {
                id: state.next_leftover,
                customer_uid,
                merchant_uid,
            });
        }
        state.accounts.remove(&group);
        state.charges.retain(|_, c| c.group != group);
        state.receipts.retain(|r| r.group != group);
        state.prepared.retain(|_, g| *g != group);
        state.cards.retain(|c| c.group != group);
        state.changes.retain(|c| c.group != group);
        state.usage.retain(|(g, _, _), _| *g != group);
        state.keys.retain(|(g, _), _| *g != group);
    }
}
