//! Groups in memory: [`GroupRepository`] for [`MemoryStore`].
//!
//! The rules are those of the PostgreSQL adapter. Every call runs under the store's one mutex,
//! so the races storage must settle (two owners demoting each other, an approval and a
//! rejection of one request, concurrent joins, a removal and a current-group change) run one
//! after the other, and the second sees the first. Times are kept to the microsecond, as
//! PostgreSQL keeps them, so that a cursor (which carries microseconds) points exactly at its
//! row.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound as _, Utc};
use onboard_groups::ports::{GroupRepository, JoinRecord, NewGroup};
use onboard_groups::{
    ChangeRoleRefusal, CreateGroupError, Group, GroupCursor, GroupMember, GroupPatch, MemberCursor,
    Membership, MembershipStatus, MyGroup, Permission, RemoveRefusal, Role, RoleName, RoleRefusal,
    SetCurrentGroupError, Slug,
};
use onboard_kernel::events::Event;
use onboard_kernel::{GroupId, MemberId};

use super::{MemoryStore, State};

/// A group with its custom roles and memberships.
#[derive(Debug, Clone)]
pub(super) struct GroupRow {
    pub(super) group: Group,
    /// Custom roles only, by name.
    pub(super) roles: BTreeMap<RoleName, BTreeSet<Permission>>,
    /// Active members and join requests.
    pub(super) members: HashMap<MemberId, MembershipRow>,
}

#[derive(Debug, Clone)]
pub(super) struct MembershipRow {
    pub(super) role: RoleName,
    pub(super) status: MembershipStatus,
    pub(super) joined_at: DateTime<Utc>,
}

impl MembershipRow {
    pub(super) fn is_active(&self) -> bool {
        self.status == MembershipStatus::Active
    }

    fn is_active_owner(&self) -> bool {
        self.is_active() && self.role.is_owner()
    }
}

impl GroupRow {
    /// Active owners other than `member`.
    fn other_owners(&self, member: MemberId) -> usize {
        self.members.iter().filter(|(id, m)| **id != member && m.is_active_owner()).count()
    }

    fn active_members(&self) -> usize {
        self.members.values().filter(|m| m.is_active()).count()
    }
}

/// What a member's deletion does to the groups they are active in.
pub(super) enum GroupsOfDeleted {
    /// The groups in which the member is the only active member, to delete with them.
    Solo(Vec<GroupId>),
    /// The member is the only active owner of a group with other active members.
    LastOwner,
}

