//! Unit tests of every use case of [`GroupsService`], against the mockall twin of the port.
//!
//! A [`Fixture`] holds a repository mock with no expectations and a clock at a fixed instant.
//! Mockall refuses any call that no expectation allows, so a test that sets up only the reads
//! of a use case also proves that a refused use case writes nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use mockall::predicate::{always, eq};
use onboard_kernel::{GroupId, MemberId, MockClock, PhoneNumber};
use uuid::Uuid;

use super::*;
use crate::error::{ChangeRoleRefusal, RemoveRefusal, RoleRefusal};
use crate::events::{GroupEvent, JoinedVia};
use crate::model::{GroupName, Membership};
use crate::ports::MockGroupRepository;

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

const SLUG: &str = "acme";

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

/// The member calling the service.
fn caller() -> MemberId {
    MemberId::from_uuid(Uuid::from_u128(0x1001))
}

/// The member a call acts on.
fn target() -> MemberId {
    MemberId::from_uuid(Uuid::from_u128(0x1002))
}

fn group() -> Group {
    Group {
        id: group_id(),
        slug: slug(),
        name: GroupName::parse("Acme").expect("a valid name"),
        approval_required: false,
        created_at: now(),
    }
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).expect("a valid role name")
}

fn perm(name: &str) -> Permission {
    Permission::parse(name).expect("a valid permission")
}

fn perms(names: &[&str]) -> BTreeSet<Permission> {
    names.iter().map(|n| perm(n)).collect()
}

fn custom(name: &str, permissions: &[&str]) -> Role {
    Role { name: role(name), permissions: perms(permissions), builtin: false }
}

fn group_member(id: MemberId, role: RoleName, status: MembershipStatus) -> GroupMember {
    GroupMember {
        member_id: id,
        first_name: Some("Ann".to_owned()),
        last_name: None,
        phone: Some(PhoneNumber::from_trusted_e164("+79174445566")),
        role,
        status,
        joined_at: now(),
    }
}

/// Rows of a list, `n` of them, each with its cursor.
fn member_rows(n: u8) -> Vec<(GroupMember, MemberCursor)> {
    (0..n)
        .map(|i| {
            let id = MemberId::from_uuid(Uuid::from_u128(0x2000 + u128::from(i)));
            let joined_at = now() + chrono::Duration::seconds(i64::from(i));
            (
                group_member(id, RoleName::MEMBER, MembershipStatus::Active),
                MemberCursor { joined_at, member_id: id },
            )
        })
        .collect()
}

