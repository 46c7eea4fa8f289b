//! # onboard-messaging
//!
//! Messages a group sends (SMS, LMS, KakaoTalk alimtalk), paid from the group's prepaid SMS
//! credit, as a pure domain (`shared/spec/messaging.md`, "Messages a group sends").
//!
//! ## The rules
//!
//! - A send names recipients, a channel, a text (and an alimtalk template). An SMS text over 90
//!   bytes (EUC-KR count) is an LMS and priced as one; over 2,000 bytes is refused
//!   ([`pricing`]).
//! - The debit, the message rows and their outbox entries are one transaction
//!   ([`ports::MessageRepository::queue_batch`]): without credit for all of them nothing is
//!   queued ([`SendError::InsufficientCredit`]). The port's docs name every debit and refund
//!   an adapter makes (the price, the ledger reason, the reference).
//! - A worker on every server instance ([`MessagingService::process_due`]) claims due messages
//!   under a lease, calls the provider, and records each outcome right after its call in a
//!   transaction of its own: `sent`, or `failed` with the charge refunded.
//! - An alimtalk's delivery is checked later: the first check is due `check_delay` after the
//!   send (scheduled in the transaction that marks it sent), then with backoff while the
//!   provider does not know yet. A non-delivery with `failover` is resent as SMS/LMS: the
//!   alimtalk is refunded and `failed_over`, the resend charged and queued, in one transaction
//!   ([`failover`] has the table of codes).
//! - Each change carries the events the use case decided for it ([`events::MessageEvent`]:
//!   `message.queued` per batch, `message.sent`, `message.delivered`, `message.failed`,
//!   `message.failed_over`), stored by the repository in the change's transaction; an outcome
//!   recorded under a lost lease stores none. Nobody is notified of messages; outgoing
//!   webhooks read these events.
//!
//! ## Using the service with your own adapters
//!
//! ```
//! use std::sync::Arc;
//! use onboard_groups::Slug;
//! use onboard_kernel::{MemberId, PhoneNumber, SystemClock};
//! use onboard_messaging::ports::{MessageProvider, MessageRepository, SenderGate};
//! use onboard_messaging::{
//!     Channel, MessagingConfig, MessagingPorts, MessagingService, SendRequest,
//! };
//!
//! # async fn demo(
//! #     repo: Arc<dyn MessageRepository>,
//! #     provider: Arc<dyn MessageProvider>,
//! #     gate: Arc<dyn SenderGate>,
//! #     slug: Slug,
//! # ) -> anyhow::Result<()> {
//! let service = MessagingService::new(
//!     MessagingPorts { repo, provider, gate, clock: Arc::new(SystemClock) },
//!     MessagingConfig::default(),
//! );
//! let queued = service
//!     .send(&slug, MemberId::new(), SendRequest {
//!         to: vec![PhoneNumber::parse("+821012345678", None)?],
//!         channel: Channel::Alimtalk,
//!         text: "Your order has shipped".into(),
//!         template_code: Some("ORDER_SHIPPED".into()),
//!         failover: true,
//!     })
//!     .await?;
//! // The worker (every instance runs one) sends what is due.
//! service.process_due().await?;
//! # let _ = queued;
//! # Ok(())
//! # }
//! ```
//!
//! ## Testing with the mocks
//!
//! With the `mocks` feature every port has a mockall twin:
//!
//! ```
//! # #[cfg(feature = "mocks")]
//! # async fn demo() {
//! use std::sync::Arc;
//! use onboard_groups::Slug;
//! use onboard_kernel::{GroupId, MemberId, PhoneNumber, SystemClock};
//! use onboard_messaging::ports::{MockMessageProvider, MockMessageRepository, MockSenderGate};
//! use onboard_messaging::{
//!     Channel, MessagingConfig, MessagingPorts, MessagingService, QueueError, SendError,
//!     SendRequest,
//! };
//!
//! let mut gate = MockSenderGate::new();
//! gate.expect_sender_group().returning(|_, _| Ok(GroupId::new()));
//! let mut repo = MockMessageRepository::new();
//! repo.expect_queue_batch().returning(|_, _, _| Err(QueueError::InsufficientCredit));
//! let mut provider = MockMessageProvider::new();
//! provider.expect_send().never();
//! let service = MessagingService::new(
//!     MessagingPorts {
//!         repo: Arc::new(repo),
//!         provider: Arc::new(provider),
//!         gate: Arc::new(gate),
//!         clock: Arc::new(SystemClock),
//!     },
//!     MessagingConfig::default(),
//! );
//! let refused = service
//!     .send(&Slug::parse("acme").unwrap(), MemberId::new(), SendRequest {
//!         to: vec![PhoneNumber::parse("+821012345678", None).unwrap()],
//!         channel: Channel::Sms,
//!         text: "hi".into(),
//!         template_code: None,
//!         failover: false,
//!     })
//!     .await;
//! assert!(matches!(refused, Err(SendError::InsufficientCredit)));
//! # }
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod events;
pub mod failover;
pub mod model;
pub mod ports;
pub mod pricing;
pub mod service;

pub use config::MessagingConfig;
pub use error::{GateError, GetMessageError, QueueError, SendError};
pub use model::{
    Channel, Claim, FailOverEvents, FailOverOutcome, Message, MessageId, MessageStatus, NewMessage,
    SendRequest,
};
pub use service::{MessagingPorts, MessagingService};
