//! # onboard-webhooks
//!
//! Outgoing webhooks per the Standard Webhooks specification (standardwebhooks.com) and the
//! events API, as a pure domain: the second consumer of the outbox of domain events.
//!
//! ## The rules
//!
//! - An endpoint belongs to a group (managed by holders of `webhooks.manage`; it hears that
//!   group's events) or to the platform (platform admins; it hears every event). It has a URL
//!   (`https` only in production; IP literals must be public unless private addresses are
//!   allowed), a description, event-type filters (`group.member_joined`, `group.*`, `*`; none:
//!   every type), an enabled flag and a secret `whsec_` + base64 of 32 random bytes, shown
//!   once. A rotation keeps the old secret signing beside the new one for 24 h.
//! - Fan-out ([`consumer::WebhooksConsumer`]): each event becomes one delivery per endpoint
//!   that wants it, stored with the consumer's feed position in one transaction: exactly once
//!   per endpoint and event across instances.
//! - Delivery ([`WebhooksService::deliver_due`]): a worker per instance claims due deliveries
//!   under a lease and POSTs `{"type", "timestamp", "data"}` with `webhook-id` (`msg_` and the
//!   event id: the same on every retry), `webhook-timestamp` and `webhook-signature`
//!   ([`signing`]). A 2xx succeeds; otherwise the next attempt waits 5 s, 5 min, 30 min, 2 h,
//!   5 h, 10 h, 10 h, then the delivery fails. At least once over the wire (a worker that dies
//!   mid-attempt leaves the delivery to be claimed again when its lease ends); order is not
//!   promised. An endpoint whose attempts have all failed for 5 days is disabled and the
//!   `webhook.endpoint_disabled` event tells its group.
//! - Payloads are the events' own: ids and changed fields, never secrets, codes or card data;
//!   phones masked. Answers are stored truncated to 4 KiB.
//! - The events API ([`WebhooksService::events`]) pages through the same events by feed
//!   position.

pub mod catalog;
pub mod config;
pub mod consumer;
pub mod error;
pub mod events;
pub mod model;
pub mod ports;
pub mod service;
pub mod signing;

pub use config::WebhooksConfig;
pub use error::*;
pub use model::*;
pub use service::{
    DeliveryRound, EndpointPatch, NewEndpoint, TEST_EVENT_TYPE, Target, WebhooksPorts,
    WebhooksService,
};
