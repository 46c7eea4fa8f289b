//! Messages, their channels and statuses.

use chrono::{DateTime, Utc};
use onboard_kernel::{GroupId, PhoneNumber};

onboard_kernel::id_type!(
    /// A message's id (time-ordered: newer messages have greater ids).
    MessageId
);

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A short text message: up to 90 bytes (EUC-KR count).
    Sms,
    /// A long text message: up to 2,000 bytes.
    Lms,
    /// A KakaoTalk alimtalk message from an approved template.
    Alimtalk,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Self; 3] = [Self::Sms, Self::Lms, Self::Alimtalk];

    /// The stored (and wire) name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Lms => "lms",
            Self::Alimtalk => "alimtalk",
        }
    }

    /// The channel named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// Where a message stands.
///
/// `queued` → `sent` → (alimtalk) `delivered`; `failed` at any step (a provider error, or an
/// alimtalk that did not arrive and is not resent); `failed_over` for an alimtalk that did not
/// arrive and was resent as SMS/LMS (the resend is a message of its own, `failover_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Paid for and waiting in the outbox.
    Queued,
    /// The provider took it (an alimtalk's delivery is still being checked).
    Sent,
    /// The provider confirmed delivery (alimtalk).
    Delivered,
    /// Not delivered and not resent.
    Failed,
    /// An alimtalk that was not delivered, resent as SMS/LMS.
    FailedOver,
}

impl MessageStatus {
    /// Every status.
    pub const ALL: [Self; 5] =
        [Self::Queued, Self::Sent, Self::Delivered, Self::Failed, Self::FailedOver];

    /// The stored (and wire) name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::FailedOver => "failed_over",
        }
    }

    /// The status named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A message to store: paid for and queued in the same step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its id (chosen before it is stored).
    pub id: MessageId,
    /// The group that sends and pays for it.
    pub group: GroupId,
    /// The recipient.
    pub to: PhoneNumber,
    /// The channel it goes by (an SMS text longer than 90 bytes is an LMS).
    pub channel: Channel,
    /// The text (an alimtalk's, filled from its template).
    pub text: String,
    /// The alimtalk template (alimtalk only).
    pub template_code: Option<String>,
    /// Resend an alimtalk that is not delivered as SMS/LMS.
    pub failover: bool,
    /// KRW the repository debits from the group's SMS credit when it stores the message, in
    /// the same transaction: ledger reason `message`
    /// ([`CreditReason::Message`](onboard_payments::sms_credit::CreditReason::Message)),
    /// referencing the message id; nothing for 0. Refunded (reason `refund`) when the message
    /// fails with a refund or fails over.
    pub price: i64,
    /// The alimtalk this message resends, for a failover resend.
    pub failover_of: Option<MessageId>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// The group that sent and paid for it.
    pub group: GroupId,
    /// The recipient.
    pub to: PhoneNumber,
    /// The channel it goes by.
    pub channel: Channel,
    /// The text.
    pub text: String,
    /// The alimtalk template (alimtalk only).
    pub template_code: Option<String>,
    /// Resend it as SMS/LMS if the alimtalk does not arrive.
    pub failover: bool,
    /// KRW debited for it (refunded when it failed or failed over).
    pub price: i64,
    /// Where it stands.
    pub status: MessageStatus,
    /// The provider's result code: of the refusal, or of the alimtalk delivery check
    /// (`0000` delivered, `3018` not deliverable, …).
    pub result_code: Option<String>,
    /// The provider's id of the message (what delivery checks ask about).
    pub provider_message_id: Option<String>,
    /// The alimtalk this message resends.
    pub failover_of: Option<MessageId>,
    /// The SMS/LMS that resent this alimtalk.
    pub failover_id: Option<MessageId>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

impl NewMessage {
    /// The stored message, queued at `at`.
    #[must_use]
    pub fn into_message(self, at: DateTime<Utc>) -> Message {
        Message {
            id: self.id,
            group: self.group,
            to: self.to,
            channel: self.channel,
            text: self.text,
            template_code: self.template_code,
            failover: self.failover,
            price: self.price,
            status: MessageStatus::Queued,
            result_code: None,
            provider_message_id: None,
            failover_of: self.failover_of,
            failover_id: None,
            created_at: at,
            updated_at: at,
        }
    }
}

/// A message handed to one worker by [`MessageRepository::claim`](crate::ports::MessageRepository::claim):
/// its next step is due (send it when `queued`, check its delivery when a `sent` alimtalk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The message as claimed.
    pub message: Message,
    /// This claim's token: only its holder may record the step's outcome.
    pub lease: uuid::Uuid,
    /// Delivery checks already made (alimtalk).
    pub checks: u32,
}

/// What a send asks for, parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    /// The recipients (one message each).
    pub to: Vec<PhoneNumber>,
    /// The channel asked for.
    pub channel: Channel,
    /// The text.
    pub text: String,
    /// Required for alimtalk.
    pub template_code: Option<String>,
    /// Resend an alimtalk that is not delivered as SMS/LMS.
    pub failover: bool,
}

/// The events of a failover step, one list per outcome: the repository stores the list of
/// the outcome it records ([`MessageRepository::fail_over`](crate::ports::MessageRepository::fail_over)),
/// and none when the lease was lost.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FailOverEvents {
    /// Stored when the alimtalk is `failed_over` and the resend queued
    /// ([`FailOverOutcome::Resent`]).
    pub resent: Vec<onboard_kernel::events::Event>,
    /// Stored when the credit does not cover the resend and the alimtalk is `failed`
    /// ([`FailOverOutcome::NoCredit`]).
    pub no_credit: Vec<onboard_kernel::events::Event>,
}

/// The result of a failover step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOverOutcome {
    /// The alimtalk is `failed_over` (refunded) and the resend is queued (charged).
    Resent,
    /// The alimtalk was refunded but the credit does not cover the resend: it is `failed`.
    NoCredit,
    /// The claim's lease ran out: another worker owns the message now; nothing changed.
    LeaseLost,
}
