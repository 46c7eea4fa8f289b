//! SMS credit use cases (payments.md, "SMS credit"): the balance and ledger as a member sees
//! them, purchases charged to the main card at once, the auto top-up, and the recovery of
//! purchases whose outcome was not recorded.
//!
//! A purchase follows the payments saga: its merchant_uid is recorded as a pending purchase
//! BEFORE the gateway is asked; the outcome is then recorded with one storage call (credit,
//! ledger entry and receipt together). A crash or an unreachable gateway in between leaves the
//! purchase pending, and [`SmsCreditService::reconcile`] reads it back from the gateway by its
//! merchant_uid and settles it, so money charged is never lost and never credited twice.
//!
//! An auto top-up's merchant_uid is derived from the group and the moment the top-up was
//! requested ([`topup_merchant_uid`]): a run that retries after a crash finds the same payment.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use onboard_groups::{AuthorizeError, GroupsService, Permission, Slug, ViewGroupError};
use onboard_kernel::{Clock, GroupId, MemberId};
use sha2::{Digest, Sha256};

use crate::error::IdempotencyError;
use crate::gateway::{ChargeRequest, GatewayError, Payment, PaymentGateway, PaymentStatus};
use crate::idempotency::IdempotencyKeys;
use crate::model::{Card, CardId, CustomerUid, MerchantUid, Money, Receipt, ReceiptId};
use crate::model::{ReceiptKind, ReceiptStatus};
use crate::ports::{CardRepository, IdempotencyRepository};
use crate::sms_credit::{CreditReason, LedgerEntry, MIN_PURCHASE, SmsPrices};

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// The auto top-up of a wallet: when a debit takes the balance below `below`, the main card is
/// charged `amount` (at least [`MIN_PURCHASE`]) once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoTopup {
    /// The threshold (KRW, ≥ 0).
    pub below: i64,
    /// What one top-up buys (KRW, ≥ 100).
    pub amount: i64,
}

/// A group's SMS credit wallet (a group that never had one has a zero wallet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wallet {
    /// KRW, never below 0.
    pub balance: i64,
    /// `None`: off.
    pub auto_topup: Option<AutoTopup>,
    /// Set when a debit crossed below the auto top-up threshold and the top-up has not run yet.
    pub topup_requested_at: Option<DateTime<Utc>>,
}

/// Where a purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseStatus {
    /// Recorded before the gateway was asked; its outcome is not recorded yet.
    Pending,
    /// Charged and credited (with its receipt).
    Paid,
    /// Declined, never charged, or no main card: nothing was credited.
    Failed,
}

impl PurchaseStatus {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Failed => "failed",
        }
    }

    /// The status stored as `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Paid, Self::Failed].into_iter().find(|s| s.as_str() == name)
    }
}

/// One charge of the main card for SMS credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditPurchase {
    /// Onboard's id of the payment: unique.
    pub merchant_uid: MerchantUid,
    pub group: GroupId,
    /// KRW, VAT included: what the card is charged and what is credited.
    pub amount: i64,
    /// [`CreditReason::Purchase`] or [`CreditReason::AutoTopup`].
    pub reason: CreditReason,
    /// The main card charged; `None` when the group had none.
    pub card: Option<(CardId, CustomerUid)>,
    pub status: PurchaseStatus,
    pub created_at: DateTime<Utc>,
}

/// A wallet waiting for its auto top-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTopup {
    pub group: GroupId,
    /// What the top-up buys.
    pub amount: i64,
    /// When the debit that crossed the threshold happened.
    pub requested_at: DateTime<Utc>,
}

/// The merchant_uid of the auto top-up requested for `group` at `requested_at`: the same for
/// every run that handles that request, different for every other request.
#[must_use]
pub fn topup_merchant_uid(group: GroupId, requested_at: DateTime<Utc>) -> MerchantUid {
    let digest = Sha256::digest(
        format!("sms-credit-topup|{}|{}", group, requested_at.timestamp_micros()).as_bytes(),
    );
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    MerchantUid::from_trusted(format!("ob_{hex}"))
}

