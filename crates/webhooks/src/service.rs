//! The use cases: endpoints (create, list, get, update, delete, rotate the secret), their
//! deliveries (list, retry one, replay a range, send a test event), the events API, and the
//! delivery of due attempts ([`WebhooksService::deliver_due`], in `delivery.rs`).

mod delivery;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use onboard_groups::Slug;
use onboard_kernel::events::{EventId, FeedPosition};
use onboard_kernel::{Clock, MemberId};

use crate::config::WebhooksConfig;
use crate::error::{
    AccessError, EndpointError, EventsError, ReplayError, RetryError, WriteEndpointError,
};
use crate::model::{
    Delivery, DeliveryId, Endpoint, EndpointId, EndpointUrl, EventFilter, EventPage, NewDelivery,
    PreviousSecret, Scope, WebhookSecret, body_of,
};
use crate::ports::{
    DeliveryRepository, EndpointRepository, EventLog, GroupGate, PlatformAdmins, WebhookSender,
};

pub use delivery::DeliveryRound;

/// Whose webhooks a call is about, as the caller names them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// The group with this slug (`webhooks.manage`).
    Group(Slug),
    /// The platform (platform admins).
    Platform,
}

/// A new endpoint, as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    /// Exact types, `prefix.*`, or `*`; none: every event of the scope.
    pub event_types: Vec<String>,
    pub enabled: bool,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// What the webhooks domain needs.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct WebhooksPorts {
    pub endpoints: Arc<dyn EndpointRepository>,
    pub deliveries: Arc<dyn DeliveryRepository>,
    pub events: Arc<dyn EventLog>,
    pub sender: Arc<dyn WebhookSender>,
    pub groups: Arc<dyn GroupGate>,
    pub admins: Arc<dyn PlatformAdmins>,
    pub clock: Arc<dyn Clock>,
}

/// Outgoing webhooks and the events API.
#[derive(Clone)]
pub struct WebhooksService {
    ports: WebhooksPorts,
    config: Arc<WebhooksConfig>,
}

impl std::fmt::Debug for WebhooksService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhooksService").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The longest description.
pub const MAX_DESCRIPTION: usize = 500;

