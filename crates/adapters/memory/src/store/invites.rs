//! Invites in memory: [`InviteRepository`] for [`MemoryStore`].
//!
//! The rules are those of the PostgreSQL adapter. Every call runs under the store's one mutex,
//! so the races storage must settle (two creates naming one person, concurrent accepts of one
//! invite, an accept and a revoke) run one after the other, and the second sees the first.
//! Accepting changes the very memberships the [`GroupRepository`] sees, and deleting a group
//! deletes its invites. Times are kept to the microsecond, as PostgreSQL keeps them, so that a
//! cursor points exactly at its invite. Each write records its events in the outbox under the
//! same lock, only when it changes something.
//!
//! [`GroupRepository`]: onboard_groups::ports::GroupRepository

use std::cmp::Reverse;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_groups::{MembershipStatus, MyGroup, RoleName};
use onboard_invites::events::{AcceptEvents, AcceptedMembership};
use onboard_invites::ports::{InviteRepository, NewInvite, SmsCharge};
use onboard_invites::{
    AcceptOutcome, AcceptRecord, AcceptRefusal, CreateInviteRefusal, Invite, InviteCursor,
    InviteId, InvitePreview, InviteStatus, InviteeName,
};
use onboard_kernel::events::Event;
use onboard_kernel::{Email, GroupId, MemberId, PhoneNumber};

use super::groups::{MembershipRow, stored};
use super::{MemoryStore, State};

/// An invite as stored. `status` is `Expired` only for a pending invite whose expiry had
/// passed when a newer invite named the same phone or e-mail (as the PostgreSQL adapter
/// stores it to free its unique indexes).
#[derive(Debug, Clone)]
pub(super) struct InviteRow {
    id: InviteId,
    pub(super) group: GroupId,
    name: InviteeName,
    phone: Option<PhoneNumber>,
    email: Option<Email>,
    role: RoleName,
    status: InviteStatus,
    invited_by: MemberId,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl InviteRow {
    /// Whether the invite names `phone` or `email` (an absent one matches nothing).
    fn names(&self, phone: Option<&PhoneNumber>, email: Option<&Email>) -> bool {
        (phone.is_some() && self.phone.as_ref() == phone)
            || (email.is_some() && self.email.as_ref() == email)
    }

    /// Whether the list's `status` filter, as of `now`, keeps this invite.
    fn listed_as(&self, status: Option<InviteStatus>, now: DateTime<Utc>) -> bool {
        let pending = self.status == InviteStatus::Pending;
        match status {
            None => true,
            Some(InviteStatus::Pending) => pending && self.expires_at > now,
            Some(InviteStatus::Expired) => {
                self.status == InviteStatus::Expired || (pending && self.expires_at <= now)
            }
            Some(stored) => self.status == stored,
        }
    }
}

impl State {
    /// An invite with its group's slug; `None` when the group is gone.
    fn invite(&self, row: &InviteRow) -> Option<Invite> {
        Some(Invite {
            id: row.id,
            group: row.group,
            group_slug: self.group_slug(row.group)?.clone(),
            name: row.name.clone(),
            phone: row.phone.clone(),
            email: row.email.clone(),
            role: row.role.clone(),
            status: row.status,
            invited_by: row.invited_by,
            expires_at: row.expires_at,
            created_at: row.created_at,
        })
    }

