use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use onboard_groups::ports::GroupRepository;
use onboard_groups::{Group, GroupPatch, MembershipStatus, Permission, RoleName};
use onboard_invites::events::{AcceptEvents, InviteEvent};
use onboard_invites::ports::{InviteRepository, NewInvite};
use onboard_invites::{
    AcceptOutcome, AcceptRefusal, CreateInviteRefusal, InviteCursor, InviteId, InviteStatus,
    InviteeName,
};
use onboard_kernel::events::Event;
use onboard_kernel::{Email, GroupId, MemberId, PhoneNumber};
use onboard_members::ports::MemberRepository;
use onboard_members::{PersonName, ProfilePatch};
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{PgGroupRepository, PgInviteRepository, PgMemberRepository, connect};
use tokio::sync::Barrier;

use crate::groups::new_group;
use crate::{now, phone, rows, sign_in};

/// The repositories of one test database.
struct Fixture {
    db: TestDatabase,
    members: PgMemberRepository,
    groups: PgGroupRepository,
    invites: PgInviteRepository,
    t: DateTime<Utc>,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_pool(8).await
    }

    /// A fixture whose repositories share a pool of `size` connections (for races).
    async fn with_pool(size: usize) -> Self {
        let db = TestDatabase::new().await;
        let pool = connect(db.url(), size).await.expect("a pool");
        Self {
            members: PgMemberRepository::new(pool.clone()),
            groups: PgGroupRepository::new(pool.clone()),
            invites: PgInviteRepository::new(pool),
            db,
            t: now(),
        }
    }

    /// A new member with phone `n`.
    async fn member(&self, n: u32) -> MemberId {
        self.members.sign_in(sign_in(&phone(n), self.t)).await.expect("signs up").member.id
    }

    /// Gives `member` a first name and an e-mail.
    async fn profile(&self, member: MemberId, first_name: &str, email: &Email) {
        let patch = ProfilePatch {
            first_name: Some(PersonName::parse(first_name).expect("a name")),
            last_name: None,
            email: Some(email.clone()),
        };
        self.members.update_profile(member, &patch, &[]).await.expect("updates");
    }

    /// A new open group `slug` owned by `owner`.
    async fn group(&self, slug: &str, owner: MemberId) -> Group {
        self.groups.create(&new_group(slug, owner, self.t), &[]).await.expect("creates")
    }

    /// A new group `slug` owned by `owner` whose join requests wait for approval.
    async fn approval_group(&self, slug: &str, owner: MemberId) -> Group {
        let group = self.group(slug, owner).await;
        let patch = GroupPatch { name: None, approval_required: Some(true) };
        self.groups.update(group.id, &patch).await.expect("updates").expect("exists")
    }

    /// Stores an invite to `group` by `by` for phone `n`, created at `self.t`, living a day.
    async fn invite_phone(&self, group: GroupId, by: MemberId, n: u32) -> NewInvite {
        let invite = new_invite(group, by, Some(phone(n)), None, self.t);
        self.invites.create(&invite, &[]).await.expect("creates");
        invite
    }

    /// `member`'s membership of `group`: role and status.
    async fn membership(
        &self,
        group: GroupId,
        member: MemberId,
    ) -> Option<(RoleName, MembershipStatus)> {
        let found = self.groups.member(group, member).await.expect("gets");
        found.map(|m| (m.role, m.status))
    }

    /// The stored status of `invite`.
    async fn status(&self, invite: InviteId) -> InviteStatus {
        self.invites.get(invite).await.expect("gets").expect("exists").status
    }
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

/// Accept events the tests that do not look at the outbox hand over.
fn any_events() -> AcceptEvents {
    AcceptEvents {
        invite: InviteId::new(),
        group: GroupId::new(),
        invited_by: MemberId::new(),
        member: MemberId::new(),
        role: RoleName::MEMBER,
        at: now(),
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("an e-mail")
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).expect("a role name")
}

// ---- create, get ---------------------------------------------------------------------------

