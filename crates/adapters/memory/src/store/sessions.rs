//! [`SessionRepository`] in memory: the rules of the PostgreSQL twin, under the store's lock.

use std::cmp::Reverse;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::{MemberId, SessionId};
use onboard_members::ports::{RotateOutcome, SessionRepository};
use onboard_members::{Session, SessionKind, TokenHash};

use super::{MemoryStore, SessionRow, UsedToken};
use crate::window::seconds;

/// The kind `rotate` refreshes.
const ROTATING: SessionKind = SessionKind::Rotating;

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
        let known = current.or_else(|| state.used.get(old).map(|u| u.session_id));
        if known
            .and_then(|id| state.sessions.get(&id))
            .is_some_and(|s| state.is_blocked(s.member_id))
        {
            return Ok(RotateOutcome::Blocked);
        }
        if let Some(session_id) = current
            && state.sessions.get(&session_id).is_some_and(|s| s.is_live(now) && s.kind == ROTATING)
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
            let session = session.clone();
            let refreshed = state.refreshed(&session);
            state.by_refresh.remove(old);
            state.by_refresh.insert(*new, session_id);
            state.used.insert(*old, UsedToken { session_id, rotated_to: *new, used_at: now });
            return Ok(RotateOutcome::Rotated(refreshed));
        }

        let Some(used) = state.used.get(old).copied() else {
            return Ok(RotateOutcome::Invalid);
        };
        let session = state
            .sessions
            .get(&used.session_id)
            .ok_or_else(|| anyhow::anyhow!("a used refresh token names no session"))?;
        if session.kind != ROTATING {
            return Ok(RotateOutcome::Invalid);
        }
        let within_grace = now.signed_duration_since(used.used_at) < seconds(grace_secs);
        if used.rotated_to == *new && within_grace && session.revoked_at.is_none() {
            return Ok(RotateOutcome::Grace(state.refreshed(session)));
        }
        let session = state
            .sessions
            .get_mut(&used.session_id)
            .ok_or_else(|| anyhow::anyhow!("a used refresh token names no session"))?;
        session.revoked_at.get_or_insert(now);
        Ok(RotateOutcome::Reused { member_id: session.member_id, session_id: session.id })
    }

    async fn refresh_lenient(
        &self,
        kind: SessionKind,
        old: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        used_since: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<RotateOutcome> {
        if kind.reuse_is_theft() {
            anyhow::bail!("refresh_lenient called for {kind:?} sessions");
        }
        let mut state = self.state();
        let current = state.by_refresh.get(old).copied();
        let used = state.used.get(old).copied();
        let known = current.or(used.map(|u| u.session_id));
        let Some(session) = known.and_then(|id| state.sessions.get(&id)).filter(|s| s.kind == kind)
        else {
            return Ok(RotateOutcome::Invalid);
        };
        if state.is_blocked(session.member_id) {
            return Ok(RotateOutcome::Blocked);
        }
        if !session.is_live(now) {
            return Ok(RotateOutcome::Invalid);
        }
        let session_id = session.id;
        if current.is_some() {
            if old != new && (state.by_refresh.contains_key(new) || state.used.contains_key(old)) {
                anyhow::bail!("refresh token hash already in use");
            }
            let session = state
                .sessions
                .get_mut(&session_id)
                .ok_or_else(|| anyhow::anyhow!("the session vanished under the lock"))?;
            session.last_used_at = now;
            if kind.rotates() {
                session.refresh_hash = *new;
                session.expires_at = expires_at;
            }
            let session = session.clone();
            if old != new {
                state.by_refresh.remove(old);
                state.by_refresh.insert(*new, session_id);
                state.used.insert(*old, UsedToken { session_id, rotated_to: *new, used_at: now });
            }
            return Ok(RotateOutcome::Rotated(state.refreshed(&session)));
        }
        match used {
            Some(u) if u.rotated_to == *new && u.used_at > used_since => {
                Ok(RotateOutcome::Grace(state.refreshed(session)))
            }
            _ => Ok(RotateOutcome::Invalid),
        }
    }

    async fn is_live(&self, token: &TokenHash, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let state = self.state();
        Ok(state.by_refresh.get(token).and_then(|id| state.sessions.get(id)).is_some_and(|s| {
            s.is_live(now)
                && state.live_member(s.member_id).is_some()
                && !state.is_blocked(s.member_id)
        }))
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
        let mut live: Vec<&SessionRow> =
            state.sessions.values().filter(|s| s.member_id == member && s.is_live(now)).collect();
        live.sort_by_key(|s| Reverse((s.created_at, s.id)));
        Ok(live.into_iter().map(SessionRow::to_session).collect())
    }
}
