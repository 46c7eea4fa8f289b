//! The current group, and what other domains ask of groups.

use super::*;

impl GroupsService {
    /// Makes the group the member's current group (the `grp` claim of their next access
    /// token). They must be an active member, checked atomically with the change.
    #[tracing::instrument(level = "debug", name = "groups.set_current_group", skip_all)]
    pub async fn set_current_group(
        &self,
        member: MemberId,
        slug: &Slug,
    ) -> Result<(), SetCurrentGroupError> {
        self.repo.set_current_group(member, slug).await
    }

    /// Leaves the member without a current group. Always succeeds (but for storage failures).
    #[tracing::instrument(level = "debug", name = "groups.clear_current_group", skip_all)]
    pub async fn clear_current_group(&self, member: MemberId) -> anyhow::Result<()> {
        self.repo.clear_current_group(member).await
    }

    // -----------------------------------------------------------------------------------------
    // For other domains
    // -----------------------------------------------------------------------------------------

    /// Checks that `member` is an active member of the group holding `permission`, and answers
    /// the group and their role. The gate other domains (invites, billing, messaging) pass
    /// before acting in a group.
    #[tracing::instrument(level = "debug", name = "groups.authorize", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.membership_of", skip_all)]
    pub async fn membership_of(
        &self,
        group: GroupId,
        member: MemberId,
    ) -> anyhow::Result<Option<GroupMember>> {
        self.repo.member(group, member).await
    }

    /// The group with this id, whoever asks; `None` when there is none. For other domains
    /// that hold a group's id (consumers of its events).
    #[tracing::instrument(level = "debug", name = "groups.find_by_id", skip_all)]
    pub async fn find_by_id(&self, group: GroupId) -> anyhow::Result<Option<Group>> {
        self.repo.find(group).await
    }

    /// The active members of the group whose role holds `permission`
    /// ([`PermissionCatalog::roles_holding`]): who decides its join requests
    /// (`members.manage`), who is told of its billing (`billing.manage`).
    #[tracing::instrument(level = "debug", name = "groups.holders_of", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.find_by_slug", skip_all)]
    pub async fn find_by_slug(&self, slug: &Slug) -> anyhow::Result<Option<Group>> {
        // A member id nobody has: storage answers the group with no membership.
        let nobody = MemberId::from_uuid(uuid::Uuid::nil());
        Ok(self.repo.find_for_member(slug, nobody).await?.map(|(group, _)| group))
    }

    /// Checks that a member holding `granter` in `group` may hand out `role` (by an invite, for
    /// instance), and answers the role with its permissions. `owner` is granted only by an
    /// owner; a role holding a permission the granter lacks is not theirs to give.
    #[tracing::instrument(level = "debug", name = "groups.grantable_role", skip_all)]
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
}
