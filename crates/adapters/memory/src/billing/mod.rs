//! Billing accounts, cards, charges, receipts, usage counters and idempotency keys in memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_payments::model::{
    Billing, Card, CardChange, Catalogue, Charge, ChargeStatus, CustomerUid, MerchantUid, Receipt,
};
use onboard_payments::ports::{BillingCommit, CommitError, GatewayLeftover};

mod accounts;
mod cards;
mod idempotency;
mod usage;

/// The payments storage ports behind one mutex: each call is one atomic change, like the
/// PostgreSQL adapter's transaction, with the same rules.
///
/// - The catalogue is [`Catalogue::seed`], the one the migration seeds.
/// - `commit` is conditional on the account's version and on every closed charge being
///   scheduled; a receipt's `imp_uid` is unique.
/// - A customer_uid becomes a card only for the group it was prepared for, once; a group has
///   at most one main card, and its first card is main.
/// - Usage counters never exceed their limit; idempotency keys live 24 hours.
/// - Events: the store made by [`crate::MemoryStore`] (its `billing()`) records the events
///   of a commit, of a usage increment (each threshold once per group, metric, period and
///   percent) and of a trial's end (each (group, trial end, days) once) in the member store's
///   outbox, under its lock, in the same critical section as the change. A store made on its
///   own (`default`) has no outbox and drops them.
#[derive(Debug)]
pub struct MemoryBillingStore {
    state: Mutex<BillingState>,
    outbox: Option<crate::store::billing_outbox::BillingOutbox>,
}

impl Default for MemoryBillingStore {
    fn default() -> Self {
        Self {
            state: Mutex::new(BillingState {
                catalogue: Some(Catalogue::seed()),
                ..BillingState::default()
            }),
            outbox: None,
        }
    }
}

#[derive(Debug, Default)]
struct BillingState {
    catalogue: Option<Catalogue>,
    /// The account with its next charge's merchant_uid.
    accounts: HashMap<GroupId, (Billing, Option<MerchantUid>)>,
    charges: HashMap<MerchantUid, Charge>,
    receipts: Vec<Receipt>,
    prepared: HashMap<CustomerUid, GroupId>,
    cards: Vec<Card>,
    changes: Vec<CardChange>,
    usage: HashMap<(GroupId, String, DateTime<Utc>), i64>,
    keys: HashMap<(GroupId, String), KeyRow>,
    /// The usage thresholds recorded: (group, metric, period start, percent).
    usage_notices: HashSet<(GroupId, String, DateTime<Utc>, u8)>,
    /// The trial-ending events recorded: (group, trial end, days).
    trial_notices: HashSet<(GroupId, DateTime<Utc>, u32)>,
    /// What deleted groups left at the gateway, oldest first.
    leftovers: Vec<GatewayLeftover>,
    next_leftover: i64,
}

/// A change's answer and the events it records.
type Recorded<T> = (T, Vec<Event>);

#[derive(Debug, Clone)]
struct KeyRow {
    request_hash: String,
    claimed_at: DateTime<Utc>,
    /// The command's outcome, as serialised by the domain.
    outcome: Option<serde_json::Value>,
}

/// How long an idempotency key lives.
const KEY_TTL_HOURS: i64 = 24;

impl MemoryBillingStore {
    /// The plan a group is on (`None`: no billing account, the free plan).
    pub fn plan_code(&self, group: GroupId) -> Option<String> {
        self.lock().accounts.get(&group).map(|(b, _)| b.plan.as_str().to_owned())
    }

    /// Inserts a receipt unless one with its `imp_uid` exists (answers whether it did): the
    /// SMS credit store calls it under its own lock, which is always taken first.
    pub(crate) fn insert_receipt(&self, receipt: &Receipt) -> bool {
        let mut state = self.lock();
        if state.receipts.iter().any(|r| r.imp_uid == receipt.imp_uid) {
            return false;
        }
        state.receipts.push(receipt.clone());
        true
    }

    /// How many receipts are stored (tests).
    #[cfg(test)]
    pub(crate) fn lock_receipts_len(&self) -> usize {
        self.lock().receipts.len()
    }

    fn lock(&self) -> MutexGuard<'_, BillingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A store whose events go to the outbox of the store behind `outbox`.
    pub(crate) fn recording(outbox: crate::store::billing_outbox::BillingOutbox) -> Self {
        Self { outbox: Some(outbox), ..Self::default() }
    }

    /// Runs `change` on the state and records the events it answers, atomically (see the
    /// type's docs): the member store's lock first, then this one.
    fn atomically<T>(&self, change: impl FnOnce(&mut BillingState) -> Recorded<T>) -> T {
        match &self.outbox {
            Some(outbox) => outbox.atomically(|| change(&mut self.lock())),
            None => change(&mut self.lock()).0,
        }
    }
}

impl BillingState {
    fn account(&self, group: GroupId) -> Option<Billing> {
        let (billing, next) = self.accounts.get(&group)?;
        let mut billing = billing.clone();
        billing.next_charge = next.as_ref().and_then(|m| self.charges.get(m)).cloned();
        Some(billing)
    }

    /// [`Self::commit`] with the commit's events when it holds.
    fn commit_recorded(&mut self, commit: &BillingCommit) -> Recorded<Result<(), CommitError>> {
        match self.commit(commit) {
            Ok(()) => (Ok(()), commit.events.clone()),
            Err(e) => (Err(e), Vec::new()),
        }
    }

    fn commit(&mut self, commit: &BillingCommit) -> Result<(), CommitError> {
        let group = commit.billing.group;
        let stored = self.accounts.get(&group).map_or(0, |(b, _)| b.version);
        if stored != commit.billing.version {
            return Err(CommitError::Stale);
        }
        for (uid, _) in &commit.closed_charges {
            let open = self
                .charges
                .get(uid)
                .is_some_and(|c| c.group == group && c.status == ChargeStatus::Scheduled);
            if !open {
                return Err(CommitError::Stale);
            }
        }
        if let Some(r) = &commit.receipt
            && self.receipts.iter().any(|x| x.imp_uid == r.imp_uid)
        {
            return Err(CommitError::DuplicateReceipt);
        }
        if commit.new_charges.iter().any(|c| self.charges.contains_key(&c.merchant_uid)) {
            return Err(CommitError::Unexpected(anyhow::anyhow!("a merchant_uid is taken")));
        }
        for c in &commit.new_charges {
            self.charges.insert(c.merchant_uid.clone(), c.clone());
        }
        for (uid, status) in &commit.closed_charges {
            if let Some(c) = self.charges.get_mut(uid) {
                c.status = *status;
            }
        }
        if let Some(r) = &commit.receipt {
            self.receipts.push(r.clone());
        }
        let mut billing = commit.billing.clone();
        billing.version += 1;
        let next = billing.next_charge.take().map(|c| c.merchant_uid);
        self.accounts.insert(group, (billing, next));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
