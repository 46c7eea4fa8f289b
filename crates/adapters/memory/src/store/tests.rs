use std::sync::Arc;

use chrono::{Duration, TimeZone};
use onboard_members::PersonName;
use onboard_members::ports::{NewSession, RotateOutcome, SessionRepository};

use super::*;

/// `s` seconds after a fixed start.
fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid") + Duration::seconds(s)
}

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+7917444{n:04}"), None).expect("valid")
}

fn code(c: &str) -> ReferralCode {
    ReferralCode::parse(c).expect("valid code")
}

fn hash(n: u32) -> TokenHash {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&n.to_be_bytes());
    TokenHash(h)
}

fn email(e: &str) -> Email {
    Email::parse(e).expect("valid e-mail")
}

const TWO_WEEKS: i64 = 14 * 24 * 3600;

/// A sign-in of `phone` at `at` whose session's refresh token hashes to `refresh`.
fn request(phone: PhoneNumber, new_code: &str, refresh: TokenHash, at: i64) -> SignInRequest {
    SignInRequest {
        phone,
        new_member_id: MemberId::new(),
        new_referral_code: code(new_code),
        referred_by: None,
        session: NewSession {
            kind: onboard_members::SessionKind::Rotating,
            id: SessionId::new(),
            refresh_hash: refresh,
            user_agent: Some("test-agent".into()),
            expires_at: t(at + TWO_WEEKS),
        },
        personal_workspace: None,
        created_events: Vec::new(),
        now: t(at),
    }
}

async fn sign_in(store: &MemoryStore, request: SignInRequest) -> SignInRecord {
    store.sign_in(request).await.expect("signs in")
}

/// A new member with phone `n`, code `new_code`, and a session whose token hashes to `n`.
async fn member(store: &MemoryStore, n: u32, new_code: &str) -> Member {
    sign_in(store, request(phone(n), new_code, hash(n), 0)).await.member
}

async fn live_session_ids(store: &MemoryStore, member: MemberId, at: i64) -> Vec<SessionId> {
    store.list(member, t(at)).await.expect("lists").into_iter().map(|s| s.id).collect()
}

// ---- sign-in -------------------------------------------------------------------------------

#[tokio::test]
async fn signing_in_a_new_phone_creates_the_member_and_opens_a_session() {
    let store = MemoryStore::new();
    let req = request(phone(1), "AAAAAA", hash(1), 10);
    let record = sign_in(&store, req.clone()).await;
    assert!(record.created);
    assert_eq!(record.member.id, req.new_member_id);
    assert_eq!(record.member.phone, Some(phone(1)));
    assert_eq!(record.member.referral_code, code("AAAAAA"));
    assert_eq!(record.member.referred_by, None);
    assert_eq!(record.member.current_group, None);
    assert_eq!(record.member.created_at, t(10));
    assert_eq!(store.find_by_phone(&phone(1)).await.expect("finds"), Some(record.member.clone()));
    assert_eq!(store.get(record.member.id).await.expect("gets"), Some(record.member.clone()));
    assert!(store.referral_code_owner(&code("AAAAAA")).await.expect("answers").is_some());
    let sessions = store.list(record.member.id, t(11)).await.expect("lists");
    assert_eq!(
        sessions,
        vec![Session {
            id: req.session.id,
            created_at: t(10),
            last_used_at: t(10),
            user_agent: Some("test-agent".into()),
        }]
    );
}

