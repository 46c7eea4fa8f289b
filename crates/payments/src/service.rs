//! The payments use cases.
//!
//! The service talks to the gateway outside any transaction and records each outcome with one
//! storage call; the billing account's version (optimistic concurrency) makes a change that
//! raced with another end as one consistent result, and what was done at the gateway for the
//! losing side is undone.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Datelike, SubsecRound, Utc};
use onboard_groups::{AuthorizeError, Group, GroupsService, Permission, Slug, ViewGroupError};
use onboard_kernel::{Clock, GroupId, MemberId};

use crate::config::PaymentsConfig;
use crate::error::{CardError, ChangePlanError, UsageError, ViewBillingError, WebhookError};
use crate::gateway::{
    ChargeRequest, GatewayError, Payment, PaymentGateway, PaymentStatus, ScheduleRequest,
    WebhookNotice,
};
use crate::idempotency::IdempotencyKeys;
use crate::model::{
    Billing, BillingStatus, Card, CardChange, CardChangeId, CardChangeStep, CardId, Catalogue,
    Charge, ChargeKind, ChargeStatus, CustomerUid, MerchantUid, PlanCode, Receipt, ReceiptCursor,
    ReceiptId, ReceiptKind, ReceiptStatus, Usage,
};
use crate::notices::{BillingNotice, TRIAL_ENDING_DAYS, status_notices, trial_ending_due};
use crate::plan_change::{
    NewIds, PlanChange, PlanRequest, first_attempt_at, plan_change, retry_at,
};
use crate::ports::{
    AddCardError, BeginCardChangeError, BillingCommit, BillingRepository, CardRepository,
    CommitError, DeleteCardError, IdempotencyRepository, IncrementError, UsageRepository,
};

/// How many times a use case judges again after a concurrent write.
const ATTEMPTS: usize = 5;

/// The storage and gateway ports the service needs.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct PaymentsPorts {
    pub billing: Arc<dyn BillingRepository>,
    pub cards: Arc<dyn CardRepository>,
    pub usage: Arc<dyn UsageRepository>,
    pub idempotency: Arc<dyn IdempotencyRepository>,
    pub gateway: Arc<dyn PaymentGateway>,
}

/// Plans, billing accounts, cards, charges, webhooks, receipts and usage.
#[derive(Clone)]
pub struct PaymentsService {
    ports: PaymentsPorts,
    groups: GroupsService,
    clock: Arc<dyn Clock>,
    config: PaymentsConfig,
}

impl std::fmt::Debug for PaymentsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsService").field("config", &self.config).finish_non_exhaustive()
    }
}

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

/// What a periodic run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodicReport {
    /// Accounts that fell back to Free.
    pub expired: usize,
    /// Overdue charges whose outcome was read back from the gateway and applied.
    pub reconciled: usize,
    /// Trial-ending notices sent (billnote).
    pub trials_noticed: usize,
    /// Schedules and billing keys of deleted groups removed from the gateway.
    pub leftovers_cleaned: usize,
}

/// A page of receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPage {
    pub items: Vec<Receipt>,
    pub next_cursor: Option<String>,
}

fn unavailable(e: &GatewayError) {
    tracing::warn!(error = %e, "payment gateway");
}

fn warn(message: &str) {
    tracing::warn!("{message}");
}

impl PaymentsService {
    /// The largest page a list answers.
    pub const MAX_PAGE: u32 = 100;
    /// The page size when the client names none.
    pub const DEFAULT_PAGE: u32 = 20;

    pub fn new(
        ports: PaymentsPorts,
        groups: GroupsService,
        clock: Arc<dyn Clock>,
        config: PaymentsConfig,
    ) -> Self {
        Self { ports, groups, clock, config }
    }

    pub fn config(&self) -> &PaymentsConfig {
        &self.config
    }