#[tokio::test]
async fn a_created_invite_reads_back_pending_with_its_group_slug() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let mut new = new_invite(group.id, ann, Some(phone(2)), Some(email("bo@example.com")), f.t);
    new.role = RoleName::ADMIN;

    f.invites.create(&new, &[]).await.expect("creates");

    let invite = f.invites.get(new.id).await.expect("gets").expect("exists");
    assert_eq!(invite.id, new.id);
    assert_eq!(invite.group, group.id);
    assert_eq!(invite.group_slug, group.slug);
    assert_eq!(invite.name.as_str(), "Ann Lee");
    assert_eq!(invite.phone, Some(phone(2)));
    assert_eq!(invite.email, Some(email("bo@example.com")));
    assert_eq!(invite.role, RoleName::ADMIN);
    assert_eq!(invite.status, InviteStatus::Pending);
    assert_eq!(invite.invited_by, ann);
    assert_eq!((invite.created_at, invite.expires_at), (f.t, f.t + Duration::days(1)));
    assert_eq!(f.invites.get(InviteId::new()).await.expect("gets"), None);
}

#[tokio::test]
async fn inviting_an_active_member_by_phone_or_email_is_refused_and_writes_nothing() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    f.profile(bob, "Bob", &email("bob@example.com")).await;
    let group = f.group("acme", ann).await;
    f.groups.join(group.id, bob, MembershipStatus::Active, f.t, &[]).await.expect("joins");

    for (phone, email) in [
        (Some(phone(2)), None),
        (None, Some(email("bob@example.com"))),
        (Some(phone(9)), Some(email("bob@example.com"))),
    ] {
        let refused = f.invites.create(&new_invite(group.id, ann, phone, email, f.t), &[]).await;
        assert!(matches!(refused, Err(CreateInviteRefusal::AlreadyMember)), "{refused:?}");
    }
    assert_eq!(rows(&f.db.pool(), "invites").await, 0);

    // Another group is another matter.
    let other = f.group("other", ann).await;
    f.invites
        .create(&new_invite(other.id, ann, Some(phone(2)), None, f.t), &[])
        .await
        .expect("creates");
}

#[tokio::test]
async fn a_join_request_or_a_deleted_member_does_not_count_as_a_member() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cid = f.member(3).await;
    let group = f.group("acme", ann).await;
    f.groups.join(group.id, bob, MembershipStatus::Pending, f.t, &[]).await.expect("asks to join");
    f.groups.join(group.id, cid, MembershipStatus::Active, f.t, &[]).await.expect("joins");
    f.members.delete(cid, f.t, &[]).await.expect("deletes");

    f.invites
        .create(&new_invite(group.id, ann, Some(phone(2)), None, f.t), &[])
        .await
        .expect("bob");
    f.invites
        .create(&new_invite(group.id, ann, Some(phone(3)), None, f.t), &[])
        .await
        .expect("cid");
}

#[tokio::test]
async fn a_second_live_invite_naming_the_same_phone_or_email_is_refused() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let first = new_invite(group.id, ann, Some(phone(2)), Some(email("bo@example.com")), f.t);
    f.invites.create(&first, &[]).await.expect("creates");

    let later = f.t + Duration::hours(1);
    for (phone, email) in [
        (Some(phone(2)), None),
        (None, Some(email("bo@example.com"))),
        (Some(phone(3)), Some(email("bo@example.com"))),
        (Some(phone(2)), Some(email("other@example.com"))),
    ] {
        let refused = f.invites.create(&new_invite(group.id, ann, phone, email, later), &[]).await;
        assert!(matches!(refused, Err(CreateInviteRefusal::InvitePending)), "{refused:?}");
    }
    assert_eq!(rows(&f.db.pool(), "invites").await, 1, "nothing written");

    // Neither a phone nor an e-mail in common, or another group: fine.
    let other = new_invite(group.id, ann, Some(phone(3)), Some(email("cy@example.com")), later);
    f.invites.create(&other, &[]).await.expect("creates");
    let elsewhere = f.group("other", ann).await;
    f.invites
        .create(&new_invite(elsewhere.id, ann, Some(phone(2)), None, later), &[])
        .await
        .expect("creates");
}

#[tokio::test]
async fn already_member_comes_before_invite_pending() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    f.invite_phone(group.id, ann, 2).await;
    let bob = f.member(2).await;
    f.groups.join(group.id, bob, MembershipStatus::Active, f.t, &[]).await.expect("joins");

    let refused =
        f.invites.create(&new_invite(group.id, ann, Some(phone(2)), None, f.t), &[]).await;

    assert!(matches!(refused, Err(CreateInviteRefusal::AlreadyMember)), "{refused:?}");
}

