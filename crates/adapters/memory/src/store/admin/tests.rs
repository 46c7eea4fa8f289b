use chrono::TimeZone;
use onboard_members::TokenHash;
use onboard_members::ports::{MemberRepository, NewSession, SessionRepository, SignInRequest};

use super::*;

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid") + chrono::Duration::seconds(s)
}

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+7917555{n:04}"), None).expect("valid")
}

fn request(n: u32, refresh: u8) -> SignInRequest {
    SignInRequest {
        phone: phone(n),
        new_member_id: MemberId::new(),
        new_referral_code: onboard_kernel::ReferralCode::generate(),
        referred_by: None,
        session: NewSession {
            kind: onboard_members::SessionKind::Rotating,
            id: SessionId::new(),
            refresh_hash: TokenHash([refresh; 32]),
            user_agent: None,
            expires_at: t(3600),
        },
        personal_workspace: None,
        created_events: Vec::new(),
        now: t(0),
    }
}

#[tokio::test]
async fn a_block_revokes_sessions_refuses_sign_in_and_refresh_and_is_audited_until_unblocked() {
    let store = MemoryStore::new();
    let id = store.sign_in(request(1, 1)).await.expect("signs in").member.id;
    store.sign_in(request(1, 2)).await.expect("signs in again");
    let admin = store.sign_in(request(2, 3)).await.expect("signs in").member.id;

    let revoked = store
        .block(id, BlockReason::parse("spam").ok(), Actor::Member(admin), t(10), &[])
        .await
        .expect("blocked");
    assert_eq!(revoked.len(), 2);
    assert!(matches!(
        store.sign_in(request(1, 4)).await,
        Err(onboard_members::SignInStoreError::Blocked)
    ));
    let rotated = store
        .rotate(&TokenHash([1; 32]), &TokenHash([9; 32]), t(11), 10, t(3600))
        .await
        .expect("answers");
    assert_eq!(rotated, onboard_members::ports::RotateOutcome::Blocked);
    assert!(store.standing(id).await.expect("reads").expect("live").blocked);

    store.unblock(id, Actor::Cli, t(12), &[]).await.expect("unblocked");
    assert!(store.sign_in(request(1, 5)).await.is_ok());
    let trail = store.audit(None, 10).await.expect("reads");
    let actions: Vec<AuditAction> = trail.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::Unblock, AuditAction::Block]);
    assert_eq!(trail[1].details.as_deref(), Some("spam"));
    assert_eq!(trail[1].actor, Actor::Member(admin));
    assert_eq!(trail[0].actor, Actor::Cli);
}

#[tokio::test]
async fn grant_needs_a_live_member_and_is_audited() {
    let store = MemoryStore::new();
    assert!(matches!(
        store.set_admin(&phone(7), true, Actor::Cli, t(0)).await,
        Err(TargetError::NotFound)
    ));
    assert!(store.audit(None, 10).await.expect("reads").is_empty());
    let id = store.sign_in(request(7, 1)).await.expect("signs in").member.id;
    assert_eq!(store.set_admin(&phone(7), true, Actor::Cli, t(1)).await.expect("granted"), id);
    assert!(store.standing(id).await.expect("reads").expect("live").is_admin);
    assert_eq!(store.audit(None, 10).await.expect("reads")[0].action, AuditAction::Grant);
}

#[tokio::test]
async fn a_block_and_an_unblock_store_their_events_and_a_refused_one_none() {
    use onboard_admin::events::AdminEvent;
    use onboard_kernel::events::Event;

    let store = MemoryStore::new();
    let id = store.sign_in(request(1, 1)).await.expect("signs in").member.id;
    let blocked = Event::record(
        &AdminEvent::MemberBlocked { member_id: id, by: None, reason: Some("spam".to_owned()) },
        t(10),
    );
    let unblocked = Event::record(&AdminEvent::MemberUnblocked { member_id: id, by: None }, t(11));
    store
        .block(
            id,
            BlockReason::parse("spam").ok(),
            Actor::Cli,
            t(10),
            std::slice::from_ref(&blocked),
        )
        .await
        .expect("blocked");
    store
        .unblock(id, Actor::Cli, t(11), std::slice::from_ref(&unblocked))
        .await
        .expect("unblocked");
    let unknown = MemberId::new();
    let refused =
        store.block(unknown, None, Actor::Cli, t(12), std::slice::from_ref(&blocked)).await;
    assert!(matches!(refused, Err(TargetError::NotFound)), "{refused:?}");

    let stored: Vec<Event> = store.state().outbox.all().cloned().collect();
    assert_eq!(stored, [blocked, unblocked]);
}
