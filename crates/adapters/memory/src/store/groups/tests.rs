use std::sync::Arc;

use chrono::{Duration, TimeZone as _};
use onboard_groups::GroupName;
use onboard_kernel::{PhoneNumber, ReferralCode, SessionId};
use onboard_members::ports::{
    MemberRepository, NewSession, NewWorkspace, RotateOutcome, SessionRepository, SignInRequest,
};
use onboard_members::{DeleteMemberError, MemberView, TokenHash};
use tokio::sync::Barrier;

use super::*;

/// `s` seconds after a fixed start, plus 789 nanoseconds (finer than storage keeps).
fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 789).single().expect("valid") + Duration::seconds(s)
}

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+7917555{n:04}"), None).expect("valid")
}

fn hash(n: u32) -> TokenHash {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&n.to_be_bytes());
    TokenHash(h)
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

/// A sign-in of phone `n` at `t(0)` whose refresh token hashes to `hash(n)`.
fn request(n: u32) -> SignInRequest {
    SignInRequest {
        phone: phone(n),
        new_member_id: MemberId::new(),
        new_referral_code: ReferralCode::parse(&format!("R{n:05}")).expect("a code"),
        referred_by: None,
        session: NewSession {
            kind: onboard_members::SessionKind::Rotating,
            id: SessionId::new(),
            refresh_hash: hash(n),
            user_agent: None,
            expires_at: t(3600),
        },
        personal_workspace: None,
        created_events: Vec::new(),
        now: t(0),
    }
}

/// `request` with a personal workspace of slug `ws`.
fn with_workspace(mut request: SignInRequest, ws: &str) -> SignInRequest {
    request.personal_workspace =
        Some(NewWorkspace { id: GroupId::new(), slug: ws.to_owned(), name: "Personal".to_owned() });
    request
}

async fn member(store: &MemoryStore, n: u32) -> MemberId {
    store.sign_in(request(n)).await.expect("signs up").member.id
}

fn new_group(s: &str, owner: MemberId) -> NewGroup {
    NewGroup {
        id: GroupId::new(),
        slug: slug(s),
        name: GroupName::parse(&format!("Group {s}")).expect("a name"),
        approval_required: false,
        owner,
        now: t(0),
    }
}

async fn group(store: &MemoryStore, s: &str, owner: MemberId) -> Group {
    store.create(&new_group(s, owner), &[]).await.expect("creates")
}

async fn join(store: &MemoryStore, group: GroupId, member: MemberId, at: DateTime<Utc>) {
    let joined = store.join(group, member, MembershipStatus::Active, at, &[]).await.expect("joins");
    assert_eq!(joined, JoinRecord::Added);
}

async fn co_owner(store: &MemoryStore, group: GroupId, member: MemberId) {
    join(store, group, member, t(0)).await;
    store
        .change_role(group, member, &RoleName::MEMBER, &RoleName::OWNER, &[])
        .await
        .expect("promotes");
}

async fn owners(store: &MemoryStore, group: GroupId) -> BTreeSet<MemberId> {
    let listed = store.members(group, MembershipStatus::Active, None, 100).await.expect("lists");
    listed.into_iter().filter(|(m, _)| m.role.is_owner()).map(|(m, _)| m.member_id).collect()
}

async fn current_group(store: &MemoryStore, member: MemberId) -> Option<String> {
    store.get(member).await.expect("gets").expect("a live member").current_group
}

async fn role_of(store: &MemoryStore, group: GroupId, member: MemberId) -> Option<RoleName> {
    store.member(group, member).await.expect("gets").map(|m| m.role)
}

// ---- create, find, list ------------------------------------------------------------------

