//! Revoked sessions and members in memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onboard_kernel::{MemberId, SessionId};
use onboard_members::ports::RevocationList;

/// Revocations that expire after their TTL, by the wall clock (like Redis keys with `EX`).
///
/// A session revoked for a member refuses that session's tokens; a member revoked at `at`
/// refuses every token of theirs issued at or before `at`. Revoking a member twice keeps the
/// later `at` and the later expiry, so a revocation is never shortened.
#[derive(Debug, Default)]
pub struct MemoryRevocationList {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Session → when the revocation expires (`None`: beyond any clock).
    sessions: HashMap<(MemberId, SessionId), Option<Instant>>,
    /// Member → (`at`, when the revocation expires).
    members: HashMap<MemberId, (i64, Option<Instant>)>,
}

/// When a revocation made now for `ttl_secs` (at least one second, as in Redis) expires.
fn expiry(ttl_secs: u64) -> Option<Instant> {
    Instant::now().checked_add(Duration::from_secs(ttl_secs.max(1)))
}

fn live(expires: Option<Instant>, now: Instant) -> bool {
    expires.is_none_or(|e| e > now)
}

impl MemoryRevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state with expired entries dropped.
    fn inner(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        inner.sessions.retain(|_, e| live(*e, now));
        inner.members.retain(|_, (_, e)| live(*e, now));
        inner
    }
}

#[async_trait]
impl RevocationList for MemoryRevocationList {
    async fn revoke_sessions(
        &self,
        member: MemberId,
        sessions: &[SessionId],
        ttl_secs: u64,
    ) -> anyhow::Result<()> {
        let expires = expiry(ttl_secs);
        let mut inner = self.inner();
        for session in sessions {
            let entry = inner.sessions.entry((member, *session)).or_insert(expires);
            if let (Some(old), Some(new)) = (*entry, expires) {
                *entry = Some(old.max(new));
            } else {
                *entry = None;
            }
        }
        Ok(())
    }

    async fn revoke_member(&self, member: MemberId, at: i64, ttl_secs: u64) -> anyhow::Result<()> {
        let expires = expiry(ttl_secs);
        let mut inner = self.inner();
        let entry = inner.members.entry(member).or_insert((at, expires));
        entry.0 = entry.0.max(at);
        entry.1 = match (entry.1, expires) {
            (Some(old), Some(new)) => Some(old.max(new)),
            _ => None,
        };
        Ok(())
    }

    async fn is_revoked(
        &self,
        member: MemberId,
        session: SessionId,
        issued_at: i64,
    ) -> anyhow::Result<bool> {
        let inner = self.inner();
        Ok(inner.sessions.contains_key(&(member, session))
            || inner.members.get(&member).is_some_and(|(at, _)| issued_at <= *at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revoked_session_is_refused_and_others_are_not() {
        let list = MemoryRevocationList::new();
        let (member, revoked, other) = (MemberId::new(), SessionId::new(), SessionId::new());
        list.revoke_sessions(member, &[revoked], 900).await.expect("revokes");
        assert!(list.is_revoked(member, revoked, 0).await.expect("answers"));
        assert!(!list.is_revoked(member, other, 0).await.expect("answers"));
        assert!(!list.is_revoked(MemberId::new(), revoked, 0).await.expect("answers"));
    }

    #[tokio::test]
    async fn several_sessions_are_revoked_at_once() {
        let list = MemoryRevocationList::new();
        let member = MemberId::new();
        let sessions = [SessionId::new(), SessionId::new(), SessionId::new()];
        list.revoke_sessions(member, &sessions, 900).await.expect("revokes");
        for s in sessions {
            assert!(list.is_revoked(member, s, 0).await.expect("answers"));
        }
    }

    #[tokio::test]
    async fn a_revoked_member_refuses_tokens_issued_up_to_the_revocation_only() {
        let list = MemoryRevocationList::new();
        let member = MemberId::new();
        list.revoke_member(member, 1_000, 900).await.expect("revokes");
        assert!(list.is_revoked(member, SessionId::new(), 999).await.expect("answers"));
        assert!(list.is_revoked(member, SessionId::new(), 1_000).await.expect("answers"));
        assert!(!list.is_revoked(member, SessionId::new(), 1_001).await.expect("answers"));
        assert!(!list.is_revoked(MemberId::new(), SessionId::new(), 0).await.expect("answers"));
    }

    #[tokio::test]
    async fn a_member_revocation_is_never_moved_back() {
        let list = MemoryRevocationList::new();
        let member = MemberId::new();
        list.revoke_member(member, 2_000, 900).await.expect("revokes");
        list.revoke_member(member, 1_000, 900).await.expect("revokes");
        assert!(list.is_revoked(member, SessionId::new(), 1_500).await.expect("answers"));
    }

    #[tokio::test]
    async fn revocations_expire_after_their_ttl() {
        let list = MemoryRevocationList::new();
        let (member, session) = (MemberId::new(), SessionId::new());
        list.revoke_sessions(member, &[session], 1).await.expect("revokes");
        list.revoke_member(member, 1_000, 1).await.expect("revokes");
        assert!(list.is_revoked(member, session, 2_000).await.expect("answers"));
        assert!(list.is_revoked(member, SessionId::new(), 500).await.expect("answers"));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(!list.is_revoked(member, session, 2_000).await.expect("answers"));
        assert!(!list.is_revoked(member, SessionId::new(), 500).await.expect("answers"));
        let inner = list.inner();
        assert!(inner.sessions.is_empty() && inner.members.is_empty());
    }

    #[tokio::test]
    async fn a_huge_ttl_does_not_overflow() {
        let list = MemoryRevocationList::new();
        let (member, session) = (MemberId::new(), SessionId::new());
        list.revoke_sessions(member, &[session], u64::MAX).await.expect("revokes");
        list.revoke_member(member, 1, u64::MAX).await.expect("revokes");
        assert!(list.is_revoked(member, session, 5).await.expect("answers"));
        assert!(list.is_revoked(member, SessionId::new(), 1).await.expect("answers"));
    }
}
