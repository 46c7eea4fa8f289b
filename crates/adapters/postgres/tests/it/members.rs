use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::Duration;
use onboard_groups::ports::GroupRepository;
use onboard_groups::{MembershipStatus, RoleName, Slug};
use onboard_kernel::{Email, MemberId, ReferralCode};
use onboard_members::ports::{MemberRepository, SessionRepository};
use onboard_members::{
    DeleteMemberError, MemberView, PersonName, ProfilePatch, SignInStoreError, UpdateProfileError,
};
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{PgMemberRepository, PgSessionRepository, connect};
use tokio::sync::Barrier;

use crate::groups::{Fixture, with_workspace};
use crate::{now, phone, rows, sign_in};

#[tokio::test]
async fn a_new_phone_signs_up_and_then_signs_in_as_the_same_member() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();

    let first = sign_in(&phone(1), t);
    let created = members.sign_in(first.clone()).await.expect("signs up");
    assert!(created.created);
    assert_eq!(created.member.id, first.new_member_id);
    assert_eq!(created.member.phone, Some(phone(1)));
    assert_eq!(created.member.referral_code, first.new_referral_code);
    assert_eq!(created.member.referred_by, None);
    assert_eq!(created.member.created_at, t);

    let again =
        members.sign_in(sign_in(&phone(1), t + Duration::minutes(1))).await.expect("signs in");
    assert!(!again.created);
    assert_eq!(again.member, created.member);

    assert_eq!(
        members.find_by_phone(&phone(1)).await.expect("finds"),
        Some(created.member.clone())
    );
    assert_eq!(members.get(first.new_member_id).await.expect("gets"), Some(created.member.clone()));
    assert_eq!(members.find_by_phone(&phone(2)).await.expect("finds"), None);
    assert_eq!(members.get(MemberId::new()).await.expect("gets"), None);
    assert_eq!(
        members.referral_code_owner(&first.new_referral_code).await.expect("looks up"),
        Some(first.new_member_id)
    );
    assert_eq!(rows(&db.pool(), "members").await, 1);
    assert_eq!(rows(&db.pool(), "sessions").await, 2, "each sign-in opens its own session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_of_a_new_phone_create_exactly_one_member() {
    let db = TestDatabase::new().await;
    let pool = connect(db.url(), 16).await.expect("a pool of 16");
    let members = PgMemberRepository::new(pool.clone());
    let t = now();

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let members = members.clone();
            let request = sign_in(&phone(7), t);
            tokio::spawn(async move { members.sign_in(request).await })
        })
        .collect();
    let mut records = Vec::new();
    for task in tasks {
        records.push(task.await.expect("the task ran").expect("signs in"));
    }

    assert_eq!(records.iter().filter(|r| r.created).count(), 1);
    let ids: HashSet<_> = records.iter().map(|r| r.member.id).collect();
    assert_eq!(ids.len(), 1, "everyone signed in as one member");
    assert_eq!(rows(&pool, "members").await, 1);
    let sessions = PgSessionRepository::new(pool.clone());
    let member = records[0].member.id;
    assert_eq!(sessions.list(member, t).await.expect("lists").len(), 16);
}

#[tokio::test]
async fn a_taken_referral_code_is_a_collision_and_nothing_is_written() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let owner = members.sign_in(sign_in(&phone(1), t)).await.expect("signs up");

    let mut request = sign_in(&phone(2), t);
    request.new_referral_code = owner.member.referral_code.clone();
    let refused = members.sign_in(request).await;

    assert!(matches!(refused, Err(SignInStoreError::ReferralCodeCollision)), "{refused:?}");
    assert_eq!(members.find_by_phone(&phone(2)).await.expect("finds"), None);
    assert_eq!(rows(&db.pool(), "members").await, 1);
    assert_eq!(rows(&db.pool(), "sessions").await, 1);
}

