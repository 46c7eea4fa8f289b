//! The job queue port: work that must run ONCE across server instances (periodic use cases,
//! one-off follow-ups such as a message delivery check).
//!
//! A job is claimed by one worker at a time under a lease: [`JobQueue::claim_due`] hands a due
//! job to exactly one caller, with a fresh lease token, until the lease runs out. The worker
//! then ends it with [`JobQueue::complete`] (one-off work done) or [`JobQueue::reschedule`]
//! (periodic work, or a retry). Both act only while the caller's lease token is still the
//! job's: a worker that lost its lease (it crashed or ran too long, and another took the job
//! over) changes nothing. Work should therefore be idempotent: a lease that runs out while the
//! work still runs lets a second worker start it again.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use onboard_kernel::jobs::NewJob;
//!
//! let at = Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).unwrap();
//! // A periodic job is keyed by its name: enqueuing it again while it exists changes nothing.
//! let tick = NewJob::periodic("payments.periodic", at);
//! assert_eq!(tick.key.as_deref(), Some("payments.periodic"));
//! // A one-off job carries its own payload.
//! let check = NewJob::once("messaging.check", serde_json::json!({"id": 7}), at);
//! assert_eq!(check.key, None);
//! ```

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

/// A job to add to the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What to run: the runner dispatches by name.
    pub name: String,
    /// At most one job with a given key exists at a time (`None`: no such limit).
    pub key: Option<String>,
    /// The work's arguments.
    pub payload: serde_json::Value,
    /// Not claimed before this instant.
    pub run_at: DateTime<Utc>,
}

impl NewJob {
    /// A periodic job: keyed by its name, no payload.
    pub fn periodic(name: &str, run_at: DateTime<Utc>) -> Self {
        Self {
            name: name.to_owned(),
            key: Some(name.to_owned()),
            payload: serde_json::Value::Null,
            run_at,
        }
    }

    /// A one-off job with `payload`, not keyed.
    pub fn once(name: &str, payload: serde_json::Value, run_at: DateTime<Utc>) -> Self {
        Self { name: name.to_owned(), key: None, payload, run_at }
    }
}

/// A job handed to a worker by [`JobQueue::claim_due`].
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub name: String,
    pub key: Option<String>,
    pub payload: serde_json::Value,
    /// When it was due.
    pub run_at: DateTime<Utc>,
    /// How many times it was claimed since it was enqueued or last rescheduled without error
    /// (1 on the first run).
    pub attempts: u32,
    /// This claim's token: only its holder may complete or reschedule the job.
    pub lease: Uuid,
    /// Until when the lease holds.
    pub leased_until: DateTime<Utc>,
}

/// A queue of jobs shared by every server instance.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Adds `job`. When it has a key and a job with that key exists, nothing changes and the
    /// answer is `false`.
    async fn enqueue(&self, job: &NewJob) -> anyhow::Result<bool>;

    /// Claims up to `limit` jobs due at `now` (`run_at <= now`, and not leased or their lease
    /// ran out), oldest `run_at` first, each for `lease` from `now` under a fresh token, and
    /// bumps their `attempts`. Concurrent callers never get the same job while its lease holds.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> anyhow::Result<Vec<Job>>;

    /// Deletes the job, if `job.lease` still holds it; answers whether it did.
    async fn complete(&self, job: &Job) -> anyhow::Result<bool>;

    /// Releases the job to run again at `run_at`, if `job.lease` still holds it; `error` is
    /// recorded as its last error (`None`: it succeeded, and its attempts start over). Answers
    /// whether it did.
    async fn reschedule(
        &self,
        job: &Job,
        run_at: DateTime<Utc>,
        error: Option<String>,
    ) -> anyhow::Result<bool>;
}
