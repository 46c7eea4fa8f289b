//! The job runner: polls the job queue, claims due jobs and dispatches them by name, so that
//! periodic work runs once across server instances (the queue hands a due job to one worker
//! under a lease; see [`onboard_kernel::jobs`]).
//!
//! - A periodic job (registered with [`JobRunner::every`]) is seeded at start-up (keyed by its
//!   name, so all instances share one row) and, once run, rescheduled `every` later, whether
//!   it succeeded or not (the error is recorded on the row).
//! - A one-off job (a handler registered with [`JobRunner::on`], enqueued by anyone) is
//!   deleted once it succeeds; a failure is retried after 1, 4, 9, 16 minutes and dropped
//!   (logged as an error) after [`MAX_ATTEMPTS`] attempts.
//! - A job no handler knows is left for an instance that knows it (tried again a minute later).
//!
//! The queue's clock is the wall clock: the payments domain may run on a test clock, but its
//! periodic use case must still run every tick.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use onboard_kernel::Clock;
use onboard_kernel::jobs::{Job, JobQueue, NewJob};

/// The name of the payments domain's periodic job
/// ([`onboard_payments::PaymentsService::run_periodic`]).
pub const PAYMENTS_PERIODIC: &str = "payments.periodic";

/// The name of the SMS credit periodic job (reconciliation of purchases, then the due auto
/// top-ups: [`onboard_payments::sms_credit::SmsCreditService::run_periodic`]).
pub const SMS_CREDIT_PERIODIC: &str = "sms_credit.periodic";

/// A one-off job is dropped after this many failed attempts.
pub const MAX_ATTEMPTS: u32 = 5;

/// How long a claim holds a job before another instance may take it over.
const LEASE: TimeDelta = TimeDelta::minutes(5);

/// How many jobs one poll claims.
const BATCH: u32 = 10;

/// What a handler returns.
pub type JobFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Runs one job.
pub type Handler = Arc<dyn Fn(Job) -> JobFuture + Send + Sync>;

/// Claims due jobs from a [`JobQueue`] and runs their handlers.
pub struct JobRunner {
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    handlers: HashMap<String, Handler>,
    /// Periodic jobs and their period.
    periodic: HashMap<String, TimeDelta>,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.handlers.keys().collect();
        names.sort();
        f.debug_struct("JobRunner").field("handlers", &names).finish_non_exhaustive()
    }
}

impl JobRunner {
    /// A runner with no handlers, on `queue`, timed by `clock`.
    pub fn new(queue: Arc<dyn JobQueue>, clock: Arc<dyn Clock>) -> Self {
        Self { queue, clock, handlers: HashMap::new(), periodic: HashMap::new() }
    }

    /// Runs `handler` for the one-off jobs named `name`.
    #[must_use]
    pub fn on<F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |job| Box::pin(handler(job)));
        self.handlers.insert(name.to_owned(), handler);
        self
    }

    /// Runs `handler` every `every` (once across instances), as the periodic job `name`.
    #[must_use]
    pub fn every<F, Fut>(mut self, name: &str, every: TimeDelta, handler: F) -> Self
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.periodic.insert(name.to_owned(), every);
        self.on(name, handler)
    }

    /// Makes sure every periodic job has its row, due now when it had none.
    pub async fn seed(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        for name in self.periodic.keys() {
            self.queue.enqueue(&NewJob::periodic(name, now)).await?;
        }
        Ok(())
    }

    /// Claims the jobs due now and runs them, one after the other; answers how many ran.
    pub async fn run_due(&self) -> anyhow::Result<usize> {
        let jobs = self.queue.claim_due(self.clock.now(), LEASE, BATCH).await?;
        let ran = jobs.len();
        for job in jobs {
            self.run(job).await?;
        }
        Ok(ran)
    }

    async fn run(&self, job: Job) -> anyhow::Result<()> {
        let Some(handler) = self.handlers.get(&job.name) else {
            tracing::warn!(job = %job.name, "no handler for this job here; leaving it");
            let later = self.clock.now() + TimeDelta::minutes(1);
            let error = format!("no handler for {:?}", job.name);
            self.queue.reschedule(&job, later, Some(error)).await?;
            return Ok(());
        };
        // A task of its own, so that a panicking handler fails its job, not the runner.
        let outcome = match tokio::spawn(handler(job.clone())).await {
            Ok(outcome) => outcome,
            Err(e) => Err(anyhow::anyhow!("the job's task failed: {e}")),
        };
        let now = self.clock.now();
        let held = match (self.periodic.get(&job.name), outcome) {
            (Some(every), Ok(())) => self.queue.reschedule(&job, now + *every, None).await?,
            (Some(every), Err(e)) => {
                tracing::warn!(job = %job.name, error = ?e, "periodic job failed");
                self.queue.reschedule(&job, now + *every, Some(format!("{e:#}"))).await?
            }
            (None, Ok(())) => self.queue.complete(&job).await?,
            (None, Err(e)) if job.attempts >= MAX_ATTEMPTS => {
                tracing::error!(job = %job.name, id = %job.id, payload = %job.payload, error = ?e,
                    "job failed for the last time; dropping it");
                self.queue.complete(&job).await?
            }
            (None, Err(e)) => {
                tracing::warn!(job = %job.name, attempt = job.attempts, error = ?e, "job failed");
                let backoff = TimeDelta::minutes(i64::from(job.attempts.pow(2)));
                self.queue.reschedule(&job, now + backoff, Some(format!("{e:#}"))).await?
            }
        };
        if !held {
            tracing::warn!(job = %job.name, "the job's lease ran out while it ran");
        }
        Ok(())
    }

    /// Seeds the periodic jobs, then polls every `poll` for as long as the server runs.
    pub fn spawn(self, poll: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if let Err(e) = self.seed().await {
                tracing::warn!(error = ?e, "seeding periodic jobs failed");
            }
            let mut interval = tokio::time::interval(poll);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(e) = self.run_due().await {
                    tracing::warn!(error = ?e, "the job runner could not poll");
                }
            }
        })
    }
}

