use chrono::Duration;
use onboard_groups::Slug;
use onboard_groups::ports::GroupRepository;
use onboard_members::SessionKind;
use onboard_members::ports::{MemberRepository, RotateOutcome, SessionRepository, SignInRequest};
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{PgMemberRepository, PgSessionRepository, connect};

use crate::groups::{Fixture, with_workspace};
use crate::{now, phone, sign_in, token};

const GRACE: u64 = 10;

/// A member signed in once, with the request that did it.
async fn signed_in(db: &TestDatabase) -> SignInRequest {
    let request = sign_in(&phone(1), now());
    PgMemberRepository::new(db.pool()).sign_in(request.clone()).await.expect("signs up");
    request
}

#[tokio::test]
async fn a_live_token_rotates_and_a_concurrent_retry_within_grace_changes_nothing() {
    let db = TestDatabase::new().await;
    let sessions = PgSessionRepository::new(db.pool());
    let signed = signed_in(&db).await;
    let (old, new) = (signed.session.refresh_hash, token());
    let t = signed.now + Duration::minutes(5);
    let expires = t + Duration::days(14);

    let rotated = sessions.rotate(&old, &new, t, GRACE, expires).await.expect("rotates");
    let RotateOutcome::Rotated(session) = rotated else {
        panic!("expected Rotated, got {rotated:?}")
    };
    assert_eq!(session.session_id, signed.session.id);
    assert_eq!(session.member_id, signed.new_member_id);
    assert_eq!(session.current_group, None);

    let retry = sessions.rotate(&old, &new, t + Duration::seconds(3), GRACE, expires).await;
    assert_eq!(retry.expect("answers"), RotateOutcome::Grace(session.clone()));

    let listed = sessions.list(signed.new_member_id, t).await.expect("lists");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, t, "the retry did not touch the session");

    // The child token is the live one now.
    let next = sessions.rotate(&new, &token(), t + Duration::minutes(1), GRACE, expires).await;
    assert!(matches!(next.expect("answers"), RotateOutcome::Rotated(_)));
}

#[tokio::test]
async fn a_used_token_after_the_grace_period_revokes_the_session() {
    let db = TestDatabase::new().await;
    let sessions = PgSessionRepository::new(db.pool());
    let signed = signed_in(&db).await;
    let (old, new) = (signed.session.refresh_hash, token());
    let t = signed.now;
    let expires = t + Duration::days(14);
    sessions.rotate(&old, &new, t, GRACE, expires).await.expect("rotates");

    let late = t + Duration::seconds(11);
    let replay = sessions.rotate(&old, &new, late, GRACE, expires).await.expect("answers");

    assert_eq!(
        replay,
        RotateOutcome::Reused { member_id: signed.new_member_id, session_id: signed.session.id }
    );
    let after = sessions.rotate(&new, &token(), late, GRACE, expires).await.expect("answers");
    assert_eq!(after, RotateOutcome::Invalid, "the live token died with its session");
    assert!(sessions.list(signed.new_member_id, late).await.expect("lists").is_empty());
}

#[tokio::test]
async fn a_used_token_presented_for_another_child_revokes_the_session_even_within_grace() {
    let db = TestDatabase::new().await;
    let sessions = PgSessionRepository::new(db.pool());
    let signed = signed_in(&db).await;
    let (old, new) = (signed.session.refresh_hash, token());
    let t = signed.now;
    let expires = t + Duration::days(14);
    sessions.rotate(&old, &new, t, GRACE, expires).await.expect("rotates");

    let forged = sessions.rotate(&old, &token(), t + Duration::seconds(1), GRACE, expires).await;

    assert!(matches!(forged.expect("answers"), RotateOutcome::Reused { .. }));
    let after = sessions.rotate(&new, &token(), t + Duration::seconds(2), GRACE, expires).await;
    assert_eq!(after.expect("answers"), RotateOutcome::Invalid);
}

#[tokio::test]
async fn an_unknown_token_is_invalid() {
    let db = TestDatabase::new().await;
    let sessions = PgSessionRepository::new(db.pool());
    signed_in(&db).await;
    let t = now();

    let unknown = sessions.rotate(&token(), &token(), t, GRACE, t + Duration::days(1)).await;

    assert_eq!(unknown.expect("answers"), RotateOutcome::Invalid);
}

