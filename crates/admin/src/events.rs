//! The events of platform administration. The use cases in [`crate::AdminService`] decide them;
//! the [`AdminRepository`](crate::ports::AdminRepository) stores them with the change and its
//! audit row, in one transaction (the outbox).
//!
//! ```
//! use chrono::Utc;
//! use onboard_admin::events::AdminEvent;
//! use onboard_kernel::MemberId;
//! use onboard_kernel::events::Event;
//!
//! let unblocked = AdminEvent::MemberUnblocked { member_id: MemberId::new(), by: None };
//! let record = Event::record(&unblocked, Utc::now());
//! assert_eq!(record.event_type, "member.unblocked");
//! assert_eq!(record.decode::<AdminEvent>(), Some(unblocked));
//! ```

use onboard_kernel::events::{Aggregate, DomainEvent};
use onboard_kernel::{GroupId, MemberId};
use serde::{Deserialize, Serialize};

use crate::model::Actor;

/// A platform admin's change to a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum AdminEvent {
    /// The member was blocked (or their block's reason replaced) by admin `by` (`None`: the
    /// command line); their sessions were revoked with it.
    #[serde(rename = "member.blocked")]
    MemberBlocked { member_id: MemberId, by: Option<MemberId>, reason: Option<String> },
    /// The member's block, if any, was lifted by admin `by` (`None`: the command line).
    #[serde(rename = "member.unblocked")]
    MemberUnblocked { member_id: MemberId, by: Option<MemberId> },
}

impl AdminEvent {
    /// The member the event is about.
    pub const fn member_id(&self) -> MemberId {
        match self {
            Self::MemberBlocked { member_id, .. } | Self::MemberUnblocked { member_id, .. } => {
                *member_id
            }
        }
    }
}

impl DomainEvent for AdminEvent {
    fn aggregate(&self) -> Aggregate {
        Aggregate::member(self.member_id())
    }

    fn group(&self) -> Option<GroupId> {
        None
    }
}

/// The admin behind an actor, as events name them.
pub(crate) const fn by(actor: Actor) -> Option<MemberId> {
    match actor {
        Actor::Member(id) => Some(id),
        Actor::Cli => None,
    }
}
