//! The platform administration use cases.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Duration;
use onboard_kernel::events::Event;
use onboard_kernel::{Clock, GroupId, MemberId, PhoneNumber};
use onboard_members::Principal;
use onboard_members::ports::RevocationList;
use uuid::Uuid;

use crate::error::{AdminError, AdminMemberError, GrantError};
use crate::events::{self, AdminEvent};
use crate::model::{
    Actor, AdminGroup, AdminMember, AuditEntry, BlockReason, GroupSearch, IdCursor, MemberDetail,
    MemberSearch, Page, Stats,
};
use crate::ports::{AdminRepository, OtpStats};

/// Settings of platform administration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminConfig {
    /// Phones whose members are platform admins whatever the stored flag says (`ADMIN_PHONES`).
    pub admin_phones: Vec<PhoneNumber>,
    /// Access token lifetime: how long a block keeps refusing the member's earlier tokens.
    pub access_ttl_secs: u64,
}

/// The adapters the service runs on.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct AdminPorts {
    pub repo: Arc<dyn AdminRepository>,
    pub otp_stats: Arc<dyn OtpStats>,
    pub revocations: Arc<dyn RevocationList>,
    pub clock: Arc<dyn Clock>,
}

/// Platform administration: who is an admin, and what admins may do.
#[derive(Clone)]
pub struct AdminService {
    ports: AdminPorts,
    admin_phones: Arc<HashSet<String>>,
    access_ttl_secs: u64,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService")
            .field("admin_phones", &self.admin_phones.len())
            .finish_non_exhaustive()
    }
}

impl AdminService {
    pub fn new(ports: AdminPorts, config: AdminConfig) -> Self {
        Self {
            ports,
            admin_phones: Arc::new(
                config.admin_phones.iter().map(|p| p.as_e164().to_owned()).collect(),
            ),
            access_ttl_secs: config.access_ttl_secs,
        }
    }

    /// Whether the member is a platform admin now: live, not blocked, and granted (stored
    /// flag) or listed in `ADMIN_PHONES`. One storage lookup.
    #[tracing::instrument(level = "debug", name = "admin.is_platform_admin", skip_all)]
    pub async fn is_platform_admin(&self, member_id: MemberId) -> anyhow::Result<bool> {
        Ok(match self.ports.repo.standing(member_id).await? {
            Some(s) => !s.blocked && (s.is_admin || self.listed(s.phone.as_ref())),
            None => false,
        })
    }

    /// Refuses ([`AdminError::Forbidden`]) a caller who is not a platform admin.
    #[tracing::instrument(level = "debug", name = "admin.require_admin", skip_all)]
    pub async fn require_admin(&self, principal: &Principal) -> Result<(), AdminError> {
        if self.is_platform_admin(principal.member_id).await? {
            Ok(())
        } else {
            Err(AdminError::Forbidden)
        }
    }

    /// Members matching `search`, newest first.
    #[tracing::instrument(level = "debug", name = "admin.search_members", skip_all)]
    pub async fn search_members(
        &self,
        principal: &Principal,
        search: &MemberSearch,
        after: Option<IdCursor>,
        limit: u32,
    ) -> Result<Page<AdminMember>, AdminError> {
        self.require_admin(principal).await?;
        let mut items = self
            .ports
            .repo
            .search_members(search, after.map(|c| MemberId::from_uuid(c.0)), limit + 1)
            .await?;
        let next = more(&mut items, limit, |m| m.member.id.as_uuid());
        for m in &mut items {
            m.is_admin = m.is_admin || self.listed(m.member.phone.as_ref());
        }
        Ok(Page { items, next_cursor: next })
    }

    /// One member with their groups, live sessions and invitee count.
    #[tracing::instrument(level = "debug", name = "admin.member", skip_all)]
    pub async fn member(
        &self,
        principal: &Principal,
        id: MemberId,
    ) -> Result<MemberDetail, AdminMemberError> {
        self.require_admin(principal).await?;
        let now = self.ports.clock.now();
        let mut detail =
            self.ports.repo.member_detail(id, now).await?.ok_or(AdminMemberError::NotFound)?;
        detail.is_admin = detail.is_admin || self.listed(detail.member.phone.as_ref());
        Ok(detail)
    }