#[tokio::test]
async fn an_expired_session_cannot_be_refreshed() {
    let db = TestDatabase::new().await;
    let sessions = PgSessionRepository::new(db.pool());
    let signed = signed_in(&db).await;
    let after_expiry = signed.session.expires_at + Duration::seconds(1);

    let expired = sessions
        .rotate(
            &signed.session.refresh_hash,
            &token(),
            after_expiry,
            GRACE,
            after_expiry + Duration::days(14),
        )
        .await;

    assert_eq!(expired.expect("answers"), RotateOutcome::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_rotate_once_and_the_others_get_grace() {
    let db = TestDatabase::new().await;
    let pool = connect(db.url(), 8).await.expect("a pool of 8");
    let sessions = PgSessionRepository::new(pool);
    let signed = signed_in(&db).await;
    let (old, new) = (signed.session.refresh_hash, token());
    let t = signed.now + Duration::minutes(1);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let sessions = sessions.clone();
            tokio::spawn(async move {
                sessions.rotate(&old, &new, t, GRACE, t + Duration::days(14)).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the task ran").expect("answers"));
    }

    let rotated = outcomes.iter().filter(|o| matches!(o, RotateOutcome::Rotated(_))).count();
    let grace = outcomes.iter().filter(|o| matches!(o, RotateOutcome::Grace(_))).count();
    assert_eq!((rotated, grace), (1, 7), "{outcomes:?}");
}

#[tokio::test]
async fn a_member_revokes_their_own_session_but_not_another_members() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let sessions = PgSessionRepository::new(db.pool());
    let t = now();
    let ann = sign_in(&phone(1), t);
    let bob = sign_in(&phone(2), t);
    members.sign_in(ann.clone()).await.expect("signs up");
    members.sign_in(bob.clone()).await.expect("signs up");

    assert!(!sessions.revoke(bob.new_member_id, ann.session.id, t).await.expect("answers"));
    assert_eq!(sessions.list(ann.new_member_id, t).await.expect("lists").len(), 1);

    assert!(sessions.revoke(ann.new_member_id, ann.session.id, t).await.expect("revokes"));
    assert!(!sessions.revoke(ann.new_member_id, ann.session.id, t).await.expect("answers"));
    assert!(sessions.list(ann.new_member_id, t).await.expect("lists").is_empty());
    let refresh =
        sessions.rotate(&ann.session.refresh_hash, &token(), t, GRACE, t + Duration::days(1)).await;
    assert_eq!(refresh.expect("answers"), RotateOutcome::Invalid);
}

#[tokio::test]
async fn the_live_sessions_are_listed_newest_first() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let sessions = PgSessionRepository::new(db.pool());
    let t = now();
    let requests: Vec<_> = (0..4).map(|n| sign_in(&phone(1), t + Duration::seconds(n))).collect();
    for request in &requests {
        members.sign_in(request.clone()).await.expect("signs in");
    }
    let member = requests[0].new_member_id;
    let mut short = sign_in(&phone(1), t + Duration::seconds(10));
    short.session.expires_at = t + Duration::seconds(30);
    members.sign_in(short).await.expect("signs in");
    sessions.revoke(member, requests[1].session.id, t).await.expect("revokes");

    let listed = sessions.list(member, t + Duration::minutes(1)).await.expect("lists");

    let ids: Vec<_> = listed.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![requests[3].session.id, requests[2].session.id, requests[0].session.id]);
    assert_eq!(listed[0].created_at, requests[3].now);
    assert_eq!(listed[0].last_used_at, requests[3].now);
    assert_eq!(listed[0].user_agent.as_deref(), Some("tests/1.0"));
}

