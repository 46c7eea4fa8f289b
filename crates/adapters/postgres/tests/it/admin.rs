//! [`PgAdminRepository`]: flags, blocks and their audit rows, searches, counts.

use chrono::Duration;
use onboard_admin::ports::AdminRepository;
use onboard_admin::{Actor, AuditAction, BlockReason, GroupSearch, MemberSearch, TargetError};
use onboard_kernel::{Email, MemberId};
use onboard_members::ports::{MemberRepository, RotateOutcome, SessionRepository};
use onboard_members::{ProfilePatch, SignInStoreError};
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{PgAdminRepository, PgMemberRepository, PgSessionRepository};

use crate::{now, phone, rows, sign_in, token};

#[tokio::test]
async fn grant_and_revoke_write_the_flag_and_one_audit_row_each() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let admin = PgAdminRepository::new(db.pool());
    let id = members.sign_in(sign_in(&phone(1), now())).await.unwrap().member.id;

    assert_eq!(admin.set_admin(&phone(1), true, Actor::Cli, now()).await.unwrap(), id);
    assert!(admin.standing(id).await.unwrap().unwrap().is_admin);
    admin.set_admin(&phone(1), false, Actor::Cli, now()).await.unwrap();
    assert!(!admin.standing(id).await.unwrap().unwrap().is_admin);

    let trail = admin.audit(None, 10).await.unwrap();
    assert_eq!(trail.len(), 2);
    assert_eq!(trail[0].action, AuditAction::Revoke, "newest first");
    assert_eq!(trail[1].action, AuditAction::Grant);
    assert!(trail.iter().all(|e| e.actor == Actor::Cli && e.target == id));
}

#[tokio::test]
async fn granting_an_unknown_phone_writes_nothing() {
    let db = TestDatabase::new().await;
    let admin = PgAdminRepository::new(db.pool());
    assert!(matches!(
        admin.set_admin(&phone(9), true, Actor::Cli, now()).await,
        Err(TargetError::NotFound)
    ));
    assert_eq!(rows(&db.pool(), "admin_audit").await, 0);
}

#[tokio::test]
async fn a_block_revokes_every_session_refuses_sign_in_and_refresh_and_is_audited() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let sessions = PgSessionRepository::new(db.pool());
    let admin = PgAdminRepository::new(db.pool());
    let first = sign_in(&phone(1), now());
    let refresh = first.session.refresh_hash;
    let id = members.sign_in(first).await.unwrap().member.id;
    members.sign_in(sign_in(&phone(1), now())).await.unwrap();
    let by = members.sign_in(sign_in(&phone(2), now())).await.unwrap().member.id;

    let revoked = admin
        .block(id, Some(BlockReason::parse("spam").unwrap()), Actor::Member(by), now(), &[])
        .await
        .unwrap();

    assert_eq!(revoked.len(), 2);
    assert!(sessions.list(id, now()).await.unwrap().is_empty());
    assert!(matches!(
        members.sign_in(sign_in(&phone(1), now())).await,
        Err(SignInStoreError::Blocked)
    ));
    let rotated =
        sessions.rotate(&refresh, &token(), now(), 10, now() + Duration::days(1)).await.unwrap();
    assert_eq!(rotated, RotateOutcome::Blocked);
    let detail = admin.member_detail(id, now()).await.unwrap().unwrap();
    assert_eq!(detail.sessions_active, 0);
    assert_eq!(detail.block.unwrap().reason.as_deref(), Some("spam"));
    let trail = admin.audit(None, 10).await.unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].action, AuditAction::Block);
    assert_eq!(trail[0].actor, Actor::Member(by));
    assert_eq!(trail[0].details.as_deref(), Some("spam"));

    admin.unblock(id, Actor::Member(by), now(), &[]).await.unwrap();
    assert!(members.sign_in(sign_in(&phone(1), now())).await.is_ok(), "signs in again");
    assert_eq!(admin.audit(None, 10).await.unwrap()[0].action, AuditAction::Unblock);
}

#[tokio::test]
async fn blocking_an_unknown_member_writes_nothing() {
    let db = TestDatabase::new().await;
    let admin = PgAdminRepository::new(db.pool());
    assert!(matches!(
        admin.block(MemberId::new(), None, Actor::Cli, now(), &[]).await,
        Err(TargetError::NotFound)
    ));
    assert!(matches!(
        admin.unblock(MemberId::new(), Actor::Cli, now(), &[]).await,
        Err(TargetError::NotFound)
    ));
    assert_eq!(rows(&db.pool(), "admin_audit").await, 0);
}