#[tokio::test]
async fn an_unknown_referral_code_refuses_the_sign_up_and_nothing_is_written() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());

    let mut request = sign_in(&phone(1), now());
    request.referred_by = Some(ReferralCode::parse("ZZZZZZ").expect("a code"));
    let refused = members.sign_in(request).await;

    assert!(matches!(refused, Err(SignInStoreError::ReferralCodeNotFound)), "{refused:?}");
    assert_eq!(rows(&db.pool(), "members").await, 0);
    assert_eq!(rows(&db.pool(), "sessions").await, 0);
}

#[tokio::test]
async fn a_referral_code_is_ignored_when_the_member_already_exists() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let existing = members.sign_in(sign_in(&phone(1), t)).await.expect("signs up");

    let mut request = sign_in(&phone(1), t);
    request.referred_by = Some(ReferralCode::parse("ZZZZZZ").expect("a code"));
    let again = members.sign_in(request).await.expect("signs in");

    assert!(!again.created);
    assert_eq!(again.member, existing.member);
}

#[tokio::test]
async fn a_redeemed_code_makes_the_newest_invitees_and_their_count_show_in_the_profile() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let referrer = members.sign_in(sign_in(&phone(100), t)).await.expect("signs up").member;
    let mut invitees = Vec::new();
    for n in 1..=3 {
        let mut request = sign_in(&phone(n), t + Duration::seconds(n.into()));
        request.referred_by = Some(referrer.referral_code.clone());
        let invitee = members.sign_in(request).await.expect("signs up").member;
        assert_eq!(invitee.referred_by, Some(referrer.referral_code.clone()));
        invitees.push(invitee);
    }
    // Not an invitee: no code redeemed.
    members.sign_in(sign_in(&phone(50), t)).await.expect("signs up");

    let profile = members.profile(referrer.id, 2).await.expect("loads").expect("exists");
    assert_eq!(profile.member, referrer);
    assert_eq!(profile.invitees_count, 3);
    let shown: Vec<_> = profile.invitees.iter().map(|c| c.id).collect();
    assert_eq!(shown, vec![invitees[2].id, invitees[1].id], "the newest two, newest first");
    assert_eq!(profile.invitees[0].phone_masked.as_deref(), Some("+7******0003"));

    let invitee = members.profile(invitees[0].id, 20).await.expect("loads").expect("exists");
    assert_eq!(invitee.member.referred_by, Some(referrer.referral_code.clone()));
    assert_eq!(invitee.invitees_count, 0);
    assert!(invitee.invitees.is_empty());

    // A deleted invitee is neither shown nor counted.
    members.delete(invitees[2].id, t + Duration::minutes(1), &[]).await.expect("deletes");
    let profile = members.profile(referrer.id, 20).await.expect("loads").expect("exists");
    assert_eq!(profile.invitees_count, 2);
    let shown: Vec<_> = profile.invitees.iter().map(|c| c.id).collect();
    assert_eq!(shown, vec![invitees[1].id, invitees[0].id]);

    assert_eq!(members.profile(MemberId::new(), 20).await.expect("loads"), None);
}

#[tokio::test]
async fn a_deleted_members_code_can_no_longer_be_redeemed() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let gone = members.sign_in(sign_in(&phone(1), t)).await.expect("signs up").member;
    members.delete(gone.id, t, &[]).await.expect("deletes");

    assert!(members.referral_code_owner(&gone.referral_code).await.expect("looks up").is_none());
    let mut request = sign_in(&phone(2), t);
    request.referred_by = Some(gone.referral_code.clone());
    let refused = members.sign_in(request).await;
    assert!(matches!(refused, Err(SignInStoreError::ReferralCodeNotFound)), "{refused:?}");
}

