//! Notifications in PostgreSQL: made from the groups' events by the consumer, listed,
//! snoozed, claimed.

use std::sync::Arc;

use chrono::Duration;
use onboard_groups::ports::GroupRepository;
use onboard_groups::{
    GroupPatch, GroupsConfig, GroupsService, MembershipStatus, Permission, RoleName, Slug,
};
use onboard_kernel::{MemberId, SystemClock};
use onboard_notifications::ports::{NotificationOutbox, NotificationRepository};
use onboard_notifications::{
    MarkRead, NewNotification, NotificationId, NotificationType, NotificationsConsumer,
};
use onboard_postgres::{PgEventFeed, PgGroupRepository, PgNotificationRepository};

use crate::groups::Fixture;

fn kinds(list: &[onboard_notifications::Notification]) -> Vec<NotificationType> {
    list.iter().map(|n| n.kind).collect()
}

/// The groups service and the notifications consumer over the fixture's database, as the
/// server wires them.
fn pipeline(
    f: &Fixture,
    pool: &onboard_postgres::PgPool,
) -> (GroupsService, NotificationsConsumer) {
    let repo: Arc<dyn GroupRepository> = Arc::new(PgGroupRepository::new(pool.clone()));
    let groups = GroupsService::new(repo, GroupsConfig::default(), Arc::new(SystemClock));
    let consumer = NotificationsConsumer::new(
        Arc::new(PgEventFeed::new(pool.clone())),
        Arc::new(PgNotificationRepository::new(pool.clone())),
        Arc::new(groups.clone()),
        std::time::Duration::from_secs(14 * 24 * 3600),
    );
    let _ = f;
    (groups, consumer)
}

#[tokio::test]
async fn a_join_request_becomes_one_notification_for_each_member_who_manages_members() {
    let f = Fixture::new().await;
    let pool = onboard_postgres::connect(f.db.url(), 4).await.unwrap();
    let repo = PgNotificationRepository::new(pool.clone());
    let (groups, consumer) = pipeline(&f, &pool);
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let (plain, manager, requester) = (f.member(2).await, f.member(3).await, f.member(4).await);
    f.join(group.id, plain, f.t).await;
    f.join(group.id, manager, f.t).await;
    let perms = [Permission::MEMBERS_MANAGE].into_iter().collect();
    let role = RoleName::parse("moderator").unwrap();
    f.groups.create_role(group.id, &role, &perms).await.unwrap();
    f.groups.change_role(group.id, manager, &RoleName::MEMBER, &role, &[]).await.unwrap();
    let acme = Slug::parse("acme").unwrap();
    groups
        .update_group(&acme, owner, &GroupPatch { name: None, approval_required: Some(true) })
        .await
        .unwrap();

    assert_eq!(groups.join(&acme, requester).await.unwrap(), MembershipStatus::Pending);
    // Two instances run the consumer at once: the event is turned into notifications once.
    let other = consumer.clone();
    let (a, b) = tokio::join!(consumer.run_once(100), other.run_once(100));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(consumer.run_once(100).await.unwrap(), 0, "nothing is left");
    let now = chrono::Utc::now();
    for (who, expected) in [(owner, 1), (manager, 1), (plain, 0), (requester, 0)] {
        let unread = repo.list(who, true, None, 10, now).await.unwrap();
        assert_eq!(unread.len(), expected, "{who:?}");
        if let Some(n) = unread.first() {
            assert_eq!(n.kind, NotificationType::JoinRequestCreated);
            assert_eq!(n.group.as_deref(), Some("acme"));
            assert_eq!(n.expires_at - n.created_at, Duration::days(14));
        }
    }

    groups.approve(&acme, owner, requester).await.unwrap();
    groups.remove_member(&acme, owner, requester).await.unwrap();
    assert_eq!(
        consumer.run_once(100).await.unwrap(),
        2,
        "approved and removed; the join tells nobody and is skipped"
    );
    let mine = repo.list(requester, false, None, 10, chrono::Utc::now()).await.unwrap();
    assert_eq!(
        kinds(&mine),
        [NotificationType::MemberRemoved, NotificationType::JoinRequestApproved]
    );
}

