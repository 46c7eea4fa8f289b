use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use onboard_groups::ports::{GroupRepository, JoinRecord, NewGroup};
use onboard_groups::{
    ChangeRoleRefusal, CreateGroupError, Group, GroupCursor, GroupName, GroupPatch, MemberCursor,
    MembershipStatus, Permission, RemoveRefusal, RoleName, RoleRefusal, SetCurrentGroupError, Slug,
};
use onboard_kernel::{GroupId, MemberId};
use onboard_members::ports::{MemberRepository, NewWorkspace, SignInRequest};
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{PgGroupRepository, PgMemberRepository, connect};
use tokio::sync::Barrier;

use crate::{now, phone, rows, sign_in};

/// The repositories of one test database.
pub struct Fixture {
    pub db: TestDatabase,
    pub members: PgMemberRepository,
    pub groups: PgGroupRepository,
    pub t: DateTime<Utc>,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::on(TestDatabase::new().await, 8).await
    }

    /// A fixture whose repositories share a pool of `size` connections (for races).
    pub async fn with_pool(size: usize) -> Self {
        Self::on(TestDatabase::new().await, size).await
    }

    async fn on(db: TestDatabase, size: usize) -> Self {
        let pool = connect(db.url(), size).await.expect("a pool");
        let members = PgMemberRepository::new(pool.clone());
        let groups = PgGroupRepository::new(pool);
        Self { db, members, groups, t: now() }
    }

    /// A new member with phone `n` and no personal workspace.
    pub async fn member(&self, n: u32) -> MemberId {
        self.members.sign_in(sign_in(&phone(n), self.t)).await.expect("signs up").member.id
    }

    /// A new group `slug` owned by `owner`, created at `self.t`.
    pub async fn group(&self, slug: &str, owner: MemberId) -> Group {
        self.groups.create(&new_group(slug, owner, self.t), &[]).await.expect("creates")
    }

    /// `member` joins `group` as an active `member` at `at`.
    pub async fn join(&self, group: GroupId, member: MemberId, at: DateTime<Utc>) {
        let joined = self.groups.join(group, member, MembershipStatus::Active, at, &[]).await;
        assert_eq!(joined.expect("joins"), JoinRecord::Added);
    }

    /// `member` joins `group` and is made one of its owners.
    pub async fn co_owner(&self, group: GroupId, member: MemberId) {
        self.join(group, member, self.t).await;
        self.groups
            .change_role(group, member, &RoleName::MEMBER, &RoleName::OWNER, &[])
            .await
            .expect("promotes");
    }

    /// The active owners of `group`.
    pub async fn owners(&self, group: GroupId) -> BTreeSet<MemberId> {
        let members =
            self.groups.members(group, MembershipStatus::Active, None, 100).await.expect("lists");
        members.into_iter().filter(|(m, _)| m.role.is_owner()).map(|(m, _)| m.member_id).collect()
    }

    /// The slug of `member`'s current group.
    pub async fn current_group(&self, member: MemberId) -> Option<String> {
        self.members.get(member).await.expect("gets").expect("a live member").current_group
    }
}

pub fn new_group(slug: &str, owner: MemberId, at: DateTime<Utc>) -> NewGroup {
    NewGroup {
        id: GroupId::new(),
        slug: Slug::parse(slug).expect("a slug"),
        name: GroupName::parse(&format!("Group {slug}")).expect("a name"),
        approval_required: false,
        owner,
        now: at,
    }
}

/// `request` with a personal workspace.
pub fn with_workspace(mut request: SignInRequest) -> SignInRequest {
    request.personal_workspace = Some(NewWorkspace {
        id: GroupId::new(),
        slug: Slug::personal().as_str().to_owned(),
        name: "Personal workspace".to_owned(),
    });
    request
}

fn slug(s: &str) -> Slug {
    Slug::parse(s).expect("a slug")
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).expect("a role name")
}

fn perms(names: &[&str]) -> BTreeSet<Permission> {
    names.iter().map(|n| Permission::parse(n).expect("a permission")).collect()
}

