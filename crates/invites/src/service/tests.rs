//! Unit tests of every use case of [`InvitesService`], against the mockall twins of its ports
//! and of the groups domain's storage (the real [`GroupsService`] makes the permission
//! decisions).
//!
//! A [`Fixture`] holds mocks with no expectations and a clock at a fixed instant. Mockall
//! refuses any call that no expectation allows, so a test that sets up only the reads of a use
//! case also proves that a refused use case writes nothing (and consumes no code).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::TimeZone;
use mockall::predicate::eq;
use onboard_groups::ports::MockGroupRepository;
use onboard_groups::{Group, GroupName, GroupsConfig, Membership, MembershipStatus, MyGroup, Role};
use onboard_kernel::{Email, GroupId, MockClock, PhoneNumber};
use onboard_members::ports::MockSmsSender;
use uuid::Uuid;

use super::*;
use crate::events::AcceptedMembership;
use crate::model::{AcceptOutcome, InviteeName};
use crate::ports::{MockInviteCodeStore, MockInviteRepository};

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

const SLUG: &str = "acme";
const PHONE: &str = "+79174445566";
const OTHER_PHONE: &str = "+79174440000";
const CODE: &str = "Zk9xQ2FwbGVhc2Vfdw-_Xy";

/// The instant every fixture's clock answers.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("a valid instant")
}

fn slug() -> Slug {
    Slug::parse(SLUG).expect("a valid slug")
}

fn group_id() -> GroupId {
    GroupId::from_uuid(Uuid::from_u128(0x6701))
}

fn group() -> Group {
    Group {
        id: group_id(),
        slug: slug(),
        name: GroupName::parse("Acme").expect("a valid name"),
        approval_required: false,
        created_at: now() - Duration::days(10),
    }
}

/// The member calling the service.
fn caller() -> MemberId {
    MemberId::from_uuid(Uuid::from_u128(0x1001))
}

/// The member who sent the invite.
fn inviter() -> MemberId {
    MemberId::from_uuid(Uuid::from_u128(0x1002))
}

fn invite_id() -> InviteId {
    InviteId::from_uuid(Uuid::from_u128(0x4701))
}

fn code() -> InviteCode {
    InviteCode::parse(CODE).expect("a valid code")
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse(PHONE, None).expect("a valid phone")
}

fn other_phone() -> PhoneNumber {
    PhoneNumber::parse(OTHER_PHONE, None).expect("a valid phone")
}

fn email() -> Email {
    Email::parse("ann@example.com").expect("a valid e-mail")
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).expect("a valid role name")
}

fn perms(names: &[&str]) -> BTreeSet<Permission> {
    names.iter().map(|n| Permission::parse(n).expect("a valid permission")).collect()
}

fn name() -> InviteeName {
    InviteeName::parse("Ann Lee").expect("a valid name")
}

fn request(
    phone: Option<PhoneNumber>,
    email: Option<Email>,
    role: Option<RoleName>,
) -> CreateInvite {
    CreateInvite { name: name(), phone, email, role }
}

/// An invite as storage answers it: created a day ago, expiring at `expires_at`.
fn stored_invite(
    status: InviteStatus,
    phone: Option<PhoneNumber>,
    expires_at: DateTime<Utc>,
) -> Invite {
    Invite {
        id: invite_id(),
        group: group_id(),
        group_slug: slug(),
        name: name(),
        phone,
        email: Some(email()),
        role: RoleName::MEMBER,
        status,
        invited_by: inviter(),
        expires_at,
        created_at: now() - Duration::days(1),
    }
}

/// A live invite naming [`PHONE`], expiring in two days.
fn live_invite() -> Invite {
    stored_invite(InviteStatus::Pending, Some(phone()), now() + Duration::days(2))
}

fn accepted(outcome: AcceptOutcome, my_role: RoleName) -> AcceptRecord {
    AcceptRecord { outcome, group: MyGroup { group: group(), my_role } }
}

/// Values a mock saw, for the test to look at afterwards.
#[derive(Debug)]
struct Captured<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Captured<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: Clone> Captured<T> {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }

    fn push(&self, value: T) {
        self.0.lock().expect("not poisoned").push(value);
    }

    fn all(&self) -> Vec<T> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// The one value seen; fails the test if there were none or several.
    fn one(&self) -> T {
        let all = self.all();
        assert_eq!(all.len(), 1, "expected exactly one captured value");
        all[0].clone()
    }
}

/// Mocks of every port, a fixed clock and configuration, from which a test builds its service.
struct Fixture {
    groups: MockGroupRepository,
    repo: MockInviteRepository,
    codes: MockInviteCodeStore,
    sms: MockSmsSender,
    config: InvitesConfig,
    /// What `for_accept` finds: the invite, and the caller's phone.
    stored: Option<Invite>,
    phone_of_caller: Option<PhoneNumber>,
}

impl Fixture {
    /// Default configuration, a fixed clock, and mocks that expect nothing.
    fn new() -> Self {
        Self {
            groups: MockGroupRepository::new(),
            repo: MockInviteRepository::new(),
            codes: MockInviteCodeStore::new(),
            sms: MockSmsSender::new(),
            config: InvitesConfig::default(),
            stored: None,
            phone_of_caller: None,
        }
    }

