//! Messages in memory: [`MessageRepository`] for [`MemoryStore`], under the same lock as the
//! SMS credit they are paid from and the outbox of domain events, so a debit, what it pays
//! for and its events are one atomic step, as in PostgreSQL's transaction.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_messaging::ports::MessageRepository;
use onboard_messaging::{
    Claim, FailOverEvents, FailOverOutcome, Message, MessageId, MessageStatus, NewMessage,
    QueueError,
};
use onboard_payments::sms_credit::CreditReason;

use super::{MemoryStore, State};

/// Every message and its outbox state.
#[derive(Debug, Default)]
pub(super) struct Messages {
    rows: BTreeMap<MessageId, Row>,
}

#[derive(Debug, Clone)]
struct Row {
    message: Message,
    /// When its next step is due (`None`: it has none).
    due_at: Option<DateTime<Utc>>,
    /// The live claim's token and how long it holds.
    lease: Option<(uuid::Uuid, DateTime<Utc>)>,
    checks: u32,
}

impl Messages {
    fn insert(&mut self, new: &NewMessage, at: DateTime<Utc>) {
        let message = new.clone().into_message(at);
        self.rows.insert(new.id, Row { message, due_at: Some(at), lease: None, checks: 0 });
    }

    /// The row claimed under `claim`'s lease.
    fn held(&mut self, claim: &Claim) -> Option<&mut Row> {
        self.rows
            .get_mut(&claim.message.id)
            .filter(|r| r.lease.is_some_and(|(token, _)| token == claim.lease))
    }
}

impl Row {
    /// Ends the row's step: no claim, nothing due.
    fn settle(&mut self, status: MessageStatus, at: DateTime<Utc>) {
        self.message.status = status;
        self.message.updated_at = at;
        self.due_at = None;
        self.lease = None;
    }
}

impl State {
    /// Marks the claimed message failed with `code`, refunding it when asked, and records
    /// `events`; `false` (nothing changed) when the lease is no longer the claim's.
    fn fail_message(
        &mut self,
        claim: &Claim,
        code: &str,
        refund: bool,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> bool {
        let Some(row) = self.messages.held(claim) else { return false };
        row.settle(MessageStatus::Failed, at);
        row.message.result_code = Some(code.to_owned());
        let (group, price, id) = (row.message.group, row.message.price, row.message.id);
        if refund && price > 0 {
            let reference = id.to_string();
            self.apply_sms_credit(group, price, CreditReason::Refund, Some(&reference), at);
        }
        self.outbox.record(events);
        true
    }

    /// Whether `group`'s balance covers `total`.
    fn covers(&self, group: GroupId, total: i64) -> bool {
        let balance = self.sms_credit.wallets.get(&group).map_or(0, |w| w.balance);
        total <= balance
    }

    fn debit_message(&mut self, message: &NewMessage, at: DateTime<Utc>) {
        if message.price > 0 {
            let reference = message.id.to_string();
            self.apply_sms_credit(
                message.group,
                -message.price,
                CreditReason::Message,
                Some(&reference),
                at,
            );
        }
    }
}

#[async_trait]
impl MessageRepository for MemoryStore {
    async fn queue_batch(
        &self,
        messages: &[NewMessage],
        events: &[Event],
        at: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        let mut state = self.state();
        // Checked for every group before anything is written: all or nothing.
        let mut totals: BTreeMap<GroupId, i64> = BTreeMap::new();
        for m in messages {
            *totals.entry(m.group).or_default() += m.price;
        }
        if totals.iter().any(|(group, total)| !state.covers(*group, *total)) {
            return Err(QueueError::InsufficientCredit);
        }
        for m in messages {
            state.debit_message(m, at);
            state.messages.insert(m, at);
        }
        state.outbox.record(events);
        Ok(())
    }

    async fn get(&self, group: GroupId, id: MessageId) -> anyhow::Result<Option<Message>> {
        let state = self.state();
        Ok(state
            .messages
            .rows
            .get(&id)
            .filter(|r| r.message.group == group)
            .map(|r| r.message.clone()))
    }