    /// Blocks a member: every session of theirs is revoked at once (their access tokens stop
    /// working on the next request, their refresh tokens are refused) and sign-in answers
    /// `member_blocked` until [`Self::unblock`]. An admin cannot block themself.
    #[tracing::instrument(level = "debug", name = "admin.block", skip_all)]
    pub async fn block(
        &self,
        principal: &Principal,
        id: MemberId,
        reason: Option<BlockReason>,
    ) -> Result<(), AdminMemberError> {
        self.require_admin(principal).await?;
        if id == principal.member_id {
            return Err(AdminMemberError::OwnAccount);
        }
        let now = self.ports.clock.now();
        // The database first: the block and the revoked sessions commit together, so no
        // refresh or sign-in succeeds after it; then the revocation list kills the access
        // tokens of exactly those sessions (every live access token belongs to a live
        // session). By session, not by member and time: tokens are stamped to the second, so
        // a member-wide cut-off would also kill a sign-in right after a quick unblock.
        let actor = Actor::Member(principal.member_id);
        let blocked = AdminEvent::MemberBlocked {
            member_id: id,
            by: events::by(actor),
            reason: reason.as_ref().map(|r| r.as_str().to_owned()),
        };
        let events = [Event::record(&blocked, now)];
        let revoked = self.ports.repo.block(id, reason, actor, now, &events).await?;
        if revoked.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.ports.revocations.revoke_sessions(id, &revoked, self.access_ttl_secs).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= 3 => return Err(e.into()),
                Err(_) => {}
            }
        }
    }

    /// Lifts a block: the member may sign in again.
    #[tracing::instrument(level = "debug", name = "admin.unblock", skip_all)]
    pub async fn unblock(
        &self,
        principal: &Principal,
        id: MemberId,
    ) -> Result<(), AdminMemberError> {
        self.require_admin(principal).await?;
        let now = self.ports.clock.now();
        let actor = Actor::Member(principal.member_id);
        let unblocked = AdminEvent::MemberUnblocked { member_id: id, by: events::by(actor) };
        self.ports.repo.unblock(id, actor, now, &[Event::record(&unblocked, now)]).await?;
        Ok(())
    }

    /// Groups matching `search`, newest first, with member counts and plans.
    #[tracing::instrument(level = "debug", name = "admin.groups", skip_all)]
    pub async fn groups(
        &self,
        principal: &Principal,
        search: &GroupSearch,
        after: Option<IdCursor>,
        limit: u32,
    ) -> Result<Page<AdminGroup>, AdminError> {
        self.require_admin(principal).await?;
        let mut items = self
            .ports
            .repo
            .list_groups(search, after.map(|c| GroupId::from_uuid(c.0)), limit + 1)
            .await?;
        let next = more(&mut items, limit, |g| g.group.id.as_uuid());
        Ok(Page { items, next_cursor: next })
    }

    /// Counts over the whole platform and the last 24 hours.
    #[tracing::instrument(level = "debug", name = "admin.stats", skip_all)]
    pub async fn stats(&self, principal: &Principal) -> Result<Stats, AdminError> {
        self.require_admin(principal).await?;
        let now = self.ports.clock.now();
        let (stored, otp) = futures_util::future::join(
            self.ports.repo.counts(now - Duration::hours(24)),
            self.ports.otp_stats.last_24h(now),
        )
        .await;
        let (stored, otp) = (stored?, otp?);
        Ok(Stats {
            members: stored.members,
            groups: stored.groups,
            sign_ins_24h: stored.sign_ins,
            otp_sends_24h: otp.sends,
            otp_failures_24h: otp.failures,
            referrals_redeemed: stored.referrals_redeemed,
        })
    }

    /// The audit trail, newest first.
    #[tracing::instrument(level = "debug", name = "admin.audit", skip_all)]
    pub async fn audit(
        &self,
        principal: &Principal,
        after: Option<IdCursor>,
        limit: u32,
    ) -> Result<Page<AuditEntry>, AdminError> {
        self.require_admin(principal).await?;
        let mut items = self.ports.repo.audit(after.map(|c| c.0), limit + 1).await?;
        let next = more(&mut items, limit, |e| e.id);
        Ok(Page { items, next_cursor: next })
    }

    /// Makes the member with `phone` a platform admin (the command line; `actor` is
    /// [`Actor::Cli`] there). Answers their id.
    #[tracing::instrument(level = "debug", name = "admin.grant", skip_all)]
    pub async fn grant(&self, phone: &PhoneNumber, actor: Actor) -> Result<MemberId, GrantError> {
        let now = self.ports.clock.now();
        Ok(self.ports.repo.set_admin(phone, true, actor, now).await?)
    }

    /// Takes platform admin away from the member with `phone` (members listed in
    /// `ADMIN_PHONES` stay admins while listed). Answers their id.
    #[tracing::instrument(level = "debug", name = "admin.revoke", skip_all)]
    pub async fn revoke(&self, phone: &PhoneNumber, actor: Actor) -> Result<MemberId, GrantError> {
        let now = self.ports.clock.now();
        Ok(self.ports.repo.set_admin(phone, false, actor, now).await?)
    }

    fn listed(&self, phone: Option<&PhoneNumber>) -> bool {
        phone.is_some_and(|p| self.admin_phones.contains(p.as_e164()))
    }
}

/// Trims a `limit + 1` fetch to `limit` and answers the cursor of the next page, if any.
fn more<T>(items: &mut Vec<T>, limit: u32, id: impl Fn(&T) -> Uuid) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| IdCursor(id(last)).encode())
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
