use std::sync::Arc;

use chrono::{Duration, SubsecRound as _, TimeZone as _};
use onboard_groups::ports::{GroupRepository, NewGroup};
use onboard_groups::{Group, GroupName, GroupPatch, Permission, Slug};
use onboard_kernel::{ReferralCode, SessionId};
use onboard_members::ports::{MemberRepository, NewSession, SignInRequest};
use onboard_members::{PersonName, ProfilePatch, TokenHash};
use tokio::sync::Barrier;

use super::*;

/// `s` seconds after a fixed start, plus 789 nanoseconds (finer than storage keeps).
fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 789).single().expect("valid") + Duration::seconds(s)
}

/// `t(s)` as storage keeps it.
fn kept(s: i64) -> DateTime<Utc> {
    t(s).trunc_subsecs(6)
}

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+7917555{n:04}"), None).expect("valid")
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("an e-mail")
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).expect("a role name")
}

/// The store as each port sees it (their method names overlap).
fn invites(store: &MemoryStore) -> &dyn InviteRepository {
    store
}

fn groups(store: &MemoryStore) -> &dyn GroupRepository {
    store
}

fn members(store: &MemoryStore) -> &dyn MemberRepository {
    store
}

/// A new member with phone `n`.
async fn member(store: &MemoryStore, n: u32) -> MemberId {
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&n.to_be_bytes());
    let request = SignInRequest {
        phone: phone(n),
        new_member_id: MemberId::new(),
        new_referral_code: ReferralCode::parse(&format!("R{n:05}")).expect("a code"),
        referred_by: None,
        session: NewSession {
            kind: onboard_members::SessionKind::Rotating,
            id: SessionId::new(),
            refresh_hash: TokenHash(hash),
            user_agent: None,
            expires_at: t(3600),
        },
        personal_workspace: None,
        created_events: Vec::new(),
        now: t(0),
    };
    members(store).sign_in(request).await.expect("signs up").member.id
}

/// Gives `member` a first name and an e-mail.
async fn profile(store: &MemoryStore, member: MemberId, first_name: &str, address: &str) {
    let patch = ProfilePatch {
        first_name: Some(PersonName::parse(first_name).expect("a name")),
        last_name: None,
        email: Some(email(address)),
    };
    members(store).update_profile(member, &patch, &[]).await.expect("updates");
}

/// A new group `slug` owned by `owner`, created at `t(0)`.
async fn group(store: &MemoryStore, slug: &str, owner: MemberId, approval_required: bool) -> Group {
    let new = NewGroup {
        id: GroupId::new(),
        slug: Slug::parse(slug).expect("a slug"),
        name: GroupName::parse(&format!("Group {slug}")).expect("a name"),
        approval_required: false,
        owner,
        now: t(0),
    };
    let created = groups(store).create(&new, &[]).await.expect("creates");
    if !approval_required {
        return created;
    }
    let patch = GroupPatch { name: None, approval_required: Some(true) };
    groups(store).update(created.id, &patch).await.expect("updates").expect("exists")
}

async fn join(store: &MemoryStore, group: GroupId, member: MemberId, status: MembershipStatus) {
    groups(store).join(group, member, status, t(0), &[]).await.expect("joins");
}

/// An invite to `group` by `by`, created at `at`, expiring a day later, as `member`.
fn new_invite(
    group: GroupId,
    by: MemberId,
    phone: Option<PhoneNumber>,
    email: Option<Email>,
    at: DateTime<Utc>,
) -> NewInvite {
    NewInvite {
        id: InviteId::new(),
        group,
        name: InviteeName::parse("Ann Lee").expect("a name"),
        phone,
        email,
        role: RoleName::MEMBER,
        invited_by: by,
        created_at: at,
        expires_at: at + Duration::days(1),
        sms_charge: None,
    }
}

/// Stores an invite to `group` by `by` for phone `n`, created at `t(0)`.
async fn invite_phone(store: &MemoryStore, group: GroupId, by: MemberId, n: u32) -> NewInvite {
    let invite = new_invite(group, by, Some(phone(n)), None, t(0));
    invites(store).create(&invite, &[]).await.expect("creates");
    invite
}

/// Accept events the tests that do not look at the outbox hand over.
fn any_events() -> AcceptEvents {
    AcceptEvents {
        invite: InviteId::new(),
        group: GroupId::new(),
        invited_by: MemberId::new(),
        member: MemberId::new(),
        role: RoleName::MEMBER,
        at: t(0),
    }
}

