//! [`JobQueue`] on PostgreSQL (table `jobs`).
//!
//! A claim is one statement: it picks due rows with `FOR UPDATE SKIP LOCKED` (concurrent
//! claimers skip each other's rows instead of waiting) and leases them under a fresh token in
//! the same statement, so a due job goes to exactly one worker while its lease holds. Ending a
//! job is conditional on that token.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::jobs::{Job, JobQueue, NewJob};

use crate::PgPool;
use crate::cached::CachedExt;

/// Adds a job; nothing when its key is taken.
const ENQUEUE: &str = "
    INSERT INTO jobs (id, name, key, payload, run_at, created_at)
    VALUES ($1, $2, $3, $4::jsonb, $5, $6)
    ON CONFLICT ON CONSTRAINT jobs_key_key DO NOTHING";

/// Leases up to `$3` jobs due at `$1` until `$2`, oldest first.
const CLAIM: &str = "
    WITH due AS (
        SELECT id FROM jobs
        WHERE run_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
        ORDER BY run_at, id
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs j SET lease = gen_random_uuid(), locked_until = $2, attempts = j.attempts + 1
    FROM due WHERE j.id = due.id
    RETURNING j.id, j.name, j.key, j.payload::text AS payload, j.run_at, j.attempts, j.lease,
        j.locked_until";

/// Deletes job `$1` while lease `$2` holds it.
const COMPLETE: &str = "DELETE FROM jobs WHERE id = $1 AND lease = $2";

/// Releases job `$1` held by lease `$2` to run at `$3`, with last error `$4`.
const RESCHEDULE: &str = "
    UPDATE jobs SET run_at = $3, lease = NULL, locked_until = NULL, last_error = $4,
        attempts = CASE WHEN $4::text IS NULL THEN 0 ELSE attempts END
    WHERE id = $1 AND lease = $2";

#[derive(Debug, QueryableByName)]
struct JobRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Timestamptz)]
    run_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Uuid)]
    lease: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    locked_until: DateTime<Utc>,
}

/// The job queue in PostgreSQL, shared by every server instance on the database.
#[derive(Clone)]
pub struct PgJobQueue {
    pool: PgPool,
}

impl fmt::Debug for PgJobQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgJobQueue").field("pool", &self.pool.status()).finish()
    }
}

impl PgJobQueue {
    /// A queue on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

#[async_trait]
impl JobQueue for PgJobQueue {
    async fn enqueue(&self, job: &NewJob) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let payload = serde_json::to_string(&job.payload).context("encoding a job payload")?;
        let n = diesel::sql_query(ENQUEUE)
            .bind::<Uuid, _>(uuid::Uuid::now_v7())
            .bind::<Text, _>(&job.name)
            .bind::<Nullable<Text>, _>(job.key.as_deref())
            .bind::<Text, _>(payload)
            .bind::<Timestamptz, _>(job.run_at)
            .bind::<Timestamptz, _>(Utc::now())
            .cached()
            .execute(&mut conn)
            .await
            .context("enqueuing a job")?;
        Ok(n == 1)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> anyhow::Result<Vec<Job>> {
        let mut conn = self.conn().await?;
        let rows: Vec<JobRow> = diesel::sql_query(CLAIM)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(now + lease)
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("claiming due jobs")?;
        let mut jobs = rows
            .into_iter()
            .map(|r| {
                Ok(Job {
                    id: r.id,
                    name: r.name,
                    key: r.key,
                    payload: serde_json::from_str(&r.payload).context("a job payload")?,
                    run_at: r.run_at,
                    attempts: u32::try_from(r.attempts).context("negative attempts")?,
                    lease: r.lease,
                    leased_until: r.locked_until,
                })
            })
            .collect::<anyhow::Result<Vec<Job>>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    async fn complete(&self, job: &Job) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::sql_query(COMPLETE)
            .bind::<Uuid, _>(job.id)
            .bind::<Uuid, _>(job.lease)
            .cached()
            .execute(&mut conn)
            .await
            .context("completing a job")?;
        Ok(n == 1)
    }

    async fn reschedule(
        &self,
        job: &Job,
        run_at: DateTime<Utc>,
        error: Option<String>,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::sql_query(RESCHEDULE)
            .bind::<Uuid, _>(job.id)
            .bind::<Uuid, _>(job.lease)
            .bind::<Timestamptz, _>(run_at)
            .bind::<Nullable<Text>, _>(error)
            .cached()
            .execute(&mut conn)
            .await
            .context("rescheduling a job")?;
        Ok(n == 1)
    }
}
