use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use diesel::Connection as _;
use diesel::QueryableByName;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Integer, Nullable, SmallInt, Text, Timestamptz, Uuid};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _, SimpleAsyncConnection as _};
use diesel_migrations::MigrationHarness as _;
use onboard_kernel::{MemberId, ReferralCode, SystemClock};
use onboard_members::Member;
use onboard_members::ports::MemberRepository;
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{
    MIGRATIONS, PgMemberRepository, PgPool, PgReferralRepository, connect, run_migrations,
};
use onboard_referrals::events::RedeemEvents;
use onboard_referrals::ports::{RedeemRefusal, ReferralRepository};
use onboard_referrals::{Cursor, ReferralsService, Referrer};
use tokio::sync::Barrier;

use crate::{now, phone, sign_in};

/// A member and the repositories of one test database.
struct Fixture {
    db: TestDatabase,
    members: PgMemberRepository,
    referrals: PgReferralRepository,
}

impl Fixture {
    async fn new() -> Self {
        let db = TestDatabase::new().await;
        let members = PgMemberRepository::new(db.pool());
        let referrals = PgReferralRepository::new(db.pool());
        Self { db, members, referrals }
    }

    /// A new member, signed up with phone `n` at `at`.
    async fn member(&self, n: u32, at: DateTime<Utc>) -> Member {
        self.members.sign_in(sign_in(&phone(n), at)).await.expect("signs up").member
    }

    async fn referred_by(&self, id: MemberId) -> Option<ReferralCode> {
        self.members.get(id).await.expect("gets").expect("a live member").referred_by
    }
}

#[derive(QueryableByName)]
struct ChainLink {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    referral_code: String,
}

/// Inserts, in one statement, a chain of `depth + 1` members without phones whose codes are
/// `letter` and five digits: the first is a root and each next one was referred by the one
/// before. The chain is one referral set, as the migration makes of an existing tree: the root
/// is its representative, of rank 1, and every other member points straight at it. Answers
/// them top down (the root first, the bottom member last).
async fn chain(
    pool: &PgPool,
    letter: char,
    depth: i32,
    at: DateTime<Utc>,
) -> Vec<(MemberId, ReferralCode)> {
    let mut conn = pool.get().await.unwrap();
    let mut links: Vec<ChainLink> = diesel::sql_query(
        "WITH link AS (
            SELECT i, gen_random_uuid() AS id FROM generate_series(0, $3) AS i
        )
        INSERT INTO members
            (id, referral_code, referred_by, referred_at, created_at, ref_parent, ref_rank)
        SELECT l.id, $1 || lpad(l.i::text, 5, '0'), up.id, CASE WHEN up.id IS NOT NULL THEN $2 END, $2,
            CASE WHEN l.i > 0 THEN (SELECT id FROM link WHERE i = 0) END,
            CASE WHEN l.i = 0 THEN 1 ELSE 0 END
        FROM link l LEFT JOIN link up ON up.i = l.i - 1
        RETURNING id, referral_code",
    )
    .bind::<Text, _>(letter.to_string())
    .bind::<Timestamptz, _>(at)
    .bind::<Integer, _>(depth)
    .load(&mut conn)
    .await
    .unwrap();
    links.sort_by(|a, b| a.referral_code.cmp(&b.referral_code));
    links
        .into_iter()
        .map(|l| (MemberId::from_uuid(l.id), ReferralCode::from_trusted(l.referral_code)))
        .collect()
}

#[tokio::test]
async fn a_member_redeems_another_members_code_and_shows_among_their_invitees() {
    let f = Fixture::new().await;
    let t = now();
    let referrer = f.member(1, t).await;
    let invitee = f.member(2, t).await;

    let redeemed = f
        .referrals
        .redeem(
            invitee.id,
            &referrer.referral_code,
            t + Duration::minutes(1),
            &RedeemEvents::none(),
        )
        .await
        .expect("redeems");
    assert_eq!(redeemed.referred_by, Some(referrer.referral_code.clone()));
    assert_eq!(Some(redeemed.clone()), f.members.get(invitee.id).await.expect("gets"));
    assert_eq!(Member { referred_by: None, ..redeemed }, invitee, "nothing else changed");

    let summary = f.referrals.summary(referrer.id).await.expect("sums up").expect("known");
    assert_eq!(summary.code, referrer.referral_code);
    assert_eq!(summary.referred_by, None);
    assert_eq!(summary.invitees_count, 1);
    let summary = f.referrals.summary(invitee.id).await.expect("sums up").expect("known");
    assert_eq!(
        summary.referred_by,
        Some(Referrer { code: referrer.referral_code.clone(), member_id: referrer.id })
    );
    assert_eq!(summary.invitees_count, 0);
    assert_eq!(f.referrals.summary(MemberId::new()).await.expect("sums up"), None);

    let page = f.referrals.invitees(referrer.id, None, 10).await.expect("lists");
    assert_eq!(page.len(), 1);
    let (card, cursor) = &page[0];
    assert_eq!(card.id, invitee.id);
    assert_eq!(card.phone_masked.as_deref(), Some("+7******0002"));
    assert_eq!(*cursor, Cursor { referred_at: t + Duration::minutes(1), id: invitee.id });
    assert!(f.referrals.invitees(invitee.id, None, 10).await.expect("lists").is_empty());
}