#[tokio::test]
async fn a_new_group_has_its_creator_as_active_owner_and_a_taken_slug_is_refused() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;

    let created = group(&store, "acme", ann).await;

    assert_eq!(created.created_at, t(0).trunc_subsecs(6), "kept to the microsecond");
    let (found, membership) =
        store.find_for_member(&slug("acme"), ann).await.expect("finds").expect("exists");
    assert_eq!(found, created);
    let membership = membership.expect("a membership");
    assert_eq!((membership.role, membership.status), (RoleName::OWNER, MembershipStatus::Active));
    let me = store.member(created.id, ann).await.expect("gets").expect("a member");
    assert_eq!(me.phone, Some(phone(1)));

    let again = store.create(&new_group("acme", bob), &[]).await;
    assert!(matches!(again, Err(CreateGroupError::SlugTaken)), "{again:?}");
    assert!(store.list_mine(bob, None, 10).await.expect("lists").is_empty(), "nothing written");
}

#[tokio::test]
async fn a_member_finds_a_group_with_their_membership_and_a_stranger_without() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let cy = member(&store, 3).await;
    let g = group(&store, "acme", ann).await;
    store.create_role(g.id, &role("billing"), &perms(&["billing.manage"])).await.expect("creates");
    join(&store, g.id, bob, t(0)).await;
    store.change_role(g.id, bob, &RoleName::MEMBER, &role("billing"), &[]).await.expect("sets");
    store.join(g.id, cy, MembershipStatus::Pending, t(0), &[]).await.expect("asks");

    let (_, bobs) =
        store.find_for_member(&slug("acme"), bob).await.expect("finds").expect("a group");
    assert_eq!(bobs.expect("a membership").role_permissions, perms(&["billing.manage"]));
    let (_, cys) = store.find_for_member(&slug("acme"), cy).await.expect("finds").expect("a group");
    assert_eq!(cys.expect("a membership").status, MembershipStatus::Pending);
    let stranger = store.find_for_member(&slug("acme"), MemberId::new()).await.expect("finds");
    assert_eq!(stranger.map(|(g, m)| (g.id, m)), Some((g.id, None)));
    assert_eq!(store.find_for_member(&slug("nope"), ann).await.expect("finds"), None);
}

#[tokio::test]
async fn my_groups_are_my_active_memberships_in_join_order_paged_without_gap_or_repeat() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let g = group(&store, &format!("g-{i}"), ann).await;
        let at = if i < 5 { t(0) } else { t(i) };
        join(&store, g.id, bob, at).await;
        expected.push((at.trunc_subsecs(6), g.id));
    }
    let pending = group(&store, "pending", ann).await;
    store.join(pending.id, bob, MembershipStatus::Pending, t(0), &[]).await.expect("asks");
    expected.sort();

    let mut seen = Vec::new();
    let mut after: Option<GroupCursor> = None;
    loop {
        // Through the text form, as a client hands the cursor back.
        let page = store.list_mine(bob, after, 2).await.expect("lists");
        let Some((_, last)) = page.last() else { break };
        after = GroupCursor::decode(&last.encode());
        for (mine, cursor) in page {
            assert_eq!(mine.my_role, RoleName::MEMBER);
            seen.push((cursor.joined_at, mine.group.id));
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn member_pages_run_in_join_order_with_ties_and_keep_statuses_apart() {
    let store = MemoryStore::new();
    let owner = member(&store, 100).await;
    let g = group(&store, "acme", owner).await;
    let mut active = vec![(t(0).trunc_subsecs(6), owner)];
    let mut pending = Vec::new();
    for n in 0..6 {
        let m = member(&store, n).await;
        let at = t(i64::from(n % 2));
        if n < 4 {
            join(&store, g.id, m, at).await;
            active.push((at.trunc_subsecs(6), m));
        } else {
            store.join(g.id, m, MembershipStatus::Pending, at, &[]).await.expect("asks");
            pending.push((at.trunc_subsecs(6), m));
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
            let page = store.members(g.id, status, after, 2).await.expect("lists");
            let Some((_, last)) = page.last() else { break };
            after = MemberCursor::decode(&last.encode());
            for (m, _) in page {
                assert_eq!(m.status, status);
                seen.push((m.joined_at, m.member_id));
            }
        }
        assert_eq!(seen, expected, "{status}");
    }
}

// ---- update, delete, roles ---------------------------------------------------------------

#[tokio::test]
async fn a_patch_changes_only_what_it_names_and_a_gone_group_is_none() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann).await;

    let renamed = GroupPatch {
        name: Some(GroupName::parse("Acme Inc").expect("a name")),
        ..GroupPatch::default()
    };
    let changed = store.update(g.id, &renamed).await.expect("updates").expect("exists");
    assert_eq!((changed.name.as_str(), changed.approval_required), ("Acme Inc", false));
    let gated = GroupPatch { approval_required: Some(true), ..GroupPatch::default() };
    let changed = store.update(g.id, &gated).await.expect("updates").expect("exists");
    assert_eq!((changed.name.as_str(), changed.approval_required), ("Acme Inc", true));
    assert_eq!(store.update(GroupId::new(), &gated).await.expect("answers"), None);
}