#[tokio::test]
async fn a_profile_change_keeps_unset_fields_and_an_email_of_another_member_is_taken() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let ann = members.sign_in(sign_in(&phone(1), t)).await.expect("signs up").member;
    let bob = members.sign_in(sign_in(&phone(2), t)).await.expect("signs up").member;
    let email = Email::parse("ann@example.com").expect("an address");

    let named = ProfilePatch {
        first_name: Some(PersonName::parse("Ann").expect("a name")),
        last_name: Some(PersonName::parse("Lee").expect("a name")),
        email: None,
    };
    members.update_profile(ann.id, &named, &[]).await.expect("updates");
    let with_email = ProfilePatch { email: Some(email.clone()), ..ProfilePatch::default() };
    let updated = members.update_profile(ann.id, &with_email, &[]).await.expect("updates");
    assert_eq!(updated.first_name.as_deref(), Some("Ann"));
    assert_eq!(updated.last_name.as_deref(), Some("Lee"));
    assert_eq!(updated.email, Some(email.clone()));
    assert_eq!(members.get(ann.id).await.expect("gets"), Some(updated.clone()));

    // Setting one's own address again is no conflict.
    members.update_profile(ann.id, &with_email, &[]).await.expect("updates");
    let taken = members.update_profile(bob.id, &with_email, &[]).await;
    assert!(matches!(taken, Err(UpdateProfileError::EmailTaken)), "{taken:?}");
    assert_eq!(members.get(bob.id).await.expect("gets").expect("exists").email, None);

    let missing = members.update_profile(MemberId::new(), &with_email, &[]).await;
    assert!(matches!(missing, Err(UpdateProfileError::NotFound)), "{missing:?}");
    let missing = members.update_profile(MemberId::new(), &ProfilePatch::default(), &[]).await;
    assert!(matches!(missing, Err(UpdateProfileError::NotFound)), "{missing:?}");
    assert_eq!(
        members.update_profile(ann.id, &ProfilePatch::default(), &[]).await.expect("no change"),
        updated
    );
}

#[tokio::test]
async fn a_member_sees_all_of_themself_and_the_card_of_another() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let ann = members.sign_in(sign_in(&phone(1), t)).await.expect("signs up").member;
    let bob = members.sign_in(sign_in(&phone(2), t)).await.expect("signs up").member;

    assert_eq!(
        members.view(ann.id, ann.id).await.expect("views"),
        Some(MemberView::Full(ann.clone()))
    );
    match members.view(ann.id, bob.id).await.expect("views") {
        Some(MemberView::Card(card)) => {
            assert_eq!(card.id, bob.id);
            assert_eq!(card.phone_masked.as_deref(), Some("+7******0002"));
        }
        other => panic!("expected a card, got {other:?}"),
    }
    assert_eq!(members.view(ann.id, MemberId::new()).await.expect("views"), None);
}

#[tokio::test]
async fn deleting_a_member_revokes_their_sessions_and_frees_the_phone_and_email() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let sessions = PgSessionRepository::new(db.pool());
    let t = now();
    let first = sign_in(&phone(1), t);
    let second = sign_in(&phone(1), t);
    let gone = members.sign_in(first.clone()).await.expect("signs up").member;
    members.sign_in(second.clone()).await.expect("signs in");
    let email = Email::parse("gone@example.com").expect("an address");
    let patch = ProfilePatch { email: Some(email.clone()), ..ProfilePatch::default() };
    members.update_profile(gone.id, &patch, &[]).await.expect("updates");

    let revoked = members.delete(gone.id, t + Duration::minutes(1), &[]).await.expect("deletes");

    let revoked: HashSet<_> = revoked.into_iter().collect();
    assert_eq!(revoked, HashSet::from([first.session.id, second.session.id]));
    assert!(sessions.list(gone.id, t).await.expect("lists").is_empty());
    assert_eq!(members.get(gone.id).await.expect("gets"), None);
    assert_eq!(members.find_by_phone(&phone(1)).await.expect("finds"), None);
    assert_eq!(members.profile(gone.id, 20).await.expect("loads"), None);
    let again = members.delete(gone.id, t, &[]).await;
    assert!(matches!(again, Err(DeleteMemberError::NotFound)), "{again:?}");

    let reborn =
        members.sign_in(sign_in(&phone(1), t + Duration::minutes(2))).await.expect("signs up");
    assert!(reborn.created);
    assert_ne!(reborn.member.id, gone.id);
    members.update_profile(reborn.member.id, &patch, &[]).await.expect("the address is free again");
}

// ---- groups ------------------------------------------------------------------------------