#[tokio::test]
async fn a_redeem_answers_the_member_with_their_current_group() {
    let f = Fixture::new().await;
    let t = now();
    let referrer = f.member(1, t).await;
    let invitee = f.member(2, t).await;
    let mut conn = f.db.pool().get().await.unwrap();
    diesel::sql_query(
        "WITH g AS (
            INSERT INTO groups (id, slug, name, created_at)
            VALUES (gen_random_uuid(), 'acme', 'Acme', now()) RETURNING id
        )
        UPDATE members SET current_group_id = (SELECT id FROM g) WHERE id = $1",
    )
    .bind::<Uuid, _>(invitee.id.as_uuid())
    .execute(&mut conn)
    .await
    .unwrap();

    let redeemed = f
        .referrals
        .redeem(invitee.id, &referrer.referral_code, t, &RedeemEvents::none())
        .await
        .expect("redeems");
    assert_eq!(redeemed.current_group.as_deref(), Some("acme"));
    assert_eq!(Some(redeemed), f.members.get(invitee.id).await.expect("gets"));
}

#[tokio::test]
async fn an_unknown_code_and_a_deleted_members_code_are_not_found() {
    let f = Fixture::new().await;
    let t = now();
    let redeemer = f.member(1, t).await;
    let gone = f.member(2, t).await;
    f.members.delete(gone.id, t, &[]).await.expect("deletes");

    for code in [ReferralCode::parse("ZZZZZZ").expect("a code"), gone.referral_code] {
        let refused = f.referrals.redeem(redeemer.id, &code, t, &RedeemEvents::none()).await;
        assert!(matches!(refused, Err(RedeemRefusal::NotFound)), "{code}: {refused:?}");
    }
    assert_eq!(f.referred_by(redeemer.id).await, None);
}

#[tokio::test]
async fn a_member_cannot_redeem_their_own_code() {
    let f = Fixture::new().await;
    let t = now();
    let me = f.member(1, t).await;

    let refused = f.referrals.redeem(me.id, &me.referral_code, t, &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::OwnCode)), "{refused:?}");
    assert_eq!(f.referred_by(me.id).await, None);
}

#[tokio::test]
async fn a_member_redeems_at_most_one_code_ever() {
    let f = Fixture::new().await;
    let t = now();
    let me = f.member(1, t).await;
    let first = f.member(2, t).await;
    let second = f.member(3, t).await;
    f.referrals
        .redeem(me.id, &first.referral_code, t, &RedeemEvents::none())
        .await
        .expect("redeems");

    for code in [&second.referral_code, &first.referral_code] {
        let refused = f.referrals.redeem(me.id, code, t, &RedeemEvents::none()).await;
        assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{refused:?}");
    }
    assert_eq!(f.referred_by(me.id).await, Some(first.referral_code));
    let second_invitees = f.referrals.summary(second.id).await.expect("sums up").expect("known");
    assert_eq!(second_invitees.invitees_count, 0);
}

#[tokio::test]
async fn a_redeemer_who_is_not_a_live_member_is_an_error() {
    let f = Fixture::new().await;
    let t = now();
    let gone = f.member(1, t).await;
    let owner = f.member(2, t).await;
    f.members.delete(gone.id, t, &[]).await.expect("deletes");

    for id in [gone.id, MemberId::new()] {
        let refused = f.referrals.redeem(id, &owner.referral_code, t, &RedeemEvents::none()).await;
        assert!(matches!(refused, Err(RedeemRefusal::Unexpected(_))), "{refused:?}");
    }
    assert_eq!(f.referrals.summary(owner.id).await.expect("sums up").unwrap().invitees_count, 0);
}