/// A time as PostgreSQL keeps it.
pub(super) fn stored(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

impl State {
    /// Stores a group with `owner` as its active owner, joined at its creation.
    ///
    /// # Errors
    /// [`CreateGroupError::SlugTaken`] when another group has the slug; nothing is written.
    pub(super) fn insert_group(
        &mut self,
        group: Group,
        owner: MemberId,
    ) -> Result<Group, CreateGroupError> {
        if self.group_slugs.contains_key(&group.slug) {
            return Err(CreateGroupError::SlugTaken);
        }
        if self.groups.contains_key(&group.id) {
            return Err(anyhow::anyhow!("group id {} already in use", group.id).into());
        }
        if !self.members.contains_key(&owner) {
            return Err(anyhow::anyhow!("the owner {owner} is not a member").into());
        }
        let group = Group { created_at: stored(group.created_at), ..group };
        let owner_row = MembershipRow {
            role: RoleName::OWNER,
            status: MembershipStatus::Active,
            joined_at: group.created_at,
        };
        self.group_slugs.insert(group.slug.clone(), group.id);
        self.groups.insert(
            group.id,
            GroupRow {
                group: group.clone(),
                roles: BTreeMap::new(),
                members: HashMap::from([(owner, owner_row)]),
            },
        );
        Ok(group)
    }

    /// Deletes a group with its roles, memberships and invites and clears it as anyone's
    /// current group; `false` when there is no such group.
    pub(super) fn delete_group(&mut self, id: GroupId) -> bool {
        let Some(row) = self.groups.remove(&id) else {
            return false;
        };
        self.group_slugs.remove(&row.group.slug);
        self.invites.retain(|_, invite| invite.group != id);
        self.webhooks.group_deleted(id);
        for member in self.members.values_mut() {
            if member.current_group == Some(id) {
                member.current_group = None;
            }
        }
        true
    }

    /// The slug of a group.
    pub(super) fn group_slug(&self, id: GroupId) -> Option<&Slug> {
        self.groups.get(&id).map(|g| &g.group.slug)
    }

    /// Whether `a` and `b` are both active members of some group.
    pub(super) fn share_an_active_group(&self, a: MemberId, b: MemberId) -> bool {
        self.groups.values().any(|g| {
            g.members.get(&a).is_some_and(MembershipRow::is_active)
                && g.members.get(&b).is_some_and(MembershipRow::is_active)
        })
    }

    /// What deleting `member` does to the groups they are active in.
    pub(super) fn groups_of_deleted(&self, member: MemberId) -> GroupsOfDeleted {
        let mut solo = Vec::new();
        for (id, g) in &self.groups {
            let Some(mine) = g.members.get(&member).filter(|m| m.is_active()) else {
                continue;
            };
            let active = g.active_members();
            if mine.role.is_owner() && g.other_owners(member) == 0 && active > 1 {
                return GroupsOfDeleted::LastOwner;
            }
            if active <= 1 {
                solo.push(*id);
            }
        }
        GroupsOfDeleted::Solo(solo)
    }

    /// Removes every membership and join request of `member`.
    pub(super) fn remove_memberships(&mut self, member: MemberId) {
        for g in self.groups.values_mut() {
            g.members.remove(&member);
        }
    }

    /// A membership as the group lists it.
    fn group_member(&self, member_id: MemberId, row: &MembershipRow) -> GroupMember {
        let member = self.members.get(&member_id);
        GroupMember {
            member_id,
            first_name: member.and_then(|m| m.first_name.clone()),
            last_name: member.and_then(|m| m.last_name.clone()),
            phone: member.and_then(|m| m.phone.clone()),
            role: row.role.clone(),
            status: row.status,
            joined_at: row.joined_at,
        }
    }
}

#[async_trait]
impl GroupRepository for MemoryStore {
    async fn create(&self, group: &NewGroup, events: &[Event]) -> Result<Group, CreateGroupError> {
        let stored = Group {
            id: group.id,
            slug: group.slug.clone(),
            name: group.name.clone(),
            approval_required: group.approval_required,
            created_at: group.now,
        };
        let mut state = self.state();
        let created = state.insert_group(stored, group.owner)?;
        state.outbox.record(events);
        Ok(created)
    }

    async fn find(&self, group: GroupId) -> anyhow::Result<Option<Group>> {
        Ok(self.state().groups.get(&group).map(|g| g.group.clone()))
    }

    async fn active_members_with_roles(
        &self,
        group: GroupId,
        roles: &[RoleName],
    ) -> anyhow::Result<Vec<MemberId>> {
        let state = self.state();
        let Some(g) = state.groups.get(&group) else {
            return Ok(Vec::new());
        };
        let mut holders: Vec<MemberId> = g
            .members
            .iter()
            .filter(|(_, m)| m.is_active() && roles.contains(&m.role))
            .map(|(id, _)| *id)
            .collect();
        holders.sort();
        Ok(holders)
    }

    async fn find_for_member(
        &self,
        slug: &Slug,
        member: MemberId,
    ) -> anyhow::Result<Option<(Group, Option<Membership>)>> {
        let state = self.state();
        let Some(g) = state.group_slugs.get(slug).and_then(|id| state.groups.get(id)) else {
            return Ok(None);
        };
        let membership = g.members.get(&member).map(|m| Membership {
            role: m.role.clone(),
            status: m.status,
            role_permissions: g.roles.get(&m.role).cloned().unwrap_or_default(),
        });
        Ok(Some((g.group.clone(), membership)))
    }

    async fn list_mine(
        &self,
        member: MemberId,
        after: Option<GroupCursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<(MyGroup, GroupCursor)>> {
        let state = self.state();
        let mut mine: Vec<(DateTime<Utc>, GroupId, &GroupRow, &MembershipRow)> = state
            .groups
            .iter()
            .filter_map(|(id, g)| {
                let m = g.members.get(&member).filter(|m| m.is_active())?;
                Some((m.joined_at, *id, g, m))
            })
            .filter(|(at, id, ..)| after.is_none_or(|a| (*at, *id) > (a.joined_at, a.group_id)))
            .collect();
        mine.sort_by_key(|(at, id, ..)| (*at, *id));
        Ok(mine
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(joined_at, group_id, g, m)| {
                let group = MyGroup { group: g.group.clone(), my_role: m.role.clone() };
                (group, GroupCursor { joined_at, group_id })
            })
            .collect())
    }

    async fn update(&self, group: GroupId, patch: &GroupPatch) -> anyhow::Result<Option<Group>> {
        let mut state = self.state();
        let Some(g) = state.groups.get_mut(&group) else {
            return Ok(None);
        };
        if let Some(name) = &patch.name {
            g.group.name = name.clone();
        }
        if let Some(approval_required) = patch.approval_required {
            g.group.approval_required = approval_required;
        }
        Ok(Some(g.group.clone()))
    }

    async fn delete(&self, group: GroupId, events: &[Event]) -> anyhow::Result<bool> {
        let mut state = self.state();
        let deleted = state.delete_group(group);
        if deleted {
            state.outbox.record(events);
            // The billing lock is taken after this store's, as everywhere.
            self.billing.group_deleted(group);
        }
        Ok(deleted)
    }

    async fn custom_roles(&self, group: GroupId) -> anyhow::Result<Vec<Role>> {
        let state = self.state();
        Ok(state
            .groups
            .get(&group)
            .map(|g| {
                g.roles
                    .iter()
                    .map(|(name, permissions)| Role {
                        name: name.clone(),
                        permissions: permissions.clone(),
                        builtin: false,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn create_role(
        &self,
        group: GroupId,
        name: &RoleName,
        permissions: &BTreeSet<Permission>,
    ) -> Result<Role, RoleRefusal> {
        let mut state = self.state();
        let g = state
            .groups
            .get_mut(&group)
            .ok_or_else(|| anyhow::anyhow!("no group {group} to add a role to"))?;
        if g.roles.contains_key(name) {
            return Err(RoleRefusal::Exists);
        }
        g.roles.insert(name.clone(), permissions.clone());
        Ok(Role { name: name.clone(), permissions: permissions.clone(), builtin: false })
    }

    async fn update_role(
        &self,
        group: GroupId,
        name: &RoleName,
        permissions: &BTreeSet<Permission>,
    ) -> Result<Role, RoleRefusal> {
        let mut state = self.state();
        let stored = state
            .groups
            .get_mut(&group)
            .and_then(|g| g.roles.get_mut(name))
            .ok_or(RoleRefusal::NotFound)?;
        stored.clone_from(permissions);
        Ok(Role { name: name.clone(), permissions: permissions.clone(), builtin: false })
    }

    async fn delete_role(&self, group: GroupId, name: &RoleName) -> Result<(), RoleRefusal> {
        let mut state = self.state();
        let g = state.groups.get_mut(&group).ok_or(RoleRefusal::NotFound)?;
        if g.roles.remove(name).is_none() {
            return Err(RoleRefusal::NotFound);
        }
        for m in g.members.values_mut().filter(|m| m.role == *name) {
            m.role = RoleName::MEMBER;
        }
        Ok(())
    }

    async fn members(
        &self,
        group: GroupId,
        status: MembershipStatus,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<(GroupMember, MemberCursor)>> {
        let state = self.state();
        let Some(g) = state.groups.get(&group) else {
            return Ok(Vec::new());
        };
        let mut listed: Vec<(DateTime<Utc>, MemberId, &MembershipRow)> = g
            .members
            .iter()
            .filter(|(_, m)| m.status == status)
            .map(|(id, m)| (m.joined_at, *id, m))
            .filter(|(at, id, _)| after.is_none_or(|a| (*at, *id) > (a.joined_at, a.member_id)))
            .collect();
        listed.sort_by_key(|(at, id, _)| (*at, *id));
        Ok(listed
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(joined_at, member_id, m)| {
                (state.group_member(member_id, m), MemberCursor { joined_at, member_id })
            })
            .collect())
    }

    async fn member(
        &self,
        group: GroupId,
        member: MemberId,
    ) -> anyhow::Result<Option<GroupMember>> {
        let state = self.state();
        Ok(state
            .groups
            .get(&group)
            .and_then(|g| g.members.get(&member))
            .map(|m| state.group_member(member, m)))
    }

    async fn change_role(
        &self,
        group: GroupId,
        target: MemberId,
        expected: &RoleName,
        role: &RoleName,
        events: &[Event],
    ) -> Result<GroupMember, ChangeRoleRefusal> {
        let mut state = self.state();
        let g = state.groups.get_mut(&group).ok_or(ChangeRoleRefusal::MemberNotFound)?;
        let other_owners = g.other_owners(target);
        let role_known = role.is_builtin() || g.roles.contains_key(role);
        let m = g
            .members
            .get_mut(&target)
            .filter(|m| m.is_active())
            .ok_or(ChangeRoleRefusal::MemberNotFound)?;
        if m.role != *expected {
            return Err(ChangeRoleRefusal::RoleChanged);
        }
        if !role_known {
            return Err(ChangeRoleRefusal::UnknownRole);
        }
        if m.role.is_owner() && !role.is_owner() && other_owners == 0 {
            return Err(ChangeRoleRefusal::LastOwner);
        }
        m.role = role.clone();
        let m = m.clone();
        state.outbox.record(events);
        Ok(state.group_member(target, &m))
    }

    async fn remove(
        &self,
        group: GroupId,
        target: MemberId,
        expected: &RoleName,
        events: &[Event],
    ) -> Result<(), RemoveRefusal> {
        let mut state = self.state();
        let g = state.groups.get_mut(&group).ok_or(RemoveRefusal::MemberNotFound)?;
        let m = g
            .members
            .get(&target)
            .filter(|m| m.is_active())
            .ok_or(RemoveRefusal::MemberNotFound)?;
        if m.role != *expected {
            return Err(RemoveRefusal::RoleChanged);
        }
        if m.role.is_owner() && g.other_owners(target) == 0 {
            return Err(RemoveRefusal::LastOwner);
        }
        g.members.remove(&target);
        if let Some(member) = state.members.get_mut(&target)
            && member.current_group == Some(group)
        {
            member.current_group = None;
        }
        state.outbox.record(events);
        Ok(())
    }

    async fn join(
        &self,
        group: GroupId,
        member: MemberId,
        status: MembershipStatus,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<JoinRecord> {
        let mut state = self.state();
        if !state.members.contains_key(&member) {
            anyhow::bail!("{member} is not a member");
        }
        let g = state.groups.get_mut(&group).ok_or_else(|| anyhow::anyhow!("no group {group}"))?;
        if let Some(existing) = g.members.get(&member) {
            return Ok(match existing.status {
                MembershipStatus::Active => JoinRecord::AlreadyActive,
                MembershipStatus::Pending => JoinRecord::AlreadyPending,
            });
        }
        g.members.insert(
            member,
            MembershipRow { role: RoleName::MEMBER, status, joined_at: stored(now) },
        );
        state.outbox.record(events);
        Ok(JoinRecord::Added)
    }

    async fn approve(
        &self,
        group: GroupId,
        member: MemberId,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<Option<GroupMember>> {
        let mut state = self.state();
        let Some(m) = state
            .groups
            .get_mut(&group)
            .and_then(|g| g.members.get_mut(&member))
            .filter(|m| m.status == MembershipStatus::Pending)
        else {
            return Ok(None);
        };
        *m = MembershipRow {
            role: RoleName::MEMBER,
            status: MembershipStatus::Active,
            joined_at: stored(now),
        };
        let m = m.clone();
        state.outbox.record(events);
        Ok(Some(state.group_member(member, &m)))
    }

    async fn reject(
        &self,
        group: GroupId,
        member: MemberId,
        events: &[Event],
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        let Some(g) = state.groups.get_mut(&group) else {
            return Ok(false);
        };
        if g.members.get(&member).is_some_and(|m| m.status == MembershipStatus::Pending) {
            g.members.remove(&member);
            state.outbox.record(events);
            return Ok(true);
        }
        Ok(false)
    }

    async fn set_current_group(
        &self,
        member: MemberId,
        slug: &Slug,
    ) -> Result<(), SetCurrentGroupError> {
        let mut state = self.state();
        let id = *state.group_slugs.get(slug).ok_or(SetCurrentGroupError::NotFound)?;
        let active = state
            .groups
            .get(&id)
            .and_then(|g| g.members.get(&member))
            .is_some_and(MembershipRow::is_active);
        match state.members.get_mut(&member).filter(|m| m.deleted_at.is_none()) {
            Some(row) if active => {
                row.current_group = Some(id);
                Ok(())
            }
            _ => Err(SetCurrentGroupError::NotAMember),
        }
    }

    async fn clear_current_group(&self, member: MemberId) -> anyhow::Result<()> {
        if let Some(row) = self.state().members.get_mut(&member) {
            row.current_group = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
