//! Live invite codes.

use std::fmt;
use tracing::Instrument as _;

use anyhow::Context as _;
use async_trait::async_trait;
use deadpool_redis::redis::{self, Script};
use onboard_invites::ports::InviteCodeStore;
use onboard_invites::{InviteCode, InviteId};

use crate::{Pool, connection, debug_store};

/// An [`InviteCodeStore`] in Redis.
///
/// Keys: `{prefix}invite:{<code>}` (value: the invite id) and the reverse key
/// `{prefix}invite:{<invite id>}:code` (value: the code, so that revoking an invite can find
/// its code), both with the invite's TTL (`EX`). The two keys carry different hash tags, so
/// they may live in different Cluster slots: no call touches both atomically, and none needs
/// to. `consume` is one Lua compare-and-delete on the code's key alone; `delete` reads the
/// reverse key, then compare-and-deletes the code. The reverse key is left to expire after a
/// `consume` (the code it names is gone, and a stale reverse key deletes nothing).
pub struct RedisInviteCodeStore {
    pool: Pool,
    prefix: String,
    consume: Script,
}

impl RedisInviteCodeStore {
    /// A store whose keys start with `prefix` (which must not contain `{` or `}`).
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
            consume: Script::new(include_str!("scripts/invite_consume.lua")),
        }
    }

    fn code_key(&self, code: &InviteCode) -> String {
        format!("{}invite:{{{}}}", self.prefix, code.as_str())
    }

    fn invite_key(&self, invite: InviteId) -> String {
        format!("{}invite:{{{invite}}}:code", self.prefix)
    }

    /// Deletes the code's key if it names `invite`; whether it did.
    async fn compare_and_delete(&self, code_key: String, invite: InviteId) -> anyhow::Result<bool> {
        let mut conn = connection(&self.pool).await?;
        let deleted: i64 = self
            .consume
            .key(code_key)
            .arg(invite.to_string())
            .invoke_async(&mut conn)
            .instrument(crate::script_span("invite_code.consume"))
            .await
            .context("Redis: consuming an invite code")?;
        Ok(deleted == 1)
    }
}

impl fmt::Debug for RedisInviteCodeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_store("RedisInviteCodeStore", &self.pool, &self.prefix, f)
    }
}

#[async_trait]
impl InviteCodeStore for RedisInviteCodeStore {
    async fn put(&self, code: &InviteCode, invite: InviteId, ttl_secs: u64) -> anyhow::Result<()> {
        let ttl = ttl_secs.max(1);
        let mut conn = connection(&self.pool).await?;
        redis::pipe()
            .set_ex(self.code_key(code), invite.to_string(), ttl)
            .ignore()
            .set_ex(self.invite_key(invite), code.as_str(), ttl)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .context("Redis: storing an invite code")
    }

    async fn get(&self, code: &InviteCode) -> anyhow::Result<Option<InviteId>> {
        let mut conn = connection(&self.pool).await?;
        let value: Option<String> = redis::cmd("GET")
            .arg(self.code_key(code))
            .query_async(&mut conn)
            .await
            .context("Redis: looking up an invite code")?;
        value
            .map(|v| v.parse::<InviteId>().context("Redis: an invite code names no invite id"))
            .transpose()
    }

    async fn consume(&self, code: &InviteCode, invite: InviteId) -> anyhow::Result<bool> {
        self.compare_and_delete(self.code_key(code), invite).await
    }

    async fn restore(
        &self,
        code: &InviteCode,
        invite: InviteId,
        ttl_secs: u64,
    ) -> anyhow::Result<()> {
        let ttl = ttl_secs.max(1);
        let mut conn = connection(&self.pool).await?;
        redis::pipe()
            .cmd("SET")
            .arg(self.code_key(code))
            .arg(invite.to_string())
            .arg("EX")
            .arg(ttl)
            .arg("NX")
            .ignore()
            .set_ex(self.invite_key(invite), code.as_str(), ttl)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .context("Redis: restoring an invite code")
    }

    async fn delete(&self, invite: InviteId) -> anyhow::Result<()> {
        let invite_key = self.invite_key(invite);
        let code: Option<String> = {
            let mut conn = connection(&self.pool).await?;
            redis::cmd("GET")
                .arg(&invite_key)
                .query_async(&mut conn)
                .await
                .context("Redis: looking up an invite's code")?
        };
        let Some(code) = code else {
            return Ok(());
        };
        // The code's key holds the code verbatim; a value that is not a code names no key.
        if let Ok(code) = InviteCode::parse(&code) {
            self.compare_and_delete(self.code_key(&code), invite).await?;
        }
        let mut conn = connection(&self.pool).await?;
        redis::cmd("DEL")
            .arg(&invite_key)
            .query_async::<()>(&mut conn)
            .await
            .context("Redis: deleting an invite's code")
    }
}