    fn service(mut self) -> InvitesService {
        if let Some(invite) = self.stored.take() {
            let phone = self.phone_of_caller.take();
            self.repo
                .expect_for_accept()
                .with(eq(invite.id), eq(caller()))
                .returning(move |_, _| Ok(Some((invite.clone(), phone.clone()))));
        }
        let clock = || {
            let mut clock = MockClock::new();
            clock.expect_now().return_const(now());
            Arc::new(clock)
        };
        let groups = GroupsService::new(Arc::new(self.groups), GroupsConfig::default(), clock());
        InvitesService::new(
            Arc::new(self.repo),
            Arc::new(self.codes),
            groups,
            Arc::new(self.sms),
            clock(),
            self.config,
        )
    }

    /// Storage finds [`group`] under [`SLUG`] with this membership of the caller.
    fn caller_in(&mut self, membership: Option<Membership>) {
        self.groups
            .expect_find_for_member()
            .withf(|s, m| s.as_str() == SLUG && *m == caller())
            .returning(move |_, _| Ok(Some((group(), membership.clone()))));
    }

    /// The caller is an active member of [`group`] with a built-in role.
    fn caller_is(&mut self, role: RoleName) {
        self.caller_in(Some(Membership {
            role,
            status: MembershipStatus::Active,
            role_permissions: BTreeSet::new(),
        }));
    }

    /// The caller is an active member of [`group`] with a custom role holding `permissions`.
    fn caller_has_custom_role(&mut self, name: &str, permissions: &[&str]) {
        self.caller_in(Some(Membership {
            role: role(name),
            status: MembershipStatus::Active,
            role_permissions: perms(permissions),
        }));
    }

    /// The group's custom roles.
    fn custom_roles(&mut self, roles: Vec<Role>) {
        self.groups
            .expect_custom_roles()
            .with(eq(group_id()))
            .returning(move |_| Ok(roles.clone()));
    }

    /// The code store takes new codes; `(code, invite, ttl)` are captured.
    fn codes_put(&mut self) -> Captured<(InviteCode, InviteId, u64)> {
        let seen = Captured::new();
        let sink = seen.clone();
        self.codes.expect_put().returning(move |code, id, ttl| {
            sink.push((code.clone(), id, ttl));
            Ok(())
        });
        seen
    }

    /// Storage stores new invites; they are captured.
    fn invites_stored(&mut self) -> Captured<NewInvite> {
        let seen = Captured::new();
        let sink = seen.clone();
        self.repo.expect_create().times(1).returning(move |invite, _| {
            sink.push(invite.clone());
            Ok(())
        });
        seen
    }

    /// The code store knows [`CODE`] as the code of `invite`.
    fn code_names(&mut self, invite: InviteId) {
        self.codes.expect_get().withf(|c| c.as_str() == CODE).returning(move |_| Ok(Some(invite)));
    }

    /// Storage answers `invite` for its id.
    fn storage_has(&mut self, invite: Invite) {
        self.stored = Some(invite);
    }

    /// The caller's phone, as storage knows it.
    fn caller_phone(&mut self, phone: Option<PhoneNumber>) {
        self.phone_of_caller = phone;
    }

    /// The code store consumes [`CODE`] for [`invite_id`], answering `won`.
    fn consume_answers(&mut self, won: bool) {
        self.codes
            .expect_consume()
            .withf(|c, id| c.as_str() == CODE && *id == invite_id())
            .times(1)
            .returning(move |_, _| Ok(won));
    }
}

// ---------------------------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_invite_is_stored_pending_for_the_ttl_with_its_code_and_the_code_goes_out_by_sms() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let puts = fx.codes_put();
    let stored = fx.invites_stored();
    let texts = Captured::new();
    let sink = texts.clone();
    fx.sms.expect_send().times(1).returning(move |to, text| {
        sink.push((to.clone(), text.to_owned()));
        Ok(())
    });
    let service = fx.service();

    let created = service
        .create(&slug(), caller(), request(Some(phone()), Some(email()), Some(RoleName::ADMIN)))
        .await
        .expect("created");

    let new = stored.one();
    assert_eq!(new.group, group_id());
    assert_eq!(new.name, name());
    assert_eq!((new.phone.clone(), new.email.clone()), (Some(phone()), Some(email())));
    assert_eq!(new.role, RoleName::ADMIN);
    assert_eq!(new.invited_by, caller());
    assert_eq!(new.created_at, now());
    assert_eq!(new.expires_at, now() + Duration::seconds(259_200));

    let (put_code, put_id, ttl) = puts.one();
    assert_eq!((put_id, ttl), (new.id, 259_200));
    assert_eq!(put_code, created.code);
    assert_eq!(created.code.as_str().len(), 22);

    let (to, text) = texts.one();
    assert_eq!(to, phone());
    assert_eq!(
        text,
        format!("You are invited to Acme on Onboard. Your invite code: {}", created.code)
    );

    assert_eq!(
        created.invite,
        Invite {
            id: new.id,
            group: group_id(),
            group_slug: slug(),
            name: name(),
            phone: Some(phone()),
            email: Some(email()),
            role: RoleName::ADMIN,
            status: InviteStatus::Pending,
            invited_by: caller(),
            expires_at: new.expires_at,
            created_at: now(),
        }
    );
}

