//! Groups: create, read, update, delete.

use super::*;

impl GroupsService {
    /// Creates a group with the caller as its active owner. A slug asked for is used as it is
    /// (taken: [`CreateGroupError::SlugTaken`]); without one, a slug is derived from the name,
    /// and a derived slug that happens to be taken is replaced by a fresh one, a few times.
    #[tracing::instrument(level = "debug", name = "groups.create_group", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.my_groups", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.group", skip_all)]
    pub async fn group(&self, slug: &Slug, caller: MemberId) -> Result<MyGroup, ViewGroupError> {
        let access = self.access(slug, caller).await?.ok_or(ViewGroupError::NotFound)?;
        Ok(MyGroup { group: access.group, my_role: access.role })
    }

    /// Changes the group's name or `approval_required`; needs `group.manage`. An empty patch
    /// changes nothing and answers the group.
    #[tracing::instrument(level = "debug", name = "groups.update_group", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.delete_group", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.standing", skip_all)]
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
}
