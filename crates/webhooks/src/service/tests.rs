//! Unit tests of the use cases, on mocks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use onboard_groups::Slug;
use onboard_kernel::events::{Event, EventBatch, EventId, FeedPosition, MockEventFeed};
use onboard_kernel::{GroupId, MemberId, MockClock};

use super::*;
use crate::consumer::{CONSUMER, WebhooksConsumer};
use crate::model::{
    AttemptRecord, Claim, DeliveryStatus, EndpointHealth, EventFilter, UrlError, UrlPolicy,
};
use crate::ports::{
    Answer, MockDeliveryRepository, MockEndpointRepository, MockEventLog, MockGroupGate,
    MockPlatformAdmins, MockWebhookSender, SendError,
};
use crate::signing::verify;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("an instant")
}

fn group() -> GroupId {
    GroupId::from_uuid(uuid::Uuid::from_u128(0x16))
}

fn caller() -> MemberId {
    MemberId::from_uuid(uuid::Uuid::from_u128(0x1))
}

fn slug() -> Target {
    Target::Group(Slug::parse("acme").expect("a slug"))
}

struct Fixture {
    endpoints: MockEndpointRepository,
    deliveries: MockDeliveryRepository,
    events: MockEventLog,
    sender: MockWebhookSender,
    groups: MockGroupGate,
    admins: MockPlatformAdmins,
    config: WebhooksConfig,
}

impl Fixture {
    fn new() -> Self {
        let mut groups = MockGroupGate::new();
        groups.expect_webhooks_manager().returning(|_, _| Ok(group()));
        Self {
            endpoints: MockEndpointRepository::new(),
            deliveries: MockDeliveryRepository::new(),
            events: MockEventLog::new(),
            sender: MockWebhookSender::new(),
            groups,
            admins: MockPlatformAdmins::new(),
            config: WebhooksConfig::default(),
        }
    }

    fn service(self) -> WebhooksService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(at);
        WebhooksService::new(
            WebhooksPorts {
                endpoints: Arc::new(self.endpoints),
                deliveries: Arc::new(self.deliveries),
                events: Arc::new(self.events),
                sender: Arc::new(self.sender),
                groups: Arc::new(self.groups),
                admins: Arc::new(self.admins),
                clock: Arc::new(clock),
            },
            self.config,
        )
    }
}

fn endpoint() -> Endpoint {
    Endpoint {
        id: EndpointId::from_uuid(uuid::Uuid::from_u128(0xe1)),
        scope: Scope::Group(group()),
        url: EndpointUrl::from_trusted("https://hooks.example.com/in"),
        description: String::new(),
        filters: vec![EventFilter::Prefix("group.".to_owned())],
        enabled: true,
        secret: WebhookSecret::generate(),
        previous_secret: None,
        failing_since: None,
        created_at: at(),
        updated_at: at(),
    }
}

