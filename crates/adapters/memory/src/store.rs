//! Members and sessions in memory.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::{Email, MemberId, PhoneNumber, ReferralCode, SessionId};
use onboard_members::ports::{
    MemberRepository, RefreshedSession, RotateOutcome, SessionRepository, SignInRecord,
    SignInRequest,
};
use onboard_members::{
    DeleteMemberError, Member, MemberCard, MemberView, Profile, ProfilePatch, Session,
    SignInStoreError, TokenHash, UpdateProfileError,
};

use crate::window::seconds;

mod referrals;

/// Members and their sessions behind one mutex: each call is one atomic change, like the
/// PostgreSQL adapter's transaction, with the same rules.
///
/// - Phones, e-mails and referral codes are unique. A deleted member's phone and e-mail are
///   free again; their referral code stays taken (and no longer redeemable).
/// - `sign_in` creates at most one member per phone, however many run at once. A taken
///   `new_referral_code` or a `referred_by` that names no live member writes nothing.
/// - Invitees are the live members a member referred, newest first (by `referred_at`, then id).
/// - A live session is neither revoked nor expired; sessions list newest first.
/// - `rotate`: the live token of a live session rotates; a used token presented again within
///   the grace period with the same successor, while the session is not revoked, is `Grace`;
///   any other used token revokes its session (`Reused`); anything else is `Invalid`.
/// - Deleting a member revokes their live sessions and answers their ids.
/// - Members have no current group yet; `view` shows the full member only to themself.
/// - Referrals ([`ReferralRepository`](onboard_referrals::ports::ReferralRepository)): a
///   member redeems one live member's code, once, never their own, never one whose owner is
///   below them in the referral tree (deleted members stay in the tree); invitee pages follow
///   the same order as the profile's invitees.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    members: HashMap<MemberId, MemberRow>,
    by_phone: HashMap<PhoneNumber, MemberId>,
    by_email: HashMap<Email, MemberId>,
    /// Every code ever given out, deleted members' included.
    by_code: HashMap<ReferralCode, MemberId>,
    sessions: HashMap<SessionId, SessionRow>,
    /// The current refresh token of every session, revoked ones included.
    by_refresh: HashMap<TokenHash, SessionId>,
    used: HashMap<TokenHash, UsedToken>,
}