async fn status(store: &MemoryStore, invite: InviteId) -> InviteStatus {
    invites(store).get(invite).await.expect("gets").expect("exists").status
}

async fn membership(
    store: &MemoryStore,
    group: GroupId,
    member: MemberId,
) -> Option<(RoleName, MembershipStatus, DateTime<Utc>)> {
    let found = groups(store).member(group, member).await.expect("gets");
    found.map(|m| (m.role, m.status, m.joined_at))
}

async fn count(store: &MemoryStore, group: GroupId) -> usize {
    invites(store).list(group, None, None, 100, t(0)).await.expect("lists").len()
}

// ---- create, get ---------------------------------------------------------------------------

#[tokio::test]
async fn a_created_invite_reads_back_pending_with_its_group_slug() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let mut new = new_invite(g.id, ann, Some(phone(2)), Some(email("bo@example.com")), t(0));
    new.role = RoleName::ADMIN;

    invites(&store).create(&new, &[]).await.expect("creates");

    let invite = invites(&store).get(new.id).await.expect("gets").expect("exists");
    assert_eq!((invite.id, invite.group, invite.group_slug), (new.id, g.id, g.slug));
    assert_eq!(invite.name.as_str(), "Ann Lee");
    assert_eq!((invite.phone, invite.email), (Some(phone(2)), Some(email("bo@example.com"))));
    assert_eq!((invite.role, invite.status), (RoleName::ADMIN, InviteStatus::Pending));
    assert_eq!(invite.invited_by, ann);
    assert_eq!((invite.created_at, invite.expires_at), (kept(0), kept(86_400)));
    assert_eq!(invites(&store).get(InviteId::new()).await.expect("gets"), None);
}

#[tokio::test]
async fn inviting_an_active_member_by_phone_or_email_is_refused_and_writes_nothing() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    profile(&store, bob, "Bob", "bob@example.com").await;
    let g = group(&store, "acme", ann, false).await;
    join(&store, g.id, bob, MembershipStatus::Active).await;

    for (phone, email) in [
        (Some(phone(2)), None),
        (None, Some(email("bob@example.com"))),
        (Some(phone(9)), Some(email("bob@example.com"))),
    ] {
        let refused = invites(&store).create(&new_invite(g.id, ann, phone, email, t(0)), &[]).await;
        assert!(matches!(refused, Err(CreateInviteRefusal::AlreadyMember)), "{refused:?}");
    }
    assert_eq!(count(&store, g.id).await, 0);

    let other = group(&store, "other", ann, false).await;
    invites(&store)
        .create(&new_invite(other.id, ann, Some(phone(2)), None, t(0)), &[])
        .await
        .expect("ok");
}

#[tokio::test]
async fn a_join_request_or_a_deleted_member_does_not_count_as_a_member() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let cid = member(&store, 3).await;
    let g = group(&store, "acme", ann, false).await;
    join(&store, g.id, bob, MembershipStatus::Pending).await;
    join(&store, g.id, cid, MembershipStatus::Active).await;
    members(&store).delete(cid, t(0), &[]).await.expect("deletes");

    invites(&store)
        .create(&new_invite(g.id, ann, Some(phone(2)), None, t(0)), &[])
        .await
        .expect("bob");
    invites(&store)
        .create(&new_invite(g.id, ann, Some(phone(3)), None, t(0)), &[])
        .await
        .expect("cid");
}

#[tokio::test]
async fn a_second_live_invite_naming_the_same_phone_or_email_is_refused() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let first = new_invite(g.id, ann, Some(phone(2)), Some(email("bo@example.com")), t(0));
    invites(&store).create(&first, &[]).await.expect("creates");

    for (phone, email) in [
        (Some(phone(2)), None),
        (None, Some(email("bo@example.com"))),
        (Some(phone(3)), Some(email("bo@example.com"))),
        (Some(phone(2)), Some(email("other@example.com"))),
    ] {
        let refused =
            invites(&store).create(&new_invite(g.id, ann, phone, email, t(60)), &[]).await;
        assert!(matches!(refused, Err(CreateInviteRefusal::InvitePending)), "{refused:?}");
    }
    assert_eq!(count(&store, g.id).await, 1, "nothing written");

    let other = new_invite(g.id, ann, Some(phone(3)), Some(email("cy@example.com")), t(60));
    invites(&store).create(&other, &[]).await.expect("creates");
    let elsewhere = group(&store, "other", ann, false).await;
    let there = new_invite(elsewhere.id, ann, Some(phone(2)), None, t(60));
    invites(&store).create(&there, &[]).await.expect("creates");
}