/// The VAT part of an amount that includes 10 % VAT, rounded half up to the won.
#[must_use]
pub const fn vat_included(amount: i64) -> i64 {
    (amount * 10 + 55) / 110
}

// ---------------------------------------------------------------------------------------------
// Port
// ---------------------------------------------------------------------------------------------

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
    /// merchant_uid), `receipt` is inserted, and for an auto top-up the wallet's top-up request
    /// is cleared. Answers the balance after.
    ///
    /// # Errors
    /// [`CompletePurchaseError::NotPending`]; nothing is written then.
    async fn complete_purchase(
        &self,
        merchant_uid: &MerchantUid,
        receipt: &Receipt,
    ) -> Result<i64, CompletePurchaseError>;

    /// Records a purchase that credits nothing, in ONE transaction: a pending purchase becomes
    /// failed with `reason`; for an auto top-up the wallet's top-up request is cleared and the
    /// holders of `billing.manage` are notified (`sms_credit.topup_failed`). Answers whether
    /// the purchase was pending.
    async fn fail_purchase(
        &self,
        merchant_uid: &MerchantUid,
        reason: &str,
        now: DateTime<Utc>,
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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Reading or changing a group's SMS credit.
#[derive(Debug, thiserror::Error)]
pub enum SmsCreditError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: needs `billing.manage`.
    #[error("SMS credit needs the billing.manage permission")]
    Forbidden,
    /// 400 `invalid_request`: below [`MIN_PURCHASE`] (or a negative threshold).
    #[error("{0}")]
    Invalid(&'static str),
    /// 409 `no_main_card`.
    #[error("the group has no main card")]
    NoMainCard,
    /// 402 `payment_failed`: declined; nothing was added.
    #[error("the payment failed: {0}")]
    PaymentFailed(String),
    /// 502 `gateway_unavailable`: the outcome is unknown; the purchase is settled later by
    /// reconciliation (credited if it was charged).
    #[error("the payment gateway is unavailable")]
    GatewayUnavailable,
    /// 409 / 422 as [`IdempotencyError`] says: the idempotency key refused the repeat.
    #[error(transparent)]
    Key(IdempotencyError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<IdempotencyError> for SmsCreditError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::Unexpected(e) => Self::Unexpected(e),
            refused => Self::Key(refused),
        }
    }
}

impl From<AuthorizeError> for SmsCreditError {
    fn from(e: AuthorizeError) -> Self {
        match e {
            AuthorizeError::NotFound => Self::NotFound,
            AuthorizeError::Forbidden(_) => Self::Forbidden,
            AuthorizeError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/// The ports the SMS credit service needs.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct SmsCreditPorts {
    pub credit: Arc<dyn SmsCreditRepository>,
    pub cards: Arc<dyn CardRepository>,
    pub gateway: Arc<dyn PaymentGateway>,
    /// The payments idempotency keys (purchases run once per key).
    pub idempotency: Arc<dyn IdempotencyRepository>,
}

/// A group's SMS credit as its members see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditView {
    pub wallet: Wallet,
    pub prices: SmsPrices,
}

/// A page of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPage {
    pub items: Vec<LedgerEntry>,
    pub next_cursor: Option<String>,
}

/// What a purchase did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Purchased {
    /// The balance after.
    pub balance: i64,
    pub receipt: Receipt,
}

/// What a periodic run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreditReport {
    /// Auto top-ups charged and credited.
    pub topped_up: usize,
    /// Auto top-ups that failed (declined, no main card).
    pub topups_failed: usize,
    /// Pending purchases settled from the gateway's record.
    pub reconciled: usize,
}

/// SMS credit: balance, ledger, purchases and the auto top-up.
#[derive(Clone)]
pub struct SmsCreditService {
    ports: SmsCreditPorts,
    groups: GroupsService,
    clock: Arc<dyn Clock>,
    prices: SmsPrices,
    reconcile_after: Duration,
}