// ---- create, find, list ------------------------------------------------------------------

#[tokio::test]
async fn a_new_group_has_its_creator_as_active_owner() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;

    let group = f.group("acme", ann).await;

    assert_eq!(group.slug, slug("acme"));
    assert_eq!(group.name.as_str(), "Group acme");
    assert!(!group.approval_required);
    assert_eq!(group.created_at, f.t);
    let (found, membership) =
        f.groups.find_for_member(&slug("acme"), ann).await.expect("finds").expect("exists");
    assert_eq!(found, group);
    let membership = membership.expect("a membership");
    assert_eq!(membership.role, RoleName::OWNER);
    assert_eq!(membership.status, MembershipStatus::Active);
    assert!(membership.role_permissions.is_empty());
    let me = f.groups.member(group.id, ann).await.expect("gets").expect("a member");
    assert_eq!(
        (me.role, me.status, me.joined_at),
        (RoleName::OWNER, MembershipStatus::Active, f.t)
    );
    assert_eq!(me.phone, Some(phone(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_slug_is_refused_and_of_concurrent_creates_one_wins() {
    let f = Fixture::with_pool(8).await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    f.group("acme", ann).await;

    let again = f.groups.create(&new_group("acme", bob, f.t), &[]).await;
    assert!(matches!(again, Err(CreateGroupError::SlugTaken)), "{again:?}");
    assert_eq!(rows(&f.db.pool(), "groups").await, 1);
    assert_eq!(rows(&f.db.pool(), "group_members").await, 1, "nothing written");

    let start = Arc::new(Barrier::new(6));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (groups, start) = (f.groups.clone(), start.clone());
            let group = new_group("race", bob, f.t);
            tokio::spawn(async move {
                start.wait().await;
                groups.create(&group, &[]).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("the task ran") {
            Ok(_) => created += 1,
            Err(CreateGroupError::SlugTaken) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(rows(&f.db.pool(), "groups").await, 2);
    assert_eq!(rows(&f.db.pool(), "group_members").await, 2);
}

#[tokio::test]
async fn a_member_finds_a_group_with_their_membership_and_a_stranger_without() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cy = f.member(3).await;
    let group = f.group("acme", ann).await;
    f.groups
        .create_role(group.id, &role("billing"), &perms(&["billing.manage"]))
        .await
        .expect("creates the role");
    f.join(group.id, bob, f.t).await;
    f.groups
        .change_role(group.id, bob, &RoleName::MEMBER, &role("billing"), &[])
        .await
        .expect("sets");
    f.groups.join(group.id, cy, MembershipStatus::Pending, f.t, &[]).await.expect("asks");

    let (_, bobs) =
        f.groups.find_for_member(&slug("acme"), bob).await.expect("finds").expect("a group");
    let bobs = bobs.expect("a membership");
    assert_eq!(bobs.role, role("billing"));
    assert_eq!(bobs.role_permissions, perms(&["billing.manage"]));
    let (_, cys) =
        f.groups.find_for_member(&slug("acme"), cy).await.expect("finds").expect("a group");
    assert_eq!(cys.expect("a membership").status, MembershipStatus::Pending);
    let stranger = f.groups.find_for_member(&slug("acme"), MemberId::new()).await.expect("finds");
    assert_eq!(stranger.map(|(g, m)| (g.id, m)), Some((group.id, None)));
    assert_eq!(f.groups.find_for_member(&slug("nope"), ann).await.expect("finds"), None);
}

#[tokio::test]
async fn my_groups_are_my_active_memberships_in_join_order_paged_without_gap_or_repeat() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let mut expected = Vec::new();
    // Five groups joined at one instant (ties broken by group id), two later, one pending.
    for i in 0..7 {
        let group = f.group(&format!("g-{i}"), ann).await;
        let at = if i < 5 { f.t } else { f.t + Duration::seconds(i) };
        f.join(group.id, bob, at).await;
        expected.push((at, group.id));
    }
    let pending = f.group("pending", ann).await;
    f.groups.join(pending.id, bob, MembershipStatus::Pending, f.t, &[]).await.expect("asks");
    expected.sort();

    let mut seen = Vec::new();
    let mut after: Option<GroupCursor> = None;
    loop {
        let page = f.groups.list_mine(bob, after, 2).await.expect("lists");
        assert!(page.len() <= 2);
        let Some((_, last)) = page.last() else { break };
        after = Some(*last);
        for (mine, cursor) in page {
            assert_eq!(mine.my_role, RoleName::MEMBER);
            assert_eq!(cursor.group_id, mine.group.id);
            seen.push((cursor.joined_at, mine.group.id));
        }
    }
    assert_eq!(seen, expected);
    let owned = f.groups.list_mine(ann, None, 100).await.expect("lists");
    assert_eq!(owned.len(), 8);
    assert!(owned.iter().all(|(g, _)| g.my_role == RoleName::OWNER));
}

#[tokio::test]
async fn member_pages_run_in_join_order_with_ties_and_keep_statuses_apart() {
    let f = Fixture::new().await;
    let owner = f.member(100).await;
    let group = f.group("acme", owner).await;
    let mut active = vec![(f.t, owner)];
    let mut pending = Vec::new();
    for n in 0..6 {
        let m = f.member(n).await;
        let at = f.t + Duration::seconds(i64::from(n % 2));
        if n < 4 {
            f.join(group.id, m, at).await;
            active.push((at, m));
        } else {
            f.groups.join(group.id, m, MembershipStatus::Pending, at, &[]).await.expect("asks");
            pending.push((at, m));
        }
    }
    active.sort();
    pending.sort();

    for (status, expected) in
        [(MembershipStatus::Active, active), (MembershipStatus::Pending, pending)]
    {
        let mut seen = Vec::new();
        let mut after: Option<MemberCursor> = None;
        loop {
            let page = f.groups.members(group.id, status, after, 2).await.expect("lists");
            let Some((_, last)) = page.last() else { break };
            after = Some(*last);
            for (member, cursor) in page {
                assert_eq!(member.status, status);
                assert_eq!(cursor.member_id, member.member_id);
                seen.push((member.joined_at, member.member_id));
            }
        }
        assert_eq!(seen, expected, "{status}");
    }
}

// ---- update, delete ----------------------------------------------------------------------

#[tokio::test]
async fn a_patch_changes_only_what_it_names_and_a_gone_group_is_none() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;

    let renamed = GroupPatch {
        name: Some(GroupName::parse("Acme Inc").expect("a name")),
        ..GroupPatch::default()
    };
    let changed = f.groups.update(group.id, &renamed).await.expect("updates").expect("exists");
    assert_eq!(changed.name.as_str(), "Acme Inc");
    assert!(!changed.approval_required);
    let gated = GroupPatch { approval_required: Some(true), ..GroupPatch::default() };
    let changed = f.groups.update(group.id, &gated).await.expect("updates").expect("exists");
    assert_eq!(changed.name.as_str(), "Acme Inc");
    assert!(changed.approval_required);
    assert_eq!(changed.slug, group.slug);

    assert_eq!(f.groups.update(GroupId::new(), &gated).await.expect("answers"), None);
}

#[tokio::test]
async fn deleting_a_group_takes_its_memberships_and_roles_and_clears_everyones_current_group() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    let other = f.group("other", bob).await;
    f.join(group.id, bob, f.t).await;
    f.groups.create_role(group.id, &role("ops"), &perms(&[])).await.expect("creates");
    f.groups.set_current_group(ann, &slug("acme")).await.expect("sets");
    f.groups.set_current_group(bob, &slug("acme")).await.expect("sets");

    assert!(f.groups.delete(group.id, &[]).await.expect("deletes"));

    assert_eq!(f.current_group(ann).await, None);
    assert_eq!(f.current_group(bob).await, None);
    assert_eq!(f.groups.find_for_member(&slug("acme"), ann).await.expect("finds"), None);
    assert_eq!(rows(&f.db.pool(), "group_roles").await, 0);
    assert_eq!(rows(&f.db.pool(), "group_members").await, 1, "only the other group's owner");
    assert!(f.groups.member(other.id, bob).await.expect("gets").is_some());
    assert!(!f.groups.delete(group.id, &[]).await.expect("answers"), "already gone");
}

// ---- custom roles ------------------------------------------------------------------------

#[tokio::test]
async fn custom_roles_are_created_once_changed_and_listed_by_name() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let other = f.group("other", ann).await;

    let ops = f
        .groups
        .create_role(group.id, &role("ops"), &perms(&["messages.send"]))
        .await
        .expect("creates");
    assert_eq!((ops.name.as_str(), ops.builtin), ("ops", false));
    f.groups.create_role(group.id, &role("billing"), &perms(&[])).await.expect("creates");
    f.groups.create_role(other.id, &role("ops"), &perms(&[])).await.expect("another group may");
    let again = f.groups.create_role(group.id, &role("ops"), &perms(&[])).await;
    assert!(matches!(again, Err(RoleRefusal::Exists)), "{again:?}");

    let changed = f
        .groups
        .update_role(group.id, &role("ops"), &perms(&["invites.manage", "messages.send"]))
        .await
        .expect("updates");
    assert_eq!(changed.permissions, perms(&["invites.manage", "messages.send"]));
    let missing = f.groups.update_role(group.id, &role("nope"), &perms(&[])).await;
    assert!(matches!(missing, Err(RoleRefusal::NotFound)), "{missing:?}");

    let listed = f.groups.custom_roles(group.id).await.expect("lists");
    let names: Vec<_> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["billing", "ops"]);
    assert_eq!(listed[1].permissions, perms(&["invites.manage", "messages.send"]));
    assert!(listed.iter().all(|r| !r.builtin));
}