#[tokio::test]
async fn already_member_comes_before_invite_pending() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    invite_phone(&store, g.id, ann, 2).await;
    let bob = member(&store, 2).await;
    join(&store, g.id, bob, MembershipStatus::Active).await;

    let refused =
        invites(&store).create(&new_invite(g.id, ann, Some(phone(2)), None, t(0)), &[]).await;

    assert!(matches!(refused, Err(CreateInviteRefusal::AlreadyMember)), "{refused:?}");
}

#[tokio::test]
async fn an_expired_pending_invite_does_not_block_a_new_one() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let old = invite_phone(&store, g.id, ann, 2).await;

    // Exactly at the old invite's expiry: it is expired.
    let new = new_invite(g.id, ann, Some(phone(2)), None, old.expires_at);
    invites(&store).create(&new, &[]).await.expect("creates");

    let at = new.created_at;
    let listed = invites(&store).list(g.id, None, None, 10, at).await.expect("lists");
    let statuses: Vec<_> =
        listed.iter().map(|(i, _)| (i.id, i.status.as_of(i.expires_at, at))).collect();
    assert_eq!(statuses, [(new.id, InviteStatus::Pending), (old.id, InviteStatus::Expired)]);
    let expired = invites(&store).list(g.id, Some(InviteStatus::Expired), None, 10, at).await;
    assert_eq!(expired.expect("lists").iter().map(|(i, _)| i.id).collect::<Vec<_>>(), [old.id]);
    let bob = member(&store, 2).await;
    let refused = invites(&store).accept(old.id, bob, at, &any_events()).await;
    assert!(matches!(refused, Err(AcceptRefusal::NotFound)), "{refused:?}");
}

