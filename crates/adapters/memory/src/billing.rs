//! Billing accounts, cards, charges, receipts, usage counters and idempotency keys in memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use onboard_kernel::GroupId;
use onboard_payments::model::{
    Billing, BillingStatus, Card, CardChange, CardChangeId, CardChangeStep, CardId, Catalogue,
    Charge, ChargeStatus, CustomerUid, MerchantUid, Receipt, ReceiptCursor,
};
use onboard_payments::notices::{BillingNotice, usage_notices};
use onboard_payments::ports::{
    AddCardError, BeginCardChangeError, BillingCommit, BillingRepository, CardRepository, Claim,
    CommitError, DeleteCardError, GatewayLeftover, IdempotencyRepository, IncrementError,
    UsageRepository,
};

/// The payments storage ports behind one mutex: each call is one atomic change, like the
/// PostgreSQL adapter's transaction, with the same rules.
///
/// - The catalogue is [`Catalogue::seed`], the one the migration seeds.
/// - `commit` is conditional on the account's version and on every closed charge being
///   scheduled; a receipt's `imp_uid` is unique.
/// - A customer_uid becomes a card only for the group it was prepared for, once; a group has
///   at most one main card, and its first card is main.
/// - Usage counters never exceed their limit; idempotency keys live 24 hours.
/// - Notifications (billnote): the store made by [`crate::MemoryStore`] (its `billing()`)
///   creates the notices of a commit, of a usage increment (each threshold once per group,
///   metric, period and percent) and of a trial's end (each (group, trial end, days) once)
///   under the member store's lock, in the same critical section as the change. A store made
///   on its own (`default`) has no members to notify and drops them.
#[derive(Debug)]
pub struct MemoryBillingStore {
    state: Mutex<BillingState>,
    notifier: Option<crate::store::billing_notices::BillingNotifier>,
}