#[tokio::test]
async fn deleting_a_role_moves_its_active_and_pending_members_to_member() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cy = f.member(3).await;
    let group = f.group("acme", ann).await;
    f.groups.create_role(group.id, &role("ops"), &perms(&[])).await.expect("creates");
    f.join(group.id, bob, f.t).await;
    f.groups.change_role(group.id, bob, &RoleName::MEMBER, &role("ops"), &[]).await.expect("sets");
    f.groups.join(group.id, cy, MembershipStatus::Pending, f.t, &[]).await.expect("asks");
    // A pending member holding the role (left by an earlier version of the rules).
    let mut conn = f.db.pool().get().await.expect("a connection");
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE group_members SET role = 'ops' WHERE status = 'pending'"),
        &mut conn,
    )
    .await
    .expect("updates");
    drop(conn);

    f.groups.delete_role(group.id, &role("ops")).await.expect("deletes");

    assert_eq!(
        f.groups.member(group.id, bob).await.expect("gets").expect("a member").role,
        RoleName::MEMBER
    );
    assert_eq!(
        f.groups.member(group.id, cy).await.expect("gets").expect("a member").role,
        RoleName::MEMBER
    );
    assert_eq!(
        f.groups.member(group.id, ann).await.expect("gets").expect("a member").role,
        RoleName::OWNER
    );
    assert!(f.groups.custom_roles(group.id).await.expect("lists").is_empty());
    let again = f.groups.delete_role(group.id, &role("ops")).await;
    assert!(matches!(again, Err(RoleRefusal::NotFound)), "{again:?}");
}

