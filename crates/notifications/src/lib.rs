//! # onboard-notifications
//!
//! In-app notifications ("alarms") of members, as a pure domain: the list with an unread
//! count, marking read, snoozing, deleting, expiry after `NOTIFICATION_TTL`, and live
//! delivery through single-use stream tickets and a bus that reaches every server instance.
//!
//! ## The rules
//!
//! - A notification belongs to one member; another member's ids are ignored (marking read)
//!   or not found (snooze, delete).
//! - Expired notifications (`expires_at <= now`) are neither listed, counted nor replayed;
//!   a periodic job purges them.
//! - A snoozed notification is hidden (not listed, counted nor replayed) until
//!   `snoozed_until`, then back unread. The time is stored, so it survives restarts.
//! - Producers create notifications in the same transaction as the change they report:
//!   their adapters insert rows (unpublished) inside that transaction. The outbox worker
//!   ([`NotificationsService::publish_pending`]) publishes committed rows on the
//!   [`ports::NotificationBus`], at least once; a stream that missed some replays them with
//!   `Last-Event-ID`.
//!
//! ## Using the service with your own adapters
//!
//! ```
//! use std::sync::Arc;
//! use onboard_kernel::{MemberId, SystemClock};
//! use onboard_notifications::ports::{
//!     NotificationBus, NotificationOutbox, NotificationRepository, StreamTicketStore,
//! };
//! use onboard_notifications::{
//!     NotificationType, NotificationsConfig, NotificationsPorts, NotificationsService,
//! };
//!
//! # async fn demo(
//! #     repo: Arc<dyn NotificationRepository>,
//! #     outbox: Arc<dyn NotificationOutbox>,
//! #     bus: Arc<dyn NotificationBus>,
//! #     tickets: Arc<dyn StreamTicketStore>,
//! # ) -> anyhow::Result<()> {
//! let service = NotificationsService::new(
//!     NotificationsPorts { repo, outbox, bus, tickets, clock: Arc::new(SystemClock) },
//!     NotificationsConfig::default(),
//! );
//! let member = MemberId::new();
//! let low = service.draft(member, NotificationType::SmsCreditLow, "SMS credit is low",
//!     "Below 1,000 left", Some("acme".into()), Some("/groups/acme/billing".into()));
//! service.notify(&[low]).await?;
//! service.publish_pending().await?;
//! let page = service.list(member, true, None, 20).await?;
//! assert_eq!(page.unread_count, 1);
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod consumer;
pub mod error;
pub mod model;
pub mod ports;
pub mod service;
pub mod texts;

pub use config::NotificationsConfig;
pub use consumer::NotificationsConsumer;
pub use error::{NotificationError, OpenStreamError};
pub use model::{
    MarkRead, NewNotification, Notification, NotificationId, NotificationPage, NotificationType,
    SnoozeMinutes, SnoozeMinutesError, StreamTicket,
};
pub use service::{LiveStream, NotificationsPorts, NotificationsService, REPLAY_LIMIT};
