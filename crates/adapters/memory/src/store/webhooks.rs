//! Outgoing webhooks in memory: the [`EndpointRepository`], [`DeliveryRepository`] and
//! [`EventLog`] of [`MemoryStore`], under its one lock (the fan-out's deliveries and the feed
//! position move together, as in the PostgreSQL transaction).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use onboard_kernel::events::{Event, EventId, FeedPosition};
use onboard_webhooks::ports::{DeliveryRepository, EndpointRepository, EventLog};
use onboard_webhooks::{
    Attempt, AttemptRecord, Claim, Delivery, DeliveryId, DeliveryStatus, Endpoint, EndpointHealth,
    EndpointId, EventFilter, EventPage, NewDelivery, Scope, passes,
};

use super::MemoryStore;

/// Endpoints and their deliveries.
#[derive(Debug, Default)]
pub(super) struct Webhooks {
    endpoints: BTreeMap<EndpointId, Endpoint>,
    deliveries: BTreeMap<DeliveryId, Row>,
    /// (endpoint, event) → delivery: one per endpoint and event.
    by_event: HashMap<(EndpointId, EventId), DeliveryId>,
}

#[derive(Debug, Clone)]
struct Row {
    delivery: Delivery,
    body: String,
    lease: Option<uuid::Uuid>,
}

impl Webhooks {
    /// Stores deliveries; with `requeue`, one already there goes back to pending.
    fn insert(&mut self, deliveries: &[NewDelivery], requeue: bool) -> u64 {
        let mut n = 0;
        for d in deliveries {
            if !self.endpoints.contains_key(&d.endpoint) {
                continue;
            }
            if let Some(id) = self.by_event.get(&(d.endpoint, d.event_id)) {
                if requeue && let Some(row) = self.deliveries.get_mut(id) {
                    row.delivery.status = DeliveryStatus::Pending;
                    row.delivery.attempts = 0;
                    row.delivery.next_attempt_at = Some(d.due_at);
                    row.lease = None;
                    n += 1;
                }
                continue;
            }
            self.by_event.insert((d.endpoint, d.event_id), d.id);
            self.deliveries.insert(
                d.id,
                Row {
                    delivery: Delivery {
                        id: d.id,
                        endpoint: d.endpoint,
                        event_id: d.event_id,
                        event_type: d.event_type.clone(),
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        next_attempt_at: Some(d.due_at),
                        last_attempt: None,
                        created_at: d.due_at,
                    },
                    body: d.body.clone(),
                    lease: None,
                },
            );
            n += 1;
        }
        n
    }

    /// A deleted group's endpoints go with it.
    pub(super) fn group_deleted(&mut self, group: GroupId) {
        let gone: Vec<_> = self
            .endpoints
            .values()
            .filter(|e| e.scope == Scope::Group(group))
            .map(|e| e.id)
            .collect();
        for id in gone {
            self.remove_endpoint(id);
        }
    }

    fn remove_endpoint(&mut self, id: EndpointId) {
        self.endpoints.remove(&id);
        self.deliveries.retain(|_, r| r.delivery.endpoint != id);
        self.by_event.retain(|(e, _), _| *e != id);
    }

    /// Applies an attempt's health to its endpoint; whether it disabled it.
    fn apply_health(&mut self, endpoint: EndpointId, health: EndpointHealth) -> bool {
        let Some(e) = self.endpoints.get_mut(&endpoint) else { return false };
        match health {
            EndpointHealth::Failing(since) => {
                e.failing_since.get_or_insert(since);
                false
            }
            EndpointHealth::Disable(since) => {
                e.failing_since.get_or_insert(since);
                std::mem::replace(&mut e.enabled, false)
            }
            _ => {
                e.failing_since = None;
                false
            }
        }
    }
}

#[async_trait]
impl EndpointRepository for MemoryStore {
    async fn create(&self, endpoint: &Endpoint) -> anyhow::Result<()> {
        self.state().webhooks.endpoints.insert(endpoint.id, endpoint.clone());
        Ok(())
    }

    async fn get(&self, scope: Scope, id: EndpointId) -> anyhow::Result<Option<Endpoint>> {
        let state = self.state();
        Ok(state.webhooks.endpoints.get(&id).filter(|e| e.scope == scope).cloned())
    }

    async fn list(&self, scope: Scope) -> anyhow::Result<Vec<Endpoint>> {
        let state = self.state();
        Ok(state.webhooks.endpoints.values().filter(|e| e.scope == scope).cloned().collect())
    }

    async fn update(&self, endpoint: &Endpoint) -> anyhow::Result<bool> {
        let mut state = self.state();
        let Some(stored) = state.webhooks.endpoints.get_mut(&endpoint.id) else {
            return Ok(false);
        };
        let failing_since =
            if endpoint.enabled && !stored.enabled { None } else { stored.failing_since };
        *stored = Endpoint { failing_since, scope: stored.scope, ..endpoint.clone() };
        Ok(true)
    }