#[tokio::test]
async fn signing_in_a_known_phone_opens_a_session_for_the_same_member() {
    let store = MemoryStore::new();
    let first = member(&store, 1, "AAAAAA").await;
    let mut again = request(phone(1), "BBBBBB", hash(2), 20);
    again.referred_by = Some(code("ZZZZZZ"));
    let record = sign_in(&store, again.clone()).await;
    assert!(!record.created);
    assert_eq!(record.member, first, "the new id, code and referral are not applied");
    assert!(store.referral_code_owner(&code("BBBBBB")).await.expect("answers").is_none());
    assert_eq!(live_session_ids(&store, first.id, 21).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_of_a_new_phone_create_one_member() {
    let store = Arc::new(MemoryStore::new());
    let tasks: Vec<_> = (0..20u32)
        .map(|n| {
            let store = Arc::clone(&store);
            let req = request(phone(1), &format!("CODE{n:02}"), hash(n), 0);
            tokio::spawn(async move { store.sign_in(req).await.expect("signs in") })
        })
        .collect();
    let mut records = Vec::new();
    for task in tasks {
        records.push(task.await.expect("no panic"));
    }
    assert_eq!(records.iter().filter(|r| r.created).count(), 1);
    let id = records[0].member.id;
    assert!(records.iter().all(|r| r.member.id == id));
    assert_eq!(live_session_ids(&store, id, 1).await.len(), 20);
}

#[tokio::test]
async fn a_taken_referral_code_is_a_collision_and_writes_nothing() {
    let store = MemoryStore::new();
    member(&store, 1, "AAAAAA").await;
    let req = request(phone(2), "AAAAAA", hash(2), 0);
    let err = store.sign_in(req.clone()).await.expect_err("collides");
    assert!(matches!(err, SignInStoreError::ReferralCodeCollision), "{err:?}");
    assert_eq!(store.find_by_phone(&phone(2)).await.expect("finds"), None);
    assert_eq!(store.get(req.new_member_id).await.expect("gets"), None);
    let rotated = store.rotate(&hash(2), &hash(3), t(1), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert_eq!(rotated, RotateOutcome::Invalid, "no session was opened");

    let mut retry = req;
    retry.new_referral_code = code("BBBBBB");
    assert!(sign_in(&store, retry).await.created);
}

#[tokio::test]
async fn a_deleted_members_code_stays_taken() {
    let store = MemoryStore::new();
    let gone = member(&store, 1, "AAAAAA").await;
    store.delete(gone.id, t(5), &[]).await.expect("deletes");
    let err = store.sign_in(request(phone(2), "AAAAAA", hash(2), 10)).await.expect_err("collides");
    assert!(matches!(err, SignInStoreError::ReferralCodeCollision), "{err:?}");
}

#[tokio::test]
async fn an_unknown_referral_code_is_not_found_and_writes_nothing() {
    let store = MemoryStore::new();
    let mut req = request(phone(1), "AAAAAA", hash(1), 0);
    req.referred_by = Some(code("NOSUCH"));
    let err = store.sign_in(req.clone()).await.expect_err("refuses");
    assert!(matches!(err, SignInStoreError::ReferralCodeNotFound), "{err:?}");
    assert_eq!(store.find_by_phone(&phone(1)).await.expect("finds"), None);
    assert!(store.referral_code_owner(&code("AAAAAA")).await.expect("answers").is_none());
    let rotated = store.rotate(&hash(1), &hash(9), t(1), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert_eq!(rotated, RotateOutcome::Invalid);
}

#[tokio::test]
async fn a_deleted_members_code_cannot_be_redeemed() {
    let store = MemoryStore::new();
    let gone = member(&store, 1, "AAAAAA").await;
    store.delete(gone.id, t(5), &[]).await.expect("deletes");
    assert!(store.referral_code_owner(&code("AAAAAA")).await.expect("answers").is_none());
    let mut req = request(phone(2), "BBBBBB", hash(2), 10);
    req.referred_by = Some(code("AAAAAA"));
    let err = store.sign_in(req).await.expect_err("refuses");
    assert!(matches!(err, SignInStoreError::ReferralCodeNotFound), "{err:?}");
}

#[tokio::test]
async fn a_new_member_records_who_referred_them() {
    let store = MemoryStore::new();
    let referrer = member(&store, 1, "AAAAAA").await;
    let mut req = request(phone(2), "BBBBBB", hash(2), 10);
    req.referred_by = Some(code("AAAAAA"));
    let invitee = sign_in(&store, req).await.member;
    assert_eq!(invitee.referred_by, Some(code("AAAAAA")));
    let profile = store.profile(referrer.id, 20).await.expect("reads").expect("exists");
    assert_eq!(profile.invitees_count, 1);
    assert_eq!(profile.invitees, vec![MemberCard::from(&invitee)]);
}

// ---- profiles ------------------------------------------------------------------------------

#[tokio::test]
async fn invitees_are_live_members_newest_first_then_by_id() {
    let store = MemoryStore::new();
    let referrer = member(&store, 1, "AAAAAA").await;
    let mut invitees = Vec::new();
    for (n, at) in [(2, 10), (3, 30), (4, 30), (5, 20), (6, 40)] {
        let mut req = request(phone(n), &format!("INV{n:03}"), hash(n), at);
        req.referred_by = Some(code("AAAAAA"));
        invitees.push(sign_in(&store, req).await.member);
    }
    // Phone 6, the newest, leaves.
    store.delete(invitees[4].id, t(50), &[]).await.expect("deletes");
    let (later, earlier) = if invitees[1].id > invitees[2].id { (1, 2) } else { (2, 1) };

    let profile = store.profile(referrer.id, 3).await.expect("reads").expect("exists");
    assert_eq!(profile.member, referrer);
    assert_eq!(profile.invitees_count, 4);
    let shown: Vec<MemberId> = profile.invitees.iter().map(|c| c.id).collect();
    assert_eq!(shown, vec![invitees[later].id, invitees[earlier].id, invitees[3].id]);
    assert_eq!(profile.invitees[0], MemberCard::from(&invitees[later]));
}

#[tokio::test]
async fn unknown_and_deleted_members_have_no_profile() {
    let store = MemoryStore::new();
    assert_eq!(store.profile(MemberId::new(), 20).await.expect("reads"), None);
    let gone = member(&store, 1, "AAAAAA").await;
    store.delete(gone.id, t(5), &[]).await.expect("deletes");
    assert_eq!(store.profile(gone.id, 20).await.expect("reads"), None);
    assert_eq!(store.get(gone.id).await.expect("gets"), None);
}

#[tokio::test]
async fn a_member_sees_themself_in_full_and_others_as_a_card() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let bob = member(&store, 2, "BBBBBB").await;
    assert_eq!(
        store.view(ann.id, ann.id).await.expect("views"),
        Some(MemberView::Full(ann.clone()))
    );
    assert_eq!(
        store.view(ann.id, bob.id).await.expect("views"),
        Some(MemberView::Card(MemberCard::from(&bob)))
    );
    assert_eq!(store.view(ann.id, MemberId::new()).await.expect("views"), None);
    store.delete(bob.id, t(5), &[]).await.expect("deletes");
    assert_eq!(store.view(ann.id, bob.id).await.expect("views"), None);
}

#[tokio::test]
async fn a_profile_patch_changes_only_the_fields_it_names() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let patch = ProfilePatch {
        first_name: Some(PersonName::parse("Ann").expect("valid")),
        last_name: None,
        email: Some(email("ann@example.com")),
    };
    let updated = store.update_profile(ann.id, &patch, &[]).await.expect("updates");
    assert_eq!(updated.first_name.as_deref(), Some("Ann"));
    assert_eq!(updated.last_name, None);
    assert_eq!(updated.email, Some(email("ann@example.com")));
    assert_eq!(updated.referral_code, ann.referral_code);

    let last_only = ProfilePatch {
        last_name: Some(PersonName::parse("Lee").expect("valid")),
        ..ProfilePatch::default()
    };
    let updated = store.update_profile(ann.id, &last_only, &[]).await.expect("updates");
    assert_eq!(updated.first_name.as_deref(), Some("Ann"));
    assert_eq!(updated.last_name.as_deref(), Some("Lee"));
    assert_eq!(updated.email, Some(email("ann@example.com")));
    assert_eq!(store.get(ann.id).await.expect("gets"), Some(updated));
}

#[tokio::test]
async fn another_members_email_is_taken_but_ones_own_is_not() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let bob = member(&store, 2, "BBBBBB").await;
    let patch = ProfilePatch { email: Some(email("ann@example.com")), ..ProfilePatch::default() };
    store.update_profile(ann.id, &patch, &[]).await.expect("updates");
    store
        .update_profile(ann.id, &patch, &[])
        .await
        .expect("setting one's own e-mail again is fine");
    let err = store.update_profile(bob.id, &patch, &[]).await.expect_err("taken");
    assert!(matches!(err, UpdateProfileError::EmailTaken), "{err:?}");
    let upper = ProfilePatch { email: Some(email("ANN@Example.com")), ..ProfilePatch::default() };
    let err = store.update_profile(bob.id, &upper, &[]).await.expect_err("taken whatever the case");
    assert!(matches!(err, UpdateProfileError::EmailTaken), "{err:?}");
    assert_eq!(store.get(bob.id).await.expect("gets").expect("exists").email, None);
}

#[tokio::test]
async fn changing_an_email_frees_the_old_one() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let bob = member(&store, 2, "BBBBBB").await;
    let old = ProfilePatch { email: Some(email("old@example.com")), ..ProfilePatch::default() };
    let new = ProfilePatch { email: Some(email("new@example.com")), ..ProfilePatch::default() };
    store.update_profile(ann.id, &old, &[]).await.expect("updates");
    store.update_profile(ann.id, &new, &[]).await.expect("updates");
    let updated = store.update_profile(bob.id, &old, &[]).await.expect("the old address is free");
    assert_eq!(updated.email, Some(email("old@example.com")));
}

