//! SMS credit in memory: each group's balance and ledger under the store's lock, so a change
//! and what it pays for (an invite, a message) are one atomic step, as in PostgreSQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_payments::events::low_credit_events;
use onboard_payments::sms_credit::{self, CreditReason, LedgerEntry};

use super::{MemoryStore, State};

/// Every group's wallet and ledger.
#[derive(Debug, Default)]
pub(super) struct SmsCredit {
    pub(super) wallets: HashMap<GroupId, Wallet>,
    /// Every ledger entry of every group, oldest first.
    pub(super) ledger: Vec<(GroupId, LedgerEntry)>,
    /// Purchases by merchant_uid.
    pub(super) purchases: HashMap<String, sms_credit::CreditPurchase>,
}

/// One group's wallet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Wallet {
    pub(super) balance: i64,
    /// `(below, amount)`.
    pub(super) auto_topup: Option<(i64, i64)>,
    pub(super) topup_requested_at: Option<DateTime<Utc>>,
}

impl State {
    /// [`MemoryStore::sms_credit_apply`] under a lock already held.
    pub(super) fn apply_sms_credit(
        &mut self,
        group: GroupId,
        delta: i64,
        reason: CreditReason,
        reference: Option<&str>,
        at: DateTime<Utc>,
    ) -> Option<i64> {
        if delta == 0 {
            return None;
        }
        let wallet = self.sms_credit.wallets.entry(group).or_default();
        let before = wallet.balance;
        let after = sms_credit::apply(before, delta)?;
        wallet.balance = after;
        let topup_line = wallet.auto_topup.map(|(below, _)| below);
        if delta < 0
            && topup_line.is_some_and(|line| sms_credit::crossed_below(before, after, line))
            && wallet.topup_requested_at.is_none()
        {
            wallet.topup_requested_at = Some(at);
        }
        let id = i64::try_from(self.sms_credit.ledger.len()).unwrap_or(i64::MAX).saturating_add(1);
        let entry = LedgerEntry {
            id,
            delta,
            balance: after,
            reason,
            reference: reference.map(str::to_owned),
            at,
        };
        self.sms_credit.ledger.push((group, entry));
        self.outbox.record(&Event::records(&low_credit_events(group, before, after), at));
        Some(after)
    }
}

impl MemoryStore {
    /// Applies `delta` KRW to `group`'s SMS credit and appends the ledger entry, atomically:
    /// the memory twin of `onboard_postgres::sms_credit::apply`. Answers the new balance, or
    /// `None` (nothing changed) when a debit is more than the balance. A debit records the
    /// events of [`low_credit_events`] (`sms_credit.low` when it crossed below 1,000 KRW) in
    /// the outbox; one crossing below the auto top-up threshold marks the wallet for the
    /// top-up job.
    pub fn sms_credit_apply(
        &self,
        group: GroupId,
        delta: i64,
        reason: CreditReason,
        reference: Option<&str>,
        at: DateTime<Utc>,
    ) -> Option<i64> {
        self.state().apply_sms_credit(group, delta, reason, reference, at)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_debit_the_balance_does_not_cover_changes_nothing() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let at = Utc::now();
        assert_eq!(store.sms_credit_apply(group, -11, CreditReason::Message, None, at), None);
        assert_eq!(store.sms_credit_apply(group, 20, CreditReason::Purchase, None, at), Some(20));
        assert_eq!(store.sms_credit_apply(group, -11, CreditReason::Message, None, at), Some(9));
        assert_eq!(store.sms_credit_apply(group, -11, CreditReason::Message, None, at), None);
        let state = store.state();
        let balances: Vec<i64> = state.sms_credit.ledger.iter().map(|(_, e)| e.balance).collect();
        assert_eq!(balances, [20, 9]);
    }

    #[test]
    fn only_the_debit_crossing_below_the_low_line_records_the_low_credit_event() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let at = Utc::now();
        store.sms_credit_apply(group, 1_005, CreditReason::Purchase, None, at);
        store.sms_credit_apply(group, -37, CreditReason::Message, None, at);
        store.sms_credit_apply(group, -37, CreditReason::Message, None, at);
        let state = store.state();
        let types: Vec<&str> = state.outbox.all().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["sms_credit.low"]);
        assert_eq!(
            state.outbox.all().next().map(|e| e.payload["balance"].clone()),
            Some(968.into())
        );
    }

    #[test]
    fn crossing_below_the_auto_top_up_line_asks_for_one_top_up() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let at = Utc::now();
        store.sms_credit_apply(group, 500, CreditReason::Purchase, None, at);
        store.state().sms_credit.wallets.get_mut(&group).unwrap().auto_topup = Some((480, 1_000));
        store.sms_credit_apply(group, -11, CreditReason::Message, None, at);
        assert_eq!(store.state().sms_credit.wallets[&group].topup_requested_at, None);
        store.sms_credit_apply(group, -11, CreditReason::Message, None, at);
        let later = at + chrono::TimeDelta::seconds(1);
        store.sms_credit_apply(group, -11, CreditReason::Message, None, later);
        assert_eq!(store.state().sms_credit.wallets[&group].topup_requested_at, Some(at));
    }
}
