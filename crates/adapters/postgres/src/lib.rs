//! # onboard-postgres
//!
//! PostgreSQL adapters for Onboard's ports, on diesel-async with a deadpool pool:
//! [`PgMemberRepository`], [`PgSessionRepository`], [`PgReferralRepository`],
//! [`PgGroupRepository`], [`PgInviteRepository`] and [`PgIdentityRepository`] (single
//! sign-on links); for payments [`PgBillingStore`] (the billing storage ports) and
//! [`PgJobQueue`] (the job queue); [`PgMessageRepository`] (group messages and their outbox);
//! plus the schema migrations (embedded
//! from `migrations/` at the repository root) and a readiness probe.
//!
//! ```no_run
//! # async fn wire() -> anyhow::Result<()> {
//! let url = "postgres://postgres@127.0.0.1:5432/onboard";
//! onboard_postgres::run_migrations(url).await?;
//! let pool = onboard_postgres::connect(url, 16).await?;
//! let members = onboard_postgres::PgMemberRepository::new(pool.clone());
//! let sessions = onboard_postgres::PgSessionRepository::new(pool.clone());
//! let referrals = onboard_postgres::PgReferralRepository::new(pool.clone());
//! let groups = onboard_postgres::PgGroupRepository::new(pool.clone());
//! let invites = onboard_postgres::PgInviteRepository::new(pool.clone());
//! assert!(onboard_postgres::ping(&pool).await);
//! # let _ = (members, sessions, referrals, groups, invites);
//! # Ok(())
//! # }
//! ```
//!
//! With the `testing` feature, `testing::TestDatabase` gives each test a fresh migrated
//! database.

mod cached;
mod error;
mod repos;
mod rows;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;

use std::time::Duration;

use anyhow::Context as _;
use diesel::Connection as _;
use diesel::connection::SimpleConnection as _;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

pub use trace::trace_sql_statements;

pub use repos::admin::PgAdminRepository;
pub use repos::groups::PgGroupRepository;
pub use repos::invites::PgInviteRepository;
pub use repos::members::PgMemberRepository;
pub use repos::notifications::PgNotificationRepository;
pub use repos::outbox::PgEventFeed;
pub use repos::referrals::PgReferralRepository;
pub use repos::sessions::PgSessionRepository;
pub use repos::sso::PgIdentityRepository;
pub use repos::webhooks::PgWebhookStore;

/// Notifying from inside another repository's transaction (notify area).
pub mod notifications {
    pub use crate::repos::notifications::insert_notifications;
}
/// Storing domain events from inside another repository's transaction.
pub mod outbox {
    pub use crate::repos::outbox::record;
}
/// Changing a group's SMS credit from inside another repository's transaction.
pub mod sms_credit {
    pub use crate::repos::sms_credit::apply;
}
pub use repos::billing::PgBillingStore;
pub use repos::jobs::PgJobQueue;
pub use repos::messages::PgMessageRepository;
pub use repos::sms_credit::PgSmsCreditStore;

/// A pool of PostgreSQL connections.
pub type PgPool = Pool<AsyncPgConnection>;

/// The schema migrations, from `migrations/` at the repository root.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../../migrations");

/// The advisory lock key that serialises migration runs within one database (the bytes of
/// `onboard` and 1).
const MIGRATION_LOCK_KEY: i64 = 0x6f6e_626f_6172_6401;

/// How long [`connect`] waits for its first connection and [`ping`] for an answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds a pool of at most `max_size` connections to `url` and checks that the database
/// answers.
///
/// # Errors
/// When the URL is malformed or no connection can be opened within 10 seconds.
pub async fn connect(url: &str, max_size: usize) -> anyhow::Result<PgPool> {
    let mut config = ManagerConfig::default();
    // A closed connection is still caught on checkout (`is_broken`); this saves the `SELECT 1`
    // that `Verified` would send before every use.
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    let pool = Pool::builder(manager)
        .max_size(max_size)
        .build()
        .context("building the PostgreSQL pool")?;
    let first = tokio::time::timeout(CONNECT_TIMEOUT, pool.get())
        .await
        .context("timed out connecting to PostgreSQL")?
        .context("connecting to PostgreSQL")?;
    // Closed, not pooled: a connection is driven by a task on the runtime that opened it, and
    // this one would live on the start-up runtime, not on the HTTP workers' that use the pool,
    // so every query on it would hop threads twice (see `docs/performance.md`).
    drop(Object::take(first));
    Ok(pool)
}

/// Applies the pending migrations to the database at `url`.
///
/// Safe to call from several instances at once: runs are serialised by a PostgreSQL
/// advisory lock, and a run that finds nothing pending changes nothing.
///
/// # Errors
/// When the database cannot be reached or a migration fails; a failed migration is rolled
/// back.
pub async fn run_migrations(url: &str) -> anyhow::Result<()> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .context("connecting to PostgreSQL to migrate")?;
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            .context("taking the migration lock")?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| anyhow::anyhow!(e).context("running migrations"));
        // Closing the connection would release the lock too; unlocking says so explicitly.
        let unlocked = conn
            .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
            .context("releasing the migration lock");
        let applied = applied?;
        unlocked?;
        if applied.is_empty() {
            tracing::debug!("no pending migrations");
        } else {
            tracing::info!(?applied, "applied migrations");
        }
        Ok(())
    })
    .await
    .context("the migration task failed")?
}

/// Whether the database answers a query within 2 seconds (for `/health/ready`).
pub async fn ping(pool: &PgPool) -> bool {
    let probe = async {
        let mut conn = pool.get().await.ok()?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.ok()
    };
    matches!(tokio::time::timeout(PING_TIMEOUT, probe).await, Ok(Some(_)))
}

/// Runs `work` while holding the PostgreSQL advisory lock `key` (session level, on one pooled
/// connection): of the server instances on one database, one runs it at a time; the others
/// wait for their turn. The lock goes with the connection if the process dies.
///
/// # Errors
/// When no connection can be had or the lock cannot be taken; `work` did not run then.
pub async fn exclusively<T>(
    pool: &PgPool,
    key: i64,
    work: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    use diesel_async::SimpleAsyncConnection as _;

    let mut conn = pool.get().await.context("checking out a PostgreSQL connection")?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({key})"))
        .await
        .context("taking an advisory lock")?;
    let done = work.await;
    if let Err(e) = conn.batch_execute(&format!("SELECT pg_advisory_unlock({key})")).await {
        // A connection that cannot unlock is broken; dropping it from the pool releases the lock.
        tracing::warn!(error = %e, "releasing an advisory lock");
        let _ = diesel_async::pooled_connection::deadpool::Object::take(conn);
    }
    Ok(done)
}
