//! The events of the members domain: what a sign-up, a profile change or a deletion tells the
//! rest of the system. The use cases in [`crate::MembersService`] decide them; the
//! [`MemberRepository`](crate::ports::MemberRepository) stores them with the change, in its
//! transaction (the outbox). Payloads carry ids and the names of changed fields, never phones,
//! codes or tokens.
//!
//! ```
//! use chrono::Utc;
//! use onboard_kernel::events::Event;
//! use onboard_kernel::MemberId;
//! use onboard_members::events::MemberEvent;
//!
//! let deleted = MemberEvent::Deleted { member_id: MemberId::new() };
//! let record = Event::record(&deleted, Utc::now());
//! assert_eq!(record.event_type, "member.deleted");
//! assert_eq!(record.decode::<MemberEvent>(), Some(deleted));
//! ```

use chrono::{DateTime, Utc};
use onboard_groups::RoleName;
use onboard_groups::events::{GroupEvent, JoinedVia};
use onboard_kernel::events::{Aggregate, DomainEvent, Event};
use onboard_kernel::{GroupId, MemberId};
use serde::{Deserialize, Serialize};

use crate::model::ProfilePatch;
use crate::ports::NewWorkspace;

/// A change to a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum MemberEvent {
    /// A sign-in created the member: referred by `referred_by` when they signed up with a
    /// code, and owning the personal workspace `workspace_id` when one was created with them
    /// (its `group.created` and `group.member_joined` events come with this one).
    #[serde(rename = "member.signed_up")]
    SignedUp { member_id: MemberId, referred_by: Option<MemberId>, workspace_id: Option<GroupId> },
    /// The member changed their profile: the names of the fields the change set
    /// (`first_name`, `last_name`, `email`).
    #[serde(rename = "member.profile_updated")]
    ProfileUpdated { member_id: MemberId, fields: Vec<String> },
    /// The member deleted themself: their phone and e-mail are free, their sessions ended.
    #[serde(rename = "member.deleted")]
    Deleted { member_id: MemberId },
}

impl MemberEvent {
    /// The member the event is about.
    pub const fn member_id(&self) -> MemberId {
        match self {
            Self::SignedUp { member_id, .. }
            | Self::ProfileUpdated { member_id, .. }
            | Self::Deleted { member_id } => *member_id,
        }
    }
}

impl DomainEvent for MemberEvent {
    fn aggregate(&self) -> Aggregate {
        Aggregate::member(self.member_id())
    }

    fn group(&self) -> Option<GroupId> {
        None
    }
}

/// The events of a sign-up that creates member `member_id` (referred by `referred_by`) with
/// the personal workspace `workspace`, if any: `member.signed_up`, then the workspace's
/// `group.created` and `group.member_joined` (the member its owner, `via: created`), as a
/// group created through [`onboard_groups::GroupsService`] tells them.
pub fn signed_up(
    member_id: MemberId,
    referred_by: Option<MemberId>,
    workspace: Option<&NewWorkspace>,
    at: DateTime<Utc>,
) -> Vec<Event> {
    let mut events = vec![Event::record(
        &MemberEvent::SignedUp { member_id, referred_by, workspace_id: workspace.map(|w| w.id) },
        at,
    )];
    if let Some(workspace) = workspace {
        events.extend(Event::records(
            &[
                GroupEvent::Created {
                    group_id: workspace.id,
                    slug: workspace.slug.clone(),
                    name: workspace.name.clone(),
                    owner_id: member_id,
                },
                GroupEvent::MemberJoined {
                    group_id: workspace.id,
                    member_id,
                    role: RoleName::OWNER.as_str().to_owned(),
                    via: JoinedVia::Created,
                },
            ],
            at,
        ));
    }
    events
}

/// `events` with the slug of workspace `workspace` in its `group.created` event replaced by
/// `slug`: for a store that, as the sign-in ports allow, replaced a taken personal-workspace
/// slug by a fresh one, so the stored event names the slug it stored.
pub fn with_workspace_slug(events: &[Event], workspace: GroupId, slug: &str) -> Vec<Event> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(GroupEvent::Created { group_id, .. }) = e.decode::<GroupEvent>()
                && group_id == workspace
                && let Some(fields) = e.payload.as_object_mut()
            {
                fields.insert("slug".to_owned(), serde_json::Value::String(slug.to_owned()));
            }
            e
        })
        .collect()
}

/// The names of the fields `patch` sets, as [`MemberEvent::ProfileUpdated`] lists them.
pub fn patched_fields(patch: &ProfilePatch) -> Vec<String> {
    [
        ("first_name", patch.first_name.is_some()),
        ("last_name", patch.last_name.is_some()),
        ("email", patch.email.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| name.to_owned())
    .collect()
}