// ---- role changes and removals -----------------------------------------------------------

#[tokio::test]
async fn a_role_change_is_refused_in_order_of_precedence_and_writes_nothing() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cy = f.member(3).await;
    let group = f.group("acme", ann).await;
    f.join(group.id, bob, f.t).await;
    f.groups.join(group.id, cy, MembershipStatus::Pending, f.t, &[]).await.expect("asks");

    // Not an active member (a stranger, a pending member), whatever else is wrong.
    let r =
        f.groups.change_role(group.id, MemberId::new(), &RoleName::ADMIN, &role("nope"), &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::MemberNotFound)), "{r:?}");
    let r = f.groups.change_role(group.id, cy, &RoleName::MEMBER, &RoleName::ADMIN, &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::MemberNotFound)), "{r:?}");
    // The role is no longer the one judged, before the new role is looked at.
    let r = f.groups.change_role(group.id, bob, &RoleName::ADMIN, &role("nope"), &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::RoleChanged)), "{r:?}");
    let r = f.groups.change_role(group.id, bob, &RoleName::MEMBER, &role("nope"), &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::UnknownRole)), "{r:?}");
    // An unknown role is refused before the last-owner rule is looked at.
    let r = f.groups.change_role(group.id, ann, &RoleName::OWNER, &role("nope"), &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::UnknownRole)), "{r:?}");
    let r = f.groups.change_role(group.id, ann, &RoleName::OWNER, &RoleName::ADMIN, &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::LastOwner)), "{r:?}");
    assert_eq!(f.owners(group.id).await, BTreeSet::from([ann]));
    assert_eq!(
        f.groups.member(group.id, bob).await.expect("gets").expect("a member").role,
        RoleName::MEMBER
    );

    let admin = f
        .groups
        .change_role(group.id, bob, &RoleName::MEMBER, &RoleName::ADMIN, &[])
        .await
        .expect("changes");
    assert_eq!(
        (admin.member_id, admin.role, admin.status),
        (bob, RoleName::ADMIN, MembershipStatus::Active)
    );
    f.groups
        .change_role(group.id, bob, &RoleName::ADMIN, &RoleName::OWNER, &[])
        .await
        .expect("promotes");
    let demoted =
        f.groups.change_role(group.id, ann, &RoleName::OWNER, &RoleName::MEMBER, &[]).await;
    assert_eq!(demoted.expect("another owner remains").role, RoleName::MEMBER);
    assert_eq!(f.owners(group.id).await, BTreeSet::from([bob]));
}

