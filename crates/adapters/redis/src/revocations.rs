//! Access-token revocations.

use std::fmt;
use tracing::Instrument as _;

use anyhow::Context as _;
use async_trait::async_trait;
use deadpool_redis::redis::{self, Script};
use onboard_kernel::{MemberId, SessionId};
use onboard_members::ports::RevocationList;

use crate::{Pool, connection, debug_store};

/// A [`RevocationList`] in Redis. Keys (one hash-tag slot per member):
/// `{prefix}rev:{<member>}:s:<session>` (that session's access tokens are refused) and
/// `{prefix}rev:{<member>}:all` (seconds since the epoch: the member's tokens issued at or
/// before it are refused). Each entry lives for the TTL it was written with; a lookup is one
/// `MGET`.
pub struct RedisRevocationList {
    pool: Pool,
    prefix: String,
    revoke_member: Script,
}

impl RedisRevocationList {
    /// A list whose keys start with `prefix` (which must not contain `{` or `}`).
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
            revoke_member: Script::new(include_str!("scripts/revoke_member.lua")),
        }
    }

    fn session_key(&self, member: MemberId, session: SessionId) -> String {
        format!("{}rev:{{{member}}}:s:{session}", self.prefix)
    }

    fn member_key(&self, member: MemberId) -> String {
        format!("{}rev:{{{member}}}:all", self.prefix)
    }
}

impl fmt::Debug for RedisRevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_store("RedisRevocationList", &self.pool, &self.prefix, f)
    }
}

#[async_trait]
impl RevocationList for RedisRevocationList {
    async fn revoke_sessions(
        &self,
        member: MemberId,
        sessions: &[SessionId],
        ttl_secs: u64,
    ) -> anyhow::Result<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for &session in sessions {
            pipe.set_ex(self.session_key(member, session), 1, ttl_secs.max(1)).ignore();
        }
        let mut conn = connection(&self.pool).await?;
        pipe.query_async::<()>(&mut conn).await.context("Redis: revoking sessions")
    }

    async fn revoke_member(&self, member: MemberId, at: i64, ttl_secs: u64) -> anyhow::Result<()> {
        let mut conn = connection(&self.pool).await?;
        self.revoke_member
            .key(self.member_key(member))
            .arg(at)
            .arg(ttl_secs.max(1))
            .invoke_async::<()>(&mut conn)
            .instrument(crate::script_span("revocation.revoke_member"))
            .await
            .context("Redis: revoking a member's tokens")
    }

    async fn is_revoked(
        &self,
        member: MemberId,
        session: SessionId,
        issued_at: i64,
    ) -> anyhow::Result<bool> {
        let mut conn = connection(&self.pool).await?;
        let (by_session, all): (Option<String>, Option<i64>) = redis::cmd("MGET")
            .arg(self.session_key(member, session))
            .arg(self.member_key(member))
            .query_async(&mut conn)
            .await
            .context("Redis: looking up revocations")?;
        Ok(by_session.is_some() || all.is_some_and(|at| issued_at <= at))
    }
}