#[tokio::test]
async fn a_sign_up_with_a_personal_workspace_makes_the_member_its_owner_and_current_group() {
    let f = Fixture::new().await;
    let request = with_workspace(sign_in(&phone(1), f.t));
    let workspace = request.personal_workspace.clone().expect("a workspace");

    let record = f.members.sign_in(request.clone()).await.expect("signs up");

    assert!(record.created);
    let ann = record.member;
    assert_eq!(ann.current_group.as_deref(), Some(workspace.slug.as_str()));
    let slug = Slug::parse(&workspace.slug).expect("a slug");
    let (group, membership) =
        f.groups.find_for_member(&slug, ann.id).await.expect("finds").expect("exists");
    assert_eq!(group.id, workspace.id);
    assert_eq!(group.name.as_str(), "Personal workspace");
    assert!(!group.approval_required);
    assert_eq!(group.created_at, f.t);
    let membership = membership.expect("a membership");
    assert_eq!((membership.role, membership.status), (RoleName::OWNER, MembershipStatus::Active));

    // Every read of the member carries the current group.
    assert_eq!(f.members.get(ann.id).await.expect("gets"), Some(ann.clone()));
    assert_eq!(f.members.find_by_phone(&phone(1)).await.expect("finds"), Some(ann.clone()));
    assert_eq!(f.members.profile(ann.id, 5).await.expect("loads").expect("exists").member, ann);
    let patch = ProfilePatch {
        first_name: Some(PersonName::parse("Ann").expect("a name")),
        ..ProfilePatch::default()
    };
    let updated = f.members.update_profile(ann.id, &patch, &[]).await.expect("updates");
    assert_eq!(updated.current_group, ann.current_group);

    // Signing in again creates nothing more.
    let again = f.members.sign_in(with_workspace(sign_in(&phone(1), f.t))).await.expect("signs in");
    assert!(!again.created);
    assert_eq!(again.member.current_group, ann.current_group);
    assert_eq!(rows(&f.db.pool(), "groups").await, 1);
    assert_eq!(rows(&f.db.pool(), "group_members").await, 1);
}

#[tokio::test]
async fn a_sign_up_without_a_personal_workspace_creates_no_group() {
    let f = Fixture::new().await;

    let record = f.members.sign_in(sign_in(&phone(1), f.t)).await.expect("signs up");

    assert!(record.created);
    assert_eq!(record.member.current_group, None);
    assert_eq!(rows(&f.db.pool(), "groups").await, 0);
    assert_eq!(rows(&f.db.pool(), "group_members").await, 0);
}

#[tokio::test]
async fn a_refused_sign_up_creates_no_personal_workspace() {
    let f = Fixture::new().await;
    let mut request = with_workspace(sign_in(&phone(1), f.t));
    request.referred_by = Some(ReferralCode::parse("ZZZZZZ").expect("a code"));

    let refused = f.members.sign_in(request).await;

    assert!(matches!(refused, Err(SignInStoreError::ReferralCodeNotFound)), "{refused:?}");
    assert_eq!(rows(&f.db.pool(), "groups").await, 0);
    assert_eq!(rows(&f.db.pool(), "members").await, 0);
}

#[tokio::test]
async fn a_taken_workspace_slug_is_replaced_by_a_fresh_personal_one() {
    let f = Fixture::new().await;
    let bob = f.member(2).await;
    let mut request = with_workspace(sign_in(&phone(1), f.t));
    let workspace = request.personal_workspace.as_mut().expect("a workspace");
    workspace.slug = "ws-taken00000".to_owned();
    f.group("ws-taken00000", bob).await;

    let record = f.members.sign_in(request.clone()).await.expect("signs up");

    let slug = record.member.current_group.expect("a current group");
    assert_ne!(slug, "ws-taken00000");
    assert!(Slug::parse(&slug).is_ok_and(|s| s.as_str().starts_with("ws-")), "{slug}");
    assert_eq!(rows(&f.db.pool(), "groups").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ups_of_a_new_phone_create_one_personal_workspace() {
    let f = Fixture::with_pool(8).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let members = f.members.clone();
            let request = with_workspace(sign_in(&phone(7), f.t));
            tokio::spawn(async move { members.sign_in(request).await })
        })
        .collect();
    let mut records = Vec::new();
    for task in tasks {
        records.push(task.await.expect("the task ran").expect("signs in"));
    }

    assert_eq!(records.iter().filter(|r| r.created).count(), 1);
    let current: HashSet<_> = records.iter().map(|r| r.member.current_group.clone()).collect();
    assert_eq!(current.len(), 1, "everyone sees the one workspace: {current:?}");
    assert_eq!(rows(&f.db.pool(), "groups").await, 1);
    assert_eq!(rows(&f.db.pool(), "group_members").await, 1);
}