    /// Whether a live member with `phone` or `email` is an active member of `group`.
    fn has_active_member(
        &self,
        group: GroupId,
        phone: Option<&PhoneNumber>,
        email: Option<&Email>,
    ) -> bool {
        let Some(g) = self.groups.get(&group) else {
            return false;
        };
        // The phone and e-mail indexes name live members only.
        let by_phone = phone.and_then(|p| self.by_phone.get(p));
        let by_email = email.and_then(|e| self.by_email.get(e));
        [by_phone, by_email]
            .into_iter()
            .flatten()
            .any(|id| g.members.get(id).is_some_and(MembershipRow::is_active))
    }
}

#[async_trait]
impl InviteRepository for MemoryStore {
    async fn create(
        &self,
        invite: &NewInvite,
        events: &[Event],
    ) -> Result<(), CreateInviteRefusal> {
        let mut state = self.state();
        if !state.groups.contains_key(&invite.group) {
            return Err(anyhow::anyhow!("no group {}", invite.group).into());
        }
        if !state.members.contains_key(&invite.invited_by) {
            return Err(anyhow::anyhow!("the inviter {} is not a member", invite.invited_by).into());
        }
        if invite.phone.is_none() && invite.email.is_none() {
            return Err(anyhow::anyhow!("an invite needs a phone or an e-mail").into());
        }
        if state.invites.contains_key(&invite.id) {
            return Err(anyhow::anyhow!("invite id {} already in use", invite.id).into());
        }
        let (phone, email) = (invite.phone.as_ref(), invite.email.as_ref());
        if state.has_active_member(invite.group, phone, email) {
            return Err(CreateInviteRefusal::AlreadyMember);
        }
        let created_at = stored(invite.created_at);
        let same_person = |i: &InviteRow| {
            i.group == invite.group && i.status == InviteStatus::Pending && i.names(phone, email)
        };
        if state.invites.values().any(|i| same_person(i) && i.expires_at > created_at) {
            return Err(CreateInviteRefusal::InvitePending);
        }
        // The invite SMS is paid under the same lock as the invite row.
        if let Some(charge) = &invite.sms_charge {
            let reference = charge.invite.to_string();
            let debited = state.apply_sms_credit(
                charge.group,
                -charge.amount,
                onboard_payments::sms_credit::CreditReason::InviteSms,
                Some(&reference),
                invite.created_at,
            );
            if debited.is_none() {
                return Err(CreateInviteRefusal::InsufficientCredit);
            }
        }
        for stale in state.invites.values_mut().filter(|i| same_person(i)) {
            stale.status = InviteStatus::Expired;
        }
        state.invites.insert(
            invite.id,
            InviteRow {
                id: invite.id,
                group: invite.group,
                name: invite.name.clone(),
                phone: invite.phone.clone(),
                email: invite.email.clone(),
                role: invite.role.clone(),
                status: InviteStatus::Pending,
                invited_by: invite.invited_by,
                created_at,
                expires_at: stored(invite.expires_at),
            },
        );
        state.outbox.record(events);
        Ok(())
    }