#[tokio::test]
async fn a_revoked_or_accepted_invite_does_not_block_a_new_one() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let revoked = invite_phone(&store, g.id, ann, 2).await;
    assert!(invites(&store).revoke(g.id, revoked.id, t(0), &[]).await.expect("revokes"));

    let again = invite_phone(&store, g.id, ann, 2).await;

    assert_eq!(status(&store, again.id).await, InviteStatus::Pending);
    let bob = member(&store, 2).await;
    invites(&store).accept(again.id, bob, t(0), &any_events()).await.expect("accepts");
    groups(&store).remove(g.id, bob, &RoleName::MEMBER, &[]).await.expect("removes bob");
    invite_phone(&store, g.id, ann, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_creates_for_the_same_phone_end_in_one_invite_and_one_refusal() {
    let store = Arc::new(MemoryStore::new());
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let start = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = ["a@example.com", "b@example.com"]
        .into_iter()
        .map(|address| {
            let (store, start) = (store.clone(), start.clone());
            let invite = new_invite(g.id, ann, Some(phone(2)), Some(email(address)), t(0));
            tokio::spawn(async move {
                start.wait().await;
                invites(&store).create(&invite, &[]).await
            })
        })
        .collect();
    let (mut created, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("the task ran") {
            Ok(()) => created += 1,
            Err(CreateInviteRefusal::InvitePending) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((created, refused), (1, 1));
    assert_eq!(count(&store, g.id).await, 1);
}

// ---- list --------------------------------------------------------------------------------

#[tokio::test]
async fn the_list_filters_by_status_as_of_now() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 3).await;
    let g = group(&store, "acme", ann, false).await;
    let pending = invite_phone(&store, g.id, ann, 2).await;
    let accepted = invite_phone(&store, g.id, ann, 3).await;
    let revoked = invite_phone(&store, g.id, ann, 4).await;
    let mut short = new_invite(g.id, ann, Some(phone(5)), None, t(0));
    short.expires_at = t(300);
    invites(&store).create(&short, &[]).await.expect("creates");
    invites(&store).accept(accepted.id, bob, t(0), &any_events()).await.expect("accepts");
    invites(&store).revoke(g.id, revoked.id, t(0), &[]).await.expect("revokes");

    let ids = async |status, now| {
        let listed = invites(&store).list(g.id, status, None, 10, now).await.expect("lists");
        let mut ids: Vec<InviteId> = listed.into_iter().map(|(i, _)| i.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(Some(InviteStatus::Pending), t(300)).await, [pending.id]);
    assert_eq!(ids(Some(InviteStatus::Expired), t(300)).await, [short.id]);
    assert_eq!(ids(Some(InviteStatus::Accepted), t(300)).await, [accepted.id]);
    assert_eq!(ids(Some(InviteStatus::Revoked), t(300)).await, [revoked.id]);
    let mut all = vec![pending.id, accepted.id, revoked.id, short.id];
    all.sort();
    assert_eq!(ids(None, t(300)).await, all);
    assert_eq!(ids(Some(InviteStatus::Pending), t(299)).await.len(), 2, "not yet expired");
    let other = group(&store, "other", ann, false).await;
    assert!(invites(&store).list(other.id, None, None, 10, t(0)).await.expect("lists").is_empty());
}

#[tokio::test]
async fn the_list_runs_newest_first_in_keyset_pages_through_ties() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let mut made = Vec::new();
    for (n, at) in [(2, 0), (3, 0), (4, 0), (5, 1), (6, 2)] {
        let invite = new_invite(g.id, ann, Some(phone(n)), None, t(at));
        invites(&store).create(&invite, &[]).await.expect("creates");
        made.push((kept(at), invite.id));
    }
    made.sort();
    made.reverse();
    let expected: Vec<InviteId> = made.into_iter().map(|(_, id)| id).collect();

    let mut seen = Vec::new();
    let mut after: Option<InviteCursor> = None;
    loop {
        // Through the text form, as a client hands the cursor back.
        let page = invites(&store).list(g.id, None, after, 2, t(0)).await.expect("lists");
        let Some((_, last)) = page.last() else { break };
        after = InviteCursor::decode(&last.encode());
        assert!(after.is_some());
        seen.extend(page.iter().map(|(i, _)| i.id));
    }
    assert_eq!(seen, expected);
}

// ---- revoke, preview, member_phone -----------------------------------------------------------

#[tokio::test]
async fn revoking_changes_only_a_pending_invite_of_that_group() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 3).await;
    let g = group(&store, "acme", ann, false).await;
    let other = group(&store, "other", ann, false).await;
    let pending = invite_phone(&store, g.id, ann, 2).await;
    let accepted = invite_phone(&store, g.id, ann, 3).await;
    let mut expired = new_invite(g.id, ann, Some(phone(4)), None, t(0));
    expired.expires_at = t(0);
    invites(&store).create(&expired, &[]).await.expect("creates");
    invites(&store).accept(accepted.id, bob, t(0), &any_events()).await.expect("accepts");

    assert!(!invites(&store).revoke(other.id, pending.id, t(0), &[]).await.expect("revokes"));
    assert_eq!(status(&store, pending.id).await, InviteStatus::Pending);
    assert!(!invites(&store).revoke(g.id, InviteId::new(), t(0), &[]).await.expect("revokes"));

    for id in [pending.id, expired.id, accepted.id, pending.id] {
        assert!(invites(&store).revoke(g.id, id, t(0), &[]).await.expect("revokes"));
    }

    assert_eq!(status(&store, pending.id).await, InviteStatus::Revoked);
    assert_eq!(status(&store, expired.id).await, InviteStatus::Revoked);
    assert_eq!(status(&store, accepted.id).await, InviteStatus::Accepted);
    let refused = invites(&store).accept(pending.id, bob, t(0), &any_events()).await;
    assert!(matches!(refused, Err(AcceptRefusal::NotFound)), "{refused:?}");
}

#[tokio::test]
async fn a_preview_shows_the_group_the_inviter_and_the_invitee() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    profile(&store, ann, "Ann", "ann@example.com").await;
    let g = group(&store, "acme", ann, false).await;
    let invite = invite_phone(&store, g.id, ann, 2).await;

    let preview = invites(&store).preview(invite.id).await.expect("previews").expect("exists");

    assert_eq!((preview.group_slug, preview.group_name), (g.slug, g.name));
    assert_eq!(preview.inviter_first_name.as_deref(), Some("Ann"));
    assert_eq!(preview.name.as_str(), "Ann Lee");
    assert_eq!((preview.expires_at, preview.status), (kept(86_400), InviteStatus::Pending));
    assert_eq!(invites(&store).preview(InviteId::new()).await.expect("previews"), None);
    invites(&store).revoke(g.id, invite.id, t(0), &[]).await.expect("revokes");
    let revoked = invites(&store).preview(invite.id).await.expect("previews").expect("exists");
    assert_eq!(revoked.status, InviteStatus::Revoked);
}

