//! How long a redeem takes at the bottom of a referral chain 10,000 and 1,000,000 deep.
//!
//! `cargo bench -p onboard-postgres --features testing --bench redeem_chain` (needs the test
//! PostgreSQL server, as the integration tests do). For each depth, two cases on the chain's
//! bottom member's code, both of which need the chain's set (its representative is the root):
//! - `joins_below_the_bottom`: a member outside the chain redeems the code and succeeds
//!   (their referrer and set are reset, untimed, before each redeem);
//! - `cycle_refused`: the chain's root redeems the code and is refused.
//!
//! Setting up the million-member chain takes about 35 seconds.

use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use diesel::QueryableByName;
use diesel::sql_types::{Integer, Text, Timestamptz, Uuid};
use diesel_async::{RunQueryDsl as _, SimpleAsyncConnection as _};
use onboard_kernel::{MemberId, ReferralCode};
use onboard_postgres::PgReferralRepository;
use onboard_postgres::testing::TestDatabase;
use onboard_referrals::events::RedeemEvents;
use onboard_referrals::ports::{RedeemRefusal, ReferralRepository};

/// Levels between the chain's root and its bottom member, one chain (and database) each.
const DEPTHS: [i32; 2] = [10_000, 1_000_000];

/// The outsider's code.
const OUTSIDER: &str = "OUT0000";

#[derive(QueryableByName)]
struct Link {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    referral_code: String,
}

/// What a chain's database holds: the root, the bottom member's code and the outsider.
struct Chain {
    db: TestDatabase,
    root: MemberId,
    bottom: ReferralCode,
    outsider: MemberId,
}

/// A database holding a chain of `depth + 1` members (codes `C0000000` up, each referred by
/// the one before; ids in creation order, as UUID v7 ids are) and one outsider
/// ([`OUTSIDER`]). The chain is one referral set whose representative is the root, of rank 1,
/// with every other member pointing straight at it (what the migration makes of an existing
/// tree); the outsider is a set of their own.
async fn setup(depth: i32) -> Chain {
    let db = TestDatabase::new().await;
    let mut conn = db.pool().get().await.expect("a connection");
    // The chain's own foreign keys are checked once, when added back, rather than row by row.
    conn.batch_execute(
        "ALTER TABLE members DROP CONSTRAINT members_referred_by_fkey,
            DROP CONSTRAINT members_ref_parent_fkey",
    )
    .await
    .expect("drops the foreign keys");
    let mut ends: Vec<Link> = diesel::sql_query(
        "WITH link AS (
            SELECT i, ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid AS id
            FROM generate_series(0, $2) AS i
        ), inserted AS (
            INSERT INTO members
                (id, referral_code, referred_by, referred_at, created_at, ref_parent, ref_rank)
            SELECT l.id, 'C' || lpad(l.i::text, 7, '0'), up.id,
                CASE WHEN up.id IS NOT NULL THEN $1 END, $1,
                CASE WHEN l.i > 0 THEN (SELECT id FROM link WHERE i = 0) END,
                CASE WHEN l.i = 0 THEN 1 ELSE 0 END
            FROM link l LEFT JOIN link up ON up.i = l.i - 1
            UNION ALL
            SELECT gen_random_uuid(), $3, NULL, NULL, $1, NULL, 0
            RETURNING id, referral_code
        )
        SELECT id, referral_code FROM inserted
        WHERE referral_code IN ('C0000000', 'C' || lpad($2::text, 7, '0'), $3)",
    )
    .bind::<Timestamptz, _>(Utc::now())
    .bind::<Integer, _>(depth)
    .bind::<Text, _>(OUTSIDER)
    .load(&mut conn)
    .await
    .expect("the chain is inserted");
    conn.batch_execute(
        "ALTER TABLE members
            ADD CONSTRAINT members_referred_by_fkey
                FOREIGN KEY (referred_by) REFERENCES members (id),
            ADD CONSTRAINT members_ref_parent_fkey
                FOREIGN KEY (ref_parent) REFERENCES members (id)",
    )
    .await
    .expect("adds back and checks the foreign keys");
    // What autovacuum does to a table that took many rows: statistics and the visibility map.
    conn.batch_execute("VACUUM ANALYZE members").await.expect("vacuums");
    drop(conn);
    // The root, the bottom member, the outsider.
    ends.sort_by(|a, b| a.referral_code.cmp(&b.referral_code));
    let [root, bottom, outsider] = <[Link; 3]>::try_from(ends).ok().expect("three ends");
    Chain {
        db,
        root: MemberId::from_uuid(root.id),
        bottom: ReferralCode::from_trusted(bottom.referral_code),
        outsider: MemberId::from_uuid(outsider.id),
    }
}

fn redeem_chain(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    for depth in DEPTHS {
        let started = Instant::now();
        let Chain { db, root, bottom, outsider } = rt.block_on(setup(depth));
        eprintln!("a chain {depth} deep set up in {:.1?}", started.elapsed());
        let referrals = PgReferralRepository::new(db.pool());

        let mut group = c.benchmark_group(format!("redeem_{depth}_deep"));
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
                        // The outsider, of rank 0, joined the root's set of rank 1: only the
                        // outsider's row changed.
                        diesel::sql_query(
                            "UPDATE members
                             SET referred_by = NULL, referred_at = NULL, ref_parent = NULL
                             WHERE id = $1",
                        )
                        .bind::<Uuid, _>(outsider.as_uuid())
                        .execute(&mut conn)
                        .await
                        .expect("resets the outsider");
                        let start = Instant::now();
                        let joined = referrals
                            .redeem(outsider, &bottom, Utc::now(), &RedeemEvents::none())
                            .await;
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
                        let refused = referrals
                            .redeem(root, &bottom, Utc::now(), &RedeemEvents::none())
                            .await;
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
    }
    drop(rt);
}

criterion_group!(benches, redeem_chain);
criterion_main!(benches);