impl Default for MemoryBillingStore {
    fn default() -> Self {
        Self {
            state: Mutex::new(BillingState {
                catalogue: Some(Catalogue::seed()),
                ..BillingState::default()
            }),
            notifier: None,
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
    /// The usage thresholds notified: (group, metric, period start, percent).
    usage_notices: HashSet<(GroupId, String, DateTime<Utc>, u8)>,
    /// The trial-ending notices sent: (group, trial end, days).
    trial_notices: HashSet<(GroupId, DateTime<Utc>, u32)>,
    /// What deleted groups left at the gateway, oldest first.
    leftovers: Vec<GatewayLeftover>,
    next_leftover: i64,
}

/// A change's answer and the notices it brings, by group.
type Noticed<T> = (T, Vec<(GroupId, BillingNotice)>);

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

    /// A store whose notices go to the members of the store behind `notifier`.
    pub(crate) fn notifying(notifier: crate::store::billing_notices::BillingNotifier) -> Self {
        Self { notifier: Some(notifier), ..Self::default() }
    }

    /// Runs `change` on the state and creates the notices it answers, atomically (see the
    /// type's docs): the member store's lock first, then this one.
    fn atomically<T>(&self, change: impl FnOnce(&mut BillingState) -> Noticed<T>) -> T {
        match &self.notifier {
            Some(notifier) => notifier.atomically(|| change(&mut self.lock())),
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

    /// [`Self::commit`] with the commit's notices when it holds.
    fn commit_noticed(&mut self, commit: &BillingCommit) -> Noticed<Result<(), CommitError>> {
        match self.commit(commit) {
            Ok(()) => {
                let group = commit.billing.group;
                (Ok(()), commit.notices.iter().map(|n| (group, n.clone())).collect())
            }
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

#[async_trait]
impl BillingRepository for MemoryBillingStore {
    async fn catalogue(&self) -> anyhow::Result<Catalogue> {
        Ok(self.lock().catalogue.clone().unwrap_or_else(Catalogue::seed))
    }

    async fn billing(&self, group: GroupId) -> anyhow::Result<Option<Billing>> {
        Ok(self.lock().account(group))
    }

    async fn commit(&self, commit: &BillingCommit) -> Result<(), CommitError> {
        self.atomically(|state| state.commit_noticed(commit))
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

    async fn notify_trial_ending(
        &self,
        group: GroupId,
        trial_ends_at: DateTime<Utc>,
        days: u32,
        notice: &BillingNotice,
    ) -> anyhow::Result<bool> {
        Ok(self.atomically(|state| {
            let still = state.accounts.get(&group).is_some_and(|(b, _)| {
                b.status == BillingStatus::Trialing && b.trial_ends_at == Some(trial_ends_at)
            });
            if still && state.trial_notices.insert((group, trial_ends_at, days)) {
                (true, vec![(group, notice.clone())])
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

#[async_trait]
impl CardRepository for MemoryBillingStore {
    async fn prepare(
        &self,
        group: GroupId,
        customer_uid: &CustomerUid,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.lock().prepared.insert(customer_uid.clone(), group);
        Ok(())
    }

    async fn add(&self, card: &Card) -> Result<Card, AddCardError> {
        let mut state = self.lock();
        if state.prepared.get(&card.customer_uid) != Some(&card.group) {
            return Err(AddCardError::NotPrepared);
        }
        if state.cards.iter().any(|c| c.customer_uid == card.customer_uid) {
            return Err(AddCardError::Exists);
        }
        let mut card = card.clone();
        card.main = !state.cards.iter().any(|c| c.group == card.group && c.main);
        state.cards.push(card.clone());
        Ok(card)
    }

    async fn cards(&self, group: GroupId) -> anyhow::Result<Vec<Card>> {
        let mut cards: Vec<Card> =
            self.lock().cards.iter().filter(|c| c.group == group).cloned().collect();
        cards.sort_by_key(|c| (c.created_at, c.id));
        Ok(cards)
    }

    async fn card(&self, group: GroupId, id: CardId) -> anyhow::Result<Option<Card>> {
        Ok(self.lock().cards.iter().find(|c| c.group == group && c.id == id).cloned())
    }

    async fn delete(&self, group: GroupId, id: CardId) -> Result<(), DeleteCardError> {
        let mut state = self.lock();
        let Some(index) = state.cards.iter().position(|c| c.group == group && c.id == id) else {
            return Err(DeleteCardError::NotFound);
        };
        if state.charges.values().any(|c| c.card_id == id && c.status == ChargeStatus::Scheduled) {
            return Err(DeleteCardError::InUse);
        }
        state.cards.remove(index);
        Ok(())
    }

    async fn begin_main_change(&self, change: &CardChange) -> Result<(), BeginCardChangeError> {
        let mut state = self.lock();
        if !state.cards.iter().any(|c| c.group == change.group && c.id == change.new_card) {
            return Err(BeginCardChangeError::NotFound);
        }
        let busy = state.changes.iter().any(|c| c.group == change.group && !c.step.is_finished());
        let main = state.cards.iter().find(|c| c.group == change.group && c.main).map(|c| c.id);
        if busy || main != change.old_card {
            return Err(BeginCardChangeError::Busy);
        }
        for c in state.cards.iter_mut().filter(|c| c.group == change.group) {
            c.main = c.id == change.new_card;
        }
        let mut row = change.clone();
        row.step = CardChangeStep::Marked;
        state.changes.push(row);
        Ok(())
    }

    async fn advance_main_change(
        &self,
        id: CardChangeId,
        step: CardChangeStep,
    ) -> anyhow::Result<()> {
        if let Some(c) = self.lock().changes.iter_mut().find(|c| c.id == id) {
            c.step = step;
        }
        Ok(())
    }

    async fn finish_main_change(
        &self,
        id: CardChangeId,
        commit: Option<BillingCommit>,
    ) -> Result<(), CommitError> {
        self.atomically(|state| {
            let mut notices = Vec::new();
            if let Some(commit) = &commit {
                let (done, noticed) = state.commit_noticed(commit);
                if let Err(e) = done {
                    return (Err(e), Vec::new());
                }
                notices = noticed;
            }
            if let Some(c) = state.changes.iter_mut().find(|c| c.id == id) {
                c.step = CardChangeStep::Done;
            }
            (Ok(()), notices)
        })
    }

    async fn roll_back_main_change(&self, change: &CardChange) -> anyhow::Result<()> {
        let mut state = self.lock();
        let old_exists = change
            .old_card
            .is_some_and(|old| state.cards.iter().any(|c| c.group == change.group && c.id == old));
        for c in state.cards.iter_mut().filter(|c| c.group == change.group) {
            if c.id == change.new_card {
                c.main = false;
            }
            if old_exists && Some(c.id) == change.old_card {
                c.main = true;
            }
        }
        if let Some(c) = state.changes.iter_mut().find(|c| c.id == change.id) {
            c.step = CardChangeStep::RolledBack;
        }
        Ok(())
    }

    async fn unfinished_main_changes(&self) -> anyhow::Result<Vec<CardChange>> {
        Ok(self.lock().changes.iter().filter(|c| !c.step.is_finished()).cloned().collect())
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time")
    }

    #[tokio::test]
    async fn parallel_increments_at_the_limit_edge_never_go_over() {
        let store = Arc::new(MemoryBillingStore::default());
        let group = GroupId::new();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.increment(group, "consultations", now(), 1, Some(3)).await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            if t.await.expect("the task ends").is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 3);
        let usage = store.usage(group, now()).await.expect("usage");
        assert_eq!(usage, vec![("consultations".to_owned(), 3)]);
    }

    #[tokio::test]
    async fn an_increment_over_the_limit_counts_nothing() {
        let store = MemoryBillingStore::default();
        let group = GroupId::new();
        assert_eq!(store.increment(group, "forms", now(), 1, Some(1)).await.expect("counted"), 1);
        let refused = store.increment(group, "forms", now(), 1, Some(1)).await;
        assert!(matches!(refused, Err(IncrementError::LimitReached { used: 1 })));
        assert_eq!(store.increment(group, "forms", now(), 5, None).await.expect("unlimited"), 6);
    }

    #[tokio::test]
    async fn an_idempotency_key_is_claimed_once_and_lives_a_day() {
        let store = MemoryBillingStore::default();
        let group = GroupId::new();
        assert_eq!(store.claim(group, "k", "h1", now()).await.expect("claim"), Claim::Claimed);
        assert_eq!(
            store.claim(group, "k", "h1", now()).await.expect("claim"),
            Claim::Existing { request_hash: "h1".into(), outcome: None }
        );
        let outcome = serde_json::json!({"changed": {"plan": "pro"}});
        store.complete(group, "k", &outcome).await.expect("complete");
        assert_eq!(
            store.claim(group, "k", "h2", now()).await.expect("claim"),
            Claim::Existing { request_hash: "h1".into(), outcome: Some(outcome) }
        );
        let tomorrow = now() + Duration::hours(25);
        assert_eq!(store.claim(group, "k", "h2", tomorrow).await.expect("claim"), Claim::Claimed);
    }

    #[tokio::test]
    async fn a_stale_commit_writes_nothing() {
        let store = MemoryBillingStore::default();
        let group = GroupId::new();
        let billing = Billing::free(group, 10);
        let commit = BillingCommit {
            billing,
            new_charges: vec![],
            closed_charges: vec![],
            receipt: None,
            notices: vec![],
        };
        store.commit(&commit).await.expect("the first write");
        assert!(matches!(store.commit(&commit).await, Err(CommitError::Stale)));
        assert_eq!(store.billing(group).await.expect("read").expect("stored").version, 1);
    }
}
