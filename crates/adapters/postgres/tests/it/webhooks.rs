//! The webhooks store in PostgreSQL: fan-out stored once with the consumer's position,
//! exclusive claims under a lease, records that count only under their lease, the disabling of
//! an endpoint (and its event) once, and the events API's pages.

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use onboard_kernel::events::{Event, EventFeed, FeedPosition};
use onboard_kernel::{GroupId, MemberId};
use onboard_members::events::MemberEvent;
use onboard_postgres::testing::TestDatabase;
use onboard_postgres::{PgEventFeed, PgWebhookStore};
use onboard_webhooks::events::WebhookEvent;
use onboard_webhooks::ports::{DeliveryRepository, EndpointRepository, EventLog};
use onboard_webhooks::{
    Attempt, AttemptRecord, DeliveryStatus, Endpoint, EndpointHealth, EndpointId, EndpointUrl,
    EventFilter, NewDelivery, Scope, WebhookSecret,
};

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn platform_endpoint() -> Endpoint {
    Endpoint {
        id: EndpointId::new(),
        scope: Scope::Platform,
        url: EndpointUrl::from_trusted("https://hooks.example.com/in"),
        description: "warehouse".to_owned(),
        filters: vec![EventFilter::Prefix("member.".to_owned())],
        enabled: true,
        secret: WebhookSecret::generate(),
        previous_secret: None,
        failing_since: None,
        created_at: now(),
        updated_at: now(),
    }
}

fn signed_up() -> Event {
    let event =
        MemberEvent::SignedUp { member_id: MemberId::new(), referred_by: None, workspace_id: None };
    Event::record(&event, now())
}

async fn record_events(db: &TestDatabase, events: &[Event]) {
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    onboard_postgres::outbox::record(&mut conn, events).await.unwrap();
}

fn attempt(status: DeliveryStatus, health: EndpointHealth) -> AttemptRecord {
    AttemptRecord {
        status,
        attempts: 1,
        next_attempt_at: (status == DeliveryStatus::Pending).then(|| now() + Duration::seconds(5)),
        attempt: Attempt {
            at: now(),
            response_status: Some(500),
            latency_ms: 7,
            response: "no".to_owned(),
        },
        health,
    }
}

/// A store with a platform endpoint and one delivery due now.
async fn one_due(db: &TestDatabase) -> (PgWebhookStore, Endpoint, NewDelivery) {
    let store = PgWebhookStore::new(db.pool());
    let endpoint = platform_endpoint();
    store.create(&endpoint).await.unwrap();
    let delivery = NewDelivery::of(&signed_up(), endpoint.id, now() - Duration::seconds(1));
    assert_eq!(store.requeue(std::slice::from_ref(&delivery)).await.unwrap(), 1);
    (store, endpoint, delivery)
}

