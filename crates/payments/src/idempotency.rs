//! Idempotent commands: a command run under an idempotency key runs at most once per
//! (group, key) for 24 hours, and a repeat with the same request answers the first outcome.
//!
//! [`IdempotencyKeys::run`] is the one place that claims a key, runs the command, and keeps or
//! releases its outcome. What is kept is the command's outcome as a domain value (serialised
//! to JSON through the [`IdempotencyRepository`] port), never a transport answer; each command
//! decides which of its results are final:
//!
//! - `Ok(outcome)`: final. It is kept and every repeat answers it, refusals included (a repeat
//!   of a declined payment is declined again without asking the gateway).
//! - `Err(error)`: not final. The key is released, so a repeat runs the command again (used
//!   when nothing happened and trying again is safe, such as a gateway that could not be
//!   reached before anything was charged).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use chrono::SubsecRound;
use onboard_kernel::{Clock, GroupId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::IdempotencyError;
use crate::ports::{Claim, IdempotencyRepository};

/// A client's idempotency key: 1 to 255 visible ASCII characters, surrounding spaces ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Not an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key: 1 to 255 visible ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;

    /// Reads a key as the client sent it.
    ///
    /// # Errors
    /// [`IdempotencyKeyError`] when it is empty (after trimming), longer than
    /// [`Self::MAX_LEN`], or holds anything but visible ASCII.
    pub fn parse(raw: &str) -> Result<Self, IdempotencyKeyError> {
        let key = raw.trim();
        if key.is_empty() || key.len() > Self::MAX_LEN || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(IdempotencyKeyError);
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stable fingerprint of a command's request (the SHA-256 of its canonical form, in hex): a
/// key used again with another fingerprint is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a request's canonical bytes.
    pub fn of(request: &[u8]) -> Self {
        Self(Sha256::digest(request).iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The outcome of an idempotent command: run now, or the first run's answered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// The command ran now.
    Fresh(T),
    /// A repeat: the command did not run; this is the first run's outcome.
    Replayed(T),
}

impl<T> Answer<T> {
    /// The outcome, fresh or replayed.
    pub fn into_outcome(self) -> T {
        match self {
            Self::Fresh(t) | Self::Replayed(t) => t,
        }
    }

    /// Whether the command did not run and its first outcome was answered.
    pub const fn is_replayed(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }
}

/// Runs commands at most once per (group, idempotency key).
#[derive(Clone)]
pub struct IdempotencyKeys {
    store: Arc<dyn IdempotencyRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IdempotencyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKeys")
    }
}

impl IdempotencyKeys {
    pub fn new(store: Arc<dyn IdempotencyRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Runs `command` for `group` once per `key`: without a key it simply runs. With one, the
    /// first request claims the key and runs; its final outcome (`Ok`) is kept and answered to
    /// every repeat with the same `fingerprint` for 24 hours, while an `Err` releases the key
    /// and is answered as it is.
    ///
    /// # Errors
    /// The command's own error; [`IdempotencyError::Reused`] when the key was used with another
    /// fingerprint, [`IdempotencyError::InUse`] while the first request still runs, and storage
    /// failures, each turned into `E`.
    pub async fn run<O, E, F, Fut>(
        &self,
        group: GroupId,
        key: Option<&IdempotencyKey>,
        fingerprint: &Fingerprint,
        command: F,
    ) -> Result<Answer<O>, E>
    where
        O: Serialize + DeserializeOwned,
        E: From<IdempotencyError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<O, E>>,
    {
        let Some(key) = key else { return command().await.map(Answer::Fresh) };
        let now = self.clock.now().trunc_subsecs(6);
        let claim = self
            .store
            .claim(group, key.as_str(), fingerprint.as_str(), now)
            .await
            .map_err(IdempotencyError::from)?;
        match claim {
            Claim::Claimed => {}
            Claim::Existing { request_hash, .. } if request_hash != fingerprint.as_str() => {
                return Err(IdempotencyError::Reused.into());
            }
            Claim::Existing { outcome: None, .. } => return Err(IdempotencyError::InUse.into()),
            Claim::Existing { outcome: Some(first), .. } => {
                let first = serde_json::from_value(first)
                    .context("reading a stored outcome")
                    .map_err(IdempotencyError::from)?;
                return Ok(Answer::Replayed(first));
            }
        }
        match command().await {
            Ok(outcome) => {
                let stored = serde_json::to_value(&outcome)
                    .context("encoding an outcome")
                    .map_err(IdempotencyError::from)?;
                self.store
                    .complete(group, key.as_str(), &stored)
                    .await
                    .map_err(IdempotencyError::from)?;
                Ok(Answer::Fresh(outcome))
            }
            Err(e) => {
                self.store.release(group, key.as_str()).await.map_err(IdempotencyError::from)?;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::eq;
    use onboard_kernel::MockClock;
    use serde::Deserialize;

    use super::*;
    use crate::ports::MockIdempotencyRepository;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    enum Outcome {
        Done(i64),
        Refused,
    }

    #[derive(Debug, thiserror::Error)]
    enum CommandError {
        #[error("try again")]
        TryAgain,
        #[error(transparent)]
        Key(#[from] IdempotencyError),
    }

    fn keys(store: MockIdempotencyRepository) -> IdempotencyKeys {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time");
        let mut clock = MockClock::new();
        clock.expect_now().returning(move || now);
        IdempotencyKeys::new(Arc::new(store), Arc::new(clock))
    }

    fn key() -> IdempotencyKey {
        IdempotencyKey::parse("k-1").expect("a key")
    }

    #[tokio::test]
    async fn without_a_key_the_command_runs_and_nothing_is_stored() {
        let keys = keys(MockIdempotencyRepository::new());
        let answer: Result<_, CommandError> = keys
            .run(GroupId::new(), None, &Fingerprint::of(b"r"), || async { Ok(Outcome::Done(1)) })
            .await;
        assert_eq!(answer.expect("ran"), Answer::Fresh(Outcome::Done(1)));
    }

    #[tokio::test]
    async fn a_final_outcome_is_stored_as_its_domain_value() {
        let mut store = MockIdempotencyRepository::new();
        store.expect_claim().times(1).returning(|_, _, _, _| Ok(Claim::Claimed));
        store
            .expect_complete()
            .with(mockall::predicate::always(), eq("k-1"), eq(serde_json::json!("Refused")))
            .times(1)
            .returning(|_, _, _| Ok(()));
        store.expect_release().never();
        let answer: Result<_, CommandError> = keys(store)
            .run(GroupId::new(), Some(&key()), &Fingerprint::of(b"r"), || async {
                Ok(Outcome::Refused)
            })
            .await;
        assert_eq!(answer.expect("ran"), Answer::Fresh(Outcome::Refused));
    }

    #[tokio::test]
    async fn a_repeat_answers_the_first_outcome_without_running_the_command() {
        let mut store = MockIdempotencyRepository::new();
        let hash = Fingerprint::of(b"r").as_str().to_owned();
        store.expect_claim().returning(move |_, _, _, _| {
            Ok(Claim::Existing {
                request_hash: hash.clone(),
                outcome: Some(serde_json::json!({"Done": 7})),
            })
        });
        let answer: Result<Answer<Outcome>, CommandError> = keys(store)
            .run(GroupId::new(), Some(&key()), &Fingerprint::of(b"r"), || async {
                panic!("a repeat must not run the command")
            })
            .await;
        let answer = answer.expect("replayed");
        assert!(answer.is_replayed());
        assert_eq!(answer.into_outcome(), Outcome::Done(7));
    }

    #[tokio::test]
    async fn a_key_used_with_another_request_is_refused() {
        let mut store = MockIdempotencyRepository::new();
        store.expect_claim().returning(|_, _, _, _| {
            Ok(Claim::Existing { request_hash: "other".into(), outcome: None })
        });
        let answer: Result<Answer<Outcome>, CommandError> = keys(store)
            .run(GroupId::new(), Some(&key()), &Fingerprint::of(b"r"), || async {
                panic!("must not run")
            })
            .await;
        assert!(matches!(answer, Err(CommandError::Key(IdempotencyError::Reused))));
    }

    #[tokio::test]
    async fn a_key_whose_first_request_still_runs_is_in_use() {
        let mut store = MockIdempotencyRepository::new();
        let hash = Fingerprint::of(b"r").as_str().to_owned();
        store.expect_claim().returning(move |_, _, _, _| {
            Ok(Claim::Existing { request_hash: hash.clone(), outcome: None })
        });
        let answer: Result<Answer<Outcome>, CommandError> = keys(store)
            .run(GroupId::new(), Some(&key()), &Fingerprint::of(b"r"), || async {
                panic!("must not run")
            })
            .await;
        assert!(matches!(answer, Err(CommandError::Key(IdempotencyError::InUse))));
    }

    #[tokio::test]
    async fn an_error_that_is_not_final_releases_the_key() {
        let mut store = MockIdempotencyRepository::new();
        store.expect_claim().returning(|_, _, _, _| Ok(Claim::Claimed));
        store.expect_complete().never();
        store
            .expect_release()
            .with(mockall::predicate::always(), eq("k-1"))
            .times(1)
            .returning(|_, _| Ok(()));
        let answer: Result<Answer<Outcome>, CommandError> = keys(store)
            .run(GroupId::new(), Some(&key()), &Fingerprint::of(b"r"), || async {
                Err(CommandError::TryAgain)
            })
            .await;
        assert!(matches!(answer, Err(CommandError::TryAgain)));
    }

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert_eq!(IdempotencyKey::parse("  abc ").expect("a key").as_str(), "abc");
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse("키").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
