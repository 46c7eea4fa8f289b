//! The events of the groups domain: what a change to a group or its memberships tells the
//! rest of the system. The use cases in [`crate::GroupsService`] decide them; the
//! [`GroupRepository`](crate::ports::GroupRepository) stores them with the change, in its
//! transaction (the outbox). Consumers act on them: the notifications domain tells the members
//! concerned, outgoing webhooks tell other services.
//!
//! ```
//! use chrono::Utc;
//! use onboard_groups::events::GroupEvent;
//! use onboard_kernel::events::Event;
//! use onboard_kernel::{GroupId, MemberId};
//!
//! let joined = GroupEvent::JoinRequested { group_id: GroupId::new(), member_id: MemberId::new() };
//! let record = Event::record(&joined, Utc::now());
//! assert_eq!(record.event_type, "group.join_requested");
//! assert_eq!(record.decode::<GroupEvent>(), Some(joined));
//! ```

use onboard_kernel::events::{Aggregate, DomainEvent};
use onboard_kernel::{GroupId, MemberId};
use serde::{Deserialize, Serialize};

/// How a member came to be an active member of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JoinedVia {
    /// They created the group.
    Created,
    /// They joined a group that needs no approval.
    Join,
    /// Their join request was approved.
    Approval,
    /// They accepted an invite.
    Invite,
}

/// A change to a group or its memberships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum GroupEvent {
    /// A group was created, with `owner_id` its first owner.
    #[serde(rename = "group.created")]
    Created { group_id: GroupId, slug: String, name: String, owner_id: MemberId },
    /// A group was deleted with its memberships and roles.
    #[serde(rename = "group.deleted")]
    Deleted { group_id: GroupId, slug: String, by: MemberId },
    /// A member became an active member.
    #[serde(rename = "group.member_joined")]
    MemberJoined { group_id: GroupId, member_id: MemberId, role: String, via: JoinedVia },
    /// A member asked to join a group that needs approval; those holding `members.manage`
    /// decide.
    #[serde(rename = "group.join_requested")]
    JoinRequested { group_id: GroupId, member_id: MemberId },
    /// A join request was approved by `by`.
    #[serde(rename = "group.join_approved")]
    JoinApproved { group_id: GroupId, member_id: MemberId, by: MemberId },
    /// A join request was rejected (deleted) by `by`.
    #[serde(rename = "group.join_rejected")]
    JoinRejected { group_id: GroupId, member_id: MemberId, by: MemberId },
    /// An active member's role changed from `from` to `to`.
    #[serde(rename = "group.member_role_changed")]
    MemberRoleChanged {
        group_id: GroupId,
        member_id: MemberId,
        from: String,
        to: String,
        by: MemberId,
    },
    /// An active member was removed by `by` (`by == member_id`: they left).
    #[serde(rename = "group.member_removed")]
    MemberRemoved { group_id: GroupId, member_id: MemberId, role: String, by: MemberId },
}

impl GroupEvent {
    /// The group the event is about.
    pub const fn group_id(&self) -> GroupId {
        match self {
            Self::Created { group_id, .. }
            | Self::Deleted { group_id, .. }
            | Self::MemberJoined { group_id, .. }
            | Self::JoinRequested { group_id, .. }
            | Self::JoinApproved { group_id, .. }
            | Self::JoinRejected { group_id, .. }
            | Self::MemberRoleChanged { group_id, .. }
            | Self::MemberRemoved { group_id, .. } => *group_id,
        }
    }
}

impl DomainEvent for GroupEvent {
    fn aggregate(&self) -> Aggregate {
        Aggregate::group(self.group_id())
    }

    fn group(&self) -> Option<GroupId> {
        Some(self.group_id())
    }
}
