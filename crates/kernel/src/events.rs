//! Domain events and the outbox they are stored in.
//!
//! A use case decides the events of its change as typed values of its own crate (a
//! `GroupEvent`, an `InviteEvent`, ...), turns them into [`Event`] records with
//! [`Event::record`], and hands them to its write port, which stores them **in the same
//! transaction** as the change, in one generic outbox (`outbox` table; the memory store's
//! twin). When the change does not happen (a refusal, a no-op), no event is stored. Consumers
//! (notifications, outgoing webhooks) then read the outbox through the [`EventFeed`] port,
//! each at its own position: a consumer never misses an event and, when it records its effect
//! together with its new position ([`EventFeed::advance`] or a consumer-specific port that
//! does both in one transaction), handles each event exactly once, across instances.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use onboard_kernel::events::{Aggregate, DomainEvent, Event};
//! use onboard_kernel::{GroupId, MemberId};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! #[serde(tag = "type", content = "data")]
//! enum ShopEvent {
//!     #[serde(rename = "shop.opened")]
//!     Opened { group_id: GroupId, by: MemberId },
//! }
//!
//! impl DomainEvent for ShopEvent {
//!     fn aggregate(&self) -> Aggregate {
//!         match self {
//!             Self::Opened { group_id, .. } => Aggregate::group(*group_id),
//!         }
//!     }
//!     fn group(&self) -> Option<GroupId> {
//!         match self {
//!             Self::Opened { group_id, .. } => Some(*group_id),
//!         }
//!     }
//! }
//!
//! let at = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
//! let opened = ShopEvent::Opened { group_id: GroupId::new(), by: MemberId::new() };
//! let record = Event::record(&opened, at);
//! assert_eq!(record.event_type, "shop.opened");
//! assert_eq!(record.payload["by"], serde_json::json!(match &opened {
//!     ShopEvent::Opened { by, .. } => by.to_string(),
//! }));
//! // A consumer reads it back as the typed value.
//! assert_eq!(record.decode::<ShopEvent>(), Some(opened));
//! ```

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound as _, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::GroupId;

/// An event's id: a UUID v7, so ids order by creation time. Consumers that deliver events
/// elsewhere use it as the delivery's idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh, time-ordered id.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The thing an event is about: its kind (`group`, `member`, `invite`, ...) and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregate {
    pub kind: &'static str,
    pub id: Uuid,
}

impl Aggregate {
    pub const fn new(kind: &'static str, id: Uuid) -> Self {
        Self { kind, id }
    }

    /// A group.
    pub fn group(id: GroupId) -> Self {
        Self::new("group", id.as_uuid())
    }

    /// A member.
    pub fn member(id: crate::MemberId) -> Self {
        Self::new("member", id.as_uuid())
    }
}

/// A typed domain event of one crate. Serialised adjacently tagged
/// (`#[serde(tag = "type", content = "data")]`), each variant renamed to its dotted type
/// (`group.member_joined`): the tag is the record's [`Event::event_type`] and the content its
/// [`Event::payload`]. Payloads carry ids and the changed fields, never secrets, card data or
/// codes.
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// The payload schema's version; bumped when a payload changes incompatibly.
    const VERSION: u16 = 1;

    /// What the event is about.
    fn aggregate(&self) -> Aggregate;

    /// The group it belongs to, if any: the per-group events feed and group webhooks filter
    /// on it.
    fn group(&self) -> Option<GroupId>;
}

/// An event as the outbox stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    /// The dotted type (`group.member_joined`).
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub group: Option<GroupId>,
    /// The typed event's fields, as JSON.
    pub payload: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
    /// The payload schema's version.
    pub version: u16,
}

