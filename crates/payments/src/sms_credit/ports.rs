//! SMS credit storage.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;

use super::model::{AutoTopup, CreditPurchase, DueTopup, LedgerEntry, Wallet};
use crate::model::{MerchantUid, Receipt};

/// Why [`SmsCreditRepository::complete_purchase`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CompletePurchaseError {
    /// No pending purchase has this merchant_uid (settled before, or never begun).
    #[error("no pending purchase has this merchant_uid")]
    NotPending,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// SMS credit storage: wallets, their ledger and the purchases.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsCreditRepository: Send + Sync {
    /// The group's wallet (a zero wallet when it has none).
    async fn wallet(&self, group: GroupId) -> anyhow::Result<Wallet>;

    /// Up to `limit` ledger entries of the group, newest first (id descending), with an id
    /// below `before` when given.
    async fn ledger(
        &self,
        group: GroupId,
        before: Option<i64>,
        limit: u32,
    ) -> anyhow::Result<Vec<LedgerEntry>>;

    /// Turns the auto top-up on (`Some`) or off (`None`), creating the wallet at 0 if needed.
    /// Turning it off also drops a pending top-up request.
    async fn set_auto_topup(
        &self,
        group: GroupId,
        auto_topup: Option<AutoTopup>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;

    /// Records a purchase (status as given, normally pending) before the gateway is asked.
    /// Idempotent by merchant_uid: answers `false`, writing nothing, when one exists.
    async fn begin_purchase(&self, purchase: &CreditPurchase) -> anyhow::Result<bool>;

    /// The purchase with this merchant_uid.
    async fn purchase(&self, merchant_uid: &MerchantUid) -> anyhow::Result<Option<CreditPurchase>>;

    /// Records a paid purchase, in ONE transaction: the purchase (which must be pending)
    /// becomes paid, its amount is credited with a ledger entry (its reason, reference the
    /// merchant_uid), `receipt` is inserted, for an auto top-up the wallet's top-up request
    /// is cleared, and `events` (its `sms_credit.purchased`) are stored in the outbox. Answers
    /// the balance after.
    ///
    /// # Errors
    /// [`CompletePurchaseError::NotPending`]; nothing is written then, no event either.
    async fn complete_purchase(
        &self,
        merchant_uid: &MerchantUid,
        receipt: &Receipt,
        events: &[Event],
    ) -> Result<i64, CompletePurchaseError>;

    /// Records a purchase that credits nothing, in ONE transaction: a pending purchase becomes
    /// failed with `reason`; for an auto top-up the wallet's top-up request is cleared; and
    /// `events` (for an auto top-up its `sms_credit.topup_failed`, decided by the service) are
    /// stored in the outbox. Answers whether the purchase was pending; when it was not,
    /// nothing is written, no event either.
    async fn fail_purchase(
        &self,
        merchant_uid: &MerchantUid,
        reason: &str,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<bool>;

    /// Up to `limit` pending purchases created before `before`, oldest first.
    async fn pending_purchases(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<CreditPurchase>>;

    /// Up to `limit` wallets with a top-up request and an auto top-up, oldest request first.
    async fn due_topups(&self, limit: u32) -> anyhow::Result<Vec<DueTopup>>;
}