#[tokio::test]
async fn members_who_share_an_active_group_see_each_other_in_full() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    let card = |v: Option<MemberView>| matches!(v, Some(MemberView::Card(_)));

    assert!(card(f.members.view(ann, bob).await.expect("views")));
    f.groups.join(group.id, bob, MembershipStatus::Pending, f.t, &[]).await.expect("asks");
    assert!(card(f.members.view(ann, bob).await.expect("views")), "a pending member is no member");
    assert!(card(f.members.view(bob, ann).await.expect("views")));

    f.groups.approve(group.id, bob, f.t, &[]).await.expect("approves").expect("pending");
    let full = f.members.view(ann, bob).await.expect("views");
    assert_eq!(
        full,
        Some(MemberView::Full(f.members.get(bob).await.expect("gets").expect("live")))
    );
    assert!(matches!(f.members.view(bob, ann).await.expect("views"), Some(MemberView::Full(_))));
    let cy = f.member(3).await;
    assert!(card(f.members.view(cy, ann).await.expect("views")), "a stranger sees the card");
}

#[tokio::test]
async fn the_sole_owner_of_a_group_with_other_members_is_not_deleted() {
    let f = Fixture::new().await;
    let sessions = PgSessionRepository::new(f.db.pool());
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    f.join(group.id, bob, f.t).await;

    let refused = f.members.delete(ann, f.t, &[]).await;

    assert!(matches!(refused, Err(DeleteMemberError::LastOwner)), "{refused:?}");
    assert!(f.members.get(ann).await.expect("gets").is_some(), "nothing written");
    assert_eq!(sessions.list(ann, f.t).await.expect("lists").len(), 1);
    assert_eq!(f.owners(group.id).await, BTreeSet::from([ann]));

    // With another owner the member may go; the group stays with them.
    f.groups
        .change_role(group.id, bob, &RoleName::MEMBER, &RoleName::OWNER, &[])
        .await
        .expect("promotes");
    f.members.delete(ann, f.t, &[]).await.expect("deletes");
    assert_eq!(f.owners(group.id).await, BTreeSet::from([bob]));
    assert_eq!(f.groups.member(group.id, ann).await.expect("gets"), None);
}