#[tokio::test]
async fn an_endpoint_reads_back_as_stored_and_only_in_its_scope() {
    let db = TestDatabase::new().await;
    let store = PgWebhookStore::new(db.pool());
    let endpoint = platform_endpoint();
    store.create(&endpoint).await.unwrap();

    assert_eq!(store.get(Scope::Platform, endpoint.id).await.unwrap(), Some(endpoint.clone()));
    assert_eq!(store.get(Scope::Group(GroupId::new()), endpoint.id).await.unwrap(), None);
    assert_eq!(
        EndpointRepository::list(&store, Scope::Platform).await.unwrap(),
        std::slice::from_ref(&endpoint)
    );
    assert_eq!(store.enabled_for(&[]).await.unwrap(), std::slice::from_ref(&endpoint));
    assert!(!store.delete(Scope::Group(GroupId::new()), endpoint.id).await.unwrap());
    assert!(store.delete(Scope::Platform, endpoint.id).await.unwrap());
    assert!(EndpointRepository::list(&store, Scope::Platform).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_fan_out_is_stored_once_with_the_consumers_position() {
    let db = TestDatabase::new().await;
    let store = PgWebhookStore::new(db.pool());
    let feed = PgEventFeed::new(db.pool());
    let endpoint = platform_endpoint();
    store.create(&endpoint).await.unwrap();
    record_events(&db, &[signed_up()]).await;
    let batch = feed.read("webhooks", 10).await.unwrap();
    let deliveries: Vec<_> =
        batch.events.iter().map(|e| NewDelivery::of(e, endpoint.id, now())).collect();

    let first = store.insert_consumed("webhooks", batch.from, batch.to, &deliveries).await;
    let second = store.insert_consumed("webhooks", batch.from, batch.to, &deliveries).await;

    assert!(first.unwrap());
    assert!(!second.unwrap(), "another instance's batch stores nothing");
    assert_eq!(deliveries_of(&store, endpoint.id).await.len(), 1);
    assert!(feed.read("webhooks", 10).await.unwrap().events.is_empty());
}

async fn deliveries_of(
    store: &PgWebhookStore,
    endpoint: EndpointId,
) -> Vec<onboard_webhooks::Delivery> {
    DeliveryRepository::list(store, endpoint, None, 100).await.unwrap()
}

#[tokio::test]
async fn two_workers_claiming_at_once_get_each_delivery_once() {
    let db = TestDatabase::new().await;
    let store = PgWebhookStore::new(db.pool());
    let endpoint = platform_endpoint();
    store.create(&endpoint).await.unwrap();
    let deliveries: Vec<_> = (0..40)
        .map(|_| NewDelivery::of(&signed_up(), endpoint.id, now() - Duration::seconds(1)))
        .collect();
    store.requeue(&deliveries).await.unwrap();
    let until = now() + Duration::seconds(60);

    let (a, b) = tokio::join!(store.claim(now(), until, 30), store.claim(now(), until, 30));

    let mut ids: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).map(|c| c.id).collect();
    assert_eq!(ids.len(), 40);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "no delivery claimed twice");
    assert!(store.claim(now(), until, 30).await.unwrap().is_empty(), "all leased");
}

#[tokio::test]
async fn a_claim_whose_lease_ran_out_is_claimed_again_and_the_old_lease_records_nothing() {
    let db = TestDatabase::new().await;
    let (store, _, delivery) = one_due(&db).await;
    let first = store.claim(now(), now() + Duration::milliseconds(50), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].body, delivery.body);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let second = store.claim(now(), now() + Duration::seconds(60), 10).await.unwrap();

    assert_eq!(second.len(), 1, "the worker that died left it to be claimed again");
    assert_eq!(second[0].event_id, delivery.event_id, "the same webhook-id");
    let healthy = attempt(DeliveryStatus::Succeeded, EndpointHealth::Healthy);
    assert!(!store.record(first[0].id, first[0].lease, &healthy, &[]).await.unwrap());
    assert!(store.record(second[0].id, second[0].lease, &healthy, &[]).await.unwrap());
}