#[tokio::test]
async fn updating_an_unknown_or_deleted_member_is_not_found() {
    let store = MemoryStore::new();
    let err = store.update_profile(MemberId::new(), &ProfilePatch::default(), &[]).await;
    assert!(matches!(err, Err(UpdateProfileError::NotFound)), "{err:?}");
    let gone = member(&store, 1, "AAAAAA").await;
    store.delete(gone.id, t(5), &[]).await.expect("deletes");
    let err = store.update_profile(gone.id, &ProfilePatch::default(), &[]).await;
    assert!(matches!(err, Err(UpdateProfileError::NotFound)), "{err:?}");
}

// ---- deletion ------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_member_frees_their_phone_and_email_and_revokes_their_live_sessions() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let patch = ProfilePatch { email: Some(email("ann@example.com")), ..ProfilePatch::default() };
    store.update_profile(ann.id, &patch, &[]).await.expect("updates");
    let second = request(phone(1), "XXXXXX", hash(100), 10);
    sign_in(&store, second.clone()).await;
    let mut short = request(phone(1), "XXXXXX", hash(101), 10);
    short.session.expires_at = t(20);
    sign_in(&store, short).await;
    let revoked = request(phone(1), "XXXXXX", hash(102), 10);
    sign_in(&store, revoked.clone()).await;
    assert!(store.revoke(ann.id, revoked.session.id, t(15)).await.expect("revokes"));
    let first_session = live_session_ids(&store, ann.id, 30).await;
    assert_eq!(first_session.len(), 2);

    let mut ids = store.delete(ann.id, t(30), &[]).await.expect("deletes");
    ids.sort();
    let mut expected = vec![first_session[0], first_session[1]];
    expected.sort();
    assert_eq!(ids, expected, "only the sessions that were live");
    assert!(expected.contains(&second.session.id));

    assert!(live_session_ids(&store, ann.id, 31).await.is_empty());
    assert_eq!(store.find_by_phone(&phone(1)).await.expect("finds"), None);
    assert_eq!(
        store.rotate(&hash(100), &hash(200), t(31), 10, t(TWO_WEEKS)).await.expect("rotates"),
        RotateOutcome::Invalid
    );

    let again = sign_in(&store, request(phone(1), "CCCCCC", hash(3), 40)).await;
    assert!(again.created, "the phone signs up as a new member");
    assert_ne!(again.member.id, ann.id);
    let bob = member(&store, 2, "BBBBBB").await;
    store.update_profile(bob.id, &patch, &[]).await.expect("the e-mail is free");

    let err = store.delete(ann.id, t(50), &[]).await;
    assert!(matches!(err, Err(DeleteMemberError::NotFound)), "{err:?}");
    let err = store.delete(MemberId::new(), t(50), &[]).await;
    assert!(matches!(err, Err(DeleteMemberError::NotFound)), "{err:?}");
}