#[tokio::test]
async fn the_role_defaults_to_member_and_the_ttl_and_text_follow_the_configuration() {
    let mut fx = Fixture::new();
    fx.config =
        InvitesConfig { ttl_secs: 60, sms_text: "{code}@{group}".to_owned(), sms_billing: None };
    fx.caller_is(RoleName::OWNER);
    let puts = fx.codes_put();
    let stored = fx.invites_stored();
    let texts = Captured::new();
    let sink = texts.clone();
    fx.sms.expect_send().returning(move |_, text| {
        sink.push(text.to_owned());
        Ok(())
    });
    let service = fx.service();

    let created =
        service.create(&slug(), caller(), request(Some(phone()), None, None)).await.expect("ok");

    assert_eq!(stored.one().role, RoleName::MEMBER);
    assert_eq!(created.invite.role, RoleName::MEMBER);
    assert_eq!(created.invite.expires_at, now() + Duration::seconds(60));
    assert_eq!(puts.one().2, 60);
    assert_eq!(texts.one(), format!("{}@Acme", created.code));
}

#[tokio::test]
async fn an_invite_by_e_mail_only_sends_no_sms() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.codes_put();
    let stored = fx.invites_stored();
    let service = fx.service();

    let created =
        service.create(&slug(), caller(), request(None, Some(email()), None)).await.expect("ok");

    assert_eq!(stored.one().phone, None);
    assert_eq!(created.invite.email, Some(email()));
}

#[tokio::test]
async fn an_invite_without_a_phone_or_an_e_mail_is_refused_and_nothing_is_written() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    let service = fx.service();

    let err = service.create(&slug(), caller(), request(None, None, None)).await.expect_err("400");

    assert!(matches!(err, CreateInviteError::ContactRequired), "{err:?}");
}

#[tokio::test]
async fn strangers_pending_members_and_unknown_groups_get_not_found() {
    for membership in [
        None,
        Some(Membership {
            role: RoleName::OWNER,
            status: MembershipStatus::Pending,
            role_permissions: BTreeSet::new(),
        }),
    ] {
        let mut fx = Fixture::new();
        fx.caller_in(membership);
        let service = fx.service();
        let err = service
            .create(&slug(), caller(), request(Some(phone()), None, None))
            .await
            .expect_err("404");
        assert!(matches!(err, CreateInviteError::NotFound), "{err:?}");
    }

    let mut fx = Fixture::new();
    fx.groups.expect_find_for_member().returning(|_, _| Ok(None));
    let service = fx.service();
    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, None))
        .await
        .expect_err("404");
    assert!(matches!(err, CreateInviteError::NotFound), "{err:?}");
}

#[tokio::test]
async fn a_member_without_invites_manage_may_not_invite() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("seller", &["messages.send"]);
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, None))
        .await
        .expect_err("403");

    assert!(matches!(err, CreateInviteError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn inviting_as_owner_by_a_non_owner_is_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, Some(RoleName::OWNER)))
        .await
        .expect_err("403");

    assert!(matches!(err, CreateInviteError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn an_owner_may_invite_an_owner() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.codes_put();
    let stored = fx.invites_stored();
    fx.sms.expect_send().returning(|_, _| Ok(()));
    let service = fx.service();

    service
        .create(&slug(), caller(), request(Some(phone()), None, Some(RoleName::OWNER)))
        .await
        .expect("an owner grants owner");

    assert_eq!(stored.one().role, RoleName::OWNER);
}

#[tokio::test]
async fn a_role_the_group_does_not_have_is_refused() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.custom_roles(vec![Role {
        name: role("seller"),
        permissions: perms(&["messages.send"]),
        builtin: false,
    }]);
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, Some(role("ghost"))))
        .await
        .expect_err("400");

    assert!(matches!(err, CreateInviteError::UnknownRole), "{err:?}");
}

#[tokio::test]
async fn a_role_holding_a_permission_the_inviter_lacks_is_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("recruiter", &["invites.manage"]);
    fx.custom_roles(vec![
        Role { name: role("recruiter"), permissions: perms(&["invites.manage"]), builtin: false },
        Role { name: role("cashier"), permissions: perms(&["billing.manage"]), builtin: false },
    ]);
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, Some(role("cashier"))))
        .await
        .expect_err("403");

    assert!(matches!(err, CreateInviteError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn inviting_an_active_member_is_refused_and_the_new_code_is_dropped() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let puts = fx.codes_put();
    fx.repo.expect_create().times(1).returning(|_, _| Err(CreateInviteRefusal::AlreadyMember));
    let deleted = Captured::new();
    let sink = deleted.clone();
    fx.codes.expect_delete().times(1).returning(move |id| {
        sink.push(id);
        Ok(())
    });
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, None))
        .await
        .expect_err("409");

    assert!(matches!(err, CreateInviteError::AlreadyMember), "{err:?}");
    assert_eq!(deleted.one(), puts.one().1);
}