#[tokio::test]
async fn a_removal_is_refused_in_order_of_precedence_and_clears_only_this_current_group() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cy = f.member(3).await;
    let group = f.group("acme", ann).await;
    f.group("other", cy).await;
    f.join(group.id, bob, f.t).await;
    f.join(group.id, cy, f.t).await;
    f.groups.set_current_group(bob, &slug("acme")).await.expect("sets");
    f.groups.set_current_group(cy, &slug("other")).await.expect("sets");

    let r = f.groups.remove(group.id, MemberId::new(), &RoleName::MEMBER, &[]).await;
    assert!(matches!(r, Err(RemoveRefusal::MemberNotFound)), "{r:?}");
    let r = f.groups.remove(group.id, bob, &RoleName::ADMIN, &[]).await;
    assert!(matches!(r, Err(RemoveRefusal::RoleChanged)), "{r:?}");
    let r = f.groups.remove(group.id, ann, &RoleName::OWNER, &[]).await;
    assert!(matches!(r, Err(RemoveRefusal::LastOwner)), "{r:?}");
    assert_eq!(rows(&f.db.pool(), "group_members").await, 4, "nothing written");

    f.groups.remove(group.id, bob, &RoleName::MEMBER, &[]).await.expect("removes");
    f.groups.remove(group.id, cy, &RoleName::MEMBER, &[]).await.expect("removes");

    assert_eq!(f.groups.member(group.id, bob).await.expect("gets"), None);
    assert_eq!(f.current_group(bob).await, None, "it was this group");
    assert_eq!(f.current_group(cy).await.as_deref(), Some("other"), "it was another group");
    let r = f.groups.remove(group.id, bob, &RoleName::MEMBER, &[]).await;
    assert!(matches!(r, Err(RemoveRefusal::MemberNotFound)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_demoting_each_other_at_once_always_leave_an_owner() {
    let f = Fixture::with_pool(8).await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    for round in 0..20 {
        let group = f.group(&format!("race-{round}"), ann).await;
        f.co_owner(group.id, bob).await;

        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [ann, bob]
            .into_iter()
            .map(|target| {
                let (groups, start) = (f.groups.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    groups
                        .change_role(group.id, target, &RoleName::OWNER, &RoleName::ADMIN, &[])
                        .await
                })
            })
            .collect();
        let mut changed = 0;
        for task in tasks {
            match task.await.expect("the task ran") {
                Ok(_) => changed += 1,
                Err(ChangeRoleRefusal::LastOwner) => {}
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!(changed, 1, "round {round}");
        assert_eq!(f.owners(group.id).await.len(), 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_removing_each_other_at_once_always_leave_an_owner() {
    let f = Fixture::with_pool(8).await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    for round in 0..20 {
        let group = f.group(&format!("race-{round}"), ann).await;
        f.co_owner(group.id, bob).await;

        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [ann, bob]
            .into_iter()
            .map(|target| {
                let (groups, start) = (f.groups.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    groups.remove(group.id, target, &RoleName::OWNER, &[]).await
                })
            })
            .collect();
        let mut removed = 0;
        for task in tasks {
            match task.await.expect("the task ran") {
                Ok(()) => removed += 1,
                Err(RemoveRefusal::LastOwner) => {}
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!(removed, 1, "round {round}");
        assert_eq!(f.owners(group.id).await.len(), 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removal_racing_a_current_group_change_never_leaves_the_removed_member_on_it() {
    let f = Fixture::with_pool(8).await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    for round in 0..20 {
        let s = format!("race-{round}");
        let group = f.group(&s, ann).await;
        f.join(group.id, bob, f.t).await;

        let start = Arc::new(Barrier::new(2));
        let (groups, go) = (f.groups.clone(), start.clone());
        let set = tokio::spawn(async move {
            go.wait().await;
            groups.set_current_group(bob, &slug(&s)).await
        });
        let (groups, go) = (f.groups.clone(), start.clone());
        let removal = tokio::spawn(async move {
            go.wait().await;
            groups.remove(group.id, bob, &RoleName::MEMBER, &[]).await
        });
        removal.await.expect("the task ran").expect("removes");
        match set.await.expect("the task ran") {
            Ok(()) | Err(SetCurrentGroupError::NotAMember) => {}
            Err(e) => panic!("round {round}: unexpected {e:?}"),
        }
        assert_ne!(f.current_group(bob).await, Some(format!("race-{round}")), "round {round}");
    }
}

// ---- joins and requests ------------------------------------------------------------------

#[tokio::test]
async fn a_join_adds_a_member_once_and_then_says_where_they_stand() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cy = f.member(3).await;
    let group = f.group("acme", ann).await;
    let later = f.t + Duration::minutes(1);

    let j = |m, s| f.groups.join(group.id, m, s, later, &[]);
    assert_eq!(j(bob, MembershipStatus::Active).await.expect("joins"), JoinRecord::Added);
    assert_eq!(j(bob, MembershipStatus::Pending).await.expect("joins"), JoinRecord::AlreadyActive);
    assert_eq!(j(cy, MembershipStatus::Pending).await.expect("asks"), JoinRecord::Added);
    assert_eq!(j(cy, MembershipStatus::Active).await.expect("asks"), JoinRecord::AlreadyPending);
    assert_eq!(j(ann, MembershipStatus::Active).await.expect("joins"), JoinRecord::AlreadyActive);

    let b = f.groups.member(group.id, bob).await.expect("gets").expect("a member");
    assert_eq!(
        (b.role, b.status, b.joined_at),
        (RoleName::MEMBER, MembershipStatus::Active, later)
    );
    let c = f.groups.member(group.id, cy).await.expect("gets").expect("a member");
    assert_eq!((c.role, c.status), (RoleName::MEMBER, MembershipStatus::Pending));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_joins_of_one_member_add_one_membership() {
    let f = Fixture::with_pool(8).await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;

    let start = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (groups, start, t) = (f.groups.clone(), start.clone(), f.t);
            tokio::spawn(async move {
                start.wait().await;
                groups.join(group.id, bob, MembershipStatus::Active, t, &[]).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the task ran").expect("joins"));
    }

    assert_eq!(outcomes.iter().filter(|o| **o == JoinRecord::Added).count(), 1);
    assert!(outcomes.iter().all(|o| matches!(o, JoinRecord::Added | JoinRecord::AlreadyActive)));
    assert_eq!(rows(&f.db.pool(), "group_members").await, 2);
}

#[tokio::test]
async fn an_approval_activates_a_pending_request_and_a_rejection_deletes_it() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cy = f.member(3).await;
    let group = f.group("acme", ann).await;
    f.groups.join(group.id, bob, MembershipStatus::Pending, f.t, &[]).await.expect("asks");
    f.groups.join(group.id, cy, MembershipStatus::Pending, f.t, &[]).await.expect("asks");
    let later = f.t + Duration::hours(1);

    let approved =
        f.groups.approve(group.id, bob, later, &[]).await.expect("approves").expect("pending");
    assert_eq!(
        (approved.member_id, approved.role.clone(), approved.status, approved.joined_at),
        (bob, RoleName::MEMBER, MembershipStatus::Active, later)
    );
    assert_eq!(approved.phone, Some(phone(2)));
    assert!(f.groups.reject(group.id, cy, &[]).await.expect("rejects"));
    assert_eq!(f.groups.member(group.id, cy).await.expect("gets"), None);

    assert_eq!(
        f.groups.approve(group.id, bob, later, &[]).await.expect("answers"),
        None,
        "already active"
    );
    assert!(
        !f.groups.reject(group.id, bob, &[]).await.expect("answers"),
        "an active member is no request"
    );
    assert_eq!(f.groups.approve(group.id, cy, later, &[]).await.expect("answers"), None);
    assert!(!f.groups.reject(group.id, cy, &[]).await.expect("answers"));
    assert_eq!(f.groups.approve(group.id, ann, later, &[]).await.expect("answers"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_and_a_rejection_at_once_settle_the_request_exactly_once() {
    let f = Fixture::with_pool(8).await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    for round in 0..20 {
        let asker = f.member(10 + round).await;
        f.groups.join(group.id, asker, MembershipStatus::Pending, f.t, &[]).await.expect("asks");

        let start = Arc::new(Barrier::new(2));
        let (groups, go, t) = (f.groups.clone(), start.clone(), f.t);
        let approve = tokio::spawn(async move {
            go.wait().await;
            groups.approve(group.id, asker, t, &[]).await
        });
        let (groups, go) = (f.groups.clone(), start.clone());
        let reject = tokio::spawn(async move {
            go.wait().await;
            groups.reject(group.id, asker, &[]).await
        });
        let approved = approve.await.expect("the task ran").expect("answers").is_some();
        let rejected = reject.await.expect("the task ran").expect("answers");

        assert!(approved != rejected, "round {round}: approved {approved}, rejected {rejected}");
        let stored = f.groups.member(group.id, asker).await.expect("gets");
        assert_eq!(
            stored.map(|m| m.status),
            approved.then_some(MembershipStatus::Active),
            "round {round}"
        );
    }
}

// ---- current group -----------------------------------------------------------------------

#[tokio::test]
async fn only_an_active_member_makes_a_group_current_and_clearing_is_idempotent() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    f.groups.join(group.id, bob, MembershipStatus::Pending, f.t, &[]).await.expect("asks");

    let r = f.groups.set_current_group(ann, &slug("nope")).await;
    assert!(matches!(r, Err(SetCurrentGroupError::NotFound)), "{r:?}");
    let r = f.groups.set_current_group(bob, &slug("acme")).await;
    assert!(matches!(r, Err(SetCurrentGroupError::NotAMember)), "{r:?}");
    assert_eq!(f.current_group(bob).await, None);

    f.groups.set_current_group(ann, &slug("acme")).await.expect("sets");
    assert_eq!(f.current_group(ann).await.as_deref(), Some("acme"));
    f.groups.clear_current_group(ann).await.expect("clears");
    f.groups.clear_current_group(ann).await.expect("clears again");
    assert_eq!(f.current_group(ann).await, None);
}