impl Event {
    /// The record of a typed event that happened at `at` (kept to the microsecond, as
    /// storage keeps it), with a fresh id.
    pub fn record<E: DomainEvent>(event: &E, at: DateTime<Utc>) -> Self {
        let aggregate = event.aggregate();
        let (event_type, payload) = match serde_json::to_value(event) {
            Ok(serde_json::Value::Object(mut fields)) => {
                let event_type = match fields.remove("type") {
                    Some(serde_json::Value::String(t)) => t,
                    _ => String::new(),
                };
                (event_type, fields.remove("data").unwrap_or(serde_json::Value::Null))
            }
            _ => (String::new(), serde_json::Value::Null),
        };
        debug_assert!(!event_type.is_empty(), "a DomainEvent serialises adjacently tagged");
        Self {
            id: EventId::new(),
            event_type,
            aggregate_type: aggregate.kind.to_owned(),
            aggregate_id: aggregate.id,
            group: event.group(),
            payload,
            occurred_at: at.trunc_subsecs(6),
            version: E::VERSION,
        }
    }

    /// The records of several typed events that happened at `at`.
    pub fn records<E: DomainEvent>(events: &[E], at: DateTime<Utc>) -> Vec<Self> {
        events.iter().map(|e| Self::record(e, at)).collect()
    }

    /// The typed event of this record; `None` when it is not one of `E`'s types (or its
    /// payload does not read as one).
    pub fn decode<E: DomainEvent>(&self) -> Option<E> {
        let tagged = serde_json::json!({ "type": self.event_type, "data": self.payload });
        serde_json::from_value(tagged).ok()
    }
}

/// A consumer's position in the outbox: every event up to and including this position was
/// handed to it. Ordered; [`FeedPosition::START`] is before every event.
///
/// On PostgreSQL it is (the inserting transaction's id, the row's sequence number): the feed
/// only hands out events of transactions older than every transaction still running, so an
/// event that commits late can never land behind a consumer's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeedPosition {
    pub txid: i64,
    pub seq: i64,
}

impl FeedPosition {
    /// Before the first event.
    pub const START: Self = Self { txid: 0, seq: 0 };
}

/// What [`EventFeed::read`] hands a consumer: the events after its position `from`, in order,
/// and the position `to` after the last of them (`to == from` when there is none).
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    pub consumer: String,
    pub from: FeedPosition,
    pub to: FeedPosition,
    pub events: Vec<Event>,
}

/// The event types a consumer reads: every type, or only those its patterns match. A pattern
/// ending with a dot is a family (`"billing."` matches `billing.plan_changed`); any other is
/// one exact type (`"invite.accepted"`).
///
/// A consumer that handles few types names them, so the feed skips the rest where they are
/// stored (on PostgreSQL, without sending them), and its position still moves past them.
///
/// ```
/// use onboard_kernel::events::EventTypes;
///
/// const TOLD: EventTypes = EventTypes::only(&["billing.", "invite.accepted"]);
/// assert!(TOLD.matches("billing.plan_changed"));
/// assert!(TOLD.matches("invite.accepted"));
/// assert!(!TOLD.matches("invite.accepted_v2"));
/// assert!(!TOLD.matches("member.signed_up"));
/// assert!(EventTypes::ALL.matches("member.signed_up"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTypes(Option<&'static [&'static str]>);

impl EventTypes {
    /// Every event type.
    pub const ALL: Self = Self(None);

    /// Only the types `patterns` match (none when it is empty).
    pub const fn only(patterns: &'static [&'static str]) -> Self {
        Self(Some(patterns))
    }

    /// The patterns; `None` for every type.
    pub const fn patterns(self) -> Option<&'static [&'static str]> {
        self.0
    }

    /// Whether an event of `event_type` is read.
    pub fn matches(self, event_type: &str) -> bool {
        self.0.is_none_or(|patterns| {
            patterns.iter().any(|p| {
                if p.ends_with('.') { event_type.starts_with(p) } else { event_type == *p }
            })
        })
    }
}

