//! What the webhooks domain needs from the outside: storage of endpoints and deliveries, the
//! outbox as the events API reads it, an HTTP sender, and who may manage what.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_groups::Slug;
use onboard_kernel::events::{Event, FeedPosition};
use onboard_kernel::{GroupId, MemberId};

use crate::error::AccessError;
use crate::model::{
    AttemptRecord, Claim, Delivery, DeliveryId, Endpoint, EndpointId, EndpointUrl, EventFilter,
    EventPage, NewDelivery, Scope,
};

/// Webhook endpoints.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EndpointRepository: Send + Sync {
    /// Stores a new endpoint.
    async fn create(&self, endpoint: &Endpoint) -> anyhow::Result<()>;

    /// The endpoint `id` of `scope`; `None` when it is not one of the scope's.
    async fn get(&self, scope: Scope, id: EndpointId) -> anyhow::Result<Option<Endpoint>>;

    /// The scope's endpoints, oldest first.
    async fn list(&self, scope: Scope) -> anyhow::Result<Vec<Endpoint>>;

    /// Writes what its owner may change (URL, description, filters, enabled, secrets,
    /// `updated_at`); enabling a disabled endpoint clears `failing_since`. `false` when it is
    /// gone.
    async fn update(&self, endpoint: &Endpoint) -> anyhow::Result<bool>;

    /// Deletes the endpoint and its deliveries; `false` when it was not one of the scope's.
    async fn delete(&self, scope: Scope, id: EndpointId) -> anyhow::Result<bool>;

    /// The enabled endpoints that may want events of `groups`: those of these groups and every
    /// platform endpoint.
    async fn enabled_for(&self, groups: &[GroupId]) -> anyhow::Result<Vec<Endpoint>>;

    /// Whether any endpoint, of any scope, is enabled: while none is, the consumer moves past
    /// the events without reading them.
    async fn any_enabled(&self) -> anyhow::Result<bool>;
}

/// Deliveries: the webhooks' own outbox.
///
/// A pending delivery is due at `next_attempt_at`. A claim hands it to one worker under a
/// lease and moves its due time to the lease's end, so a worker that dies mid-delivery leaves
/// it to be claimed again then (at least once over the wire, with the same `webhook-id`); the
/// worker's [`Self::record`] counts only while the lease is the delivery's.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryRepository: Send + Sync {
    /// In one transaction: moves consumer `consumer` from `from` to `to` on the condition that
    /// it is still at `from`, and stores `deliveries` (one per endpoint and event: a
    /// delivery of an event already delivered to that endpoint is skipped). `false` and
    /// nothing stored when another instance moved the consumer first.
    async fn insert_consumed(
        &self,
        consumer: &str,
        from: FeedPosition,
        to: FeedPosition,
        deliveries: &[NewDelivery],
    ) -> anyhow::Result<bool>;

    /// Stores deliveries (replays, test events); one that names an event already delivered to
    /// its endpoint puts that delivery back to pending, due at its `due_at`, with no attempts
    /// counted. Answers how many were stored or put back.
    async fn requeue(&self, deliveries: &[NewDelivery]) -> anyhow::Result<u64>;

    /// Up to `limit` of the endpoint's deliveries, newest first, strictly before `before`.
    async fn list(
        &self,
        endpoint: EndpointId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> anyhow::Result<Vec<Delivery>>;

    /// Puts the endpoint's delivery `id` back to pending, due at `now`, for one more attempt
    /// (a claim in flight loses its lease); `None` when it is not the endpoint's.
    async fn retry(
        &self,
        endpoint: EndpointId,
        id: DeliveryId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Delivery>>;

    /// Claims up to `limit` pending deliveries due at `now` of enabled endpoints (earliest
    /// first) under a fresh lease until `lease_until`: of several workers claiming at once,
    /// each delivery goes to one.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Claim>>;

    /// Records an attempt on a claimed delivery and its endpoint's health, in one transaction:
    /// `Healthy` clears the endpoint's `failing_since`, `Failing` sets it if unset,
    /// `Disable` also disables the endpoint and, only when this call disabled it, stores
    /// `disabled_events` in the outbox. `false` and nothing written when the lease is no longer
    /// the delivery's.
    async fn record(
        &self,
        id: DeliveryId,
        lease: uuid::Uuid,
        record: &AttemptRecord,
        disabled_events: &[Event],
    ) -> anyhow::Result<bool>;

    /// How long the oldest due pending delivery has waited at `now` (zero when none waits).
    async fn queue_age(&self, now: DateTime<Utc>) -> anyhow::Result<Duration>;

    /// Deletes finished deliveries made before `before`; answers how many.
    async fn purge(&self, before: DateTime<Utc>) -> anyhow::Result<u64>;
}

/// The outbox as the events API and replays read it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Up to `limit` events of `scope` after position `after`, oldest first, whose type passes
    /// `types` (every type when empty). Like the outbox feed, only events of ended
    /// transactions are handed out, so a poller that keeps the page's cursor never misses
    /// one that commits late.
    async fn page(
        &self,
        scope: Scope,
        after: FeedPosition,
        types: &[EventFilter],
        limit: u32,
    ) -> anyhow::Result<EventPage>;

    /// Up to `limit` events of `scope` that occurred in `[from, to)`, oldest first.
    async fn between(
        &self,
        scope: Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Event>>;
}

/// One attempt as it goes over the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    pub url: EndpointUrl,
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp` (seconds since the epoch).
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
    /// The JSON body.
    pub body: String,
}

/// The endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The start of the body (the adapter may read no more than the domain stores).
    pub body: String,
    pub latency: Duration,
}

/// No answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The address is not one deliveries may go to (loopback, private, link-local,
    /// metadata), or the name did not resolve.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer within the timeout (10 s).
    #[error("timed out")]
    Timeout,
    /// The connection failed.
    #[error("{0}")]
    Connection(String),
}

/// Sends webhook requests: a `POST` of the body with the `webhook-*` headers, no redirects
/// followed, to an address checked after resolution (and the connection pinned to it).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn send(&self, request: &OutgoingRequest) -> Result<Answer, (SendError, Duration)>;
}

/// Who may manage a group's webhooks: active members holding `webhooks.manage`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait GroupGate: Send + Sync {
    /// The group `slug` when `member` may manage its webhooks.
    async fn webhooks_manager(&self, slug: &Slug, member: MemberId)
    -> Result<GroupId, AccessError>;
}

#[async_trait]
impl GroupGate for onboard_groups::GroupsService {
    async fn webhooks_manager(
        &self,
        slug: &Slug,
        member: MemberId,
    ) -> Result<GroupId, AccessError> {
        use onboard_groups::AuthorizeError as E;
        match self.authorize(slug, member, &onboard_groups::Permission::WEBHOOKS_MANAGE).await {
            Ok((group, _)) => Ok(group.id),
            Err(E::NotFound) => Err(AccessError::NotFound),
            Err(E::Forbidden(_)) => Err(AccessError::Forbidden),
            Err(E::Unexpected(e)) => Err(AccessError::Unexpected(e)),
        }
    }
}

/// Who may manage the platform's webhooks and read every event: platform admins.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PlatformAdmins: Send + Sync {
    async fn is_platform_admin(&self, member: MemberId) -> anyhow::Result<bool>;
}

#[async_trait]
impl PlatformAdmins for onboard_admin::AdminService {
    async fn is_platform_admin(&self, member: MemberId) -> anyhow::Result<bool> {
        onboard_admin::AdminService::is_platform_admin(self, member).await
    }
}
