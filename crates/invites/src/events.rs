//! The events of the invites domain: what creating, accepting and revoking an invite tell the
//! rest of the system. The use cases in [`crate::InvitesService`] decide them; the
//! [`InviteRepository`](crate::ports::InviteRepository) stores them with the change, in its
//! transaction (the outbox). Consumers act on them: the notifications domain tells the inviter
//! that their invite was accepted, outgoing webhooks tell other services.
//!
//! Accepting an invite also settles a membership, which is the groups domain's news: an accept
//! records [`GroupEvent::MemberJoined`] (via [`JoinedVia::Invite`]) or
//! [`GroupEvent::JoinRequested`] as well, exactly as the groups domain's own join does. Which
//! one only storage knows (the group may require approval, the member may be one already), so
//! the service hands the accept its [`AcceptEvents`] and storage picks the records of the way
//! it settled the membership with [`AcceptEvents::records`].
//!
//! Payloads never carry the invite's code, and the phone only masked.
//!
//! ```
//! use chrono::Utc;
//! use onboard_invites::InviteId;
//! use onboard_invites::events::InviteEvent;
//! use onboard_kernel::events::Event;
//! use onboard_kernel::{GroupId, MemberId};
//!
//! let revoked =
//!     InviteEvent::Revoked { invite_id: InviteId::new(), group_id: GroupId::new(), by: MemberId::new() };
//! let record = Event::record(&revoked, Utc::now());
//! assert_eq!(record.event_type, "invite.revoked");
//! assert_eq!(record.aggregate_type, "invite");
//! assert_eq!(record.decode::<InviteEvent>(), Some(revoked));
//! ```

use chrono::{DateTime, Utc};
use onboard_groups::RoleName;
use onboard_groups::events::{GroupEvent, JoinedVia};
use onboard_kernel::events::{Aggregate, DomainEvent, Event};
use onboard_kernel::{GroupId, MemberId};
use serde::{Deserialize, Serialize};

use crate::model::InviteId;
use crate::ports::NewInvite;

/// A change to an invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum InviteEvent {
    /// `invited_by` invited a person to the group with `role`, by phone (`phone`, masked: the
    /// country code and the last four digits) and/or by e-mail (`email`).
    #[serde(rename = "invite.created")]
    Created {
        invite_id: InviteId,
        group_id: GroupId,
        invited_by: MemberId,
        phone: Option<String>,
        email: Option<String>,
        role: String,
    },
    /// `member_id` accepted the invite `invited_by` made (with `role`). What became of their
    /// membership is told by the group's event recorded with it.
    #[serde(rename = "invite.accepted")]
    Accepted {
        invite_id: InviteId,
        group_id: GroupId,
        invited_by: MemberId,
        member_id: MemberId,
        role: String,
    },
    /// The invite was revoked by `by` (its inviter when its SMS could not be sent); its code
    /// no longer works.
    #[serde(rename = "invite.revoked")]
    Revoked { invite_id: InviteId, group_id: GroupId, by: MemberId },
}

impl InviteEvent {
    /// The `invite.created` event of an invite about to be stored.
    pub fn created(invite: &NewInvite) -> Self {
        Self::Created {
            invite_id: invite.id,
            group_id: invite.group,
            invited_by: invite.invited_by,
            phone: invite.phone.as_ref().map(|p| p.masked()),
            email: invite.email.as_ref().map(|e| e.as_str().to_owned()),
            role: invite.role.as_str().to_owned(),
        }
    }

    /// The invite the event is about.
    pub const fn invite_id(&self) -> InviteId {
        match self {
            Self::Created { invite_id, .. }
            | Self::Accepted { invite_id, .. }
            | Self::Revoked { invite_id, .. } => *invite_id,
        }
    }

    /// The group of the invite.
    pub const fn group_id(&self) -> GroupId {
        match self {
            Self::Created { group_id, .. }
            | Self::Accepted { group_id, .. }
            | Self::Revoked { group_id, .. } => *group_id,
        }
    }
}

impl DomainEvent for InviteEvent {
    fn aggregate(&self) -> Aggregate {
        Aggregate::new("invite", self.invite_id().as_uuid())
    }

    fn group(&self) -> Option<GroupId> {
        Some(self.group_id())
    }
}

/// How storage settled the membership of an accepted invite; it picks the accept's events
/// ([`AcceptEvents::records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptedMembership {
    /// The member became an ACTIVE member with this role (a new membership, or their join
    /// request turned active).
    Joined(RoleName),
    /// A PENDING membership (a join request) was added: the group requires approval.
    Requested,
    /// The membership did not change: the member was an active member already, or their join
    /// request was pending already.
    Unchanged,
}

/// The events of one accept, decided by the service for every way storage may settle the
/// membership: `invite.accepted`, and with it the group's news of the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptEvents {
    pub invite: InviteId,
    pub group: GroupId,
    pub invited_by: MemberId,
    /// Who accepts.
    pub member: MemberId,
    /// The invite's role.
    pub role: RoleName,
    /// When the accept happens.
    pub at: DateTime<Utc>,
}