#[tokio::test]
async fn a_preview_shows_no_first_name_for_an_inviter_without_one_or_deleted() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    profile(&store, bob, "Bob", "bob@example.com").await;
    let g = group(&store, "acme", ann, false).await;
    join(&store, g.id, bob, MembershipStatus::Active).await;
    let by_ann = invite_phone(&store, g.id, ann, 3).await;
    let by_bob = invite_phone(&store, g.id, bob, 4).await;
    members(&store).delete(bob, t(0), &[]).await.expect("deletes bob");

    for id in [by_ann.id, by_bob.id] {
        let preview = invites(&store).preview(id).await.expect("previews").expect("exists");
        assert_eq!(preview.inviter_first_name, None);
    }
}

#[tokio::test]
async fn accepting_reads_the_invite_with_the_callers_phone_while_they_are_live() {
    let store = MemoryStore::new();
    let (owner, ann) = (member(&store, 1).await, member(&store, 2).await);
    let g = group(&store, "acme", owner, false).await;
    let invite = invite_phone(&store, g.id, owner, 2).await;

    let (found, phone_of_ann) =
        invites(&store).for_accept(invite.id, ann).await.expect("reads").expect("exists");
    assert_eq!((found.id, found.phone), (invite.id, Some(phone(2))));
    assert_eq!(phone_of_ann, Some(phone(2)));
    let (_, nobody) = invites(&store)
        .for_accept(invite.id, MemberId::new())
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(nobody, None);
    assert_eq!(invites(&store).for_accept(InviteId::new(), ann).await.expect("reads"), None);
    members(&store).delete(ann, t(0), &[]).await.expect("deletes");
    let (_, deleted) =
        invites(&store).for_accept(invite.id, ann).await.expect("reads").expect("exists");
    assert_eq!(deleted, None);
}

// ---- accept ------------------------------------------------------------------------------

#[tokio::test]
async fn accepting_joins_with_the_invites_role_and_uses_the_invite_up() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann, false).await;
    let mut invite = new_invite(g.id, ann, Some(phone(2)), None, t(0));
    invite.role = RoleName::ADMIN;
    invites(&store).create(&invite, &[]).await.expect("creates");

    let record =
        invites(&store).accept(invite.id, bob, t(60), &any_events()).await.expect("accepts");

    assert_eq!(record.outcome, AcceptOutcome::Joined);
    assert_eq!(record.group, MyGroup { group: g.clone(), my_role: RoleName::ADMIN });
    assert_eq!(
        membership(&store, g.id, bob).await,
        Some((RoleName::ADMIN, MembershipStatus::Active, kept(60)))
    );
    assert_eq!(status(&store, invite.id).await, InviteStatus::Accepted);
    let again = invites(&store).accept(invite.id, bob, t(60), &any_events()).await;
    assert!(matches!(again, Err(AcceptRefusal::NotFound)), "{again:?}");
}

#[tokio::test]
async fn an_expired_or_unknown_invite_cannot_be_accepted_and_nothing_is_written() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann, false).await;
    let invite = invite_phone(&store, g.id, ann, 2).await;

    let expired = invites(&store).accept(invite.id, bob, invite.expires_at, &any_events()).await;
    let unknown = invites(&store).accept(InviteId::new(), bob, t(0), &any_events()).await;

    assert!(matches!(expired, Err(AcceptRefusal::NotFound)), "{expired:?}");
    assert!(matches!(unknown, Err(AcceptRefusal::NotFound)), "{unknown:?}");
    assert_eq!(status(&store, invite.id).await, InviteStatus::Pending);
    assert_eq!(membership(&store, g.id, bob).await, None);
}

#[tokio::test]
async fn an_active_member_accepting_keeps_their_role() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann, false).await;
    join(&store, g.id, bob, MembershipStatus::Active).await;
    let mut invite = new_invite(g.id, ann, None, Some(email("bob@example.com")), t(0));
    invite.role = RoleName::ADMIN;
    invites(&store).create(&invite, &[]).await.expect("creates");

    let record =
        invites(&store).accept(invite.id, bob, t(60), &any_events()).await.expect("accepts");

    assert_eq!(
        (record.outcome, record.group.my_role),
        (AcceptOutcome::AlreadyMember, RoleName::MEMBER)
    );
    assert_eq!(
        membership(&store, g.id, bob).await,
        Some((RoleName::MEMBER, MembershipStatus::Active, kept(0)))
    );
    assert_eq!(status(&store, invite.id).await, InviteStatus::Accepted);
}

