//! The outbox in PostgreSQL: events stored inside a transaction, the feed's order, its
//! horizon, and each consumer's position.

use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use onboard_groups::events::GroupEvent;
use onboard_kernel::events::{Event, EventFeed, EventTypes, FeedPosition};
use onboard_kernel::{GroupId, MemberId};
use onboard_postgres::PgEventFeed;
use onboard_postgres::testing::TestDatabase;

fn event() -> Event {
    let requested =
        GroupEvent::JoinRequested { group_id: GroupId::new(), member_id: MemberId::new() };
    Event::record(&requested, Utc::now())
}

async fn connection(db: &TestDatabase) -> AsyncPgConnection {
    AsyncPgConnection::establish(db.url()).await.unwrap()
}

#[tokio::test]
async fn an_event_is_read_back_as_it_was_recorded() {
    let db = TestDatabase::new().await;
    let feed = PgEventFeed::new(db.pool());
    let recorded = event();
    onboard_postgres::outbox::record(&mut connection(&db).await, std::slice::from_ref(&recorded))
        .await
        .unwrap();

    let batch = feed.read("test", 10).await.unwrap();

    assert_eq!(batch.from, FeedPosition::START);
    assert_eq!(batch.events, std::slice::from_ref(&recorded));
    assert!(batch.to > batch.from);
    assert_eq!(batch.events[0].decode::<GroupEvent>(), recorded.decode::<GroupEvent>());
}

#[tokio::test]
async fn an_event_of_a_transaction_still_open_holds_back_every_later_one_until_it_commits() {
    let db = TestDatabase::new().await;
    let feed = PgEventFeed::new(db.pool());
    let (early, late) = (event(), event());
    let mut open = connection(&db).await;
    let mut other = connection(&db).await;
    let (hold, release) = tokio::sync::oneshot::channel::<()>();
    let (stored, recorded) = tokio::sync::oneshot::channel::<()>();
    let early_in_tx = early.clone();
    let writer = tokio::spawn(async move {
        open.transaction(async |conn| {
            onboard_postgres::outbox::record(conn, &[early_in_tx]).await?;
            stored.send(()).ok();
            release.await.ok();
            diesel::QueryResult::Ok(())
        })
        .await
        .unwrap();
    });
    recorded.await.unwrap();
    // A later transaction commits first.
    onboard_postgres::outbox::record(&mut other, std::slice::from_ref(&late)).await.unwrap();

    let held = feed.read("test", 10).await.unwrap();
    assert!(held.events.is_empty(), "nothing after the open transaction is handed out yet");

    hold.send(()).unwrap();
    writer.await.unwrap();
    let batch = feed.read("test", 10).await.unwrap();
    let ids: Vec<_> = batch.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, [early.id, late.id], "in the order their transactions began");
}

#[tokio::test]
async fn each_consumer_moves_on_its_own_and_a_stale_move_changes_nothing() {
    let db = TestDatabase::new().await;
    let feed = PgEventFeed::new(db.pool());
    let events = [event(), event(), event()];
    onboard_postgres::outbox::record(&mut connection(&db).await, &events).await.unwrap();

    let first = feed.read("a", 2).await.unwrap();
    assert_eq!(first.events.len(), 2);
    let (a, b) = tokio::join!(
        feed.advance("a", first.from, first.to),
        feed.advance("a", first.from, first.to)
    );
    assert!(a.unwrap() ^ b.unwrap(), "one of two instances moves the position");
    let rest = feed.read("a", 10).await.unwrap();
    assert_eq!(rest.from, first.to);
    assert_eq!(rest.events.iter().map(|e| e.id).collect::<Vec<_>>(), [events[2].id]);
    assert_eq!(feed.read("b", 10).await.unwrap().events.len(), 3, "b starts at the beginning");
}

