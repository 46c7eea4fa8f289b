//! Members: lists, role changes, removals.

use super::*;

impl GroupsService {
    /// A page of the group's members with `status`, in join order; `limit` is clamped to
    /// 1..=100. Any active member sees the active members; pending ones (join requests) need
    /// `members.manage`.
    #[tracing::instrument(level = "debug", name = "groups.members", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.join_requests", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.change_role", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.remove_member", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.leave", skip_all)]
    pub async fn leave(&self, slug: &Slug, caller: MemberId) -> Result<(), RemoveMemberError> {
        self.remove_member(slug, caller, caller).await
    }
}
