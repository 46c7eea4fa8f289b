//! Changing the plan, and previewing the change (both judged by
//! [`crate::plan_change::plan_change`]).

use onboard_groups::{AuthorizeError, Group, Slug};
use onboard_kernel::{GroupId, MemberId};

use crate::error::ChangePlanError;
use crate::events::BillingEvent;
use crate::gateway::{ChargeRequest, Payment, PaymentStatus};
use crate::model::{Billing, Card, Catalogue, Charge, ChargeStatus};
use crate::plan_change::{NewIds, PlanChange, PlanRequest, plan_change};
use crate::ports::{BillingCommit, CommitError};

use super::{
    ATTEMPTS, PaymentsService, charge_name, paid_receipt, plan_name, schedule_request, unavailable,
};

impl PaymentsService {
    /// What changing the plan would do, without doing it.
    #[tracing::instrument(level = "debug", name = "payments.preview", skip_all)]
    pub async fn preview(
        &self,
        slug: &Slug,
        caller: MemberId,
        request: &PlanRequest,
    ) -> Result<PlanChange, ChangePlanError> {
        let group = self.manager_of(slug, caller).await.map_err(plan_access)?;
        let (current, card, catalogue) = self.judge_inputs(group.id).await?;
        Ok(plan_change(
            &current,
            card.as_ref(),
            request,
            self.now(),
            &catalogue,
            &self.config,
            &NewIds::generate(),
        )?)
    }

    async fn judge_inputs(
        &self,
        group: GroupId,
    ) -> anyhow::Result<(Billing, Option<Card>, Catalogue)> {
        let (current, card, catalogue) =
            in_turn(self.load(group), self.main_card(group), self.catalogue()).await;
        Ok((current?, card?, catalogue?))
    }

    /// Changes the plan as [`crate::plan_change::plan_change`] judges it (the caller holds
    /// `billing.manage` in `group`: see [`Self::manager_of`]), and answers the account after.
    pub(crate) async fn change_plan(
        &self,
        group: &Group,
        request: &PlanRequest,
    ) -> Result<Billing, ChangePlanError> {
        for _ in 0..ATTEMPTS {
            let (current, card, catalogue) = self.judge_inputs(group.id).await?;
            let change = plan_change(
                &current,
                card.as_ref(),
                request,
                self.now(),
                &catalogue,
                &self.config,
                &NewIds::generate(),
            )?;
            if change.unchanged {
                return Ok(current);
            }
            match self.carry_out(current, change, &catalogue).await {
                Err(ChangePlanError::Busy) => continue,
                other => return other,
            }
        }
        Err(ChangePlanError::Busy)
    }

    /// Carries out a judged change. `Busy` means the account changed meanwhile and nothing of
    /// this change remains (the caller judges again).
    async fn carry_out(
        &self,
        current: Billing,
        change: PlanChange,
        catalogue: &Catalogue,
    ) -> Result<Billing, ChangePlanError> {
        if let Some(now_charge) = &change.charge_now {
            return self.charge_at_once(&current, &change, now_charge, catalogue).await;
        }
        self.reschedule(current, change, catalogue).await
    }

    /// Carries out a change that charges the card at once: the charge is marked, made, and
    /// recorded with the new account (or closed as failed).
    async fn charge_at_once(
        &self,
        current: &Billing,
        change: &PlanChange,
        now_charge: &Charge,
        catalogue: &Catalogue,
    ) -> Result<Billing, ChangePlanError> {
        let mut version = current.version;
        // Mark the charge first, so a concurrent change sees it and waits (Busy).
        let mut marked = current.clone();
        marked.next_charge = Some(now_charge.clone());
        let commit = BillingCommit {
            billing: marked,
            new_charges: vec![now_charge.clone()],
            closed_charges: vec![],
            receipt: None,
            events: vec![],
        };
        self.commit(&commit).await?;
        version += 1;
        let payment = self
            .ports
            .gateway
            .charge(&ChargeRequest {
                customer_uid: now_charge.customer_uid.to_string(),
                merchant_uid: now_charge.merchant_uid.to_string(),
                amount: now_charge.money.amount,
                name: charge_name(now_charge),
            })
            .await;
        let mut restore = current.clone();
        restore.version = version;
        let payment = match payment {
            Ok(p) => p,
            Err(e) => {
                unavailable(&e);
                // The outcome is unknown: the marker stays, so further changes wait
                // (`billing_busy`) until reconciliation reads the payment back by
                // merchant_uid and applies it, or finds none and drops the marker.
                return Err(ChangePlanError::GatewayUnavailable);
            }
        };
        if payment.status != PaymentStatus::Paid || payment.amount != now_charge.money.amount {
            let reason = payment.failure_reason.clone().unwrap_or_else(|| "declined".to_owned());
            let failed = BillingEvent::PaymentFailed {
                group_id: current.group,
                plan: plan_name(catalogue, &now_charge.plan),
                amount: now_charge.money.amount,
                reason: reason.clone(),
                retry_at: None,
                retry_on: None,
            };
            self.close_marker(restore, now_charge, ChargeStatus::Failed, vec![failed]).await?;
            return Err(ChangePlanError::PaymentFailed(reason));
        }
        // Paid: record the receipt with the new account below.
        self.record_paid_at_once(current, change, now_charge, &payment, version, catalogue).await
    }