#[tokio::test]
async fn a_second_pending_invite_for_the_same_person_is_refused_even_if_tidying_fails() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.codes_put();
    fx.repo.expect_create().times(1).returning(|_, _| Err(CreateInviteRefusal::InvitePending));
    fx.codes.expect_delete().times(1).returning(|_| Err(anyhow::anyhow!("Redis is down")));
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(None, Some(email()), None))
        .await
        .expect_err("409");

    assert!(matches!(err, CreateInviteError::InvitePending), "{err:?}");
}

#[tokio::test]
async fn when_the_code_cannot_be_stored_no_invite_is_written() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.codes.expect_put().times(1).returning(|_, _, _| Err(anyhow::anyhow!("Redis is down")));
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, None))
        .await
        .expect_err("500");

    assert!(matches!(err, CreateInviteError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn when_the_sms_cannot_be_sent_the_invite_is_withdrawn_so_a_retry_can_succeed() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let puts = fx.codes_put();
    fx.invites_stored();
    fx.sms.expect_send().times(1).returning(|_, _| Err(anyhow::anyhow!("queue full")));
    let revoked = Captured::new();
    let sink = revoked.clone();
    fx.repo.expect_revoke().times(1).returning(move |g, id, at, events| {
        sink.push((g, id, at, events.to_vec()));
        Ok(true)
    });
    let deleted = Captured::new();
    let sink = deleted.clone();
    fx.codes.expect_delete().times(1).returning(move |id| {
        sink.push(id);
        Ok(())
    });
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, None))
        .await
        .expect_err("500");

    assert!(matches!(err, CreateInviteError::Unexpected(_)), "{err:?}");
    let id = puts.one().1;
    let (g, revoked_id, at, events) = revoked.one();
    assert_eq!((g, revoked_id, at), (group_id(), id, now()));
    let revoked = InviteEvent::Revoked { invite_id: id, group_id: group_id(), by: caller() };
    assert_eq!(decoded(&events), [revoked], "withdrawn by its inviter");
    assert_eq!(deleted.one(), id);
}

// SMS credit ---------------------------------------------------------------------------------

#[tokio::test]
async fn with_billed_invite_sms_the_invite_carries_the_price_of_its_text() {
    let mut fx = Fixture::new();
    fx.config.sms_billing = Some(crate::InviteSmsPrices { sms: 11, lms: 37 });
    fx.caller_is(RoleName::ADMIN);
    fx.codes_put();
    let stored = fx.invites_stored();
    fx.sms.expect_send().times(1).returning(|_, _| Ok(()));
    let service = fx.service();

    service.create(&slug(), caller(), request(Some(phone()), None, None)).await.expect("201");

    let stored = stored.one();
    assert_eq!(
        stored.sms_charge,
        Some(SmsCharge { group: group_id(), amount: 11, invite: stored.id })
    );
}

#[tokio::test]
async fn an_invite_by_e_mail_only_costs_nothing_even_with_billed_invite_sms() {
    let mut fx = Fixture::new();
    fx.config.sms_billing = Some(crate::InviteSmsPrices { sms: 11, lms: 37 });
    fx.caller_is(RoleName::ADMIN);
    fx.codes_put();
    let stored = fx.invites_stored();
    let service = fx.service();

    service.create(&slug(), caller(), request(None, Some(email()), None)).await.expect("201");

    assert_eq!(stored.one().sms_charge, None);
}

#[tokio::test]
async fn without_sms_credit_the_invite_is_refused_and_no_sms_is_sent() {
    let mut fx = Fixture::new();
    fx.config.sms_billing = Some(crate::InviteSmsPrices { sms: 11, lms: 37 });
    fx.caller_is(RoleName::ADMIN);
    fx.codes_put();
    fx.repo.expect_create().times(1).returning(|_, _| Err(CreateInviteRefusal::InsufficientCredit));
    fx.codes.expect_delete().times(1).returning(|_| Ok(()));
    fx.sms.expect_send().never();
    let service = fx.service();

    let err = service
        .create(&slug(), caller(), request(Some(phone()), None, None))
        .await
        .expect_err("402");

    assert!(matches!(err, CreateInviteError::InsufficientSmsCredit), "{err:?}");
}