#[tokio::test]
async fn deleting_a_group_takes_its_memberships_and_roles_and_clears_everyones_current_group() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann).await;
    group(&store, "other", bob).await;
    join(&store, g.id, bob, t(0)).await;
    store.create_role(g.id, &role("ops"), &perms(&[])).await.expect("creates");
    store.set_current_group(ann, &slug("acme")).await.expect("sets");
    store.set_current_group(bob, &slug("acme")).await.expect("sets");

    assert!(GroupRepository::delete(&store, g.id, &[]).await.expect("deletes"));

    assert_eq!(current_group(&store, ann).await, None);
    assert_eq!(current_group(&store, bob).await, None);
    assert_eq!(store.find_for_member(&slug("acme"), ann).await.expect("finds"), None);
    assert!(store.custom_roles(g.id).await.expect("lists").is_empty());
    assert_eq!(store.list_mine(bob, None, 10).await.expect("lists").len(), 1);
    assert!(!GroupRepository::delete(&store, g.id, &[]).await.expect("answers"));
    group(&store, "acme", bob).await;
}

#[tokio::test]
async fn custom_roles_are_created_once_changed_listed_by_name_and_deleted_to_member() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann).await;

    store.create_role(g.id, &role("ops"), &perms(&["messages.send"])).await.expect("creates");
    store.create_role(g.id, &role("billing"), &perms(&[])).await.expect("creates");
    let again = store.create_role(g.id, &role("ops"), &perms(&[])).await;
    assert!(matches!(again, Err(RoleRefusal::Exists)), "{again:?}");
    let changed = store.update_role(g.id, &role("ops"), &perms(&["invites.manage"])).await;
    assert_eq!(changed.expect("updates").permissions, perms(&["invites.manage"]));
    let missing = store.update_role(g.id, &role("nope"), &perms(&[])).await;
    assert!(matches!(missing, Err(RoleRefusal::NotFound)), "{missing:?}");
    let names: Vec<_> = store
        .custom_roles(g.id)
        .await
        .expect("lists")
        .into_iter()
        .map(|r| (r.name.as_str().to_owned(), r.builtin))
        .collect();
    assert_eq!(names, [("billing".to_owned(), false), ("ops".to_owned(), false)]);

    join(&store, g.id, bob, t(0)).await;
    store.change_role(g.id, bob, &RoleName::MEMBER, &role("ops"), &[]).await.expect("sets");
    store.delete_role(g.id, &role("ops")).await.expect("deletes");
    assert_eq!(role_of(&store, g.id, bob).await, Some(RoleName::MEMBER));
    assert_eq!(role_of(&store, g.id, ann).await, Some(RoleName::OWNER));
    let again = store.delete_role(g.id, &role("ops")).await;
    assert!(matches!(again, Err(RoleRefusal::NotFound)), "{again:?}");
}

// ---- role changes and removals -----------------------------------------------------------