// ---- sessions ------------------------------------------------------------------------------

#[tokio::test]
async fn a_live_refresh_token_rotates_to_the_new_one() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let session = live_session_ids(&store, ann.id, 0).await[0];
    let outcome =
        store.rotate(&hash(1), &hash(2), t(100), 10, t(100 + TWO_WEEKS)).await.expect("rotates");
    let refreshed =
        RefreshedSession { session_id: session, member_id: ann.id, current_group: None };
    assert_eq!(outcome, RotateOutcome::Rotated(refreshed.clone()));
    let listed = store.list(ann.id, t(101)).await.expect("lists");
    assert_eq!(listed[0].last_used_at, t(100));
    assert_eq!(listed[0].created_at, t(0));

    // The new token rotates in turn, and the extension holds past the first expiry.
    let later = t(TWO_WEEKS + 50);
    let outcome =
        store.rotate(&hash(2), &hash(3), later, 10, t(2 * TWO_WEEKS)).await.expect("rotates");
    assert_eq!(outcome, RotateOutcome::Rotated(refreshed));
}

#[tokio::test]
async fn a_used_token_within_the_grace_period_with_the_same_successor_is_grace() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let session = live_session_ids(&store, ann.id, 0).await[0];
    store.rotate(&hash(1), &hash(2), t(100), 10, t(TWO_WEEKS)).await.expect("rotates");
    let outcome =
        store.rotate(&hash(1), &hash(2), t(109), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert_eq!(
        outcome,
        RotateOutcome::Grace(RefreshedSession {
            session_id: session,
            member_id: ann.id,
            current_group: None
        })
    );
    assert_eq!(live_session_ids(&store, ann.id, 110).await, vec![session]);
    let outcome =
        store.rotate(&hash(2), &hash(3), t(110), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert!(matches!(outcome, RotateOutcome::Rotated(_)), "{outcome:?}");
}

#[tokio::test]
async fn a_used_token_after_the_grace_period_revokes_the_session() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let session = live_session_ids(&store, ann.id, 0).await[0];
    store.rotate(&hash(1), &hash(2), t(100), 10, t(TWO_WEEKS)).await.expect("rotates");
    let outcome =
        store.rotate(&hash(1), &hash(2), t(110), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert_eq!(outcome, RotateOutcome::Reused { member_id: ann.id, session_id: session });
    assert!(live_session_ids(&store, ann.id, 111).await.is_empty());
    let outcome =
        store.rotate(&hash(2), &hash(3), t(111), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert_eq!(outcome, RotateOutcome::Invalid, "the thief's token dies with the session");
}

#[tokio::test]
async fn a_used_token_with_another_successor_revokes_the_session_at_once() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let session = live_session_ids(&store, ann.id, 0).await[0];
    store.rotate(&hash(1), &hash(2), t(100), 10, t(TWO_WEEKS)).await.expect("rotates");
    let outcome =
        store.rotate(&hash(1), &hash(9), t(101), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert_eq!(outcome, RotateOutcome::Reused { member_id: ann.id, session_id: session });
    assert!(live_session_ids(&store, ann.id, 102).await.is_empty());
}

#[tokio::test]
async fn a_revoked_session_gets_no_grace() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let session = live_session_ids(&store, ann.id, 0).await[0];
    store.rotate(&hash(1), &hash(2), t(100), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert!(store.revoke(ann.id, session, t(101)).await.expect("revokes"));
    let outcome =
        store.rotate(&hash(1), &hash(2), t(102), 10, t(TWO_WEEKS)).await.expect("rotates");
    assert_eq!(outcome, RotateOutcome::Reused { member_id: ann.id, session_id: session });
}

#[tokio::test]
async fn unknown_revoked_and_expired_tokens_are_invalid() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let rotate = |old: u32, at: i64| {
        let store = &store;
        async move { store.rotate(&hash(old), &hash(old + 1000), t(at), 10, t(at + TWO_WEEKS)).await }
    };
    assert_eq!(rotate(999, 1).await.expect("rotates"), RotateOutcome::Invalid);

    let session = live_session_ids(&store, ann.id, 0).await[0];
    assert!(store.revoke(ann.id, session, t(1)).await.expect("revokes"));
    assert_eq!(rotate(1, 2).await.expect("rotates"), RotateOutcome::Invalid);

    let bob = member(&store, 2, "BBBBBB").await;
    assert_eq!(rotate(2, TWO_WEEKS).await.expect("rotates"), RotateOutcome::Invalid, "expired");
    assert!(live_session_ids(&store, bob.id, TWO_WEEKS).await.is_empty());
}

#[tokio::test]
async fn a_member_revokes_only_their_own_live_sessions() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let bob = member(&store, 2, "BBBBBB").await;
    let anns = live_session_ids(&store, ann.id, 0).await[0];
    assert!(!store.revoke(bob.id, anns, t(1)).await.expect("answers"));
    assert!(!store.revoke(ann.id, SessionId::new(), t(1)).await.expect("answers"));
    assert!(store.revoke(ann.id, anns, t(1)).await.expect("revokes"));
    assert!(!store.revoke(ann.id, anns, t(2)).await.expect("answers"), "already revoked");
    let bobs = live_session_ids(&store, bob.id, 0).await[0];
    assert!(!store.revoke(bob.id, bobs, t(TWO_WEEKS)).await.expect("answers"), "expired");
}