#[tokio::test]
async fn a_paid_invite_sms_that_cannot_be_sent_is_refunded() {
    let mut fx = Fixture::new();
    fx.config.sms_billing = Some(crate::InviteSmsPrices { sms: 11, lms: 37 });
    fx.config.sms_text = format!("{{code}} {}", "x".repeat(100));
    fx.caller_is(RoleName::ADMIN);
    let puts = fx.codes_put();
    fx.invites_stored();
    fx.sms.expect_send().times(1).returning(|_, _| Err(anyhow::anyhow!("queue full")));
    fx.repo.expect_revoke().times(1).returning(|_, _, _, _| Ok(true));
    fx.codes.expect_delete().times(1).returning(|_| Ok(()));
    let refunded = Captured::new();
    let sink = refunded.clone();
    fx.repo.expect_refund_sms().times(1).returning(move |charge, _, events| {
        assert!(events.is_empty());
        sink.push((charge.group, charge.invite, charge.amount));
        Ok(())
    });
    let service = fx.service();

    service.create(&slug(), caller(), request(Some(phone()), None, None)).await.expect_err("500");

    assert_eq!(refunded.one(), (group_id(), puts.one().1, 37), "an LMS was charged");
}

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

/// `n` invites, newest first, each with its cursor.
fn invite_rows(n: u8) -> Vec<(Invite, InviteCursor)> {
    (0..n)
        .map(|i| {
            let invite = Invite {
                id: InviteId::from_uuid(Uuid::from_u128(0x5000 + u128::from(i))),
                created_at: now() - Duration::minutes(i64::from(i)),
                ..live_invite()
            };
            let cursor = InviteCursor::of(&invite);
            (invite, cursor)
        })
        .collect()
}

#[tokio::test]
async fn a_page_of_invites_asks_storage_for_one_more_and_points_at_the_last_shown() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let asked = Captured::new();
    let sink = asked.clone();
    fx.repo.expect_list().times(1).returning(move |g, status, after, limit, at| {
        sink.push((g, status, after, limit, at));
        Ok(invite_rows(3))
    });
    let service = fx.service();
    let after = InviteCursor { created_at: now(), invite_id: InviteId::new() };

    let page = service
        .list(&slug(), caller(), Some(InviteStatus::Pending), Some(after), 2)
        .await
        .expect("listed");

    assert_eq!(asked.one(), (group_id(), Some(InviteStatus::Pending), Some(after), 3, now()));
    let rows = invite_rows(3);
    assert_eq!(page.items, vec![rows[0].0.clone(), rows[1].0.clone()]);
    assert_eq!(page.next_cursor, Some(rows[1].1.encode()));
}

#[tokio::test]
async fn the_last_page_has_no_next_cursor_and_limits_are_clamped() {
    for (limit, fetched) in [(0, 2), (1000, 101)] {
        let mut fx = Fixture::new();
        fx.caller_is(RoleName::ADMIN);
        fx.repo
            .expect_list()
            .withf(move |_, _, _, l, _| *l == fetched)
            .times(1)
            .returning(|_, _, _, _, _| Ok(invite_rows(1)));
        let service = fx.service();

        let page = service.list(&slug(), caller(), None, None, limit).await.expect("listed");

        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next_cursor, None);
    }
}

#[tokio::test]
async fn a_pending_invite_past_its_expiry_is_listed_as_expired() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo.expect_list().returning(|_, _, _, _, _| {
        let expired = stored_invite(InviteStatus::Pending, None, now());
        let live = Invite {
            id: InviteId::new(),
            ..stored_invite(InviteStatus::Pending, None, now() + Duration::seconds(1))
        };
        let revoked = Invite {
            id: InviteId::new(),
            ..stored_invite(InviteStatus::Revoked, None, now() - Duration::days(1))
        };
        Ok([expired, live, revoked]
            .into_iter()
            .map(|i| (i.clone(), InviteCursor::of(&i)))
            .collect())
    });
    let service = fx.service();

    let page = service.list(&slug(), caller(), None, None, 20).await.expect("listed");

    let statuses: Vec<InviteStatus> = page.items.iter().map(|i| i.status).collect();
    assert_eq!(statuses, [InviteStatus::Expired, InviteStatus::Pending, InviteStatus::Revoked]);
}

