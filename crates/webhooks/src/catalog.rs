//! Every event type a webhook or the events API can carry, with its payload's fields: what
//! filters are checked against and what the OpenAPI document's `webhooks` section lists.
//!
//! Payloads carry ids and the changed fields, never secrets, codes or card data; phones are
//! masked (`+7******5566`).

/// The JSON type of a payload field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// A UUID.
    Id,
    String,
    Integer,
    Boolean,
    /// An RFC 3339 instant.
    DateTime,
    /// A `YYYY-MM-DD` date.
    Date,
    StringList,
}

/// One field of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldType,
    /// May be null.
    pub nullable: bool,
}

/// An event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// The dotted name (`group.member_joined`).
    pub name: &'static str,
    /// What happened.
    pub summary: &'static str,
    /// The fields of `data`.
    pub fields: &'static [Field],
}

const fn f(name: &'static str, kind: FieldType) -> Field {
    Field { name, kind, nullable: false }
}

const fn opt(name: &'static str, kind: FieldType) -> Field {
    Field { name, kind, nullable: true }
}

use FieldType::{Boolean, Date, DateTime, Id, Integer, String as Text, StringList};

/// Every event type, by domain.
pub const EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "member.signed_up",
        summary: "A member signed up (with their personal workspace, if any).",
        fields: &[f("member_id", Id), opt("referred_by", Id), opt("workspace_id", Id)],
    },
    EventType {
        name: "member.profile_updated",
        summary: "A member changed their profile; `fields` names what changed.",
        fields: &[f("member_id", Id), f("fields", StringList)],
    },
    EventType {
        name: "member.deleted",
        summary: "A member deleted their account.",
        fields: &[f("member_id", Id)],
    },
    EventType {
        name: "member.blocked",
        summary: "A platform admin blocked a member.",
        fields: &[f("member_id", Id), opt("by", Id), opt("reason", Text)],
    },
    EventType {
        name: "member.unblocked",
        summary: "A platform admin lifted a member's block.",
        fields: &[f("member_id", Id), opt("by", Id)],
    },
    EventType {
        name: "referral.redeemed",
        summary: "A member redeemed another member's referral code.",
        fields: &[f("member_id", Id), f("referrer_id", Id)],
    },
    EventType {
        name: "group.created",
        summary: "A group was created.",
        fields: &[f("group_id", Id), f("slug", Text), f("name", Text), f("owner_id", Id)],
    },
    EventType {
        name: "group.deleted",
        summary: "A group was deleted.",
        fields: &[f("group_id", Id), f("slug", Text), f("by", Id)],
    },
    EventType {
        name: "group.member_joined",
        summary: "A member became an active member (`via`: created, join, approval, invite).",
        fields: &[f("group_id", Id), f("member_id", Id), f("role", Text), f("via", Text)],
    },
    EventType {
        name: "group.join_requested",
        summary: "A member asked to join a group that needs approval.",
        fields: &[f("group_id", Id), f("member_id", Id)],
    },
    EventType {
        name: "group.join_approved",
        summary: "A join request was approved.",
        fields: &[f("group_id", Id), f("member_id", Id), f("by", Id)],
    },
    EventType {
        name: "group.join_rejected",
        summary: "A join request was rejected.",
        fields: &[f("group_id", Id), f("member_id", Id), f("by", Id)],
    },
    EventType {
        name: "group.member_role_changed",
        summary: "An active member's role changed.",
        fields: &[
            f("group_id", Id),
            f("member_id", Id),
            f("from", Text),
            f("to", Text),
            f("by", Id),
        ],
    },
    EventType {
        name: "group.member_removed",
        summary: "A member left or was removed (`by` is the member when they left).",
        fields: &[f("group_id", Id), f("member_id", Id), f("role", Text), f("by", Id)],
    },
    EventType {
        name: "invite.created",
        summary: "An invite was made (phone masked).",
        fields: &[
            f("invite_id", Id),
            f("group_id", Id),
            f("invited_by", Id),
            opt("phone", Text),
            opt("email", Text),
            f("role", Text),
        ],
    },
    EventType {
        name: "invite.accepted",
        summary: "An invite was accepted.",
        fields: &[
            f("invite_id", Id),
            f("group_id", Id),
            f("invited_by", Id),
            f("member_id", Id),
            f("role", Text),
        ],
    },
    EventType {
        name: "invite.revoked",
        summary: "An invite was revoked.",
        fields: &[f("invite_id", Id), f("group_id", Id), f("by", Id)],
    },
    EventType {
        name: "billing.plan_changed",
        summary: "The group's plan changed.",
        fields: &[f("group_id", Id), f("from", Text), f("to", Text)],
    },
    EventType {
        name: "billing.trial_started",
        summary: "A trial began.",
        fields: &[f("group_id", Id), f("plan", Text), f("ends_on", Date)],
    },
    EventType {
        name: "billing.trial_ending",
        summary: "A trial ends in `days` days (30, 7, 1).",
        fields: &[f("group_id", Id), f("plan", Text), f("days", Integer), f("ends_on", Date)],
    },
    EventType {
        name: "billing.payment_succeeded",
        summary: "A charge was paid (amount in KRW).",
        fields: &[f("group_id", Id), f("plan", Text), f("amount", Integer), f("receipt_id", Id)],
    },
    EventType {
        name: "billing.payment_failed",
        summary: "A charge failed; when it is retried.",
        fields: &[
            f("group_id", Id),
            f("plan", Text),
            f("amount", Integer),
            f("reason", Text),
            opt("retry_at", DateTime),
            opt("retry_on", Date),
        ],
    },
    EventType {
        name: "billing.downgraded",
        summary: "The group fell back to the Free plan.",
        fields: &[f("group_id", Id), f("from", Text)],
    },
    EventType {
        name: "billing.usage_threshold",
        summary: "Usage of a metric crossed 50, 80 or 100 % of its limit.",
        fields: &[
            f("group_id", Id),
            f("metric", Text),
            f("percent", Integer),
            f("used", Integer),
            f("limit", Integer),
        ],
    },
    EventType {
        name: "sms_credit.purchased",
        summary: "SMS credit was bought (amount in KRW; `reason`: purchase or auto top-up).",
        fields: &[f("group_id", Id), f("amount", Integer), f("reason", Text)],
    },
    EventType {
        name: "sms_credit.low",
        summary: "The SMS credit fell below the low-balance mark.",
        fields: &[f("group_id", Id), f("balance", Integer)],
    },
    EventType {
        name: "sms_credit.topup_failed",
        summary: "An automatic top-up failed.",
        fields: &[f("group_id", Id), f("amount", Integer), f("reason", Text)],
    },
    EventType {
        name: "message.queued",
        summary: "Messages were queued (one event per send).",
        fields: &[
            f("group_id", Id),
            f("channel", Text),
            f("count", Integer),
            f("total_price", Integer),
            f("by", Id),
        ],
    },
    EventType {
        name: "message.sent",
        summary: "The provider took a message.",
        fields: &[f("message_id", Id), f("group_id", Id), f("channel", Text)],
    },
    EventType {
        name: "message.delivered",
        summary: "An alimtalk was delivered.",
        fields: &[f("message_id", Id), f("group_id", Id)],
    },
    EventType {
        name: "message.failed",
        summary: "A message failed (refunded or not).",
        fields: &[f("message_id", Id), f("group_id", Id), f("code", Text), f("refunded", Boolean)],
    },
    EventType {
        name: "message.failed_over",
        summary: "An alimtalk that did not arrive was resent as SMS/LMS.",
        fields: &[
            f("message_id", Id),
            f("group_id", Id),
            f("code", Text),
            f("resend_id", Id),
            f("channel", Text),
        ],
    },
    EventType {
        name: "webhook.endpoint_disabled",
        summary: "A webhook endpoint was disabled after failing for 5 days.",
        fields: &[f("endpoint_id", Id), opt("group_id", Id), f("url", Text)],
    },
    EventType {
        name: crate::TEST_EVENT_TYPE,
        summary: "A test event, sent on request (never in the events API).",
        fields: &[f("endpoint_id", Id)],
    },
];

/// The event type named `name`.
pub fn find(name: &str) -> Option<&'static EventType> {
    EVENT_TYPES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_listed_once_and_is_dotted() {
        let mut names: Vec<_> = EVENT_TYPES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENT_TYPES.len());
        assert!(
            names.iter().all(|n| n
                .split_once('.')
                .is_some_and(|(a, b)| { !a.is_empty() && !b.is_empty() }))
        );
        assert!(find("group.member_joined").is_some());
        assert!(find("group.nothing").is_none());
    }
}