fn group_rows(n: u8) -> Vec<(MyGroup, GroupCursor)> {
    (0..n)
        .map(|i| {
            let id = GroupId::from_uuid(Uuid::from_u128(0x3000 + u128::from(i)));
            let joined_at = now() + chrono::Duration::seconds(i64::from(i));
            let group = Group {
                id,
                slug: Slug::parse(&format!("group-{i}")).expect("a valid slug"),
                ..group()
            };
            (MyGroup { group, my_role: RoleName::MEMBER }, GroupCursor { joined_at, group_id: id })
        })
        .collect()
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

/// A repository mock, a fixed clock and configuration, from which a test builds its service.
struct Fixture {
    repo: MockGroupRepository,
    config: GroupsConfig,
}

impl Fixture {
    /// Default configuration, a fixed clock, and a repository that expects nothing.
    fn new() -> Self {
        Self { repo: MockGroupRepository::new(), config: GroupsConfig::default() }
    }

    fn service(self) -> GroupsService {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        GroupsService::new(Arc::new(self.repo), self.config, Arc::new(clock))
    }

    /// Storage finds `group` under [`SLUG`] with this membership of the caller.
    fn caller_in(&mut self, group: Group, membership: Option<Membership>) {
        self.repo
            .expect_find_for_member()
            .withf(|s, m| s.as_str() == SLUG && *m == caller())
            .returning(move |_, _| Ok(Some((group.clone(), membership.clone()))));
    }

    /// The caller is an active member of [`group`] with a built-in role.
    fn caller_is(&mut self, role: RoleName) {
        let membership = Membership {
            role,
            status: MembershipStatus::Active,
            role_permissions: BTreeSet::new(),
        };
        self.caller_in(group(), Some(membership));
    }

    /// The caller is an active member of [`group`] with a custom role holding `permissions`.
    fn caller_has_custom_role(&mut self, name: &str, permissions: &[&str]) {
        let membership = Membership {
            role: role(name),
            status: MembershipStatus::Active,
            role_permissions: perms(permissions),
        };
        self.caller_in(group(), Some(membership));
    }

    /// The caller has a pending join request in [`group`].
    fn caller_is_pending(&mut self) {
        let membership = Membership {
            role: RoleName::MEMBER,
            status: MembershipStatus::Pending,
            role_permissions: BTreeSet::new(),
        };
        self.caller_in(group(), Some(membership));
    }

    /// [`group`] exists and the caller has no membership in it.
    fn caller_is_stranger(&mut self) {
        self.caller_in(group(), None);
    }

    /// No group has [`SLUG`].
    fn group_is_unknown(&mut self) {
        self.repo.expect_find_for_member().returning(|_, _| Ok(None));
    }

    /// Storage answers this membership of [`target`] in [`group`].
    fn target_is(&mut self, role: RoleName, status: MembershipStatus) {
        self.repo
            .expect_member()
            .with(eq(group_id()), eq(target()))
            .returning(move |_, id| Ok(Some(group_member(id, role.clone(), status))));
    }

    /// The group's custom roles.
    fn custom_roles(&mut self, roles: Vec<Role>) {
        self.repo.expect_custom_roles().with(eq(group_id())).returning(move |_| Ok(roles.clone()));
    }

    /// Storage changes roles as asked; `(target, expected, role)` are captured.
    fn roles_changed(&mut self) -> Captured<(MemberId, RoleName, RoleName)> {
        let seen = Captured::new();
        let sink = seen.clone();
        self.repo.expect_change_role().returning(move |g, t, expected, role, _events| {
            assert_eq!(g, group_id());
            sink.push((t, expected.clone(), role.clone()));
            Ok(group_member(t, role.clone(), MembershipStatus::Active))
        });
        seen
    }

    /// Storage removes members as asked; `(target, expected)` are captured.
    fn members_removed(&mut self) -> Captured<(MemberId, RoleName)> {
        let seen = Captured::new();
        let sink = seen.clone();
        self.repo.expect_remove().returning(move |g, t, expected, _events| {
            assert_eq!(g, group_id());
            sink.push((t, expected.clone()));
            Ok(())
        });
        seen
    }
}

fn create_request(slug: Option<&str>) -> CreateGroup {
    CreateGroup {
        name: GroupName::parse("Acme Corp.").expect("a valid name"),
        slug: slug.map(|s| Slug::parse(s).expect("a valid slug")),
        approval_required: true,
    }
}

fn stored(g: &NewGroup) -> Group {
    Group {
        id: g.id,
        slug: g.slug.clone(),
        name: g.name.clone(),
        approval_required: g.approval_required,
        created_at: g.now,
    }
}

// ---------------------------------------------------------------------------------------------
// create_group
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_group_makes_the_caller_its_active_owner() {
    let mut fx = Fixture::new();
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_create().times(1).returning(move |g, _events| {
        sink.push(g.clone());
        Ok(stored(g))
    });
    let service = fx.service();

    let created =
        service.create_group(caller(), create_request(Some("acme"))).await.expect("created");

    let asked = seen.one();
    assert_eq!(asked.owner, caller());
    assert_eq!(asked.now, now());
    assert_eq!(asked.slug.as_str(), "acme");
    assert_eq!(asked.name.as_str(), "Acme Corp.");
    assert!(asked.approval_required);
    assert_eq!(created, MyGroup { group: stored(&asked), my_role: RoleName::OWNER });
}

#[tokio::test]
async fn a_group_without_a_slug_gets_one_derived_from_its_name() {
    let mut fx = Fixture::new();
    fx.repo.expect_create().times(1).returning(|g, _events| Ok(stored(g)));
    let service = fx.service();

    let created = service.create_group(caller(), create_request(None)).await.expect("created");

    let slug = created.group.slug.as_str();
    assert!(slug.starts_with("acme-corp-") && slug.len() == "acme-corp-".len() + 6, "{slug}");
}

#[tokio::test]
async fn a_taken_slug_that_was_asked_for_answers_slug_taken_without_a_retry() {
    let mut fx = Fixture::new();
    fx.repo.expect_create().times(1).returning(|_, _events| Err(CreateGroupError::SlugTaken));
    let service = fx.service();

    let err =
        service.create_group(caller(), create_request(Some("acme"))).await.expect_err("taken");

    assert!(matches!(err, CreateGroupError::SlugTaken), "{err:?}");
}

#[tokio::test]
async fn a_taken_derived_slug_is_replaced_by_a_fresh_one() {
    let mut fx = Fixture::new();
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_create().times(2).returning(move |g, _events| {
        sink.push(g.clone());
        if sink.all().len() == 1 { Err(CreateGroupError::SlugTaken) } else { Ok(stored(g)) }
    });
    let service = fx.service();

    let created = service.create_group(caller(), create_request(None)).await.expect("created");

    let tries = seen.all();
    assert_ne!(tries[0].slug, tries[1].slug);
    assert_eq!(tries[0].id, tries[1].id, "the same group is tried again");
    assert_eq!(created.group.slug, tries[1].slug);
    assert!(tries.iter().all(|t| t.slug.as_str().starts_with("acme-corp-")));
}

#[tokio::test]
async fn a_derived_slug_taken_three_times_answers_slug_taken() {
    let mut fx = Fixture::new();
    fx.repo.expect_create().times(3).returning(|_, _events| Err(CreateGroupError::SlugTaken));
    let service = fx.service();

    let err = service.create_group(caller(), create_request(None)).await.expect_err("taken");

    assert!(matches!(err, CreateGroupError::SlugTaken), "{err:?}");
}

#[tokio::test]
async fn a_failing_repository_on_create_is_unexpected_and_not_retried() {
    let mut fx = Fixture::new();
    fx.repo.expect_create().times(1).returning(|_, _events| Err(anyhow::anyhow!("db down").into()));
    let service = fx.service();

    let err = service.create_group(caller(), create_request(None)).await.expect_err("fails");

    assert!(matches!(err, CreateGroupError::Unexpected(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// my_groups and pagination
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn my_groups_asks_for_one_more_row_than_the_page_and_points_at_the_last_one_shown() {
    let rows = group_rows(3);
    let expected = rows[1].1.encode();
    let mut fx = Fixture::new();
    fx.repo
        .expect_list_mine()
        .with(eq(caller()), eq(None), eq(3))
        .times(1)
        .returning(move |_, _, _| Ok(rows.clone()));
    let service = fx.service();

    let page = service.my_groups(caller(), None, 2).await.expect("a page");

    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[1].group.slug.as_str(), "group-1");
    assert_eq!(page.next_cursor, Some(expected.clone()));
    assert_eq!(GroupCursor::decode(&expected).map(|c| c.group_id), Some(page.items[1].group.id));
}

#[tokio::test]
async fn the_last_page_of_my_groups_has_no_next_cursor() {
    let rows = group_rows(3);
    let after = rows[0].1;
    let rest = rows[1..].to_vec();
    let mut fx = Fixture::new();
    fx.repo
        .expect_list_mine()
        .with(eq(caller()), eq(Some(after)), eq(3))
        .times(1)
        .returning(move |_, _, _| Ok(rest.clone()));
    let service = fx.service();

    let page = service.my_groups(caller(), Some(after), 2).await.expect("a page");

    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn an_empty_list_of_groups_is_an_empty_last_page() {
    let mut fx = Fixture::new();
    fx.repo.expect_list_mine().returning(|_, _, _| Ok(vec![]));
    let service = fx.service();

    let page = service.my_groups(caller(), None, 20).await.expect("a page");

    assert_eq!(page, Page { items: vec![], next_cursor: None });
}

#[tokio::test]
async fn page_sizes_are_clamped_to_one_to_a_hundred() {
    let mut fx = Fixture::new();
    let fetched = Captured::new();
    let sink = fetched.clone();
    fx.repo.expect_list_mine().returning(move |_, _, limit| {
        sink.push(limit);
        Ok(vec![])
    });
    let service = fx.service();

    for asked in [0, 1, 20, 100, 101, 5_000] {
        service.my_groups(caller(), None, asked).await.expect("a page");
    }

    // One row more than the page, to learn whether another follows.
    assert_eq!(fetched.all(), vec![2, 2, 21, 101, 101, 101]);
}

#[tokio::test]
async fn a_clamped_page_of_members_shows_at_most_a_hundred_rows() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    fx.repo
        .expect_members()
        .with(eq(group_id()), eq(MembershipStatus::Active), eq(None), eq(101))
        .times(1)
        .returning(|_, _, _, _| Ok(member_rows(101)));
    let service = fx.service();

    let page = service
        .members(&slug(), caller(), MembershipStatus::Active, None, 1_000)
        .await
        .expect("a page");

    assert_eq!(page.items.len(), 100);
    let next = page.next_cursor.expect("more follow");
    assert_eq!(MemberCursor::decode(&next).map(|c| c.member_id), Some(page.items[99].member_id));
}

#[tokio::test]
async fn a_failing_repository_on_my_groups_is_unexpected() {
    let mut fx = Fixture::new();
    fx.repo.expect_list_mine().returning(|_, _, _| Err(anyhow::anyhow!("db down")));
    let service = fx.service();

    assert!(service.my_groups(caller(), None, 20).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// group
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_active_member_sees_the_group_with_their_role() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("team_lead", &["messages.send"]);
    let service = fx.service();

    let seen = service.group(&slug(), caller()).await.expect("visible");

    assert_eq!(seen, MyGroup { group: group(), my_role: role("team_lead") });
}

#[tokio::test]
async fn a_stranger_gets_not_found_for_a_group_that_exists() {
    let mut fx = Fixture::new();
    fx.caller_is_stranger();
    let service = fx.service();

    let err = service.group(&slug(), caller()).await.expect_err("hidden");

    assert!(matches!(err, ViewGroupError::NotFound), "{err:?}");
}

#[tokio::test]
async fn a_pending_member_gets_not_found_for_the_group() {
    let mut fx = Fixture::new();
    fx.caller_is_pending();
    let service = fx.service();

    let err = service.group(&slug(), caller()).await.expect_err("hidden");

    assert!(matches!(err, ViewGroupError::NotFound), "{err:?}");
}

#[tokio::test]
async fn an_unknown_group_is_not_found() {
    let mut fx = Fixture::new();
    fx.group_is_unknown();
    let service = fx.service();

    let err = service.group(&slug(), caller()).await.expect_err("unknown");

    assert!(matches!(err, ViewGroupError::NotFound), "{err:?}");
}

#[tokio::test]
async fn a_failing_repository_on_a_group_lookup_is_unexpected_not_not_found() {
    let mut fx = Fixture::new();
    fx.repo.expect_find_for_member().returning(|_, _| Err(anyhow::anyhow!("db down")));
    let service = fx.service();

    let err = service.group(&slug(), caller()).await.expect_err("fails");

    assert!(matches!(err, ViewGroupError::Unexpected(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// update_group
// ---------------------------------------------------------------------------------------------

fn rename() -> GroupPatch {
    GroupPatch { name: Some(GroupName::parse("Acme Two").expect("valid")), approval_required: None }
}

#[tokio::test]
async fn a_member_with_group_manage_renames_the_group() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage"]);
    fx.repo
        .expect_update()
        .withf(|g, patch| *g == group_id() && *patch == rename())
        .times(1)
        .returning(|_, p| Ok(Some(Group { name: p.name.clone().expect("a name"), ..group() })));
    let service = fx.service();

    let changed = service.update_group(&slug(), caller(), &rename()).await.expect("changed");

    assert_eq!(changed.group.name.as_str(), "Acme Two");
    assert_eq!(changed.my_role, role("steward"));
}

#[tokio::test]
async fn an_admin_may_change_the_group_settings() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let patch = GroupPatch { name: None, approval_required: Some(true) };
    fx.repo
        .expect_update()
        .times(1)
        .returning(|_, _| Ok(Some(Group { approval_required: true, ..group() })));
    let service = fx.service();

    let changed = service.update_group(&slug(), caller(), &patch).await.expect("changed");

    assert!(changed.group.approval_required);
}

#[tokio::test]
async fn changing_the_group_without_group_manage_is_forbidden() {
    for custom_role in [None, Some(&["members.manage", "invites.manage", "billing.manage"][..])] {
        let mut fx = Fixture::new();
        match custom_role {
            None => fx.caller_is(RoleName::MEMBER),
            Some(p) => fx.caller_has_custom_role("helper", p),
        }
        fx.repo.expect_update().never();
        let service = fx.service();

        let err = service.update_group(&slug(), caller(), &rename()).await.expect_err("refused");

        assert!(matches!(err, UpdateGroupError::Forbidden), "{err:?}");
    }
}

#[tokio::test]
async fn a_pending_member_changing_the_group_gets_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is_pending();
    let service = fx.service();

    let err = service.update_group(&slug(), caller(), &rename()).await.expect_err("hidden");

    assert!(matches!(err, UpdateGroupError::NotFound), "{err:?}");
}

#[tokio::test]
async fn an_empty_patch_changes_nothing_and_answers_the_group() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.repo.expect_update().never();
    let service = fx.service();

    let same = service.update_group(&slug(), caller(), &GroupPatch::default()).await.expect("ok");

    assert_eq!(same, MyGroup { group: group(), my_role: RoleName::OWNER });
}

#[tokio::test]
async fn an_empty_patch_without_group_manage_is_still_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    let service = fx.service();

    let err =
        service.update_group(&slug(), caller(), &GroupPatch::default()).await.expect_err("refused");

    assert!(matches!(err, UpdateGroupError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_group_deleted_during_an_update_is_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.repo.expect_update().returning(|_, _| Ok(None));
    let service = fx.service();

    let err = service.update_group(&slug(), caller(), &rename()).await.expect_err("gone");

    assert!(matches!(err, UpdateGroupError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// delete_group
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_owner_deletes_the_group() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.repo
        .expect_delete()
        .with(eq(group_id()), always())
        .times(1)
        .returning(|_, _events| Ok(true));
    let service = fx.service();

    service.delete_group(&slug(), caller()).await.expect("deleted");
}

#[tokio::test]
async fn an_admin_cannot_delete_the_group() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo.expect_delete().never();
    let service = fx.service();

    let err = service.delete_group(&slug(), caller()).await.expect_err("refused");

    assert!(matches!(err, DeleteGroupError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_custom_role_holding_every_permission_cannot_delete_the_group() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role(
        "almighty",
        &[
            "group.manage",
            "members.manage",
            "invites.manage",
            "billing.manage",
            "messages.send",
            "webhooks.manage",
        ],
    );
    let service = fx.service();

    let err = service.delete_group(&slug(), caller()).await.expect_err("refused");

    assert!(matches!(err, DeleteGroupError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_plain_member_cannot_delete_the_group() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    let service = fx.service();

    let err = service.delete_group(&slug(), caller()).await.expect_err("refused");

    assert!(matches!(err, DeleteGroupError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn deleting_a_group_one_is_not_in_is_not_found() {
    for pending in [false, true] {
        let mut fx = Fixture::new();
        if pending {
            fx.caller_is_pending()
        } else {
            fx.caller_is_stranger()
        }
        let service = fx.service();

        let err = service.delete_group(&slug(), caller()).await.expect_err("hidden");

        assert!(matches!(err, DeleteGroupError::NotFound), "{err:?}");
    }
}

#[tokio::test]
async fn deleting_a_group_that_vanished_meanwhile_is_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.repo.expect_delete().returning(|_, _events| Ok(false));
    let service = fx.service();

    let err = service.delete_group(&slug(), caller()).await.expect_err("gone");

    assert!(matches!(err, DeleteGroupError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// standing (GET /groups/{slug}/me)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_stands_with_every_permission_of_the_deployment() {
    let mut fx = Fixture::new();
    fx.config.extra_permissions = vec![perm("customers.read")];
    fx.caller_is(RoleName::ADMIN);
    let service = fx.service();

    let standing = service.standing(&slug(), caller()).await.expect("a member");

    assert_eq!(standing.role, RoleName::ADMIN);
    assert_eq!(standing.status, MembershipStatus::Active);
    assert_eq!(standing.permissions.len(), 7);
    assert!(standing.permissions.contains(&perm("customers.read")));
}

#[tokio::test]
async fn a_custom_role_stands_with_its_permissions_that_the_deployment_knows() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("seller", &["messages.send", "retired.flag"]);
    let service = fx.service();

    let standing = service.standing(&slug(), caller()).await.expect("a member");

    assert_eq!(
        standing,
        Standing {
            role: role("seller"),
            permissions: perms(&["messages.send"]),
            status: MembershipStatus::Active
        }
    );
}

#[tokio::test]
async fn a_pending_member_stands_with_their_role_no_permission_and_pending() {
    let mut fx = Fixture::new();
    fx.caller_is_pending();
    let service = fx.service();

    let standing = service.standing(&slug(), caller()).await.expect("a request");

    assert_eq!(
        standing,
        Standing {
            role: RoleName::MEMBER,
            permissions: BTreeSet::new(),
            status: MembershipStatus::Pending
        }
    );
}

#[tokio::test]
async fn a_stranger_or_an_unknown_group_has_no_standing() {
    for unknown in [false, true] {
        let mut fx = Fixture::new();
        if unknown {
            fx.group_is_unknown()
        } else {
            fx.caller_is_stranger()
        }
        let service = fx.service();

        let err = service.standing(&slug(), caller()).await.expect_err("none");

        assert!(matches!(err, ViewGroupError::NotFound), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// roles
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_roles_are_the_built_ins_then_the_custom_roles_by_name() {
    let mut fx = Fixture::new();
    fx.config.extra_permissions = vec![perm("customers.read")];
    fx.caller_is(RoleName::MEMBER);
    fx.custom_roles(vec![
        custom("sales", &["customers.read", "retired.flag"]),
        custom("billing", &["billing.manage"]),
    ]);
    let service = fx.service();

    let roles = service.roles(&slug(), caller()).await.expect("roles");

    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["owner", "admin", "member", "billing", "sales"]);
    let everything = service.catalog().all().clone();
    assert_eq!(
        roles[0],
        Role { name: RoleName::OWNER, permissions: everything.clone(), builtin: true }
    );
    assert_eq!(roles[1], Role { name: RoleName::ADMIN, permissions: everything, builtin: true });
    assert_eq!(
        roles[2],
        Role { name: RoleName::MEMBER, permissions: BTreeSet::new(), builtin: true }
    );
    assert_eq!(roles[4], custom("sales", &["customers.read"]));
    assert!(!roles[3].builtin);
}

#[tokio::test]
async fn a_stranger_cannot_list_the_roles() {
    let mut fx = Fixture::new();
    fx.caller_is_stranger();
    fx.repo.expect_custom_roles().never();
    let service = fx.service();

    let err = service.roles(&slug(), caller()).await.expect_err("hidden");

    assert!(matches!(err, ViewGroupError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// create_role
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_member_with_group_manage_creates_a_custom_role() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo
        .expect_create_role()
        .withf(|g, name, p| {
            *g == group_id()
                && name.as_str() == "seller"
                && *p == perms(&["messages.send", "invites.manage"])
        })
        .times(1)
        .returning(|_, name, p| {
            Ok(Role { name: name.clone(), permissions: p.clone(), builtin: false })
        });
    let service = fx.service();

    let created = service
        .create_role(
            &slug(),
            caller(),
            &role("seller"),
            ["messages.send", "invites.manage", "messages.send"],
        )
        .await
        .expect("created");

    assert_eq!(created, custom("seller", &["invites.manage", "messages.send"]));
}

#[tokio::test]
async fn an_extra_permission_of_the_deployment_may_be_put_in_a_role() {
    let mut fx = Fixture::new();
    fx.config.extra_permissions = vec![perm("customers.read")];
    fx.caller_is(RoleName::OWNER);
    fx.repo
        .expect_create_role()
        .withf(|_, _, p| *p == perms(&["customers.read"]))
        .times(1)
        .returning(|_, name, p| {
            Ok(Role { name: name.clone(), permissions: p.clone(), builtin: false })
        });
    let service = fx.service();

    service
        .create_role(&slug(), caller(), &role("sales"), vec!["customers.read".to_owned()])
        .await
        .expect("created");
}

#[tokio::test]
async fn creating_a_role_without_group_manage_is_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    let service = fx.service();

    let err = service
        .create_role(&slug(), caller(), &role("seller"), ["messages.send"])
        .await
        .expect_err("refused");

    assert!(matches!(err, CreateRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_built_in_role_cannot_be_created() {
    for name in RoleName::BUILTIN {
        let mut fx = Fixture::new();
        fx.caller_is(RoleName::OWNER);
        let service = fx.service();

        let err = service
            .create_role(&slug(), caller(), &name, Vec::<String>::new())
            .await
            .expect_err("refused");

        assert!(matches!(err, CreateRoleError::RoleBuiltin), "{name}: {err:?}");
    }
}

#[tokio::test]
async fn an_unknown_permission_in_a_new_role_is_refused_by_name() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    let service = fx.service();

    let err = service
        .create_role(&slug(), caller(), &role("seller"), ["messages.send", "rockets.launch"])
        .await
        .expect_err("refused");

    assert!(
        matches!(&err, CreateRoleError::UnknownPermission(p) if p == "rockets.launch"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_existing_role_name_answers_role_exists() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.repo.expect_create_role().returning(|_, _, _| Err(RoleRefusal::Exists));
    let service = fx.service();

    let err = service
        .create_role(&slug(), caller(), &role("seller"), ["messages.send"])
        .await
        .expect_err("refused");

    assert!(matches!(err, CreateRoleError::RoleExists), "{err:?}");
}

#[tokio::test]
async fn a_role_with_a_permission_its_creator_lacks_is_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage"]);
    let service = fx.service();

    let err = service
        .create_role(&slug(), caller(), &role("treasurer"), ["billing.manage"])
        .await
        .expect_err("refused");

    assert!(matches!(err, CreateRoleError::Forbidden), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// update_role
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_replaces_the_permissions_of_a_custom_role() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo
        .expect_update_role()
        .withf(|g, name, p| {
            *g == group_id() && name.as_str() == "seller" && *p == perms(&["billing.manage"])
        })
        .times(1)
        .returning(|_, name, p| {
            Ok(Role { name: name.clone(), permissions: p.clone(), builtin: false })
        });
    let service = fx.service();

    let updated = service
        .update_role(&slug(), caller(), &role("seller"), ["billing.manage"])
        .await
        .expect("updated");

    assert_eq!(updated, custom("seller", &["billing.manage"]));
}

#[tokio::test]
async fn a_built_in_role_cannot_be_edited() {
    for name in RoleName::BUILTIN {
        let mut fx = Fixture::new();
        fx.caller_is(RoleName::OWNER);
        let service = fx.service();

        let err = service
            .update_role(&slug(), caller(), &name, ["messages.send"])
            .await
            .expect_err("refused");

        assert!(matches!(err, UpdateRoleError::RoleBuiltin), "{name}: {err:?}");
    }
}

#[tokio::test]
async fn editing_a_role_without_group_manage_is_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    let service = fx.service();

    let err = service
        .update_role(&slug(), caller(), &role("seller"), Vec::<String>::new())
        .await
        .expect_err("refused");

    assert!(matches!(err, UpdateRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn editing_a_role_the_group_does_not_have_answers_role_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.repo.expect_update_role().returning(|_, _, _| Err(RoleRefusal::NotFound));
    let service = fx.service();

    let err = service
        .update_role(&slug(), caller(), &role("ghost"), ["messages.send"])
        .await
        .expect_err("refused");

    assert!(matches!(err, UpdateRoleError::RoleNotFound), "{err:?}");
}

#[tokio::test]
async fn an_unknown_permission_in_an_edited_role_is_refused_by_name() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    let service = fx.service();

    let err = service
        .update_role(&slug(), caller(), &role("seller"), ["Messages.Send"])
        .await
        .expect_err("refused");

    assert!(
        matches!(&err, UpdateRoleError::UnknownPermission(p) if p == "Messages.Send"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_manager_cannot_give_a_role_a_permission_they_lack_not_even_their_own_role() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage"]);
    let service = fx.service();

    let err = service
        .update_role(&slug(), caller(), &role("steward"), ["group.manage", "billing.manage"])
        .await
        .expect_err("refused");

    assert!(matches!(err, UpdateRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_manager_cannot_edit_a_role_that_holds_more_than_they_do() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage"]);
    fx.custom_roles(vec![custom("treasurer", &["billing.manage"])]);
    let service = fx.service();

    let err = service
        .update_role(&slug(), caller(), &role("treasurer"), Vec::<String>::new())
        .await
        .expect_err("refused");

    assert!(matches!(err, UpdateRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_manager_edits_a_role_within_their_own_permissions() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage", "messages.send"]);
    fx.custom_roles(vec![custom("seller", &["messages.send"])]);
    fx.repo.expect_update_role().times(1).returning(|_, name, p| {
        Ok(Role { name: name.clone(), permissions: p.clone(), builtin: false })
    });
    let service = fx.service();

    let updated = service
        .update_role(&slug(), caller(), &role("seller"), Vec::<String>::new())
        .await
        .expect("updated");

    assert!(updated.permissions.is_empty());
}

#[tokio::test]
async fn a_manager_editing_a_role_the_group_does_not_have_gets_role_not_found() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage"]);
    fx.custom_roles(vec![]);
    let service = fx.service();

    let err = service
        .update_role(&slug(), caller(), &role("ghost"), Vec::<String>::new())
        .await
        .expect_err("refused");

    assert!(matches!(err, UpdateRoleError::RoleNotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// delete_role
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_deletes_a_custom_role() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo
        .expect_delete_role()
        .withf(|g, name| *g == group_id() && name.as_str() == "seller")
        .times(1)
        .returning(|_, _| Ok(()));
    let service = fx.service();

    service.delete_role(&slug(), caller(), &role("seller")).await.expect("deleted");
}

#[tokio::test]
async fn a_built_in_role_cannot_be_deleted() {
    for name in RoleName::BUILTIN {
        let mut fx = Fixture::new();
        fx.caller_is(RoleName::OWNER);
        let service = fx.service();

        let err = service.delete_role(&slug(), caller(), &name).await.expect_err("refused");

        assert!(matches!(err, DeleteRoleError::RoleBuiltin), "{name}: {err:?}");
    }
}

#[tokio::test]
async fn deleting_a_role_without_group_manage_is_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    let service = fx.service();

    let err = service.delete_role(&slug(), caller(), &role("seller")).await.expect_err("refused");

    assert!(matches!(err, DeleteRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn deleting_a_role_the_group_does_not_have_answers_role_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.repo.expect_delete_role().returning(|_, _| Err(RoleRefusal::NotFound));
    let service = fx.service();

    let err = service.delete_role(&slug(), caller(), &role("ghost")).await.expect_err("refused");

    assert!(matches!(err, DeleteRoleError::RoleNotFound), "{err:?}");
}

#[tokio::test]
async fn a_manager_cannot_delete_a_role_that_holds_more_than_they_do() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage"]);
    fx.custom_roles(vec![custom("treasurer", &["billing.manage"])]);
    let service = fx.service();

    let err =
        service.delete_role(&slug(), caller(), &role("treasurer")).await.expect_err("refused");

    assert!(matches!(err, DeleteRoleError::Forbidden), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// members and join requests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn any_active_member_lists_the_active_members() {
    let rows = member_rows(2);
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    fx.repo
        .expect_members()
        .with(eq(group_id()), eq(MembershipStatus::Active), eq(None), eq(21))
        .times(1)
        .returning(move |_, _, _, _| Ok(rows.clone()));
    let service = fx.service();

    let page = service
        .members(&slug(), caller(), MembershipStatus::Active, None, GroupsService::DEFAULT_PAGE)
        .await
        .expect("a page");

    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn listing_pending_members_without_members_manage_is_forbidden() {
    for admin_like in [false, true] {
        let mut fx = Fixture::new();
        if admin_like {
            fx.caller_has_custom_role("steward", &["group.manage", "invites.manage"]);
        } else {
            fx.caller_is(RoleName::MEMBER);
        }
        fx.repo.expect_members().never();
        let service = fx.service();

        let err = service
            .members(&slug(), caller(), MembershipStatus::Pending, None, 20)
            .await
            .expect_err("refused");
        assert!(matches!(err, ListMembersError::Forbidden), "{err:?}");
    }
}

#[tokio::test]
async fn join_requests_are_listed_to_members_manage_as_pending_members() {
    let rows = member_rows(3);
    let after = rows[0].1;
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    fx.repo
        .expect_members()
        .with(eq(group_id()), eq(MembershipStatus::Pending), eq(Some(after)), eq(2))
        .times(1)
        .returning(move |_, _, _, _| Ok(rows[1..].to_vec()));
    let service = fx.service();

    let page = service.join_requests(&slug(), caller(), Some(after), 1).await.expect("a page");

    assert_eq!(page.items.len(), 1);
    assert!(page.next_cursor.is_some());
}

#[tokio::test]
async fn join_requests_without_members_manage_are_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    let service = fx.service();

    let err = service.join_requests(&slug(), caller(), None, 20).await.expect_err("refused");

    assert!(matches!(err, ListMembersError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn strangers_and_pending_members_cannot_list_members() {
    for pending in [false, true] {
        let mut fx = Fixture::new();
        if pending {
            fx.caller_is_pending()
        } else {
            fx.caller_is_stranger()
        }
        let service = fx.service();

        let err = service
            .members(&slug(), caller(), MembershipStatus::Active, None, 20)
            .await
            .expect_err("hidden");

        assert!(matches!(err, ListMembersError::NotFound), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// change_role
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_changes_another_member_role_on_the_condition_of_their_present_role() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.target_is(RoleName::MEMBER, MembershipStatus::Active);
    let changes = fx.roles_changed();
    let service = fx.service();

    let changed =
        service.change_role(&slug(), caller(), target(), &role("seller")).await.expect("changed");

    assert_eq!(changes.one(), (target(), RoleName::MEMBER, role("seller")));
    assert_eq!(changed.role, role("seller"));
    assert_eq!(changed.member_id, target());
}

#[tokio::test]
async fn changing_a_role_without_members_manage_is_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage"]);
    fx.repo.expect_change_role().never();
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::MEMBER)
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn nobody_changes_their_own_role_not_even_an_owner() {
    for own in [RoleName::OWNER, RoleName::ADMIN] {
        let mut fx = Fixture::new();
        fx.caller_is(own.clone());
        fx.repo.expect_member().never();
        fx.repo.expect_change_role().never();
        let service = fx.service();

        let err = service
            .change_role(&slug(), caller(), caller(), &RoleName::MEMBER)
            .await
            .expect_err("refused");

        assert!(matches!(err, ChangeRoleError::CannotChangeOwnRole), "{own}: {err:?}");
    }
}

#[tokio::test]
async fn only_an_owner_grants_owner() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo.expect_change_role().never();
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::OWNER)
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn an_owner_grants_owner() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::ADMIN, MembershipStatus::Active);
    let changes = fx.roles_changed();
    let service = fx.service();

    service.change_role(&slug(), caller(), target(), &RoleName::OWNER).await.expect("granted");

    assert_eq!(changes.one(), (target(), RoleName::ADMIN, RoleName::OWNER));
}

#[tokio::test]
async fn only_an_owner_changes_the_role_of_an_owner() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.target_is(RoleName::OWNER, MembershipStatus::Active);
    fx.repo.expect_change_role().never();
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::MEMBER)
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn an_owner_demotes_another_owner() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::OWNER, MembershipStatus::Active);
    let changes = fx.roles_changed();
    let service = fx.service();

    service.change_role(&slug(), caller(), target(), &RoleName::ADMIN).await.expect("demoted");

    assert_eq!(changes.one(), (target(), RoleName::OWNER, RoleName::ADMIN));
}

#[tokio::test]
async fn the_last_owner_cannot_be_demoted() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::OWNER, MembershipStatus::Active);
    fx.repo
        .expect_change_role()
        .times(1)
        .returning(|_, _, _, _, _events| Err(ChangeRoleRefusal::LastOwner));
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::MEMBER)
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::LastOwner), "{err:?}");
}

#[tokio::test]
async fn a_role_the_group_does_not_have_is_refused_as_unknown() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::MEMBER, MembershipStatus::Active);
    fx.repo
        .expect_change_role()
        .returning(|_, _, _, _, _events| Err(ChangeRoleRefusal::UnknownRole));
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &role("ghost"))
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::UnknownRole), "{err:?}");
}

#[tokio::test]
async fn a_limited_manager_naming_an_unknown_role_is_refused_before_any_write() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    fx.custom_roles(vec![]);
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &role("ghost"))
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::UnknownRole), "{err:?}");
}

#[tokio::test]
async fn a_target_who_is_not_an_active_member_is_not_found() {
    for status in [None, Some(MembershipStatus::Pending)] {
        let mut fx = Fixture::new();
        fx.caller_is(RoleName::OWNER);
        match status {
            Some(s) => fx.target_is(RoleName::MEMBER, s),
            None => {
                fx.repo.expect_member().returning(|_, _| Ok(None));
            }
        }
        fx.repo.expect_change_role().never();
        let service = fx.service();

        let err = service
            .change_role(&slug(), caller(), target(), &RoleName::ADMIN)
            .await
            .expect_err("refused");

        assert!(matches!(err, ChangeRoleError::MemberNotFound), "{status:?}: {err:?}");
    }
}

#[tokio::test]
async fn a_target_removed_just_before_the_change_is_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::MEMBER, MembershipStatus::Active);
    fx.repo
        .expect_change_role()
        .returning(|_, _, _, _, _events| Err(ChangeRoleRefusal::MemberNotFound));
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::ADMIN)
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::MemberNotFound), "{err:?}");
}

#[tokio::test]
async fn a_target_whose_role_changed_meanwhile_is_judged_again_on_the_new_role() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    // First read: a plain member. Between that read and the change, someone made them owner.
    let reads = Arc::new(AtomicUsize::new(0));
    fx.repo.expect_member().times(2).returning(move |_, id| {
        let role = if reads.fetch_add(1, Ordering::SeqCst) == 0 {
            RoleName::MEMBER
        } else {
            RoleName::OWNER
        };
        Ok(Some(group_member(id, role, MembershipStatus::Active)))
    });
    fx.repo
        .expect_change_role()
        .withf(|_, _, expected, _, _events| *expected == RoleName::MEMBER)
        .times(1)
        .returning(|_, _, _, _, _events| Err(ChangeRoleRefusal::RoleChanged));
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::MEMBER)
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_change_retried_after_a_concurrent_change_expects_the_new_role() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let reads = Arc::new(AtomicUsize::new(0));
    fx.repo.expect_member().times(2).returning(move |_, id| {
        let role = if reads.fetch_add(1, Ordering::SeqCst) == 0 {
            RoleName::MEMBER
        } else {
            role("seller")
        };
        Ok(Some(group_member(id, role, MembershipStatus::Active)))
    });
    let expectations = Captured::new();
    let sink = expectations.clone();
    fx.repo.expect_change_role().times(2).returning(move |_, t, expected, role, _events| {
        sink.push(expected.clone());
        if *expected == RoleName::MEMBER {
            Err(ChangeRoleRefusal::RoleChanged)
        } else {
            Ok(group_member(t, role.clone(), MembershipStatus::Active))
        }
    });
    let service = fx.service();

    service.change_role(&slug(), caller(), target(), &RoleName::ADMIN).await.expect("changed");

    assert_eq!(expectations.all(), vec![RoleName::MEMBER, role("seller")]);
}

#[tokio::test]
async fn a_target_whose_role_keeps_changing_ends_in_an_unexpected_error() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::MEMBER, MembershipStatus::Active);
    fx.repo
        .expect_change_role()
        .times(3)
        .returning(|_, _, _, _, _events| Err(ChangeRoleRefusal::RoleChanged));
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::ADMIN)
        .await
        .expect_err("gives up");

    assert!(matches!(err, ChangeRoleError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_manager_cannot_grant_a_role_holding_a_permission_they_lack() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    fx.custom_roles(vec![custom("treasurer", &["billing.manage"])]);
    fx.repo.expect_change_role().never();
    let service = fx.service();

    for granted in [RoleName::ADMIN, role("treasurer")] {
        let err =
            service.change_role(&slug(), caller(), target(), &granted).await.expect_err("refused");
        assert!(matches!(err, ChangeRoleError::Forbidden), "{granted}: {err:?}");
    }
}

#[tokio::test]
async fn a_manager_cannot_change_the_role_of_a_member_who_holds_more_than_they_do() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    fx.target_is(RoleName::ADMIN, MembershipStatus::Active);
    fx.repo.expect_change_role().never();
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::MEMBER)
        .await
        .expect_err("refused");

    assert!(matches!(err, ChangeRoleError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_manager_grants_a_role_within_their_own_permissions() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage", "invites.manage"]);
    fx.custom_roles(vec![custom("recruiter", &["invites.manage"])]);
    fx.target_is(RoleName::MEMBER, MembershipStatus::Active);
    let changes = fx.roles_changed();
    let service = fx.service();

    service.change_role(&slug(), caller(), target(), &role("recruiter")).await.expect("granted");

    assert_eq!(changes.one(), (target(), RoleName::MEMBER, role("recruiter")));
}

#[tokio::test]
async fn a_pending_member_changing_roles_gets_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is_pending();
    let service = fx.service();

    let err = service
        .change_role(&slug(), caller(), target(), &RoleName::MEMBER)
        .await
        .expect_err("hidden");

    assert!(matches!(err, ChangeRoleError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// remove_member and leave
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_member_leaves_without_needing_any_permission() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    fx.repo
        .expect_member()
        .with(eq(group_id()), eq(caller()))
        .returning(|_, id| Ok(Some(group_member(id, RoleName::MEMBER, MembershipStatus::Active))));
    let removed = fx.members_removed();
    let service = fx.service();

    service.leave(&slug(), caller()).await.expect("left");

    assert_eq!(removed.one(), (caller(), RoleName::MEMBER));
}

#[tokio::test]
async fn the_last_owner_cannot_leave() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.repo
        .expect_member()
        .returning(|_, id| Ok(Some(group_member(id, RoleName::OWNER, MembershipStatus::Active))));
    fx.repo.expect_remove().times(1).returning(|_, _, _, _events| Err(RemoveRefusal::LastOwner));
    let service = fx.service();

    let err = service.remove_member(&slug(), caller(), caller()).await.expect_err("refused");

    assert!(matches!(err, RemoveMemberError::LastOwner), "{err:?}");
}

#[tokio::test]
async fn removing_another_member_needs_members_manage() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage"]);
    fx.repo.expect_member().never();
    fx.repo.expect_remove().never();
    let service = fx.service();

    let err = service.remove_member(&slug(), caller(), target()).await.expect_err("refused");

    assert!(matches!(err, RemoveMemberError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_member_with_members_manage_removes_another_member() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    fx.target_is(RoleName::MEMBER, MembershipStatus::Active);
    let removed = fx.members_removed();
    let service = fx.service();

    service.remove_member(&slug(), caller(), target()).await.expect("removed");

    assert_eq!(removed.one(), (target(), RoleName::MEMBER));
}

#[tokio::test]
async fn removing_an_owner_needs_an_owner() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.target_is(RoleName::OWNER, MembershipStatus::Active);
    fx.repo.expect_remove().never();
    let service = fx.service();

    let err = service.remove_member(&slug(), caller(), target()).await.expect_err("refused");

    assert!(matches!(err, RemoveMemberError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn an_owner_removes_another_owner() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::OWNER, MembershipStatus::Active);
    let removed = fx.members_removed();
    let service = fx.service();

    service.remove_member(&slug(), caller(), target()).await.expect("removed");

    assert_eq!(removed.one(), (target(), RoleName::OWNER));
}

#[tokio::test]
async fn the_last_owner_cannot_be_removed() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::OWNER, MembershipStatus::Active);
    fx.repo.expect_remove().times(1).returning(|_, _, _, _events| Err(RemoveRefusal::LastOwner));
    let service = fx.service();

    let err = service.remove_member(&slug(), caller(), target()).await.expect_err("refused");

    assert!(matches!(err, RemoveMemberError::LastOwner), "{err:?}");
}

#[tokio::test]
async fn removing_someone_who_is_not_an_active_member_is_not_found() {
    for status in [None, Some(MembershipStatus::Pending)] {
        let mut fx = Fixture::new();
        fx.caller_is(RoleName::OWNER);
        match status {
            Some(s) => fx.target_is(RoleName::MEMBER, s),
            None => {
                fx.repo.expect_member().returning(|_, _| Ok(None));
            }
        }
        fx.repo.expect_remove().never();
        let service = fx.service();

        let err = service.remove_member(&slug(), caller(), target()).await.expect_err("refused");

        assert!(matches!(err, RemoveMemberError::MemberNotFound), "{status:?}: {err:?}");
    }
}

#[tokio::test]
async fn a_member_removed_concurrently_is_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.target_is(RoleName::MEMBER, MembershipStatus::Active);
    fx.repo.expect_remove().returning(|_, _, _, _events| Err(RemoveRefusal::MemberNotFound));
    let service = fx.service();

    let err = service.remove_member(&slug(), caller(), target()).await.expect_err("refused");

    assert!(matches!(err, RemoveMemberError::MemberNotFound), "{err:?}");
}

#[tokio::test]
async fn a_manager_cannot_remove_a_member_who_holds_more_than_they_do() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    fx.custom_roles(vec![custom("treasurer", &["billing.manage", "members.manage"])]);
    fx.target_is(role("treasurer"), MembershipStatus::Active);
    fx.repo.expect_remove().never();
    let service = fx.service();

    let err = service.remove_member(&slug(), caller(), target()).await.expect_err("refused");

    assert!(matches!(err, RemoveMemberError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_removal_whose_target_was_made_owner_meanwhile_is_judged_again() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let reads = Arc::new(AtomicUsize::new(0));
    fx.repo.expect_member().times(2).returning(move |_, id| {
        let role = if reads.fetch_add(1, Ordering::SeqCst) == 0 {
            RoleName::MEMBER
        } else {
            RoleName::OWNER
        };
        Ok(Some(group_member(id, role, MembershipStatus::Active)))
    });
    fx.repo.expect_remove().times(1).returning(|_, _, _, _events| Err(RemoveRefusal::RoleChanged));
    let service = fx.service();

    let err = service.remove_member(&slug(), caller(), target()).await.expect_err("refused");

    assert!(matches!(err, RemoveMemberError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_stranger_removing_or_leaving_gets_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is_stranger();
    let service = fx.service();

    for who in [caller(), target()] {
        let err = service.remove_member(&slug(), caller(), who).await.expect_err("hidden");
        assert!(matches!(err, RemoveMemberError::NotFound), "{err:?}");
    }
}

#[tokio::test]
async fn a_pending_member_cannot_leave_and_gets_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is_pending();
    let service = fx.service();

    let err = service.leave(&slug(), caller()).await.expect_err("hidden");

    assert!(matches!(err, RemoveMemberError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// join
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn joining_an_open_group_makes_an_active_member_at_once() {
    let mut fx = Fixture::new();
    fx.caller_is_stranger();
    fx.repo
        .expect_join()
        .with(eq(group_id()), eq(caller()), eq(MembershipStatus::Active), eq(now()), always())
        .times(1)
        .returning(|_, _, _, _, _events| Ok(JoinRecord::Added));
    let service = fx.service();

    let status = service.join(&slug(), caller()).await.expect("joined");

    assert_eq!(status, MembershipStatus::Active);
}

#[tokio::test]
async fn joining_a_group_that_requires_approval_leaves_a_pending_request() {
    let mut fx = Fixture::new();
    fx.caller_in(Group { approval_required: true, ..group() }, None);
    fx.repo
        .expect_join()
        .with(eq(group_id()), eq(caller()), eq(MembershipStatus::Pending), eq(now()), always())
        .times(1)
        .returning(|_, _, _, _, _events| Ok(JoinRecord::Added));
    let service = fx.service();

    let status = service.join(&slug(), caller()).await.expect("requested");

    assert_eq!(status, MembershipStatus::Pending);
}

#[tokio::test]
async fn joining_again_while_active_answers_already_member() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    fx.repo.expect_join().never();
    let service = fx.service();

    let err = service.join(&slug(), caller()).await.expect_err("refused");

    assert!(matches!(err, JoinError::AlreadyMember), "{err:?}");
}

#[tokio::test]
async fn joining_again_while_pending_answers_pending_and_changes_nothing() {
    let mut fx = Fixture::new();
    fx.caller_is_pending();
    fx.repo.expect_join().never();
    let service = fx.service();

    assert_eq!(service.join(&slug(), caller()).await.expect("pending"), MembershipStatus::Pending);
    assert_eq!(service.join(&slug(), caller()).await.expect("pending"), MembershipStatus::Pending);
}

#[tokio::test]
async fn joining_an_unknown_group_is_not_found() {
    let mut fx = Fixture::new();
    fx.group_is_unknown();
    let service = fx.service();

    let err = service.join(&slug(), caller()).await.expect_err("unknown");

    assert!(matches!(err, JoinError::NotFound), "{err:?}");
}

#[tokio::test]
async fn a_concurrent_join_that_got_there_first_is_answered_like_a_repeat() {
    for (record, active) in [(JoinRecord::AlreadyActive, true), (JoinRecord::AlreadyPending, false)]
    {
        let mut fx = Fixture::new();
        fx.caller_is_stranger();
        fx.repo.expect_join().returning(move |_, _, _, _, _events| Ok(record));
        let service = fx.service();

        let outcome = service.join(&slug(), caller()).await;

        if active {
            assert!(matches!(outcome, Err(JoinError::AlreadyMember)), "{outcome:?}");
        } else {
            assert_eq!(outcome.expect("pending"), MembershipStatus::Pending);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// approve and reject
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_member_with_members_manage_approves_a_request_into_an_active_member() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("hr", &["members.manage"]);
    fx.repo
        .expect_approve()
        .with(eq(group_id()), eq(target()), eq(now()), always())
        .times(1)
        .returning(|_, id, _, _events| {
            Ok(Some(group_member(id, RoleName::MEMBER, MembershipStatus::Active)))
        });
    let service = fx.service();

    let approved = service.approve(&slug(), caller(), target()).await.expect("approved");

    assert_eq!(approved.member_id, target());
    assert_eq!(approved.status, MembershipStatus::Active);
    assert_eq!(approved.role, RoleName::MEMBER);
}

#[tokio::test]
async fn deciding_requests_without_members_manage_is_forbidden() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("steward", &["group.manage", "invites.manage"]);
    fx.repo.expect_approve().never();
    fx.repo.expect_reject().never();
    let service = fx.service();

    let err = service.approve(&slug(), caller(), target()).await.expect_err("refused");
    assert!(matches!(err, DecideRequestError::Forbidden), "{err:?}");
    let err = service.reject(&slug(), caller(), target()).await.expect_err("refused");
    assert!(matches!(err, DecideRequestError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn approving_a_request_that_is_no_longer_pending_is_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo.expect_approve().returning(|_, _, _, _events| Ok(None));
    let service = fx.service();

    let err = service.approve(&slug(), caller(), target()).await.expect_err("settled");

    assert!(matches!(err, DecideRequestError::RequestNotFound), "{err:?}");
}

#[tokio::test]
async fn a_member_with_members_manage_rejects_a_request() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo
        .expect_reject()
        .with(eq(group_id()), eq(target()), always())
        .times(1)
        .returning(|_, _, _events| Ok(true));
    let service = fx.service();

    service.reject(&slug(), caller(), target()).await.expect("rejected");
}

#[tokio::test]
async fn rejecting_a_request_already_decided_is_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    fx.repo.expect_reject().returning(|_, _, _events| Ok(false));
    let service = fx.service();

    let err = service.reject(&slug(), caller(), target()).await.expect_err("settled");

    assert!(matches!(err, DecideRequestError::RequestNotFound), "{err:?}");
}

#[tokio::test]
async fn a_pending_member_deciding_requests_gets_not_found() {
    let mut fx = Fixture::new();
    fx.caller_is_pending();
    let service = fx.service();

    let err = service.approve(&slug(), caller(), target()).await.expect_err("hidden");

    assert!(matches!(err, DecideRequestError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// current group
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn setting_the_current_group_leaves_the_membership_check_to_the_atomic_write() {
    let mut fx = Fixture::new();
    fx.repo.expect_find_for_member().never();
    fx.repo
        .expect_set_current_group()
        .withf(|m, s| *m == caller() && s.as_str() == SLUG)
        .times(1)
        .returning(|_, _| Ok(()));
    let service = fx.service();

    service.set_current_group(caller(), &slug()).await.expect("set");
}

#[tokio::test]
async fn a_group_one_is_not_an_active_member_of_cannot_be_made_current() {
    let mut fx = Fixture::new();
    fx.repo.expect_set_current_group().returning(|_, _| Err(SetCurrentGroupError::NotAMember));
    let service = fx.service();

    let err = service.set_current_group(caller(), &slug()).await.expect_err("refused");

    assert!(matches!(err, SetCurrentGroupError::NotAMember), "{err:?}");
}

#[tokio::test]
async fn an_unknown_group_cannot_be_made_current() {
    let mut fx = Fixture::new();
    fx.repo.expect_set_current_group().returning(|_, _| Err(SetCurrentGroupError::NotFound));
    let service = fx.service();

    let err = service.set_current_group(caller(), &slug()).await.expect_err("unknown");

    assert!(matches!(err, SetCurrentGroupError::NotFound), "{err:?}");
}

#[tokio::test]
async fn clearing_the_current_group_always_succeeds() {
    let mut fx = Fixture::new();
    fx.repo.expect_clear_current_group().with(eq(caller())).times(2).returning(|_| Ok(()));
    let service = fx.service();

    service.clear_current_group(caller()).await.expect("cleared");
    service.clear_current_group(caller()).await.expect("cleared again");
}

#[tokio::test]
async fn a_failing_repository_on_clearing_the_current_group_is_unexpected() {
    let mut fx = Fixture::new();
    fx.repo.expect_clear_current_group().returning(|_| Err(anyhow::anyhow!("db down")));
    let service = fx.service();

    assert!(service.clear_current_group(caller()).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// authorize and grantable_role
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn authorize_answers_the_group_and_role_of_a_member_holding_the_permission() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("recruiter", &["invites.manage"]);
    let service = fx.service();

    let (g, r) =
        service.authorize(&slug(), caller(), &Permission::INVITES_MANAGE).await.expect("allowed");

    assert_eq!((g, r), (group(), role("recruiter")));
}

#[tokio::test]
async fn authorize_refuses_an_active_member_without_the_permission() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::MEMBER);
    let service = fx.service();

    let err = service
        .authorize(&slug(), caller(), &Permission::INVITES_MANAGE)
        .await
        .expect_err("refused");

    assert!(matches!(err, AuthorizeError::Forbidden(p) if p == Permission::INVITES_MANAGE));
}

#[tokio::test]
async fn authorize_treats_strangers_pending_members_and_unknown_groups_alike() {
    for case in 0..3 {
        let mut fx = Fixture::new();
        match case {
            0 => fx.caller_is_stranger(),
            1 => fx.caller_is_pending(),
            _ => fx.group_is_unknown(),
        }
        let service = fx.service();

        let err = service
            .authorize(&slug(), caller(), &Permission::MESSAGES_SEND)
            .await
            .expect_err("hidden");

        assert!(matches!(err, AuthorizeError::NotFound), "case {case}: {err:?}");
    }
}

#[tokio::test]
async fn an_admin_holds_the_deployment_extra_permissions_too() {
    let mut fx = Fixture::new();
    fx.config.extra_permissions = vec![perm("customers.read")];
    fx.caller_is(RoleName::ADMIN);
    let service = fx.service();

    service.authorize(&slug(), caller(), &perm("customers.read")).await.expect("allowed");
}

#[tokio::test]
async fn a_stored_permission_the_deployment_no_longer_declares_allows_nothing() {
    let mut fx = Fixture::new();
    fx.caller_has_custom_role("sales", &["customers.read"]);
    let service = fx.service();

    let err =
        service.authorize(&slug(), caller(), &perm("customers.read")).await.expect_err("refused");

    assert!(matches!(err, AuthorizeError::Forbidden(_)), "{err:?}");
}

#[tokio::test]
async fn only_an_owner_may_grant_owner() {
    let fx = Fixture::new();
    let service = fx.service();

    let err = service
        .grantable_role(&group(), &RoleName::ADMIN, &RoleName::OWNER)
        .await
        .expect_err("refused");
    assert!(matches!(err, GrantRoleError::Forbidden), "{err:?}");

    let granted =
        service.grantable_role(&group(), &RoleName::OWNER, &RoleName::OWNER).await.expect("ok");
    assert!(granted.builtin && granted.name.is_owner());
}

#[tokio::test]
async fn an_admin_may_grant_admin_and_member_without_a_look_at_storage() {
    let fx = Fixture::new();
    let service = fx.service();

    for r in [RoleName::ADMIN, RoleName::MEMBER] {
        let granted = service.grantable_role(&group(), &RoleName::ADMIN, &r).await.expect("ok");
        assert_eq!(granted.name, r);
    }
}

#[tokio::test]
async fn a_role_the_group_does_not_have_cannot_be_granted() {
    let mut fx = Fixture::new();
    fx.custom_roles(vec![custom("seller", &["messages.send"])]);
    let service = fx.service();

    let err = service
        .grantable_role(&group(), &RoleName::OWNER, &role("ghost"))
        .await
        .expect_err("refused");

    assert!(matches!(err, GrantRoleError::UnknownRole), "{err:?}");
}

#[tokio::test]
async fn a_granter_with_a_custom_role_grants_only_roles_within_their_permissions() {
    let mut fx = Fixture::new();
    fx.custom_roles(vec![
        custom("recruiter", &["invites.manage"]),
        custom("seller", &["messages.send"]),
    ]);
    let service = fx.service();
    let recruiter = role("recruiter");

    for r in [RoleName::MEMBER, role("recruiter")] {
        service.grantable_role(&group(), &recruiter, &r).await.expect("within reach");
    }
    for r in [RoleName::ADMIN, role("seller")] {
        let err = service.grantable_role(&group(), &recruiter, &r).await.expect_err("beyond");
        assert!(matches!(err, GrantRoleError::Forbidden), "{r}: {err:?}");
    }
}

#[tokio::test]
async fn the_service_exposes_the_catalog_of_its_configuration() {
    let mut fx = Fixture::new();
    fx.config.extra_permissions = vec![perm("customers.read"), perm("estimates.write")];
    let service = fx.service();

    assert_eq!(service.catalog().all().len(), 8);
    assert!(format!("{service:?}").contains("GroupsService"));
}

// ---------------------------------------------------------------------------------------------
// Events: what each change hands storage to record with it
// ---------------------------------------------------------------------------------------------

/// The typed events of records handed to storage.
fn typed(events: &[Event]) -> Vec<GroupEvent> {
    events.iter().map(|e| e.decode::<GroupEvent>().expect("a group event")).collect()
}

#[tokio::test]
async fn a_join_request_records_that_it_was_requested() {
    let mut fx = Fixture::new();
    fx.caller_in(Group { approval_required: true, ..group() }, None);
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_join().times(1).returning(move |_, _, _, _, events| {
        sink.push(typed(events));
        Ok(JoinRecord::Added)
    });

    fx.service().join(&slug(), caller()).await.expect("requested");

    let expected = GroupEvent::JoinRequested { group_id: group_id(), member_id: caller() };
    assert_eq!(seen.all(), [vec![expected]]);
}

#[tokio::test]
async fn joining_an_open_group_records_a_member_joined_by_join() {
    let mut fx = Fixture::new();
    fx.caller_is_stranger();
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_join().times(1).returning(move |_, _, _, at, events| {
        assert!(events.iter().all(|e| e.occurred_at == at && e.group == Some(group_id())));
        sink.push(typed(events));
        Ok(JoinRecord::Added)
    });

    fx.service().join(&slug(), caller()).await.expect("joined");

    let expected = GroupEvent::MemberJoined {
        group_id: group_id(),
        member_id: caller(),
        role: "member".to_owned(),
        via: JoinedVia::Join,
    };
    assert_eq!(seen.all(), [vec![expected]]);
}

#[tokio::test]
async fn approving_records_the_approval_and_the_new_member() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_approve().times(1).returning(move |_, id, _, events| {
        sink.push(typed(events));
        Ok(Some(group_member(id, RoleName::MEMBER, MembershipStatus::Active)))
    });

    fx.service().approve(&slug(), caller(), target()).await.expect("approved");

    let events = seen.all().concat();
    assert_eq!(
        events,
        [
            GroupEvent::JoinApproved { group_id: group_id(), member_id: target(), by: caller() },
            GroupEvent::MemberJoined {
                group_id: group_id(),
                member_id: target(),
                role: "member".to_owned(),
                via: JoinedVia::Approval,
            },
        ]
    );
}

#[tokio::test]
async fn rejecting_records_who_rejected_whom() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::ADMIN);
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_reject().times(1).returning(move |_, _, events| {
        sink.push(typed(events));
        Ok(true)
    });

    fx.service().reject(&slug(), caller(), target()).await.expect("rejected");

    let rejected =
        GroupEvent::JoinRejected { group_id: group_id(), member_id: target(), by: caller() };
    assert_eq!(seen.all(), [vec![rejected]]);
}

#[tokio::test]
async fn a_role_change_records_the_old_and_new_role_and_a_change_to_the_same_role_records_nothing()
{
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::MEMBER, MembershipStatus::Active);
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_change_role().times(2).returning(move |_, t, _, role, events| {
        sink.push(typed(events));
        Ok(group_member(t, role.clone(), MembershipStatus::Active))
    });
    let service = fx.service();

    service.change_role(&slug(), caller(), target(), &RoleName::ADMIN).await.expect("changed");
    service.change_role(&slug(), caller(), target(), &RoleName::MEMBER).await.expect("same");

    let changed = GroupEvent::MemberRoleChanged {
        group_id: group_id(),
        member_id: target(),
        from: "member".to_owned(),
        to: "admin".to_owned(),
        by: caller(),
    };
    assert_eq!(seen.all(), [vec![changed], vec![]]);
}

#[tokio::test]
async fn a_removal_records_the_member_removed_and_by_whom() {
    let mut fx = Fixture::new();
    fx.caller_is(RoleName::OWNER);
    fx.target_is(RoleName::ADMIN, MembershipStatus::Active);
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_remove().times(1).returning(move |_, _, _, events| {
        sink.push(typed(events));
        Ok(())
    });

    fx.service().remove_member(&slug(), caller(), target()).await.expect("removed");

    let removed = GroupEvent::MemberRemoved {
        group_id: group_id(),
        member_id: target(),
        role: "admin".to_owned(),
        by: caller(),
    };
    assert_eq!(seen.all(), [vec![removed]]);
}

#[tokio::test]
async fn creating_a_group_records_it_and_its_first_owner() {
    let fx = Fixture::new();
    let mut fx = fx;
    let seen = Captured::new();
    let sink = seen.clone();
    fx.repo.expect_create().times(1).returning(move |g, events| {
        sink.push(typed(events));
        Ok(stored(g))
    });

    let made = fx.service().create_group(caller(), create_request(Some("acme"))).await;
    let made = made.expect("created");

    let group_id = made.group.id;
    assert_eq!(
        seen.all().concat(),
        [
            GroupEvent::Created {
                group_id,
                slug: "acme".to_owned(),
                name: "Acme Corp.".to_owned(),
                owner_id: caller(),
            },
            GroupEvent::MemberJoined {
                group_id,
                member_id: caller(),
                role: "owner".to_owned(),
                via: JoinedVia::Created,
            },
        ]
    );
}

#[tokio::test]
async fn the_holders_of_a_permission_are_owners_admins_and_the_custom_roles_holding_it() {
    let mut fx = Fixture::new();
    fx.custom_roles(vec![
        custom("hr", &["members.manage"]),
        custom("finance", &["billing.manage"]),
        custom("stale", &["no.longer.known"]),
    ]);
    fx.repo
        .expect_active_members_with_roles()
        .withf(|g, roles| {
            *g == group_id() && roles == [RoleName::OWNER, RoleName::ADMIN, role("hr")]
        })
        .times(1)
        .returning(|_, _| Ok(vec![caller(), target()]));

    let holders = fx.service().holders_of(group_id(), &Permission::MEMBERS_MANAGE).await;

    assert_eq!(holders.expect("read"), [caller(), target()]);
}
