#![allow(clippy::unwrap_used)]

use chrono::TimeZone as _;
use mockall::predicate::{always, eq};
use onboard_kernel::MockClock;

use super::*;
use crate::ports::{
    MockNotificationBus, MockNotificationOutbox, MockNotificationRepository, MockStreamTicketStore,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

struct Mocks {
    repo: MockNotificationRepository,
    outbox: MockNotificationOutbox,
    bus: MockNotificationBus,
    tickets: MockStreamTicketStore,
}

impl Mocks {
    fn new() -> Self {
        Self {
            repo: MockNotificationRepository::new(),
            outbox: MockNotificationOutbox::new(),
            bus: MockNotificationBus::new(),
            tickets: MockStreamTicketStore::new(),
        }
    }

    fn service(self) -> NotificationsService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(t0);
        NotificationsService::new(
            NotificationsPorts {
                repo: Arc::new(self.repo),
                outbox: Arc::new(self.outbox),
                bus: Arc::new(self.bus),
                tickets: Arc::new(self.tickets),
                clock: Arc::new(clock),
            },
            NotificationsConfig::default(),
        )
    }
}

fn notification(member: MemberId) -> Notification {
    NewNotification {
        id: NotificationId::new(),
        member,
        kind: NotificationType::JoinRequestCreated,
        title: "New join request".into(),
        body: "Ann asked to join Acme".into(),
        group: Some("acme".into()),
        link: None,
        created_at: t0(),
        expires_at: t0() + chrono::TimeDelta::days(14),
    }
    .into_notification()
}

#[tokio::test]
async fn a_page_asks_for_one_more_to_learn_whether_another_follows() {
    let member = MemberId::new();
    let rows: Vec<_> = (0..3).map(|_| notification(member)).collect();
    let mut mocks = Mocks::new();
    let answer = rows.clone();
    mocks
        .repo
        .expect_list()
        .with(eq(member), eq(true), eq(None), eq(3), eq(t0()))
        .returning(move |_, _, _, _, _| Ok(answer.clone()));
    mocks.repo.expect_unread_count().returning(|_, _| Ok(7));
    let page = mocks.service().list(member, true, None, 2).await.unwrap();
    assert_eq!(page.items, rows[..2]);
    assert_eq!(page.next_cursor, Some(rows[1].id.to_string()));
    assert_eq!(page.unread_count, 7);
}

#[tokio::test]
async fn a_snooze_hides_it_for_that_many_minutes() {
    let member = MemberId::new();
    let n = notification(member);
    let id = n.id;
    let mut mocks = Mocks::new();
    mocks
        .repo
        .expect_snooze()
        .with(eq(member), eq(id), eq(t0() + chrono::TimeDelta::minutes(15)), eq(t0()))
        .returning(move |_, _, _, _| Ok(Some(n.clone())));
    let snoozed = mocks.service().snooze(member, id, SnoozeMinutes::parse(15).unwrap()).await;
    assert_eq!(snoozed.unwrap().id, id);
}

#[tokio::test]
async fn another_members_notification_is_not_found_for_snooze_or_delete() {
    let mut mocks = Mocks::new();
    mocks.repo.expect_snooze().returning(|_, _, _, _| Ok(None));
    mocks.repo.expect_delete().returning(|_, _| Ok(false));
    let service = mocks.service();
    let (me, id) = (MemberId::new(), NotificationId::new());
    let snoozed = service.snooze(me, id, SnoozeMinutes::parse(1).unwrap()).await;
    assert!(matches!(snoozed, Err(NotificationError::NotFound)));
    assert!(matches!(service.delete(me, id).await, Err(NotificationError::NotFound)));
}

#[tokio::test]
async fn a_ticket_lives_thirty_seconds_and_opens_a_stream_once() {
    let member = MemberId::new();
    let mut mocks = Mocks::new();
    mocks.tickets.expect_put().with(always(), eq(member), eq(30)).returning(|_, _, _| Ok(()));
    let mut taken = false;
    mocks.tickets.expect_take().returning(move |_| {
        let first = !taken;
        taken = true;
        Ok(first.then_some(member))
    });
    let (tx, _) = broadcast::channel(4);
    mocks.bus.expect_subscribe().returning(move || tx.subscribe());
    let service = mocks.service();
    let ticket = service.issue_ticket(member).await.unwrap();
    let stream = service.open_stream(&ticket, None).await.unwrap();
    assert_eq!(stream.member, member);
    assert!(stream.replay.is_empty());
    let again = service.open_stream(&ticket, None).await;
    assert!(matches!(again, Err(OpenStreamError::TicketInvalid)));
}

#[tokio::test]
async fn a_reconnect_replays_what_came_after_the_last_event_id() {
    let member = MemberId::new();
    let missed = vec![notification(member), notification(member)];
    let last = NotificationId::new();
    let mut mocks = Mocks::new();
    mocks.tickets.expect_take().returning(move |_| Ok(Some(member)));
    let (tx, _) = broadcast::channel(4);
    mocks.bus.expect_subscribe().returning(move || tx.subscribe());
    let answer = missed.clone();
    mocks
        .repo
        .expect_after()
        .with(eq(member), eq(last), eq(REPLAY_LIMIT), eq(t0()))
        .returning(move |_, _, _, _| Ok(answer.clone()));
    let stream = mocks.service().open_stream(&StreamTicket::generate(), Some(last)).await.unwrap();
    assert_eq!(stream.replay, missed);
}

#[tokio::test]
async fn published_notifications_are_marked_and_a_failed_publish_leaves_the_rest_claimed() {
    let member = MemberId::new();
    let batch = vec![notification(member), notification(member), notification(member)];
    let ids: Vec<_> = batch.iter().map(|n| n.id).collect();
    let mut mocks = Mocks::new();
    let answer = batch.clone();
    mocks
        .outbox
        .expect_claim()
        .with(eq(t0()), eq(t0() + CLAIM_LEASE), eq(PUBLISH_BATCH))
        .returning(move |_, _, _| Ok(answer.clone()));
    let failing = ids[1];
    mocks.bus.expect_publish().returning(move |n| {
        if n.id == failing { Err(anyhow::anyhow!("redis is down")) } else { Ok(()) }
    });
    let first = ids[0];
    mocks
        .outbox
        .expect_mark_published()
        .withf(move |marked| marked == [first])
        .times(1)
        .returning(|_| Ok(()));
    assert!(mocks.service().publish_pending().await.is_err());
}

#[tokio::test]
async fn a_draft_expires_after_the_ttl() {
    let service = Mocks::new().service();
    let member = MemberId::new();
    let draft =
        service.draft(member, NotificationType::SmsCreditLow, "Low credit", "Top up", None, None);
    assert_eq!(draft.created_at, t0());
    assert_eq!(draft.expires_at, t0() + chrono::TimeDelta::days(14));
    assert_eq!(draft.member, member);
}
