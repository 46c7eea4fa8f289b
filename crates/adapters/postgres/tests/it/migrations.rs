use diesel::Connection as _;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::MigrationHarness as _;
use onboard_members::ports::MemberRepository;
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{MIGRATIONS, PgMemberRepository, connect, ping, run_migrations};

use crate::{now, phone, rows, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_concurrently_on_a_fresh_database_and_again_change_nothing() {
    let db = TestDatabase::empty().await;

    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url().to_owned();
            tokio::spawn(async move { run_migrations(&url).await })
        })
        .collect();
    for run in runs {
        run.await.expect("the task ran").expect("migrates");
    }
    run_migrations(db.url()).await.expect("migrates again");

    let embedded = MigrationSource::<Pg>::migrations(&MIGRATIONS).expect("embedded").len();
    assert_eq!(
        rows(&db.pool(), "__diesel_schema_migrations").await,
        i64::try_from(embedded).unwrap()
    );
    let members = PgMemberRepository::new(db.pool());
    let created = members.sign_in(sign_in(&phone(1), now())).await.expect("the schema works");
    assert!(created.created);
}

#[tokio::test]
async fn every_migration_reverts_and_applies_again() {
    let db = TestDatabase::new().await;
    let url = db.url().to_owned();

    let reverted = tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        conn.revert_all_migrations(MIGRATIONS).map(|v| v.len()).map_err(|e| e.to_string())
    })
    .await
    .expect("the task ran")
    .expect("reverts");

    assert_eq!(reverted, MigrationSource::<Pg>::migrations(&MIGRATIONS).unwrap().len());
    assert_eq!(rows(&db.pool(), "__diesel_schema_migrations").await, 0);
    run_migrations(db.url()).await.expect("migrates again");
    let members = PgMemberRepository::new(db.pool());
    assert!(members.sign_in(sign_in(&phone(1), now())).await.expect("the schema works").created);
}

#[tokio::test]
async fn a_reachable_database_answers_the_readiness_probe() {
    let db = TestDatabase::new().await;

    assert!(ping(&db.pool()).await);
}

#[tokio::test]
async fn connecting_to_a_missing_database_fails() {
    let db = TestDatabase::new().await;
    let missing = db.url().replace(db.name(), "onboard_no_such_database");

    assert!(connect(&missing, 2).await.is_err());
}
