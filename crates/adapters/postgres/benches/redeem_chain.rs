//! How long a redeem takes when its cycle check climbs a referral chain 10,000 deep.
//!
//! `cargo bench -p onboard-postgres --features testing --bench redeem_chain` (needs the test
//! PostgreSQL server, as the integration tests do). Two cases, each climbing all 10,000 levels
//! from the chain's bottom member to its root:
//! - `joins_below_the_bottom`: a member outside the chain redeems the bottom member's code and
//!   succeeds (their referrer is reset, untimed, before each redeem);
//! - `cycle_refused`: the chain's root redeems the bottom member's code and is refused.

use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use diesel::sql_types::{Integer, Text, Timestamptz, Uuid};
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl as _, SimpleAsyncConnection as _};
use onboard_kernel::{MemberId, ReferralCode};
use onboard_postgres::PgReferralRepository;
use onboard_postgres::testing::TestDatabase;
use onboard_referrals::ports::{RedeemRefusal, ReferralRepository};

/// Levels between the chain's root and its bottom member.
const DEPTH: i32 = 10_000;

#[derive(QueryableByName)]
struct Link {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    referral_code: String,
}

/// A database holding a chain of `DEPTH + 1` members (codes `C00000` to `C10000`, each referred
/// by the one before) and one outsider (`OUT000`); answers the database, the root, the bottom
/// member's code and the outsider.
async fn setup() -> (TestDatabase, MemberId, ReferralCode, MemberId) {
    let db = TestDatabase::new().await;
    let mut conn = db.pool().get().await.expect("a connection");
    let mut links: Vec<Link> = diesel::sql_query(
        "WITH link AS (
            SELECT i, gen_random_uuid() AS id FROM generate_series(0, $2) AS i
        )
        INSERT INTO members (id, referral_code, referred_by, referred_at, created_at)
        SELECT l.id, 'C' || lpad(l.i::text, 5, '0'), up.id,
            CASE WHEN up.id IS NOT NULL THEN $1 END, $1
        FROM link l LEFT JOIN link up ON up.i = l.i - 1
        UNION ALL
        SELECT gen_random_uuid(), $3, NULL, NULL, $1
        RETURNING id, referral_code",
    )
    .bind::<Timestamptz, _>(Utc::now())
    .bind::<Integer, _>(DEPTH)
    .bind::<Text, _>("OUT000")
    .load(&mut conn)
    .await
    .expect("the chain is inserted");
    // What autovacuum does to a table that took many rows: statistics and the visibility map.
    conn.batch_execute("VACUUM ANALYZE members").await.expect("vacuums");
    links.sort_by(|a, b| a.referral_code.cmp(&b.referral_code));
    let outsider = links.pop().expect("the outsider");
    let root = MemberId::from_uuid(links[0].id);
    let bottom = ReferralCode::from_trusted(links[DEPTH as usize].referral_code.clone());
    drop(conn);
    (db, root, bottom, MemberId::from_uuid(outsider.id))
}

fn redeem_chain(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (db, root, bottom, outsider) = rt.block_on(setup());
    let referrals = PgReferralRepository::new(db.pool());

    let mut group = c.benchmark_group("redeem_10000_deep");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    group.bench_function("joins_below_the_bottom", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut conn = db.pool().get().await.expect("a connection");
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    diesel::sql_query(
                        "UPDATE members SET referred_by = NULL, referred_at = NULL WHERE id = $1",
                    )
                    .bind::<Uuid, _>(outsider.as_uuid())
                    .execute(&mut conn)
                    .await
                    .expect("resets the outsider");
                    let start = Instant::now();
                    let joined = referrals.redeem(outsider, &bottom, Utc::now()).await;
                    timed += start.elapsed();
                    assert_eq!(joined.expect("redeems").referred_by.as_ref(), Some(&bottom));
                }
                timed
            })
        });
    });

    group.bench_function("cycle_refused", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let refused = referrals.redeem(root, &bottom, Utc::now()).await;
                    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
                }
                start.elapsed()
            })
        });
    });

    group.finish();
    drop(referrals);
    // Drops the database while its pool's runtime still runs.
    drop(db);
    drop(rt);
}

criterion_group!(benches, redeem_chain);
criterion_main!(benches);