    async fn delete(&self, scope: Scope, id: EndpointId) -> anyhow::Result<bool> {
        let mut state = self.state();
        if state.webhooks.endpoints.get(&id).is_none_or(|e| e.scope != scope) {
            return Ok(false);
        }
        state.webhooks.remove_endpoint(id);
        Ok(true)
    }

    async fn enabled_for(&self, groups: &[GroupId]) -> anyhow::Result<Vec<Endpoint>> {
        let state = self.state();
        Ok(state
            .webhooks
            .endpoints
            .values()
            .filter(|e| e.enabled)
            .filter(|e| e.scope.group().is_none_or(|g| groups.contains(&g)))
            .cloned()
            .collect())
    }

    async fn any_enabled(&self) -> anyhow::Result<bool> {
        Ok(self.state().webhooks.endpoints.values().any(|e| e.enabled))
    }
}

#[async_trait]
impl DeliveryRepository for MemoryStore {
    async fn insert_consumed(
        &self,
        consumer: &str,
        from: FeedPosition,
        to: FeedPosition,
        deliveries: &[NewDelivery],
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        if !state.outbox.advance(consumer, from, to) {
            return Ok(false);
        }
        state.webhooks.insert(deliveries, false);
        Ok(true)
    }

    async fn requeue(&self, deliveries: &[NewDelivery]) -> anyhow::Result<u64> {
        Ok(self.state().webhooks.insert(deliveries, true))
    }