fn joined() -> Event {
    let joined = GroupEvent::MemberJoined {
        group_id: GroupId::new(),
        member_id: MemberId::new(),
        role: "member".to_owned(),
        via: onboard_groups::events::JoinedVia::Join,
    };
    Event::record(&joined, Utc::now())
}

#[tokio::test]
async fn a_consumer_of_some_types_is_handed_only_those_and_moves_past_the_rest() {
    let db = TestDatabase::new().await;
    let feed = PgEventFeed::new(db.pool());
    let wanted = EventTypes::only(&["group.join_requested"]);
    let events = [joined(), event(), joined(), event(), joined()];
    onboard_postgres::outbox::record(&mut connection(&db).await, &events).await.unwrap();
    let everything = feed.read("all", 10).await.unwrap();

    let first = feed.read_matching("some", 1, wanted).await.unwrap();
    assert_eq!(first.events.iter().map(|e| e.id).collect::<Vec<_>>(), [events[1].id]);
    assert!(first.to < everything.to, "a full batch ends at its last event");
    assert!(feed.advance("some", first.from, first.to).await.unwrap());

    let rest = feed.read_matching("some", 10, wanted).await.unwrap();
    assert_eq!(rest.events.iter().map(|e| e.id).collect::<Vec<_>>(), [events[3].id]);
    assert_eq!(rest.to, everything.to, "past the trailing event of another type");
    assert!(feed.advance("some", rest.from, rest.to).await.unwrap());

    let family = EventTypes::only(&["group."]);
    assert_eq!(feed.read_matching("family", 10, family).await.unwrap().events.len(), 5);
    let none = feed.read_matching("none", 10, EventTypes::only(&["billing."])).await.unwrap();
    assert!(none.events.is_empty());
    assert_eq!(none.to, everything.to, "a consumer of no stored type still moves on");
}

#[tokio::test]
async fn a_consumer_never_moves_past_an_event_of_a_transaction_still_open() {
    let db = TestDatabase::new().await;
    let feed = PgEventFeed::new(db.pool());
    let wanted = EventTypes::only(&["group.join_requested"]);
    let mut open = connection(&db).await;
    let (hold, release) = tokio::sync::oneshot::channel::<()>();
    let (stored, recorded) = tokio::sync::oneshot::channel::<()>();
    let late_wanted = event();
    let in_tx = late_wanted.clone();
    let writer = tokio::spawn(async move {
        open.transaction(async |conn| {
            onboard_postgres::outbox::record(conn, &[in_tx]).await?;
            stored.send(()).ok();
            release.await.ok();
            diesel::QueryResult::Ok(())
        })
        .await
        .unwrap();
    });
    recorded.await.unwrap();
    onboard_postgres::outbox::record(&mut connection(&db).await, &[joined()]).await.unwrap();

    let held = feed.read_matching("some", 10, wanted).await.unwrap();
    assert!(held.events.is_empty());
    assert_eq!(held.to, held.from, "nothing after the open transaction is skipped yet");

    hold.send(()).unwrap();
    writer.await.unwrap();
    let batch = feed.read_matching("some", 10, wanted).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.id).collect::<Vec<_>>(), [late_wanted.id]);
}

#[tokio::test]
async fn events_recorded_before_their_retention_are_purged() {
    let db = TestDatabase::new().await;
    let feed = PgEventFeed::new(db.pool());
    let mut old = event();
    old.occurred_at = Utc::now() - Duration::days(31);
    let recorded = u64::try_from(old.occurred_at.timestamp()).unwrap();
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, recorded, 0);
    old.id = onboard_kernel::events::EventId::from_uuid(uuid::Uuid::new_v7(ts));
    onboard_postgres::outbox::record(&mut connection(&db).await, &[old, event()]).await.unwrap();

    assert_eq!(feed.purge(Utc::now() - Duration::days(30)).await.unwrap(), 1);
    assert_eq!(feed.read("test", 10).await.unwrap().events.len(), 1);
}
