//! Pending single sign-on logins and login grants in memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use onboard_sso::ports::SsoStateStore;
use onboard_sso::{LoginGrant, PendingLogin};

/// An [`SsoStateStore`] in memory: values expire `ttl_secs` after the `now` they were put at
/// (by the caller's clock), and a take removes the value under the one lock, so of concurrent
/// takes of one key at most one gets it. Expired values are swept on every put. `Debug` shows
/// only how many values are held.
#[derive(Default)]
pub struct MemorySsoStateStore {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    logins: HashMap<String, (PendingLogin, DateTime<Utc>)>,
    grants: HashMap<String, (LoginGrant, DateTime<Utc>)>,
}

impl MemorySsoStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemorySsoStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries();
        f.debug_struct("MemorySsoStateStore")
            .field("logins", &entries.logins.len())
            .field("grants", &entries.grants.len())
            .finish()
    }
}

fn expiry(now: DateTime<Utc>, ttl_secs: u64) -> DateTime<Utc> {
    now + Duration::seconds(i64::try_from(ttl_secs.max(1)).unwrap_or(i64::MAX / 1000))
}

#[async_trait]
impl SsoStateStore for MemorySsoStateStore {
    async fn put_login(
        &self,
        key: &str,
        login: &PendingLogin,
        ttl_secs: u64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut entries = self.entries();
        entries.logins.retain(|_, (_, expires)| *expires > now);
        entries.logins.insert(key.to_owned(), (login.clone(), expiry(now, ttl_secs)));
        Ok(())
    }

    async fn take_login(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<PendingLogin>> {
        let taken = self.entries().logins.remove(key);
        Ok(taken.filter(|(_, expires)| *expires > now).map(|(login, _)| login))
    }

    async fn put_grant(
        &self,
        key: &str,
        grant: &LoginGrant,
        ttl_secs: u64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut entries = self.entries();
        entries.grants.retain(|_, (_, expires)| *expires > now);
        entries.grants.insert(key.to_owned(), (grant.clone(), expiry(now, ttl_secs)));
        Ok(())
    }

    async fn take_grant(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<LoginGrant>> {
        let taken = self.entries().grants.remove(key);
        Ok(taken.filter(|(_, expires)| *expires > now).map(|(grant, _)| grant))
    }
}

#[cfg(test)]
mod tests {
    use onboard_sso::{IdentityClaims, ProviderName};

    use super::*;

    fn grant() -> LoginGrant {
        LoginGrant {
            provider: ProviderName::parse("sparcs").expect("a name"),
            claims: IdentityClaims { subject: "s".into(), ..IdentityClaims::default() },
        }
    }

    #[tokio::test]
    async fn a_grant_is_taken_once() {
        let store = MemorySsoStateStore::new();
        let now = Utc::now();
        store.put_grant("k", &grant(), 60, now).await.expect("put");
        assert_eq!(store.take_grant("k", now).await.expect("take"), Some(grant()));
        assert_eq!(store.take_grant("k", now).await.expect("take"), None);
    }

    #[tokio::test]
    async fn an_expired_grant_is_gone() {
        let store = MemorySsoStateStore::new();
        let now = Utc::now();
        store.put_grant("k", &grant(), 60, now).await.expect("put");
        let later = now + Duration::seconds(60);
        assert_eq!(store.take_grant("k", later).await.expect("take"), None);
    }
}
