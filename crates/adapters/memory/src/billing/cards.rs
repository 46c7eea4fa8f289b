//! [`CardRepository`] in memory: cards, issued customer_uids and main-card changes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_payments::model::{
    Card, CardChange, CardChangeId, CardChangeStep, CardId, ChargeStatus, CustomerUid,
};
use onboard_payments::ports::{
    AddCardError, BeginCardChangeError, BillingCommit, CardRepository, CommitError, DeleteCardError,
};

use super::MemoryBillingStore;

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
            let mut events = Vec::new();
            if let Some(commit) = &commit {
                let (done, recorded) = state.commit_recorded(commit);
                if let Err(e) = done {
                    return (Err(e), Vec::new());
                }
                events = recorded;
            }
            if let Some(c) = state.changes.iter_mut().find(|c| c.id == id) {
                c.step = CardChangeStep::Done;
            }
            (Ok(()), events)
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
