//! Notifications, their types, tickets and pages.

use std::fmt;

use chrono::{DateTime, Utc};
use onboard_kernel::MemberId;
use uuid::Uuid;

/// A notification's id: a UUID v7, so ids are ordered by creation time and "after this id"
/// is a keyset position (for pages and for `Last-Event-ID` replays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationId(Uuid);

impl NotificationId {
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

    /// Reads an id a client sent (a path segment, a cursor, `Last-Event-ID`); `None` when it
    /// is not a UUID.
    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw.trim()).ok().map(Self)
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a notification reports. The names (`as_str`) are the API's `type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationType {
    /// To the members of the group with `members.manage`.
    JoinRequestCreated,
    /// To the requester.
    JoinRequestApproved,
    /// To the requester.
    JoinRequestRejected,
    /// To the inviter.
    InviteAccepted,
    /// To that member.
    MemberRoleChanged,
    /// To that member.
    MemberRemoved,
    /// To the members with `billing.manage` (produced by payments).
    BillingTrialStarted,
    BillingTrialEnding,
    BillingPaymentSucceeded,
    BillingPaymentFailed,
    BillingDowngraded,
    SmsCreditLow,
    SmsCreditTopupFailed,
    UsageThreshold,
    /// To the members of the group with `webhooks.manage`: an endpoint failed for 5 days.
    WebhookEndpointDisabled,
}

impl NotificationType {
    /// Every type.
    pub const ALL: [Self; 15] = [
        Self::JoinRequestCreated,
        Self::JoinRequestApproved,
        Self::JoinRequestRejected,
        Self::InviteAccepted,
        Self::MemberRoleChanged,
        Self::MemberRemoved,
        Self::BillingTrialStarted,
        Self::BillingTrialEnding,
        Self::BillingPaymentSucceeded,
        Self::BillingPaymentFailed,
        Self::BillingDowngraded,
        Self::SmsCreditLow,
        Self::SmsCreditTopupFailed,
        Self::UsageThreshold,
        Self::WebhookEndpointDisabled,
    ];

    /// The dotted name (`join_request.created`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::JoinRequestCreated => "join_request.created",
            Self::JoinRequestApproved => "join_request.approved",
            Self::JoinRequestRejected => "join_request.rejected",
            Self::InviteAccepted => "invite.accepted",
            Self::MemberRoleChanged => "member.role_changed",
            Self::MemberRemoved => "member.removed",
            Self::BillingTrialStarted => "billing.trial_started",
            Self::BillingTrialEnding => "billing.trial_ending",
            Self::BillingPaymentSucceeded => "billing.payment_succeeded",
            Self::BillingPaymentFailed => "billing.payment_failed",
            Self::BillingDowngraded => "billing.downgraded",
            Self::SmsCreditLow => "sms_credit.low",
            Self::SmsCreditTopupFailed => "sms_credit.topup_failed",
            Self::UsageThreshold => "usage.threshold",
            Self::WebhookEndpointDisabled => "webhook.endpoint_disabled",
        }
    }

    /// The type of a dotted name; `None` for an unknown one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for NotificationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub member: MemberId,
    pub kind: NotificationType,
    pub title: String,
    pub body: String,
    /// The slug of the group it is about, if any.
    pub group: Option<String>,
    /// Where an app takes the member (a path of the app), if anywhere.
    pub link: Option<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// While in the future, the notification is hidden (not listed, not counted, not
    /// replayed); from then on it is back, unread.
    pub snoozed_until: Option<DateTime<Utc>>,
}

impl Notification {
    /// Whether the member sees it at `now`: not expired and not snoozed.
    pub fn is_visible(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now && self.snoozed_until.is_none_or(|until| until <= now)
    }
}

/// A notification to store, for one member. `created_at` and `expires_at` come from the
/// producer (the service fills them from its clock and `NOTIFICATION_TTL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub id: NotificationId,
    pub member: MemberId,
    pub kind: NotificationType,
    pub title: String,
    pub body: String,
    pub group: Option<String>,
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl NewNotification {
    /// The notification as stored: unread, not snoozed.
    pub fn into_notification(self) -> Notification {
        Notification {
            id: self.id,
            member: self.member,
            kind: self.kind,
            title: self.title,
            body: self.body,
            group: self.group,
            link: self.link,
            read: false,
            created_at: self.created_at,
            expires_at: self.expires_at,
            snoozed_until: None,
        }
    }
}

/// Which notifications to mark read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkRead {
    /// These ids; ids of other members' notifications (or of none) are ignored.
    Ids(Vec<NotificationId>),
    /// Every notification of the member.
    All,
}

/// How long to snooze: 1 minute to 7 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnoozeMinutes(u32);

/// Not a snooze length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("minutes must be between 1 and {max}", max = SnoozeMinutes::MAX)]
pub struct SnoozeMinutesError;

impl SnoozeMinutes {
    /// A week.
    pub const MAX: u32 = 7 * 24 * 60;

    pub fn parse(minutes: i64) -> Result<Self, SnoozeMinutesError> {
        u32::try_from(minutes)
            .ok()
            .filter(|m| (1..=Self::MAX).contains(m))
            .map(Self)
            .ok_or(SnoozeMinutesError)
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

/// A stream ticket: 32 random bytes in hex, single use, short-lived.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StreamTicket(String);

impl StreamTicket {
    /// A fresh random ticket.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = onboard_kernel::random_bytes();
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Reads a ticket a client sent; `None` when it cannot be one (64 lowercase hex digits).
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StreamTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamTicket(***)")
    }
}

/// One page of a member's notifications, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Present when more may follow: the id of the last item.
    pub next_cursor: Option<String>,
    /// The member's unread, visible notifications (all of them, not only this page's).
    pub unread_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_dotted_name() {
        for t in NotificationType::ALL {
            assert_eq!(NotificationType::parse(t.as_str()), Some(t));
        }
        assert_eq!(NotificationType::JoinRequestCreated.as_str(), "join_request.created");
        assert_eq!(NotificationType::SmsCreditTopupFailed.as_str(), "sms_credit.topup_failed");
        assert_eq!(NotificationType::parse("join_request"), None);
    }

    #[test]
    fn a_snooze_is_a_minute_to_a_week() {
        assert!(SnoozeMinutes::parse(0).is_err());
        assert!(SnoozeMinutes::parse(-5).is_err());
        assert_eq!(SnoozeMinutes::parse(1).map(SnoozeMinutes::get), Ok(1));
        assert!(SnoozeMinutes::parse(i64::from(SnoozeMinutes::MAX)).is_ok());
        assert!(SnoozeMinutes::parse(i64::from(SnoozeMinutes::MAX) + 1).is_err());
    }

    #[test]
    fn a_ticket_is_64_hex_digits_and_never_printed() {
        let ticket = StreamTicket::generate();
        assert_eq!(StreamTicket::parse(ticket.as_str()), Some(ticket.clone()));
        assert_ne!(StreamTicket::generate(), ticket);
        assert!(StreamTicket::parse("abc").is_none());
        assert!(!format!("{ticket:?}").contains(ticket.as_str()));
    }
}
