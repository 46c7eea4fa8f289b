use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Text, Timestamptz, Uuid};
use diesel_async::{RunQueryDsl as _, SimpleAsyncConnection as _};
use onboard_kernel::{MemberId, ReferralCode, SystemClock};
use onboard_members::Member;
use onboard_members::ports::MemberRepository;
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{PgMemberRepository, PgPool, PgReferralRepository, connect};
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
/// before. Answers them top down (the root first, the bottom member last).
async fn chain(pool: &PgPool, letter: char, depth: i32, at: DateTime<Utc>) -> Vec<(MemberId, ReferralCode)> {
    let mut conn = pool.get().await.unwrap();
    let mut links: Vec<ChainLink> = diesel::sql_query(
        "WITH link AS (
            SELECT i, gen_random_uuid() AS id FROM generate_series(0, $3) AS i
        )
        INSERT INTO members (id, referral_code, referred_by, referred_at, created_at)
        SELECT l.id, $1 || lpad(l.i::text, 5, '0'), up.id, CASE WHEN up.id IS NOT NULL THEN $2 END, $2
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
        .redeem(invitee.id, &referrer.referral_code, t + Duration::minutes(1))
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
async fn an_unknown_code_and_a_deleted_members_code_are_not_found() {
    let f = Fixture::new().await;
    let t = now();
    let redeemer = f.member(1, t).await;
    let gone = f.member(2, t).await;
    f.members.delete(gone.id, t).await.expect("deletes");

    for code in [ReferralCode::parse("ZZZZZZ").expect("a code"), gone.referral_code] {
        let refused = f.referrals.redeem(redeemer.id, &code, t).await;
        assert!(matches!(refused, Err(RedeemRefusal::NotFound)), "{code}: {refused:?}");
    }
    assert_eq!(f.referred_by(redeemer.id).await, None);
}

#[tokio::test]
async fn a_member_cannot_redeem_their_own_code() {
    let f = Fixture::new().await;
    let t = now();
    let me = f.member(1, t).await;

    let refused = f.referrals.redeem(me.id, &me.referral_code, t).await;
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
    f.referrals.redeem(me.id, &first.referral_code, t).await.expect("redeems");

    for code in [&second.referral_code, &first.referral_code] {
        let refused = f.referrals.redeem(me.id, code, t).await;
        assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{refused:?}");
    }
    assert_eq!(f.referred_by(me.id).await, Some(first.referral_code));
    let second_invitees = f.referrals.summary(second.id).await.expect("sums up").expect("known");
    assert_eq!(second_invitees.invitees_count, 0);
}

#[tokio::test]
async fn redeeming_the_code_of_ones_own_invitee_is_a_cycle() {
    let f = Fixture::new().await;
    let t = now();
    let a = f.member(1, t).await;
    let b = f.member(2, t).await;
    f.referrals.redeem(a.id, &b.referral_code, t).await.expect("redeems");

    let refused = f.referrals.redeem(b.id, &a.referral_code, t).await;
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
    f.members.delete(links[700].0, t).await.expect("deletes");

    for code in [&bottom_code, &middle_code] {
        let refused = f.referrals.redeem(root, code, t).await;
        assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    }
    let refused = f.referrals.redeem(middle, &bottom_code, t).await;
    assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{refused:?}");

    let outsider = f.member(1, t).await;
    let joined = f.referrals.redeem(outsider.id, &bottom_code, t).await.expect("redeems");
    assert_eq!(joined.referred_by, Some(bottom_code));
    // The outsider is now 1,001 levels below the root.
    let refused = f.referrals.redeem(root, &outsider.referral_code, t).await;
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
        f.referrals.redeem(invitee.id, &referrer.referral_code, at).await.expect("redeems");
        expected.push((at, invitee.id));
    }
    // A deleted invitee is neither listed nor counted.
    let (_, gone) = expected.remove(7);
    f.members.delete(gone, t).await.expect("deletes");
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
/// `o_referrer`; answers R's outcome once that transaction commits.
async fn redeem_while_the_owner_gains_a_referrer(
    f: &Fixture,
    r: &Member,
    o: &Member,
    o_referrer: MemberId,
) -> Result<Member, RedeemRefusal> {
    let t = now();
    let mut holder = f.db.pool().get().await.unwrap();
    holder
        .batch_execute(&format!(
            "BEGIN; UPDATE members SET referred_by = '{}', referred_at = now() WHERE id = '{}'",
            o_referrer.as_uuid(),
            o.id.as_uuid()
        ))
        .await
        .unwrap();
    let redeem = {
        let referrals = f.referrals.clone();
        let (r, code) = (r.id, o.referral_code.clone());
        tokio::spawn(async move { referrals.redeem(r, &code, t).await })
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
    f.referrals.redeem(below_r.id, &r.referral_code, t).await.expect("redeems");

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
                referrals.redeem(me, &code, t).await
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
                    referrals.redeem(me.id, &code, t).await
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