    /// What the gateway's client SDK needs to register a card.
    pub fn gateway_client_config(&self) -> serde_json::Value {
        self.ports.gateway.client_config()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    /// The idempotency keys the payments commands run under.
    pub(crate) fn idempotency_keys(&self) -> IdempotencyKeys {
        IdempotencyKeys::new(self.ports.idempotency.clone(), self.clock.clone())
    }

    /// The groups the payments use cases authorize callers in.
    pub(crate) const fn groups(&self) -> &GroupsService {
        &self.groups
    }

    // -----------------------------------------------------------------------------------------
    // Access
    // -----------------------------------------------------------------------------------------

    async fn member_of(&self, slug: &Slug, caller: MemberId) -> Result<Group, ViewBillingError> {
        match self.groups.group(slug, caller).await {
            Ok(g) => Ok(g.group),
            Err(ViewGroupError::NotFound) => Err(ViewBillingError::NotFound),
            Err(ViewGroupError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// The group, when the caller holds `billing.manage` in it.
    pub(crate) async fn manager_of(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<Group, AuthorizeError> {
        self.groups.authorize(slug, caller, &Permission::BILLING_MANAGE).await.map(|(g, _)| g)
    }

    // -----------------------------------------------------------------------------------------
    // Plans and the account
    // -----------------------------------------------------------------------------------------

    /// The plan catalogue.
    pub async fn catalogue(&self) -> anyhow::Result<Catalogue> {
        self.ports.billing.catalogue().await
    }

    async fn load(&self, group: GroupId) -> anyhow::Result<Billing> {
        Ok(self
            .ports
            .billing
            .billing(group)
            .await?
            .unwrap_or_else(|| Billing::free(group, self.config.pay_hour)))
    }

    /// The group's billing account as a member sees it (Free when it never had one).
    pub async fn billing(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<Billing, ViewBillingError> {
        let group = self.member_of(slug, caller).await?;
        Ok(self.load(group.id).await?)
    }

    async fn main_card(&self, group: GroupId) -> anyhow::Result<Option<Card>> {
        Ok(self.ports.cards.cards(group).await?.into_iter().find(|c| c.main))
    }

    /// What changing the plan would do, without doing it.
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
        let mut version = current.version;
        if let Some(now_charge) = &change.charge_now {
            // Mark the charge first, so a concurrent change sees it and waits (Busy).
            let mut marked = current.clone();
            marked.next_charge = Some(now_charge.clone());
            let commit = BillingCommit {
                billing: marked,
                new_charges: vec![now_charge.clone()],
                closed_charges: vec![],
                receipt: None,
                notices: vec![],
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
                let reason =
                    payment.failure_reason.clone().unwrap_or_else(|| "declined".to_owned());
                let failed = BillingNotice::PaymentFailed {
                    plan: plan_name(catalogue, &now_charge.plan),
                    amount: now_charge.money.amount,
                    reason: reason.clone(),
                    retry_on: None,
                };
                self.close_marker(restore, now_charge, ChargeStatus::Failed, vec![failed]).await?;
                return Err(ChangePlanError::PaymentFailed(reason));
            }
            // Paid: record the receipt with the new account below.
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
            let mut notices = self.status_notices(&current, &after, catalogue);
            notices.push(BillingNotice::PaymentSucceeded {
                plan: plan_name(catalogue, &now_charge.plan),
                amount: now_charge.money.amount,
            });
            let commit = BillingCommit {
                billing: after.clone(),
                new_charges: change.schedule.clone().filter(|_| scheduled_ok).into_iter().collect(),
                closed_charges: vec![(now_charge.merchant_uid.clone(), ChargeStatus::Paid)],
                receipt: Some(paid_receipt(now_charge, &payment, self.now())),
                notices,
            };
            self.ports.billing.commit(&commit).await.map_err(|e| match e {
                CommitError::Unexpected(e) => ChangePlanError::Unexpected(e),
                // Nobody else may write while the marker stands.
                other => {
                    ChangePlanError::Unexpected(anyhow::anyhow!("recording a paid charge: {other}"))
                }
            })?;
            after.version = version + 1;
            return Ok(after);
        }

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
            notices: self.status_notices(&current, &change.billing, catalogue),
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
        notices: Vec<BillingNotice>,
    ) -> Result<(), ChangePlanError> {
        let commit = BillingCommit {
            billing: restore,
            new_charges: vec![],
            closed_charges: vec![(marker.merchant_uid.clone(), status)],
            receipt: None,
            notices,
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

    async fn unschedule_quietly(&self, charge: &Charge) {
        if let Err(e) = self
            .ports
            .gateway
            .unschedule(charge.customer_uid.as_str(), charge.merchant_uid.as_str())
            .await
        {
            warn(&format!(
                "could not cancel the scheduled charge {} at the gateway: {e}",
                charge.merchant_uid
            ));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Cards
    // -----------------------------------------------------------------------------------------

    /// Issues a fresh customer_uid to the group for the client SDK to register a card under.
    pub async fn prepare_card(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<CustomerUid, CardError> {
        let group = self.manager_of(slug, caller).await.map_err(card_access)?;
        let uid = CustomerUid::generate();
        self.ports.cards.prepare(group.id, &uid, self.now()).await?;
        Ok(uid)
    }

    /// Adds the card registered at the gateway under a customer_uid issued to this group; the
    /// group's first card becomes main.
    pub async fn add_card(
        &self,
        slug: &Slug,
        caller: MemberId,
        customer_uid: &CustomerUid,
    ) -> Result<Card, CardError> {
        let group = self.manager_of(slug, caller).await.map_err(card_access)?;
        let key = match self.ports.gateway.billing_key(customer_uid.as_str()).await {
            Ok(Some(k)) => k,
            Ok(None) => return Err(CardError::NotAtGateway),
            Err(e) => {
                unavailable(&e);
                return Err(CardError::GatewayUnavailable);
            }
        };
        let card = Card {
            id: CardId::new(),
            group: group.id,
            customer_uid: customer_uid.clone(),
            card_name: key.card_name,
            number_masked: key.number_masked,
            main: false,
            created_at: self.now(),
        };
        match self.ports.cards.add(&card).await {
            Ok(card) => Ok(card),
            Err(AddCardError::NotPrepared) => Err(CardError::NotAtGateway),
            Err(AddCardError::Exists) => Err(CardError::Exists),
            Err(AddCardError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// The group's cards, oldest first.
    pub async fn cards(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<Vec<Card>, ViewBillingError> {
        let group = self.member_of(slug, caller).await?;
        Ok(self.ports.cards.cards(group.id).await?)
    }

    /// Deletes a card and its billing key at the gateway; refused while a charge is scheduled
    /// on it.
    pub async fn delete_card(
        &self,
        slug: &Slug,
        caller: MemberId,
        id: CardId,
    ) -> Result<(), CardError> {
        let group = self.manager_of(slug, caller).await.map_err(card_access)?;
        let card = self.ports.cards.card(group.id, id).await?.ok_or(CardError::CardNotFound)?;
        match self.ports.cards.delete(group.id, id).await {
            Ok(()) => {}
            Err(DeleteCardError::NotFound) => return Err(CardError::CardNotFound),
            Err(DeleteCardError::InUse) => return Err(CardError::InUse),
            Err(DeleteCardError::Unexpected(e)) => return Err(e.into()),
        }
        if let Err(e) = self.ports.gateway.delete_billing_key(card.customer_uid.as_str()).await {
            warn(&format!("the billing key {} stays at the gateway: {e}", card.customer_uid));
        }
        Ok(())
    }

    /// Makes a card main and moves the pending charge to it under a new merchant_uid, all or
    /// nothing: a journaled saga (see [`crate::ports::CardRepository::begin_main_change`]).
    pub async fn set_main_card(
        &self,
        slug: &Slug,
        caller: MemberId,
        id: CardId,
    ) -> Result<Billing, CardError> {
        let group = self.manager_of(slug, caller).await.map_err(card_access)?;
        let cards = self.ports.cards.cards(group.id).await?;
        let card = cards.iter().find(|c| c.id == id).ok_or(CardError::CardNotFound)?;
        if card.main {
            return Ok(self.load(group.id).await?);
        }
        let old_card = cards.iter().find(|c| c.main).map(|c| c.id);
        let billing = self.load(group.id).await?;
        let old_charge = billing
            .next_charge
            .clone()
            .filter(|c| c.status == ChargeStatus::Scheduled && c.kind != ChargeKind::Immediate);
        let change = CardChange {
            id: CardChangeId::new(),
            group: group.id,
            old_card,
            new_card: card.id,
            old_charge,
            new_merchant_uid: MerchantUid::generate(),
            step: CardChangeStep::Marked,
            created_at: self.now(),
        };
        // Step 1: the marks, with the journal row.
        match self.ports.cards.begin_main_change(&change).await {
            Ok(()) => {}
            Err(BeginCardChangeError::NotFound) => return Err(CardError::CardNotFound),
            Err(BeginCardChangeError::Busy) => return Err(CardError::Busy),
            Err(BeginCardChangeError::Unexpected(e)) => return Err(e.into()),
        }
        let Some(old) = change.old_charge.clone() else {
            self.ports.cards.finish_main_change(change.id, None).await.map_err(commit_fault)?;
            return Ok(self.load(group.id).await?);
        };
        // Step 2: cancel the pending charge on the old card.
        if let Err(e) = self
            .ports
            .gateway
            .unschedule(old.customer_uid.as_str(), old.merchant_uid.as_str())
            .await
        {
            unavailable(&e);
            // The gateway may have cancelled it before failing: restore it (a refusal means it
            // is still there).
            self.compensate_or_leave_to_recovery(&change).await;
            return Err(CardError::GatewayUnavailable);
        }
        self.ports.cards.advance_main_change(change.id, CardChangeStep::Unscheduled).await?;
        // Step 3: schedule it on the new card.
        let moved = moved_charge(&old, card, &change.new_merchant_uid, self.now());
        if let Err(e) = self.ports.gateway.schedule(&schedule_request(&moved)).await {
            unavailable(&e);
            self.compensate_or_leave_to_recovery(&change).await;
            return Err(CardError::GatewayUnavailable);
        }
        self.ports.cards.advance_main_change(change.id, CardChangeStep::Scheduled).await?;
        // Step 4: record.
        match self.finish_change(&change, card).await {
            Ok(b) => Ok(b),
            Err(CommitError::Stale | CommitError::DuplicateReceipt) => {
                self.unschedule_quietly(&moved).await;
                self.compensate(&change).await?;
                Err(CardError::Busy)
            }
            Err(CommitError::Unexpected(e)) => Err(e.into()),
        }
    }

    async fn finish_change(
        &self,
        change: &CardChange,
        card: &Card,
    ) -> Result<Billing, CommitError> {
        let Some(old) = &change.old_charge else {
            self.ports.cards.finish_main_change(change.id, None).await?;
            return Ok(self.load(change.group).await?);
        };
        let mut billing = self.load(change.group).await?;
        if billing.next_charge.as_ref().map(|c| &c.merchant_uid) != Some(&old.merchant_uid) {
            return Err(CommitError::Stale);
        }
        let moved = moved_charge(old, card, &change.new_merchant_uid, self.now());
        billing.next_charge = Some(moved.clone());
        let commit = BillingCommit {
            billing: billing.clone(),
            new_charges: vec![moved],
            closed_charges: vec![(old.merchant_uid.clone(), ChargeStatus::Cancelled)],
            receipt: None,
            notices: vec![],
        };
        self.ports.cards.finish_main_change(change.id, Some(commit)).await?;
        billing.version += 1;
        Ok(billing)
    }

    /// [`Self::compensate`]; when it cannot finish now, the journal row stays unfinished and
    /// [`Self::recover`] settles it at the next start.
    async fn compensate_or_leave_to_recovery(&self, change: &CardChange) {
        if let Err(e) = self.compensate(change).await {
            warn(&format!("main-card change {} left to recovery: {e:#}", change.id));
        }
    }

    /// Undoes a main-card change: the old schedule restored (under its merchant_uid), the
    /// marks restored. When the gateway cannot restore the schedule, the journal row stays
    /// unfinished for [`Self::recover`].
    async fn compensate(&self, change: &CardChange) -> anyhow::Result<()> {
        if let Some(old) = &change.old_charge {
            // Whatever may have been scheduled on the new card goes.
            let _ = self
                .ports
                .gateway
                .unschedule(
                    new_card_customer(change, self).await?.as_str(),
                    change.new_merchant_uid.as_str(),
                )
                .await;
            match self.ports.gateway.schedule(&schedule_request(old)).await {
                Ok(()) => {}
                Err(GatewayError::Rejected { code, message }) => {
                    // Already scheduled (step 2 never reached the gateway): nothing to restore.
                    warn(&format!(
                        "restoring {}: the gateway answered {code} {message}",
                        old.merchant_uid
                    ));
                }
                Err(e) => {
                    unavailable(&e);
                    anyhow::bail!("the old schedule could not be restored yet: {e}");
                }
            }
        }
        self.ports.cards.roll_back_main_change(change).await
    }

    /// Start-up recovery: finishes the main-card changes that reached the gateway on both sides
    /// and rolls back the others. Answers how many journal rows it settled.
    pub async fn recover(&self) -> anyhow::Result<usize> {
        let mut settled = 0;
        for change in self.ports.cards.unfinished_main_changes().await? {
            let outcome = match change.step {
                CardChangeStep::Scheduled => {
                    let card = self.ports.cards.card(change.group, change.new_card).await?;
                    match card {
                        Some(card) => match self.finish_change(&change, &card).await {
                            Ok(_) => Ok(()),
                            Err(CommitError::Unexpected(e)) => Err(e),
                            Err(_) => self.compensate(&change).await,
                        },
                        None => self.compensate(&change).await,
                    }
                }
                _ => self.compensate(&change).await,
            };
            match outcome {
                Ok(()) => settled += 1,
                Err(e) => warn(&format!("main-card change {} not settled yet: {e:#}", change.id)),
            }
        }
        Ok(settled)
    }

    // -----------------------------------------------------------------------------------------
    // Receipts and usage
    // -----------------------------------------------------------------------------------------

    /// A page of the group's receipts, newest first; `limit` clamped to 1..=100.
    pub async fn receipts(
        &self,
        slug: &Slug,
        caller: MemberId,
        after: Option<ReceiptCursor>,
        limit: u32,
    ) -> Result<ReceiptPage, ViewBillingError> {
        let group = self.member_of(slug, caller).await?;
        let limit = limit.clamp(1, Self::MAX_PAGE);
        let mut items = self.ports.billing.receipts(group.id, after, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| ReceiptCursor { created_at: r.created_at, id: r.id }.encode())
        } else {
            None
        };
        Ok(ReceiptPage { items, next_cursor })
    }

    /// The current usage period of a group: the billing period while on a paid plan (the
    /// trial while trialing); on Free, the month-long period (same arithmetic as billing
    /// periods) running from the group's creation day, at midnight in the billing time zone.
    pub fn usage_period(
        &self,
        group: &Group,
        billing: &Billing,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        if billing.status != BillingStatus::Free
            && let (Some(s), Some(e)) = (billing.current_period_start, billing.current_period_end)
        {
            return (s, e);
        }
        let clock = self.config.clock;
        let today = clock.day_of(now);
        let mut first = clock.day_of(group.created_at);
        // Jump close to today, then walk (each step is one month).
        let months =
            (today.year() - first.year()) * 12 + today.month() as i32 - first.month() as i32;
        for _ in 0..(months - 2).max(0) {
            first = crate::period::next_first_day(first, crate::model::Interval::Month);
        }
        loop {
            let next = crate::period::next_first_day(first, crate::model::Interval::Month);
            if next > today {
                return (clock.at_pay_hour(first, 0), clock.at_pay_hour(next, 0));
            }
            first = next;
        }
    }

    /// Every limited metric's count in the current period.
    pub async fn usage(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<Vec<Usage>, ViewBillingError> {
        let group = self.member_of(slug, caller).await?;
        let billing = self.load(group.id).await?;
        let catalogue = self.catalogue().await?;
        let (start, end) = self.usage_period(&group, &billing, self.now());
        let counted = self.ports.usage.usage(group.id, start).await?;
        let plan = catalogue.plan(&billing.plan).cloned().unwrap_or_else(|| catalogue.free());
        Ok(catalogue
            .metrics()
            .into_iter()
            .map(|metric| Usage {
                used: counted.iter().find(|(m, _)| *m == metric).map_or(0, |(_, n)| *n),
                limit: plan.limits.get(&metric).copied().flatten(),
                metric,
                period_start: start,
                period_end: end,
            })
            .collect())
    }

    /// Counts `delta` of `metric` against the current plan's limit, atomically: over the
    /// limit nothing is counted. `group` is already authorized (see [`Self::manager_of`]).
    pub(crate) async fn record_usage(
        &self,
        group: &Group,
        metric: &str,
        delta: i64,
    ) -> Result<Usage, UsageError> {
        let billing = self.load(group.id).await?;
        let catalogue = self.catalogue().await?;
        if !catalogue.metrics().iter().any(|m| m == metric) {
            return Err(UsageError::UnknownMetric(metric.to_owned()));
        }
        let plan = catalogue.plan(&billing.plan).cloned().unwrap_or_else(|| catalogue.free());
        let limit = plan.limits.get(metric).copied().flatten();
        let (start, end) = self.usage_period(group, &billing, self.now());
        let usage = |used| Usage {
            metric: metric.to_owned(),
            used,
            limit,
            period_start: start,
            period_end: end,
        };
        match self.ports.usage.increment(group.id, metric, start, delta, limit).await {
            Ok(used) => Ok(usage(used)),
            Err(IncrementError::LimitReached { used }) => {
                Err(UsageError::LimitReached(usage(used)))
            }
            Err(IncrementError::Unexpected(e)) => Err(e.into()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Webhooks, renewals, retries
    // -----------------------------------------------------------------------------------------

    /// Handles a payment notification: re-reads the payment from the gateway by `imp_uid`,
    /// matches it against the charge Onboard scheduled (merchant_uid, amount, group), and
    /// applies it once (idempotent by `imp_uid`). Unknown or mismatched payments change nothing.
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
            let (commit, scheduled) =
                if fresh.kind == ChargeKind::Immediate && payment.status == PaymentStatus::Failed {
                    let failed = BillingNotice::PaymentFailed {
                        plan: plan_name(&self.catalogue().await?, &fresh.plan),
                        amount: fresh.money.amount,
                        reason: failure_reason(payment),
                        retry_on: None,
                    };
                    (drop_marker(billing, &fresh, ChargeStatus::Failed, vec![failed]), None)
                } else if payment.status == PaymentStatus::Paid {
                    self.on_paid(&billing, &fresh, payment).await?
                } else {
                    self.on_failed(&billing, &fresh, payment).await?
                };
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
        let mut notices = self.status_notices(billing, &after, &catalogue);
        notices.push(BillingNotice::PaymentSucceeded {
            plan: plan_name(&catalogue, &charge.plan),
            amount: charge.money.amount,
        });
        let commit = BillingCommit {
            billing: after,
            new_charges: vec![next.clone()],
            closed_charges: closed,
            receipt: Some(paid_receipt(charge, payment, self.now())),
            notices,
        };
        Ok((commit, Some(next)))
    }

    async fn on_failed(
        &self,
        billing: &Billing,
        charge: &Charge,
        payment: &Payment,
    ) -> Result<(BillingCommit, Option<Charge>), WebhookError> {
        let receipt = Receipt {
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
            created_at: self.now(),
        };
        let catalogue = self.catalogue().await?;
        let failed = |retry_on| BillingNotice::PaymentFailed {
            plan: plan_name(&catalogue, &charge.plan),
            amount: charge.money.amount,
            reason: failure_reason(payment),
            retry_on,
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
                    notices: vec![failed(None)],
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
                let retry_on = self.config.clock.day_of(retry.at);
                Ok((
                    BillingCommit {
                        billing: after,
                        new_charges: vec![retry.clone()],
                        closed_charges: closed,
                        receipt: Some(receipt),
                        notices: vec![failed(Some(retry_on))],
                    },
                    Some(retry),
                ))
            }
            None => {
                // The last retry failed: back to Free.
                to_free(&mut after);
                let mut notices = vec![failed(None)];
                notices.extend(self.status_notices(billing, &after, &catalogue));
                Ok((
                    BillingCommit {
                        billing: after,
                        new_charges: vec![],
                        closed_charges: closed,
                        receipt: Some(receipt),
                        notices,
                    },
                    None,
                ))
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Periodic work
    // -----------------------------------------------------------------------------------------

    /// Accounts past their period end with nothing to charge (canceled, or whose charges were
    /// never scheduled) fall back to Free.
    pub async fn expire_periods(&self) -> anyhow::Result<usize> {
        let now = self.now();
        let mut done = 0;
        let expired = self.ports.billing.expired_billings(now, 100).await?;
        if expired.is_empty() {
            return Ok(0);
        }
        let catalogue = self.catalogue().await?;
        for billing in expired {
            let mut after = billing.clone();
            to_free(&mut after);
            let commit = BillingCommit {
                notices: self.status_notices(&billing, &after, &catalogue),
                billing: after,
                new_charges: vec![],
                closed_charges: vec![],
                receipt: None,
            };
            match self.ports.billing.commit(&commit).await {
                Ok(()) => done += 1,
                Err(CommitError::Stale | CommitError::DuplicateReceipt) => {}
                Err(CommitError::Unexpected(e)) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Reconciliation of lost webhooks: every scheduled charge whose time passed more than
    /// `reconcile_after` ago is read back from the gateway and applied.
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

    /// The periodic use cases, for the job runner (or the embedded mode's interval task).
    pub async fn run_periodic(&self) -> anyhow::Result<PeriodicReport> {
        let reconciled = self.reconcile().await.context("reconciliation")?;
        let expired = self.expire_periods().await.context("period ends")?;
        let trials_noticed = self.notify_trials_ending().await.context("trial-ending notices")?;
        let leftovers_cleaned = self.clean_up_gateway().await.context("gateway clean-up")?;
        Ok(PeriodicReport { expired, reconciled, trials_noticed, leftovers_cleaned })
    }

    /// Cancels the scheduled charges and deletes the billing keys that deleted groups left at
    /// the gateway (recorded by storage when the group went), so a deleted workspace is never
    /// charged. Schedules go before keys. A leftover the gateway refuses now stays for the next
    /// run. Answers how many were removed.
    pub async fn clean_up_gateway(&self) -> anyhow::Result<usize> {
        let mut leftovers = self.ports.billing.gateway_leftovers(100).await?;
        // Schedules first: a key is deleted only once nothing is scheduled on it.
        leftovers.sort_by_key(|l| (l.merchant_uid.is_none(), l.id));
        let mut done = 0;
        for leftover in leftovers {
            let outcome = match &leftover.merchant_uid {
                Some(merchant_uid) => self
                    .ports
                    .gateway
                    .unschedule(&leftover.customer_uid, merchant_uid)
                    .await
                    .map(|_| ()),
                None => self.ports.gateway.delete_billing_key(&leftover.customer_uid).await,
            };
            match outcome {
                Ok(()) => {
                    self.ports.billing.forget_leftover(leftover.id).await?;
                    done += 1;
                }
                Err(e) => warn(&format!(
                    "a deleted group's {} stays at the gateway for now: {e}",
                    leftover.merchant_uid.as_deref().unwrap_or(&leftover.customer_uid)
                )),
            }
        }
        Ok(done)
    }

    /// What a change of the account tells by itself (see [`status_notices`]).
    fn status_notices(
        &self,
        before: &Billing,
        after: &Billing,
        catalogue: &Catalogue,
    ) -> Vec<BillingNotice> {
        status_notices(
            before,
            after,
            |code| plan_name(catalogue, &PlanCode::from_trusted(code)),
            &self.config.clock,
        )
    }

    /// Tells the billing managers of every trial whose end is near (`billing.trial_ending`, 30,
    /// 7 and 1 days before; see [`trial_ending_due`]), each (trial, days) once however often
    /// and on however many instances this runs: storage records each one it notified.
    /// Answers how many it notified now.
    pub async fn notify_trials_ending(&self) -> anyhow::Result<usize> {
        const PAGE: u32 = 100;
        let now = self.now();
        let horizon = TRIAL_ENDING_DAYS.into_iter().max().unwrap_or_default();
        let until = now + chrono::Duration::days(i64::from(horizon));
        let mut after = None;
        let mut catalogue = None;
        let mut notified = 0;
        loop {
            let page = self.ports.billing.trials_ending(now, until, after, PAGE).await?;
            for billing in &page {
                let (Some(days), Some(end)) =
                    (trial_ending_due(billing, now), billing.trial_ends_at)
                else {
                    continue;
                };
                let catalogue = match &catalogue {
                    Some(c) => c,
                    None => catalogue.insert(self.catalogue().await?),
                };
                let notice = BillingNotice::TrialEnding {
                    plan: plan_name(catalogue, &billing.plan),
                    days,
                    ends_on: self.config.clock.day_of(end),
                };
                if self.ports.billing.notify_trial_ending(billing.group, end, days, &notice).await?
                {
                    notified += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => {
                    after = last.trial_ends_at.map(|end| (end, last.group));
                }
                _ => return Ok(notified),
            }
        }
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
    notices: Vec<BillingNotice>,
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
        notices,
    }
}

/// The display name of a plan (its code when the catalogue lacks it).
fn plan_name(catalogue: &Catalogue, code: &PlanCode) -> String {
    catalogue.plan(code).map_or_else(|| code.as_str().to_owned(), |p| p.name.clone())
}

/// Why the gateway says a payment failed.
fn failure_reason(payment: &Payment) -> String {
    payment.failure_reason.clone().unwrap_or_else(|| "declined".to_owned())
}

fn to_free(b: &mut Billing) {
    b.plan = PlanCode::free();
    b.interval = None;
    b.addons.clear();
    b.status = BillingStatus::Free;
    b.trial_ends_at = None;
    b.current_period_start = None;
    b.current_period_end = None;
    b.cancel_at_period_end = false;
    b.next_charge = None;
}

fn moved_charge(old: &Charge, card: &Card, uid: &MerchantUid, now: DateTime<Utc>) -> Charge {
    Charge {
        merchant_uid: uid.clone(),
        card_id: card.id,
        customer_uid: card.customer_uid.clone(),
        created_at: now,
        status: ChargeStatus::Scheduled,
        ..old.clone()
    }
}

async fn new_card_customer(
    change: &CardChange,
    service: &PaymentsService,
) -> anyhow::Result<CustomerUid> {
    Ok(service
        .ports
        .cards
        .card(change.group, change.new_card)
        .await?
        .map(|c| c.customer_uid)
        .or_else(|| change.old_charge.as_ref().map(|c| c.customer_uid.clone()))
        .unwrap_or_else(|| CustomerUid::from_trusted("")))
}

fn paid_receipt(charge: &Charge, payment: &Payment, now: DateTime<Utc>) -> Receipt {
    Receipt {
        id: ReceiptId::new(),
        group: charge.group,
        kind: ReceiptKind::Subscription,
        money: charge.money,
        status: ReceiptStatus::Paid,
        imp_uid: payment.imp_uid.clone(),
        merchant_uid: charge.merchant_uid.clone(),
        card_id: Some(charge.card_id),
        paid_at: Some(payment.paid_at.unwrap_or(now)),
        failure_reason: None,
        created_at: now,
    }
}

fn charge_name(charge: &Charge) -> String {
    let interval = match charge.interval {
        crate::model::Interval::Month => "monthly",
        crate::model::Interval::Year => "yearly",
    };
    format!("Onboard {} ({interval})", charge.plan)
}

fn schedule_request(charge: &Charge) -> ScheduleRequest {
    ScheduleRequest {
        customer_uid: charge.customer_uid.to_string(),
        merchant_uid: charge.merchant_uid.to_string(),
        at: charge.at.trunc_subsecs(0),
        amount: charge.money.amount,
        name: charge_name(charge),
    }
}

pub(crate) fn plan_access(e: AuthorizeError) -> ChangePlanError {
    match e {
        AuthorizeError::NotFound => ChangePlanError::NotFound,
        AuthorizeError::Forbidden(_) => ChangePlanError::Forbidden,
        AuthorizeError::Unexpected(e) => ChangePlanError::Unexpected(e),
    }
}

fn card_access(e: AuthorizeError) -> CardError {
    match e {
        AuthorizeError::NotFound => CardError::NotFound,
        AuthorizeError::Forbidden(_) => CardError::Forbidden,
        AuthorizeError::Unexpected(e) => CardError::Unexpected(e),
    }
}

fn commit_fault(e: CommitError) -> CardError {
    match e {
        CommitError::Unexpected(e) => CardError::Unexpected(e),
        _ => CardError::Busy,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone;
    use onboard_groups::ports::MockGroupRepository;
    use onboard_groups::{GroupName, GroupsConfig, Membership, MembershipStatus, RoleName};
    use onboard_kernel::MockClock;

    use super::*;
    use crate::gateway::{MockPaymentGateway, Unscheduled};
    use crate::model::{Interval, Money};
    use crate::ports::{
        MockBillingRepository, MockCardRepository, MockIdempotencyRepository, MockUsageRepository,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time")
    }

    fn group() -> Group {
        Group {
            id: GroupId::from_uuid(uuid::Uuid::nil()),
            slug: Slug::from_trusted("acme"),
            name: GroupName::parse("Acme").expect("a name"),
            approval_required: false,
            created_at: now(),
        }
    }

    fn card() -> Card {
        Card {
            id: CardId::new(),
            group: group().id,
            customer_uid: CustomerUid::generate(),
            card_name: "Test Card".into(),
            number_masked: "424242******4242".into(),
            main: true,
            created_at: now(),
        }
    }

    struct Mocks {
        billing: MockBillingRepository,
        cards: MockCardRepository,
        gateway: MockPaymentGateway,
    }

    impl Mocks {
        fn new() -> Self {
            let mut billing = MockBillingRepository::new();
            billing.expect_catalogue().returning(|| Ok(Catalogue::seed()));
            Self { billing, cards: MockCardRepository::new(), gateway: MockPaymentGateway::new() }
        }

        fn service(self, role: RoleName) -> PaymentsService {
            let mut groups = MockGroupRepository::new();
            groups.expect_find_for_member().returning(move |_, _| {
                Ok(Some((
                    group(),
                    Some(Membership {
                        role: role.clone(),
                        status: MembershipStatus::Active,
                        role_permissions: BTreeSet::new(),
                    }),
                )))
            });
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            let clock: Arc<dyn Clock> = Arc::new(clock);
            let groups =
                GroupsService::new(Arc::new(groups), GroupsConfig::default(), clock.clone());
            let ports = PaymentsPorts {
                billing: Arc::new(self.billing),
                cards: Arc::new(self.cards),
                usage: Arc::new(MockUsageRepository::new()),
                idempotency: Arc::new(MockIdempotencyRepository::new()),
                gateway: Arc::new(self.gateway),
            };
            PaymentsService::new(ports, groups, clock, PaymentsConfig::default())
        }
    }

    fn pro() -> PlanRequest {
        PlanRequest {
            plan: PlanCode::from_trusted("pro"),
            interval: Some(Interval::Month),
            addons: vec![],
        }
    }

    #[tokio::test]
    async fn a_change_records_exactly_what_the_preview_announced() {
        let card = card();
        let mut m = Mocks::new();
        m.billing.expect_billing().returning(|_| Ok(None));
        let c = card.clone();
        m.cards.expect_cards().returning(move |_| Ok(vec![c.clone()]));
        m.gateway.expect_schedule().times(1).returning(|_| Ok(()));
        let recorded = Arc::new(std::sync::Mutex::new(None));
        let r = recorded.clone();
        m.billing.expect_commit().times(1).returning(move |commit| {
            *r.lock().expect("lock") = Some(commit.clone());
            Ok(())
        });
        let service = m.service(RoleName::OWNER);
        let slug = Slug::from_trusted("acme");
        let preview = service.preview(&slug, MemberId::new(), &pro()).await.expect("a preview");
        let after = service.change_plan(&group(), &pro()).await.expect("changed");
        let commit = recorded.lock().expect("lock").clone().expect("recorded");
        assert_eq!(preview.billing.status, after.status);
        assert_eq!(preview.billing.trial_ends_at, after.trial_ends_at);
        let (p, c) = (preview.schedule.expect("scheduled"), commit.new_charges[0].clone());
        assert_eq!((p.at, p.money, p.kind, p.card_id), (c.at, c.money, c.kind, c.card_id));
        assert_eq!(commit.billing.next_charge.map(|n| n.merchant_uid), Some(c.merchant_uid));
    }

    /// The commits the service hands to storage, in order.
    type Recorded = Arc<std::sync::Mutex<Vec<BillingCommit>>>;

    fn recording(m: &mut Mocks) -> Recorded {
        let recorded: Recorded = Arc::default();
        let r = recorded.clone();
        m.billing.expect_commit().returning(move |commit| {
            r.lock().expect("lock").push(commit.clone());
            Ok(())
        });
        recorded
    }

    fn pending(card: &Card, kind: ChargeKind, attempt: u32) -> Charge {
        Charge {
            merchant_uid: MerchantUid::from_trusted("ob_pending"),
            group: group().id,
            card_id: card.id,
            customer_uid: card.customer_uid.clone(),
            money: Money::with_vat(75_800),
            at: now() - chrono::Duration::hours(1),
            plan: PlanCode::from_trusted("pro"),
            interval: Interval::Month,
            addons: vec![],
            period_start: now() - chrono::Duration::hours(1),
            kind,
            attempt,
            status: ChargeStatus::Scheduled,
            created_at: now(),
        }
    }

    /// Mocks for a webhook of `outcome` paying `charge`, the account's pending charge.
    fn webhook_of(m: &mut Mocks, card: &Card, charge: &Charge, status: BillingStatus, paid: bool) {
        let mut billing = Billing::free(group().id, 10);
        billing.plan = PlanCode::from_trusted("pro");
        billing.interval = Some(Interval::Month);
        billing.status = status;
        billing.trial_used = true;
        billing.current_period_start = Some(charge.period_start);
        billing.current_period_end = Some(charge.period_start);
        billing.next_charge = Some(charge.clone());
        billing.version = 3;
        m.billing.expect_receipt_exists().returning(|_| Ok(false));
        let c = charge.clone();
        m.billing.expect_charge().returning(move |_| Ok(Some(c.clone())));
        m.billing.expect_billing().returning(move |_| Ok(Some(billing.clone())));
        let main = card.clone();
        m.cards.expect_cards().returning(move |_| Ok(vec![main.clone()]));
        m.gateway.expect_schedule().returning(|_| Ok(()));
        let (uid, amount) = (charge.merchant_uid.to_string(), charge.money.amount);
        m.gateway.expect_payment().returning(move |imp_uid| {
            Ok(Some(Payment {
                imp_uid: imp_uid.to_owned(),
                merchant_uid: uid.clone(),
                customer_uid: None,
                amount,
                status: if paid { PaymentStatus::Paid } else { PaymentStatus::Failed },
                failure_reason: (!paid).then(|| "card declined".to_owned()),
                paid_at: None,
            }))
        });
    }

    fn notice_of(uid: &MerchantUid, status: &str) -> WebhookNotice {
        WebhookNotice {
            imp_uid: "imp_1".into(),
            merchant_uid: uid.to_string(),
            status: status.into(),
        }
    }

    #[tokio::test]
    async fn starting_a_trial_tells_the_billing_managers_in_the_same_commit() {
        let mut m = Mocks::new();
        m.billing.expect_billing().returning(|_| Ok(None));
        let c = card();
        m.cards.expect_cards().returning(move |_| Ok(vec![c.clone()]));
        m.gateway.expect_schedule().returning(|_| Ok(()));
        let recorded = recording(&mut m);
        let service = m.service(RoleName::OWNER);
        let after = service.change_plan(&group(), &pro()).await.expect("changed");
        let commits = recorded.lock().expect("lock").clone();
        assert_eq!(commits.len(), 1);
        let ends_on = PaymentsConfig::default().clock.day_of(after.trial_ends_at.expect("a trial"));
        assert_eq!(
            commits[0].notices,
            vec![BillingNotice::TrialStarted { plan: "Pro".into(), ends_on }]
        );
    }

    #[tokio::test]
    async fn a_paid_first_charge_tells_of_the_payment_only() {
        let mut m = Mocks::new();
        let card = card();
        let charge = pending(&card, ChargeKind::TrialEnd, 0);
        webhook_of(&mut m, &card, &charge, BillingStatus::Trialing, true);
        let recorded = recording(&mut m);
        let service = m.service(RoleName::OWNER);
        let outcome = service.handle_webhook(&notice_of(&charge.merchant_uid, "paid")).await;
        assert_eq!(outcome.expect("handled"), WebhookOutcome::Applied);
        let commits = recorded.lock().expect("lock").clone();
        assert_eq!(
            commits[0].notices,
            vec![BillingNotice::PaymentSucceeded { plan: "Pro".into(), amount: 83_380 }]
        );
    }

    #[tokio::test]
    async fn a_failed_renewal_tells_of_the_failure_and_the_retry_day() {
        let mut m = Mocks::new();
        let card = card();
        let charge = pending(&card, ChargeKind::Renewal, 0);
        webhook_of(&mut m, &card, &charge, BillingStatus::Active, false);
        let recorded = recording(&mut m);
        let service = m.service(RoleName::OWNER);
        let outcome = service.handle_webhook(&notice_of(&charge.merchant_uid, "failed")).await;
        assert_eq!(outcome.expect("handled"), WebhookOutcome::Applied);
        let commit = recorded.lock().expect("lock")[0].clone();
        let retry = commit.new_charges[0].at;
        assert_eq!(
            commit.notices,
            vec![BillingNotice::PaymentFailed {
                plan: "Pro".into(),
                amount: 83_380,
                reason: "card declined".into(),
                retry_on: Some(PaymentsConfig::default().clock.day_of(retry)),
            }]
        );
    }

    #[tokio::test]
    async fn the_last_failed_retry_tells_of_the_failure_and_the_fall_to_free() {
        let mut m = Mocks::new();
        let card = card();
        let charge = pending(&card, ChargeKind::Retry, 3);
        webhook_of(&mut m, &card, &charge, BillingStatus::PastDue, false);
        let recorded = recording(&mut m);
        let service = m.service(RoleName::OWNER);
        let outcome = service.handle_webhook(&notice_of(&charge.merchant_uid, "failed")).await;
        assert_eq!(outcome.expect("handled"), WebhookOutcome::Applied);
        let commit = recorded.lock().expect("lock")[0].clone();
        assert_eq!(commit.billing.status, BillingStatus::Free);
        assert_eq!(
            commit.notices,
            vec![
                BillingNotice::PaymentFailed {
                    plan: "Pro".into(),
                    amount: 83_380,
                    reason: "card declined".into(),
                    retry_on: None,
                },
                BillingNotice::Downgraded { from: "Pro".into() },
            ]
        );
    }

    #[tokio::test]
    async fn a_declined_charge_made_at_once_tells_of_the_failure_and_changes_nothing_else() {
        let mut m = Mocks::new();
        let mut used = Billing::free(group().id, 10);
        used.trial_used = true;
        used.version = 2;
        m.billing.expect_billing().returning(move |_| Ok(Some(used.clone())));
        let c = card();
        m.cards.expect_cards().returning(move |_| Ok(vec![c.clone()]));
        m.gateway.expect_charge().returning(|request| {
            Ok(Payment {
                imp_uid: "imp_declined".into(),
                merchant_uid: request.merchant_uid.clone(),
                customer_uid: None,
                amount: request.amount,
                status: PaymentStatus::Failed,
                failure_reason: Some("card declined".into()),
                paid_at: None,
            })
        });
        let recorded = recording(&mut m);
        let service = m.service(RoleName::OWNER);
        let refused = service.change_plan(&group(), &pro()).await;
        assert!(matches!(refused, Err(ChangePlanError::PaymentFailed(_))));
        let commits = recorded.lock().expect("lock").clone();
        // The marker (nothing to tell), then its closing with the failure.
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0].notices, vec![]);
        assert_eq!(commits[1].billing.status, BillingStatus::Free);
        assert_eq!(
            commits[1].notices,
            vec![BillingNotice::PaymentFailed {
                plan: "Pro".into(),
                amount: 83_380,
                reason: "card declined".into(),
                retry_on: None,
            }]
        );
    }

    #[tokio::test]
    async fn a_cancellation_taking_effect_tells_of_the_fall_to_free() {
        let mut m = Mocks::new();
        let mut canceling = Billing::free(group().id, 10);
        canceling.plan = PlanCode::from_trusted("team");
        canceling.interval = Some(Interval::Year);
        canceling.status = BillingStatus::Canceling;
        canceling.cancel_at_period_end = true;
        canceling.current_period_start = Some(now() - chrono::Duration::days(365));
        canceling.current_period_end = Some(now() - chrono::Duration::hours(1));
        canceling.version = 7;
        m.billing.expect_expired_billings().returning(move |_, _| Ok(vec![canceling.clone()]));
        let recorded = recording(&mut m);
        let service = m.service(RoleName::OWNER);
        assert_eq!(service.expire_periods().await.expect("ran"), 1);
        let commit = recorded.lock().expect("lock")[0].clone();
        assert_eq!(commit.billing.status, BillingStatus::Free);
        assert_eq!(commit.notices, vec![BillingNotice::Downgraded { from: "Team".into() }]);
    }

    #[tokio::test]
    async fn the_trial_ending_job_asks_storage_for_the_due_notice_of_each_near_trial() {
        let mut m = Mocks::new();
        let trial = |ends: DateTime<Utc>| {
            let mut b = Billing::free(GroupId::new(), 10);
            b.plan = PlanCode::from_trusted("pro");
            b.status = BillingStatus::Trialing;
            b.trial_ends_at = Some(ends);
            b.current_period_start = Some(ends - chrono::Duration::days(14));
            b.current_period_end = Some(ends);
            b
        };
        // Ends in 6.5 days: the 7-day notice. Ends in 10 days: nothing yet.
        let soon = trial(now() + chrono::Duration::hours(156));
        let later = trial(now() + chrono::Duration::days(10));
        let found = vec![soon.clone(), later];
        m.billing
            .expect_trials_ending()
            .withf(|from, until, after, _| {
                *from == now() && *until == now() + chrono::Duration::days(30) && after.is_none()
            })
            .times(1)
            .returning(move |_, _, _, _| Ok(found.clone()));
        let (group, end) = (soon.group, soon.trial_ends_at.expect("an end"));
        let ends_on = PaymentsConfig::default().clock.day_of(end);
        m.billing
            .expect_notify_trial_ending()
            .withf(move |g, e, days, notice| {
                *g == group
                    && *e == end
                    && *days == 7
                    && *notice
                        == BillingNotice::TrialEnding { plan: "Pro".into(), days: 7, ends_on }
            })
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let service = m.service(RoleName::OWNER);
        assert_eq!(service.notify_trials_ending().await.expect("ran"), 1);
    }

    #[tokio::test]
    async fn a_deleted_groups_schedule_is_cancelled_before_its_key_goes_and_a_refusal_stays() {
        use crate::gateway::Unscheduled;
        use crate::ports::GatewayLeftover;
        let mut m = Mocks::new();
        let leftover = |id, customer: &str, merchant: Option<&str>| GatewayLeftover {
            id,
            customer_uid: customer.to_owned(),
            merchant_uid: merchant.map(str::to_owned),
        };
        let found = vec![
            leftover(1, "cu_a", None),
            leftover(2, "cu_b", None),
            leftover(3, "cu_a", Some("mu_next")),
        ];
        m.billing.expect_gateway_leftovers().times(1).returning(move |_| Ok(found.clone()));
        let mut seq = mockall::Sequence::new();
        m.gateway
            .expect_unschedule()
            .withf(|c, mu| c == "cu_a" && mu == "mu_next")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(Unscheduled::Cancelled));
        m.gateway
            .expect_delete_billing_key()
            .withf(|c| c == "cu_a")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        m.gateway
            .expect_delete_billing_key()
            .withf(|c| c == "cu_b")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(GatewayError::Unavailable("down".to_owned())));
        // Forgotten: the two the gateway agreed to, not the refused one.
        m.billing.expect_forget_leftover().withf(|id| *id == 3).times(1).returning(|_| Ok(()));
        m.billing.expect_forget_leftover().withf(|id| *id == 1).times(1).returning(|_| Ok(()));
        let service = m.service(RoleName::OWNER);
        assert_eq!(service.clean_up_gateway().await.expect("ran"), 2);
    }

    #[tokio::test]
    async fn a_plan_change_needs_billing_manage() {
        let service = Mocks::new().service(RoleName::MEMBER);
        let slug = Slug::from_trusted("acme");
        let refused = service.preview(&slug, MemberId::new(), &pro()).await;
        assert!(matches!(refused, Err(ChangePlanError::Forbidden)));
    }

    #[tokio::test]
    async fn a_scheduling_failure_changes_nothing() {
        let mut m = Mocks::new();
        m.billing.expect_billing().returning(|_| Ok(None));
        let c = card();
        m.cards.expect_cards().returning(move |_| Ok(vec![c.clone()]));
        m.gateway.expect_schedule().returning(|_| Err(GatewayError::Unavailable("down".into())));
        m.billing.expect_commit().never();
        let service = m.service(RoleName::OWNER);
        let refused = service.change_plan(&group(), &pro()).await;
        assert!(matches!(refused, Err(ChangePlanError::GatewayUnavailable)));
    }

    #[tokio::test]
    async fn a_webhook_whose_payment_does_not_match_the_charge_changes_nothing() {
        let mut m = Mocks::new();
        let card = card();
        let charge = Charge {
            merchant_uid: MerchantUid::from_trusted("ob_1"),
            group: group().id,
            card_id: card.id,
            customer_uid: card.customer_uid.clone(),
            money: Money::with_vat(75_800),
            at: now(),
            plan: PlanCode::from_trusted("pro"),
            interval: Interval::Month,
            addons: vec![],
            period_start: now(),
            kind: ChargeKind::Renewal,
            attempt: 0,
            status: ChargeStatus::Scheduled,
            created_at: now(),
        };
        m.billing.expect_receipt_exists().returning(|_| Ok(false));
        m.billing.expect_charge().returning(move |_| Ok(Some(charge.clone())));
        m.gateway.expect_payment().returning(|imp_uid| {
            Ok(Some(Payment {
                imp_uid: imp_uid.to_owned(),
                merchant_uid: "ob_1".into(),
                customer_uid: None,
                amount: 1_000,
                status: PaymentStatus::Paid,
                failure_reason: None,
                paid_at: None,
            }))
        });
        m.billing.expect_commit().never();
        m.gateway.expect_schedule().never();
        let service = m.service(RoleName::OWNER);
        let notice = WebhookNotice {
            imp_uid: "imp_1".into(),
            merchant_uid: "ob_1".into(),
            status: "paid".into(),
        };
        assert_eq!(
            service.handle_webhook(&notice).await.expect("handled"),
            WebhookOutcome::Ignored
        );
    }

    #[tokio::test]
    async fn recovery_rolls_back_a_change_that_stopped_after_the_marks() {
        let mut m = Mocks::new();
        let card = card();
        let old = Charge {
            merchant_uid: MerchantUid::from_trusted("ob_old"),
            group: group().id,
            card_id: CardId::new(),
            customer_uid: CustomerUid::generate(),
            money: Money::with_vat(75_800),
            at: now(),
            plan: PlanCode::from_trusted("pro"),
            interval: Interval::Month,
            addons: vec![],
            period_start: now(),
            kind: ChargeKind::Renewal,
            attempt: 0,
            status: ChargeStatus::Scheduled,
            created_at: now(),
        };
        let change = CardChange {
            id: CardChangeId::new(),
            group: group().id,
            old_card: Some(old.card_id),
            new_card: card.id,
            old_charge: Some(old),
            new_merchant_uid: MerchantUid::from_trusted("ob_new"),
            step: CardChangeStep::Unscheduled,
            created_at: now(),
        };
        let c = change.clone();
        m.cards.expect_unfinished_main_changes().returning(move || Ok(vec![c.clone()]));
        m.cards.expect_card().returning(move |_, _| Ok(Some(card.clone())));
        m.gateway
            .expect_unschedule()
            .withf(|_, uid| uid == "ob_new")
            .times(1)
            .returning(|_, _| Ok(Unscheduled::NothingToCancel));
        m.gateway
            .expect_schedule()
            .withf(|r| r.merchant_uid == "ob_old")
            .times(1)
            .returning(|_| Ok(()));
        m.cards.expect_roll_back_main_change().times(1).returning(|_| Ok(()));
        let service = m.service(RoleName::OWNER);
        assert_eq!(service.recover().await.expect("recovered"), 1);
    }
}
