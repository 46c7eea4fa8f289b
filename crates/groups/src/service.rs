//! The groups use cases.
//!
//! Every permission and owner-only decision is made here, from the caller's membership as
//! storage answers it at the start of the call; storage then settles atomically what only it
//! can (see [`crate::ports`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use onboard_kernel::events::Event;
use onboard_kernel::{Clock, GroupId, MemberId};

use crate::config::GroupsConfig;
use crate::error::{
    AuthorizeError, ChangeRoleError, ChangeRoleRefusal, CreateGroupError, CreateRoleError,
    DecideRequestError, DeleteGroupError, DeleteRoleError, GrantRoleError, JoinError,
    ListMembersError, RemoveMemberError, RemoveRefusal, RoleRefusal, SetCurrentGroupError,
    UpdateGroupError, UpdateRoleError, ViewGroupError,
};
use crate::events::{GroupEvent, JoinedVia};
use crate::model::{
    CreateGroup, Group, GroupCursor, GroupMember, GroupPatch, MemberCursor, MembershipStatus,
    MyGroup, Page, Permission, PermissionCatalog, Role, RoleName, Slug, Standing,
};
use crate::ports::{GroupRepository, JoinRecord, NewGroup};

/// How many derived slugs a create tries before answering `slug_taken`.
const SLUG_ATTEMPTS: usize = 3;

/// How many times a role change or removal is judged again when the target's role changed
/// under it, before giving up with an unexpected error.
const JUDGE_ATTEMPTS: usize = 3;

/// Groups, roles, memberships, join requests and the current group.
#[derive(Clone)]
pub struct GroupsService {
    repo: Arc<dyn GroupRepository>,
    catalog: Arc<PermissionCatalog>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for GroupsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupsService").field("catalog", &self.catalog).finish_non_exhaustive()
    }
}

/// An active member's standing in a group, as a use case judges it.
struct Access {
    group: Group,
    role: RoleName,
    permissions: BTreeSet<Permission>,
}

impl Access {
    fn holds(&self, permission: &Permission) -> bool {
        self.permissions.contains(permission)
    }

    fn is_owner(&self) -> bool {
        self.role.is_owner()
    }
}

/// Whether a role is within an actor's reach: it holds no permission the actor lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Within,
    Beyond,
    /// The group has no such role.
    Unknown,
}

/// The custom roles of one group, read from storage at most once (until [`Self::forget`]).
struct RoleBook<'a> {
    repo: &'a dyn GroupRepository,
    catalog: &'a PermissionCatalog,
    group: GroupId,
    custom: Option<Vec<Role>>,
}

impl RoleBook<'_> {
    /// What `role` allows in this group; `None` when the group has no such role.
    async fn permissions(
        &mut self,
        role: &RoleName,
    ) -> anyhow::Result<Option<BTreeSet<Permission>>> {
        if role.is_builtin() {
            return Ok(Some(self.catalog.permissions_of(role, &BTreeSet::new())));
        }
        if self.custom.is_none() {
            self.custom = Some(self.repo.custom_roles(self.group).await?);
        }
        Ok(self
            .custom
            .iter()
            .flatten()
            .find(|r| r.name == *role)
            .map(|r| self.catalog.permissions_of(role, &r.permissions)))
    }

    fn forget(&mut self) {
        self.custom = None;
    }
}

impl GroupsService {
    /// The largest page a list answers.
    pub const MAX_PAGE: u32 = 100;
    /// The page size when the client names none.
    pub const DEFAULT_PAGE: u32 = 20;

    pub fn new(
        repo: Arc<dyn GroupRepository>,
        config: GroupsConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { repo, catalog: Arc::new(config.catalog()), clock }
    }

    /// The permissions of this deployment.
    pub fn catalog(&self) -> &PermissionCatalog {
        &self.catalog
    }

    // -----------------------------------------------------------------------------------------
    // Groups
    // -----------------------------------------------------------------------------------------