#[derive(Debug, Clone)]
struct MemberRow {
    id: MemberId,
    phone: Option<PhoneNumber>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<Email>,
    referral_code: ReferralCode,
    referred_by: Option<MemberId>,
    referred_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct SessionRow {
    id: SessionId,
    member_id: MemberId,
    refresh_hash: TokenHash,
    user_agent: Option<String>,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
struct UsedToken {
    session_id: SessionId,
    rotated_to: TokenHash,
    used_at: DateTime<Utc>,
}

impl SessionRow {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    fn refreshed(&self) -> RefreshedSession {
        RefreshedSession {
            session_id: self.id,
            member_id: self.member_id,
            current_group: None,
        }
    }

    fn to_session(&self) -> Session {
        Session {
            id: self.id,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            user_agent: self.user_agent.clone(),
        }
    }
}

impl State {
    fn live_member(&self, id: MemberId) -> Option<&MemberRow> {
        self.members.get(&id).filter(|m| m.deleted_at.is_none())
    }

    fn member(&self, row: &MemberRow) -> Member {
        Member {
            id: row.id,
            phone: row.phone.clone(),
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
            email: row.email.clone(),
            referral_code: row.referral_code.clone(),
            referred_by: row
                .referred_by
                .and_then(|r| self.members.get(&r))
                .map(|r| r.referral_code.clone()),
            current_group: None,
            created_at: row.created_at,
        }
    }

    fn live_code_owner(&self, code: &ReferralCode) -> Option<MemberId> {
        self.by_code
            .get(code)
            .copied()
            .filter(|id| self.live_member(*id).is_some())
    }

    fn open_session(&mut self, request: &SignInRequest, member_id: MemberId) {
        let s = &request.session;
        self.by_refresh.insert(s.refresh_hash, s.id);
        self.sessions.insert(
            s.id,
            SessionRow {
                id: s.id,
                member_id,
                refresh_hash: s.refresh_hash,
                user_agent: s.user_agent.clone(),
                created_at: request.now,
                last_used_at: request.now,
                expires_at: s.expires_at,
                revoked_at: None,
            },
        );
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change is checked before anything is written, so a poisoned lock still guards
        // consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl MemberRepository for MemoryStore {
    async fn find_by_phone(&self, phone: &PhoneNumber) -> anyhow::Result<Option<Member>> {
        let state = self.state();
        Ok(state
            .by_phone
            .get(phone)
            .and_then(|id| state.live_member(*id))
            .map(|m| state.member(m)))
    }

    async fn referral_code_exists(&self, code: &ReferralCode) -> anyhow::Result<bool> {
        Ok(self.state().live_code_owner(code).is_some())
    }

    async fn sign_in(&self, request: SignInRequest) -> Result<SignInRecord, SignInStoreError> {
        let mut state = self.state();
        if state.sessions.contains_key(&request.session.id)
            || state.by_refresh.contains_key(&request.session.refresh_hash)
        {
            return Err(anyhow::anyhow!("session id or refresh token hash already in use").into());
        }

        if let Some(id) = state.by_phone.get(&request.phone).copied() {
            state.open_session(&request, id);
            let member = state
                .live_member(id)
                .map(|m| state.member(m))
                .ok_or_else(|| anyhow::anyhow!("phone index names a deleted member"))?;
            return Ok(SignInRecord {
                member,
                created: false,
            });
        }

        if state.by_code.contains_key(&request.new_referral_code) {
            return Err(SignInStoreError::ReferralCodeCollision);
        }
        let referrer = match &request.referred_by {
            Some(code) => Some(
                state
                    .live_code_owner(code)
                    .ok_or(SignInStoreError::ReferralCodeNotFound)?,
            ),
            None => None,
        };
        if state.members.contains_key(&request.new_member_id) {
            return Err(anyhow::anyhow!("member id already in use").into());
        }

        let row = MemberRow {
            id: request.new_member_id,
            phone: Some(request.phone.clone()),
            first_name: None,
            last_name: None,
            email: None,
            referral_code: request.new_referral_code.clone(),
            referred_by: referrer,
            referred_at: referrer.map(|_| request.now),
            created_at: request.now,
            deleted_at: None,
        };
        state.by_phone.insert(request.phone.clone(), row.id);
        state.by_code.insert(row.referral_code.clone(), row.id);
        let member = state.member(&row);
        state.members.insert(row.id, row);
        state.open_session(&request, member.id);
        Ok(SignInRecord {
            member,
            created: true,
        })
    }

    async fn get(&self, id: MemberId) -> anyhow::Result<Option<Member>> {
        let state = self.state();
        Ok(state.live_member(id).map(|m| state.member(m)))
    }

    async fn profile(&self, id: MemberId, invitees: u32) -> anyhow::Result<Option<Profile>> {
        let state = self.state();
        let Some(row) = state.live_member(id) else {
            return Ok(None);
        };
        let mut referred: Vec<&MemberRow> = state
            .members
            .values()
            .filter(|m| m.referred_by == Some(id) && m.deleted_at.is_none())
            .collect();
        referred.sort_by_key(|m| Reverse((m.referred_at, m.id)));
        let invitees_count = u64::try_from(referred.len()).unwrap_or(u64::MAX);
        let shown = usize::try_from(invitees).unwrap_or(usize::MAX);
        Ok(Some(Profile {
            member: state.member(row),
            invitees: referred
                .into_iter()
                .take(shown)
                .map(|m| MemberCard::from(&state.member(m)))
                .collect(),
            invitees_count,
        }))
    }

    async fn view(&self, viewer: MemberId, id: MemberId) -> anyhow::Result<Option<MemberView>> {
        let state = self.state();
        Ok(state.live_member(id).map(|row| {
            let member = state.member(row);
            if viewer == id {
                MemberView::Full(member)
            } else {
                MemberView::Card(MemberCard::from(&member))
            }
        }))
    }

    async fn update_profile(
        &self,
        id: MemberId,
        patch: &ProfilePatch,
    ) -> Result<Member, UpdateProfileError> {
        let mut state = self.state();
        let Some(row) = state.live_member(id) else {
            return Err(UpdateProfileError::NotFound);
        };
        let old_email = row.email.clone();
        if let Some(email) = &patch.email
            && state.by_email.get(email).is_some_and(|owner| *owner != id)
        {
            return Err(UpdateProfileError::EmailTaken);
        }
        if let Some(email) = &patch.email {
            if let Some(old) = &old_email {
                state.by_email.remove(old);
            }
            state.by_email.insert(email.clone(), id);
        }
        let row = state
            .members
            .get_mut(&id)
            .ok_or_else(|| anyhow::anyhow!("the member vanished under the lock"))?;
        if let Some(name) = &patch.first_name {
            row.first_name = Some(name.as_str().to_owned());
        }
        if let Some(name) = &patch.last_name {
            row.last_name = Some(name.as_str().to_owned());
        }
        if let Some(email) = &patch.email {
            row.email = Some(email.clone());
        }
        let row = row.clone();
        Ok(state.member(&row))
    }

    async fn delete(
        &self,
        id: MemberId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, DeleteMemberError> {
        let mut state = self.state();
        let Some(row) = state
            .members
            .get_mut(&id)
            .filter(|m| m.deleted_at.is_none())
        else {
            return Err(DeleteMemberError::NotFound);
        };
        row.deleted_at = Some(now);
        let phone = row.phone.take();
        let email = row.email.take();
        if let Some(phone) = phone {
            state.by_phone.remove(&phone);
        }
        if let Some(email) = email {
            state.by_email.remove(&email);
        }
        let mut revoked = Vec::new();
        for session in state.sessions.values_mut() {
            if session.member_id == id && session.is_live(now) {
                session.revoked_at = Some(now);
                revoked.push(session.id);
            }
        }
        revoked.sort();
        Ok(revoked)
    }
}

#[async_trait]
impl SessionRepository for MemoryStore {
    async fn rotate(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        grace_secs: u64,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<RotateOutcome> {
        let mut state = self.state();
        let current = state.by_refresh.get(old).copied();
        if let Some(session_id) = current
            && state
                .sessions
                .get(&session_id)
                .is_some_and(|s| s.is_live(now))
        {
            if state.by_refresh.contains_key(new) || state.used.contains_key(old) {
                anyhow::bail!("refresh token hash already in use");
            }
            let session = state
                .sessions
                .get_mut(&session_id)
                .ok_or_else(|| anyhow::anyhow!("the session vanished under the lock"))?;
            session.refresh_hash = *new;
            session.last_used_at = now;
            session.expires_at = expires_at;
            let refreshed = session.refreshed();
            state.by_refresh.remove(old);
            state.by_refresh.insert(*new, session_id);
            state.used.insert(
                *old,
                UsedToken {
                    session_id,
                    rotated_to: *new,
                    used_at: now,
                },
            );
            return Ok(RotateOutcome::Rotated(refreshed));
        }

        let Some(used) = state.used.get(old).copied() else {
            return Ok(RotateOutcome::Invalid);
        };
        let session = state
            .sessions
            .get_mut(&used.session_id)
            .ok_or_else(|| anyhow::anyhow!("a used refresh token names no session"))?;
        let within_grace = now.signed_duration_since(used.used_at) < seconds(grace_secs);
        if used.rotated_to == *new && within_grace && session.revoked_at.is_none() {
            return Ok(RotateOutcome::Grace(session.refreshed()));
        }
        session.revoked_at.get_or_insert(now);
        Ok(RotateOutcome::Reused {
            member_id: session.member_id,
            session_id: session.id,
        })
    }

    async fn revoke(
        &self,
        member: MemberId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        match state.sessions.get_mut(&session) {
            Some(s) if s.member_id == member && s.is_live(now) => {
                s.revoked_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list(&self, member: MemberId, now: DateTime<Utc>) -> anyhow::Result<Vec<Session>> {
        let state = self.state();
        let mut live: Vec<&SessionRow> = state
            .sessions
            .values()
            .filter(|s| s.member_id == member && s.is_live(now))
            .collect();
        live.sort_by_key(|s| Reverse((s.created_at, s.id)));
        Ok(live.into_iter().map(SessionRow::to_session).collect())
    }
}

#[cfg(test)]
mod tests;
