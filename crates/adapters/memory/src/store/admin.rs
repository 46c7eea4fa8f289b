//! Platform administration in memory: [`AdminRepository`] for [`MemoryStore`].
//!
//! The rules are those of the PostgreSQL adapter: each action changes the member and appends
//! its audit entry under the store's one mutex; a block revokes every live session of the
//! member, and while it holds, `sign_in` refuses the member and `rotate` refuses their refresh
//! tokens (see the store's members code). Lists page by id, newest first.

use std::cmp::Reverse;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_admin::ports::AdminRepository;
use onboard_admin::{
    Actor, AdminGroup, AdminMember, AuditAction, AuditEntry, Block, BlockReason, GroupSearch,
    MemberDetail, MemberGroup, MemberSearch, Standing, StoredCounts, TargetError,
};
use onboard_kernel::events::Event;
use onboard_kernel::{GroupId, MemberId, PhoneNumber, SessionId};

use super::groups::stored;
use super::{MemberRow, MemoryStore, State};

/// The most groups a member detail lists (as the PostgreSQL adapter).
const DETAIL_GROUPS: usize = 100;

fn starts(text: Option<&str>, prefix: &str) -> bool {
    text.is_some_and(|t| t.starts_with(prefix))
}

fn lower_starts(text: Option<&str>, prefix: &str) -> bool {
    text.is_some_and(|t| t.to_lowercase().starts_with(prefix))
}