#[tokio::test]
async fn members_are_found_by_phone_email_name_and_code_newest_first_in_pages() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let admin = PgAdminRepository::new(db.pool());
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(members.sign_in(sign_in(&phone(n), now())).await.unwrap().member);
    }
    members
        .update_profile(
            ids[0].id,
            &ProfilePatch {
                first_name: Some(onboard_members::PersonName::parse("Zoë").unwrap()),
                email: Some(Email::parse("zoe_x@example.com").unwrap()),
                ..ProfilePatch::default()
            },
            &[],
        )
        .await
        .unwrap();

    let all = admin.search_members(&MemberSearch::All, None, 2).await.unwrap();
    assert_eq!(all.iter().map(|m| m.member.id).collect::<Vec<_>>(), vec![ids[2].id, ids[1].id]);
    let rest = admin.search_members(&MemberSearch::All, Some(ids[1].id), 2).await.unwrap();
    assert_eq!(rest.iter().map(|m| m.member.id).collect::<Vec<_>>(), vec![ids[0].id]);

    let found = |s: MemberSearch| {
        let admin = admin.clone();
        async move {
            admin
                .search_members(&s, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.member.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found(MemberSearch::parse(Some("+7917000000")).unwrap()).await.len(), 3);
    assert_eq!(found(MemberSearch::parse(Some("+79170000002")).unwrap()).await, vec![ids[1].id]);
    assert_eq!(found(MemberSearch::parse(Some("ZOE_")).unwrap()).await, vec![ids[0].id]);
    assert!(found(MemberSearch::parse(Some("zoe%")).unwrap()).await.is_empty(), "% is literal");
    assert_eq!(found(MemberSearch::parse(Some("zo")).unwrap()).await, vec![ids[0].id]);
    let code = ids[2].referral_code.as_str().to_lowercase();
    assert_eq!(found(MemberSearch::parse(Some(&code)).unwrap()).await, vec![ids[2].id]);
}

#[tokio::test]
async fn groups_list_with_member_counts_on_the_free_plan_and_counts_add_up() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let admin = PgAdminRepository::new(db.pool());
    let mut request = sign_in(&phone(1), now());
    request.personal_workspace = Some(onboard_members::ports::NewWorkspace {
        id: onboard_kernel::GroupId::new(),
        slug: "ws-abcdefghij".into(),
        name: "Personal".into(),
    });
    members.sign_in(request).await.unwrap();

    let groups =
        admin.list_groups(&GroupSearch::parse(Some("WS-ab")).unwrap(), None, 10).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].members_count, 1);
    assert_eq!(groups[0].plan, "free");
    assert!(
        admin
            .list_groups(&GroupSearch::parse(Some("zzz")).unwrap(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let counts = admin.counts(now() - Duration::hours(24)).await.unwrap();
    assert_eq!(
        (counts.members, counts.groups, counts.sign_ins, counts.referrals_redeemed),
        (1, 1, 1, 0)
    );
}

#[tokio::test]
async fn a_block_and_an_unblock_store_their_events_and_refused_ones_none() {
    use onboard_admin::events::AdminEvent;
    use onboard_kernel::events::Event;

    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let admin = PgAdminRepository::new(db.pool());
    let t = now();
    let id = members.sign_in(sign_in(&phone(1), t)).await.expect("signs up").member.id;
    let blocked = Event::record(
        &AdminEvent::MemberBlocked { member_id: id, by: None, reason: Some("spam".to_owned()) },
        t,
    );
    let unblocked = Event::record(&AdminEvent::MemberUnblocked { member_id: id, by: None }, t);

    admin
        .block(id, BlockReason::parse("spam").ok(), Actor::Cli, t, std::slice::from_ref(&blocked))
        .await
        .expect("blocked");
    admin.unblock(id, Actor::Cli, t, std::slice::from_ref(&unblocked)).await.expect("unblocked");
    let unknown = MemberId::new();
    let refused = admin.block(unknown, None, Actor::Cli, t, std::slice::from_ref(&blocked)).await;
    assert!(matches!(refused, Err(TargetError::NotFound)), "{refused:?}");
    let refused = admin.unblock(unknown, Actor::Cli, t, std::slice::from_ref(&unblocked)).await;
    assert!(matches!(refused, Err(TargetError::NotFound)), "{refused:?}");

    assert_eq!(crate::stored_events(&db.pool()).await, [blocked, unblocked]);
}