#[tokio::test]
async fn a_role_change_is_refused_in_order_of_precedence_and_writes_nothing() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let cy = member(&store, 3).await;
    let g = group(&store, "acme", ann).await;
    join(&store, g.id, bob, t(0)).await;
    store.join(g.id, cy, MembershipStatus::Pending, t(0), &[]).await.expect("asks");

    let r = store.change_role(g.id, MemberId::new(), &RoleName::ADMIN, &role("nope"), &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::MemberNotFound)), "{r:?}");
    let r = store.change_role(g.id, cy, &RoleName::MEMBER, &RoleName::ADMIN, &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::MemberNotFound)), "{r:?}");
    let r = store.change_role(g.id, bob, &RoleName::ADMIN, &role("nope"), &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::RoleChanged)), "{r:?}");
    let r = store.change_role(g.id, ann, &RoleName::OWNER, &role("nope"), &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::UnknownRole)), "{r:?}");
    let r = store.change_role(g.id, ann, &RoleName::OWNER, &RoleName::ADMIN, &[]).await;
    assert!(matches!(r, Err(ChangeRoleRefusal::LastOwner)), "{r:?}");
    assert_eq!(owners(&store, g.id).await, BTreeSet::from([ann]));
    assert_eq!(role_of(&store, g.id, bob).await, Some(RoleName::MEMBER));

    let admin = store.change_role(g.id, bob, &RoleName::MEMBER, &RoleName::ADMIN, &[]).await;
    assert_eq!(admin.expect("changes").role, RoleName::ADMIN);
    store.change_role(g.id, bob, &RoleName::ADMIN, &RoleName::OWNER, &[]).await.expect("promotes");
    store.change_role(g.id, ann, &RoleName::OWNER, &RoleName::MEMBER, &[]).await.expect("demotes");
    assert_eq!(owners(&store, g.id).await, BTreeSet::from([bob]));
}