fn new_endpoint(url: &str, types: &[&str]) -> NewEndpoint {
    NewEndpoint {
        url: url.to_owned(),
        description: "CRM".to_owned(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        enabled: true,
    }
}

#[tokio::test]
async fn a_member_without_webhooks_manage_cannot_create_an_endpoint() {
    let mut fx = Fixture::new();
    fx.groups = MockGroupGate::new();
    fx.groups.expect_webhooks_manager().returning(|_, _| Err(AccessError::Forbidden));
    fx.endpoints.expect_create().never();

    let err = fx
        .service()
        .create(&slug(), caller(), new_endpoint("https://a.example.com", &[]))
        .await
        .expect_err("refused");

    assert!(matches!(err, WriteEndpointError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn only_platform_admins_reach_the_platform_endpoints() {
    let mut fx = Fixture::new();
    fx.admins.expect_is_platform_admin().returning(|_| Ok(false));

    let err = fx.service().list(&Target::Platform, caller()).await.expect_err("refused");

    assert!(matches!(err, AccessError::Forbidden), "{err:?}");
}

#[tokio::test]
async fn a_new_endpoint_gets_a_whsec_secret_of_32_random_bytes_and_its_filters() {
    let mut fx = Fixture::new();
    fx.endpoints.expect_list().returning(|_| Ok(vec![]));
    let stored = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&stored);
    fx.endpoints.expect_create().times(1).returning(move |e| {
        *sink.lock().expect("not poisoned") = Some(e.clone());
        Ok(())
    });

    let made = fx
        .service()
        .create(
            &slug(),
            caller(),
            new_endpoint("https://a.example.com/x", &["group.*", "invite.accepted"]),
        )
        .await
        .expect("created");

    let secret = made.secret.expose();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(made.secret.key().len(), 32);
    assert_eq!(made.scope, Scope::Group(group()));
    assert_eq!(
        made.filters,
        [
            EventFilter::Prefix("group.".to_owned()),
            EventFilter::Exact("invite.accepted".to_owned())
        ]
    );
    assert_eq!(stored.lock().expect("not poisoned").as_ref(), Some(&made));
}

#[tokio::test]
async fn private_literals_unknown_types_and_plain_http_in_production_are_refused() {
    let cases: [(&str, &[&str], bool); 5] = [
        ("http://127.0.0.1/x", &[], false),
        ("http://10.0.0.1/x", &[], false),
        ("http://169.254.169.254/latest", &[], false),
        ("https://a.example.com", &["group.nothing"], false),
        ("http://a.example.com", &[], true),
    ];
    for (url, types, https_only) in cases {
        let mut fx = Fixture::new();
        fx.config.urls = UrlPolicy { https_only, allow_private: false };
        fx.endpoints.expect_list().returning(|_| Ok(vec![]));
        fx.endpoints.expect_create().never();
        let err = fx
            .service()
            .create(&slug(), caller(), new_endpoint(url, types))
            .await
            .expect_err("refused");
        assert!(
            matches!(
                err,
                WriteEndpointError::InvalidUrl(
                    UrlError::PrivateAddress(_) | UrlError::HttpsRequired
                ) | WriteEndpointError::InvalidFilter(_)
            ),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_rotation_keeps_the_old_secret_signing_for_24_hours() {
    let mut fx = Fixture::new();
    let before = endpoint();
    let old = before.secret.clone();
    fx.endpoints.expect_get().returning(move |_, _| Ok(Some(before.clone())));
    fx.endpoints.expect_update().times(1).returning(|_| Ok(true));

    let rotated =
        fx.service().rotate_secret(&slug(), caller(), endpoint().id).await.expect("rotated");

    assert_ne!(rotated.secret, old);
    let previous = rotated.previous_secret.clone().expect("the old secret is kept");
    assert_eq!(previous.secret, old);
    assert_eq!(previous.expires_at, at() + TimeDelta::hours(24));
    assert_eq!(rotated.signing_secrets(at()).len(), 2);
    assert_eq!(rotated.signing_secrets(at() + TimeDelta::hours(24)).len(), 1);
}

fn claim(attempts: u32, failing_since: Option<DateTime<Utc>>) -> Claim {
    Claim {
        id: DeliveryId::from_uuid(uuid::Uuid::from_u128(0xd1)),
        lease: uuid::Uuid::from_u128(0x1ea5e),
        event_id: EventId::from_uuid(uuid::Uuid::from_u128(0xe7)),
        body: r#"{"type":"group.member_joined"}"#.to_owned(),
        attempts,
        endpoint: Endpoint { failing_since, ..endpoint() },
    }
}

/// Delivers one claim answered `answer`; returns what was recorded and the events stored.
async fn deliver(
    claim: Claim,
    answer: Result<Answer, (SendError, Duration)>,
) -> (AttemptRecord, Vec<Event>, crate::ports::OutgoingRequest) {
    let mut fx = Fixture::new();
    let claimed = claim.clone();
    fx.deliveries
        .expect_claim()
        .withf(|now, until, _| *now == at() && *until == at() + TimeDelta::seconds(60))
        .returning(move |_, _, _| Ok(vec![claimed.clone()]));
    let sent = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&sent);
    fx.sender.expect_send().times(1).returning(move |r| {
        *sink.lock().expect("not poisoned") = Some(r.clone());
        answer.clone()
    });
    let recorded = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&recorded);
    let lease = claim.lease;
    fx.deliveries.expect_record().times(1).returning(move |_, l, record, events| {
        assert_eq!(l, lease);
        *sink.lock().expect("not poisoned") = Some((record.clone(), events.to_vec()));
        Ok(true)
    });
    fx.service().deliver_due().await.expect("delivered");
    let (record, events) = recorded.lock().expect("not poisoned").take().expect("recorded");
    let request = sent.lock().expect("not poisoned").take().expect("sent");
    (record, events, request)
}

fn answered(status: u16) -> Result<Answer, (SendError, Duration)> {
    Ok(Answer { status, body: "ok".to_owned(), latency: Duration::from_millis(12) })
}

#[tokio::test]
async fn a_2xx_succeeds_and_the_request_is_signed_with_the_event_id() {
    let c = claim(0, Some(at() - TimeDelta::hours(1)));
    let secret = c.endpoint.secret.clone();

    let (record, events, request) = deliver(c, answered(204)).await;

    assert_eq!(record.status, DeliveryStatus::Succeeded);
    assert_eq!((record.attempts, record.next_attempt_at), (1, None));
    assert_eq!(record.health, EndpointHealth::Healthy);
    assert_eq!(record.attempt.response_status, Some(204));
    assert_eq!(record.attempt.latency_ms, 12);
    assert!(events.is_empty());
    assert_eq!(request.id, format!("msg_{}", uuid::Uuid::from_u128(0xe7).simple()));
    assert_eq!(request.timestamp, at().timestamp());
    assert!(verify(&request.signature, &secret, &request.id, request.timestamp, &request.body));
}

#[tokio::test]
async fn each_failure_waits_by_the_schedule_then_the_delivery_fails() {
    let waits = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
    for (made, wait) in waits.iter().enumerate() {
        let (record, ..) = deliver(claim(made as u32, None), answered(500)).await;
        assert_eq!(record.status, DeliveryStatus::Pending);
        assert_eq!(record.next_attempt_at, Some(at() + TimeDelta::seconds(*wait)));
        assert_eq!(record.health, EndpointHealth::Failing(at()));
    }
    let (record, ..) = deliver(claim(7, None), answered(500)).await;
    assert_eq!(
        (record.status, record.attempts, record.next_attempt_at),
        (DeliveryStatus::Failed, 8, None)
    );
}

#[tokio::test]
async fn a_refused_address_is_a_failed_attempt_with_the_reason() {
    let refused = Err((SendError::Refused("127.0.0.1 is loopback".to_owned()), Duration::ZERO));

    let (record, ..) = deliver(claim(0, None), refused).await;

    assert_eq!(record.status, DeliveryStatus::Pending);
    assert_eq!(record.attempt.response_status, None);
    assert!(record.attempt.response.contains("refused"), "{}", record.attempt.response);
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_its_group_told() {
    let since = at() - TimeDelta::days(5);

    let (record, events, _) = deliver(claim(3, Some(since)), answered(503)).await;

    assert_eq!(record.health, EndpointHealth::Disable(since));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "webhook.endpoint_disabled");
    assert_eq!(events[0].group, Some(group()));
}

#[tokio::test]
async fn an_endpoint_failing_for_less_than_five_days_stays_enabled() {
    let since = at() - TimeDelta::days(5) + TimeDelta::seconds(1);

    let (record, events, _) = deliver(claim(3, Some(since)), answered(503)).await;

    assert_eq!(record.health, EndpointHealth::Failing(since));
    assert!(events.is_empty());
}

#[tokio::test]
async fn a_replay_queues_the_ranges_events_the_endpoint_wants() {
    let mut fx = Fixture::new();
    fx.endpoints.expect_get().returning(|_, _| Ok(Some(endpoint())));
    let joined = joined_event();
    let mut other = joined_event();
    other.event_type = "invite.created".to_owned();
    fx.events
        .expect_between()
        .withf(|s, from, to, _| *s == Scope::Group(group()) && *from < *to)
        .returning(move |_, _, _, _| Ok(vec![joined.clone(), other.clone()]));
    fx.deliveries.expect_requeue().times(1).returning(|d| {
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].event_type, "group.member_joined");
        Ok(1)
    });

    let queued = fx
        .service()
        .replay(&slug(), caller(), endpoint().id, at() - TimeDelta::hours(1), at())
        .await
        .expect("replayed");

    assert_eq!(queued, 1);
}

#[tokio::test]
async fn a_replay_of_an_empty_range_is_refused() {
    let err = Fixture::new()
        .service()
        .replay(&slug(), caller(), endpoint().id, at(), at())
        .await
        .expect_err("refused");
    assert!(matches!(err, ReplayError::InvalidRange), "{err:?}");
}

fn joined_event() -> Event {
    let joined = onboard_groups::events::GroupEvent::MemberJoined {
        group_id: group(),
        member_id: caller(),
        role: "member".to_owned(),
        via: onboard_groups::events::JoinedVia::Join,
    };
    Event::record(&joined, at())
}

#[tokio::test]
async fn the_consumer_fans_each_event_out_to_the_endpoints_that_want_it_with_its_position() {
    let joined = joined_event();
    let mut feed = MockEventFeed::new();
    let batch = EventBatch {
        consumer: CONSUMER.to_owned(),
        from: FeedPosition { txid: 1, seq: 1 },
        to: FeedPosition { txid: 2, seq: 5 },
        events: vec![joined.clone()],
    };
    feed.expect_read().returning(move |_, _| Ok(batch.clone()));
    let wants = endpoint();
    let mut only_invites = endpoint();
    only_invites.id = EndpointId::new();
    only_invites.filters = vec![EventFilter::Exact("invite.accepted".to_owned())];
    let mut platform = endpoint();
    platform.id = EndpointId::new();
    platform.scope = Scope::Platform;
    platform.filters = vec![];
    let mut other_group = endpoint();
    other_group.id = EndpointId::new();
    other_group.scope = Scope::Group(GroupId::new());
    let all = vec![wants.clone(), only_invites, platform.clone(), other_group];
    let mut endpoints = MockEndpointRepository::new();
    endpoints.expect_any_enabled().returning(|| Ok(true));
    endpoints
        .expect_enabled_for()
        .withf(|groups| groups == [group()])
        .returning(move |_| Ok(all.clone()));
    let mut deliveries = MockDeliveryRepository::new();
    let event_id = joined.id;
    deliveries.expect_insert_consumed().times(1).returning(move |c, from, to, made| {
        assert_eq!((c, from.seq, to.seq), (CONSUMER, 1, 5));
        let to_endpoints: Vec<_> = made.iter().map(|d| d.endpoint).collect();
        assert_eq!(to_endpoints, [wants.id, platform.id]);
        assert!(made.iter().all(|d| d.event_id == event_id));
        let body: serde_json::Value = serde_json::from_str(&made[0].body).expect("JSON");
        assert_eq!(body["type"], "group.member_joined");
        assert_eq!(body["data"]["role"], "member");
        assert!(body["timestamp"].is_string());
        Ok(true)
    });
    let mut clock = MockClock::new();
    clock.expect_now().returning(at);
    let consumer = WebhooksConsumer::new(
        Arc::new(feed),
        Arc::new(endpoints),
        Arc::new(deliveries),
        Arc::new(clock),
    );

    assert_eq!(consumer.run_once(100).await.expect("ran"), 1);
}

fn skipped_batch() -> EventBatch {
    EventBatch {
        consumer: CONSUMER.to_owned(),
        from: FeedPosition { txid: 1, seq: 1 },
        to: FeedPosition { txid: 9, seq: 40 },
        events: vec![],
    }
}

#[tokio::test]
async fn with_no_endpoint_enabled_the_consumer_moves_past_the_events_without_reading_them() {
    let mut endpoints = MockEndpointRepository::new();
    endpoints.expect_any_enabled().times(2).returning(|| Ok(false));
    endpoints.expect_enabled_for().never();
    let mut feed = MockEventFeed::new();
    feed.expect_read_matching()
        .withf(|c, _, types| c == CONSUMER && !types.matches("group.member_joined"))
        .times(1)
        .returning(|_, _, _| Ok(skipped_batch()));
    feed.expect_read().never();
    let mut deliveries = MockDeliveryRepository::new();
    deliveries.expect_insert_consumed().times(1).returning(|c, from, to, made| {
        assert_eq!((c, from.seq, to.seq), (CONSUMER, 1, 40));
        assert!(made.is_empty());
        Ok(true)
    });
    let consumer = WebhooksConsumer::new(
        Arc::new(feed),
        Arc::new(endpoints),
        Arc::new(deliveries),
        Arc::new(MockClock::new()),
    );

    assert_eq!(consumer.run_once(100).await.expect("ran"), 0);
}

#[tokio::test]
async fn an_endpoint_enabled_during_the_skip_makes_the_consumer_read_the_events() {
    let mut endpoints = MockEndpointRepository::new();
    let mut looks = 0;
    endpoints.expect_any_enabled().times(2).returning(move || {
        looks += 1;
        Ok(looks > 1)
    });
    endpoints.expect_enabled_for().returning(|_| Ok(vec![]));
    let mut feed = MockEventFeed::new();
    feed.expect_read_matching().times(1).returning(|_, _, _| Ok(skipped_batch()));
    feed.expect_read().times(1).returning(|_, _| Ok(skipped_batch()));
    let mut deliveries = MockDeliveryRepository::new();
    deliveries.expect_insert_consumed().never();
    let consumer = WebhooksConsumer::new(
        Arc::new(feed),
        Arc::new(endpoints),
        Arc::new(deliveries),
        Arc::new(MockClock::new()),
    );

    assert_eq!(consumer.run_once(100).await.expect("ran"), 0, "the full read had no event");
}
