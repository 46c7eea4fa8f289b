use onboard_referrals::events::RedeemEvents;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone};
use onboard_kernel::{SessionId, SystemClock};
use onboard_members::TokenHash;
use onboard_members::ports::{MemberRepository, NewSession, SignInRequest};
use onboard_referrals::ReferralsService;
use tokio::sync::Barrier;

use super::*;

/// `s` seconds after a fixed start.
fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid") + Duration::seconds(s)
}

fn code(c: &str) -> ReferralCode {
    ReferralCode::parse(c).expect("valid code")
}

/// A new member with phone number `n`, code `new_code`, signed up at `t(0)`, referred by the
/// owner of `referred_by` when given.
async fn sign_up(store: &MemoryStore, n: u32, new_code: &str, referred_by: Option<&str>) -> Member {
    let mut refresh = [0u8; 32];
    refresh[..4].copy_from_slice(&n.to_be_bytes());
    let request = SignInRequest {
        phone: PhoneNumber::parse(&format!("+7917555{n:04}"), None).expect("valid"),
        new_member_id: MemberId::new(),
        new_referral_code: code(new_code),
        referred_by: referred_by.map(code),
        session: NewSession {
            kind: onboard_members::SessionKind::Rotating,
            id: SessionId::new(),
            refresh_hash: TokenHash(refresh),
            user_agent: None,
            expires_at: t(3600),
        },
        personal_workspace: None,
        created_events: Vec::new(),
        now: t(0),
    };
    store.sign_in(request).await.expect("signs up").member
}

async fn member(store: &MemoryStore, n: u32, new_code: &str) -> Member {
    sign_up(store, n, new_code, None).await
}

async fn referred_by(store: &MemoryStore, id: MemberId) -> Option<ReferralCode> {
    store.get(id).await.expect("gets").expect("a live member").referred_by
}

#[tokio::test]
async fn a_member_redeems_another_members_code_and_shows_among_their_invitees() {
    let store = MemoryStore::new();
    let referrer = member(&store, 1, "AAAAAA").await;
    let invitee = member(&store, 2, "BBBBBB").await;

    let redeemed = store
        .redeem(invitee.id, &code("AAAAAA"), t(60), &RedeemEvents::none())
        .await
        .expect("redeems");
    assert_eq!(redeemed.referred_by, Some(code("AAAAAA")));
    assert_eq!(Some(redeemed.clone()), store.get(invitee.id).await.expect("gets"));
    assert_eq!(Member { referred_by: None, ..redeemed }, invitee, "nothing else changed");

    let summary = store.summary(referrer.id).await.expect("sums up").expect("known");
    assert_eq!(summary.code, code("AAAAAA"));
    assert_eq!(summary.referred_by, None);
    assert_eq!(summary.invitees_count, 1);
    let summary = store.summary(invitee.id).await.expect("sums up").expect("known");
    assert_eq!(
        summary.referred_by,
        Some(Referrer { code: code("AAAAAA"), member_id: referrer.id })
    );
    assert_eq!(summary.invitees_count, 0);
    assert_eq!(store.summary(MemberId::new()).await.expect("sums up"), None);

    let page = store.invitees(referrer.id, None, 10).await.expect("lists");
    assert_eq!(page.len(), 1);
    let (card, cursor) = &page[0];
    assert_eq!(card.id, invitee.id);
    assert_eq!(card.phone_masked.as_deref(), Some("+7******0002"));
    assert_eq!(*cursor, Cursor { referred_at: t(60), id: invitee.id });
}

#[tokio::test]
async fn an_unknown_code_and_a_deleted_members_code_are_not_found() {
    let store = MemoryStore::new();
    let redeemer = member(&store, 1, "AAAAAA").await;
    let gone = member(&store, 2, "BBBBBB").await;
    store.delete(gone.id, t(1), &[]).await.expect("deletes");

    for c in ["ZZZZZZ", "BBBBBB"] {
        let refused = store.redeem(redeemer.id, &code(c), t(2), &RedeemEvents::none()).await;
        assert!(matches!(refused, Err(RedeemRefusal::NotFound)), "{c}: {refused:?}");
    }
    assert_eq!(referred_by(&store, redeemer.id).await, None);
}

#[tokio::test]
async fn a_member_cannot_redeem_their_own_code() {
    let store = MemoryStore::new();
    let me = member(&store, 1, "AAAAAA").await;
    let refused = store.redeem(me.id, &code("AAAAAA"), t(1), &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::OwnCode)), "{refused:?}");
    assert_eq!(referred_by(&store, me.id).await, None);
}