#[tokio::test]
async fn accepting_into_a_group_that_requires_approval_leaves_a_join_request() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let cid = member(&store, 3).await;
    let g = group(&store, "acme", ann, true).await;
    let mut for_bob = new_invite(g.id, ann, Some(phone(2)), None, t(0));
    for_bob.role = RoleName::ADMIN;
    invites(&store).create(&for_bob, &[]).await.expect("creates");
    let for_cid = invite_phone(&store, g.id, ann, 3).await;
    join(&store, g.id, cid, MembershipStatus::Pending).await;

    let bob_record =
        invites(&store).accept(for_bob.id, bob, t(60), &any_events()).await.expect("accepts");
    let cid_record =
        invites(&store).accept(for_cid.id, cid, t(60), &any_events()).await.expect("accepts");

    assert_eq!(bob_record.outcome, AcceptOutcome::PendingApproval);
    assert_eq!(bob_record.group.my_role, RoleName::MEMBER);
    assert!(bob_record.group.group.approval_required);
    assert_eq!(
        membership(&store, g.id, bob).await,
        Some((RoleName::MEMBER, MembershipStatus::Pending, kept(60)))
    );
    assert_eq!(cid_record.outcome, AcceptOutcome::PendingApproval);
    assert_eq!(
        membership(&store, g.id, cid).await,
        Some((RoleName::MEMBER, MembershipStatus::Pending, kept(0))),
        "the earlier request stays as it was"
    );
    assert_eq!(status(&store, for_bob.id).await, InviteStatus::Accepted);
}

#[tokio::test]
async fn an_active_member_accepting_into_a_group_that_requires_approval_stays_active() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, true).await;
    let invite = new_invite(g.id, ann, None, Some(email("ann2@example.com")), t(0));
    invites(&store).create(&invite, &[]).await.expect("creates");

    let record =
        invites(&store).accept(invite.id, ann, t(0), &any_events()).await.expect("accepts");

    assert_eq!(
        (record.outcome, record.group.my_role),
        (AcceptOutcome::AlreadyMember, RoleName::OWNER)
    );
    assert_eq!(
        membership(&store, g.id, ann).await.map(|(r, s, _)| (r, s)),
        Some((RoleName::OWNER, MembershipStatus::Active))
    );
}

#[tokio::test]
async fn accepting_makes_a_pending_join_request_an_active_membership() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann, false).await;
    join(&store, g.id, bob, MembershipStatus::Pending).await;
    let mut invite = new_invite(g.id, ann, Some(phone(2)), None, t(0));
    invite.role = RoleName::ADMIN;
    invites(&store).create(&invite, &[]).await.expect("creates");

    let record =
        invites(&store).accept(invite.id, bob, t(60), &any_events()).await.expect("accepts");

    assert_eq!((record.outcome, record.group.my_role), (AcceptOutcome::Joined, RoleName::ADMIN));
    assert_eq!(
        membership(&store, g.id, bob).await,
        Some((RoleName::ADMIN, MembershipStatus::Active, kept(60)))
    );
}

