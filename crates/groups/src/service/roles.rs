//! Roles: the built-ins and custom roles, with no escalation.

use super::*;

impl GroupsService {
    /// The group's roles: `owner`, `admin` and `member`, then the custom roles in name order.
    /// A custom role shows only the permissions the deployment still knows.
    #[tracing::instrument(level = "debug", name = "groups.roles", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.create_role", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.update_role", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.delete_role", skip_all)]
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
}