#[tokio::test]
async fn a_removal_is_refused_in_order_of_precedence_and_clears_only_this_current_group() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let cy = member(&store, 3).await;
    let g = group(&store, "acme", ann).await;
    group(&store, "other", cy).await;
    join(&store, g.id, bob, t(0)).await;
    join(&store, g.id, cy, t(0)).await;
    store.set_current_group(bob, &slug("acme")).await.expect("sets");
    store.set_current_group(cy, &slug("other")).await.expect("sets");

    let r = store.remove(g.id, MemberId::new(), &RoleName::MEMBER, &[]).await;
    assert!(matches!(r, Err(RemoveRefusal::MemberNotFound)), "{r:?}");
    let r = store.remove(g.id, bob, &RoleName::ADMIN, &[]).await;
    assert!(matches!(r, Err(RemoveRefusal::RoleChanged)), "{r:?}");
    let r = store.remove(g.id, ann, &RoleName::OWNER, &[]).await;
    assert!(matches!(r, Err(RemoveRefusal::LastOwner)), "{r:?}");

    store.remove(g.id, bob, &RoleName::MEMBER, &[]).await.expect("removes");
    store.remove(g.id, cy, &RoleName::MEMBER, &[]).await.expect("removes");

    assert_eq!(store.member(g.id, bob).await.expect("gets"), None);
    assert_eq!(current_group(&store, bob).await, None);
    assert_eq!(current_group(&store, cy).await.as_deref(), Some("other"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_demoting_or_removing_each_other_at_once_always_leave_an_owner() {
    let store = Arc::new(MemoryStore::new());
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    for round in 0..20 {
        let g = group(&store, &format!("race-{round}"), ann).await;
        co_owner(&store, g.id, bob).await;
        let remove = round % 2 == 1;

        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [ann, bob]
            .into_iter()
            .map(|target| {
                let (store, start) = (store.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    if remove {
                        store
                            .remove(g.id, target, &RoleName::OWNER, &[])
                            .await
                            .map_err(|e| e.to_string())
                    } else {
                        let demoted = store.change_role(
                            g.id,
                            target,
                            &RoleName::OWNER,
                            &RoleName::ADMIN,
                            &[],
                        );
                        demoted.await.map(|_| ()).map_err(|e| e.to_string())
                    }
                })
            })
            .collect();
        let mut done = 0;
        for task in tasks {
            match task.await.expect("the task ran") {
                Ok(()) => done += 1,
                Err(e) => assert_eq!(e, "the group's last owner", "round {round}"),
            }
        }
        assert_eq!(done, 1, "round {round}");
        assert_eq!(owners(&store, g.id).await.len(), 1, "round {round}");
    }
}

// ---- joins and requests ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_adds_a_member_once_and_then_says_where_they_stand() {
    let store = Arc::new(MemoryStore::new());
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let cy = member(&store, 3).await;
    let g = group(&store, "acme", ann).await;

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store.join(g.id, bob, MembershipStatus::Active, t(60), &[]).await
            })
        })
        .collect();
    let mut added = 0;
    for task in tasks {
        match task.await.expect("the task ran").expect("joins") {
            JoinRecord::Added => added += 1,
            other => assert_eq!(other, JoinRecord::AlreadyActive),
        }
    }
    assert_eq!(added, 1);

    let j = |m, s| store.join(g.id, m, s, t(60), &[]);
    assert_eq!(j(bob, MembershipStatus::Pending).await.expect("joins"), JoinRecord::AlreadyActive);
    assert_eq!(j(cy, MembershipStatus::Pending).await.expect("asks"), JoinRecord::Added);
    assert_eq!(j(cy, MembershipStatus::Active).await.expect("asks"), JoinRecord::AlreadyPending);
    let b = store.member(g.id, bob).await.expect("gets").expect("a member");
    assert_eq!(
        (b.role, b.status, b.joined_at),
        (RoleName::MEMBER, MembershipStatus::Active, t(60).trunc_subsecs(6))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_is_approved_or_rejected_exactly_once() {
    let store = Arc::new(MemoryStore::new());
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann).await;
    for round in 0..20 {
        let asker = member(&store, 10 + round).await;
        store.join(g.id, asker, MembershipStatus::Pending, t(0), &[]).await.expect("asks");

        let start = Arc::new(Barrier::new(2));
        let (s, go) = (store.clone(), start.clone());
        let approve = tokio::spawn(async move {
            go.wait().await;
            s.approve(g.id, asker, t(60), &[]).await
        });
        let (s, go) = (store.clone(), start.clone());
        let reject = tokio::spawn(async move {
            go.wait().await;
            s.reject(g.id, asker, &[]).await
        });
        let approved = approve.await.expect("the task ran").expect("answers");
        let rejected = reject.await.expect("the task ran").expect("answers");

        assert!(approved.is_some() != rejected, "round {round}");
        if let Some(m) = approved {
            assert_eq!((m.role, m.status), (RoleName::MEMBER, MembershipStatus::Active));
        }
        assert_eq!(store.approve(g.id, asker, t(60), &[]).await.expect("answers"), None);
        assert!(!store.reject(g.id, asker, &[]).await.expect("answers"));
    }
}

// ---- current group -----------------------------------------------------------------------

#[tokio::test]
async fn only_an_active_member_makes_a_group_current_and_clearing_is_idempotent() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann).await;
    store.join(g.id, bob, MembershipStatus::Pending, t(0), &[]).await.expect("asks");

    let r = store.set_current_group(ann, &slug("nope")).await;
    assert!(matches!(r, Err(SetCurrentGroupError::NotFound)), "{r:?}");
    let r = store.set_current_group(bob, &slug("acme")).await;
    assert!(matches!(r, Err(SetCurrentGroupError::NotAMember)), "{r:?}");

    store.set_current_group(ann, &slug("acme")).await.expect("sets");
    assert_eq!(current_group(&store, ann).await.as_deref(), Some("acme"));
    store.clear_current_group(ann).await.expect("clears");
    store.clear_current_group(ann).await.expect("clears again");
    assert_eq!(current_group(&store, ann).await, None);
}

// ---- members and sessions with groups ----------------------------------------------------