#[tokio::test]
async fn a_custom_role_deleted_since_the_invite_grants_member() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let cid = member(&store, 3).await;
    let g = group(&store, "acme", ann, false).await;
    let perms = [Permission::INVITES_MANAGE].into_iter().collect();
    groups(&store).create_role(g.id, &role("staff"), &perms).await.expect("creates staff");
    groups(&store).create_role(g.id, &role("temp"), &perms).await.expect("creates temp");
    let mut kept_role = new_invite(g.id, ann, Some(phone(2)), None, t(0));
    kept_role.role = role("staff");
    let mut gone = new_invite(g.id, ann, Some(phone(3)), None, t(0));
    gone.role = role("temp");
    invites(&store).create(&kept_role, &[]).await.expect("creates");
    invites(&store).create(&gone, &[]).await.expect("creates");
    groups(&store).delete_role(g.id, &role("temp")).await.expect("deletes");

    let staff =
        invites(&store).accept(kept_role.id, bob, t(0), &any_events()).await.expect("accepts");
    let plain = invites(&store).accept(gone.id, cid, t(0), &any_events()).await.expect("accepts");

    assert_eq!(staff.group.my_role, role("staff"));
    assert_eq!(membership(&store, g.id, bob).await.map(|(r, ..)| r), Some(role("staff")));
    assert_eq!((plain.outcome, plain.group.my_role), (AcceptOutcome::Joined, RoleName::MEMBER));
    assert_eq!(membership(&store, g.id, cid).await.map(|(r, ..)| r), Some(RoleName::MEMBER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_eight_concurrent_accepts_of_one_invite_exactly_one_succeeds() {
    let store = Arc::new(MemoryStore::new());
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let mut takers = Vec::new();
    for n in 2..10 {
        takers.push(member(&store, n).await);
    }
    let invite = new_invite(g.id, ann, None, Some(email("all@example.com")), t(0));
    invites(&store).create(&invite, &[]).await.expect("creates");

    let start = Arc::new(Barrier::new(takers.len()));
    let tasks: Vec<_> = takers
        .iter()
        .map(|&taker| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                (taker, invites(&store).accept(invite.id, taker, t(0), &any_events()).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("the task ran") {
            (taker, Ok(record)) => {
                assert_eq!(record.outcome, AcceptOutcome::Joined);
                winners.push(taker);
            }
            (_, Err(AcceptRefusal::NotFound)) => {}
            (_, Err(e)) => panic!("unexpected {e:?}"),
        }
    }

    assert_eq!(winners.len(), 1);
    let active = groups(&store).members(g.id, MembershipStatus::Active, None, 100).await;
    let mut active: Vec<MemberId> =
        active.expect("lists").into_iter().map(|(m, _)| m.member_id).collect();
    active.sort();
    let mut expected = vec![ann, winners[0]];
    expected.sort();
    assert_eq!(active, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_an_accept_and_a_revoke_at_once_exactly_one_wins() {
    let store = Arc::new(MemoryStore::new());
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann, false).await;
    for round in 0..10 {
        let invite = new_invite(g.id, ann, None, Some(email("bob@example.com")), t(0));
        invites(&store).create(&invite, &[]).await.expect("creates");
        let start = Arc::new(Barrier::new(2));
        let accept = {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                invites(&store).accept(invite.id, bob, t(0), &any_events()).await
            })
        };
        let revoke = {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                invites(&store).revoke(g.id, invite.id, t(0), &[]).await
            })
        };
        let accepted = accept.await.expect("the task ran");
        assert!(revoke.await.expect("the task ran").expect("revokes"), "round {round}");

        match accepted {
            Ok(_) => {
                assert_eq!(status(&store, invite.id).await, InviteStatus::Accepted);
                groups(&store).remove(g.id, bob, &RoleName::MEMBER, &[]).await.expect("removes");
            }
            Err(AcceptRefusal::NotFound) => {
                assert_eq!(status(&store, invite.id).await, InviteStatus::Revoked);
                assert_eq!(membership(&store, g.id, bob).await, None, "round {round}");
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

// ---- cascade -----------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_group_deletes_its_invites() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann, false).await;
    let kept_group = group(&store, "kept", ann, false).await;
    let invite = invite_phone(&store, g.id, ann, 2).await;
    let other = invite_phone(&store, kept_group.id, ann, 2).await;

    assert!(groups(&store).delete(g.id, &[]).await.expect("deletes"));

    assert_eq!(invites(&store).get(invite.id).await.expect("gets"), None);
    assert_eq!(invites(&store).preview(invite.id).await.expect("previews"), None);
    let refused = invites(&store).accept(invite.id, bob, t(0), &any_events()).await;
    assert!(matches!(refused, Err(AcceptRefusal::NotFound)), "{refused:?}");
    assert!(!invites(&store).revoke(g.id, invite.id, t(0), &[]).await.expect("revokes"));
    assert_eq!(status(&store, other.id).await, InviteStatus::Pending);
}

#[tokio::test]
async fn deleting_a_member_who_is_alone_in_a_group_deletes_its_invites() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let invite = invite_phone(&store, g.id, ann, 2).await;

    members(&store).delete(ann, t(0), &[]).await.expect("deletes");

    assert_eq!(invites(&store).get(invite.id).await.expect("gets"), None);
}

// Events -------------------------------------------------------------------------------------

/// The types of the events in the outbox, oldest first.
fn recorded(store: &MemoryStore) -> Vec<String> {
    store.state().outbox.all().map(|e| e.event_type.clone()).collect()
}

/// The events of `member` accepting `invite`.
fn accept_events(invite: &NewInvite, member: MemberId) -> AcceptEvents {
    AcceptEvents {
        invite: invite.id,
        group: invite.group,
        invited_by: invite.invited_by,
        member,
        role: invite.role.clone(),
        at: t(60),
    }
}

fn created(invite: &NewInvite) -> Vec<Event> {
    Event::records(&[onboard_invites::events::InviteEvent::created(invite)], t(0))
}

#[tokio::test]
async fn a_create_stores_its_events_and_a_refused_one_stores_none() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let before = recorded(&store).len();
    let invite = new_invite(g.id, ann, Some(phone(2)), None, t(0));

    invites(&store).create(&invite, &created(&invite)).await.expect("creates");
    let twin = new_invite(g.id, ann, Some(phone(2)), None, t(0));
    let refused = invites(&store).create(&twin, &created(&twin)).await;

    assert!(matches!(refused, Err(CreateInviteRefusal::InvitePending)), "{refused:?}");
    assert_eq!(recorded(&store)[before..], ["invite.created"]);
}

#[tokio::test]
async fn an_accept_stores_its_events_as_the_membership_settled() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let (bob, cid, dan) =
        (member(&store, 2).await, member(&store, 3).await, member(&store, 4).await);
    let open = group(&store, "acme", ann, false).await;
    let gated = group(&store, "gated", ann, true).await;
    join(&store, gated.id, dan, MembershipStatus::Pending).await;
    let joins = invite_phone(&store, open.id, ann, 2).await;
    let asks = invite_phone(&store, gated.id, ann, 3).await;
    let waits = invite_phone(&store, gated.id, ann, 4).await;

    let mut seen = Vec::new();
    for (invite, member) in [(&joins, bob), (&asks, cid), (&waits, dan)] {
        let before = recorded(&store).len();
        let events = accept_events(invite, member);
        invites(&store).accept(invite.id, member, t(60), &events).await.expect("accepts");
        seen.push(recorded(&store)[before..].to_vec());
    }

    assert_eq!(seen[0], ["invite.accepted", "group.member_joined"]);
    assert_eq!(seen[1], ["invite.accepted", "group.join_requested"]);
    assert_eq!(seen[2], ["invite.accepted"], "the join request was pending already");
    let state = store.state();
    let joined = state.outbox.all().find(|e| e.event_type == "group.member_joined");
    let joined = joined.and_then(|e| e.decode::<onboard_groups::events::GroupEvent>());
    assert_eq!(
        joined,
        Some(onboard_groups::events::GroupEvent::MemberJoined {
            group_id: open.id,
            member_id: bob,
            role: "member".to_owned(),
            via: onboard_groups::events::JoinedVia::Invite,
        })
    );
}