    async fn list(
        &self,
        group: GroupId,
        before: Option<MessageId>,
        limit: u32,
    ) -> anyhow::Result<Vec<Message>> {
        let state = self.state();
        Ok(state
            .messages
            .rows
            .values()
            .rev()
            .filter(|r| r.message.group == group && before.is_none_or(|b| r.message.id < b))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|r| r.message.clone())
            .collect())
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Claim>> {
        let mut state = self.state();
        let token = uuid::Uuid::now_v7();
        let mut due: Vec<(DateTime<Utc>, MessageId)> = state
            .messages
            .rows
            .values()
            .filter(|r| {
                r.due_at.is_some_and(|d| d <= now) && r.lease.is_none_or(|(_, until)| until <= now)
            })
            .filter_map(|r| r.due_at.map(|d| (d, r.message.id)))
            .collect();
        due.sort();
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut claims = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some(row) = state.messages.rows.get_mut(&id) {
                row.lease = Some((token, lease_until));
                claims.push(Claim {
                    message: row.message.clone(),
                    lease: token,
                    checks: row.checks,
                });
            }
        }
        Ok(claims)
    }

    async fn mark_sent(
        &self,
        claim: &Claim,
        provider_message_id: Option<String>,
        check_at: Option<DateTime<Utc>>,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        let Some(row) = state.messages.held(claim) else { return Ok(false) };
        if row.message.status != MessageStatus::Queued {
            return Ok(false);
        }
        row.settle(MessageStatus::Sent, at);
        row.message.provider_message_id = provider_message_id;
        row.due_at = check_at;
        state.outbox.record(events);
        Ok(true)
    }

    async fn mark_delivered(
        &self,
        claim: &Claim,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        let Some(row) = state.messages.held(claim) else { return Ok(false) };
        row.settle(MessageStatus::Delivered, at);
        row.message.result_code = Some(onboard_messaging::failover::DELIVERED.to_owned());
        state.outbox.record(events);
        Ok(true)
    }

    async fn mark_failed(
        &self,
        claim: &Claim,
        code: &str,
        refund: bool,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        Ok(self.state().fail_message(claim, code, refund, events, at))
    }

    async fn reschedule_check(
        &self,
        claim: &Claim,
        check_at: DateTime<Utc>,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        let Some(row) = state.messages.held(claim) else { return Ok(false) };
        row.lease = None;
        row.due_at = Some(check_at);
        row.checks = row.checks.saturating_add(1);
        row.message.updated_at = at;
        state.outbox.record(events);
        Ok(true)
    }

    async fn fail_over(
        &self,
        claim: &Claim,
        code: &str,
        resend: &NewMessage,
        events: &FailOverEvents,
        at: DateTime<Utc>,
    ) -> anyhow::Result<FailOverOutcome> {
        let mut state = self.state();
        if !state.fail_message(claim, code, true, &[], at) {
            return Ok(FailOverOutcome::LeaseLost);
        }
        if !state.covers(resend.group, resend.price) {
            state.outbox.record(&events.no_credit);
            return Ok(FailOverOutcome::NoCredit);
        }
        state.debit_message(resend, at);
        state.messages.insert(resend, at);
        if let Some(row) = state.messages.rows.get_mut(&claim.message.id) {
            row.message.status = MessageStatus::FailedOver;
            row.message.failover_id = Some(resend.id);
        }
        state.outbox.record(&events.resent);
        Ok(FailOverOutcome::Resent)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeDelta;
    use onboard_kernel::{MemberId, PhoneNumber};
    use onboard_messaging::Channel;
    use onboard_messaging::events::MessageEvent;

    use super::*;

    fn message(group: GroupId, price: i64) -> NewMessage {
        NewMessage {
            id: MessageId::new(),
            group,
            to: PhoneNumber::parse("+821012345678", None).unwrap(),
            channel: Channel::Sms,
            text: "hi".into(),
            template_code: None,
            failover: false,
            price,
            failover_of: None,
        }
    }

    fn failed(claim: &Claim, code: &str, at: DateTime<Utc>) -> Vec<Event> {
        let failed = MessageEvent::Failed {
            message_id: claim.message.id,
            group_id: claim.message.group,
            code: code.into(),
            refunded: true,
        };
        vec![Event::record(&failed, at)]
    }

    fn event_types(store: &MemoryStore) -> Vec<String> {
        store.state().outbox.all().map(|e| e.event_type.clone()).collect()
    }

    #[tokio::test]
    async fn a_batch_the_credit_does_not_cover_changes_nothing() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let at = Utc::now();
        store.sms_credit_apply(group, 30, CreditReason::Purchase, None, at);
        let batch = [message(group, 11), message(group, 11), message(group, 11)];
        let queued = |count: u32| {
            let queued = MessageEvent::Queued {
                group_id: group,
                channel: "sms".into(),
                count,
                total_price: i64::from(count) * 11,
                by: MemberId::new(),
            };
            vec![Event::record(&queued, at)]
        };
        let refused = store.queue_batch(&batch, &queued(3), at).await;
        assert!(matches!(refused, Err(QueueError::InsufficientCredit)));
        assert_eq!(store.state().sms_credit.wallets[&group].balance, 30);
        assert!(store.list(group, None, 10).await.unwrap().is_empty());
        assert!(event_types(&store).is_empty(), "a refused batch stores no event");
        store.queue_batch(&batch[..2], &queued(2), at).await.unwrap();
        assert_eq!(store.state().sms_credit.wallets[&group].balance, 8);
        assert_eq!(event_types(&store), ["message.queued"]);
    }