/// The type of test events.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn filters(raw: &[String]) -> Result<Vec<EventFilter>, crate::model::FilterError> {
    let mut out: Vec<EventFilter> = Vec::with_capacity(raw.len());
    for r in raw {
        let f = EventFilter::parse(r)?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

impl WebhooksService {
    pub fn new(ports: WebhooksPorts, config: WebhooksConfig) -> Self {
        Self { ports, config: Arc::new(config) }
    }

    /// The settings in force.
    pub fn config(&self) -> &WebhooksConfig {
        &self.config
    }

    /// The scope `target` names, when `caller` may manage it.
    pub async fn scope(&self, target: &Target, caller: MemberId) -> Result<Scope, AccessError> {
        match target {
            Target::Group(slug) => {
                self.ports.groups.webhooks_manager(slug, caller).await.map(Scope::Group)
            }
            Target::Platform => {
                if self.ports.admins.is_platform_admin(caller).await? {
                    Ok(Scope::Platform)
                } else {
                    Err(AccessError::Forbidden)
                }
            }
        }
    }

    async fn endpoint(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
    ) -> Result<Endpoint, EndpointError> {
        let scope = self.scope(target, caller).await?;
        self.ports.endpoints.get(scope, id).await?.ok_or(EndpointError::EndpointNotFound)
    }

    /// Creates an endpoint with a fresh secret (shown once: it is in the answer).
    pub async fn create(
        &self,
        target: &Target,
        caller: MemberId,
        new: NewEndpoint,
    ) -> Result<Endpoint, WriteEndpointError> {
        let scope = self.scope(target, caller).await?;
        let url = EndpointUrl::parse(&new.url, self.config.urls)?;
        let filters = filters(&new.event_types)?;
        if new.description.chars().count() > MAX_DESCRIPTION {
            return Err(WriteEndpointError::DescriptionTooLong);
        }
        if self.ports.endpoints.list(scope).await?.len() >= self.config.max_endpoints {
            return Err(WriteEndpointError::TooManyEndpoints(self.config.max_endpoints));
        }
        let now = self.ports.clock.now();
        let endpoint = Endpoint {
            id: EndpointId::new(),
            scope,
            url,
            description: new.description,
            filters,
            enabled: new.enabled,
            secret: WebhookSecret::generate(),
            previous_secret: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.ports.endpoints.create(&endpoint).await?;
        Ok(endpoint)
    }

    /// The scope's endpoints, oldest first.
    pub async fn list(
        &self,
        target: &Target,
        caller: MemberId,
    ) -> Result<Vec<Endpoint>, AccessError> {
        let scope = self.scope(target, caller).await?;
        Ok(self.ports.endpoints.list(scope).await?)
    }

    /// One endpoint.
    pub async fn get(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
    ) -> Result<Endpoint, EndpointError> {
        self.endpoint(target, caller, id).await
    }

    /// Changes an endpoint. Enabling it again clears its failing record.
    pub async fn update(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<Endpoint, WriteEndpointError> {
        let mut endpoint = self.endpoint(target, caller, id).await?;
        if let Some(url) = &patch.url {
            endpoint.url = EndpointUrl::parse(url, self.config.urls)?;
        }
        if let Some(description) = patch.description {
            if description.chars().count() > MAX_DESCRIPTION {
                return Err(WriteEndpointError::DescriptionTooLong);
            }
            endpoint.description = description;
        }
        if let Some(types) = &patch.event_types {
            endpoint.filters = filters(types)?;
        }
        if let Some(enabled) = patch.enabled {
            if enabled && !endpoint.enabled {
                endpoint.failing_since = None;
            }
            endpoint.enabled = enabled;
        }
        endpoint.updated_at = self.ports.clock.now();
        if !self.ports.endpoints.update(&endpoint).await? {
            return Err(WriteEndpointError::EndpointNotFound);
        }
        Ok(endpoint)
    }

    /// Deletes an endpoint and its deliveries.
    pub async fn delete(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
    ) -> Result<(), EndpointError> {
        let scope = self.scope(target, caller).await?;
        if self.ports.endpoints.delete(scope, id).await? {
            Ok(())
        } else {
            Err(EndpointError::EndpointNotFound)
        }
    }

    /// Gives the endpoint a new secret (in the answer, shown once); the old one keeps signing
    /// beside it for [`WebhooksConfig::previous_secret_ttl`].
    pub async fn rotate_secret(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
    ) -> Result<Endpoint, EndpointError> {
        let mut endpoint = self.endpoint(target, caller, id).await?;
        let now = self.ports.clock.now();
        let old = std::mem::replace(&mut endpoint.secret, WebhookSecret::generate());
        endpoint.previous_secret = Some(PreviousSecret {
            secret: old,
            expires_at: now + delta(self.config.previous_secret_ttl),
        });
        endpoint.updated_at = now;
        if !self.ports.endpoints.update(&endpoint).await? {
            return Err(EndpointError::EndpointNotFound);
        }
        Ok(endpoint)
    }

    /// The endpoint's deliveries, newest first (keyset pages).
    pub async fn deliveries(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<Delivery>, EndpointError> {
        let endpoint = self.endpoint(target, caller, id).await?;
        Ok(self.ports.deliveries.list(endpoint.id, before, limit).await?)
    }

    /// Puts one delivery back for one more attempt now (with its `webhook-id`).
    pub async fn retry(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
        delivery: DeliveryId,
    ) -> Result<Delivery, RetryError> {
        let endpoint = self.endpoint(target, caller, id).await?;
        let now = self.ports.clock.now();
        self.ports
            .deliveries
            .retry(endpoint.id, delivery, now)
            .await?
            .ok_or(RetryError::DeliveryNotFound)
    }

    /// Queues again, now, every event of the endpoint's scope and filters that occurred in
    /// `[from, to)` (at most [`WebhooksConfig::max_replay`]), each with its own `webhook-id`
    /// and a fresh retry schedule. Answers how many.
    pub async fn replay(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64, ReplayError> {
        if from >= to {
            return Err(ReplayError::InvalidRange);
        }
        let endpoint = self.endpoint(target, caller, id).await?;
        let now = self.ports.clock.now();
        let events =
            self.ports.events.between(endpoint.scope, from, to, self.config.max_replay).await?;
        let deliveries: Vec<_> = events
            .iter()
            .filter(|e| endpoint.wants(e))
            .map(|e| NewDelivery::of(e, endpoint.id, now))
            .collect();
        Ok(self.ports.deliveries.requeue(&deliveries).await?)
    }

    /// Queues a `webhook.test` event to the endpoint now (even a disabled endpoint's test
    /// waits until it is enabled).
    pub async fn send_test(
        &self,
        target: &Target,
        caller: MemberId,
        id: EndpointId,
    ) -> Result<DeliveryId, EndpointError> {
        let endpoint = self.endpoint(target, caller, id).await?;
        let now = self.ports.clock.now();
        let event = onboard_kernel::events::Event {
            id: EventId::new(),
            event_type: TEST_EVENT_TYPE.to_owned(),
            aggregate_type: "webhook_endpoint".to_owned(),
            aggregate_id: endpoint.id.as_uuid(),
            group: endpoint.scope.group(),
            payload: serde_json::json!({ "endpoint_id": endpoint.id }),
            occurred_at: now,
            version: 1,
        };
        let delivery = NewDelivery {
            id: DeliveryId::new(),
            endpoint: endpoint.id,
            event_id: event.id,
            event_type: event.event_type.clone(),
            body: body_of(&event),
            due_at: now,
        };
        self.ports.deliveries.requeue(std::slice::from_ref(&delivery)).await?;
        Ok(delivery.id)
    }

    /// The events API: the scope's events after `after`, oldest first, of the `types` given
    /// (every type when none).
    pub async fn events(
        &self,
        target: &Target,
        caller: MemberId,
        after: Option<FeedPosition>,
        types: &[String],
        limit: u32,
    ) -> Result<EventPage, EventsError> {
        let scope = self.scope(target, caller).await?;
        let types = filters(types)?;
        let after = after.unwrap_or(FeedPosition::START);
        Ok(self.ports.events.page(scope, after, &types, limit).await?)
    }
}