#[tokio::test]
async fn live_sessions_are_listed_newest_first() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let mut ids = vec![live_session_ids(&store, ann.id, 0).await[0]];
    for (n, at) in [(10, 30), (11, 20), (12, 40)] {
        let mut req = request(phone(1), "XXXXXX", hash(n), at);
        req.session.user_agent = Some(format!("agent {n}"));
        ids.push(req.session.id);
        sign_in(&store, req).await;
    }
    store.revoke(ann.id, ids[3], t(50)).await.expect("revokes");
    member(&store, 2, "BBBBBB").await;

    let listed = store.list(ann.id, t(60)).await.expect("lists");
    let shown: Vec<SessionId> = listed.iter().map(|s| s.id).collect();
    assert_eq!(shown, vec![ids[1], ids[2], ids[0]]);
    assert_eq!(listed[0].user_agent.as_deref(), Some("agent 10"));
    assert_eq!(listed[0].created_at, t(30));
}

// The seed referral-api's users list.
#[tokio::test]
async fn the_members_directory_filters_pages_oldest_first_and_counts_every_match() {
    use onboard_members::MemberFilter;

    let store = MemoryStore::default();
    let mut ids = Vec::new();
    for (n, c) in ["AAAAA1", "AAAAA2", "AAAAA3", "AAAAA4"].iter().enumerate() {
        let n = u32::try_from(n).expect("small");
        let mut r = request(phone(n), c, hash(n), i64::from(n));
        if n == 3 {
            r.referred_by = Some(code("AAAAA1"));
        }
        ids.push(sign_in(&store, r).await.member.id);
    }
    let patch = ProfilePatch {
        last_name: Some(PersonName::parse("Lee").expect("a name")),
        email: Some(email("lee@example.com")),
        ..ProfilePatch::default()
    };
    store.update_profile(ids[1], &patch, &[]).await.expect("updates");
    store.delete(ids[2], t(10), &[]).await.expect("deletes");

    let all = MemberFilter::default();
    let page = store.list_members(&all, 1, 1).await.expect("lists");
    assert_eq!((page.count, page.items[0].id), (3, ids[1]));
    assert!(store.list_members(&all, 5, 1).await.expect("lists").items.is_empty());
    let only = |filter: MemberFilter| {
        let store = &store;
        async move {
            let page = store.list_members(&filter, 0, 100).await.expect("lists");
            page.items.into_iter().map(|m| m.id).collect::<Vec<_>>()
        }
    };
    let f = MemberFilter::default;
    assert_eq!(only(MemberFilter { last_name: Some("Lee".into()), ..f() }).await, [ids[1]]);
    assert_eq!(only(MemberFilter { email: Some(email("LEE@example.com")), ..f() }).await, [ids[1]]);
    assert_eq!(only(MemberFilter { phone: Some(phone(0)), ..f() }).await, [ids[0]]);
    assert_eq!(only(MemberFilter { referral_code: Some(code("aaaaa4")), ..f() }).await, [ids[3]]);
    assert_eq!(only(MemberFilter { referred_by: Some(code("AAAAA1")), ..f() }).await, [ids[3]]);
    assert_eq!(only(MemberFilter { search: Some("le".into()), ..f() }).await, [ids[1]]);
    assert_eq!(only(MemberFilter { search: Some("aaaaa1".into()), ..f() }).await, [ids[0]]);
    assert_eq!(only(MemberFilter { search: Some("+7917444".into()), ..f() }).await.len(), 3);
}

