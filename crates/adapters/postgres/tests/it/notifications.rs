//! Notifications in PostgreSQL: made in the groups transactions, listed, snoozed, claimed.

use chrono::Duration;
use onboard_groups::ports::{GroupRepository, JoinRecord};
use onboard_groups::{MembershipStatus, Permission, RoleName};
use onboard_notifications::ports::{NotificationOutbox, NotificationRepository};
use onboard_notifications::{MarkRead, NotificationId, NotificationType};
use onboard_postgres::PgNotificationRepository;

use crate::groups::Fixture;

fn kinds(list: &[onboard_notifications::Notification]) -> Vec<NotificationType> {
    list.iter().map(|n| n.kind).collect()
}

#[tokio::test]
async fn a_join_request_notifies_the_members_who_manage_members_and_nobody_else() {
    let f = Fixture::new().await;
    let repo =
        PgNotificationRepository::new(onboard_postgres::connect(f.db.url(), 2).await.unwrap());
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let (plain, manager, requester) = (f.member(2).await, f.member(3).await, f.member(4).await);
    f.join(group.id, plain, f.t).await;
    f.join(group.id, manager, f.t).await;
    let perms = [Permission::MEMBERS_MANAGE].into_iter().collect();
    let role = RoleName::parse("moderator").unwrap();
    f.groups.create_role(group.id, &role, &perms).await.unwrap();
    f.groups.change_role(group.id, manager, &RoleName::MEMBER, &role).await.unwrap();
    // The manager was told of their role change; read it away.
    repo.mark_read(manager, &MarkRead::All, f.t).await.unwrap();

    let joined = f.groups.join(group.id, requester, MembershipStatus::Pending, f.t).await.unwrap();
    assert_eq!(joined, JoinRecord::Added);
    for (who, expected) in [(owner, 1), (manager, 1), (plain, 0), (requester, 0)] {
        let unread = repo.list(who, true, None, 10, f.t).await.unwrap();
        assert_eq!(unread.len(), expected, "{who:?}");
        if let Some(n) = unread.first() {
            assert_eq!(n.kind, NotificationType::JoinRequestCreated);
            assert_eq!(n.group.as_deref(), Some("acme"));
            assert_eq!(n.expires_at, f.t + Duration::days(14));
        }
    }
    // Asking again adds nothing.
    f.groups.join(group.id, requester, MembershipStatus::Pending, f.t).await.unwrap();
    assert_eq!(repo.unread_count(owner, f.t).await.unwrap(), 1);

    f.groups.approve(group.id, requester, f.t).await.unwrap().unwrap();
    let mine = repo.list(requester, false, None, 10, f.t).await.unwrap();
    assert_eq!(kinds(&mine), [NotificationType::JoinRequestApproved]);
    f.groups.remove(group.id, requester, &RoleName::MEMBER).await.unwrap();
    let mine = repo.list(requester, false, None, 10, f.t + Duration::seconds(5)).await.unwrap();
    assert_eq!(mine[0].kind, NotificationType::MemberRemoved);
}

#[tokio::test]
async fn a_rejection_notifies_the_requester_and_the_outbox_hands_each_row_out_once() {
    let f = Fixture::new().await;
    let repo =
        PgNotificationRepository::new(onboard_postgres::connect(f.db.url(), 2).await.unwrap());
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let requester = f.member(2).await;
    f.groups.join(group.id, requester, MembershipStatus::Pending, f.t).await.unwrap();
    assert!(f.groups.reject(group.id, requester).await.unwrap());
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
    let group = f.group("acme", owner).await;
    let stranger = f.member(3).await;
    let requester = f.member(2).await;
    f.groups.join(group.id, requester, MembershipStatus::Pending, f.t).await.unwrap();
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
