//! The SMS credit use cases.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use onboard_groups::{GroupsService, Permission, Slug, ViewGroupError};
use onboard_kernel::events::Event;
use onboard_kernel::{Clock, GroupId, MemberId};

use super::error::SmsCreditError;
use super::model::{
    AutoTopup, CreditPurchase, CreditReason, LedgerEntry, MIN_PURCHASE, PurchaseStatus, SmsPrices,
    Wallet, topup_merchant_uid, vat_included,
};
use super::ports::{CompletePurchaseError, SmsCreditRepository};
use crate::events::BillingEvent;
use crate::gateway::{ChargeRequest, GatewayError, Payment, PaymentGateway, PaymentStatus};
use crate::idempotency::IdempotencyKeys;
use crate::model::{Card, CustomerUid, MerchantUid, Money, Receipt, ReceiptId};
use crate::model::{ReceiptKind, ReceiptStatus};
use crate::ports::{CardRepository, IdempotencyRepository};

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
    #[tracing::instrument(level = "debug", name = "payments.view", skip_all)]
    pub async fn view(&self, slug: &Slug, caller: MemberId) -> Result<CreditView, SmsCreditError> {
        let group = self.member_group(slug, caller).await?;
        let wallet = self.ports.credit.wallet(group).await?;
        Ok(CreditView { wallet, prices: self.prices })
    }

    /// A page of the group's ledger, newest first (members); `limit` clamped to 1..=100.
    #[tracing::instrument(level = "debug", name = "payments.ledger", skip_all)]
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
            let purchased = BillingEvent::SmsCreditPurchased {
                group_id: purchase.group,
                amount: purchase.amount,
                reason: purchase.reason,
            };
            let events = [Event::record(&purchased, now)];
            return match self
                .ports
                .credit
                .complete_purchase(&purchase.merchant_uid, &receipt, &events)
                .await
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
        let events = failed_events(purchase, &reason, now);
        self.ports.credit.fail_purchase(&purchase.merchant_uid, &reason, now, &events).await?;
        Ok(Settled::Failed(reason))
    }

    /// Runs the auto top-ups that are due: for each, the main card is charged the wallet's
    /// top-up amount once, and the credit added; a failure clears the request and tells the
    /// holders of `billing.manage`.
    #[tracing::instrument(level = "debug", name = "payments.run_topups", skip_all)]
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
                let (reason, now) = ("the group has no main card", self.now());
                let events = failed_events(&purchase, reason, now);
                self.ports.credit.fail_purchase(&uid, reason, now, &events).await?;
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
    #[tracing::instrument(level = "debug", name = "payments.reconcile", skip_all)]
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
                    let events = failed_events(&purchase, reason, now);
                    let uid = &purchase.merchant_uid;
                    if self.ports.credit.fail_purchase(uid, reason, now, &events).await? {
                        done += 1;
                    }
                }
            }
        }
        Ok(done)
    }

    /// The periodic work, for the job runner: reconciliation, then the due top-ups.
    #[tracing::instrument(level = "debug", name = "payments.run_periodic", skip_all)]
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

/// The events of a purchase that failed with `reason`: an auto top-up's failure is told
/// (`sms_credit.topup_failed`); a member's own purchase is answered to them instead.
fn failed_events(purchase: &CreditPurchase, reason: &str, now: DateTime<Utc>) -> Vec<Event> {
    if purchase.reason != CreditReason::AutoTopup {
        return Vec::new();
    }
    let failed = BillingEvent::SmsCreditTopupFailed {
        group_id: purchase.group,
        amount: purchase.amount,
        reason: reason.to_owned(),
    };
    vec![Event::record(&failed, now)]
}