#[tokio::test]
async fn a_refused_or_lost_accept_and_a_no_op_revoke_store_no_events() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let bob = member(&store, 2).await;
    let g = group(&store, "acme", ann, false).await;
    let invite = invite_phone(&store, g.id, ann, 2).await;
    let events = accept_events(&invite, bob);
    invites(&store).accept(invite.id, bob, t(60), &events).await.expect("accepts");
    let before = recorded(&store).len();

    let lost = invites(&store).accept(invite.id, bob, t(60), &events).await;
    let expired = invite_phone(&store, g.id, ann, 3).await;
    let after_create = recorded(&store).len();
    let late = invites(&store).accept(expired.id, bob, expired.expires_at, &any_events()).await;
    let revoked = Event::records(
        &[onboard_invites::events::InviteEvent::Revoked {
            invite_id: invite.id,
            group_id: g.id,
            by: ann,
        }],
        t(60),
    );
    let found = invites(&store).revoke(g.id, invite.id, t(60), &revoked).await.expect("revokes");

    assert!(matches!(lost, Err(AcceptRefusal::NotFound)), "{lost:?}");
    assert!(matches!(late, Err(AcceptRefusal::NotFound)), "{late:?}");
    assert!(found, "the invite exists, accepted");
    assert_eq!(after_create, before, "invite_phone hands no events");
    assert_eq!(recorded(&store).len(), before);
}

#[tokio::test]
async fn a_revoke_of_a_pending_invite_stores_its_events() {
    let store = MemoryStore::new();
    let ann = member(&store, 1).await;
    let g = group(&store, "acme", ann, false).await;
    let invite = invite_phone(&store, g.id, ann, 2).await;
    let before = recorded(&store).len();
    let revoked = Event::records(
        &[onboard_invites::events::InviteEvent::Revoked {
            invite_id: invite.id,
            group_id: g.id,
            by: ann,
        }],
        t(60),
    );

    assert!(invites(&store).revoke(g.id, invite.id, t(60), &revoked).await.expect("revokes"));

    assert_eq!(recorded(&store)[before..], ["invite.revoked"]);
}