#[tokio::test]
async fn a_sign_up_with_a_personal_workspace_makes_the_member_its_owner_and_current_group() {
    let store = MemoryStore::new();
    let record =
        store.sign_in(with_workspace(request(1), "ws-ann0000000")).await.expect("signs up");

    assert!(record.created);
    let ann = record.member;
    assert_eq!(ann.current_group.as_deref(), Some("ws-ann0000000"));
    let (g, membership) = store
        .find_for_member(&slug("ws-ann0000000"), ann.id)
        .await
        .expect("finds")
        .expect("exists");
    assert_eq!((g.name.as_str(), g.approval_required), ("Personal", false));
    let membership = membership.expect("a membership");
    assert_eq!((membership.role, membership.status), (RoleName::OWNER, MembershipStatus::Active));
    assert_eq!(store.get(ann.id).await.expect("gets"), Some(ann.clone()));
    assert_eq!(store.find_by_phone(&phone(1)).await.expect("finds"), Some(ann.clone()));
    assert_eq!(store.profile(ann.id, 5).await.expect("loads").expect("exists").member, ann);

    let mut again = with_workspace(request(1), "ws-again00000");
    again.session.refresh_hash = hash(1001);
    let again = store.sign_in(again).await.expect("signs in");
    assert!(!again.created);
    assert_eq!(again.member.current_group, ann.current_group);
    assert_eq!(store.find_for_member(&slug("ws-again00000"), ann.id).await.expect("finds"), None);
}

#[tokio::test]
async fn a_sign_up_without_a_personal_workspace_has_no_group_and_a_taken_slug_is_replaced() {
    let store = MemoryStore::new();
    let ann = store.sign_in(request(1)).await.expect("signs up").member;
    assert_eq!(ann.current_group, None);
    assert!(store.list_mine(ann.id, None, 10).await.expect("lists").is_empty());

    group(&store, "ws-taken00000", ann.id).await;
    let bob = store.sign_in(with_workspace(request(2), "ws-taken00000")).await.expect("signs up");
    let slug = bob.member.current_group.expect("a current group");
    assert!(slug.starts_with("ws-") && slug != "ws-taken00000", "{slug}");
}

#[tokio::test]
async fn a_refresh_carries_the_current_group_as_it_is_now() {
    let store = MemoryStore::new();
    let ann = store.sign_in(with_workspace(request(1), "ws-ann0000000")).await.expect("signs up");
    let ann = ann.member.id;
    let rotate = async |old: u32, new: u32| {
        store.rotate(&hash(old), &hash(new), t(10), 10, t(3600)).await.expect("answers")
    };

    let RotateOutcome::Rotated(r) = rotate(1, 101).await else { panic!("expected a rotation") };
    assert_eq!(r.current_group.as_deref(), Some("ws-ann0000000"));
    group(&store, "acme", ann).await;
    store.set_current_group(ann, &slug("acme")).await.expect("sets");
    let RotateOutcome::Rotated(r) = rotate(101, 102).await else { panic!("expected a rotation") };
    assert_eq!(r.current_group.as_deref(), Some("acme"));
    let RotateOutcome::Grace(r) = rotate(101, 102).await else { panic!("expected grace") };
    assert_eq!(r.current_group.as_deref(), Some("acme"));
    store.clear_current_group(ann).await.expect("clears");
    let RotateOutcome::Rotated(r) = rotate(102, 103).await else { panic!("expected a rotation") };
    assert_eq!(r.current_group, None);
}

#[tokio::test]
async fn members_who_share_an_active_group_see_each_other_in_full() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann).await;
    let card = |v: Option<MemberView>| matches!(v, Some(MemberView::Card(_)));

    assert!(card(store.view(ann, bob).await.expect("views")));
    store.join(g.id, bob, MembershipStatus::Pending, t(0), &[]).await.expect("asks");
    assert!(card(store.view(ann, bob).await.expect("views")), "a pending member is no member");
    store.approve(g.id, bob, t(0), &[]).await.expect("approves").expect("pending");
    let bobs = store.get(bob).await.expect("gets").expect("live");
    assert_eq!(store.view(ann, bob).await.expect("views"), Some(MemberView::Full(bobs)));
    assert!(matches!(store.view(bob, ann).await.expect("views"), Some(MemberView::Full(_))));
}

