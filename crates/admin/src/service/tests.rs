use std::sync::Arc;

use chrono::{TimeZone, Utc};
use mockall::predicate::eq;
use onboard_kernel::{Email, MockClock, ReferralCode, SessionId};
use onboard_members::Member;
use onboard_members::ports::MockRevocationList;

use super::*;
use crate::error::TargetError;
use crate::events::AdminEvent;
use crate::model::{OtpCounts, Standing, StoredCounts};
use crate::ports::{MockAdminRepository, MockOtpStats};

const ADMIN_PHONE: &str = "+79170000001";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("valid time")
}

fn principal(id: MemberId) -> Principal {
    Principal { member_id: id, session_id: SessionId::new(), current_group: None }
}

fn member(id: MemberId, phone: &str) -> Member {
    Member {
        id,
        phone: Some(PhoneNumber::from_trusted_e164(phone)),
        first_name: Some("Ann".into()),
        last_name: None,
        email: Some(Email::from_trusted("ann@example.com")),
        referral_code: ReferralCode::from_trusted("K49FJ5"),
        referred_by: None,
        current_group: None,
        created_at: now(),
    }
}

fn standing(phone: &str, is_admin: bool, blocked: bool) -> Standing {
    Standing { phone: Some(PhoneNumber::from_trusted_e164(phone)), is_admin, blocked }
}

struct Ports {
    repo: MockAdminRepository,
    otp: MockOtpStats,
    revocations: MockRevocationList,
}

impl Ports {
    fn new() -> Self {
        Self {
            repo: MockAdminRepository::new(),
            otp: MockOtpStats::new(),
            revocations: MockRevocationList::new(),
        }
    }

    /// `admin` is a granted admin.
    fn with_admin(mut self, admin: MemberId) -> Self {
        self.repo
            .expect_standing()
            .with(eq(admin))
            .returning(|_| Ok(Some(standing("+79170000002", true, false))));
        self
    }

    fn service(self) -> AdminService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        AdminService::new(
            AdminPorts {
                repo: Arc::new(self.repo),
                otp_stats: Arc::new(self.otp),
                revocations: Arc::new(self.revocations),
                clock: Arc::new(clock),
            },
            AdminConfig {
                admin_phones: vec![PhoneNumber::from_trusted_e164(ADMIN_PHONE)],
                access_ttl_secs: 900,
            },
        )
    }
}

#[tokio::test]
async fn a_granted_member_and_a_listed_phone_are_admins_and_nobody_else() {
    let (granted, listed, plain, blocked, gone) =
        (MemberId::new(), MemberId::new(), MemberId::new(), MemberId::new(), MemberId::new());
    let mut ports = Ports::new();
    ports.repo.expect_standing().returning(move |id| {
        Ok(if id == granted {
            Some(standing("+79170000002", true, false))
        } else if id == listed {
            Some(standing(ADMIN_PHONE, false, false))
        } else if id == plain {
            Some(standing("+79170000003", false, false))
        } else if id == blocked {
            Some(standing(ADMIN_PHONE, true, true))
        } else {
            None
        })
    });
    let service = ports.service();
    assert!(service.is_platform_admin(granted).await.expect("check"));
    assert!(service.is_platform_admin(listed).await.expect("check"));
    assert!(!service.is_platform_admin(plain).await.expect("check"));
    assert!(
        !service.is_platform_admin(blocked).await.expect("check"),
        "a blocked admin is not one"
    );
    assert!(!service.is_platform_admin(gone).await.expect("check"));
}

#[tokio::test]
async fn a_non_admin_is_refused_before_any_admin_work() {
    let caller = MemberId::new();
    let mut ports = Ports::new();
    ports.repo.expect_standing().returning(|_| Ok(Some(standing("+79170000003", false, false))));
    // No other expectation: any storage or revocation call would panic.
    let service = ports.service();
    let me = principal(caller);
    assert!(matches!(
        service.search_members(&me, &MemberSearch::All, None, 20).await,
        Err(AdminError::Forbidden)
    ));
    assert!(matches!(service.member(&me, MemberId::new()).await, Err(AdminMemberError::Forbidden)));
    assert!(matches!(
        service.block(&me, MemberId::new(), None).await,
        Err(AdminMemberError::Forbidden)
    ));
    assert!(matches!(
        service.unblock(&me, MemberId::new()).await,
        Err(AdminMemberError::Forbidden)
    ));
    assert!(matches!(
        service.groups(&me, &GroupSearch::All, None, 20).await,
        Err(AdminError::Forbidden)
    ));
    assert!(matches!(service.stats(&me).await, Err(AdminError::Forbidden)));
    assert!(matches!(service.audit(&me, None, 20).await, Err(AdminError::Forbidden)));
}