#[tokio::test]
async fn an_expired_pending_invite_does_not_block_a_new_one() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let old = f.invite_phone(group.id, ann, 2).await;

    // Exactly at the old invite's expiry: it is expired.
    let new = new_invite(group.id, ann, Some(phone(2)), None, old.expires_at);
    f.invites.create(&new, &[]).await.expect("creates");

    let listed = f.invites.list(group.id, None, None, 10, new.created_at).await.expect("lists");
    let statuses: Vec<_> =
        listed.iter().map(|(i, _)| (i.id, i.status.as_of(i.expires_at, new.created_at))).collect();
    assert_eq!(statuses, [(new.id, InviteStatus::Pending), (old.id, InviteStatus::Expired)]);
    let expired =
        f.invites.list(group.id, Some(InviteStatus::Expired), None, 10, new.created_at).await;
    assert_eq!(expired.expect("lists").iter().map(|(i, _)| i.id).collect::<Vec<_>>(), [old.id]);
    // The old one cannot be accepted any more.
    let bob = f.member(2).await;
    let refused = f.invites.accept(old.id, bob, new.created_at, &any_events()).await;
    assert!(matches!(refused, Err(AcceptRefusal::NotFound)), "{refused:?}");
}

#[tokio::test]
async fn a_revoked_or_accepted_invite_does_not_block_a_new_one() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let revoked = f.invite_phone(group.id, ann, 2).await;
    assert!(f.invites.revoke(group.id, revoked.id, f.t, &[]).await.expect("revokes"));

    let again = f.invite_phone(group.id, ann, 2).await;

    assert_eq!(f.status(again.id).await, InviteStatus::Pending);
    let bob = f.member(2).await;
    f.invites.accept(again.id, bob, f.t, &any_events()).await.expect("accepts");
    f.groups.remove(group.id, bob, &RoleName::MEMBER, &[]).await.expect("removes bob");
    f.invite_phone(group.id, ann, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_creates_for_the_same_phone_end_in_one_invite_and_one_refusal() {
    let f = Fixture::with_pool(8).await;
    let ann = f.member(1).await;
    for round in 0..10 {
        let group = f.group(&format!("race-{round}"), ann).await;
        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [Some(email("a@example.com")), Some(email("b@example.com"))]
            .into_iter()
            .map(|email| {
                let (invites, start) = (f.invites.clone(), start.clone());
                let invite = new_invite(group.id, ann, Some(phone(2)), email, f.t);
                tokio::spawn(async move {
                    start.wait().await;
                    invites.create(&invite, &[]).await
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
        assert_eq!((created, refused), (1, 1), "round {round}");
        let listed = f.invites.list(group.id, None, None, 10, f.t).await.expect("lists");
        assert_eq!(listed.len(), 1, "round {round}");
    }
}

// ---- list --------------------------------------------------------------------------------

#[tokio::test]
async fn the_list_filters_by_status_as_of_now() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(3).await;
    let group = f.group("acme", ann).await;
    let pending = f.invite_phone(group.id, ann, 2).await;
    let accepted = f.invite_phone(group.id, ann, 3).await;
    let revoked = f.invite_phone(group.id, ann, 4).await;
    let mut short = new_invite(group.id, ann, Some(phone(5)), None, f.t);
    short.expires_at = f.t + Duration::minutes(5);
    f.invites.create(&short, &[]).await.expect("creates");
    f.invites.accept(accepted.id, bob, f.t, &any_events()).await.expect("accepts");
    f.invites.revoke(group.id, revoked.id, f.t, &[]).await.expect("revokes");
    let now = f.t + Duration::minutes(5);

    let ids = async |status| {
        let listed = f.invites.list(group.id, status, None, 10, now).await.expect("lists");
        let mut ids: Vec<InviteId> = listed.into_iter().map(|(i, _)| i.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(Some(InviteStatus::Pending)).await, [pending.id]);
    assert_eq!(ids(Some(InviteStatus::Expired)).await, [short.id]);
    assert_eq!(ids(Some(InviteStatus::Accepted)).await, [accepted.id]);
    assert_eq!(ids(Some(InviteStatus::Revoked)).await, [revoked.id]);
    let mut all = vec![pending.id, accepted.id, revoked.id, short.id];
    all.sort();
    assert_eq!(ids(None).await, all);
    // A minute earlier the short one was still pending.
    let earlier =
        f.invites.list(group.id, Some(InviteStatus::Pending), None, 10, now - Duration::minutes(1));
    assert_eq!(earlier.await.expect("lists").len(), 2);
    // Another group's list is empty.
    let other = f.group("other", ann).await;
    assert!(f.invites.list(other.id, None, None, 10, now).await.expect("lists").is_empty());
}

#[tokio::test]
async fn the_list_runs_newest_first_in_keyset_pages_through_ties() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    // Five invites: three created at the same instant, two later.
    let mut made = Vec::new();
    for (n, at) in [(2, 0), (3, 0), (4, 0), (5, 1), (6, 2)] {
        let invite = new_invite(group.id, ann, Some(phone(n)), None, f.t + Duration::seconds(at));
        f.invites.create(&invite, &[]).await.expect("creates");
        made.push((invite.created_at, invite.id));
    }
    made.sort();
    made.reverse();
    let expected: Vec<InviteId> = made.into_iter().map(|(_, id)| id).collect();

    let mut seen = Vec::new();
    let mut after: Option<InviteCursor> = None;
    loop {
        let page = f.invites.list(group.id, None, after, 2, f.t).await.expect("lists");
        assert!(page.len() <= 2);
        for (invite, cursor) in &page {
            assert_eq!(*cursor, InviteCursor::of(invite));
        }
        seen.extend(page.iter().map(|(i, _)| i.id));
        match page.last() {
            Some((_, cursor)) if page.len() == 2 => after = Some(*cursor),
            _ => break,
        }
    }
    assert_eq!(seen, expected);
    let tail = f.invites.list(group.id, None, after, 2, f.t).await.expect("lists");
    assert!(tail.len() <= 1);
}

// ---- revoke, preview, for_accept -------------------------------------------------------------

#[tokio::test]
async fn revoking_changes_only_a_pending_invite_of_that_group() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(3).await;
    let group = f.group("acme", ann).await;
    let other = f.group("other", ann).await;
    let pending = f.invite_phone(group.id, ann, 2).await;
    let accepted = f.invite_phone(group.id, ann, 3).await;
    let mut expired = new_invite(group.id, ann, Some(phone(4)), None, f.t);
    expired.expires_at = f.t;
    f.invites.create(&expired, &[]).await.expect("creates");
    f.invites.accept(accepted.id, bob, f.t, &any_events()).await.expect("accepts");

    assert!(
        !f.invites.revoke(other.id, pending.id, f.t, &[]).await.expect("revokes"),
        "other group"
    );
    assert_eq!(f.status(pending.id).await, InviteStatus::Pending);
    assert!(!f.invites.revoke(group.id, InviteId::new(), f.t, &[]).await.expect("revokes"));

    assert!(f.invites.revoke(group.id, pending.id, f.t, &[]).await.expect("revokes"));
    assert!(f.invites.revoke(group.id, expired.id, f.t, &[]).await.expect("revokes"));
    assert!(f.invites.revoke(group.id, accepted.id, f.t, &[]).await.expect("revokes"));
    assert!(f.invites.revoke(group.id, pending.id, f.t, &[]).await.expect("again"));

    assert_eq!(f.status(pending.id).await, InviteStatus::Revoked);
    assert_eq!(f.status(expired.id).await, InviteStatus::Revoked);
    assert_eq!(f.status(accepted.id).await, InviteStatus::Accepted);
    let refused = f.invites.accept(pending.id, bob, f.t, &any_events()).await;
    assert!(matches!(refused, Err(AcceptRefusal::NotFound)), "{refused:?}");
}

#[tokio::test]
async fn a_preview_shows_the_group_the_inviter_and_the_invitee() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    f.profile(ann, "Ann", &email("ann@example.com")).await;
    let group = f.group("acme", ann).await;
    let invite = f.invite_phone(group.id, ann, 2).await;

    let preview = f.invites.preview(invite.id).await.expect("previews").expect("exists");

    assert_eq!(preview.group_slug, group.slug);
    assert_eq!(preview.group_name, group.name);
    assert_eq!(preview.inviter_first_name.as_deref(), Some("Ann"));
    assert_eq!(preview.name.as_str(), "Ann Lee");
    assert_eq!(preview.expires_at, invite.expires_at);
    assert_eq!(preview.status, InviteStatus::Pending);
    assert_eq!(f.invites.preview(InviteId::new()).await.expect("previews"), None);
    f.invites.revoke(group.id, invite.id, f.t, &[]).await.expect("revokes");
    let revoked = f.invites.preview(invite.id).await.expect("previews").expect("exists");
    assert_eq!(revoked.status, InviteStatus::Revoked);
}

#[tokio::test]
async fn a_preview_shows_no_first_name_for_an_inviter_without_one_or_deleted() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    f.profile(bob, "Bob", &email("bob@example.com")).await;
    let group = f.group("acme", ann).await;
    f.groups.join(group.id, bob, MembershipStatus::Active, f.t, &[]).await.expect("joins");
    let by_ann = f.invite_phone(group.id, ann, 3).await;
    let by_bob = f.invite_phone(group.id, bob, 4).await;
    f.members.delete(bob, f.t, &[]).await.expect("deletes bob");

    let ann_preview = f.invites.preview(by_ann.id).await.expect("previews").expect("exists");
    let bob_preview = f.invites.preview(by_bob.id).await.expect("previews").expect("exists");

    assert_eq!(ann_preview.inviter_first_name, None);
    assert_eq!(bob_preview.inviter_first_name, None);
}

#[tokio::test]
async fn accepting_reads_the_invite_with_the_callers_phone_while_they_are_live() {
    let f = Fixture::new().await;
    let (owner, ann) = (f.member(1).await, f.member(2).await);
    let g = f.group("acme", owner).await;
    let invite = f.invite_phone(g.id, owner, 2).await;

    let (found, phone_of_ann) =
        f.invites.for_accept(invite.id, ann).await.expect("reads").expect("exists");
    assert_eq!((found.id, found.phone), (invite.id, Some(phone(2))));
    assert_eq!(phone_of_ann, Some(phone(2)));
    let (_, nobody) =
        f.invites.for_accept(invite.id, MemberId::new()).await.expect("reads").expect("exists");
    assert_eq!(nobody, None);
    assert_eq!(f.invites.for_accept(InviteId::new(), ann).await.expect("reads"), None);
    f.members.delete(ann, f.t, &[]).await.expect("deletes");
    let (_, deleted) = f.invites.for_accept(invite.id, ann).await.expect("reads").expect("exists");
    assert_eq!(deleted, None);
}

// ---- accept ------------------------------------------------------------------------------

#[tokio::test]
async fn accepting_joins_with_the_invites_role_and_uses_the_invite_up() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    let mut invite = new_invite(group.id, ann, Some(phone(2)), None, f.t);
    invite.role = RoleName::ADMIN;
    f.invites.create(&invite, &[]).await.expect("creates");
    let at = f.t + Duration::minutes(1);

    let record = f.invites.accept(invite.id, bob, at, &any_events()).await.expect("accepts");

    assert_eq!(record.outcome, AcceptOutcome::Joined);
    assert_eq!(record.group.group, group);
    assert_eq!(record.group.my_role, RoleName::ADMIN);
    let joined = f.groups.member(group.id, bob).await.expect("gets").expect("a member");
    assert_eq!(
        (joined.role, joined.status, joined.joined_at),
        (RoleName::ADMIN, MembershipStatus::Active, at)
    );
    assert_eq!(f.status(invite.id).await, InviteStatus::Accepted);
    let again = f.invites.accept(invite.id, bob, at, &any_events()).await;
    assert!(matches!(again, Err(AcceptRefusal::NotFound)), "{again:?}");
}