/// The runner of the payments domain's periodic work ([`PAYMENTS_PERIODIC`]: reconciliation
/// of lost webhooks and period ends, every `every`).
pub fn payments_runner(
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    payments: onboard_payments::PaymentsService,
    every: TimeDelta,
) -> JobRunner {
    JobRunner::new(queue, clock).every(PAYMENTS_PERIODIC, every, move |_| {
        let payments = payments.clone();
        async move {
            let report = payments.run_periodic().await?;
            if report != onboard_payments::PeriodicReport::default() {
                tracing::info!(?report, "periodic billing work");
            }
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use onboard_kernel::SystemClock;
    use onboard_memory::MemoryJobQueue;
    use onboard_postgres::PgJobQueue;
    use onboard_postgres::testing::TestDatabase;

    use super::*;

    fn counting(queue: Arc<dyn JobQueue>, count: Arc<AtomicUsize>) -> JobRunner {
        let once = count.clone();
        JobRunner::new(queue, Arc::new(SystemClock))
            .every("tick", TimeDelta::hours(1), move |_| {
                let count = count.clone();
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .on("once", move |_| {
                let count = once.clone();
                async move {
                    count.fetch_add(100, Ordering::SeqCst);
                    Ok(())
                }
            })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_runners_against_one_database_run_a_due_job_exactly_once() {
        let db = TestDatabase::new().await;
        // Two instances: each its own pool.
        let other_pool = onboard_postgres::connect(db.url(), 4).await.expect("connects");
        let count = Arc::new(AtomicUsize::new(0));
        let a = Arc::new(counting(Arc::new(PgJobQueue::new(db.pool())), count.clone()));
        let b = Arc::new(counting(Arc::new(PgJobQueue::new(other_pool)), count.clone()));
        a.seed().await.expect("seeds");
        b.seed().await.expect("seeds again");
        let once = NewJob::once("once", serde_json::Value::Null, SystemClock.now());
        PgJobQueue::new(db.pool()).enqueue(&once).await.expect("enqueues");
        for _ in 0..5 {
            let (ra, rb) = tokio::join!(a.run_due(), b.run_due());
            ra.expect("runs");
            rb.expect("runs");
        }
        // The periodic job once, the one-off job once.
        assert_eq!(count.load(Ordering::SeqCst), 101);
    }

    #[tokio::test]
    async fn a_failing_one_off_job_is_retried_later_and_a_periodic_one_keeps_its_period() {
        let queue = Arc::new(MemoryJobQueue::default());
        let runner = JobRunner::new(queue.clone(), Arc::new(SystemClock))
            .every("tick", TimeDelta::hours(1), |_| async { anyhow::bail!("tick failed") })
            .on("once", |_| async { anyhow::bail!("once failed") });
        runner.seed().await.expect("the queue answers");
        let once = NewJob {
            key: Some("once-1".into()),
            ..NewJob::once("once", serde_json::Value::Null, SystemClock.now())
        };
        queue.enqueue(&once).await.expect("the queue answers");
        assert_eq!(runner.run_due().await.expect("the queue answers"), 2);
        // Neither is due again now; both recorded their error.
        assert_eq!(runner.run_due().await.expect("the queue answers"), 0);
        assert_eq!(queue.last_error("tick").as_deref(), Some("tick failed"));
        assert_eq!(queue.last_error("once-1").as_deref(), Some("once failed"));
    }

    #[tokio::test]
    async fn a_job_without_a_handler_is_left_for_another_instance() {
        let queue = Arc::new(MemoryJobQueue::default());
        let runner = JobRunner::new(queue.clone(), Arc::new(SystemClock));
        let job =
            NewJob { key: Some("k".into()), ..NewJob::periodic("unknown", SystemClock.now()) };
        queue.enqueue(&job).await.expect("the queue answers");
        assert_eq!(runner.run_due().await.expect("the queue answers"), 1);
        assert_eq!(runner.run_due().await.expect("the queue answers"), 0);
        assert_eq!(queue.last_error("k").as_deref(), Some("no handler for \"unknown\""));
    }
}
