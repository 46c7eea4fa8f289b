//! A fresh database per test, for this crate's tests and the server's end-to-end tests
//! (feature `testing`).
//!
//! ```no_run
//! # async fn demo() {
//! use onboard_postgres::{PgMemberRepository, testing::TestDatabase};
//!
//! let db = TestDatabase::new().await; // migrated, empty, only this test's
//! let members = PgMemberRepository::new(db.pool());
//! # let _ = members;
//! // ... the database is dropped with `db`
//! # }
//! ```
//!
//! Each database is cloned from a template that is migrated once: the template's name carries
//! a hash of the migration files, so changing a migration makes a new template. Several test
//! processes may start at once: the template is built under a PostgreSQL advisory lock.

use std::fmt;

use anyhow::Context as _;
use diesel::sql_types::{Bool, Text};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{
    AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _,
};
use tokio::sync::OnceCell;

use crate::{PgPool, connect, run_migrations};

/// Where test databases are created when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Connections each test database's pool may open.
const POOL_SIZE: usize = 8;

/// The advisory lock key that serialises building the template (the bytes of `onboard` and 2).
const TEMPLATE_LOCK_KEY: i64 = 0x6f6e_626f_6172_6402;

/// The template of this build's migrations, once this process has made sure it exists.
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// A database that only one test uses, dropped (with any connection still open to it) when
/// this value is dropped.
pub struct TestDatabase {
    // Fields drop in order: the pool closes before the database goes.
    pool: PgPool,
    url: String,
    database: DroppedOnDrop,
}

impl TestDatabase {
    /// A new database with every migration applied and no rows, on the server of
    /// `TEST_DATABASE_URL` (default [`DEFAULT_BASE_URL`]).
    ///
    /// # Panics
    /// When the server cannot be reached or the database cannot be created: a test cannot
    /// run without it.
    pub async fn new() -> Self {
        let base_url = base_url();
        let template = TEMPLATE
            .get_or_try_init(|| ensure_template(&base_url))
            .await
            .expect("the template test database could not be prepared");
        Self::create(base_url, Some(template)).await
    }

    /// A new database with nothing in it, not even the migrations (to test migrating).
    ///
    /// # Panics
    /// When the server cannot be reached or the database cannot be created.
    pub async fn empty() -> Self {
        Self::create(base_url(), None).await
    }

    async fn create(base_url: String, template: Option<&str>) -> Self {
        let name = format!("onboard_test_{}", uuid::Uuid::now_v7().simple());
        let create = match template {
            Some(template) => format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#),
            None => format!(r#"CREATE DATABASE "{name}""#),
        };
        let mut conn = AsyncPgConnection::establish(&base_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test server {base_url}: {e}"));
        conn.batch_execute(&create)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        drop(conn);
        let url = with_database(&base_url, &name);
        // From here on, a panic still drops the database.
        let database = DroppedOnDrop { base_url, name };
        let pool = connect(&url, POOL_SIZE).await.expect("cannot connect to the test database");
        Self { pool, url, database }
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of this database.
    pub fn name(&self) -> &str {
        &self.database.name
    }

    /// A pool of connections to this database (a handle to the same pool on every call).
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase").field("name", &self.database.name).finish_non_exhaustive()
    }
}

/// Drops the database `name` when dropped.
struct DroppedOnDrop {
    base_url: String,
    name: String,
}

impl Drop for DroppedOnDrop {
    fn drop(&mut self) {
        let base_url = self.base_url.clone();
        let name = self.name.clone();
        // A thread of its own: `Drop` may run inside a runtime, where blocking is refused.
        let dropped = std::thread::spawn(move || drop_database(&base_url, &name)).join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: test database {} was not dropped: {e:#}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// Drops database `name`, blocking; not on a runtime's thread.
fn drop_database(base_url: &str, name: &str) -> anyhow::Result<()> {
    type Blocking = AsyncConnectionWrapper<AsyncPgConnection>;
    let mut conn = <Blocking as diesel::Connection>::establish(base_url)?;
    let drop = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
    diesel::connection::SimpleConnection::batch_execute(&mut conn, &drop)?;
    Ok(())
}

fn base_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned())
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority = head.find("://").map_or(0, |i| i + 3);
    let server = match head[authority..].find('/') {
        Some(slash) => &head[..authority + slash],
        None => head,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Makes sure the migrated template of this build's migrations exists; answers its name.
async fn ensure_template(base_url: &str) -> anyhow::Result<String> {
    let name = format!("onboard_tpl_{}", env!("ONBOARD_MIGRATIONS_HASH"));
    let mut conn = AsyncPgConnection::establish(base_url)
        .await
        .with_context(|| format!("connecting to the test server {base_url}"))?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
        .await
        .context("taking the template lock")?;
    let built = build_template(&mut conn, base_url, &name).await;
    // Closing the connection would release the lock too.
    let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})")).await;
    built.map(|()| name)
}

#[derive(QueryableByName)]
struct TemplateState {
    #[diesel(sql_type = Bool)]
    datistemplate: bool,
}

/// Builds the template `name` unless a finished one exists. Callers hold the template lock.
async fn build_template(
    conn: &mut AsyncPgConnection,
    base_url: &str,
    name: &str,
) -> anyhow::Result<()> {
    let state: Option<TemplateState> =
        diesel::sql_query("SELECT datistemplate FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .get_result(conn)
            .await
            .optional()
            .context("looking up the template")?;
    match state {
        Some(TemplateState { datistemplate: true }) => return Ok(()),
        // Left half-built by a process that died: start over.
        Some(TemplateState { datistemplate: false }) => {
            conn.batch_execute(&format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
                .await
                .context("dropping a half-built template")?;
        }
        None => {}
    }
    conn.batch_execute(&format!(r#"CREATE DATABASE "{name}""#))
        .await
        .context("creating the template")?;
    run_migrations(&with_database(base_url, name)).await.context("migrating the template")?;
    // Marks it finished, and keeps connections (which would block cloning) out.
    conn.batch_execute(&format!(
        r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"#
    ))
    .await
    .context("marking the template finished")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_database_url_gets_another_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@db:5432/app?sslmode=disable", "t1"),
            "postgres://u:p@db:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://db", "t1"), "postgres://db/t1");
    }
}