#[tokio::test]
async fn an_expired_or_unknown_invite_cannot_be_accepted_and_nothing_is_written() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    let invite = f.invite_phone(group.id, ann, 2).await;

    let expired = f.invites.accept(invite.id, bob, invite.expires_at, &any_events()).await;
    let unknown = f.invites.accept(InviteId::new(), bob, f.t, &any_events()).await;

    assert!(matches!(expired, Err(AcceptRefusal::NotFound)), "{expired:?}");
    assert!(matches!(unknown, Err(AcceptRefusal::NotFound)), "{unknown:?}");
    assert_eq!(f.status(invite.id).await, InviteStatus::Pending);
    assert_eq!(f.membership(group.id, bob).await, None);
}

#[tokio::test]
async fn an_active_member_accepting_keeps_their_role() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    f.groups.join(group.id, bob, MembershipStatus::Active, f.t, &[]).await.expect("joins");
    // Bob joined after the invite was made.
    let mut invite = new_invite(group.id, ann, None, Some(email("bob@example.com")), f.t);
    invite.role = RoleName::ADMIN;
    f.invites.create(&invite, &[]).await.expect("creates");

    let record = f.invites.accept(invite.id, bob, f.t, &any_events()).await.expect("accepts");

    assert_eq!(record.outcome, AcceptOutcome::AlreadyMember);
    assert_eq!(record.group.my_role, RoleName::MEMBER);
    assert_eq!(
        f.membership(group.id, bob).await,
        Some((RoleName::MEMBER, MembershipStatus::Active))
    );
    assert_eq!(f.status(invite.id).await, InviteStatus::Accepted);
}

