//! Rows as queries return them, and their conversion to domain values.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid};
use onboard_groups::{
    Group, GroupCursor, GroupMember, GroupName, MemberCursor, Membership, MembershipStatus,
    MyGroup, Permission, Role, RoleName, Slug,
};
use onboard_kernel::{Email, GroupId, MemberId, PhoneNumber, ReferralCode, SessionId};
use onboard_members::{Member, MemberCard, Session};

use crate::schema::sessions;

/// A member with their referrer's code (`members m LEFT JOIN members r ON r.id = m.referred_by`).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct MemberRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    pub phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = Text)]
    pub referral_code: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub referred_by_code: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Self {
        Self {
            id: MemberId::from_uuid(row.id),
            phone: row.phone.map(PhoneNumber::from_trusted_e164),
            first_name: row.first_name,
            last_name: row.last_name,
            email: row.email.map(Email::from_trusted),
            referral_code: ReferralCode::from_trusted(row.referral_code),
            referred_by: row.referred_by_code.map(ReferralCode::from_trusted),
            // Queries that know the current group read a [`CurrentMemberRow`].
            current_group: None,
            created_at: row.created_at,
        }
    }
}

/// A member with their referrer's code and the slug of their current group
/// (`... LEFT JOIN groups g ON g.id = m.current_group_id`, `g.slug AS current_group`).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct CurrentMemberRow {
    #[diesel(embed)]
    pub member: MemberRow,
    #[diesel(sql_type = Nullable<Text>)]
    pub current_group: Option<String>,
}

impl From<CurrentMemberRow> for Member {
    fn from(row: CurrentMemberRow) -> Self {
        Self { current_group: row.current_group, ..row.member.into() }
    }
}

/// A member as another member may see them: `full` when they are the viewer or share an
/// active group with them.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct ViewRow {
    #[diesel(embed)]
    pub member: CurrentMemberRow,
    #[diesel(sql_type = Bool)]
    pub full: bool,
}

/// One row of the profile query: the member, the invitee count, and one invitee (if any).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct ProfileRow {
    #[diesel(embed)]
    pub member: CurrentMemberRow,
    #[diesel(sql_type = BigInt)]
    pub invitees_count: i64,
    #[diesel(sql_type = Nullable<Uuid>)]
    pub invitee_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub invitee_first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub invitee_last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub invitee_phone: Option<String>,
}

impl ProfileRow {
    /// The invitee this row carries, if any.
    pub fn invitee(&self) -> Option<MemberCard> {
        self.invitee_id.map(|id| MemberCard {
            id: MemberId::from_uuid(id),
            first_name: self.invitee_first_name.clone(),
            last_name: self.invitee_last_name.clone(),
            phone_masked: self
                .invitee_phone
                .as_deref()
                .map(|p| PhoneNumber::from_trusted_e164(p).masked()),
        })
    }
}

/// A session as its owner sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct SessionRow {
    pub id: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            id: SessionId::from_uuid(row.id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            user_agent: row.user_agent,
        }
    }
}

/// The answer of the rotation statement: what happened to which session.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct RotationRow {
    /// `rotated`, `grace` or `reused`.
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Uuid)]
    pub session_id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    pub member_id: uuid::Uuid,
    /// The slug of the member's current group.
    #[diesel(sql_type = Nullable<Text>)]
    pub current_group: Option<String>,
}

/// A group: `id, slug, name, approval_required, created_at` of `groups`.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct GroupRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub slug: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Bool)]
    pub approval_required: bool,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

impl From<GroupRow> for Group {
    fn from(row: GroupRow) -> Self {
        Self {
            id: GroupId::from_uuid(row.id),
            slug: Slug::from_trusted(row.slug),
            name: GroupName::from_trusted(row.name),
            approval_required: row.approval_required,
            created_at: row.created_at,
        }
    }
}

/// A group with a member's membership in it, if any (`role`, `status` and the stored
/// permissions of the role when it is a custom one).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct GroupMembershipRow {
    #[diesel(embed)]
    pub group: GroupRow,
    #[diesel(sql_type = Nullable<Text>)]
    pub role: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub status: Option<String>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pub role_permissions: Option<Vec<String>>,
}

impl GroupMembershipRow {
    /// The group, and the membership when the row has one.
    pub fn into_domain(self) -> anyhow::Result<(Group, Option<Membership>)> {
        let membership = match (self.role, self.status) {
            (Some(role), Some(status)) => Some(Membership {
                role: RoleName::from_trusted(role),
                status: status_of(&status)?,
                role_permissions: permissions(self.role_permissions.unwrap_or_default()),
            }),
            _ => None,
        };
        Ok((self.group.into(), membership))
    }
}

/// A group as one of its members sees it, with the member's `joined_at` (its list position).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct MyGroupRow {
    #[diesel(embed)]
    pub group: GroupRow,
    #[diesel(sql_type = Text)]
    pub my_role: String,
    #[diesel(sql_type = Timestamptz)]
    pub joined_at: DateTime<Utc>,
}

impl MyGroupRow {
    /// The group and the cursor that points at it.
    pub fn into_domain(self) -> (MyGroup, GroupCursor) {
        let cursor =
            GroupCursor { joined_at: self.joined_at, group_id: GroupId::from_uuid(self.group.id) };
        (
            MyGroup { group: self.group.into(), my_role: RoleName::from_trusted(self.my_role) },
            cursor,
        )
    }
}

/// A membership as the group lists it: `group_members gm JOIN members m`.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct GroupMemberRow {
    #[diesel(sql_type = Uuid)]
    pub member_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    pub first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub phone: Option<String>,
    #[diesel(sql_type = Text)]
    pub role: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Timestamptz)]
    pub joined_at: DateTime<Utc>,
}

impl GroupMemberRow {
    /// The member and the cursor that points at them.
    pub fn into_domain(self) -> anyhow::Result<(GroupMember, MemberCursor)> {
        let member_id = MemberId::from_uuid(self.member_id);
        let cursor = MemberCursor { joined_at: self.joined_at, member_id };
        let member = GroupMember {
            member_id,
            first_name: self.first_name,
            last_name: self.last_name,
            phone: self.phone.map(PhoneNumber::from_trusted_e164),
            role: RoleName::from_trusted(self.role),
            status: status_of(&self.status)?,
            joined_at: self.joined_at,
        };
        Ok((member, cursor))
    }
}

/// A custom role of a group.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct RoleRow {
    pub name: String,
    pub permissions: Vec<String>,
}

impl From<RoleRow> for Role {
    fn from(row: RoleRow) -> Self {
        Self {
            name: RoleName::from_trusted(row.name),
            permissions: permissions(row.permissions),
            builtin: false,
        }
    }
}

/// Stored permission names as a set.
pub(crate) fn permissions(names: Vec<String>) -> BTreeSet<Permission> {
    names.into_iter().map(Permission::from_trusted).collect()
}

/// A stored membership status (the table's check constraint allows only these two).
fn status_of(raw: &str) -> anyhow::Result<MembershipStatus> {
    MembershipStatus::parse(raw)
        .ok_or_else(|| anyhow::anyhow!("unknown membership status {raw:?} in group_members"))
}

/// A member a sign-in found, and whether they are blocked (then no session was opened).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct SignInRow {
    #[diesel(embed)]
    pub member: CurrentMemberRow,
    #[diesel(sql_type = Bool)]
    pub blocked: bool,
}
