//! [`SmsCreditRepository`] in memory: each call under the store's lock (the billing store's
//! lock, for a purchase's receipt, is taken after it), so a purchase's credit, ledger entry and
//! receipt appear together, as in PostgreSQL's transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_payments::model::{MerchantUid, Receipt};
use onboard_payments::sms_credit::{
    AutoTopup, CompletePurchaseError, CreditPurchase, CreditReason, DueTopup, LedgerEntry,
    PurchaseStatus, SmsCreditRepository, Wallet,
};

use super::MemoryStore;

#[async_trait]
impl SmsCreditRepository for MemoryStore {
    async fn wallet(&self, group: GroupId) -> anyhow::Result<Wallet> {
        let state = self.state();
        Ok(state
            .sms_credit
            .wallets
            .get(&group)
            .map(|w| Wallet {
                balance: w.balance,
                auto_topup: w.auto_topup.map(|(below, amount)| AutoTopup { below, amount }),
                topup_requested_at: w.topup_requested_at,
            })
            .unwrap_or_default())
    }

    async fn ledger(
        &self,
        group: GroupId,
        before: Option<i64>,
        limit: u32,
    ) -> anyhow::Result<Vec<LedgerEntry>> {
        let state = self.state();
        Ok(state
            .sms_credit
            .ledger
            .iter()
            .rev()
            .filter(|(g, e)| *g == group && before.is_none_or(|b| e.id < b))
            .take(limit as usize)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn set_auto_topup(
        &self,
        group: GroupId,
        auto_topup: Option<AutoTopup>,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut state = self.state();
        let wallet = state.sms_credit.wallets.entry(group).or_default();
        wallet.auto_topup = auto_topup.map(|t| (t.below, t.amount));
        if auto_topup.is_none() {
            wallet.topup_requested_at = None;
        }
        Ok(())
    }

    async fn begin_purchase(&self, purchase: &CreditPurchase) -> anyhow::Result<bool> {
        let mut state = self.state();
        let key = purchase.merchant_uid.as_str().to_owned();
        if state.sms_credit.purchases.contains_key(&key) {
            return Ok(false);
        }
        state.sms_credit.purchases.insert(key, purchase.clone());
        Ok(true)
    }

    async fn purchase(&self, merchant_uid: &MerchantUid) -> anyhow::Result<Option<CreditPurchase>> {
        Ok(self.state().sms_credit.purchases.get(merchant_uid.as_str()).cloned())
    }

    async fn complete_purchase(
        &self,
        merchant_uid: &MerchantUid,
        receipt: &Receipt,
        events: &[Event],
    ) -> Result<i64, CompletePurchaseError> {
        let mut state = self.state();
        let Some(purchase) = state
            .sms_credit
            .purchases
            .get(merchant_uid.as_str())
            .filter(|p| p.status == PurchaseStatus::Pending)
            .cloned()
        else {
            return Err(CompletePurchaseError::NotPending);
        };
        if !self.billing.insert_receipt(receipt) {
            return Err(CompletePurchaseError::NotPending);
        }
        let balance = state
            .apply_sms_credit(
                purchase.group,
                purchase.amount,
                purchase.reason,
                Some(merchant_uid.as_str()),
                receipt.created_at,
            )
            .ok_or_else(|| anyhow::anyhow!("a credit was refused"))?;
        if purchase.reason == CreditReason::AutoTopup
            && let Some(w) = state.sms_credit.wallets.get_mut(&purchase.group)
        {
            w.topup_requested_at = None;
        }
        if let Some(p) = state.sms_credit.purchases.get_mut(merchant_uid.as_str()) {
            p.status = PurchaseStatus::Paid;
        }
        state.outbox.record(events);
        Ok(balance)
    }

    async fn fail_purchase(
        &self,
        merchant_uid: &MerchantUid,
        _reason: &str,
        _now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        let Some(purchase) = state
            .sms_credit
            .purchases
            .get_mut(merchant_uid.as_str())
            .filter(|p| p.status == PurchaseStatus::Pending)
        else {
            return Ok(false);
        };
        purchase.status = PurchaseStatus::Failed;
        let (group, kind) = (purchase.group, purchase.reason);
        if kind == CreditReason::AutoTopup
            && let Some(w) = state.sms_credit.wallets.get_mut(&group)
        {
            w.topup_requested_at = None;
        }
        state.outbox.record(events);
        Ok(true)
    }

    async fn pending_purchases(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<CreditPurchase>> {
        let state = self.state();
        let mut pending: Vec<CreditPurchase> = state
            .sms_credit
            .purchases
            .values()
            .filter(|p| p.status == PurchaseStatus::Pending && p.created_at < before)
            .cloned()
            .collect();
        pending.sort_by_key(|p| p.created_at);
        pending.truncate(limit as usize);
        Ok(pending)
    }

    async fn due_topups(&self, limit: u32) -> anyhow::Result<Vec<DueTopup>> {
        let state = self.state();
        let mut due: Vec<DueTopup> = state
            .sms_credit
            .wallets
            .iter()
            .filter_map(|(group, w)| {
                Some(DueTopup {
                    group: *group,
                    amount: w.auto_topup?.1,
                    requested_at: w.topup_requested_at?,
                })
            })
            .collect();
        due.sort_by_key(|d| d.requested_at);
        due.truncate(limit as usize);
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeDelta;
    use onboard_payments::events::BillingEvent;
    use onboard_payments::model::{Money, ReceiptId, ReceiptKind, ReceiptStatus};

    use super::*;

    fn purchase(group: GroupId, amount: i64, reason: CreditReason) -> CreditPurchase {
        CreditPurchase {
            merchant_uid: MerchantUid::generate(),
            group,
            amount,
            reason,
            card: None,
            status: PurchaseStatus::Pending,
            created_at: Utc::now(),
        }
    }

    fn receipt(p: &CreditPurchase) -> Receipt {
        Receipt {
            id: ReceiptId::new(),
            group: p.group,
            kind: ReceiptKind::SmsCredit,
            money: Money { amount: p.amount, vat: 0 },
            status: ReceiptStatus::Paid,
            imp_uid: format!("imp_{}", p.merchant_uid),
            merchant_uid: p.merchant_uid.clone(),
            card_id: None,
            paid_at: Some(p.created_at),
            failure_reason: None,
            created_at: p.created_at,
        }
    }

    #[tokio::test]
    async fn a_purchase_is_credited_once_with_its_ledger_entry_and_receipt() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let p = purchase(group, 5_000, CreditReason::Purchase);
        assert!(store.begin_purchase(&p).await.unwrap());
        assert!(!store.begin_purchase(&p).await.unwrap());
        let bought = BillingEvent::SmsCreditPurchased {
            group_id: group,
            amount: 5_000,
            reason: CreditReason::Purchase,
        };
        let events = [Event::record(&bought, Utc::now())];
        let done = store.complete_purchase(&p.merchant_uid, &receipt(&p), &events).await;
        assert_eq!(done.unwrap(), 5_000);
        let again = store.complete_purchase(&p.merchant_uid, &receipt(&p), &events).await;
        assert!(matches!(again, Err(CompletePurchaseError::NotPending)));
        assert_eq!(store.state().outbox.all().cloned().collect::<Vec<_>>(), events, "once");
        assert_eq!(store.wallet(group).await.unwrap().balance, 5_000);
        let ledger = store.ledger(group, None, 10).await.unwrap();
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger[0].reference.as_deref(), Some(p.merchant_uid.as_str()));
        assert_eq!(store.billing().lock_receipts_len(), 1);
    }

    #[tokio::test]
    async fn the_ledger_pages_newest_first_by_id() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let at = Utc::now();
        for _ in 0..5 {
            store.sms_credit_apply(group, 100, CreditReason::Purchase, None, at);
        }
        let first = store.ledger(group, None, 2).await.unwrap();
        assert_eq!(first.iter().map(|e| e.balance).collect::<Vec<_>>(), [500, 400]);
        let next = store.ledger(group, Some(first[1].id), 2).await.unwrap();
        assert_eq!(next.iter().map(|e| e.balance).collect::<Vec<_>>(), [300, 200]);
    }

    #[tokio::test]
    async fn a_failed_top_up_clears_the_request_and_a_new_crossing_asks_again() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let at = Utc::now();
        store.sms_credit_apply(group, 1_000, CreditReason::Purchase, None, at);
        store
            .set_auto_topup(group, Some(AutoTopup { below: 900, amount: 2_000 }), at)
            .await
            .unwrap();
        store.sms_credit_apply(group, -200, CreditReason::Message, None, at);
        let due = store.due_topups(10).await.unwrap();
        assert_eq!(due, [DueTopup { group, amount: 2_000, requested_at: at }]);
        let p = purchase(group, 2_000, CreditReason::AutoTopup);
        store.begin_purchase(&p).await.unwrap();
        let failed = BillingEvent::SmsCreditTopupFailed {
            group_id: group,
            amount: 2_000,
            reason: "declined".into(),
        };
        let events = [Event::record(&failed, at)];
        assert!(store.fail_purchase(&p.merchant_uid, "declined", at, &events).await.unwrap());
        assert!(!store.fail_purchase(&p.merchant_uid, "declined", at, &events).await.unwrap());
        let recorded: Vec<_> = store.state().outbox.all().map(|e| e.event_type.clone()).collect();
        assert_eq!(recorded, ["sms_credit.low", "sms_credit.topup_failed"]);
        assert!(store.due_topups(10).await.unwrap().is_empty());
        // Still below the line: no new request until it is crossed again.
        store.sms_credit_apply(group, -100, CreditReason::Message, None, at);
        assert!(store.due_topups(10).await.unwrap().is_empty());
        let later = at + TimeDelta::seconds(1);
        store.sms_credit_apply(group, 500, CreditReason::Purchase, None, later);
        store.sms_credit_apply(group, -400, CreditReason::Message, None, later);
        assert_eq!(store.due_topups(10).await.unwrap().len(), 1);
    }
}