#[tokio::test]
async fn accepting_into_a_group_that_requires_approval_leaves_a_join_request() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cid = f.member(3).await;
    let group = f.approval_group("acme", ann).await;
    let mut for_bob = new_invite(group.id, ann, Some(phone(2)), None, f.t);
    for_bob.role = RoleName::ADMIN;
    f.invites.create(&for_bob, &[]).await.expect("creates");
    let for_cid = f.invite_phone(group.id, ann, 3).await;
    let earlier = f.t - Duration::hours(1);
    f.groups.join(group.id, cid, MembershipStatus::Pending, earlier, &[]).await.expect("asks");

    let bob_record = f.invites.accept(for_bob.id, bob, f.t, &any_events()).await.expect("accepts");
    let cid_record = f.invites.accept(for_cid.id, cid, f.t, &any_events()).await.expect("accepts");

    assert_eq!(bob_record.outcome, AcceptOutcome::PendingApproval);
    assert_eq!(bob_record.group.my_role, RoleName::MEMBER);
    assert!(bob_record.group.group.approval_required);
    let bob_request = f.groups.member(group.id, bob).await.expect("gets").expect("a request");
    assert_eq!(
        (bob_request.role, bob_request.status, bob_request.joined_at),
        (RoleName::MEMBER, MembershipStatus::Pending, f.t)
    );
    assert_eq!(cid_record.outcome, AcceptOutcome::PendingApproval);
    let cid_request = f.groups.member(group.id, cid).await.expect("gets").expect("a request");
    assert_eq!(cid_request.joined_at, earlier, "the earlier request stays as it was");
    assert_eq!(f.status(for_bob.id).await, InviteStatus::Accepted);
}

