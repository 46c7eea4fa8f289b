//! Cards: registration, deletion, the main-card change saga and its start-up recovery.

use chrono::{DateTime, Utc};
use onboard_groups::{AuthorizeError, Slug};
use onboard_kernel::MemberId;

use crate::error::{CardError, ViewBillingError};
use crate::gateway::GatewayError;
use crate::model::{
    Billing, Card, CardChange, CardChangeId, CardChangeStep, CardId, Charge, ChargeKind,
    ChargeStatus, CustomerUid, MerchantUid,
};
use crate::ports::{
    AddCardError, BeginCardChangeError, BillingCommit, CommitError, DeleteCardError,
};

use super::{PaymentsService, schedule_request, unavailable, warn};

impl PaymentsService {
    /// Issues a fresh customer_uid to the group for the client SDK to register a card under.
    #[tracing::instrument(level = "debug", name = "payments.prepare_card", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "payments.add_card", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "payments.cards", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "payments.delete_card", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "payments.set_main_card", skip_all)]
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
            events: vec![],
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
    #[tracing::instrument(level = "debug", name = "payments.recover", skip_all)]
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