#[tokio::test]
async fn redeeming_the_code_of_ones_own_invitee_is_a_cycle() {
    let f = Fixture::new().await;
    let t = now();
    let a = f.member(1, t).await;
    let b = f.member(2, t).await;
    f.referrals.redeem(a.id, &b.referral_code, t, &RedeemEvents::none()).await.expect("redeems");

    let refused = f.referrals.redeem(b.id, &a.referral_code, t, &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    assert_eq!(f.referred_by(b.id).await, None);
}

#[tokio::test]
async fn a_cycle_is_found_a_thousand_levels_down_and_an_outsider_may_join_there() {
    let f = Fixture::new().await;
    let t = now();
    let links = chain(&f.db.pool(), 'C', 1000, t).await;
    assert_eq!(links.len(), 1001);
    let (root, _) = links[0].clone();
    let (bottom, bottom_code) = links[1000].clone();
    let (middle, middle_code) = links[500].clone();
    // A deleted member stays in the tree: the climb goes through them.
    f.members.delete(links[700].0, t, &[]).await.expect("deletes");

    for code in [&bottom_code, &middle_code] {
        let refused = f.referrals.redeem(root, code, t, &RedeemEvents::none()).await;
        assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    }
    let refused = f.referrals.redeem(middle, &bottom_code, t, &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{refused:?}");

    let outsider = f.member(1, t).await;
    let joined = f
        .referrals
        .redeem(outsider.id, &bottom_code, t, &RedeemEvents::none())
        .await
        .expect("redeems");
    assert_eq!(joined.referred_by, Some(bottom_code));
    // The outsider is now 1,001 levels below the root.
    let refused = f.referrals.redeem(root, &outsider.referral_code, t, &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    let summary = f.referrals.summary(bottom).await.expect("sums up").expect("known");
    assert_eq!(summary.invitees_count, 1);
    assert_eq!(f.referred_by(root).await, None);
}

#[tokio::test]
async fn invitee_pages_run_newest_first_with_no_gap_or_repeat_even_on_equal_times() {
    let f = Fixture::new().await;
    let t = now();
    let referrer = f.member(100, t).await;
    let service = ReferralsService::new(Arc::new(f.referrals.clone()), Arc::new(SystemClock));
    // 23 invitees in groups of five that redeemed at the same microsecond.
    let mut expected = Vec::new();
    for n in 0..23u32 {
        let invitee = f.member(n, t).await;
        let at = t + Duration::seconds(i64::from(n / 5));
        f.referrals
            .redeem(invitee.id, &referrer.referral_code, at, &RedeemEvents::none())
            .await
            .expect("redeems");
        expected.push((at, invitee.id));
    }
    // A deleted invitee is neither listed nor counted.
    let (_, gone) = expected.remove(7);
    f.members.delete(gone, t, &[]).await.expect("deletes");
    expected.sort_by(|a, b| b.cmp(a));

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = service.invitees(referrer.id, cursor, 4).await.expect("lists");
        pages += 1;
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().map(|card| card.id));
        match page.next_cursor {
            Some(next) => cursor = Some(Cursor::decode(&next).expect("our own cursor")),
            None => break,
        }
    }
    let expected_ids: Vec<MemberId> = expected.iter().map(|(_, id)| *id).collect();
    assert_eq!(seen, expected_ids);
    assert_eq!(pages, 6, "22 invitees in pages of 4");
    let summary = f.referrals.summary(referrer.id).await.expect("sums up").expect("known");
    assert_eq!(summary.invitees_count, 22);
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Waits until some query on this database waits for a lock (at most ten seconds).
async fn until_someone_waits_for_a_lock(pool: &PgPool) {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    let mut conn = pool.get().await.unwrap();
    loop {
        let waiting: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        if waiting.n > 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no query waited for a lock");
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
}

/// R redeems O's code while O, in a transaction the test holds open, gains the referrer
/// `o_referrer` as a redeem of O's would (O's set of one joins `o_referrer`'s, under the
/// locks of both representatives); answers R's outcome once that transaction commits.
async fn redeem_while_the_owner_gains_a_referrer(
    f: &Fixture,
    r: &Member,
    o: &Member,
    o_referrer: MemberId,
) -> Result<Member, RedeemRefusal> {
    let t = now();
    let joined = representative(&f.db.pool(), o_referrer).await;
    let mut holder = f.db.pool().get().await.unwrap();
    holder
        .batch_execute(&format!(
            "BEGIN;
            SELECT FROM members WHERE id IN ('{o}', '{joined}') ORDER BY id FOR NO KEY UPDATE;
            UPDATE members SET referred_by = '{o_referrer}', referred_at = now(),
                ref_parent = '{joined}'
            WHERE id = '{o}';
            UPDATE members SET ref_rank = greatest(ref_rank, 1) WHERE id = '{joined}'",
            o = o.id.as_uuid(),
            o_referrer = o_referrer.as_uuid(),
        ))
        .await
        .unwrap();
    let redeem = {
        let referrals = f.referrals.clone();
        let (r, code) = (r.id, o.referral_code.clone());
        tokio::spawn(async move { referrals.redeem(r, &code, t, &RedeemEvents::none()).await })
    };
    until_someone_waits_for_a_lock(&f.db.pool()).await;
    holder.batch_execute("COMMIT").await.unwrap();
    redeem.await.expect("the task ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeem_that_waited_for_a_root_which_joined_the_redeemers_tree_is_a_cycle() {
    let f = Fixture::new().await;
    let t = now();
    let r = f.member(1, t).await;
    let below_r = f.member(2, t).await;
    let o = f.member(3, t).await;
    f.referrals
        .redeem(below_r.id, &r.referral_code, t, &RedeemEvents::none())
        .await
        .expect("redeems");

    // Without climbing again after the lock, R would get O as referrer: R → O → below_r → R.
    let refused = redeem_while_the_owner_gains_a_referrer(&f, &r, &o, below_r.id).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    assert_eq!(f.referred_by(r.id).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeem_that_waited_for_a_root_which_joined_another_tree_succeeds() {
    let f = Fixture::new().await;
    let t = now();
    let r = f.member(1, t).await;
    let o = f.member(2, t).await;
    let elsewhere = f.member(3, t).await;

    let redeemed = redeem_while_the_owner_gains_a_referrer(&f, &r, &o, elsewhere.id).await;
    assert_eq!(redeemed.expect("redeems").referred_by, Some(o.referral_code.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_pairs_redeeming_each_others_codes_at_once_never_both_succeed() {
    let f = Fixture::new().await;
    let pool = connect(f.db.url(), 40).await.expect("a pool of 40");
    let referrals = PgReferralRepository::new(pool);
    let t = now();
    let mut pairs = Vec::new();
    for n in 0..20 {
        pairs.push((f.member(2 * n, t).await, f.member(2 * n + 1, t).await));
    }

    let start = Arc::new(Barrier::new(40));
    let mut tasks = Vec::new();
    for (a, b) in &pairs {
        for (me, them) in [(a, b), (b, a)] {
            let (referrals, start) = (referrals.clone(), start.clone());
            let (me, code) = (me.id, them.referral_code.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                referrals.redeem(me, &code, t, &RedeemEvents::none()).await
            }));
        }
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the task ran"));
    }

    for (i, pair) in outcomes.chunks(2).enumerate() {
        let redeemed = pair.iter().filter(|o| o.is_ok()).count();
        let cycles = pair.iter().filter(|o| matches!(o, Err(RedeemRefusal::Cycle))).count();
        assert_eq!((redeemed, cycles), (1, 1), "pair {i}: {pair:?}");
        let (a, b) = &pairs[i];
        let stored = (f.referred_by(a.id).await, f.referred_by(b.id).await);
        assert!(
            stored == (Some(b.referral_code.clone()), None)
                || stored == (None, Some(a.referral_code.clone())),
            "pair {i}: {stored:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_redeeming_two_codes_at_once_gets_exactly_one() {
    let f = Fixture::new().await;
    let t = now();
    for round in 0..10 {
        let me = f.member(3 * round, t).await;
        let x = f.member(3 * round + 1, t).await;
        let y = f.member(3 * round + 2, t).await;
        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [x.referral_code.clone(), y.referral_code.clone()]
            .into_iter()
            .map(|code| {
                let (referrals, start) = (f.referrals.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    referrals.redeem(me.id, &code, t, &RedeemEvents::none()).await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("the task ran"));
        }

        let winner: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(winner.len(), 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.iter().any(|o| matches!(o, Err(RedeemRefusal::AlreadyRedeemed))),
            "round {round}: {outcomes:?}"
        );
        assert_eq!(f.referred_by(me.id).await, winner[0].referred_by);
        let codes: HashSet<_> = [Some(x.referral_code), Some(y.referral_code)].into();
        assert!(codes.contains(&winner[0].referred_by));
    }
}

#[tokio::test]
async fn a_member_who_signed_up_with_a_code_deep_in_a_chain_is_in_the_roots_tree() {
    let f = Fixture::new().await;
    let t = now();
    let links = chain(&f.db.pool(), 'D', 300, t).await;
    let (root, _) = links[0].clone();
    let (_, bottom_code) = links[300].clone();
    let mut request = sign_in(&phone(1), t);
    request.referred_by = Some(bottom_code.clone());
    let newcomer = f.members.sign_in(request).await.expect("signs up").member;
    assert_eq!(newcomer.referred_by, Some(bottom_code));

    let refused = f.referrals.redeem(root, &newcomer.referral_code, t, &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    let outsider = f.member(2, t).await;
    f.referrals
        .redeem(outsider.id, &newcomer.referral_code, t, &RedeemEvents::none())
        .await
        .expect("redeems");
    let refused = f.referrals.redeem(root, &outsider.referral_code, t, &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    assert_sets_are_the_trees(&f.db.pool(), "after the sign-up").await;
}

#[tokio::test]
async fn the_sets_migration_makes_each_existing_tree_one_set() {
    let db = TestDatabase::empty().await;
    let url = db.url().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        conn.run_pending_migrations(MigrationsBefore("20261127000004")).map(|_| ()).unwrap();
    })
    .await
    .expect("migrates up to the sets");
    // A tree shaped like a binary heap (member i referred by member i / 2), a chain, and
    // members of their own.
    let mut conn = db.pool().get().await.unwrap();
    conn.batch_execute(
        "WITH node AS (SELECT i, gen_random_uuid() AS id FROM generate_series(1, 100) AS i)
        INSERT INTO members (id, referral_code, referred_by, referred_at, created_at)
        SELECT n.id, 'H' || lpad(n.i::text, 5, '0'), p.id, now(), now()
        FROM node n LEFT JOIN node p ON p.i = n.i / 2;
        WITH link AS (SELECT i, gen_random_uuid() AS id FROM generate_series(0, 50) AS i)
        INSERT INTO members (id, referral_code, referred_by, referred_at, created_at)
        SELECT l.id, 'C' || lpad(l.i::text, 5, '0'), up.id, now(), now()
        FROM link l LEFT JOIN link up ON up.i = l.i - 1;
        INSERT INTO members (id, referral_code, created_at)
        SELECT gen_random_uuid(), 'S' || lpad(i::text, 5, '0'), now()
        FROM generate_series(1, 5) AS i",
    )
    .await
    .unwrap();
    drop(conn);

    run_migrations(db.url()).await.expect("migrates the rest");
    let placements = assert_sets_are_the_trees(&db.pool(), "after the migration").await;
    assert_eq!(placements.len(), 156);
    assert!(placements.iter().all(|p| p.steps <= Some(1)), "every member points at the root");
    let roots = placements.iter().filter(|p| p.root == Some(p.id)).count();
    assert_eq!(roots, 7, "two trees and five members of their own");

    let referrals = PgReferralRepository::new(db.pool());
    let code = |c: &str| ReferralCode::from_trusted(c);
    let heap_root = member_of(&db.pool(), &code("H00001")).await;
    let chain_root = member_of(&db.pool(), &code("C00000")).await;
    let refused = referrals.redeem(heap_root, &code("H00077"), now(), &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    referrals
        .redeem(heap_root, &code("C00050"), now(), &RedeemEvents::none())
        .await
        .expect("redeems");
    let refused = referrals.redeem(chain_root, &code("H00099"), now(), &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    assert_sets_are_the_trees(&db.pool(), "after the redeems").await;
}

/// The embedded migrations older than a version.
struct MigrationsBefore(&'static str);

impl MigrationSource<Pg> for MigrationsBefore {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        let all = MigrationSource::<Pg>::migrations(&MIGRATIONS)?;
        Ok(all.into_iter().filter(|m| m.name().version().to_string().as_str() < self.0).collect())
    }
}

/// Where one member stands: the root of their referral tree (climbing `referred_by`) and the
/// representative of their set (following `ref_parent`), each NULL when the climb found none.
#[derive(Debug, QueryableByName)]
struct Placement {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Uuid>)]
    referred_by: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Uuid>)]
    root: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Uuid>)]
    representative: Option<uuid::Uuid>,
    /// The `ref_parent` steps from the member to the representative.
    #[diesel(sql_type = Nullable<Integer>)]
    steps: Option<i32>,
    /// The representative's rank.
    #[diesel(sql_type = Nullable<SmallInt>)]
    rank: Option<i16>,
}

/// Checks, from every member's tree root and set representative (both found by climbing, in
/// SQL), that the referral sets are exactly the referral trees, that no tree has a cycle, and
/// that union by rank kept the paths short. Answers the placements.
async fn assert_sets_are_the_trees(pool: &PgPool, when: &str) -> Vec<Placement> {
    let mut conn = pool.get().await.unwrap();
    let placements: Vec<Placement> = diesel::sql_query(
        "WITH RECURSIVE tree (id, at, parent, steps) AS (
            SELECT id, id, referred_by, 0 FROM members
          UNION ALL
            SELECT t.id, m.id, m.referred_by, t.steps + 1
            FROM tree t JOIN members m ON m.id = t.parent
            WHERE t.steps < 10000
        ), sets (id, at, parent, steps) AS (
            SELECT id, id, ref_parent, 0 FROM members
          UNION ALL
            SELECT s.id, m.id, m.ref_parent, s.steps + 1
            FROM sets s JOIN members m ON m.id = s.parent
            WHERE s.steps < 10000
        )
        SELECT m.id, m.referred_by, t.at AS root, s.at AS representative, s.steps,
            r.ref_rank AS rank
        FROM members m
        LEFT JOIN tree t ON t.id = m.id AND t.parent IS NULL
        LEFT JOIN sets s ON s.id = m.id AND s.parent IS NULL
        LEFT JOIN members r ON r.id = s.at",
    )
    .load(&mut conn)
    .await
    .unwrap();

    let mut set_of_tree = HashMap::new();
    let mut tree_of_set = HashMap::new();
    let mut set_sizes: HashMap<uuid::Uuid, u32> = HashMap::new();
    for p in &placements {
        let root = p.root.unwrap_or_else(|| panic!("{when}: {} is on a cycle", p.id));
        let set = p.representative.unwrap_or_else(|| panic!("{when}: {} has no set", p.id));
        assert_eq!(*set_of_tree.entry(root).or_insert(set), set, "{when}: tree {root} is split");
        assert_eq!(*tree_of_set.entry(set).or_insert(root), root, "{when}: set {set} is merged");
        *set_sizes.entry(set).or_default() += 1;
    }
    for p in &placements {
        let (steps, rank) = (p.steps.unwrap(), p.rank.unwrap());
        assert!(steps <= i32::from(rank) + 1, "{when}: {} is {steps} steps deep: {p:?}", p.id);
        let size = set_sizes[&p.representative.unwrap()];
        assert!(2u32.pow(u32::try_from(rank).unwrap()) <= size, "{when}: rank {rank}, size {size}");
    }
    placements
}

/// The representative of `member`'s referral set.
async fn representative(pool: &PgPool, member: MemberId) -> uuid::Uuid {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = Uuid)]
        id: uuid::Uuid,
    }
    let mut conn = pool.get().await.unwrap();
    let found: Found = diesel::sql_query(
        "WITH RECURSIVE up (id, parent) AS (
            SELECT id, ref_parent FROM members WHERE id = $1
          UNION ALL
            SELECT m.id, m.ref_parent FROM up JOIN members m ON m.id = up.parent
        )
        SELECT id FROM up WHERE parent IS NULL",
    )
    .bind::<Uuid, _>(member.as_uuid())
    .get_result(&mut conn)
    .await
    .unwrap();
    found.id
}

/// The member whose code is `code`.
async fn member_of(pool: &PgPool, code: &ReferralCode) -> MemberId {
    let mut conn = pool.get().await.unwrap();
    let link: ChainLink =
        diesel::sql_query("SELECT id, referral_code FROM members WHERE referral_code = $1")
            .bind::<Text, _>(code.as_str())
            .get_result(&mut conn)
            .await
            .unwrap();
    MemberId::from_uuid(link.id)
}

/// xorshift64*: a generator small enough to seed per run and replay from its seed.
struct Rng(u64);

impl Rng {
    /// Seeded from `ONBOARD_TEST_SEED` when set, else from the clock.
    fn seeded() -> (Self, u64) {
        let seed = std::env::var("ONBOARD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| u64::from(Utc::now().timestamp_subsec_nanos()) | 1);
        (Self(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

/// The referral trees as the test expects them, one entry per member in creation order.
#[derive(Default)]
struct Model {
    members: Vec<Member>,
    referrer: Vec<Option<usize>>,
    deleted: Vec<bool>,
}

impl Model {
    fn add(&mut self, member: Member, referrer: Option<usize>) {
        self.members.push(member);
        self.referrer.push(referrer);
        self.deleted.push(false);
    }

    fn root(&self, mut i: usize) -> usize {
        while let Some(up) = self.referrer[i] {
            i = up;
        }
        i
    }

    /// What a redeem by member `r` of member `o`'s code (or of an unknown code) answers.
    fn redeem(&mut self, r: usize, o: Option<usize>) -> &'static str {
        let expected = match o {
            _ if self.deleted[r] => "unexpected",
            _ if self.referrer[r].is_some() => "already redeemed",
            None => "not found",
            Some(o) if self.deleted[o] => "not found",
            Some(o) if o == r => "own code",
            Some(o) if self.root(o) == r => "cycle",
            Some(_) => "redeemed",
        };
        if expected == "redeemed" {
            self.referrer[r] = o;
        }
        expected
    }

    fn live(&self, rng: &mut Rng) -> usize {
        loop {
            let i = rng.below(self.members.len());
            if !self.deleted[i] {
                return i;
            }
        }
    }
}

fn outcome(result: &Result<Member, RedeemRefusal>) -> &'static str {
    match result {
        Ok(_) => "redeemed",
        Err(RedeemRefusal::NotFound) => "not found",
        Err(RedeemRefusal::OwnCode) => "own code",
        Err(RedeemRefusal::AlreadyRedeemed) => "already redeemed",
        Err(RedeemRefusal::Cycle) => "cycle",
        Err(RedeemRefusal::Unexpected(_)) => "unexpected",
    }
}

/// Every member's referrer id, by member id.
async fn referrers(pool: &PgPool) -> HashMap<uuid::Uuid, Option<uuid::Uuid>> {
    let placements = assert_sets_are_the_trees(pool, "reading referrers").await;
    placements.into_iter().map(|p| (p.id, p.referred_by)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sets_stay_the_trees_through_random_redeems_sign_ups_and_deletions() {
    let f = Fixture::new().await;
    let (mut rng, seed) = Rng::seeded();
    let t = now();
    let mut model = Model::default();
    for n in 0..200 {
        model.add(f.member(n, t).await, None);
    }

    // One at a time, each outcome checked against the model.
    let mut next_phone = 200;
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for step in 0..400 {
        let roll = rng.below(100);
        if roll < 8 {
            let o = model.live(&mut rng);
            let mut request = sign_in(&phone(next_phone), t);
            next_phone += 1;
            request.referred_by = Some(model.members[o].referral_code.clone());
            let member = f.members.sign_in(request).await.expect("signs up").member;
            model.add(member, Some(o));
        } else if roll < 12 {
            let gone = model.live(&mut rng);
            f.members.delete(model.members[gone].id, t, &[]).await.expect("deletes");
            model.deleted[gone] = true;
        } else {
            let r = rng.below(model.members.len());
            let in_rs_tree: Vec<usize> =
                (0..model.members.len()).filter(|&i| i != r && model.root(i) == r).collect();
            let o = match rng.below(20) {
                0 => None,
                1..=6 if !in_rs_tree.is_empty() => Some(in_rs_tree[rng.below(in_rs_tree.len())]),
                _ => Some(rng.below(model.members.len())),
            };
            let code =
                o.map_or_else(ReferralCode::generate, |o| model.members[o].referral_code.clone());
            let got =
                f.referrals.redeem(model.members[r].id, &code, t, &RedeemEvents::none()).await;
            let expected = model.redeem(r, o);
            assert_eq!(outcome(&got), expected, "seed {seed}, step {step}: {got:?}");
            *seen.entry(expected).or_default() += 1;
        }
    }
    for kind in ["redeemed", "cycle", "already redeemed", "not found"] {
        assert!(seen.contains_key(kind), "seed {seed}: no redeem ended {kind}: {seen:?}");
    }
    let stored = referrers(&f.db.pool()).await;
    for (i, member) in model.members.iter().enumerate() {
        let expected = model.referrer[i].map(|up| model.members[up].id.as_uuid());
        assert_eq!(stored[&member.id.as_uuid()], expected, "seed {seed}: member {i}");
    }

    // Four at a time, among the live members; each outcome checked against the final trees.
    let live: Vec<usize> = (0..model.members.len()).filter(|&i| !model.deleted[i]).collect();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let attempts: Vec<(MemberId, MemberId, ReferralCode)> = (0..50)
            .map(|_| {
                let (r, o) = (live[rng.below(live.len())], live[rng.below(live.len())]);
                let (r, o) = (&model.members[r], &model.members[o]);
                (r.id, o.id, o.referral_code.clone())
            })
            .collect();
        let referrals = f.referrals.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for (r, o, code) in attempts {
                let got = referrals.redeem(r, &code, t, &RedeemEvents::none()).await;
                outcomes.push((r, o, outcome(&got)));
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.expect("the task ran"));
    }
    let after = referrers(&f.db.pool()).await;
    let is_below = |mut i: uuid::Uuid, r: uuid::Uuid| loop {
        if i == r {
            return true;
        }
        match after[&i] {
            Some(up) => i = up,
            None => return false,
        }
    };
    let mut redeemed = 0;
    for (r, o, got) in outcomes {
        let (r, o) = (r.as_uuid(), o.as_uuid());
        match got {
            "redeemed" => {
                redeemed += 1;
                assert_eq!(after[&r], Some(o), "seed {seed}");
                assert_eq!(stored[&r], None, "seed {seed}: {r} had redeemed before");
            }
            "already redeemed" => assert!(after[&r].is_some(), "seed {seed}"),
            "cycle" => assert!(r != o && is_below(o, r), "seed {seed}: {o} is not below {r}"),
            "own code" => assert_eq!(r, o, "seed {seed}"),
            other => panic!("seed {seed}: {r} redeeming {o}'s code: {other}"),
        }
    }
    let newly_referred = after.iter().filter(|(id, up)| up.is_some() && stored[*id].is_none());
    assert_eq!(newly_referred.count(), redeemed, "seed {seed}");
}

#[tokio::test]
async fn a_check_answers_what_a_redeem_would_and_changes_nothing() {
    let f = Fixture::new().await;
    let t = now();
    let a = f.member(1, t).await;
    let b = f.member(2, t).await;
    let c = f.member(3, t).await;
    f.referrals.check_redeem(a.id, &b.referral_code).await.expect("allowed");
    assert_eq!(f.referred_by(a.id).await, None, "a check redeems nothing");

    f.referrals.redeem(a.id, &b.referral_code, t, &RedeemEvents::none()).await.expect("redeems");
    let refused = f.referrals.check_redeem(b.id, &a.referral_code).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    let refused = f.referrals.check_redeem(a.id, &c.referral_code).await;
    assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{refused:?}");
    let refused = f.referrals.check_redeem(c.id, &c.referral_code).await;
    assert!(matches!(refused, Err(RedeemRefusal::OwnCode)), "{refused:?}");
    let unknown = ReferralCode::parse("ZZZZZZ").expect("a code");
    let refused = f.referrals.check_redeem(c.id, &unknown).await;
    assert!(matches!(refused, Err(RedeemRefusal::NotFound)), "{refused:?}");
}

#[tokio::test]
async fn a_redeem_stores_its_events_for_the_referrer_found_and_a_refused_one_none() {
    use onboard_kernel::events::Event;
    use onboard_referrals::events::ReferralEvent;

    let f = Fixture::new().await;
    let t = now();
    let referrer = f.member(1, t).await;
    let invitee = f.member(2, t).await;
    let invitee_id = invitee.id;
    let events = RedeemEvents::new(move |referrer_id| {
        vec![Event::record(&ReferralEvent::Redeemed { member_id: invitee_id, referrer_id }, t)]
    });

    f.referrals.redeem(invitee.id, &referrer.referral_code, t, &events).await.expect("redeems");
    let refused = f.referrals.redeem(invitee.id, &referrer.referral_code, t, &events).await;
    assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{refused:?}");
    let refused = f.referrals.redeem(referrer.id, &invitee.referral_code, t, &events).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    let refused = f.referrals.redeem(referrer.id, &referrer.referral_code, t, &events).await;
    assert!(matches!(refused, Err(RedeemRefusal::OwnCode)), "{refused:?}");

    let stored: Vec<ReferralEvent> = crate::stored_events(&f.db.pool())
        .await
        .iter()
        .filter_map(Event::decode::<ReferralEvent>)
        .collect();
    assert_eq!(
        stored,
        [ReferralEvent::Redeemed { member_id: invitee.id, referrer_id: referrer.id }]
    );
}
