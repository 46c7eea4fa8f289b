//! Live invite codes in memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onboard_invites::ports::InviteCodeStore;
use onboard_invites::{InviteCode, InviteId};

/// Invite codes that expire after their TTL by the wall clock (like Redis keys with `EX`), one
/// mutex for all, so `consume` is an atomic compare-and-delete: of concurrent calls for one
/// code, exactly one answers `true`.
///
/// `delete` finds an invite's code by a scan of the live codes (no reverse index to keep in
/// step); expired codes are swept on every `put` and `delete`. `Debug` shows only how many
/// codes are held, never a code.
#[derive(Default)]
pub struct MemoryInviteCodeStore {
    codes: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    invite: InviteId,
    /// `None`: beyond any clock.
    expires: Option<Instant>,
}

impl Entry {
    fn new(invite: InviteId, ttl_secs: u64) -> Self {
        Self { invite, expires: Instant::now().checked_add(Duration::from_secs(ttl_secs.max(1))) }
    }

    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

impl MemoryInviteCodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn codes(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.codes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The codes with the expired ones dropped.
    fn swept(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        let mut codes = self.codes();
        let now = Instant::now();
        codes.retain(|_, e| e.live(now));
        codes
    }
}

impl fmt::Debug for MemoryInviteCodeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryInviteCodeStore").field("codes", &self.codes().len()).finish()
    }
}

#[async_trait]
impl InviteCodeStore for MemoryInviteCodeStore {
    async fn put(&self, code: &InviteCode, invite: InviteId, ttl_secs: u64) -> anyhow::Result<()> {
        self.swept().insert(code.as_str().to_owned(), Entry::new(invite, ttl_secs));
        Ok(())
    }

    async fn get(&self, code: &InviteCode) -> anyhow::Result<Option<InviteId>> {
        let now = Instant::now();
        Ok(self.codes().get(code.as_str()).filter(|e| e.live(now)).map(|e| e.invite))
    }

    async fn consume(&self, code: &InviteCode, invite: InviteId) -> anyhow::Result<bool> {
        let now = Instant::now();
        let mut codes = self.codes();
        let matches = codes.get(code.as_str()).is_some_and(|e| e.live(now) && e.invite == invite);
        if matches {
            codes.remove(code.as_str());
        }
        Ok(matches)
    }

    async fn restore(
        &self,
        code: &InviteCode,
        invite: InviteId,
        ttl_secs: u64,
    ) -> anyhow::Result<()> {
        let mut codes = self.swept();
        codes.entry(code.as_str().to_owned()).or_insert_with(|| Entry::new(invite, ttl_secs));
        Ok(())
    }

    async fn delete(&self, invite: InviteId) -> anyhow::Result<()> {
        self.swept().retain(|_, e| e.invite != invite);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_code_names_its_invite_and_unknown_codes_name_nothing() {
        let store = MemoryInviteCodeStore::new();
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.expect("put");

        assert_eq!(store.get(&code).await.expect("get"), Some(invite));
        assert_eq!(store.get(&InviteCode::generate()).await.expect("get"), None);
    }

    #[tokio::test]
    async fn a_code_is_consumed_once_and_then_names_nothing() {
        let store = MemoryInviteCodeStore::new();
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.expect("put");

        assert!(store.consume(&code, invite).await.expect("consume"));
        assert!(!store.consume(&code, invite).await.expect("consume"));
        assert_eq!(store.get(&code).await.expect("get"), None);
    }

    #[tokio::test]
    async fn a_code_is_not_consumed_for_another_invite() {
        let store = MemoryInviteCodeStore::new();
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.expect("put");

        assert!(!store.consume(&code, InviteId::new()).await.expect("consume"));
        assert_eq!(store.get(&code).await.expect("get"), Some(invite));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_eight_concurrent_consumes_exactly_one_wins() {
        let store = Arc::new(MemoryInviteCodeStore::new());
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.expect("put");

        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (store, code) = (Arc::clone(&store), code.clone());
                tokio::spawn(async move { store.consume(&code, invite).await.expect("consume") })
            })
            .collect();
        let mut wins = 0;
        for racer in racers {
            wins += usize::from(racer.await.expect("the task ends"));
        }

        assert_eq!(wins, 1);
    }

    #[tokio::test]
    async fn a_restored_code_works_again_but_a_restore_never_overwrites_a_live_code() {
        let store = MemoryInviteCodeStore::new();
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.expect("put");
        store.restore(&code, InviteId::new(), 60).await.expect("restore");
        assert_eq!(store.get(&code).await.expect("get"), Some(invite));

        assert!(store.consume(&code, invite).await.expect("consume"));
        store.restore(&code, invite, 60).await.expect("restore");

        assert_eq!(store.get(&code).await.expect("get"), Some(invite));
        assert!(store.consume(&code, invite).await.expect("consume"));
    }

    #[tokio::test]
    async fn deleting_an_invites_code_kills_it_and_spares_the_others() {
        let store = MemoryInviteCodeStore::new();
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        let (other_code, other) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.expect("put");
        store.put(&other_code, other, 60).await.expect("put");

        store.delete(invite).await.expect("delete");
        store.delete(invite).await.expect("idempotent");

        assert_eq!(store.get(&code).await.expect("get"), None);
        assert!(!store.consume(&code, invite).await.expect("consume"));
        assert_eq!(store.get(&other_code).await.expect("get"), Some(other));
    }

    #[tokio::test]
    async fn codes_expire_with_their_ttl_and_a_zero_ttl_is_one_second() {
        let store = MemoryInviteCodeStore::new();
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 0).await.expect("put");
        assert_eq!(store.get(&code).await.expect("get"), Some(invite));

        tokio::time::sleep(Duration::from_millis(1100)).await;

        assert_eq!(store.get(&code).await.expect("get"), None);
        assert!(!store.consume(&code, invite).await.expect("consume"));
        store.delete(InviteId::new()).await.expect("sweeps");
        assert!(store.codes().is_empty());
    }

    #[tokio::test]
    async fn a_huge_ttl_does_not_overflow() {
        let store = MemoryInviteCodeStore::new();
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, u64::MAX).await.expect("put");

        assert_eq!(store.get(&code).await.expect("get"), Some(invite));
    }

    #[tokio::test]
    async fn debug_output_never_shows_a_code() {
        let store = MemoryInviteCodeStore::new();
        let code = InviteCode::generate();
        store.put(&code, InviteId::new(), 60).await.expect("put");

        let printed = format!("{store:?}");

        assert!(!printed.contains(code.as_str()) && printed.contains("codes: 1"), "{printed}");
    }
}