#[tokio::test]
async fn a_failure_schedules_the_next_attempt_and_marks_the_endpoint_failing() {
    let db = TestDatabase::new().await;
    let (store, endpoint, _) = one_due(&db).await;
    let claim = store.claim(now(), now() + Duration::seconds(60), 10).await.unwrap().remove(0);
    let since = now() - Duration::hours(2);
    let failed = attempt(DeliveryStatus::Pending, EndpointHealth::Failing(since));

    assert!(store.record(claim.id, claim.lease, &failed, &[]).await.unwrap());

    let stored = deliveries_of(&store, endpoint.id).await.remove(0);
    assert_eq!(stored.status, DeliveryStatus::Pending);
    assert_eq!(stored.next_attempt_at, failed.next_attempt_at);
    assert_eq!(stored.last_attempt, Some(failed.attempt.clone()));
    let endpoint = store.get(Scope::Platform, endpoint.id).await.unwrap().unwrap();
    assert_eq!(endpoint.failing_since, Some(since));
    assert!(store.claim(now(), now() + Duration::seconds(60), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn disabling_an_endpoint_stores_its_event_once_and_stops_its_claims() {
    let db = TestDatabase::new().await;
    let (store, endpoint, _) = one_due(&db).await;
    let other = NewDelivery::of(&signed_up(), endpoint.id, now() - Duration::seconds(1));
    store.requeue(std::slice::from_ref(&other)).await.unwrap();
    let claims = store.claim(now(), now() + Duration::seconds(60), 10).await.unwrap();
    let since = now() - Duration::days(5);
    let disable = attempt(DeliveryStatus::Pending, EndpointHealth::Disable(since));
    let event = Event::record(
        &WebhookEvent::EndpointDisabled {
            endpoint_id: endpoint.id,
            group_id: None,
            url: endpoint.url.as_str().to_owned(),
        },
        now(),
    );

    for claim in &claims {
        let recorded = store.record(claim.id, claim.lease, &disable, std::slice::from_ref(&event));
        assert!(recorded.await.unwrap());
    }

    let stored = store.get(Scope::Platform, endpoint.id).await.unwrap().unwrap();
    assert!(!stored.enabled);
    let events = PgEventFeed::new(db.pool()).read("test", 10).await.unwrap().events;
    assert_eq!(events.iter().filter(|e| e.event_type == "webhook.endpoint_disabled").count(), 1);
    let mut later = store.claim(now() + Duration::hours(1), now() + Duration::hours(2), 10);
    assert!(later.await.unwrap().is_empty(), "a disabled endpoint's deliveries wait");
    let mut enabled = stored.clone();
    enabled.enabled = true;
    assert!(store.update(&enabled).await.unwrap());
    assert_eq!(store.get(Scope::Platform, endpoint.id).await.unwrap().unwrap().failing_since, None);
    later = store.claim(now() + Duration::hours(1), now() + Duration::hours(2), 10);
    assert_eq!(later.await.unwrap().len(), 2, "enabled again, they go out");
}

#[tokio::test]
async fn a_requeue_puts_a_finished_delivery_back_and_a_retry_takes_over_a_lease() {
    let db = TestDatabase::new().await;
    let (store, endpoint, delivery) = one_due(&db).await;
    let claim = store.claim(now(), now() + Duration::seconds(60), 10).await.unwrap().remove(0);
    let done = attempt(DeliveryStatus::Succeeded, EndpointHealth::Healthy);
    store.record(claim.id, claim.lease, &done, &[]).await.unwrap();

    assert_eq!(store.requeue(std::slice::from_ref(&delivery)).await.unwrap(), 1);
    let stored = deliveries_of(&store, endpoint.id).await;
    assert_eq!(stored.len(), 1, "one delivery per endpoint and event");
    assert_eq!((stored[0].status, stored[0].attempts), (DeliveryStatus::Pending, 0));

    let claim = store.claim(now(), now() + Duration::seconds(60), 10).await.unwrap().remove(0);
    let retried = store.retry(endpoint.id, claim.id, now()).await.unwrap();
    assert_eq!(retried.map(|d| d.status), Some(DeliveryStatus::Pending));
    assert!(!store.record(claim.id, claim.lease, &done, &[]).await.unwrap(), "the lease is gone");
    assert_eq!(store.retry(EndpointId::new(), claim.id, now()).await.unwrap(), None);
}

#[tokio::test]
async fn the_events_api_pages_by_position_and_filters_by_type() {
    let db = TestDatabase::new().await;
    let store = PgWebhookStore::new(db.pool());
    let (a, b) = (signed_up(), signed_up());
    record_events(&db, std::slice::from_ref(&a)).await;
    record_events(&db, std::slice::from_ref(&b)).await;

    let first = store.page(Scope::Platform, FeedPosition::START, &[], 1).await.unwrap();
    let rest = store.page(Scope::Platform, first.next, &[], 10).await.unwrap();
    let none = store.page(Scope::Platform, rest.next, &[], 10).await.unwrap();
    let typed = [EventFilter::Exact("member.deleted".to_owned())];
    let filtered = store.page(Scope::Platform, FeedPosition::START, &typed, 10).await.unwrap();
    let grouped = store.page(Scope::Group(GroupId::new()), FeedPosition::START, &[], 10);

    assert_eq!(first.events, [a]);
    assert_eq!(rest.events, [b]);
    assert!(none.events.is_empty() && none.next == rest.next);
    assert!(filtered.events.is_empty());
    assert!(grouped.await.unwrap().events.is_empty());
    let between = store.between(
        Scope::Platform,
        now() - Duration::minutes(1),
        now() + Duration::minutes(1),
        10,
    );
    assert_eq!(between.await.unwrap().len(), 2);
}
