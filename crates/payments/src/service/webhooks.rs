//! Payment webhooks and the reconciliation of lost ones: payments read back from the gateway,
//! matched against the charge Onboard scheduled, applied once.

use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;

use crate::error::WebhookError;
use crate::events::BillingEvent;
use crate::gateway::{Payment, PaymentStatus, WebhookNotice};
use crate::model::{
    Billing, BillingStatus, Charge, ChargeKind, ChargeStatus, MerchantUid, Receipt, ReceiptId,
    ReceiptKind, ReceiptStatus,
};
use crate::plan_change::{first_attempt_at, retry_at};
use crate::ports::{BillingCommit, CommitError};

use super::{
    ATTEMPTS, PaymentsService, paid_receipt, plan_name, schedule_request, to_free, unavailable,
    warn,
};

/// What a webhook (or reconciliation) did with a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The payment was recorded and the account moved on.
    Applied,
    /// The payment was recorded before; nothing changed.
    Duplicate,
    /// Unknown, not yet run, or not matching a charge Onboard scheduled; nothing changed.
    Ignored,
}

impl PaymentsService {
    /// Handles a payment notification: re-reads the payment from the gateway by `imp_uid`,
    /// matches it against the charge Onboard scheduled (merchant_uid, amount, group), and
    /// applies it once (idempotent by `imp_uid`). Unknown or mismatched payments change nothing.
    #[tracing::instrument(level = "debug", name = "payments.handle_webhook", skip_all)]
    pub async fn handle_webhook(
        &self,
        notice: &WebhookNotice,
    ) -> Result<WebhookOutcome, WebhookError> {
        if self.ports.billing.receipt_exists(&notice.imp_uid).await? {
            return Ok(WebhookOutcome::Duplicate);
        }
        let payment = match self.ports.gateway.payment(&notice.imp_uid).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                warn(&format!("webhook for an unknown payment {}", notice.imp_uid));
                return Ok(WebhookOutcome::Ignored);
            }
            Err(e) => {
                unavailable(&e);
                return Err(WebhookError::GatewayUnavailable);
            }
        };
        if payment.merchant_uid != notice.merchant_uid {
            warn(&format!(
                "webhook {}: merchant_uid {} does not match the gateway's {}",
                notice.imp_uid, notice.merchant_uid, payment.merchant_uid
            ));
            return Ok(WebhookOutcome::Ignored);
        }
        self.apply_payment(&payment, false).await
    }

    /// Applies a payment read from the gateway to the charge it pays.
    /// A charge made at once is recorded by the plan change that made it; only reconciliation
    /// (`reconciling`) applies one whose plan change could not learn the outcome.
    async fn apply_payment(
        &self,
        payment: &Payment,
        reconciling: bool,
    ) -> Result<WebhookOutcome, WebhookError> {
        let uid = MerchantUid::from_trusted(payment.merchant_uid.clone());
        let Some(charge) = self.ports.billing.charge(&uid).await? else {
            warn(&format!("payment {} pays no charge Onboard scheduled", payment.imp_uid));
            return Ok(WebhookOutcome::Ignored);
        };
        let customer_matches =
            payment.customer_uid.as_deref().is_none_or(|c| c == charge.customer_uid.as_str());
        if payment.amount != charge.money.amount || !customer_matches {
            warn(&format!(
                "payment {} does not match charge {} (amount {} vs {})",
                payment.imp_uid, charge.merchant_uid, payment.amount, charge.money.amount
            ));
            return Ok(WebhookOutcome::Ignored);
        }
        if charge.kind == ChargeKind::Immediate && !reconciling {
            // Recorded by the plan change itself.
            return Ok(WebhookOutcome::Duplicate);
        }
        match payment.status {
            PaymentStatus::Paid | PaymentStatus::Failed => {}
            PaymentStatus::Ready | PaymentStatus::Cancelled => return Ok(WebhookOutcome::Ignored),
        }
        for _ in 0..ATTEMPTS {
            let fresh = self.ports.billing.charge(&uid).await?.unwrap_or(charge.clone());
            if fresh.status != ChargeStatus::Scheduled {
                return Ok(if self.ports.billing.receipt_exists(&payment.imp_uid).await? {
                    WebhookOutcome::Duplicate
                } else {
                    warn(&format!(
                        "payment {} for charge {} which is {}",
                        payment.imp_uid,
                        fresh.merchant_uid,
                        fresh.status.as_str()
                    ));
                    WebhookOutcome::Ignored
                });
            }
            let billing = self.load(fresh.group).await?;
            // A late paid retry while another charge is pending: that one goes, cancelled at
            // the gateway only once the commit holds (a refused commit must leave it intact).
            let superseded = billing.next_charge.clone().filter(|other| {
                payment.status == PaymentStatus::Paid
                    && other.merchant_uid != fresh.merchant_uid
                    && other.status == ChargeStatus::Scheduled
            });
            let (commit, scheduled) = self.payment_commit(billing, &fresh, payment).await?;
            match self.ports.billing.commit(&commit).await {
                Ok(()) => {
                    if let Some(other) = &superseded {
                        self.unschedule_quietly(other).await;
                    }
                    return Ok(WebhookOutcome::Applied);
                }
                Err(e) => {
                    if let Some(s) = &scheduled {
                        self.unschedule_quietly(s).await;
                    }
                    match e {
                        CommitError::Stale => continue,
                        CommitError::DuplicateReceipt => return Ok(WebhookOutcome::Duplicate),
                        CommitError::Unexpected(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(anyhow::anyhow!("the account kept changing while a payment was applied").into())
    }

    /// The commit that records `payment` of `charge` on `billing`, and the charge it scheduled
    /// at the gateway for it (cancelled there again when the commit is refused).
    async fn payment_commit(
        &self,
        billing: Billing,
        charge: &Charge,
        payment: &Payment,
    ) -> Result<(BillingCommit, Option<Charge>), WebhookError> {
        if charge.kind == ChargeKind::Immediate && payment.status == PaymentStatus::Failed {
            let failed = BillingEvent::PaymentFailed {
                group_id: billing.group,
                plan: plan_name(&self.catalogue().await?, &charge.plan),
                amount: charge.money.amount,
                reason: failure_reason(payment),
                retry_at: None,
                retry_on: None,
            };
            let events = self.records(&[failed]);
            Ok((drop_marker(billing, charge, ChargeStatus::Failed, events), None))
        } else if payment.status == PaymentStatus::Paid {
            self.on_paid(&billing, charge, payment).await
        } else {
            self.on_failed(&billing, charge, payment).await
        }
    }

    /// The next charge after `paid` (at the then-current price), scheduled at the gateway.
    async fn schedule_next(
        &self,
        group: GroupId,
        template: &Charge,
        next: NextCharge,
    ) -> Result<Charge, WebhookError> {
        let card = match self.main_card(group).await? {
            Some(c) => (c.id, c.customer_uid),
            None => (template.card_id, template.customer_uid.clone()),
        };
        let next = Charge {
            merchant_uid: MerchantUid::generate(),
            group,
            card_id: card.0,
            customer_uid: card.1,
            money: next.money,
            at: next.at,
            plan: template.plan.clone(),
            interval: template.interval,
            addons: template.addons.clone(),
            period_start: next.period_start,
            kind: next.kind,
            attempt: next.attempt,
            status: ChargeStatus::Scheduled,
            created_at: self.now(),
        };
        if let Err(e) = self.ports.gateway.schedule(&schedule_request(&next)).await {
            unavailable(&e);
            return Err(WebhookError::GatewayUnavailable);
        }
        Ok(next)
    }

    async fn on_paid(
        &self,
        billing: &Billing,
        charge: &Charge,
        payment: &Payment,
    ) -> Result<(BillingCommit, Option<Charge>), WebhookError> {
        let clock = self.config.clock;
        let start = charge.period_start;
        let end = clock.period_end(clock.day_of(start), charge.interval, billing.pay_hour);
        let catalogue = self.catalogue().await?;
        let price = catalogue
            .plan(&charge.plan)
            .map(|p| crate::model::Money::with_vat(p.period_price(charge.interval, &charge.addons)))
            .unwrap_or(charge.money);
        let next = self
            .schedule_next(
                billing.group,
                charge,
                NextCharge {
                    kind: ChargeKind::Renewal,
                    at: end,
                    period_start: end,
                    attempt: 0,
                    money: price,
                },
            )
            .await?;
        let mut after = billing.clone();
        after.plan = charge.plan.clone();
        after.interval = Some(charge.interval);
        after.addons = charge.addons.clone();
        after.status = BillingStatus::Active;
        after.current_period_start = Some(start);
        after.current_period_end = Some(end);
        after.cancel_at_period_end = false;
        after.next_charge = Some(next.clone());
        let mut closed = vec![(charge.merchant_uid.clone(), ChargeStatus::Paid)];
        // A late paid retry while another charge is pending: that one goes (the caller
        // cancels it at the gateway once this commit holds).
        if let Some(other) = &billing.next_charge
            && other.merchant_uid != charge.merchant_uid
            && other.status == ChargeStatus::Scheduled
        {
            closed.push((other.merchant_uid.clone(), ChargeStatus::Cancelled));
        }
        let receipt = paid_receipt(charge, payment, self.now());
        let mut events = self.status_events(billing, &after, &catalogue);
        events.push(BillingEvent::PaymentSucceeded {
            group_id: billing.group,
            plan: plan_name(&catalogue, &charge.plan),
            amount: charge.money.amount,
            receipt_id: receipt.id,
        });
        let commit = BillingCommit {
            billing: after,
            new_charges: vec![next.clone()],
            closed_charges: closed,
            receipt: Some(receipt),
            events: self.records(&events),
        };
        Ok((commit, Some(next)))
    }

    async fn on_failed(
        &self,
        billing: &Billing,
        charge: &Charge,
        payment: &Payment,
    ) -> Result<(BillingCommit, Option<Charge>), WebhookError> {
        let receipt = failed_receipt(charge, payment, self.now());
        let catalogue = self.catalogue().await?;
        let clock = &self.config.clock;
        let failed = |next_at: Option<DateTime<Utc>>| BillingEvent::PaymentFailed {
            group_id: billing.group,
            plan: plan_name(&catalogue, &charge.plan),
            amount: charge.money.amount,
            reason: failure_reason(payment),
            retry_at: next_at,
            retry_on: next_at.map(|at| clock.day_of(at)),
        };
        let closed = vec![(charge.merchant_uid.clone(), ChargeStatus::Failed)];
        let attempt = charge.attempt + 1;
        let is_pending =
            billing.next_charge.as_ref().map(|c| &c.merchant_uid) == Some(&charge.merchant_uid);
        let mut after = billing.clone();
        if !is_pending {
            // An old charge failed: recorded, nothing else changes.
            return Ok((
                BillingCommit {
                    billing: after,
                    new_charges: vec![],
                    closed_charges: closed,
                    receipt: Some(receipt),
                    events: self.records(&[failed(None)]),
                },
                None,
            ));
        }
        match retry_at(first_attempt_at(charge, &self.config), attempt, &self.config) {
            Some(at) => {
                let at = at.max(self.now());
                let retry = self
                    .schedule_next(
                        billing.group,
                        charge,
                        NextCharge {
                            kind: ChargeKind::Retry,
                            at,
                            period_start: charge.period_start,
                            attempt,
                            money: charge.money,
                        },
                    )
                    .await?;
                after.status = BillingStatus::PastDue;
                after.next_charge = Some(retry.clone());
                Ok((
                    BillingCommit {
                        billing: after,
                        new_charges: vec![retry.clone()],
                        closed_charges: closed,
                        receipt: Some(receipt),
                        events: self.records(&[failed(Some(retry.at))]),
                    },
                    Some(retry),
                ))
            }
            None => {
                // The last retry failed: back to Free.
                to_free(&mut after);
                let mut events = vec![failed(None)];
                events.extend(self.status_events(billing, &after, &catalogue));
                Ok((
                    BillingCommit {
                        billing: after,
                        new_charges: vec![],
                        closed_charges: closed,
                        receipt: Some(receipt),
                        events: self.records(&events),
                    },
                    None,
                ))
            }
        }
    }

    /// Reconciliation of lost webhooks: every scheduled charge whose time passed more than
    /// `reconcile_after` ago is read back from the gateway and applied.
    #[tracing::instrument(level = "debug", name = "payments.reconcile", skip_all)]
    pub async fn reconcile(&self) -> anyhow::Result<usize> {
        let before = self.now() - self.config.reconcile_after;
        let mut done = 0;
        for charge in self.ports.billing.overdue_charges(before, 100).await? {
            let payment = match self
                .ports
                .gateway
                .payment_by_merchant_uid(charge.merchant_uid.as_str())
                .await
            {
                Ok(Some(p)) => p,
                Ok(None) if charge.kind == ChargeKind::Immediate => {
                    // The charge made at once never reached the gateway: drop the marker.
                    let billing = self.load(charge.group).await?;
                    match self
                        .ports
                        .billing
                        .commit(&drop_marker(billing, &charge, ChargeStatus::Cancelled, vec![]))
                        .await
                    {
                        Ok(()) | Err(CommitError::Stale | CommitError::DuplicateReceipt) => {}
                        Err(CommitError::Unexpected(e)) => return Err(e),
                    }
                    continue;
                }
                Ok(None) => continue,
                Err(e) => {
                    unavailable(&e);
                    continue;
                }
            };
            if self.ports.billing.receipt_exists(&payment.imp_uid).await? {
                continue;
            }
            match self.apply_payment(&payment, true).await {
                Ok(WebhookOutcome::Applied) => done += 1,
                Ok(_) => {}
                Err(WebhookError::GatewayUnavailable) => {}
                Err(WebhookError::Unexpected(e)) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// What differs in a charge scheduled after another.
struct NextCharge {
    kind: ChargeKind,
    at: DateTime<Utc>,
    period_start: DateTime<Utc>,
    attempt: u32,
    money: crate::model::Money,
}

/// The account as it was before a charge made at once: its marker closed with `status`.
fn drop_marker(
    billing: Billing,
    marker: &Charge,
    status: ChargeStatus,
    events: Vec<Event>,
) -> BillingCommit {
    let mut restored = billing;
    if restored.next_charge.as_ref().is_some_and(|c| c.merchant_uid == marker.merchant_uid) {
        restored.next_charge = None;
    }
    BillingCommit {
        billing: restored,
        new_charges: vec![],
        closed_charges: vec![(marker.merchant_uid.clone(), status)],
        receipt: None,
        events,
    }
}

/// The receipt of a charge the gateway reports failed.
fn failed_receipt(charge: &Charge, payment: &Payment, now: DateTime<Utc>) -> Receipt {
    Receipt {
        id: ReceiptId::new(),
        group: charge.group,
        kind: ReceiptKind::Subscription,
        money: charge.money,
        status: ReceiptStatus::Failed,
        imp_uid: payment.imp_uid.clone(),
        merchant_uid: charge.merchant_uid.clone(),
        card_id: Some(charge.card_id),
        paid_at: None,
        failure_reason: Some(failure_reason(payment)),
        created_at: now,
    }
}

/// Why the gateway says a payment failed.
fn failure_reason(payment: &Payment) -> String {
    payment.failure_reason.clone().unwrap_or_else(|| "declined".to_owned())
}