/// The outbox as its consumers read it. Each consumer (named, e.g. `notifications`) has its own
/// position, stored with the events; several instances may run the same consumer.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventFeed: Send + Sync {
    /// Up to `limit` events after `consumer`'s position, oldest first (a consumer never seen
    /// before starts at [`FeedPosition::START`]). Reads only: the position moves with
    /// [`Self::advance`] or a consumer's own recording port.
    async fn read(&self, consumer: &str, limit: u32) -> anyhow::Result<EventBatch> {
        self.read_matching(consumer, limit, EventTypes::ALL).await
    }

    /// As [`Self::read`], of the events whose type `types` matches. When fewer than `limit`
    /// match, the batch's `to` is past every event that can be handed out now, matched or
    /// not, so the consumer moves past the types it does not read; otherwise it is the last
    /// matched event's position.
    async fn read_matching(
        &self,
        consumer: &str,
        limit: u32,
        types: EventTypes,
    ) -> anyhow::Result<EventBatch>;

    /// Moves `consumer`'s position from `from` to `to`, on the condition that it is still
    /// `from`; `false` (nothing changed) when another instance moved it first.
    async fn advance(
        &self,
        consumer: &str,
        from: FeedPosition,
        to: FeedPosition,
    ) -> anyhow::Result<bool>;

    /// Deletes the events that occurred before `before`; answers how many.
    async fn purge(&self, before: DateTime<Utc>) -> anyhow::Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemberId;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum TestEvent {
        #[serde(rename = "test.happened")]
        Happened { group_id: GroupId, member_id: MemberId, role: String },
        #[serde(rename = "test.other")]
        Other { member_id: MemberId },
    }

    impl DomainEvent for TestEvent {
        const VERSION: u16 = 2;
        fn aggregate(&self) -> Aggregate {
            match self {
                Self::Happened { group_id, .. } => Aggregate::group(*group_id),
                Self::Other { member_id } => Aggregate::member(*member_id),
            }
        }
        fn group(&self) -> Option<GroupId> {
            match self {
                Self::Happened { group_id, .. } => Some(*group_id),
                Self::Other { .. } => None,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum ForeignEvent {
        #[serde(rename = "foreign.thing")]
        Thing {},
    }

    impl DomainEvent for ForeignEvent {
        fn aggregate(&self) -> Aggregate {
            Aggregate::new("foreign", uuid::Uuid::nil())
        }
        fn group(&self) -> Option<GroupId> {
            None
        }
    }

    #[test]
    fn a_record_carries_the_type_the_aggregate_and_the_fields_and_reads_back() {
        let at = Utc::now();
        let (group_id, member_id) = (GroupId::new(), MemberId::new());
        let happened = TestEvent::Happened { group_id, member_id, role: "admin".to_owned() };
        let record = Event::record(&happened, at);
        assert_eq!(record.event_type, "test.happened");
        assert_eq!(record.aggregate_type, "group");
        assert_eq!(record.aggregate_id, group_id.as_uuid());
        assert_eq!(record.group, Some(group_id));
        assert_eq!(record.version, 2);
        assert_eq!(record.occurred_at, at.trunc_subsecs(6));
        assert_eq!(record.payload["role"], "admin");
        assert_eq!(record.payload["member_id"], member_id.to_string());
        assert_eq!(record.decode::<TestEvent>(), Some(happened));
    }

    #[test]
    fn a_record_of_another_crates_type_does_not_decode() {
        let record = Event::record(&TestEvent::Other { member_id: MemberId::new() }, Utc::now());
        assert_eq!(record.group, None);
        assert_eq!(record.decode::<ForeignEvent>(), None);
    }

    #[test]
    fn each_record_gets_its_own_time_ordered_id() {
        let events = [
            TestEvent::Other { member_id: MemberId::new() },
            TestEvent::Other { member_id: MemberId::new() },
        ];
        let records = Event::records(&events, Utc::now());
        assert!(records[0].id < records[1].id);
    }

    #[test]
    fn positions_order_by_transaction_then_sequence() {
        let a = FeedPosition { txid: 5, seq: 90 };
        let b = FeedPosition { txid: 6, seq: 10 };
        assert!(FeedPosition::START < a && a < b);
    }
}