#[tokio::test]
async fn a_member_redeems_at_most_one_code_ever() {
    let store = MemoryStore::new();
    let me = member(&store, 1, "AAAAAA").await;
    member(&store, 2, "BBBBBB").await;
    member(&store, 3, "CCCCCC").await;
    store.redeem(me.id, &code("BBBBBB"), t(1), &RedeemEvents::none()).await.expect("redeems");

    for c in ["CCCCCC", "BBBBBB"] {
        let refused = store.redeem(me.id, &code(c), t(2), &RedeemEvents::none()).await;
        assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{c}: {refused:?}");
    }
    // Signing up with a code counts as the one redeem too.
    let newcomer = sign_up(&store, 4, "DDDDDD", Some("BBBBBB")).await;
    let refused = store.redeem(newcomer.id, &code("CCCCCC"), t(3), &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{refused:?}");
    assert_eq!(referred_by(&store, me.id).await, Some(code("BBBBBB")));
}

#[tokio::test]
async fn a_redeemer_who_is_not_a_live_member_is_an_error() {
    let store = MemoryStore::new();
    let gone = member(&store, 1, "AAAAAA").await;
    member(&store, 2, "BBBBBB").await;
    store.delete(gone.id, t(1), &[]).await.expect("deletes");
    for id in [gone.id, MemberId::new()] {
        let refused = store.redeem(id, &code("BBBBBB"), t(2), &RedeemEvents::none()).await;
        assert!(matches!(refused, Err(RedeemRefusal::Unexpected(_))), "{refused:?}");
    }
}

#[tokio::test]
async fn redeeming_the_code_of_ones_own_invitee_is_a_cycle() {
    let store = MemoryStore::new();
    let a = member(&store, 1, "AAAAAA").await;
    let b = member(&store, 2, "BBBBBB").await;
    store.redeem(a.id, &code("BBBBBB"), t(1), &RedeemEvents::none()).await.expect("redeems");

    let refused = store.redeem(b.id, &code("AAAAAA"), t(2), &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    assert_eq!(referred_by(&store, b.id).await, None);
}

#[tokio::test]
async fn a_cycle_is_found_far_down_a_chain_and_an_outsider_may_join_there() {
    let store = MemoryStore::new();
    // 300 levels below the root, each member signed up with the code of the one above.
    let root = member(&store, 0, "C00000").await;
    let mut chain = vec![root.clone()];
    for i in 1..=300u32 {
        let above = format!("C{:05}", i - 1);
        chain.push(sign_up(&store, i, &format!("C{i:05}"), Some(&above)).await);
    }
    let bottom = chain[300].clone();
    // A deleted member stays in the tree: the climb goes through them.
    store.delete(chain[150].id, t(1), &[]).await.expect("deletes");
    let summary = store.summary(root.id).await.expect("sums up").expect("known");
    assert_eq!(summary.invitees_count, 1);

    let refused = store.redeem(root.id, &bottom.referral_code, t(1), &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");

    let outsider = member(&store, 1000, "OUTSDR").await;
    let joined = store
        .redeem(outsider.id, &bottom.referral_code, t(2), &RedeemEvents::none())
        .await
        .expect("redeems");
    assert_eq!(joined.referred_by, Some(bottom.referral_code.clone()));
    let refused = store.redeem(root.id, &code("OUTSDR"), t(3), &RedeemEvents::none()).await;
    assert!(matches!(refused, Err(RedeemRefusal::Cycle)), "{refused:?}");
    assert_eq!(referred_by(&store, root.id).await, None);
}

#[tokio::test]
async fn invitee_pages_run_newest_first_with_no_gap_or_repeat_even_on_equal_times() {
    let store = Arc::new(MemoryStore::new());
    let referrer = member(&store, 100, "REFRER").await;
    let service = ReferralsService::new(store.clone(), Arc::new(SystemClock));
    // 23 invitees in groups of five that redeemed at the same instant.
    let mut expected = Vec::new();
    for n in 0..23u32 {
        let invitee = member(&store, n, &format!("INV{n:03}")).await;
        let at = t(i64::from(n / 5));
        store
            .redeem(invitee.id, &code("REFRER"), at, &RedeemEvents::none())
            .await
            .expect("redeems");
        expected.push((at, invitee.id));
    }
    // A deleted invitee is neither listed nor counted.
    let (_, gone) = expected.remove(7);
    store.delete(gone, t(100), &[]).await.expect("deletes");
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
    let summary = store.summary(referrer.id).await.expect("sums up").expect("known");
    assert_eq!(summary.invitees_count, 22);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_pairs_redeeming_each_others_codes_at_once_never_both_succeed() {
    let store = Arc::new(MemoryStore::new());
    let mut pairs = Vec::new();
    for n in 0..20u32 {
        let a = member(&store, 2 * n, &format!("PA{n:04}")).await;
        let b = member(&store, 2 * n + 1, &format!("PB{n:04}")).await;
        pairs.push((a, b));
    }

    let start = Arc::new(Barrier::new(40));
    let mut tasks = Vec::new();
    for (a, b) in &pairs {
        for (me, them) in [(a, b), (b, a)] {
            let (store, start) = (store.clone(), start.clone());
            let (me, code) = (me.id, them.referral_code.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                store.redeem(me, &code, t(1), &RedeemEvents::none()).await
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
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_redeeming_two_codes_at_once_gets_exactly_one() {
    let store = Arc::new(MemoryStore::new());
    for round in 0..10u32 {
        let me = member(&store, 3 * round, &format!("ME{round:04}")).await;
        let x = member(&store, 3 * round + 1, &format!("XX{round:04}")).await;
        let y = member(&store, 3 * round + 2, &format!("YY{round:04}")).await;
        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [x.referral_code.clone(), y.referral_code.clone()]
            .into_iter()
            .map(|code| {
                let (store, start) = (store.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    store.redeem(me.id, &code, t(1), &RedeemEvents::none()).await
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
        assert_eq!(referred_by(&store, me.id).await, winner[0].referred_by);
        let codes: HashSet<_> = [Some(x.referral_code), Some(y.referral_code)].into();
        assert!(codes.contains(&winner[0].referred_by));
    }
}

#[tokio::test]
async fn a_check_answers_what_a_redeem_would_and_changes_nothing() {
    let store = MemoryStore::new();
    let a = member(&store, 1, "AAAAAA").await;
    let b = member(&store, 2, "BBBBBB").await;
    let c = member(&store, 3, "CCCCCC").await;
    store.check_redeem(a.id, &code("BBBBBB")).await.expect("allowed");
    assert_eq!(referred_by(&store, a.id).await, None, "a check redeems nothing");

    store.redeem(a.id, &code("BBBBBB"), t(1), &RedeemEvents::none()).await.expect("redeems");
    let cases = [
        (b.id, "AAAAAA", "cycle"),
        (a.id, "CCCCCC", "already"),
        (c.id, "CCCCCC", "own"),
        (c.id, "ZZZZZZ", "not found"),
    ];
    for (who, c, what) in cases {
        let refused = store.check_redeem(who, &code(c)).await;
        let expected = matches!(
            (&refused, what),
            (Err(RedeemRefusal::Cycle), "cycle")
                | (Err(RedeemRefusal::AlreadyRedeemed), "already")
                | (Err(RedeemRefusal::OwnCode), "own")
                | (Err(RedeemRefusal::NotFound), "not found")
        );
        assert!(expected, "{what}: {refused:?}");
    }
}

#[tokio::test]
async fn a_redeem_stores_its_events_for_the_referrer_found_and_a_refused_one_none() {
    use onboard_kernel::events::Event;
    use onboard_referrals::events::ReferralEvent;

    let store = MemoryStore::new();
    let referrer = member(&store, 1, "AAAAAA").await;
    let invitee = member(&store, 2, "BBBBBB").await;
    let events = RedeemEvents::new(move |referrer_id| {
        vec![Event::record(&ReferralEvent::Redeemed { member_id: invitee.id, referrer_id }, t(60))]
    });

    store.redeem(invitee.id, &code("AAAAAA"), t(60), &events).await.expect("redeems");
    let refused = store.redeem(invitee.id, &code("AAAAAA"), t(61), &events).await;
    assert!(matches!(refused, Err(RedeemRefusal::AlreadyRedeemed)), "{refused:?}");
    let refused = store.redeem(referrer.id, &code("AAAAAA"), t(62), &events).await;
    assert!(matches!(refused, Err(RedeemRefusal::OwnCode)), "{refused:?}");

    let stored: Vec<ReferralEvent> =
        store.state().outbox.all().filter_map(Event::decode::<ReferralEvent>).collect();
    assert_eq!(
        stored,
        [ReferralEvent::Redeemed { member_id: invitee.id, referrer_id: referrer.id }]
    );
}