    async fn list(
        &self,
        group: GroupId,
        status: Option<InviteStatus>,
        after: Option<InviteCursor>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(Invite, InviteCursor)>> {
        let state = self.state();
        let mut listed: Vec<&InviteRow> = state
            .invites
            .values()
            .filter(|i| i.group == group && i.listed_as(status, now))
            .filter(|i| after.is_none_or(|a| (i.created_at, i.id) < (a.created_at, a.invite_id)))
            .collect();
        listed.sort_by_key(|i| Reverse((i.created_at, i.id)));
        Ok(listed
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .filter_map(|row| state.invite(row))
            .map(|invite| {
                let cursor = InviteCursor::of(&invite);
                (invite, cursor)
            })
            .collect())
    }

    async fn get(&self, invite: InviteId) -> anyhow::Result<Option<Invite>> {
        let state = self.state();
        Ok(state.invites.get(&invite).and_then(|row| state.invite(row)))
    }

    async fn refund_sms(
        &self,
        charge: &SmsCharge,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<()> {
        let reference = charge.invite.to_string();
        let mut state = self.state();
        state
            .apply_sms_credit(
                charge.group,
                charge.amount,
                onboard_payments::sms_credit::CreditReason::Refund,
                Some(&reference),
                now,
            )
            .ok_or_else(|| anyhow::anyhow!("a refund was refused"))?;
        state.outbox.record(events);
        Ok(())
    }

    async fn revoke(
        &self,
        group: GroupId,
        invite: InviteId,
        _now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        let Some(row) = state.invites.get_mut(&invite).filter(|i| i.group == group) else {
            return Ok(false);
        };
        if matches!(row.status, InviteStatus::Pending | InviteStatus::Expired) {
            row.status = InviteStatus::Revoked;
            state.outbox.record(events);
        }
        Ok(true)
    }

    async fn preview(&self, invite: InviteId) -> anyhow::Result<Option<InvitePreview>> {
        let state = self.state();
        let Some(row) = state.invites.get(&invite) else {
            return Ok(None);
        };
        let Some(g) = state.groups.get(&row.group) else {
            return Ok(None);
        };
        Ok(Some(InvitePreview {
            group_slug: g.group.slug.clone(),
            group_name: g.group.name.clone(),
            inviter_first_name: state
                .live_member(row.invited_by)
                .and_then(|m| m.first_name.clone()),
            name: row.name.clone(),
            expires_at: row.expires_at,
            status: row.status,
        }))
    }

    async fn for_accept(
        &self,
        invite: InviteId,
        member: MemberId,
    ) -> anyhow::Result<Option<(Invite, Option<PhoneNumber>)>> {
        let state = self.state();
        let found = state.invites.get(&invite).and_then(|row| state.invite(row));
        Ok(found.map(|invite| (invite, state.live_member(member).and_then(|m| m.phone.clone()))))
    }

    async fn accept(
        &self,
        invite: InviteId,
        member: MemberId,
        now: DateTime<Utc>,
        events: &AcceptEvents,
    ) -> Result<AcceptRecord, AcceptRefusal> {
        let mut state = self.state();
        let now = stored(now);
        let Some(row) = state
            .invites
            .get(&invite)
            .filter(|i| i.status == InviteStatus::Pending && i.expires_at > now)
        else {
            return Err(AcceptRefusal::NotFound);
        };
        let (group, invite_role) = (row.group, row.role.clone());
        if !state.members.contains_key(&member) {
            return Err(anyhow::anyhow!("{member} is not a member").into());
        }
        let Some(g) = state.groups.get_mut(&group) else {
            return Err(AcceptRefusal::NotFound);
        };

        let existing = g.members.get(&member);
        let (outcome, my_role, settled) = match existing {
            Some(m) if m.is_active() => {
                (AcceptOutcome::AlreadyMember, m.role.clone(), AcceptedMembership::Unchanged)
            }
            Some(_) if g.group.approval_required => {
                (AcceptOutcome::PendingApproval, RoleName::MEMBER, AcceptedMembership::Unchanged)
            }
            None if g.group.approval_required => {
                g.members.insert(
                    member,
                    MembershipRow {
                        role: RoleName::MEMBER,
                        status: MembershipStatus::Pending,
                        joined_at: now,
                    },
                );
                (AcceptOutcome::PendingApproval, RoleName::MEMBER, AcceptedMembership::Requested)
            }
            // No membership, or a join request: an active member with the invite's role.
            Some(_) | None => {
                let role = if invite_role.is_builtin() || g.roles.contains_key(&invite_role) {
                    invite_role
                } else {
                    RoleName::MEMBER
                };
                g.members.insert(
                    member,
                    MembershipRow {
                        role: role.clone(),
                        status: MembershipStatus::Active,
                        joined_at: now,
                    },
                );
                (AcceptOutcome::Joined, role.clone(), AcceptedMembership::Joined(role))
            }
        };
        let group = g.group.clone();
        if let Some(row) = state.invites.get_mut(&invite) {
            row.status = InviteStatus::Accepted;
        }
        state.outbox.record(&events.records(&settled));
        Ok(AcceptRecord { outcome, group: MyGroup { group, my_role } })
    }
}

#[cfg(test)]
mod tests;