#[tokio::test]
async fn a_block_revokes_in_storage_then_kills_the_access_tokens_of_those_sessions() {
    let (admin, target) = (MemberId::new(), MemberId::new());
    let sessions = [SessionId::new(), SessionId::new()];
    let mut ports = Ports::new().with_admin(admin);
    let mut seq = mockall::Sequence::new();
    ports
        .repo
        .expect_block()
        .withf(move |id, reason, actor, at, events| {
            *id == target
                && reason.as_ref().map(BlockReason::as_str) == Some("spam")
                && *actor == Actor::Member(admin)
                && *at == now()
                && events.len() == 1
                && events[0].occurred_at == now()
                && events[0].decode::<AdminEvent>()
                    == Some(AdminEvent::MemberBlocked {
                        member_id: target,
                        by: Some(admin),
                        reason: Some("spam".to_owned()),
                    })
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _, _, _, _| Ok(sessions.to_vec()));
    ports
        .revocations
        .expect_revoke_sessions()
        .withf(move |member, revoked, ttl| {
            *member == target && revoked == sessions.as_slice() && *ttl == 900
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let service = ports.service();
    service
        .block(&principal(admin), target, Some(BlockReason::parse("spam").expect("reason")))
        .await
        .expect("blocked");
}

#[tokio::test]
async fn blocking_an_unknown_member_is_not_found_and_revokes_nothing() {
    let admin = MemberId::new();
    let mut ports = Ports::new().with_admin(admin);
    ports.repo.expect_block().returning(|_, _, _, _, _| Err(TargetError::NotFound));
    let service = ports.service();
    assert!(matches!(
        service.block(&principal(admin), MemberId::new(), None).await,
        Err(AdminMemberError::NotFound)
    ));
}

#[tokio::test]
async fn a_revocation_list_hiccup_is_retried() {
    let (admin, target) = (MemberId::new(), MemberId::new());
    let mut ports = Ports::new().with_admin(admin);
    ports.repo.expect_block().returning(|_, _, _, _, _| Ok(vec![SessionId::new()]));
    let mut calls = 0;
    ports.revocations.expect_revoke_sessions().times(2).returning(move |_, _, _| {
        calls += 1;
        if calls == 1 { Err(anyhow::anyhow!("redis blinked")) } else { Ok(()) }
    });
    ports.service().block(&principal(admin), target, None).await.expect("blocked on retry");
}

#[tokio::test]
async fn unblock_writes_through_storage_as_the_calling_admin() {
    let (admin, target) = (MemberId::new(), MemberId::new());
    let mut ports = Ports::new().with_admin(admin);
    ports
        .repo
        .expect_unblock()
        .withf(move |id, actor, at, events| {
            (*id, *actor, *at) == (target, Actor::Member(admin), now())
                && events.len() == 1
                && events[0].decode::<AdminEvent>()
                    == Some(AdminEvent::MemberUnblocked { member_id: target, by: Some(admin) })
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    ports.service().unblock(&principal(admin), target).await.expect("unblocked");
}

#[tokio::test]
async fn a_search_page_has_a_cursor_only_when_more_follow_and_marks_listed_admins() {
    let admin = MemberId::new();
    let mut ports = Ports::new().with_admin(admin);
    let ids: Vec<MemberId> = (0..3).map(|_| MemberId::new()).collect();
    let rows: Vec<AdminMember> = ids
        .iter()
        .rev()
        .enumerate()
        .map(|(i, id)| AdminMember {
            member: member(*id, if i == 0 { ADMIN_PHONE } else { "+79170000009" }),
            is_admin: false,
            blocked: false,
        })
        .collect();
    let page_rows = rows.clone();
    ports
        .repo
        .expect_search_members()
        .withf(|search, after, limit| {
            *search == MemberSearch::All && after.is_none() && *limit == 3
        })
        .times(1)
        .returning(move |_, _, _| Ok(page_rows.clone()));
    let last_rows = rows[2..].to_vec();
    let cursor_id = rows[1].member.id;
    ports
        .repo
        .expect_search_members()
        .withf(move |_, after, limit| *after == Some(cursor_id) && *limit == 3)
        .times(1)
        .returning(move |_, _, _| Ok(last_rows.clone()));
    let service = ports.service();
    let me = principal(admin);

    let first = service.search_members(&me, &MemberSearch::All, None, 2).await.expect("page");
    assert_eq!(first.items.len(), 2);
    assert!(first.items[0].is_admin, "listed in ADMIN_PHONES");
    assert!(!first.items[1].is_admin);
    let cursor = IdCursor::decode(first.next_cursor.as_deref().expect("more follow"));
    let second = service.search_members(&me, &MemberSearch::All, cursor, 2).await.expect("page");
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next_cursor, None);
}

#[tokio::test]
async fn an_unknown_member_detail_is_not_found() {
    let admin = MemberId::new();
    let mut ports = Ports::new().with_admin(admin);
    ports.repo.expect_member_detail().returning(|_, _| Ok(None));
    assert!(matches!(
        ports.service().member(&principal(admin), MemberId::new()).await,
        Err(AdminMemberError::NotFound)
    ));
}

#[tokio::test]
async fn stats_combine_storage_counts_and_code_traffic_over_the_last_day() {
    let admin = MemberId::new();
    let mut ports = Ports::new().with_admin(admin);
    ports.repo.expect_counts().with(eq(now() - Duration::hours(24))).returning(|_| {
        Ok(StoredCounts { members: 10, groups: 4, sign_ins: 7, referrals_redeemed: 3 })
    });
    ports
        .otp
        .expect_last_24h()
        .with(eq(now()))
        .returning(|_| Ok(OtpCounts { sends: 9, failures: 2 }));
    let stats = ports.service().stats(&principal(admin)).await.expect("stats");
    assert_eq!(
        stats,
        Stats {
            members: 10,
            groups: 4,
            sign_ins_24h: 7,
            otp_sends_24h: 9,
            otp_failures_24h: 2,
            referrals_redeemed: 3,
        }
    );
}

#[tokio::test]
async fn the_command_line_grants_and_revokes_by_phone_as_cli() {
    let phone = PhoneNumber::from_trusted_e164("+79170000005");
    let id = MemberId::new();
    let mut ports = Ports::new();
    ports
        .repo
        .expect_set_admin()
        .withf(move |p, admin, actor, _| {
            p.as_e164() == "+79170000005" && *admin && *actor == Actor::Cli
        })
        .times(1)
        .returning(move |_, _, _, _| Ok(id));
    ports
        .repo
        .expect_set_admin()
        .withf(|_, admin, actor, _| !*admin && *actor == Actor::Cli)
        .times(1)
        .returning(|_, _, _, _| Err(TargetError::NotFound));
    let service = ports.service();
    assert_eq!(service.grant(&phone, Actor::Cli).await.expect("granted"), id);
    assert!(matches!(service.revoke(&phone, Actor::Cli).await, Err(GrantError::NotFound)));
}

#[tokio::test]
async fn a_member_without_live_sessions_is_blocked_without_touching_the_revocation_list() {
    let (admin, target) = (MemberId::new(), MemberId::new());
    let mut ports = Ports::new().with_admin(admin);
    ports.repo.expect_block().times(1).returning(|_, _, _, _, _| Ok(vec![]));
    ports.service().block(&principal(admin), target, None).await.expect("blocked");
}

#[tokio::test]
async fn an_admin_cannot_block_themself() {
    let admin = MemberId::new();
    // No block expectation: storage is never asked.
    let service = Ports::new().with_admin(admin).service();
    assert!(matches!(
        service.block(&principal(admin), admin, None).await,
        Err(AdminMemberError::OwnAccount)
    ));
}