fn matches(row: &MemberRow, search: &MemberSearch) -> bool {
    match search {
        MemberSearch::All => true,
        MemberSearch::PhonePrefix(p) => starts(row.phone.as_ref().map(PhoneNumber::as_e164), p),
        MemberSearch::EmailPrefix(p) => starts(row.email.as_ref().map(|e| e.as_str()), p),
        MemberSearch::NameOrCode { prefix, code } => {
            lower_starts(row.first_name.as_deref(), prefix)
                || lower_starts(row.last_name.as_deref(), prefix)
                || starts(row.email.as_ref().map(|e| e.as_str()), prefix)
                || code.as_ref().is_some_and(|c| *c == row.referral_code)
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl State {
    fn audit_entry(
        &mut self,
        actor: Actor,
        action: AuditAction,
        target: MemberId,
        details: Option<String>,
        now: DateTime<Utc>,
    ) {
        self.admin_audit.push(AuditEntry {
            id: uuid::Uuid::now_v7(),
            actor,
            action,
            target,
            details,
            at: stored(now),
        });
    }

    /// Whether the member is blocked (sign-in and refresh refuse them).
    pub(super) fn is_blocked(&self, member: MemberId) -> bool {
        self.blocked.contains_key(&member)
    }
}

#[async_trait]
impl AdminRepository for MemoryStore {
    async fn standing(&self, member: MemberId) -> anyhow::Result<Option<Standing>> {
        let state = self.state();
        Ok(state.live_member(member).map(|row| Standing {
            phone: row.phone.clone(),
            is_admin: state.admins.contains(&member),
            blocked: state.is_blocked(member),
        }))
    }

    async fn search_members(
        &self,
        search: &MemberSearch,
        after: Option<MemberId>,
        limit: u32,
    ) -> anyhow::Result<Vec<AdminMember>> {
        let state = self.state();
        let mut found: Vec<&MemberRow> = state
            .members
            .values()
            .filter(|m| m.deleted_at.is_none())
            .filter(|m| after.is_none_or(|a| m.id < a))
            .filter(|m| matches(m, search))
            .collect();
        found.sort_by_key(|m| Reverse(m.id));
        Ok(found
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|m| AdminMember {
                member: state.member(m),
                is_admin: state.admins.contains(&m.id),
                blocked: state.is_blocked(m.id),
            })
            .collect())
    }

    async fn member_detail(
        &self,
        id: MemberId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<MemberDetail>> {
        let state = self.state();
        let Some(row) = state.live_member(id) else { return Ok(None) };
        let mut groups: Vec<(DateTime<Utc>, GroupId, MemberGroup)> = state
            .groups
            .values()
            .filter_map(|g| {
                g.members.get(&id).map(|m| {
                    (
                        m.joined_at,
                        g.group.id,
                        MemberGroup {
                            slug: g.group.slug.as_str().to_owned(),
                            name: g.group.name.as_str().to_owned(),
                            role: m.role.as_str().to_owned(),
                            status: if m.is_active() { "active" } else { "pending" }.to_owned(),
                        },
                    )
                })
            })
            .collect();
        groups.sort_by_key(|(at, gid, _)| (*at, *gid));
        Ok(Some(MemberDetail {
            member: state.member(row),
            is_admin: state.admins.contains(&id),
            block: state.blocked.get(&id).cloned(),
            groups: groups.into_iter().take(DETAIL_GROUPS).map(|(_, _, g)| g).collect(),
            sessions_active: count(
                state.sessions.values().filter(|s| s.member_id == id && s.is_live(now)).count(),
            ),
            invitees_count: count(
                state
                    .members
                    .values()
                    .filter(|m| m.referred_by == Some(id) && m.deleted_at.is_none())
                    .count(),
            ),
        }))
    }

    async fn set_admin(
        &self,
        phone: &PhoneNumber,
        admin: bool,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<MemberId, TargetError> {
        let mut state = self.state();
        let id = state
            .by_phone
            .get(phone)
            .copied()
            .filter(|id| state.live_member(*id).is_some())
            .ok_or(TargetError::NotFound)?;
        let action = if admin {
            state.admins.insert(id);
            AuditAction::Grant
        } else {
            state.admins.remove(&id);
            AuditAction::Revoke
        };
        state.audit_entry(actor, action, id, None, now);
        Ok(id)
    }

    async fn block(
        &self,
        id: MemberId,
        reason: Option<BlockReason>,
        actor: Actor,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<Vec<SessionId>, TargetError> {
        let mut state = self.state();
        if state.live_member(id).is_none() {
            return Err(TargetError::NotFound);
        }
        let reason = reason.map(|r| r.as_str().to_owned());
        let at = state.blocked.get(&id).map_or(stored(now), |b| b.at);
        state.blocked.insert(id, Block { at, reason: reason.clone() });
        let mut revoked = Vec::new();
        for session in state.sessions.values_mut() {
            if session.member_id == id && session.is_live(now) {
                session.revoked_at = Some(now);
                revoked.push(session.id);
            }
        }
        revoked.sort();
        state.audit_entry(actor, AuditAction::Block, id, reason, now);
        state.outbox.record(events);
        Ok(revoked)
    }

    async fn unblock(
        &self,
        id: MemberId,
        actor: Actor,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<(), TargetError> {
        let mut state = self.state();
        if state.live_member(id).is_none() {
            return Err(TargetError::NotFound);
        }
        state.blocked.remove(&id);
        state.audit_entry(actor, AuditAction::Unblock, id, None, now);
        state.outbox.record(events);
        Ok(())
    }

    async fn list_groups(
        &self,
        search: &GroupSearch,
        after: Option<GroupId>,
        limit: u32,
    ) -> anyhow::Result<Vec<AdminGroup>> {
        let state = self.state();
        let mut found: Vec<_> = state
            .groups
            .values()
            .filter(|g| after.is_none_or(|a| g.group.id < a))
            .filter(|g| match search {
                GroupSearch::All => true,
                GroupSearch::Prefix(p) => {
                    g.group.slug.as_str().starts_with(p.as_str())
                        || g.group.name.as_str().to_lowercase().starts_with(p.as_str())
                }
            })
            .collect();
        found.sort_by_key(|g| Reverse(g.group.id));
        Ok(found
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|g| AdminGroup {
                group: g.group.clone(),
                members_count: count(g.members.values().filter(|m| m.is_active()).count()),
                // A group without a billing account is on the free plan.
                plan: self.billing.plan_code(g.group.id).unwrap_or_else(|| "free".to_owned()),
            })
            .collect())
    }

    async fn counts(&self, since: DateTime<Utc>) -> anyhow::Result<StoredCounts> {
        let state = self.state();
        let live = || state.members.values().filter(|m| m.deleted_at.is_none());
        Ok(StoredCounts {
            members: count(live().count()),
            groups: count(state.groups.len()),
            sign_ins: count(state.sessions.values().filter(|s| s.created_at >= since).count()),
            referrals_redeemed: count(live().filter(|m| m.referred_by.is_some()).count()),
        })
    }

    async fn audit(
        &self,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> anyhow::Result<Vec<AuditEntry>> {
        let state = self.state();
        // Appended in id order (v7 ids from one process).
        Ok(state
            .admin_audit
            .iter()
            .rev()
            .filter(|e| after.is_none_or(|a| e.id < a))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests;