#[tokio::test]
async fn listing_invites_needs_invites_manage() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    let service = fx.service();

    let err = service.list(&slug(), caller(), None, None, 20).await.expect_err("403");

    assert!(matches!(err, ListInvitesError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_stranger_does_not_learn_that_the_group_exists_from_its_invites() {
    let mut fx = Fixture::new();
    fx.caller_in(None);
    let service = fx.service();

    let err = service.list(&slug(), caller(), None, None, 20).await.expect_err("404");

    assert!(matches!(err, ListInvitesError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// revoke
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn revoking_marks_the_invite_revoked_and_deletes_its_code() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("recruiter", &["invites.manage"]);
    fx.repo
        .expect_revoke()
        .withf(|g, id, at, _| (*g, *id, *at) == (group_id(), invite_id(), now()))
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    fx.codes.expect_delete().with(eq(invite_id())).times(1).returning(|_| Ok(()));
    let service = fx.service();

    service.revoke(&slug(), caller(), invite_id()).await.expect("revoked");
}

#[tokio::test]
async fn revoking_an_unknown_invite_is_not_found_and_touches_no_code() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo.expect_revoke().times(1).returning(|_, _, _, _| Ok(false));
    let service = fx.service();

    let err = service.revoke(&slug(), caller(), invite_id()).await.expect_err("404");

    assert!(matches!(err, RevokeInviteError::InviteNotFound), "{err:?}");
}

#[tokio::test]
async fn revoking_needs_invites_manage() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    let service = fx.service();

    let err = service.revoke(&slug(), caller(), invite_id()).await.expect_err("403");

    assert!(matches!(err, RevokeInviteError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_failure_to_delete_the_code_is_reported_after_the_record_says_revoked() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo.expect_revoke().times(1).returning(|_, _, _, _| Ok(true));
    fx.codes.expect_delete().times(1).returning(|_| Err(anyhow::anyhow!("Redis is down")));
    let service = fx.service();

    let err = service.revoke(&slug(), caller(), invite_id()).await.expect_err("500");

    assert!(matches!(err, RevokeInviteError::Unexpected(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// preview
// ---------------------------------------------------------------------------------------------

fn preview_of(status: InviteStatus, expires_at: DateTime<Utc>) -> InvitePreview {
    InvitePreview {
        group_slug: slug(),
        group_name: GroupName::parse("Acme").expect("a valid name"),
        inviter_first_name: Some("Bob".to_owned()),
        name: name(),
        expires_at,
        status,
    }
}

#[tokio::test]
async fn a_live_code_shows_its_invite() {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    let expires_at = now() + Duration::days(2);
    fx.repo
        .expect_preview()
        .with(eq(invite_id()))
        .returning(move |_| Ok(Some(preview_of(InviteStatus::Pending, expires_at))));
    let service = fx.service();

    let preview = service.preview(&code()).await.expect("shown");

    assert_eq!(preview, preview_of(InviteStatus::Pending, expires_at));
}

#[tokio::test]
async fn an_unknown_code_shows_nothing_and_storage_is_not_asked() {
    let mut fx = Fixture::new();
    fx.codes.expect_get().times(1).returning(|_| Ok(None));
    let service = fx.service();

    let err = service.preview(&code()).await.expect_err("404");

    assert!(matches!(err, PreviewInviteError::NotFound), "{err:?}");
}

#[tokio::test]
async fn used_revoked_expired_and_vanished_invites_show_nothing() {
    let cases = [
        Some(preview_of(InviteStatus::Accepted, now() + Duration::days(1))),
        Some(preview_of(InviteStatus::Revoked, now() + Duration::days(1))),
        Some(preview_of(InviteStatus::Pending, now())),
        Some(preview_of(InviteStatus::Expired, now() + Duration::days(1))),
        None,
    ];
    for case in cases {
        let mut fx = Fixture::new();
        fx.code_names(invite_id());
        let answer = case.clone();
        fx.repo.expect_preview().returning(move |_| Ok(answer.clone()));
        let service = fx.service();

        let err = service.preview(&code()).await.expect_err("404");

        assert!(matches!(err, PreviewInviteError::NotFound), "{case:?}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// accept
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_member_with_the_invited_phone_joins_and_the_code_is_used_up() {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    fx.storage_has(live_invite());
    fx.caller_phone(Some(phone()));
    fx.consume_answers(true);
    fx.repo
        .expect_accept()
        .withf(|id, m, at, _| (*id, *m, *at) == (invite_id(), caller(), now()))
        .times(1)
        .returning(|_, _, _, _| Ok(accepted(AcceptOutcome::Joined, RoleName::MEMBER)));
    let service = fx.service();

    let record = service.accept(&code(), caller()).await.expect("joined");

    assert_eq!(record, accepted(AcceptOutcome::Joined, RoleName::MEMBER));
}

#[tokio::test]
async fn the_outcomes_storage_settles_on_are_answered_as_they_are() {
    for record in [
        accepted(AcceptOutcome::AlreadyMember, RoleName::ADMIN),
        accepted(AcceptOutcome::PendingApproval, RoleName::MEMBER),
    ] {
        let mut fx = Fixture::new();
        fx.code_names(invite_id());
        fx.storage_has(live_invite());
        fx.caller_phone(Some(phone()));
        fx.consume_answers(true);
        let answer = record.clone();
        fx.repo.expect_accept().times(1).returning(move |_, _, _, _| Ok(answer.clone()));
        let service = fx.service();

        assert_eq!(service.accept(&code(), caller()).await.expect("accepted"), record);
    }
}

#[tokio::test]
async fn an_invite_by_e_mail_only_is_accepted_by_whoever_holds_the_code() {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    fx.storage_has(stored_invite(InviteStatus::Pending, None, now() + Duration::days(2)));
    fx.consume_answers(true);
    fx.repo
        .expect_accept()
        .times(1)
        .returning(|_, _, _, _| Ok(accepted(AcceptOutcome::Joined, RoleName::MEMBER)));
    let service = fx.service();

    service.accept(&code(), caller()).await.expect("joined without a phone check");
}

#[tokio::test]
async fn an_unknown_code_is_not_found_and_nothing_is_consumed() {
    let mut fx = Fixture::new();
    fx.codes.expect_get().times(1).returning(|_| Ok(None));
    let service = fx.service();

    let err = service.accept(&code(), caller()).await.expect_err("404");

    assert!(matches!(err, AcceptInviteError::NotFound), "{err:?}");
}

#[tokio::test]
async fn a_revoked_accepted_expired_or_vanished_invite_is_not_found_and_nothing_is_consumed() {
    let later = now() + Duration::days(1);
    let cases = [
        Some(stored_invite(InviteStatus::Revoked, Some(phone()), later)),
        Some(stored_invite(InviteStatus::Accepted, Some(phone()), later)),
        Some(stored_invite(InviteStatus::Pending, Some(phone()), now())),
        Some(stored_invite(InviteStatus::Pending, Some(phone()), now() - Duration::seconds(1))),
        None,
    ];
    for case in cases {
        let mut fx = Fixture::new();
        fx.code_names(invite_id());
        let answer = case.clone();
        fx.repo.expect_for_accept().returning(move |_, _| Ok(answer.clone().map(|i| (i, None))));
        let service = fx.service();

        let err = service.accept(&code(), caller()).await.expect_err("404");

        assert!(matches!(err, AcceptInviteError::NotFound), "{case:?}: {err:?}");
    }
}

#[tokio::test]
async fn a_phone_mismatch_is_refused_and_does_not_consume_the_code() {
    for caller_phone in [Some(other_phone()), None] {
        let mut fx = Fixture::new();
        fx.code_names(invite_id());
        fx.storage_has(live_invite());
        fx.caller_phone(caller_phone.clone());
        // No `consume` expectation: a call would fail the test.
        let service = fx.service();

        let err = service.accept(&code(), caller()).await.expect_err("403");

        assert!(matches!(err, AcceptInviteError::PhoneMismatch), "{caller_phone:?}: {err:?}");
    }
}

#[tokio::test]
async fn the_loser_of_concurrent_accepts_finds_nothing_and_storage_is_not_asked_to_accept() {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    fx.storage_has(live_invite());
    fx.caller_phone(Some(phone()));
    fx.consume_answers(false);
    let service = fx.service();

    let err = service.accept(&code(), caller()).await.expect_err("404");

    assert!(matches!(err, AcceptInviteError::NotFound), "{err:?}");
}

#[tokio::test]
async fn an_invite_revoked_after_the_code_was_consumed_is_not_found_and_the_code_stays_gone() {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    fx.storage_has(live_invite());
    fx.caller_phone(Some(phone()));
    fx.consume_answers(true);
    fx.repo.expect_accept().times(1).returning(|_, _, _, _| Err(AcceptRefusal::NotFound));
    // No `restore` expectation: a call would fail the test.
    let service = fx.service();

    let err = service.accept(&code(), caller()).await.expect_err("404");

    assert!(matches!(err, AcceptInviteError::NotFound), "{err:?}");
}

#[tokio::test]
async fn when_storage_fails_after_the_code_was_consumed_the_code_is_put_back_for_its_remaining_life()
 {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    let expires_at = now() + Duration::seconds(3600) + Duration::milliseconds(300);
    fx.storage_has(stored_invite(InviteStatus::Pending, Some(phone()), expires_at));
    fx.caller_phone(Some(phone()));
    fx.consume_answers(true);
    fx.repo
        .expect_accept()
        .times(1)
        .returning(|_, _, _, _| Err(AcceptRefusal::Unexpected(anyhow::anyhow!("connection lost"))));
    let restored = Captured::new();
    let sink = restored.clone();
    fx.codes.expect_restore().times(1).returning(move |c, id, ttl| {
        sink.push((c.clone(), id, ttl));
        Ok(())
    });
    let service = fx.service();

    let err = service.accept(&code(), caller()).await.expect_err("500");

    assert!(matches!(err, AcceptInviteError::Unexpected(_)), "{err:?}");
    // 3600.3 s left, rounded up.
    assert_eq!(restored.one(), (code(), invite_id(), 3601));
}

#[tokio::test]
async fn a_failed_compensation_is_reported_with_the_storage_failure() {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    fx.storage_has(live_invite());
    fx.caller_phone(Some(phone()));
    fx.consume_answers(true);
    fx.repo
        .expect_accept()
        .returning(|_, _, _, _| Err(AcceptRefusal::Unexpected(anyhow::anyhow!("connection lost"))));
    fx.codes.expect_restore().times(1).returning(|_, _, _| Err(anyhow::anyhow!("Redis is down")));
    let service = fx.service();

    let err = service.accept(&code(), caller()).await.expect_err("500");

    let AcceptInviteError::Unexpected(e) = err else { panic!("unexpected error {err:?}") };
    let chain = format!("{e:#}");
    assert!(chain.contains("connection lost") && chain.contains("Redis is down"), "{chain}");
}

#[tokio::test]
async fn a_failure_to_consume_the_code_is_unexpected_and_storage_is_not_asked_to_accept() {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    fx.storage_has(live_invite());
    fx.caller_phone(Some(phone()));
    fx.codes.expect_consume().times(1).returning(|_, _| Err(anyhow::anyhow!("Redis is down")));
    let service = fx.service();

    let err = service.accept(&code(), caller()).await.expect_err("500");

    assert!(matches!(err, AcceptInviteError::Unexpected(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// The invite events among `records`, in order (a record of another type fails the test).
fn decoded(records: &[Event]) -> Vec<InviteEvent> {
    records.iter().map(|r| r.decode::<InviteEvent>().expect("an invite event")).collect()
}

#[tokio::test]
async fn creating_records_invite_created_with_the_phone_masked_and_no_code() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let puts = fx.codes_put();
    let handed = Captured::new();
    let sink = handed.clone();
    fx.repo.expect_create().times(1).returning(move |_, events| {
        sink.push(events.to_vec());
        Ok(())
    });
    fx.sms.expect_send().times(1).returning(|_, _| Ok(()));
    let service = fx.service();

    service
        .create(&slug(), caller(), request(Some(phone()), Some(email()), Some(role("admin"))))
        .await
        .expect("201");

    let (code, id, _) = puts.one();
    let records = handed.one();
    let created = InviteEvent::Created {
        invite_id: id,
        group_id: group_id(),
        invited_by: caller(),
        phone: Some("+7******5566".to_owned()),
        email: Some(email().as_str().to_owned()),
        role: "admin".to_owned(),
    };
    assert_eq!(decoded(&records), [created]);
    assert_eq!(records[0].occurred_at, now());
    let payload = records[0].payload.to_string();
    assert!(!payload.contains(code.as_str()) && !payload.contains("9174445566"), "{payload}");
}

#[tokio::test]
async fn revoking_records_invite_revoked_by_the_caller() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let handed = Captured::new();
    let sink = handed.clone();
    fx.repo.expect_revoke().times(1).returning(move |_, _, _, events| {
        sink.push(events.to_vec());
        Ok(true)
    });
    fx.codes.expect_delete().times(1).returning(|_| Ok(()));
    let service = fx.service();

    service.revoke(&slug(), caller(), invite_id()).await.expect("revoked");

    let revoked =
        InviteEvent::Revoked { invite_id: invite_id(), group_id: group_id(), by: caller() };
    assert_eq!(decoded(&handed.one()), [revoked]);
}

#[tokio::test]
async fn accepting_hands_storage_the_events_of_every_way_the_membership_may_settle() {
    let mut fx = Fixture::new();
    fx.code_names(invite_id());
    let mut invite = live_invite();
    invite.role = role("recruiter");
    fx.storage_has(invite);
    fx.caller_phone(Some(phone()));
    fx.consume_answers(true);
    let handed = Captured::new();
    let sink = handed.clone();
    fx.repo.expect_accept().times(1).returning(move |_, _, _, events| {
        sink.push(events.clone());
        Ok(accepted(AcceptOutcome::Joined, role("recruiter")))
    });
    let service = fx.service();

    service.accept(&code(), caller()).await.expect("joined");

    let events = handed.one();
    assert_eq!(
        events,
        AcceptEvents {
            invite: invite_id(),
            group: group_id(),
            invited_by: inviter(),
            member: caller(),
            role: role("recruiter"),
            at: now(),
        }
    );
    let accepted = InviteEvent::Accepted {
        invite_id: invite_id(),
        group_id: group_id(),
        invited_by: inviter(),
        member_id: caller(),
        role: "recruiter".to_owned(),
    };
    let joined = onboard_groups::events::GroupEvent::MemberJoined {
        group_id: group_id(),
        member_id: caller(),
        role: "recruiter".to_owned(),
        via: onboard_groups::events::JoinedVia::Invite,
    };
    let requested = onboard_groups::events::GroupEvent::JoinRequested {
        group_id: group_id(),
        member_id: caller(),
    };
    let settled = AcceptedMembership::Joined(role("recruiter"));
    assert_eq!(events.events(&settled), (accepted.clone(), Some(joined)));
    assert_eq!(events.events(&AcceptedMembership::Requested), (accepted.clone(), Some(requested)));
    assert_eq!(events.events(&AcceptedMembership::Unchanged), (accepted, None));
}

#[tokio::test]
async fn refused_use_cases_hand_storage_no_events() {
    // Inviting and revoking without `invites.manage`: storage is never asked to write.
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    fx.repo.expect_create().never();
    fx.repo.expect_revoke().never();
    let service = fx.service();
    let err = service.create(&slug(), caller(), request(Some(phone()), None, None)).await;
    assert!(matches!(err, Err(CreateInviteError::Forbidden)), "{err:?}");
    let err = service.revoke(&slug(), caller(), invite_id()).await;
    assert!(matches!(err, Err(RevokeInviteError::Forbidden)), "{err:?}");

    // Accepting an invite for another phone, or one already used up.
    for won in [None, Some(false)] {
        let mut fx = Fixture::new();
        fx.code_names(invite_id());
        fx.storage_has(live_invite());
        match won {
            None => fx.caller_phone(Some(other_phone())),
            Some(won) => {
                fx.caller_phone(Some(phone()));
                fx.consume_answers(won);
            }
        }
        fx.repo.expect_accept().never();
        let service = fx.service();
        service.accept(&code(), caller()).await.expect_err("refused");
    }
}