    async fn list(
        &self,
        endpoint: EndpointId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> anyhow::Result<Vec<Delivery>> {
        let state = self.state();
        Ok(state
            .webhooks
            .deliveries
            .values()
            .rev()
            .filter(|r| r.delivery.endpoint == endpoint)
            .filter(|r| before.is_none_or(|b| r.delivery.id < b))
            .take(limit as usize)
            .map(|r| r.delivery.clone())
            .collect())
    }

    async fn retry(
        &self,
        endpoint: EndpointId,
        id: DeliveryId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Delivery>> {
        let mut state = self.state();
        let Some(row) = state.webhooks.deliveries.get_mut(&id) else { return Ok(None) };
        if row.delivery.endpoint != endpoint {
            return Ok(None);
        }
        row.delivery.status = DeliveryStatus::Pending;
        row.delivery.next_attempt_at = Some(now);
        row.lease = None;
        Ok(Some(row.delivery.clone()))
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Claim>> {
        let mut state = self.state();
        let webhooks = &mut state.webhooks;
        let mut due: Vec<_> = webhooks
            .deliveries
            .values()
            .filter(|r| r.delivery.status == DeliveryStatus::Pending)
            .filter(|r| r.delivery.next_attempt_at.is_some_and(|at| at <= now))
            .filter(|r| webhooks.endpoints.get(&r.delivery.endpoint).is_some_and(|e| e.enabled))
            .map(|r| (r.delivery.next_attempt_at, r.delivery.id))
            .collect();
        due.sort_unstable();
        due.truncate(limit as usize);
        let mut claims = Vec::with_capacity(due.len());
        for (_, id) in due {
            let Some(row) = webhooks.deliveries.get_mut(&id) else { continue };
            let Some(endpoint) = webhooks.endpoints.get(&row.delivery.endpoint) else { continue };
            let lease = uuid::Uuid::now_v7();
            row.lease = Some(lease);
            row.delivery.next_attempt_at = Some(lease_until);
            claims.push(Claim {
                id,
                lease,
                event_id: row.delivery.event_id,
                body: row.body.clone(),
                attempts: row.delivery.attempts,
                endpoint: endpoint.clone(),
            });
        }
        Ok(claims)
    }

    async fn record(
        &self,
        id: DeliveryId,
        lease: uuid::Uuid,
        record: &AttemptRecord,
        disabled_events: &[Event],
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        let Some(row) = state.webhooks.deliveries.get_mut(&id) else { return Ok(false) };
        if row.lease != Some(lease) {
            return Ok(false);
        }
        row.lease = None;
        let d = &mut row.delivery;
        d.status = record.status;
        d.attempts = record.attempts;
        d.next_attempt_at = record.next_attempt_at;
        d.last_attempt = Some(Attempt { ..record.attempt.clone() });
        let endpoint = d.endpoint;
        if state.webhooks.apply_health(endpoint, record.health) {
            state.outbox.record(disabled_events);
        }
        Ok(true)
    }

    async fn queue_age(&self, now: DateTime<Utc>) -> anyhow::Result<Duration> {
        let state = self.state();
        let oldest = state
            .webhooks
            .deliveries
            .values()
            .filter(|r| r.delivery.status == DeliveryStatus::Pending)
            .filter_map(|r| r.delivery.next_attempt_at)
            .filter(|at| *at <= now)
            .min();
        Ok(oldest.and_then(|o| (now - o).to_std().ok()).unwrap_or_default())
    }

    async fn purge(&self, before: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut state = self.state();
        let webhooks = &mut state.webhooks;
        let old: Vec<_> = webhooks
            .deliveries
            .values()
            .filter(|r| r.delivery.status != DeliveryStatus::Pending)
            .filter(|r| r.delivery.created_at < before)
            .map(|r| (r.delivery.id, r.delivery.endpoint, r.delivery.event_id))
            .collect();
        for (id, endpoint, event) in &old {
            webhooks.deliveries.remove(id);
            webhooks.by_event.remove(&(*endpoint, *event));
        }
        Ok(old.len() as u64)
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn page(
        &self,
        scope: Scope,
        after: FeedPosition,
        types: &[EventFilter],
        limit: u32,
    ) -> anyhow::Result<EventPage> {
        let state = self.state();
        let mut page = EventPage { events: Vec::new(), next: after };
        for (position, event) in state.outbox.after(after) {
            if page.events.len() >= limit as usize {
                break;
            }
            if scope.covers(event) && passes(types, &event.event_type) {
                page.next = position;
                page.events.push(event.clone());
            }
        }
        Ok(page)
    }

    async fn between(
        &self,
        scope: Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Event>> {
        let state = self.state();
        let mut events: Vec<_> = state
            .outbox
            .after(FeedPosition::START)
            .map(|(_, e)| e)
            .filter(|e| scope.covers(e) && e.occurred_at >= from && e.occurred_at < to)
            .cloned()
            .collect();
        events.sort_by_key(|e| e.id);
        events.truncate(limit as usize);
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use onboard_kernel::MemberId;
    use onboard_webhooks::{EndpointUrl, WebhookSecret};

    use super::*;

    fn endpoint(scope: Scope) -> Endpoint {
        Endpoint {
            id: EndpointId::new(),
            scope,
            url: EndpointUrl::from_trusted("https://hooks.example.com/in"),
            description: String::new(),
            filters: vec![],
            enabled: true,
            secret: WebhookSecret::generate(),
            previous_secret: None,
            failing_since: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn delivery(endpoint: EndpointId, at: DateTime<Utc>) -> NewDelivery {
        let event = onboard_members::events::MemberEvent::Deleted { member_id: MemberId::new() };
        NewDelivery::of(&Event::record(&event, at), endpoint, at)
    }

    fn record(status: DeliveryStatus, health: EndpointHealth) -> AttemptRecord {
        AttemptRecord {
            status,
            attempts: 1,
            next_attempt_at: (status == DeliveryStatus::Pending).then(Utc::now),
            attempt: Attempt {
                at: Utc::now(),
                response_status: None,
                latency_ms: 0,
                response: String::new(),
            },
            health,
        }
    }

    #[tokio::test]
    async fn a_claimed_delivery_is_claimed_again_only_after_its_lease_and_the_old_lease_records_nothing()
     {
        let store = MemoryStore::new();
        let e = endpoint(Scope::Platform);
        store.create(&e).await.unwrap_or_default();
        let now = Utc::now();
        store.requeue(&[delivery(e.id, now)]).await.unwrap_or_default();

        let first = store.claim(now, now + TimeDelta::seconds(1), 10).await.unwrap_or_default();
        let during = store.claim(now, now + TimeDelta::seconds(1), 10).await.unwrap_or_default();
        let after = now + TimeDelta::seconds(2);
        let second =
            store.claim(after, after + TimeDelta::seconds(1), 10).await.unwrap_or_default();

        assert_eq!((first.len(), during.len(), second.len()), (1, 0, 1));
        let done = record(DeliveryStatus::Succeeded, EndpointHealth::Healthy);
        assert!(!store.record(first[0].id, first[0].lease, &done, &[]).await.unwrap_or(true));
        assert!(store.record(second[0].id, second[0].lease, &done, &[]).await.unwrap_or(false));
    }

    #[tokio::test]
    async fn a_deleted_group_takes_its_endpoints_and_their_deliveries() {
        let store = MemoryStore::new();
        let group = GroupId::new();
        let e = endpoint(Scope::Group(group));
        store.create(&e).await.unwrap_or_default();
        store.requeue(&[delivery(e.id, Utc::now())]).await.unwrap_or_default();

        store.state().webhooks.group_deleted(group);

        assert!(
            EndpointRepository::list(&store, Scope::Group(group))
                .await
                .unwrap_or_default()
                .is_empty()
        );
        assert!(
            DeliveryRepository::list(&store, e.id, None, 10).await.unwrap_or_default().is_empty()
        );
    }
}