#[tokio::test]
async fn deleting_a_member_deletes_the_groups_only_they_are_active_in_and_all_their_memberships() {
    let f = Fixture::new().await;
    let request = with_workspace(sign_in(&phone(1), f.t));
    let workspace = request.personal_workspace.clone().expect("a workspace");
    let ann = f.members.sign_in(request).await.expect("signs up").member.id;
    let bob = f.member(2).await;
    let cy = f.member(3).await;
    // Ann's own group with only a join request besides her: it goes with her.
    let lonely = f.group("lonely", ann).await;
    f.groups.join(lonely.id, cy, MembershipStatus::Pending, f.t, &[]).await.expect("asks");
    f.groups
        .create_role(lonely.id, &RoleName::parse("ops").expect("a role"), &BTreeSet::new())
        .await
        .expect("creates");
    // Bob's groups: Ann is a member of one and asked to join the other.
    let shared = f.group("shared", bob).await;
    f.join(shared.id, ann, f.t).await;
    let asked = f.group("asked", bob).await;
    f.groups.join(asked.id, ann, MembershipStatus::Pending, f.t, &[]).await.expect("asks");

    f.members.delete(ann, f.t, &[]).await.expect("deletes");

    let ws = Slug::parse(&workspace.slug).expect("a slug");
    assert_eq!(f.groups.find_for_member(&ws, bob).await.expect("finds"), None);
    assert_eq!(f.groups.find_for_member(&lonely.slug, cy).await.expect("finds"), None);
    assert_eq!(f.groups.member(shared.id, ann).await.expect("gets"), None);
    assert_eq!(f.groups.member(asked.id, ann).await.expect("gets"), None);
    assert_eq!(rows(&f.db.pool(), "groups").await, 2, "bob's groups stay");
    assert_eq!(rows(&f.db.pool(), "group_members").await, 2, "bob's ownerships only");
    assert_eq!(rows(&f.db.pool(), "group_roles").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_co_owners_deleting_their_accounts_at_once_leave_their_group_an_owner() {
    let f = Fixture::with_pool(8).await;
    for round in 0..10 {
        let ann = f.member(3 * round).await;
        let bob = f.member(3 * round + 1).await;
        let cy = f.member(3 * round + 2).await;
        let group = f.group(&format!("race-{round}"), ann).await;
        f.co_owner(group.id, bob).await;
        f.join(group.id, cy, f.t).await;

        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [ann, bob]
            .into_iter()
            .map(|id| {
                let (members, start, t) = (f.members.clone(), start.clone(), f.t);
                tokio::spawn(async move {
                    start.wait().await;
                    members.delete(id, t, &[]).await
                })
            })
            .collect();
        let mut deleted = 0;
        for task in tasks {
            match task.await.expect("the task ran") {
                Ok(_) => deleted += 1,
                Err(DeleteMemberError::LastOwner) => {}
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!(deleted, 1, "round {round}");
        assert_eq!(f.owners(group.id).await.len(), 1, "round {round}");
    }
}

// The seed referral-api's users list.
#[tokio::test]
async fn the_members_directory_filters_pages_oldest_first_and_counts_every_match() {
    use onboard_members::MemberFilter;

    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let mut ids = Vec::new();
    let mut codes: Vec<ReferralCode> = Vec::new();
    for n in 0..5u32 {
        let mut request = sign_in(&phone(n), t + Duration::seconds(i64::from(n)));
        if n == 4 {
            request.referred_by = Some(codes[0].clone());
        }
        let record = members.sign_in(request).await.expect("signs up");
        ids.push(record.member.id);
        codes.push(record.member.referral_code);
    }
    let patch = ProfilePatch {
        first_name: Some(PersonName::parse("Anna_%").expect("a name")),
        email: Some(Email::parse("Anna@Example.com").expect("an e-mail")),
        ..ProfilePatch::default()
    };
    members.update_profile(ids[2], &patch, &[]).await.expect("updates");
    members.delete(ids[3], t, &[]).await.expect("deletes");

    let all = MemberFilter::default();
    let page = members.list_members(&all, 0, 2).await.expect("lists");
    assert_eq!(page.count, 4, "the deleted member is not listed");
    assert_eq!(page.items.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..2]);
    let page = members.list_members(&all, 2, 2).await.expect("lists");
    assert_eq!(page.items.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[2], ids[4]]);
    let past = members.list_members(&all, 10, 2).await.expect("lists");
    assert_eq!((past.count, past.items.len()), (4, 0), "a page past the end still counts");

    let only = |filter: MemberFilter| {
        let members = members.clone();
        async move {
            let page = members.list_members(&filter, 0, 100).await.expect("lists");
            assert_eq!(page.count, page.items.len() as u64);
            page.items.into_iter().map(|m| m.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only(MemberFilter { phone: Some(phone(1)), ..MemberFilter::default() }).await,
        [ids[1]]
    );
    assert_eq!(
        only(MemberFilter { email: patch.email.clone(), ..MemberFilter::default() }).await,
        [ids[2]]
    );
    assert_eq!(
        only(MemberFilter { first_name: Some("Anna_%".into()), ..MemberFilter::default() }).await,
        [ids[2]]
    );
    assert_eq!(
        only(MemberFilter { referral_code: Some(codes[1].clone()), ..MemberFilter::default() })
            .await,
        [ids[1]]
    );
    assert_eq!(
        only(MemberFilter { referred_by: Some(codes[0].clone()), ..MemberFilter::default() }).await,
        [ids[4]]
    );
    let search = |s: &str| MemberFilter { search: Some(s.into()), ..MemberFilter::default() };
    assert_eq!(only(search("anna_")).await, [ids[2]], "a name prefix, any case, _ taken literally");
    assert_eq!(only(search("ANNA@")).await, [ids[2]], "an e-mail prefix");
    assert_eq!(only(search("a%")).await, Vec::<MemberId>::new(), "% taken literally");
    assert_eq!(only(search(phone(4).as_e164())).await, [ids[4]]);
    assert_eq!(only(search(&codes[0].as_str().to_lowercase())).await, [ids[0]]);
    assert_eq!(only(search("+7917")).await.len(), 4);
}

// Events

#[tokio::test]
async fn a_sign_up_stores_its_events_once_and_a_repeated_sign_in_of_the_phone_none() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let first = crate::signing_up(&phone(1), t);
    let expected = first.created_events.clone();

    assert!(members.sign_in(first).await.expect("signs up").created);
    let again = members.sign_in(crate::signing_up(&phone(1), t)).await.expect("signs in");

    assert!(!again.created);
    assert_eq!(crate::stored_events(&db.pool()).await, expected);
}

#[tokio::test]
async fn a_sign_up_with_a_workspace_stores_the_workspace_events_with_its_own() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let mut request = with_workspace(sign_in(&phone(1), t));
    request.created_events = onboard_members::events::signed_up(
        request.new_member_id,
        None,
        request.personal_workspace.as_ref(),
        t,
    );
    let expected = request.created_events.clone();

    members.sign_in(request).await.expect("signs up");

    let stored = crate::stored_events(&db.pool()).await;
    assert_eq!(stored, expected);
    let types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["member.signed_up", "group.created", "group.member_joined"]);
}

#[tokio::test]
async fn a_refused_sign_up_stores_no_event() {
    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let mut request = crate::signing_up(&phone(1), now());
    request.referred_by = Some(ReferralCode::parse("ZZZZZZ").expect("a code"));

    let refused = members.sign_in(request).await;

    assert!(matches!(refused, Err(SignInStoreError::ReferralCodeNotFound)), "{refused:?}");
    assert!(crate::stored_events(&db.pool()).await.is_empty());
}

#[tokio::test]
async fn a_profile_update_and_a_deletion_store_their_events_and_refusals_none() {
    use onboard_kernel::events::Event;
    use onboard_members::events::MemberEvent;

    let db = TestDatabase::new().await;
    let members = PgMemberRepository::new(db.pool());
    let t = now();
    let ann = members.sign_in(sign_in(&phone(1), t)).await.expect("signs up").member;
    let bob = members.sign_in(sign_in(&phone(2), t)).await.expect("signs up").member;
    let updated = |member_id| {
        let fields = vec!["email".to_owned()];
        Event::record(&MemberEvent::ProfileUpdated { member_id, fields }, t)
    };
    let patch = ProfilePatch {
        email: Some(Email::parse("ann@example.com").expect("an e-mail")),
        ..ProfilePatch::default()
    };
    let ann_updated = updated(ann.id);
    members
        .update_profile(ann.id, &patch, std::slice::from_ref(&ann_updated))
        .await
        .expect("updated");
    let taken = members.update_profile(bob.id, &patch, &[updated(bob.id)]).await;
    assert!(matches!(taken, Err(UpdateProfileError::EmailTaken)), "{taken:?}");
    let gone = members.update_profile(MemberId::new(), &patch, &[updated(bob.id)]).await;
    assert!(matches!(gone, Err(UpdateProfileError::NotFound)), "{gone:?}");
    let deleted = Event::record(&MemberEvent::Deleted { member_id: ann.id }, t);
    members.delete(ann.id, t, std::slice::from_ref(&deleted)).await.expect("deleted");
    let again = members.delete(ann.id, t, std::slice::from_ref(&deleted)).await;
    assert!(matches!(again, Err(DeleteMemberError::NotFound)), "{again:?}");

    assert_eq!(crate::stored_events(&db.pool()).await, [ann_updated, deleted]);
}