    /// Creates a group with the caller as its active owner. A slug asked for is used as it is
    /// (taken: [`CreateGroupError::SlugTaken`]); without one, a slug is derived from the name,
    /// and a derived slug that happens to be taken is replaced by a fresh one, a few times.
    pub async fn create_group(
        &self,
        caller: MemberId,
        request: CreateGroup,
    ) -> Result<MyGroup, CreateGroupError> {
        let derived = request.slug.is_none();
        let mut group = NewGroup {
            id: GroupId::new(),
            slug: request.slug.unwrap_or_else(|| Slug::from_name(request.name.as_str())),
            name: request.name,
            approval_required: request.approval_required,
            owner: caller,
            now: self.clock.now(),
        };
        let mut attempt = 1;
        loop {
            let created = GroupEvent::Created {
                group_id: group.id,
                slug: group.slug.as_str().to_owned(),
                name: group.name.as_str().to_owned(),
                owner_id: caller,
            };
            let joined = GroupEvent::MemberJoined {
                group_id: group.id,
                member_id: caller,
                role: RoleName::OWNER.as_str().to_owned(),
                via: JoinedVia::Created,
            };
            let events = Event::records(&[created, joined], group.now);
            match self.repo.create(&group, &events).await {
                Ok(group) => return Ok(MyGroup { group, my_role: RoleName::OWNER }),
                Err(CreateGroupError::SlugTaken) if derived && attempt < SLUG_ATTEMPTS => {
                    attempt += 1;
                    group.slug = Slug::from_name(group.name.as_str());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A page of the groups the caller is an active member of, in join order; `limit` is
    /// clamped to 1..=100.
    pub async fn my_groups(
        &self,
        caller: MemberId,
        after: Option<GroupCursor>,
        limit: u32,
    ) -> anyhow::Result<Page<MyGroup>> {
        let limit = clamp_page(limit);
        // One more than asked tells whether another page follows, without a count query.
        let rows = self.repo.list_mine(caller, after, limit + 1).await?;
        Ok(page(rows, limit, GroupCursor::encode))
    }

    /// The group as the caller, an active member, sees it.
    pub async fn group(&self, slug: &Slug, caller: MemberId) -> Result<MyGroup, ViewGroupError> {
        let access = self.access(slug, caller).await?.ok_or(ViewGroupError::NotFound)?;
        Ok(MyGroup { group: access.group, my_role: access.role })
    }

    /// Changes the group's name or `approval_required`; needs `group.manage`. An empty patch
    /// changes nothing and answers the group.
    pub async fn update_group(
        &self,
        slug: &Slug,
        caller: MemberId,
        patch: &GroupPatch,
    ) -> Result<MyGroup, UpdateGroupError> {
        let access = self.access(slug, caller).await?.ok_or(UpdateGroupError::NotFound)?;
        if !access.holds(&Permission::GROUP_MANAGE) {
            return Err(UpdateGroupError::Forbidden);
        }
        if patch.is_empty() {
            return Ok(MyGroup { group: access.group, my_role: access.role });
        }
        let group =
            self.repo.update(access.group.id, patch).await?.ok_or(UpdateGroupError::NotFound)?;
        Ok(MyGroup { group, my_role: access.role })
    }

    /// Deletes the group, its memberships and roles; whoever had it as current group has none
    /// after. Owner only.
    pub async fn delete_group(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<(), DeleteGroupError> {
        let access = self.access(slug, caller).await?.ok_or(DeleteGroupError::NotFound)?;
        if !access.is_owner() {
            return Err(DeleteGroupError::Forbidden);
        }
        let deleted = GroupEvent::Deleted {
            group_id: access.group.id,
            slug: access.group.slug.as_str().to_owned(),
            by: caller,
        };
        let events = Event::records(&[deleted], self.clock.now());
        if self.repo.delete(access.group.id, &events).await? {
            Ok(())
        } else {
            Err(DeleteGroupError::NotFound)
        }
    }

    /// The caller's role, permissions and status in the group. A pending caller gets their
    /// role with no permission and `pending`; anyone else without a membership, not found.
    pub async fn standing(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<Standing, ViewGroupError> {
        let (_, membership) =
            self.repo.find_for_member(slug, caller).await?.ok_or(ViewGroupError::NotFound)?;
        let membership = membership.ok_or(ViewGroupError::NotFound)?;
        let permissions = match membership.status {
            MembershipStatus::Active => {
                self.catalog.permissions_of(&membership.role, &membership.role_permissions)
            }
            MembershipStatus::Pending => BTreeSet::new(),
        };
        Ok(Standing { role: membership.role, permissions, status: membership.status })
    }

    // -----------------------------------------------------------------------------------------
    // Roles
    // -----------------------------------------------------------------------------------------

    /// The group's roles: `owner`, `admin` and `member`, then the custom roles in name order.
    /// A custom role shows only the permissions the deployment still knows.
    pub async fn roles(&self, slug: &Slug, caller: MemberId) -> Result<Vec<Role>, ViewGroupError> {
        let access = self.access(slug, caller).await?.ok_or(ViewGroupError::NotFound)?;
        let custom = self.repo.custom_roles(access.group.id).await?;
        let empty = BTreeSet::new();
        let mut roles: Vec<Role> = RoleName::BUILTIN
            .into_iter()
            .map(|name| Role {
                permissions: self.catalog.permissions_of(&name, &empty),
                name,
                builtin: true,
            })
            .collect();
        let mut custom: Vec<Role> = custom
            .into_iter()
            .map(|r| Role {
                permissions: self.catalog.permissions_of(&r.name, &r.permissions),
                name: r.name,
                builtin: false,
            })
            .collect();
        custom.sort_by(|a, b| a.name.cmp(&b.name));
        roles.append(&mut custom);
        Ok(roles)
    }

    /// Adds a custom role; needs `group.manage`, and every permission it holds must be the
    /// caller's own. `permissions` are names as the client sent them.
    pub async fn create_role<I>(
        &self,
        slug: &Slug,
        caller: MemberId,
        name: &RoleName,
        permissions: I,
    ) -> Result<Role, CreateRoleError>
    where
        I: IntoIterator + Send,
        I::Item: AsRef<str>,
    {
        let access = self.access(slug, caller).await?.ok_or(CreateRoleError::NotFound)?;
        if !access.holds(&Permission::GROUP_MANAGE) {
            return Err(CreateRoleError::Forbidden);
        }
        if name.is_builtin() {
            return Err(CreateRoleError::RoleBuiltin);
        }
        let permissions = self
            .catalog
            .parse_set(permissions)
            .map_err(|e| CreateRoleError::UnknownPermission(e.0))?;
        if !permissions.is_subset(&access.permissions) {
            return Err(CreateRoleError::Forbidden);
        }
        match self.repo.create_role(access.group.id, name, &permissions).await {
            Ok(role) => Ok(role),
            Err(RoleRefusal::Exists) => Err(CreateRoleError::RoleExists),
            Err(RoleRefusal::NotFound) => Err(CreateRoleError::NotFound),
            Err(RoleRefusal::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Replaces a custom role's permissions; needs `group.manage`, and both what the role holds
    /// and what it will hold must be within the caller's own permissions.
    pub async fn update_role<I>(
        &self,
        slug: &Slug,
        caller: MemberId,
        name: &RoleName,
        permissions: I,
    ) -> Result<Role, UpdateRoleError>
    where
        I: IntoIterator + Send,
        I::Item: AsRef<str>,
    {
        let access = self.access(slug, caller).await?.ok_or(UpdateRoleError::NotFound)?;
        if !access.holds(&Permission::GROUP_MANAGE) {
            return Err(UpdateRoleError::Forbidden);
        }
        if name.is_builtin() {
            return Err(UpdateRoleError::RoleBuiltin);
        }
        let permissions = self
            .catalog
            .parse_set(permissions)
            .map_err(|e| UpdateRoleError::UnknownPermission(e.0))?;
        if !permissions.is_subset(&access.permissions) {
            return Err(UpdateRoleError::Forbidden);
        }
        match self.reach(&access, &mut self.role_book(&access), name).await? {
            Reach::Within => {}
            Reach::Beyond => return Err(UpdateRoleError::Forbidden),
            Reach::Unknown => return Err(UpdateRoleError::RoleNotFound),
        }
        match self.repo.update_role(access.group.id, name, &permissions).await {
            Ok(role) => Ok(role),
            Err(RoleRefusal::NotFound | RoleRefusal::Exists) => Err(UpdateRoleError::RoleNotFound),
            Err(RoleRefusal::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Deletes a custom role; its members become `member`. Needs `group.manage`, and the role
    /// must hold no permission beyond the caller's own.
    pub async fn delete_role(
        &self,
        slug: &Slug,
        caller: MemberId,
        name: &RoleName,
    ) -> Result<(), DeleteRoleError> {
        let access = self.access(slug, caller).await?.ok_or(DeleteRoleError::NotFound)?;
        if !access.holds(&Permission::GROUP_MANAGE) {
            return Err(DeleteRoleError::Forbidden);
        }
        if name.is_builtin() {
            return Err(DeleteRoleError::RoleBuiltin);
        }
        match self.reach(&access, &mut self.role_book(&access), name).await? {
            Reach::Within => {}
            Reach::Beyond => return Err(DeleteRoleError::Forbidden),
            Reach::Unknown => return Err(DeleteRoleError::RoleNotFound),
        }
        match self.repo.delete_role(access.group.id, name).await {
            Ok(()) => Ok(()),
            Err(RoleRefusal::NotFound | RoleRefusal::Exists) => Err(DeleteRoleError::RoleNotFound),
            Err(RoleRefusal::Unexpected(e)) => Err(e.into()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Members
    // -----------------------------------------------------------------------------------------

    /// A page of the group's members with `status`, in join order; `limit` is clamped to
    /// 1..=100. Any active member sees the active members; pending ones (join requests) need
    /// `members.manage`.
    pub async fn members(
        &self,
        slug: &Slug,
        caller: MemberId,
        status: MembershipStatus,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> Result<Page<GroupMember>, ListMembersError> {
        let access = self.access(slug, caller).await?.ok_or(ListMembersError::NotFound)?;
        if status == MembershipStatus::Pending && !access.holds(&Permission::MEMBERS_MANAGE) {
            return Err(ListMembersError::Forbidden);
        }
        let limit = clamp_page(limit);
        let rows = self.repo.members(access.group.id, status, after, limit + 1).await?;
        Ok(page(rows, limit, MemberCursor::encode))
    }

    /// A page of the group's join requests, oldest first; needs `members.manage`.
    pub async fn join_requests(
        &self,
        slug: &Slug,
        caller: MemberId,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> Result<Page<GroupMember>, ListMembersError> {
        self.members(slug, caller, MembershipStatus::Pending, after, limit).await
    }

    /// Gives an active member another role. Needs `members.manage`; nobody changes their own
    /// role; granting `owner`, or changing an owner's role, needs the caller to be an owner;
    /// neither the new role nor the target's present one may hold a permission the caller
    /// lacks; the last owner stays an owner.
    pub async fn change_role(
        &self,
        slug: &Slug,
        caller: MemberId,
        target: MemberId,
        role: &RoleName,
    ) -> Result<GroupMember, ChangeRoleError> {
        let access = self.access(slug, caller).await?.ok_or(ChangeRoleError::NotFound)?;
        if !access.holds(&Permission::MEMBERS_MANAGE) {
            return Err(ChangeRoleError::Forbidden);
        }
        if target == caller {
            return Err(ChangeRoleError::CannotChangeOwnRole);
        }
        if role.is_owner() && !access.is_owner() {
            return Err(ChangeRoleError::Forbidden);
        }
        let mut book = self.role_book(&access);
        match self.reach(&access, &mut book, role).await? {
            Reach::Within => {}
            Reach::Beyond => return Err(ChangeRoleError::Forbidden),
            Reach::Unknown => return Err(ChangeRoleError::UnknownRole),
        }
        for _ in 0..JUDGE_ATTEMPTS {
            let current = self
                .repo
                .member(access.group.id, target)
                .await?
                .filter(|m| m.status == MembershipStatus::Active)
                .ok_or(ChangeRoleError::MemberNotFound)?;
            if current.role.is_owner() && !access.is_owner() {
                return Err(ChangeRoleError::Forbidden);
            }
            // A custom role deleted meanwhile is `member` by now: the change below says so.
            if self.reach(&access, &mut book, &current.role).await? == Reach::Beyond {
                return Err(ChangeRoleError::Forbidden);
            }
            let mut events = Vec::new();
            if current.role != *role {
                let changed = GroupEvent::MemberRoleChanged {
                    group_id: access.group.id,
                    member_id: target,
                    from: current.role.as_str().to_owned(),
                    to: role.as_str().to_owned(),
                    by: caller,
                };
                events.push(Event::record(&changed, self.clock.now()));
            }
            let group = access.group.id;
            match self.repo.change_role(group, target, &current.role, role, &events).await {
                Ok(member) => return Ok(member),
                Err(ChangeRoleRefusal::RoleChanged) => book.forget(),
                Err(ChangeRoleRefusal::MemberNotFound) => {
                    return Err(ChangeRoleError::MemberNotFound);
                }
                Err(ChangeRoleRefusal::UnknownRole) => return Err(ChangeRoleError::UnknownRole),
                Err(ChangeRoleRefusal::LastOwner) => return Err(ChangeRoleError::LastOwner),
                Err(ChangeRoleRefusal::Unexpected(e)) => return Err(e.into()),
            }
        }
        Err(anyhow::anyhow!("the member's role kept changing during {JUDGE_ATTEMPTS} attempts")
            .into())
    }

    /// Removes an active member from the group; removing oneself is leaving. Leaving needs no
    /// permission; removing another needs `members.manage`, removing an owner needs the caller
    /// to be an owner, and a member whose role holds a permission the caller lacks is out of
    /// reach. The last owner can neither be removed nor leave. The removed member's current
    /// group is cleared if it was this one.
    pub async fn remove_member(
        &self,
        slug: &Slug,
        caller: MemberId,
        target: MemberId,
    ) -> Result<(), RemoveMemberError> {
        let access = self.access(slug, caller).await?.ok_or(RemoveMemberError::NotFound)?;
        let leaving = target == caller;
        if !leaving && !access.holds(&Permission::MEMBERS_MANAGE) {
            return Err(RemoveMemberError::Forbidden);
        }
        let mut book = self.role_book(&access);
        for _ in 0..JUDGE_ATTEMPTS {
            let current = self
                .repo
                .member(access.group.id, target)
                .await?
                .filter(|m| m.status == MembershipStatus::Active)
                .ok_or(RemoveMemberError::MemberNotFound)?;
            if !leaving {
                if current.role.is_owner() && !access.is_owner() {
                    return Err(RemoveMemberError::Forbidden);
                }
                if self.reach(&access, &mut book, &current.role).await? == Reach::Beyond {
                    return Err(RemoveMemberError::Forbidden);
                }
            }
            let removed = GroupEvent::MemberRemoved {
                group_id: access.group.id,
                member_id: target,
                role: current.role.as_str().to_owned(),
                by: caller,
            };
            let events = Event::records(&[removed], self.clock.now());
            match self.repo.remove(access.group.id, target, &current.role, &events).await {
                Ok(()) => return Ok(()),
                Err(RemoveRefusal::RoleChanged) => book.forget(),
                Err(RemoveRefusal::MemberNotFound) => {
                    return Err(RemoveMemberError::MemberNotFound);
                }
                Err(RemoveRefusal::LastOwner) => return Err(RemoveMemberError::LastOwner),
                Err(RemoveRefusal::Unexpected(e)) => return Err(e.into()),
            }
        }
        Err(anyhow::anyhow!("the member's role kept changing during {JUDGE_ATTEMPTS} attempts")
            .into())
    }

    /// The caller leaves the group: [`Self::remove_member`] of themself.
    pub async fn leave(&self, slug: &Slug, caller: MemberId) -> Result<(), RemoveMemberError> {
        self.remove_member(slug, caller, caller).await
    }

    // -----------------------------------------------------------------------------------------
    // Joining
    // -----------------------------------------------------------------------------------------

    /// Asks to join the group: active as `member` at once, or pending when the group requires
    /// approval. Asking again while pending answers pending again and changes nothing.
    pub async fn join(&self, slug: &Slug, caller: MemberId) -> Result<MembershipStatus, JoinError> {
        let (group, membership) =
            self.repo.find_for_member(slug, caller).await?.ok_or(JoinError::NotFound)?;
        match membership.map(|m| m.status) {
            Some(MembershipStatus::Active) => return Err(JoinError::AlreadyMember),
            Some(MembershipStatus::Pending) => return Ok(MembershipStatus::Pending),
            None => {}
        }
        let status = if group.approval_required {
            MembershipStatus::Pending
        } else {
            MembershipStatus::Active
        };
        let now = self.clock.now();
        let event = match status {
            MembershipStatus::Pending => {
                GroupEvent::JoinRequested { group_id: group.id, member_id: caller }
            }
            MembershipStatus::Active => GroupEvent::MemberJoined {
                group_id: group.id,
                member_id: caller,
                role: RoleName::MEMBER.as_str().to_owned(),
                via: JoinedVia::Join,
            },
        };
        let events = Event::records(&[event], now);
        match self.repo.join(group.id, caller, status, now, &events).await? {
            JoinRecord::Added => Ok(status),
            JoinRecord::AlreadyActive => Err(JoinError::AlreadyMember),
            JoinRecord::AlreadyPending => Ok(MembershipStatus::Pending),
        }
    }

    /// Approves a member's join request: they become an active `member`. Needs
    /// `members.manage`. Of an approval and a rejection of one request, exactly one wins.
    pub async fn approve(
        &self,
        slug: &Slug,
        caller: MemberId,
        target: MemberId,
    ) -> Result<GroupMember, DecideRequestError> {
        let access = self.deciding(slug, caller).await?;
        let (group_id, now) = (access.group.id, self.clock.now());
        let approved = GroupEvent::JoinApproved { group_id, member_id: target, by: caller };
        let joined = GroupEvent::MemberJoined {
            group_id,
            member_id: target,
            role: RoleName::MEMBER.as_str().to_owned(),
            via: JoinedVia::Approval,
        };
        let events = Event::records(&[approved, joined], now);
        self.repo
            .approve(group_id, target, now, &events)
            .await?
            .ok_or(DecideRequestError::RequestNotFound)
    }

    /// Rejects a member's join request: it is deleted. Needs `members.manage`.
    pub async fn reject(
        &self,
        slug: &Slug,
        caller: MemberId,
        target: MemberId,
    ) -> Result<(), DecideRequestError> {
        let access = self.deciding(slug, caller).await?;
        let group_id = access.group.id;
        let rejected = GroupEvent::JoinRejected { group_id, member_id: target, by: caller };
        let events = Event::records(&[rejected], self.clock.now());
        if self.repo.reject(group_id, target, &events).await? {
            Ok(())
        } else {
            Err(DecideRequestError::RequestNotFound)
        }
    }

    // -----------------------------------------------------------------------------------------
    // Current group
    // -----------------------------------------------------------------------------------------

    /// Makes the group the member's current group (the `grp` claim of their next access
    /// token). They must be an active member, checked atomically with the change.
    pub async fn set_current_group(
        &self,
        member: MemberId,
        slug: &Slug,
    ) -> Result<(), SetCurrentGroupError> {
        self.repo.set_current_group(member, slug).await
    }

    /// Leaves the member without a current group. Always succeeds (but for storage failures).
    pub async fn clear_current_group(&self, member: MemberId) -> anyhow::Result<()> {
        self.repo.clear_current_group(member).await
    }

    // -----------------------------------------------------------------------------------------
    // For other domains
    // -----------------------------------------------------------------------------------------

    /// Checks that `member` is an active member of the group holding `permission`, and answers
    /// the group and their role. The gate other domains (invites, billing, messaging) pass
    /// before acting in a group.
    pub async fn authorize(
        &self,
        slug: &Slug,
        member: MemberId,
        permission: &Permission,
    ) -> Result<(Group, RoleName), AuthorizeError> {
        let access = self.access(slug, member).await?.ok_or(AuthorizeError::NotFound)?;
        if access.holds(permission) {
            Ok((access.group, access.role))
        } else {
            Err(AuthorizeError::Forbidden(permission.clone()))
        }
    }

    /// `member`'s membership in the group (active or pending), whoever asks; `None` when they
    /// have none. For consumers of the group's events (the name a notification shows).
    pub async fn membership_of(
        &self,
        group: GroupId,
        member: MemberId,
    ) -> anyhow::Result<Option<GroupMember>> {
        self.repo.member(group, member).await
    }

    /// The group with this id, whoever asks; `None` when there is none. For other domains
    /// that hold a group's id (consumers of its events).
    pub async fn find_by_id(&self, group: GroupId) -> anyhow::Result<Option<Group>> {
        self.repo.find(group).await
    }

    /// The active members of the group whose role holds `permission`
    /// ([`PermissionCatalog::roles_holding`]): who decides its join requests
    /// (`members.manage`), who is told of its billing (`billing.manage`).
    pub async fn holders_of(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> anyhow::Result<Vec<MemberId>> {
        let custom = self.repo.custom_roles(group).await?;
        let roles = self.catalog.roles_holding(permission, &custom);
        self.repo.active_members_with_roles(group, &roles).await
    }

    /// The group with this slug, for callers authenticated by other means than a membership
    /// (a service token); `None` when no group has it. Makes no permission decision.
    pub async fn find_by_slug(&self, slug: &Slug) -> anyhow::Result<Option<Group>> {
        // A member id nobody has: storage answers the group with no membership.
        let nobody = MemberId::from_uuid(uuid::Uuid::nil());
        Ok(self.repo.find_for_member(slug, nobody).await?.map(|(group, _)| group))
    }

    /// Checks that a member holding `granter` in `group` may hand out `role` (by an invite, for
    /// instance), and answers the role with its permissions. `owner` is granted only by an
    /// owner; a role holding a permission the granter lacks is not theirs to give.
    pub async fn grantable_role(
        &self,
        group: &Group,
        granter: &RoleName,
        role: &RoleName,
    ) -> Result<Role, GrantRoleError> {
        let mut book = RoleBook {
            repo: self.repo.as_ref(),
            catalog: &self.catalog,
            group: group.id,
            custom: None,
        };
        let permissions = book.permissions(role).await?.ok_or(GrantRoleError::UnknownRole)?;
        if role.is_owner() && !granter.is_owner() {
            return Err(GrantRoleError::Forbidden);
        }
        // A granter whose own custom role vanished meanwhile holds nothing.
        let held = book.permissions(granter).await?.unwrap_or_default();
        if !permissions.is_subset(&held) {
            return Err(GrantRoleError::Forbidden);
        }
        Ok(Role { name: role.clone(), permissions, builtin: role.is_builtin() })
    }

    // -----------------------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------------------

    /// The caller's standing in the group when they are an ACTIVE member of it; `None` when
    /// the group is unknown, they have no membership, or it is pending.
    async fn access(&self, slug: &Slug, member: MemberId) -> anyhow::Result<Option<Access>> {
        let Some((group, Some(membership))) = self.repo.find_for_member(slug, member).await? else {
            return Ok(None);
        };
        if membership.status != MembershipStatus::Active {
            return Ok(None);
        }
        let permissions =
            self.catalog.permissions_of(&membership.role, &membership.role_permissions);
        Ok(Some(Access { group, role: membership.role, permissions }))
    }

    /// The caller's standing, when they may decide join requests.
    async fn deciding(&self, slug: &Slug, caller: MemberId) -> Result<Access, DecideRequestError> {
        let access = self.access(slug, caller).await?.ok_or(DecideRequestError::NotFound)?;
        if access.holds(&Permission::MEMBERS_MANAGE) {
            Ok(access)
        } else {
            Err(DecideRequestError::Forbidden)
        }
    }

    fn role_book(&self, access: &Access) -> RoleBook<'_> {
        RoleBook {
            repo: self.repo.as_ref(),
            catalog: &self.catalog,
            group: access.group.id,
            custom: None,
        }
    }

    /// Whether `role` holds no permission beyond the actor's. An actor holding every permission
    /// of the deployment reaches every role without a look at storage (whether a custom role
    /// exists is then storage's answer to the write).
    async fn reach(
        &self,
        actor: &Access,
        book: &mut RoleBook<'_>,
        role: &RoleName,
    ) -> anyhow::Result<Reach> {
        if self.catalog.all().is_subset(&actor.permissions) {
            return Ok(Reach::Within);
        }
        Ok(match book.permissions(role).await? {
            None => Reach::Unknown,
            Some(p) if p.is_subset(&actor.permissions) => Reach::Within,
            Some(_) => Reach::Beyond,
        })
    }
}

fn clamp_page(limit: u32) -> u32 {
    limit.clamp(1, GroupsService::MAX_PAGE)
}

/// The first `limit` rows as a page; a cursor to the last of them when more rows came.
fn page<T, C>(mut rows: Vec<(T, C)>, limit: u32, encode: impl Fn(&C) -> String) -> Page<T> {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more { rows.last().map(|(_, c)| encode(c)) } else { None };
    Page { items: rows.into_iter().map(|(item, _)| item).collect(), next_cursor }
}

#[cfg(test)]
mod tests;