// ---- events --------------------------------------------------------------------------------

fn stored_events(store: &MemoryStore) -> Vec<Event> {
    store.state().outbox.all().cloned().collect()
}

/// A sign-in request carrying the events of the sign-up it would be.
fn signing_up(phone: PhoneNumber, new_code: &str, refresh: TokenHash, at: i64) -> SignInRequest {
    let mut req = request(phone, new_code, refresh, at);
    req.created_events = onboard_members::events::signed_up(
        req.new_member_id,
        None,
        req.personal_workspace.as_ref(),
        t(at),
    );
    req
}

#[tokio::test]
async fn a_sign_up_stores_its_events_once_and_a_repeated_sign_in_of_the_phone_none() {
    let store = MemoryStore::new();
    let first = signing_up(phone(1), "AAAAAA", hash(1), 0);
    let expected = first.created_events.clone();
    assert!(sign_in(&store, first).await.created);

    let again = sign_in(&store, signing_up(phone(1), "BBBBBB", hash(2), 5)).await;

    assert!(!again.created);
    assert_eq!(stored_events(&store), expected);
    assert_eq!(expected[0].event_type, "member.signed_up");
}

#[tokio::test]
async fn a_refused_sign_up_stores_no_event() {
    let store = MemoryStore::new();
    let mut req = signing_up(phone(1), "AAAAAA", hash(1), 0);
    req.referred_by = Some(code("ZZZZZZ"));

    let refused = store.sign_in(req).await;

    assert!(matches!(refused, Err(SignInStoreError::ReferralCodeNotFound)), "{refused:?}");
    assert!(stored_events(&store).is_empty());
}

