//! Joining: join requests and their decisions.

use super::*;

impl GroupsService {
    /// Asks to join the group: active as `member` at once, or pending when the group requires
    /// approval. Asking again while pending answers pending again and changes nothing.
    #[tracing::instrument(level = "debug", name = "groups.join", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.approve", skip_all)]
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
    #[tracing::instrument(level = "debug", name = "groups.reject", skip_all)]
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
}
