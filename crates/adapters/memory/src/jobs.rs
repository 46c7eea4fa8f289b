//! The job queue in memory: one process is the only instance, so this is the embedded mode's
//! queue (and a test double with the PostgreSQL queue's rules).

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use onboard_kernel::jobs::{Job, JobQueue, NewJob};
use uuid::Uuid;

/// Jobs behind one mutex; every call is atomic. Keys are unique among the jobs held; a claim
/// leases a job under a fresh token, and only that token completes or reschedules it.
#[derive(Debug, Default)]
pub struct MemoryJobQueue {
    jobs: Mutex<Vec<Row>>,
}

#[derive(Debug, Clone)]
struct Row {
    job: Job,
    /// `None`: not leased.
    leased: Option<(Uuid, DateTime<Utc>)>,
    last_error: Option<String>,
}

impl MemoryJobQueue {
    fn lock(&self) -> MutexGuard<'_, Vec<Row>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last error recorded for the job with this key (a test aid).
    pub fn last_error(&self, key: &str) -> Option<String> {
        self.lock().iter().find(|r| r.job.key.as_deref() == Some(key))?.last_error.clone()
    }
}

fn holds(row: &Row, job: &Job) -> bool {
    row.job.id == job.id && row.leased.is_some_and(|(lease, _)| lease == job.lease)
}

#[async_trait]
impl JobQueue for MemoryJobQueue {
    async fn enqueue(&self, job: &NewJob) -> anyhow::Result<bool> {
        let mut jobs = self.lock();
        if job.key.is_some() && jobs.iter().any(|r| r.job.key == job.key) {
            return Ok(false);
        }
        jobs.push(Row {
            job: Job {
                id: Uuid::now_v7(),
                name: job.name.clone(),
                key: job.key.clone(),
                payload: job.payload.clone(),
                run_at: job.run_at,
                attempts: 0,
                lease: Uuid::nil(),
                leased_until: job.run_at,
            },
            leased: None,
            last_error: None,
        });
        Ok(true)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> anyhow::Result<Vec<Job>> {
        let mut jobs = self.lock();
        let mut due: Vec<usize> = (0..jobs.len())
            .filter(|&i| {
                let r = &jobs[i];
                r.job.run_at <= now && r.leased.is_none_or(|(_, until)| until <= now)
            })
            .collect();
        due.sort_by_key(|&i| (jobs[i].job.run_at, jobs[i].job.id));
        due.truncate(limit as usize);
        let mut claimed = Vec::with_capacity(due.len());
        for i in due {
            let row = &mut jobs[i];
            let token = Uuid::now_v7();
            row.leased = Some((token, now + lease));
            row.job.attempts += 1;
            row.job.lease = token;
            row.job.leased_until = now + lease;
            claimed.push(row.job.clone());
        }
        Ok(claimed)
    }

    async fn complete(&self, job: &Job) -> anyhow::Result<bool> {
        let mut jobs = self.lock();
        let Some(i) = jobs.iter().position(|r| holds(r, job)) else { return Ok(false) };
        jobs.remove(i);
        Ok(true)
    }

    async fn reschedule(
        &self,
        job: &Job,
        run_at: DateTime<Utc>,
        error: Option<String>,
    ) -> anyhow::Result<bool> {
        let mut jobs = self.lock();
        let Some(row) = jobs.iter_mut().find(|r| holds(r, job)) else { return Ok(false) };
        row.leased = None;
        row.job.run_at = run_at;
        if error.is_none() {
            row.job.attempts = 0;
        }
        row.last_error = error;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time")
    }

    #[tokio::test]
    async fn a_due_job_is_claimed_once_while_its_lease_holds() {
        let queue = MemoryJobQueue::default();
        assert!(queue.enqueue(&NewJob::periodic("tick", t0())).await.expect("enqueues"));
        assert!(!queue.enqueue(&NewJob::periodic("tick", t0())).await.expect("keyed"));
        let lease = TimeDelta::minutes(5);
        assert!(
            queue
                .claim_due(t0() - TimeDelta::seconds(1), lease, 10)
                .await
                .expect("the queue answers")
                .is_empty()
        );
        let claimed = queue.claim_due(t0(), lease, 10).await.expect("the queue answers");
        assert_eq!(claimed.len(), 1);
        assert!(
            queue
                .claim_due(t0() + TimeDelta::minutes(4), lease, 10)
                .await
                .expect("the queue answers")
                .is_empty()
        );
        // The lease ran out: another worker takes it over; the first may no longer end it.
        let taken = queue
            .claim_due(t0() + TimeDelta::minutes(5), lease, 10)
            .await
            .expect("the queue answers");
        assert_eq!(taken[0].attempts, 2);
        assert!(!queue.complete(&claimed[0]).await.expect("the queue answers"));
        let next = t0() + TimeDelta::hours(1);
        assert!(
            queue
                .reschedule(&taken[0], next, Some("boom".into()))
                .await
                .expect("the queue answers")
        );
        assert_eq!(queue.last_error("tick").as_deref(), Some("boom"));
        let again = queue.claim_due(next, lease, 10).await.expect("the queue answers");
        assert!(queue.complete(&again[0]).await.expect("the queue answers"));
        assert!(
            queue
                .claim_due(next + TimeDelta::days(1), lease, 10)
                .await
                .expect("the queue answers")
                .is_empty()
        );
    }
}