#[tokio::test]
async fn a_replaced_workspace_slug_is_the_one_the_stored_group_created_event_names() {
    use onboard_groups::events::GroupEvent;
    use onboard_members::ports::NewWorkspace;

    let store = MemoryStore::new();
    let workspace = |slug: &str| NewWorkspace {
        id: GroupId::new(),
        slug: slug.to_owned(),
        name: "Personal".to_owned(),
    };
    let mut first = request(phone(1), "AAAAAA", hash(1), 0);
    first.personal_workspace = Some(workspace("ws-aaaaaaaaaa"));
    sign_in(&store, first).await;
    let mut second = request(phone(2), "BBBBBB", hash(2), 0);
    second.personal_workspace = Some(workspace("ws-aaaaaaaaaa"));
    second.created_events = onboard_members::events::signed_up(
        second.new_member_id,
        None,
        second.personal_workspace.as_ref(),
        t(0),
    );

    let record = sign_in(&store, second).await;

    let stored_slug = record.member.current_group.expect("a current group");
    assert_ne!(stored_slug, "ws-aaaaaaaaaa");
    let created = stored_events(&store).iter().find_map(|e| e.decode::<GroupEvent>());
    assert!(
        matches!(&created, Some(GroupEvent::Created { slug, .. }) if *slug == stored_slug),
        "{created:?}"
    );
}

#[tokio::test]
async fn a_profile_update_and_a_deletion_store_their_events_and_refusals_none() {
    let store = MemoryStore::new();
    let ann = member(&store, 1, "AAAAAA").await;
    let bob = member(&store, 2, "BBBBBB").await;
    let event = |member_id| {
        Event::record(&onboard_members::events::MemberEvent::Deleted { member_id }, t(0))
    };
    let patch = ProfilePatch { email: Some(email("ann@example.com")), ..ProfilePatch::default() };
    let updated = event(ann.id);
    store.update_profile(ann.id, &patch, std::slice::from_ref(&updated)).await.expect("updated");
    let taken = store.update_profile(bob.id, &patch, &[event(bob.id)]).await;
    assert!(matches!(taken, Err(UpdateProfileError::EmailTaken)), "{taken:?}");
    let deleted = event(ann.id);
    store.delete(ann.id, t(1), std::slice::from_ref(&deleted)).await.expect("deleted");
    let again = store.delete(ann.id, t(2), &[event(ann.id)]).await;
    assert!(matches!(again, Err(DeleteMemberError::NotFound)), "{again:?}");

    assert_eq!(stored_events(&store), [updated, deleted]);
}

#[tokio::test]
async fn a_first_sso_login_stores_the_sign_up_events_and_a_later_login_none() {
    use onboard_members::ports::SignInDraft;
    use onboard_sso::ports::IdentityRepository;
    use onboard_sso::{ProviderIdentity, ProviderName};

    let store = MemoryStore::new();
    let identity = ProviderIdentity {
        provider: ProviderName::parse("sparcs").expect("a provider name"),
        subject: "s-1".to_owned(),
        verified_phone: Some(phone(1)),
        verified_email: None,
        first_name: None,
        last_name: None,
    };
    let draft = |n: u32, new_code: &str| {
        let request = signing_up(phone(1), new_code, hash(n), 0);
        SignInDraft {
            new_member_id: request.new_member_id,
            new_referral_code: request.new_referral_code,
            session: request.session,
            personal_workspace: request.personal_workspace,
            created_events: request.created_events,
            now: request.now,
        }
    };
    let first = draft(1, "AAAAAA");

    let created = IdentityRepository::sign_in(&store, &identity, &first).await.expect("signs up");
    let again = IdentityRepository::sign_in(&store, &identity, &draft(2, "BBBBBB"))
        .await
        .expect("signs in");

    assert!(created.created);
    assert!(!again.created);
    assert_eq!(stored_events(&store), first.created_events);
}
