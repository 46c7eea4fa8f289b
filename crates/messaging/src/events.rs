//! The events of the messaging domain: what happens to a group's messages. The use cases in
//! [`crate::MessagingService`] decide them (the send, and the worker's steps); the
//! [`MessageRepository`](crate::ports::MessageRepository) stores them with the change they
//! describe, in its transaction (the outbox), and only when the change is made (an outcome
//! recorded under a lost lease stores none). Outgoing webhooks tell other services.
//!
//! Payloads carry ids, channels, codes and amounts: never a phone number or a text.
//!
//! ```
//! use chrono::Utc;
//! use onboard_kernel::events::Event;
//! use onboard_kernel::GroupId;
//! use onboard_messaging::events::MessageEvent;
//! use onboard_messaging::MessageId;
//!
//! let failed = MessageEvent::Failed {
//!     message_id: MessageId::new(),
//!     group_id: GroupId::new(),
//!     code: "3018".into(),
//!     refunded: true,
//! };
//! let record = Event::record(&failed, Utc::now());
//! assert_eq!(record.event_type, "message.failed");
//! assert_eq!(record.aggregate_type, "message");
//! assert_eq!(record.decode::<MessageEvent>(), Some(failed));
//! ```

use onboard_kernel::events::{Aggregate, DomainEvent};
use onboard_kernel::{GroupId, MemberId};
use serde::{Deserialize, Serialize};

use crate::model::MessageId;

/// Something that happened to a group's messages. Channels are their stored names (`sms`,
/// `lms`, `alimtalk`), amounts KRW of the group's SMS credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum MessageEvent {
    /// `by` sent a batch, all queued: one event per batch.
    #[serde(rename = "message.queued")]
    Queued {
        /// The group that sends and pays.
        group_id: GroupId,
        /// The channel of every message in the batch.
        channel: String,
        /// How many messages (one per recipient).
        count: u32,
        /// KRW debited from the group's SMS credit for the batch.
        total_price: i64,
        /// The member who sent it.
        by: MemberId,
    },
    /// The provider took the message.
    #[serde(rename = "message.sent")]
    Sent {
        /// The message.
        message_id: MessageId,
        /// Its group.
        group_id: GroupId,
        /// The channel it went by.
        channel: String,
    },
    /// The provider confirmed the alimtalk's delivery.
    #[serde(rename = "message.delivered")]
    Delivered {
        /// The message.
        message_id: MessageId,
        /// Its group.
        group_id: GroupId,
    },
    /// The message failed and is not resent.
    #[serde(rename = "message.failed")]
    Failed {
        /// The message.
        message_id: MessageId,
        /// Its group.
        group_id: GroupId,
        /// The provider's code, or the worker's (`unavailable`, `check_timeout`).
        code: String,
        /// Whether its price (not 0) went back to the group's SMS credit.
        refunded: bool,
    },
    /// An alimtalk did not arrive: it was refunded and resent as SMS or LMS, charged and
    /// queued.
    #[serde(rename = "message.failed_over")]
    FailedOver {
        /// The alimtalk.
        message_id: MessageId,
        /// Its group.
        group_id: GroupId,
        /// The alimtalk's result code.
        code: String,
        /// The resend.
        resend_id: MessageId,
        /// The resend's channel (`sms` or `lms`).
        channel: String,
    },
}

impl MessageEvent {
    /// The group whose message it is.
    pub const fn group_id(&self) -> GroupId {
        match self {
            Self::Queued { group_id, .. }
            | Self::Sent { group_id, .. }
            | Self::Delivered { group_id, .. }
            | Self::Failed { group_id, .. }
            | Self::FailedOver { group_id, .. } => *group_id,
        }
    }
}

impl DomainEvent for MessageEvent {
    /// A message's event is about the message; a batch's, about the group that sent it.
    fn aggregate(&self) -> Aggregate {
        match self {
            Self::Queued { group_id, .. } => Aggregate::group(*group_id),
            Self::Sent { message_id, .. }
            | Self::Delivered { message_id, .. }
            | Self::Failed { message_id, .. }
            | Self::FailedOver { message_id, .. } => {
                Aggregate::new("message", message_id.as_uuid())
            }
        }
    }

    fn group(&self) -> Option<GroupId> {
        Some(self.group_id())
    }
}