#[tokio::test]
async fn the_sole_owner_of_a_group_with_other_members_is_not_deleted() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann).await;
    join(&store, g.id, bob, t(0)).await;

    let refused = MemberRepository::delete(&store, ann, t(10), &[]).await;

    assert!(matches!(refused, Err(DeleteMemberError::LastOwner)), "{refused:?}");
    assert!(store.get(ann).await.expect("gets").is_some(), "nothing written");
    assert_eq!(store.list(ann, t(10)).await.expect("lists").len(), 1);

    store.change_role(g.id, bob, &RoleName::MEMBER, &RoleName::OWNER, &[]).await.expect("promotes");
    MemberRepository::delete(&store, ann, t(10), &[]).await.expect("deletes");
    assert_eq!(owners(&store, g.id).await, BTreeSet::from([bob]));
}

#[tokio::test]
async fn deleting_a_member_deletes_the_groups_only_they_are_active_in_and_all_their_memberships() {
    let store = MemoryStore::new();
    let ann = store.sign_in(with_workspace(request(1), "ws-ann0000000")).await.expect("signs up");
    let ann = ann.member.id;
    let bob = member(&store, 2).await;
    let cy = member(&store, 3).await;
    let lonely = group(&store, "lonely", ann).await;
    store.join(lonely.id, cy, MembershipStatus::Pending, t(0), &[]).await.expect("asks");
    let shared = group(&store, "shared", bob).await;
    join(&store, shared.id, ann, t(0)).await;
    let asked = group(&store, "asked", bob).await;
    store.join(asked.id, ann, MembershipStatus::Pending, t(0), &[]).await.expect("asks");

    MemberRepository::delete(&store, ann, t(10), &[]).await.expect("deletes");

    assert_eq!(store.find_for_member(&slug("ws-ann0000000"), bob).await.expect("finds"), None);
    assert_eq!(store.find_for_member(&slug("lonely"), cy).await.expect("finds"), None);
    assert_eq!(store.member(shared.id, ann).await.expect("gets"), None);
    assert_eq!(store.member(asked.id, ann).await.expect("gets"), None);
    assert_eq!(store.list_mine(bob, None, 10).await.expect("lists").len(), 2);
    // The slugs are free again.
    group(&store, "lonely", bob).await;
}

// Events: stored with the change, never without it.

fn event(group: GroupId, member: MemberId) -> onboard_kernel::events::Event {
    let requested =
        onboard_groups::events::GroupEvent::JoinRequested { group_id: group, member_id: member };
    onboard_kernel::events::Event::record(&requested, t(0))
}

fn recorded(store: &MemoryStore) -> Vec<onboard_kernel::events::EventId> {
    store.state().outbox.all().map(|e| e.id).collect()
}

#[tokio::test]
async fn a_change_stores_its_events_and_a_no_op_or_refusal_stores_none() {
    let store = MemoryStore::default();
    let (ann, bob) = (member(&store, 1).await, member(&store, 2).await);
    let acme = group(&store, "acme", ann).await;

    let first = event(acme.id, bob);
    let added = store
        .join(acme.id, bob, MembershipStatus::Pending, t(1), std::slice::from_ref(&first))
        .await;
    assert_eq!(added.expect("joins"), JoinRecord::Added);
    let again = event(acme.id, bob);
    let pending = store.join(acme.id, bob, MembershipStatus::Pending, t(2), &[again]).await;
    assert_eq!(pending.expect("joins"), JoinRecord::AlreadyPending);
    assert_eq!(recorded(&store), [first.id], "a join that adds nothing stores nothing");

    let last_owner = store.remove(acme.id, ann, &RoleName::OWNER, &[event(acme.id, ann)]).await;
    assert!(matches!(last_owner, Err(RemoveRefusal::LastOwner)), "{last_owner:?}");
    let rejected = event(acme.id, bob);
    assert!(store.reject(acme.id, bob, std::slice::from_ref(&rejected)).await.expect("rejects"));
    assert!(!store.reject(acme.id, bob, &[event(acme.id, bob)]).await.expect("nothing left"));
    assert_eq!(recorded(&store), [first.id, rejected.id]);
}