impl AcceptEvents {
    /// The typed events of the accept when storage settled the membership as `membership`:
    /// [`InviteEvent::Accepted`], then [`GroupEvent::MemberJoined`] via
    /// [`JoinedVia::Invite`] (with the role given) when the member joined, or
    /// [`GroupEvent::JoinRequested`] when a join request was added, as the groups domain's
    /// join records them.
    pub fn events(&self, membership: &AcceptedMembership) -> (InviteEvent, Option<GroupEvent>) {
        let accepted = InviteEvent::Accepted {
            invite_id: self.invite,
            group_id: self.group,
            invited_by: self.invited_by,
            member_id: self.member,
            role: self.role.as_str().to_owned(),
        };
        let membership = match membership {
            AcceptedMembership::Joined(role) => Some(GroupEvent::MemberJoined {
                group_id: self.group,
                member_id: self.member,
                role: role.as_str().to_owned(),
                via: JoinedVia::Invite,
            }),
            AcceptedMembership::Requested => {
                Some(GroupEvent::JoinRequested { group_id: self.group, member_id: self.member })
            }
            AcceptedMembership::Unchanged => None,
        };
        (accepted, membership)
    }

    /// The records to store with the accept when storage settled the membership as
    /// `membership` (see [`Self::events`]), in that order.
    pub fn records(&self, membership: &AcceptedMembership) -> Vec<Event> {
        let (accepted, membership) = self.events(membership);
        let mut records = vec![Event::record(&accepted, self.at)];
        records.extend(membership.map(|m| Event::record(&m, self.at)));
        records
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use onboard_kernel::{Email, PhoneNumber};

    use super::*;
    use crate::model::InviteeName;

    fn accept() -> AcceptEvents {
        AcceptEvents {
            invite: InviteId::new(),
            group: GroupId::new(),
            invited_by: MemberId::new(),
            member: MemberId::new(),
            role: RoleName::parse("admin").expect("a role"),
            at: Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("an instant"),
        }
    }

    #[test]
    fn a_created_invite_tells_the_channels_with_the_phone_masked() {
        let at = Utc::now();
        let invite = NewInvite {
            id: InviteId::new(),
            group: GroupId::new(),
            name: InviteeName::parse("Ann Lee").expect("a name"),
            phone: Some(PhoneNumber::parse("+79174445566", None).expect("a phone")),
            email: Some(Email::parse("ann@example.com").expect("an e-mail")),
            role: RoleName::MEMBER,
            invited_by: MemberId::new(),
            created_at: at,
            expires_at: at,
            sms_charge: None,
        };
        let record = Event::record(&InviteEvent::created(&invite), at);
        assert_eq!(record.event_type, "invite.created");
        assert_eq!(record.aggregate_type, "invite");
        assert_eq!(record.aggregate_id, invite.id.as_uuid());
        assert_eq!(record.group, Some(invite.group));
        assert_eq!(record.payload["phone"], "+7******5566");
        assert_eq!(record.payload["email"], "ann@example.com");
        assert_eq!(record.payload["role"], "member");
        assert_eq!(record.payload["invite_id"], invite.id.to_string());
        assert!(!record.payload.to_string().contains("9174445566"));
    }

    #[test]
    fn an_accept_that_joins_records_the_accept_and_the_membership() {
        let accept = accept();
        let joined = AcceptedMembership::Joined(RoleName::MEMBER);
        let records = accept.records(&joined);
        let types: Vec<&str> = records.iter().map(|r| r.event_type.as_str()).collect();
        assert_eq!(types, ["invite.accepted", "group.member_joined"]);
        assert_eq!(records[0].payload["role"], "admin");
        assert_eq!(
            records[1].decode::<GroupEvent>(),
            Some(GroupEvent::MemberJoined {
                group_id: accept.group,
                member_id: accept.member,
                role: "member".to_owned(),
                via: JoinedVia::Invite,
            })
        );
        assert!(records.iter().all(|r| r.occurred_at == accept.at));
    }

    #[test]
    fn an_accept_that_asks_to_join_records_a_join_request() {
        let accept = accept();
        let records = accept.records(&AcceptedMembership::Requested);
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[1].decode::<GroupEvent>(),
            Some(GroupEvent::JoinRequested { group_id: accept.group, member_id: accept.member })
        );
    }

    #[test]
    fn an_accept_that_changes_no_membership_records_the_accept_only() {
        let accept = accept();
        let records = accept.records(&AcceptedMembership::Unchanged);
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].decode::<InviteEvent>(),
            Some(InviteEvent::Accepted {
                invite_id: accept.invite,
                group_id: accept.group,
                invited_by: accept.invited_by,
                member_id: accept.member,
                role: "admin".to_owned(),
            })
        );
    }
}