    /// Records a charge made at once that the gateway reports paid, with the account after
    /// the change (`version`: the account's version with the charge marked).
    async fn record_paid_at_once(
        &self,
        current: &Billing,
        change: &PlanChange,
        now_charge: &Charge,
        payment: &Payment,
        version: i64,
        catalogue: &Catalogue,
    ) -> Result<Billing, ChangePlanError> {
        let mut after = change.billing.clone();
        after.version = version;
        if let Some(next) = &change.schedule
            && let Err(e) = self.ports.gateway.schedule(&schedule_request(next)).await
        {
            unavailable(&e);
            // Paid but not scheduled: the period stands; the account falls back to Free
            // at its end unless a later change schedules again.
            after.next_charge = None;
        }
        let scheduled_ok = after.next_charge.is_some();
        let receipt = paid_receipt(now_charge, payment, self.now());
        let mut events = self.status_events(current, &after, catalogue);
        events.push(BillingEvent::PaymentSucceeded {
            group_id: current.group,
            plan: plan_name(catalogue, &now_charge.plan),
            amount: now_charge.money.amount,
            receipt_id: receipt.id,
        });
        let commit = BillingCommit {
            billing: after.clone(),
            new_charges: change.schedule.clone().filter(|_| scheduled_ok).into_iter().collect(),
            closed_charges: vec![(now_charge.merchant_uid.clone(), ChargeStatus::Paid)],
            receipt: Some(receipt),
            events: self.records(&events),
        };
        self.ports.billing.commit(&commit).await.map_err(|e| match e {
            CommitError::Unexpected(e) => ChangePlanError::Unexpected(e),
            // Nobody else may write while the marker stands.
            other => {
                ChangePlanError::Unexpected(anyhow::anyhow!("recording a paid charge: {other}"))
            }
        })?;
        after.version = version + 1;
        Ok(after)
    }

    /// Carries out a change that charges nothing now: the new charge scheduled first; then the
    /// old one cancelled; then the account recorded.
    async fn reschedule(
        &self,
        current: Billing,
        change: PlanChange,
        catalogue: &Catalogue,
    ) -> Result<Billing, ChangePlanError> {
        // Schedule the new charge first; then cancel the old; then record.
        if let Some(next) = &change.schedule
            && let Err(e) = self.ports.gateway.schedule(&schedule_request(next)).await
        {
            unavailable(&e);
            return Err(ChangePlanError::GatewayUnavailable);
        }
        if let Some(old) = &change.unschedule
            && let Err(e) = self
                .ports
                .gateway
                .unschedule(old.customer_uid.as_str(), old.merchant_uid.as_str())
                .await
        {
            unavailable(&e);
            if let Some(next) = &change.schedule {
                self.unschedule_quietly(next).await;
            }
            return Err(ChangePlanError::GatewayUnavailable);
        }
        let commit = BillingCommit {
            billing: change.billing.clone(),
            new_charges: change.schedule.clone().into_iter().collect(),
            closed_charges: change
                .unschedule
                .iter()
                .map(|c| (c.merchant_uid.clone(), ChargeStatus::Cancelled))
                .collect(),
            receipt: None,
            events: self.records(&self.status_events(&current, &change.billing, catalogue)),
        };
        match self.commit(&commit).await {
            Ok(()) => {
                let mut after = change.billing;
                after.version += 1;
                Ok(after)
            }
            Err(e) => {
                // Another change won: undo ours at the gateway. The old charge was cancelled by
                // us or by the winner, whose record now stands.
                if let Some(next) = &change.schedule {
                    self.unschedule_quietly(next).await;
                }
                if let Some(old) = &change.unschedule {
                    self.restore_if_still_pending(old).await;
                }
                Err(e)
            }
        }
    }

    async fn restore_if_still_pending(&self, old: &Charge) {
        // When the winner did not cancel the old charge, it is still the account's pending
        // charge: put it back at the gateway.
        let Ok(Some(current)) = self.ports.billing.billing(old.group).await else { return };
        if current.next_charge.as_ref().is_some_and(|c| {
            c.merchant_uid == old.merchant_uid && c.status == ChargeStatus::Scheduled
        }) && let Err(e) = self.ports.gateway.schedule(&schedule_request(old)).await
        {
            unavailable(&e);
        }
    }

    async fn close_marker(
        &self,
        restore: Billing,
        marker: &Charge,
        status: ChargeStatus,
        events: Vec<BillingEvent>,
    ) -> Result<(), ChangePlanError> {
        let commit = BillingCommit {
            billing: restore,
            new_charges: vec![],
            closed_charges: vec![(marker.merchant_uid.clone(), status)],
            receipt: None,
            events: self.records(&events),
        };
        self.ports
            .billing
            .commit(&commit)
            .await
            .map_err(|e| ChangePlanError::Unexpected(anyhow::anyhow!("closing a charge: {e}")))
    }

    async fn commit(&self, commit: &BillingCommit) -> Result<(), ChangePlanError> {
        match self.ports.billing.commit(commit).await {
            Ok(()) => Ok(()),
            Err(CommitError::Stale | CommitError::DuplicateReceipt) => Err(ChangePlanError::Busy),
            Err(CommitError::Unexpected(e)) => Err(e.into()),
        }
    }
}

pub(crate) fn plan_access(e: AuthorizeError) -> ChangePlanError {
    match e {
        AuthorizeError::NotFound => ChangePlanError::NotFound,
        AuthorizeError::Forbidden(_) => ChangePlanError::Forbidden,
        AuthorizeError::Unexpected(e) => ChangePlanError::Unexpected(e),
    }
}

/// Awaits three futures one after the other (the domain has no runtime to join them on).
async fn in_turn<A, B, C>(
    a: impl std::future::Future<Output = A>,
    b: impl std::future::Future<Output = B>,
    c: impl std::future::Future<Output = C>,
) -> (A, B, C) {
    (a.await, b.await, c.await)
}