/// A notification for `member` made now.
fn note(
    member: MemberId,
    kind: NotificationType,
    at: chrono::DateTime<chrono::Utc>,
) -> NewNotification {
    NewNotification {
        id: NotificationId::new(),
        member,
        kind,
        title: "t".to_owned(),
        body: "b".to_owned(),
        group: Some("acme".to_owned()),
        link: None,
        created_at: at,
        expires_at: at + Duration::days(14),
    }
}

#[tokio::test]
async fn the_live_outbox_hands_each_notification_out_once() {
    let f = Fixture::new().await;
    let repo =
        PgNotificationRepository::new(onboard_postgres::connect(f.db.url(), 2).await.unwrap());
    let (owner, requester) = (f.member(1).await, f.member(2).await);
    let made = [
        note(owner, NotificationType::JoinRequestCreated, f.t),
        note(requester, NotificationType::JoinRequestRejected, f.t),
    ];
    repo.insert(&made).await.unwrap();
    let mine = repo.list(requester, false, None, 10, f.t + Duration::seconds(5)).await.unwrap();
    assert_eq!(kinds(&mine), [NotificationType::JoinRequestRejected]);

    let later = f.t + Duration::seconds(5);
    let (a, b) = tokio::join!(
        repo.claim(later, later + Duration::seconds(10), 10),
        repo.claim(later, later + Duration::seconds(10), 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 2, "each row is claimed once");
    let claimed: Vec<NotificationId> = a.iter().chain(&b).map(|n| n.id).collect();
    // A claim that was not marked published comes back after its lease.
    let again = repo.claim(later + Duration::seconds(11), later + Duration::seconds(20), 10);
    assert_eq!(again.await.unwrap().len(), 2);
    repo.mark_published(&claimed).await.unwrap();
    let after = repo.claim(later + Duration::seconds(30), later + Duration::seconds(40), 10);
    assert!(after.await.unwrap().is_empty());
}

#[tokio::test]
async fn a_snoozed_notification_is_hidden_until_then_and_back_unread() {
    let f = Fixture::new().await;
    let repo =
        PgNotificationRepository::new(onboard_postgres::connect(f.db.url(), 2).await.unwrap());
    let owner = f.member(1).await;
    let stranger = f.member(3).await;
    repo.insert(&[note(owner, NotificationType::JoinRequestCreated, f.t)]).await.unwrap();
    let n = repo.list(owner, false, None, 10, f.t).await.unwrap().remove(0);
    repo.mark_read(owner, &MarkRead::Ids(vec![n.id]), f.t).await.unwrap();
    assert_eq!(repo.unread_count(owner, f.t).await.unwrap(), 0);
    // Nobody else snoozes, reads or deletes it.
    assert!(repo.snooze(stranger, n.id, f.t + Duration::minutes(5), f.t).await.unwrap().is_none());
    assert!(!repo.delete(stranger, n.id).await.unwrap());

    let until = f.t + Duration::minutes(5);
    let snoozed = repo.snooze(owner, n.id, until, f.t).await.unwrap().unwrap();
    assert!(!snoozed.read);
    assert!(repo.list(owner, false, None, 10, f.t).await.unwrap().is_empty());
    repo.mark_read(owner, &MarkRead::All, f.t).await.unwrap();
    let back = repo.list(owner, true, None, 10, until).await.unwrap();
    assert_eq!(back.iter().map(|n| n.id).collect::<Vec<_>>(), [n.id]);
    assert_eq!(repo.unread_count(owner, until).await.unwrap(), 1);
    // Expired: neither listed nor kept.
    let expired = n.expires_at;
    assert!(repo.list(owner, false, None, 10, expired).await.unwrap().is_empty());
    assert_eq!(repo.purge_expired(expired).await.unwrap(), 1);
    assert!(repo.delete(owner, n.id).await.is_ok_and(|deleted| !deleted));
}
