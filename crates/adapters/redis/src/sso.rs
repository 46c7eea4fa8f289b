//! Pending single sign-on logins and login grants.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::redis;
use onboard_sso::ports::SsoStateStore;
use onboard_sso::{LoginGrant, PendingLogin};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Pool, connection, debug_store};

/// An [`SsoStateStore`] in Redis.
///
/// Keys: `{prefix}sso-state:{<digest>}` (a pending login, JSON) and
/// `{prefix}sso-login:{<digest>}` (a login grant, JSON), each written with `SET … EX` and
/// taken with `GETDEL`, one atomic command: of concurrent takes of one key, at most one gets
/// the value. Expiry is Redis' own clock.
pub struct RedisSsoStateStore {
    pool: Pool,
    prefix: String,
}

impl RedisSsoStateStore {
    /// A store whose keys start with `prefix` (which must not contain `{` or `}`).
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self { pool, prefix: prefix.into() }
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{{{key}}}", self.prefix)
    }

    async fn put<T: Serialize + Sync>(
        &self,
        key: String,
        value: &T,
        ttl_secs: u64,
    ) -> anyhow::Result<()> {
        let json = serde_json::to_string(value).context("encoding an SSO value")?;
        let mut conn = connection(&self.pool).await?;
        redis::cmd("SET")
            .arg(key)
            .arg(json)
            .arg("EX")
            .arg(ttl_secs.max(1))
            .query_async::<()>(&mut conn)
            .await
            .context("Redis: keeping an SSO value")
    }

    async fn take<T: DeserializeOwned>(&self, key: String) -> anyhow::Result<Option<T>> {
        let mut conn = connection(&self.pool).await?;
        let json: Option<String> = redis::cmd("GETDEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .context("Redis: taking an SSO value")?;
        json.map(|j| serde_json::from_str(&j).context("Redis: an SSO value does not decode"))
            .transpose()
    }
}

impl fmt::Debug for RedisSsoStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_store("RedisSsoStateStore", &self.pool, &self.prefix, f)
    }
}

#[async_trait]
impl SsoStateStore for RedisSsoStateStore {
    async fn put_login(
        &self,
        key: &str,
        login: &PendingLogin,
        ttl_secs: u64,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.put(self.key("sso-state", key), login, ttl_secs).await
    }

    async fn take_login(
        &self,
        key: &str,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<Option<PendingLogin>> {
        self.take(self.key("sso-state", key)).await
    }

    async fn put_grant(
        &self,
        key: &str,
        grant: &LoginGrant,
        ttl_secs: u64,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.put(self.key("sso-login", key), grant, ttl_secs).await
    }

    async fn take_grant(
        &self,
        key: &str,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<Option<LoginGrant>> {
        self.take(self.key("sso-login", key)).await
    }
}