#[tokio::test]
async fn an_active_member_accepting_into_a_group_that_requires_approval_stays_active() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.approval_group("acme", ann).await;
    let invite = new_invite(group.id, ann, None, Some(email("ann2@example.com")), f.t);
    f.invites.create(&invite, &[]).await.expect("creates");

    let record = f.invites.accept(invite.id, ann, f.t, &any_events()).await.expect("accepts");

    assert_eq!(record.outcome, AcceptOutcome::AlreadyMember);
    assert_eq!(record.group.my_role, RoleName::OWNER);
    assert_eq!(
        f.membership(group.id, ann).await,
        Some((RoleName::OWNER, MembershipStatus::Active))
    );
}

#[tokio::test]
async fn accepting_makes_a_pending_join_request_an_active_membership() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    f.groups.join(group.id, bob, MembershipStatus::Pending, f.t, &[]).await.expect("asks");
    let mut invite = new_invite(group.id, ann, Some(phone(2)), None, f.t);
    invite.role = RoleName::ADMIN;
    f.invites.create(&invite, &[]).await.expect("creates");
    let at = f.t + Duration::minutes(1);

    let record = f.invites.accept(invite.id, bob, at, &any_events()).await.expect("accepts");

    assert_eq!((record.outcome, record.group.my_role), (AcceptOutcome::Joined, RoleName::ADMIN));
    let joined = f.groups.member(group.id, bob).await.expect("gets").expect("a member");
    assert_eq!(
        (joined.role, joined.status, joined.joined_at),
        (RoleName::ADMIN, MembershipStatus::Active, at)
    );
}