    #[tokio::test]
    async fn a_claimed_message_is_not_claimed_again_until_its_lease_runs_out() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let at = Utc::now();
        store.sms_credit_apply(group, 100, CreditReason::Purchase, None, at);
        store.queue_batch(&[message(group, 11)], &[], at).await.unwrap();
        let lease = at + TimeDelta::seconds(10);
        let first = store.claim(at, lease, 10).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(store.claim(at, lease, 10).await.unwrap().is_empty());
        let later = store.claim(lease, lease + TimeDelta::seconds(10), 10).await.unwrap();
        assert_eq!(later.len(), 1);
        // The first worker lost its lease: its outcome changes nothing and stores no event.
        let sent = MessageEvent::Sent {
            message_id: first[0].message.id,
            group_id: group,
            channel: "sms".into(),
        };
        let sent = [Event::record(&sent, lease)];
        assert!(!store.mark_sent(&first[0], None, None, &sent, lease).await.unwrap());
        assert!(
            !store
                .mark_failed(&first[0], "400", true, &failed(&first[0], "400", lease), lease)
                .await
                .unwrap()
        );
        assert!(!store.mark_delivered(&first[0], &sent, lease).await.unwrap());
        assert!(!store.reschedule_check(&first[0], lease, &sent, lease).await.unwrap());
        assert!(event_types(&store).is_empty());
        assert!(
            store
                .mark_failed(&later[0], "400", true, &failed(&later[0], "400", lease), lease)
                .await
                .unwrap()
        );
        assert_eq!(store.state().sms_credit.wallets[&group].balance, 100);
        assert_eq!(event_types(&store), ["message.failed"]);
    }

    #[tokio::test]
    async fn a_failover_stores_the_events_of_its_outcome_only() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let at = Utc::now();
        store.sms_credit_apply(group, 21, CreditReason::Purchase, None, at);
        let alimtalk = |price| NewMessage { channel: Channel::Alimtalk, ..message(group, price) };
        store.queue_batch(&[alimtalk(10), alimtalk(10)], &[], at).await.unwrap();
        let lease = at + TimeDelta::seconds(10);
        let claims = store.claim(at, lease, 10).await.unwrap();
        let events = |claim: &Claim, resend: &NewMessage| {
            let resent = MessageEvent::FailedOver {
                message_id: claim.message.id,
                group_id: group,
                code: "3018".into(),
                resend_id: resend.id,
                channel: "sms".into(),
            };
            FailOverEvents {
                resent: vec![Event::record(&resent, at)],
                no_credit: failed(claim, "3018", at),
            }
        };
        let resend = |of: MessageId| NewMessage { failover_of: Some(of), ..message(group, 11) };

        // 1 + 10 refunded covers an 11 KRW resend: failed over.
        let first = resend(claims[0].message.id);
        let outcome =
            store.fail_over(&claims[0], "3018", &first, &events(&claims[0], &first), at).await;
        assert_eq!(outcome.unwrap(), FailOverOutcome::Resent);
        assert_eq!(event_types(&store), ["message.failed_over"]);
        // 0 + 10 refunded does not: failed.
        let second = resend(claims[1].message.id);
        let outcome =
            store.fail_over(&claims[1], "3018", &second, &events(&claims[1], &second), at).await;
        assert_eq!(outcome.unwrap(), FailOverOutcome::NoCredit);
        assert_eq!(event_types(&store), ["message.failed_over", "message.failed"]);
        // A lost lease: nothing.
        let third = resend(claims[1].message.id);
        let outcome =
            store.fail_over(&claims[1], "3018", &third, &events(&claims[1], &third), at).await;
        assert_eq!(outcome.unwrap(), FailOverOutcome::LeaseLost);
        assert_eq!(store.state().outbox.all().count(), 2);
    }
}