impl std::fmt::Debug for SmsCreditService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsCreditService").field("prices", &self.prices).finish_non_exhaustive()
    }
}

fn unavailable(e: &GatewayError) {
    tracing::warn!(error = %e, "payment gateway (SMS credit)");
}

impl SmsCreditService {
    /// The largest ledger page.
    pub const MAX_PAGE: u32 = 100;
    /// The ledger page size when the client names none.
    pub const DEFAULT_PAGE: u32 = 20;

    /// A service on `ports`; a pending purchase older than `reconcile_after` is read back from
    /// the gateway.
    pub fn new(
        ports: SmsCreditPorts,
        groups: GroupsService,
        clock: Arc<dyn Clock>,
        prices: SmsPrices,
        reconcile_after: Duration,
    ) -> Self {
        Self { ports, groups, clock, prices, reconcile_after }
    }

    /// The unit prices.
    pub const fn prices(&self) -> SmsPrices {
        self.prices
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    /// The idempotency keys purchases run under.
    pub(crate) fn idempotency_keys(&self) -> IdempotencyKeys {
        IdempotencyKeys::new(self.ports.idempotency.clone(), self.clock.clone())
    }

    async fn member_group(&self, slug: &Slug, caller: MemberId) -> Result<GroupId, SmsCreditError> {
        match self.groups.group(slug, caller).await {
            Ok(g) => Ok(g.group.id),
            Err(ViewGroupError::NotFound) => Err(SmsCreditError::NotFound),
            Err(ViewGroupError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// The group (its id) when the caller holds `billing.manage` in it.
    pub(crate) async fn manager_of(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<GroupId, SmsCreditError> {
        let (group, _) = self.groups.authorize(slug, caller, &Permission::BILLING_MANAGE).await?;
        Ok(group.id)
    }

    /// The group's balance, auto top-up and unit prices (members).
    pub async fn view(&self, slug: &Slug, caller: MemberId) -> Result<CreditView, SmsCreditError> {
        let group = self.member_group(slug, caller).await?;
        let wallet = self.ports.credit.wallet(group).await?;
        Ok(CreditView { wallet, prices: self.prices })
    }

    /// A page of the group's ledger, newest first (members); `limit` clamped to 1..=100.
    pub async fn ledger(
        &self,
        slug: &Slug,
        caller: MemberId,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<LedgerPage, SmsCreditError> {
        let group = self.member_group(slug, caller).await?;
        let limit = limit.clamp(1, Self::MAX_PAGE);
        let mut items = self.ports.credit.ledger(group, cursor, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(LedgerPage { items, next_cursor })
    }

    /// Turns the auto top-up on or off (the caller holds `billing.manage` in `group`).
    ///
    /// # Errors
    /// [`SmsCreditError::Invalid`] for an amount below [`MIN_PURCHASE`] or a negative
    /// threshold.
    pub(crate) async fn set_auto_topup(
        &self,
        group: GroupId,
        auto_topup: Option<AutoTopup>,
    ) -> Result<Wallet, SmsCreditError> {
        if let Some(t) = auto_topup {
            if t.amount < MIN_PURCHASE {
                return Err(SmsCreditError::Invalid("amount: at least 100 KRW"));
            }
            if t.below < 0 {
                return Err(SmsCreditError::Invalid("below: 0 or more"));
            }
        }
        self.ports.credit.set_auto_topup(group, auto_topup, self.now()).await?;
        Ok(self.ports.credit.wallet(group).await?)
    }

    /// Buys `amount` KRW of credit for `group` (the caller holds `billing.manage` there),
    /// charging the main card at once; answers the balance after and the receipt.
    ///
    /// # Errors
    /// [`SmsCreditError::Invalid`] below [`MIN_PURCHASE`]; [`SmsCreditError::NoMainCard`];
    /// [`SmsCreditError::PaymentFailed`] (nothing added); [`SmsCreditError::GatewayUnavailable`]
    /// (settled later by [`Self::reconcile`]).
    pub(crate) async fn purchase(
        &self,
        group: GroupId,
        amount: i64,
    ) -> Result<Purchased, SmsCreditError> {
        if amount < MIN_PURCHASE {
            return Err(SmsCreditError::Invalid("amount: at least 100 KRW"));
        }
        let card = self.main_card(group).await?.ok_or(SmsCreditError::NoMainCard)?;
        let purchase = CreditPurchase {
            merchant_uid: MerchantUid::generate(),
            group,
            amount,
            reason: CreditReason::Purchase,
            card: Some((card.id, card.customer_uid.clone())),
            status: PurchaseStatus::Pending,
            created_at: self.now(),
        };
        // Recorded first: whatever happens next, reconciliation can find the payment.
        self.ports.credit.begin_purchase(&purchase).await?;
        let payment = match self.charge(&purchase, &card.customer_uid).await {
            Ok(p) => p,
            Err(e) => {
                unavailable(&e);
                return Err(SmsCreditError::GatewayUnavailable);
            }
        };
        match self.settle(&purchase, &payment).await? {
            Settled::Paid(purchased) => Ok(purchased),
            Settled::Failed(reason) => Err(SmsCreditError::PaymentFailed(reason)),
        }
    }

    async fn main_card(&self, group: GroupId) -> anyhow::Result<Option<Card>> {
        Ok(self.ports.cards.cards(group).await?.into_iter().find(|c| c.main))
    }

    async fn charge(
        &self,
        purchase: &CreditPurchase,
        customer_uid: &CustomerUid,
    ) -> Result<Payment, GatewayError> {
        self.ports
            .gateway
            .charge(&ChargeRequest {
                customer_uid: customer_uid.to_string(),
                merchant_uid: purchase.merchant_uid.to_string(),
                amount: purchase.amount,
                name: "Onboard SMS credit".to_owned(),
            })
            .await
    }

    /// Records the gateway's outcome of a pending purchase.
    async fn settle(
        &self,
        purchase: &CreditPurchase,
        payment: &Payment,
    ) -> Result<Settled, SmsCreditError> {
        let now = self.now();
        if payment.status == PaymentStatus::Paid && payment.amount == purchase.amount {
            let receipt = Receipt {
                id: ReceiptId::new(),
                group: purchase.group,
                kind: ReceiptKind::SmsCredit,
                money: Money { amount: purchase.amount, vat: vat_included(purchase.amount) },
                status: ReceiptStatus::Paid,
                imp_uid: payment.imp_uid.clone(),
                merchant_uid: purchase.merchant_uid.clone(),
                card_id: purchase.card.as_ref().map(|(id, _)| *id),
                paid_at: Some(payment.paid_at.unwrap_or(now)),
                failure_reason: None,
                created_at: now,
            };
            return match self.ports.credit.complete_purchase(&purchase.merchant_uid, &receipt).await
            {
                Ok(balance) => Ok(Settled::Paid(Purchased { balance, receipt })),
                Err(CompletePurchaseError::NotPending) => Err(SmsCreditError::Unexpected(
                    anyhow::anyhow!("purchase {} was settled meanwhile", purchase.merchant_uid),
                )),
                Err(CompletePurchaseError::Unexpected(e)) => Err(e.into()),
            };
        }
        let reason = match payment.status {
            PaymentStatus::Paid => {
                format!("the gateway charged {} KRW instead of {}", payment.amount, purchase.amount)
            }
            _ => payment.failure_reason.clone().unwrap_or_else(|| "declined".to_owned()),
        };
        self.ports.credit.fail_purchase(&purchase.merchant_uid, &reason, now).await?;
        Ok(Settled::Failed(reason))
    }

    /// Runs the auto top-ups that are due: for each, the main card is charged the wallet's
    /// top-up amount once, and the credit added; a failure clears the request and tells the
    /// holders of `billing.manage`.
    pub async fn run_topups(&self) -> anyhow::Result<CreditReport> {
        let mut report = CreditReport::default();
        for due in self.ports.credit.due_topups(100).await? {
            let uid = topup_merchant_uid(due.group, due.requested_at);
            let card = self.main_card(due.group).await?;
            let purchase = CreditPurchase {
                merchant_uid: uid.clone(),
                group: due.group,
                amount: due.amount,
                reason: CreditReason::AutoTopup,
                card: card.as_ref().map(|c| (c.id, c.customer_uid.clone())),
                status: PurchaseStatus::Pending,
                created_at: self.now(),
            };
            let fresh = self.ports.credit.begin_purchase(&purchase).await?;
            let purchase = if fresh {
                purchase
            } else {
                match self.ports.credit.purchase(&uid).await? {
                    Some(p) if p.status == PurchaseStatus::Pending => p,
                    // Settled before (the request is cleared with it): nothing to do.
                    _ => continue,
                }
            };
            let Some((_, customer_uid)) = purchase.card.clone() else {
                self.ports
                    .credit
                    .fail_purchase(&uid, "the group has no main card", self.now())
                    .await?;
                report.topups_failed += 1;
                continue;
            };
            // A purchase found pending was begun by a run that stopped: the gateway may have
            // charged it already.
            let known = if fresh {
                None
            } else {
                match self.read_back(&uid).await {
                    Ok(known) => known,
                    Err(e) => {
                        // Unknown yet: the request stays, the next run tries again.
                        tracing::warn!(error = %e, "auto top-up");
                        continue;
                    }
                }
            };
            let payment = match known {
                Some(p) => p,
                None => match self.charge(&purchase, &customer_uid).await {
                    Ok(p) => p,
                    Err(e) => {
                        unavailable(&e);
                        continue;
                    }
                },
            };
            match self.settle(&purchase, &payment).await {
                Ok(Settled::Paid(_)) => report.topped_up += 1,
                Ok(Settled::Failed(_)) => report.topups_failed += 1,
                Err(SmsCreditError::Unexpected(e)) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "auto top-up"),
            }
        }
        Ok(report)
    }

    /// The payment with this merchant_uid, `Ok(None)` when the gateway knows none; an
    /// unreachable gateway is an error here (the caller leaves the purchase pending).
    async fn read_back(&self, uid: &MerchantUid) -> anyhow::Result<Option<Payment>> {
        match self.ports.gateway.payment_by_merchant_uid(uid.as_str()).await {
            Ok(p) => Ok(p.filter(|p| p.status != PaymentStatus::Ready)),
            Err(e) => Err(anyhow::anyhow!("reading payment {uid} back: {e}")),
        }
    }

    /// Settles purchases left pending longer than `reconcile_after` (a crash or an
    /// unreachable gateway between the charge and its recording): a payment the gateway
    /// reports is recorded as it is; one it never saw fails the purchase (a member's purchase)
    /// or is left to the next top-up run (an auto top-up, which charges it then).
    pub async fn reconcile(&self) -> anyhow::Result<usize> {
        let before = self.now() - self.reconcile_after;
        let mut done = 0;
        for purchase in self.ports.credit.pending_purchases(before, 100).await? {
            let payment = match self.read_back(&purchase.merchant_uid).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "SMS credit reconciliation");
                    continue;
                }
            };
            match (payment, purchase.reason) {
                (Some(payment), _) => {
                    self.settle(&purchase, &payment).await.map_err(anyhow::Error::from)?;
                    done += 1;
                }
                (None, CreditReason::AutoTopup) => {}
                (None, _) => {
                    let now = self.now();
                    let reason = "never reached the gateway";
                    if self.ports.credit.fail_purchase(&purchase.merchant_uid, reason, now).await? {
                        done += 1;
                    }
                }
            }
        }
        Ok(done)
    }

    /// The periodic work, for the job runner: reconciliation, then the due top-ups.
    pub async fn run_periodic(&self) -> anyhow::Result<CreditReport> {
        let reconciled = self.reconcile().await?;
        let report = self.run_topups().await?;
        Ok(CreditReport { reconciled, ..report })
    }
}

/// A pending purchase's recorded outcome.
enum Settled {
    Paid(Purchased),
    Failed(String),
}

#[cfg(test)]
mod tests;