#[tokio::test]
async fn a_refresh_carries_the_current_group_as_it_is_now() {
    let f = Fixture::new().await;
    let sessions = PgSessionRepository::new(f.db.pool());
    let request = with_workspace(sign_in(&phone(1), f.t));
    let workspace = request.personal_workspace.clone().expect("a workspace");
    let ann = f.members.sign_in(request.clone()).await.expect("signs up").member.id;
    let expires = f.t + Duration::days(14);
    let rotate =
        async |old, new| sessions.rotate(old, new, f.t, GRACE, expires).await.expect("answers");

    let (first, second, third) = (token(), token(), token());
    let RotateOutcome::Rotated(refreshed) = rotate(&request.session.refresh_hash, &first).await
    else {
        panic!("expected a rotation")
    };
    assert_eq!(refreshed.current_group.as_deref(), Some(workspace.slug.as_str()));

    f.group("acme", ann).await;
    f.groups.set_current_group(ann, &Slug::parse("acme").expect("a slug")).await.expect("sets");
    let RotateOutcome::Rotated(refreshed) = rotate(&first, &second).await else {
        panic!("expected a rotation")
    };
    assert_eq!(refreshed.current_group.as_deref(), Some("acme"));
    let RotateOutcome::Grace(retried) = rotate(&first, &second).await else {
        panic!("expected grace")
    };
    assert_eq!(retried.current_group.as_deref(), Some("acme"));

    f.groups.clear_current_group(ann).await.expect("clears");
    let RotateOutcome::Rotated(refreshed) = rotate(&second, &third).await else {
        panic!("expected a rotation")
    };
    assert_eq!(refreshed.current_group, None);
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

async fn synchronous_commit(pool: &onboard_postgres::PgPool) -> String {
    use diesel_async::RunQueryDsl as _;
    let mut conn = pool.get().await.expect("a connection");
    let row: Setting = diesel::sql_query("SELECT current_setting('synchronous_commit') AS value")
        .get_result(&mut conn)
        .await
        .expect("reads the setting");
    row.value
}

#[tokio::test]
async fn a_rotation_commits_and_leaves_its_pooled_connection_durable() {
    let db = TestDatabase::new().await;
    let signed = signed_in(&db).await;
    // One connection: the rotation and the checks below share it.
    let pool = connect(db.url(), 1).await.expect("connects");
    let sessions = PgSessionRepository::new(pool.clone());
    let (old, new) = (signed.session.refresh_hash, token());
    let t = signed.now + Duration::minutes(5);
    let expires = t + Duration::days(14);

    let rotated = sessions.rotate(&old, &new, t, GRACE, expires).await.expect("rotates");
    assert!(matches!(rotated, RotateOutcome::Rotated(_)), "{rotated:?}");
    assert_eq!(
        synchronous_commit(&pool).await,
        "on",
        "the relaxed commit was that rotation's only"
    );

    // Committed: another connection sees the new token live and the old one used.
    let others = PgSessionRepository::new(db.pool());
    let later = t + Duration::minutes(1);
    let next = others.rotate(&new, &token(), later, GRACE, expires).await.expect("answers");
    assert!(matches!(next, RotateOutcome::Rotated(_)), "{next:?}");
    let reused = sessions.rotate(&old, &token(), later, GRACE, expires).await.expect("answers");
    assert!(matches!(reused, RotateOutcome::Reused { .. }), "{reused:?}");
    assert_eq!(synchronous_commit(&pool).await, "on");
}

/// A member signed in once on a seed API, with a session of `kind`.
async fn signed_in_as(db: &TestDatabase, kind: SessionKind) -> SignInRequest {
    let mut request = sign_in(&phone(1), now());
    request.session.kind = kind;
    PgMemberRepository::new(db.pool()).sign_in(request.clone()).await.expect("signs up");
    request
}

#[tokio::test]
async fn a_fixed_session_keeps_its_token_and_its_expiry_and_never_revokes() {
    let db = TestDatabase::new().await;
    let sessions = PgSessionRepository::new(db.pool());
    let signed = signed_in_as(&db, SessionKind::Fixed).await;
    let token = signed.session.refresh_hash;
    let since = signed.now - Duration::days(14);

    for minutes in [1, 30, 600] {
        let t = signed.now + Duration::minutes(minutes);
        let later = t + Duration::days(14);
        let outcome = sessions
            .refresh_lenient(SessionKind::Fixed, &token, &token, t, since, later)
            .await
            .expect("answers");
        assert!(matches!(outcome, RotateOutcome::Rotated(_)), "{outcome:?}");
    }
    // Not refreshable as another kind, and nothing changed by trying.
    let as_v1 = sessions.rotate(&token, &crate::token(), now(), GRACE, now()).await;
    assert_eq!(as_v1.expect("answers"), RotateOutcome::Invalid);
    let after_expiry = signed.session.expires_at + Duration::seconds(1);
    let late = sessions
        .refresh_lenient(SessionKind::Fixed, &token, &token, after_expiry, since, after_expiry)
        .await;
    assert_eq!(late.expect("answers"), RotateOutcome::Invalid, "the expiry was kept");
    assert_eq!(sessions.list(signed.new_member_id, now()).await.expect("lists").len(), 1);
}

#[tokio::test]
async fn a_session_keeping_old_tokens_answers_a_used_one_until_it_is_revoked() {
    let db = TestDatabase::new().await;
    let sessions = PgSessionRepository::new(db.pool());
    let kind = SessionKind::RotatingKeepsOld;
    let signed = signed_in_as(&db, kind).await;
    let (old, new) = (signed.session.refresh_hash, token());
    let t = signed.now;
    let (since, expires) = (t - Duration::days(14), t + Duration::days(14));

    let first = sessions.refresh_lenient(kind, &old, &new, t, since, expires).await.expect("ok");
    assert!(matches!(first, RotateOutcome::Rotated(_)), "{first:?}");
    let day = t + Duration::days(1);
    let again = sessions.refresh_lenient(kind, &old, &new, day, since, expires).await;
    assert!(matches!(again.expect("answers"), RotateOutcome::Grace(_)), "a day later");

    sessions.revoke(signed.new_member_id, signed.session.id, day).await.expect("revokes");
    for token in [old, new] {
        let other = crate::token();
        let late = sessions.refresh_lenient(kind, &token, &other, day, since, expires).await;
        assert_eq!(late.expect("answers"), RotateOutcome::Invalid);
    }
    let revoked = sessions.refresh_lenient(kind, &old, &new, day, since, expires).await;
    assert_eq!(revoked.expect("answers"), RotateOutcome::Invalid);
}