#[tokio::test]
async fn a_custom_role_deleted_since_the_invite_grants_member() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let cid = f.member(3).await;
    let group = f.group("acme", ann).await;
    let perms = [Permission::INVITES_MANAGE].into_iter().collect();
    f.groups.create_role(group.id, &role("staff"), &perms).await.expect("creates staff");
    f.groups.create_role(group.id, &role("temp"), &perms).await.expect("creates temp");
    let mut kept = new_invite(group.id, ann, Some(phone(2)), None, f.t);
    kept.role = role("staff");
    let mut gone = new_invite(group.id, ann, Some(phone(3)), None, f.t);
    gone.role = role("temp");
    f.invites.create(&kept, &[]).await.expect("creates");
    f.invites.create(&gone, &[]).await.expect("creates");
    f.groups.delete_role(group.id, &role("temp")).await.expect("deletes");

    let staff = f.invites.accept(kept.id, bob, f.t, &any_events()).await.expect("accepts");
    let member = f.invites.accept(gone.id, cid, f.t, &any_events()).await.expect("accepts");

    assert_eq!(staff.group.my_role, role("staff"));
    assert_eq!(f.membership(group.id, bob).await, Some((role("staff"), MembershipStatus::Active)));
    assert_eq!((member.outcome, member.group.my_role), (AcceptOutcome::Joined, RoleName::MEMBER));
    assert_eq!(
        f.membership(group.id, cid).await,
        Some((RoleName::MEMBER, MembershipStatus::Active))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_eight_concurrent_accepts_of_one_invite_exactly_one_succeeds() {
    let f = Fixture::with_pool(10).await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let mut takers = Vec::new();
    for n in 2..10 {
        takers.push(f.member(n).await);
    }
    let invite = new_invite(group.id, ann, None, Some(email("all@example.com")), f.t);
    f.invites.create(&invite, &[]).await.expect("creates");

    let start = Arc::new(Barrier::new(takers.len()));
    let tasks: Vec<_> = takers
        .iter()
        .map(|&taker| {
            let (invites, start, t) = (f.invites.clone(), start.clone(), f.t);
            tokio::spawn(async move {
                start.wait().await;
                (taker, invites.accept(invite.id, taker, t, &any_events()).await)
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
    let active = f.groups.members(group.id, MembershipStatus::Active, None, 100).await;
    let mut active: Vec<MemberId> =
        active.expect("lists").into_iter().map(|(m, _)| m.member_id).collect();
    active.sort();
    let mut expected = vec![ann, winners[0]];
    expected.sort();
    assert_eq!(active, expected);
    assert_eq!(f.status(invite.id).await, InviteStatus::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_an_accept_and_a_revoke_at_once_exactly_one_wins() {
    let f = Fixture::with_pool(8).await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    for round in 0..10 {
        let invite = new_invite(group.id, ann, None, Some(email("bob@example.com")), f.t);
        f.invites.create(&invite, &[]).await.expect("creates");
        let start = Arc::new(Barrier::new(2));
        let accept = {
            let (invites, start, t) = (f.invites.clone(), start.clone(), f.t);
            tokio::spawn(async move {
                start.wait().await;
                invites.accept(invite.id, bob, t, &any_events()).await
            })
        };
        let revoke = {
            let (invites, start, t) = (f.invites.clone(), start.clone(), f.t);
            tokio::spawn(async move {
                start.wait().await;
                invites.revoke(group.id, invite.id, t, &[]).await
            })
        };
        let accepted = accept.await.expect("the task ran");
        assert!(revoke.await.expect("the task ran").expect("revokes"), "round {round}");

        match accepted {
            Ok(_) => {
                assert_eq!(f.status(invite.id).await, InviteStatus::Accepted, "round {round}");
                assert_eq!(
                    f.membership(group.id, bob).await,
                    Some((RoleName::MEMBER, MembershipStatus::Active))
                );
                f.groups.remove(group.id, bob, &RoleName::MEMBER, &[]).await.expect("removes");
            }
            Err(AcceptRefusal::NotFound) => {
                assert_eq!(f.status(invite.id).await, InviteStatus::Revoked, "round {round}");
                assert_eq!(f.membership(group.id, bob).await, None, "round {round}");
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

// ---- cascade -----------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_group_deletes_its_invites() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    let kept = f.group("kept", ann).await;
    let invite = f.invite_phone(group.id, ann, 2).await;
    let other = f.invite_phone(kept.id, ann, 2).await;

    assert!(f.groups.delete(group.id, &[]).await.expect("deletes"));

    assert_eq!(f.invites.get(invite.id).await.expect("gets"), None);
    assert_eq!(f.invites.preview(invite.id).await.expect("previews"), None);
    let refused = f.invites.accept(invite.id, bob, f.t, &any_events()).await;
    assert!(matches!(refused, Err(AcceptRefusal::NotFound)), "{refused:?}");
    assert!(!f.invites.revoke(group.id, invite.id, f.t, &[]).await.expect("revokes"));
    assert_eq!(rows(&f.db.pool(), "invites").await, 1);
    assert_eq!(f.status(other.id).await, InviteStatus::Pending);
}

#[tokio::test]
async fn deleting_a_member_who_is_alone_in_a_group_deletes_its_invites() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let invite = f.invite_phone(group.id, ann, 2).await;

    f.members.delete(ann, f.t, &[]).await.expect("deletes");

    assert_eq!(f.invites.get(invite.id).await.expect("gets"), None);
    assert_eq!(rows(&f.db.pool(), "invites").await, 0);
}

// ---- events --------------------------------------------------------------------------------

/// The types of every event in the outbox, oldest first.
async fn recorded(f: &Fixture) -> Vec<String> {
    use onboard_kernel::events::EventFeed as _;
    let feed = onboard_postgres::PgEventFeed::new(f.db.pool());
    let batch = feed.read("test", 100).await.expect("reads");
    batch.events.into_iter().map(|e| e.event_type).collect()
}

/// The events of `member` accepting `invite`.
fn accept_events(invite: &NewInvite, member: MemberId, at: DateTime<Utc>) -> AcceptEvents {
    AcceptEvents {
        invite: invite.id,
        group: invite.group,
        invited_by: invite.invited_by,
        member,
        role: invite.role.clone(),
        at,
    }
}

fn created(invite: &NewInvite) -> Vec<Event> {
    Event::records(&[InviteEvent::created(invite)], invite.created_at)
}

fn revoked(invite: &NewInvite, at: DateTime<Utc>) -> Vec<Event> {
    let revoked = InviteEvent::Revoked {
        invite_id: invite.id,
        group_id: invite.group,
        by: invite.invited_by,
    };
    Event::records(&[revoked], at)
}

#[tokio::test]
async fn a_create_stores_its_events_and_a_refused_one_stores_none() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let before = recorded(&f).await.len();
    let invite = new_invite(group.id, ann, Some(phone(2)), None, f.t);
    let twin = new_invite(group.id, ann, Some(phone(2)), None, f.t);

    f.invites.create(&invite, &created(&invite)).await.expect("creates");
    let refused = f.invites.create(&twin, &created(&twin)).await;

    assert!(matches!(refused, Err(CreateInviteRefusal::InvitePending)), "{refused:?}");
    assert_eq!(recorded(&f).await[before..], ["invite.created"]);
}

#[tokio::test]
async fn an_accept_stores_its_events_as_the_membership_settled() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let (bob, cid, dan) = (f.member(2).await, f.member(3).await, f.member(4).await);
    let open = f.group("acme", ann).await;
    let gated = f.approval_group("gated", ann).await;
    f.groups.join(gated.id, dan, MembershipStatus::Pending, f.t, &[]).await.expect("joins");
    let joins = f.invite_phone(open.id, ann, 2).await;
    let asks = f.invite_phone(gated.id, ann, 3).await;
    let waits = f.invite_phone(gated.id, ann, 4).await;

    let mut seen = Vec::new();
    for (invite, member) in [(&joins, bob), (&asks, cid), (&waits, dan)] {
        let before = recorded(&f).await.len();
        let events = accept_events(invite, member, f.t);
        f.invites.accept(invite.id, member, f.t, &events).await.expect("accepts");
        seen.push(recorded(&f).await[before..].to_vec());
    }

    assert_eq!(seen[0], ["invite.accepted", "group.member_joined"]);
    assert_eq!(seen[1], ["invite.accepted", "group.join_requested"]);
    assert_eq!(seen[2], ["invite.accepted"], "the join request was pending already");
}

#[tokio::test]
async fn a_refused_or_lost_accept_and_a_no_op_revoke_store_no_events() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let bob = f.member(2).await;
    let group = f.group("acme", ann).await;
    let invite = f.invite_phone(group.id, ann, 2).await;
    let late = f.invite_phone(group.id, ann, 3).await;
    let events = accept_events(&invite, bob, f.t);
    f.invites.accept(invite.id, bob, f.t, &events).await.expect("accepts");
    let before = recorded(&f).await;

    let lost = f.invites.accept(invite.id, bob, f.t, &events).await;
    let expired =
        f.invites.accept(late.id, bob, late.expires_at, &accept_events(&late, bob, f.t)).await;
    let found = f.invites.revoke(group.id, invite.id, f.t, &revoked(&invite, f.t)).await;

    assert!(matches!(lost, Err(AcceptRefusal::NotFound)), "{lost:?}");
    assert!(matches!(expired, Err(AcceptRefusal::NotFound)), "{expired:?}");
    assert!(found.expect("revokes"), "the invite exists, accepted");
    assert_eq!(recorded(&f).await, before);
}

#[tokio::test]
async fn a_revoke_of_a_pending_invite_stores_its_events() {
    let f = Fixture::new().await;
    let ann = f.member(1).await;
    let group = f.group("acme", ann).await;
    let invite = f.invite_phone(group.id, ann, 2).await;
    let before = recorded(&f).await.len();

    let found = f.invites.revoke(group.id, invite.id, f.t, &revoked(&invite, f.t)).await;

    assert!(found.expect("revokes"));
    assert_eq!(recorded(&f).await[before..], ["invite.revoked"]);
}
