use onboard_members::ports::MemberRepository;
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{PgMemberRepository, connect, ping, run_migrations};

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

    assert_eq!(rows(&db.pool(), "__diesel_schema_migrations").await, 1);
    let members = PgMemberRepository::new(db.pool());
    let created = members.sign_in(sign_in(&phone(1), now())).await.expect("the schema works");
    assert!(created.created);
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
