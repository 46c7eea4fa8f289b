#![allow(clippy::unwrap_used)]

use chrono::TimeZone as _;
use mockall::predicate::*;
use onboard_kernel::{GroupId, MockClock, PhoneNumber};

use super::*;
use crate::error::{GateError, QueueError};
use crate::ports::{Accepted, MockMessageProvider, MockMessageRepository, MockSenderGate};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+8210{n:08}"), None).unwrap()
}

fn slug() -> Slug {
    Slug::parse("acme").unwrap()
}

struct Mocks {
    repo: MockMessageRepository,
    provider: MockMessageProvider,
    gate: MockSenderGate,
}

impl Mocks {
    fn new(group: GroupId) -> Self {
        let mut gate = MockSenderGate::new();
        gate.expect_sender_group().returning(move |_, _| Ok(group));
        Self { repo: MockMessageRepository::new(), provider: MockMessageProvider::new(), gate }
    }

    fn service(self) -> MessagingService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(at);
        MessagingService::new(
            MessagingPorts {
                repo: Arc::new(self.repo),
                provider: Arc::new(self.provider),
                gate: Arc::new(self.gate),
                clock: Arc::new(clock),
            },
            MessagingConfig::default(),
        )
    }
}

fn request(channel: Channel, text: &str, n: u32) -> SendRequest {
    SendRequest {
        to: (0..n).map(phone).collect(),
        channel,
        text: text.to_owned(),
        template_code: (channel == Channel::Alimtalk).then(|| "T1".to_owned()),
        failover: true,
    }
}

fn claim(channel: Channel, status: MessageStatus, checks: u32) -> Claim {
    let mut message = NewMessage {
        id: MessageId::new(),
        group: GroupId::new(),
        to: phone(1),
        channel,
        text: "hello".to_owned(),
        template_code: (channel == Channel::Alimtalk).then(|| "T1".to_owned()),
        failover: channel == Channel::Alimtalk,
        price: pricing::unit_price(channel, &MessagingConfig::default().prices),
        failover_of: None,
    }
    .into_message(at());
    message.status = status;
    if status == MessageStatus::Sent {
        message.provider_message_id = Some("kakao-1".to_owned());
    }
    Claim { message, lease: uuid::Uuid::now_v7(), checks }
}

#[tokio::test]
async fn a_send_queues_one_priced_message_per_recipient_in_one_repository_call() {
    let group = GroupId::new();
    let mut m = Mocks::new(group);
    m.repo
        .expect_queue_batch()
        .withf(move |batch, _, when| {
            batch.len() == 3
                && batch
                    .iter()
                    .all(|b| b.group == group && b.price == 11 && b.channel == Channel::Sms)
                && *when == at()
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    m.provider.expect_send().never();
    let sent =
        m.service().send(&slug(), MemberId::new(), request(Channel::Sms, "hi", 3)).await.unwrap();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|s| s.status == MessageStatus::Queued));
}

#[tokio::test]
async fn a_send_the_credit_does_not_cover_is_refused_and_nothing_is_sent() {
    let mut m = Mocks::new(GroupId::new());
    m.repo.expect_queue_batch().returning(|_, _, _| Err(QueueError::InsufficientCredit));
    m.provider.expect_send().never();
    let refused = m.service().send(&slug(), MemberId::new(), request(Channel::Sms, "hi", 2)).await;
    assert!(matches!(refused, Err(SendError::InsufficientCredit)));
}

#[tokio::test]
async fn an_sms_text_over_ninety_bytes_is_queued_and_priced_as_lms() {
    let mut m = Mocks::new(GroupId::new());
    m.repo
        .expect_queue_batch()
        .withf(|batch, _, _| batch[0].channel == Channel::Lms && batch[0].price == 37)
        .returning(|_, _, _| Ok(()));
    let text = "가".repeat(46);
    let sent =
        m.service().send(&slug(), MemberId::new(), request(Channel::Sms, &text, 1)).await.unwrap();
    assert_eq!(sent[0].channel, Channel::Lms);
}

#[tokio::test]
async fn an_alimtalk_without_a_template_or_an_overlong_text_is_refused_before_storage() {
    let mut m = Mocks::new(GroupId::new());
    m.repo.expect_queue_batch().never();
    let service = m.service();
    let mut no_template = request(Channel::Alimtalk, "hi", 1);
    no_template.template_code = None;
    let refused = service.send(&slug(), MemberId::new(), no_template).await;
    assert!(matches!(refused, Err(SendError::TemplateRequired)));
    let long = request(Channel::Sms, &"가".repeat(1001), 1);
    let refused = service.send(&slug(), MemberId::new(), long).await;
    assert!(matches!(refused, Err(SendError::TextTooLong(_))));
    let none = request(Channel::Sms, "hi", 0);
    assert!(matches!(
        service.send(&slug(), MemberId::new(), none).await,
        Err(SendError::Recipients { given: 0, .. })
    ));
}

#[tokio::test]
async fn a_caller_without_the_permission_is_refused() {
    let mut gate = MockSenderGate::new();
    gate.expect_sender_group().returning(|_, _| Err(GateError::Forbidden));
    let mut m = Mocks::new(GroupId::new());
    m.gate = gate;
    m.repo.expect_queue_batch().never();
    let refused = m.service().send(&slug(), MemberId::new(), request(Channel::Sms, "hi", 1)).await;
    assert!(matches!(refused, Err(SendError::Forbidden)));
}

#[tokio::test]
async fn a_provider_refusal_fails_the_message_and_refunds_it() {
    let mut m = Mocks::new(GroupId::new());
    m.provider
        .expect_send()
        .times(1)
        .returning(|_| Err(ProviderError::Rejected { code: "400".into(), message: "bad".into() }));
    m.repo
        .expect_mark_failed()
        .withf(|_, code, refund, _, _| code == "400" && *refund)
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    m.service().step(&claim(Channel::Sms, MessageStatus::Queued, 0)).await.unwrap();
}

#[tokio::test]
async fn a_sent_alimtalk_is_marked_sent_with_its_first_check_after_the_delay() {
    let mut m = Mocks::new(GroupId::new());
    m.provider
        .expect_send()
        .returning(|_| Ok(Accepted { provider_message_id: Some("kakao-1".into()) }));
    m.repo
        .expect_mark_sent()
        .withf(|_, id, check_at, _, _| {
            id.as_deref() == Some("kakao-1") && *check_at == Some(at() + TimeDelta::seconds(2))
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    m.service().step(&claim(Channel::Alimtalk, MessageStatus::Queued, 0)).await.unwrap();
}

#[tokio::test]
async fn a_sent_sms_needs_no_check() {
    let mut m = Mocks::new(GroupId::new());
    m.provider.expect_send().returning(|_| Ok(Accepted { provider_message_id: None }));
    m.repo
        .expect_mark_sent()
        .withf(|_, _, check_at, _, _| check_at.is_none())
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    m.service().step(&claim(Channel::Sms, MessageStatus::Queued, 0)).await.unwrap();
}

#[tokio::test]
async fn an_undelivered_alimtalk_with_failover_is_resent_as_a_charged_sms() {
    let mut m = Mocks::new(GroupId::new());
    m.provider
        .expect_alimtalk_status()
        .with(eq("kakao-1"))
        .returning(|_| Ok(DeliveryStatus::Failed { code: "3018".into() }));
    m.repo
        .expect_fail_over()
        .withf(|c, code, resend, _, _| {
            code == "3018"
                && resend.channel == Channel::Sms
                && resend.price == 11
                && resend.failover_of == Some(c.message.id)
                && resend.template_code.is_none()
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(FailOverOutcome::Resent));
    m.service().step(&claim(Channel::Alimtalk, MessageStatus::Sent, 0)).await.unwrap();
}

#[tokio::test]
async fn an_alimtalk_the_provider_cannot_send_at_all_is_resent_when_failover_is_asked() {
    let mut m = Mocks::new(GroupId::new());
    m.provider.expect_send().returning(|_| Err(ProviderError::NotConfigured("alimtalk".into())));
    m.repo.expect_fail_over().times(1).returning(|_, _, _, _, _| Ok(FailOverOutcome::Resent));
    m.service().step(&claim(Channel::Alimtalk, MessageStatus::Queued, 0)).await.unwrap();
}

#[tokio::test]
async fn an_unavailable_provider_fails_and_refunds_an_alimtalk_without_resending_it() {
    let mut m = Mocks::new(GroupId::new());
    m.provider.expect_send().returning(|_| Err(ProviderError::Unavailable("timeout".into())));
    m.repo.expect_fail_over().never();
    m.repo
        .expect_mark_failed()
        .withf(|_, code, refund, _, _| code == "unavailable" && *refund)
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    m.service().step(&claim(Channel::Alimtalk, MessageStatus::Queued, 0)).await.unwrap();
}

#[tokio::test]
async fn a_pending_alimtalk_is_checked_again_with_a_doubling_wait() {
    let mut m = Mocks::new(GroupId::new());
    m.provider.expect_alimtalk_status().returning(|_| Ok(DeliveryStatus::Pending));
    m.repo
        .expect_reschedule_check()
        .withf(|_, check_at, _, _| *check_at == at() + TimeDelta::seconds(8))
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    // One check made before, this is the second: the third waits 2 s × 2² = 8 s.
    m.service().step(&claim(Channel::Alimtalk, MessageStatus::Sent, 1)).await.unwrap();
}

#[tokio::test]
async fn an_alimtalk_still_pending_after_the_last_check_fails_without_refund() {
    let mut m = Mocks::new(GroupId::new());
    m.provider.expect_alimtalk_status().returning(|_| Ok(DeliveryStatus::Pending));
    m.repo.expect_reschedule_check().never();
    m.repo
        .expect_mark_failed()
        .withf(|_, code, refund, _, _| code == CHECK_GAVE_UP && !*refund)
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    let last = MessagingConfig::default().max_checks - 1;
    m.service().step(&claim(Channel::Alimtalk, MessageStatus::Sent, last)).await.unwrap();
}

#[tokio::test]
async fn a_delivered_alimtalk_is_marked_delivered() {
    let mut m = Mocks::new(GroupId::new());
    m.provider.expect_alimtalk_status().returning(|_| Ok(DeliveryStatus::Delivered));
    m.repo.expect_mark_delivered().times(1).returning(|_, _, _| Ok(true));
    m.service().step(&claim(Channel::Alimtalk, MessageStatus::Sent, 0)).await.unwrap();
}

#[test]
fn the_check_backoff_doubles_up_to_its_cap() {
    let service = Mocks::new(GroupId::new()).service();
    assert_eq!(service.backoff(1), TimeDelta::seconds(4));
    assert_eq!(service.backoff(2), TimeDelta::seconds(8));
    assert_eq!(service.backoff(30), TimeDelta::seconds(300));
}

// -----------------------------------------------------------------------------------------
// Events
// -----------------------------------------------------------------------------------------

/// The typed events of `records`, each recorded at `at()`.
fn decoded(records: &[Event]) -> Vec<MessageEvent> {
    assert!(records.iter().all(|r| r.occurred_at == at()), "recorded at the step's time");
    records.iter().map(|r| r.decode::<MessageEvent>().unwrap()).collect()
}

#[tokio::test]
async fn a_send_records_one_queued_event_for_its_batch() {
    let group = GroupId::new();
    let by = MemberId::new();
    let mut m = Mocks::new(group);
    m.repo
        .expect_queue_batch()
        .withf(move |_, events, _| {
            decoded(events)
                == [MessageEvent::Queued {
                    group_id: group,
                    channel: "lms".into(),
                    count: 3,
                    total_price: 3 * 37,
                    by,
                }]
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let text = "가".repeat(46);
    m.service().send(&slug(), by, request(Channel::Sms, &text, 3)).await.unwrap();
}

#[tokio::test]
async fn a_sent_message_records_its_sent_event() {
    let claimed = claim(Channel::Sms, MessageStatus::Queued, 0);
    let (id, group) = (claimed.message.id, claimed.message.group);
    let mut m = Mocks::new(group);
    m.provider.expect_send().returning(|_| Ok(Accepted { provider_message_id: None }));
    m.repo
        .expect_mark_sent()
        .withf(move |_, _, _, events, _| {
            decoded(events)
                == [MessageEvent::Sent { message_id: id, group_id: group, channel: "sms".into() }]
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    m.service().step(&claimed).await.unwrap();
}

#[tokio::test]
async fn a_refused_message_records_failed_and_refunded() {
    let claimed = claim(Channel::Sms, MessageStatus::Queued, 0);
    let (id, group) = (claimed.message.id, claimed.message.group);
    let mut m = Mocks::new(group);
    m.provider
        .expect_send()
        .returning(|_| Err(ProviderError::Rejected { code: "400".into(), message: "bad".into() }));
    m.repo
        .expect_mark_failed()
        .withf(move |_, _, _, events, _| {
            decoded(events)
                == [MessageEvent::Failed {
                    message_id: id,
                    group_id: group,
                    code: "400".into(),
                    refunded: true,
                }]
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    m.service().step(&claimed).await.unwrap();
}

#[tokio::test]
async fn an_alimtalk_given_up_on_records_failed_without_refund() {
    let claimed =
        claim(Channel::Alimtalk, MessageStatus::Sent, MessagingConfig::default().max_checks - 1);
    let (id, group) = (claimed.message.id, claimed.message.group);
    let mut m = Mocks::new(group);
    m.provider.expect_alimtalk_status().returning(|_| Ok(DeliveryStatus::Pending));
    m.repo
        .expect_mark_failed()
        .withf(move |_, _, _, events, _| {
            decoded(events)
                == [MessageEvent::Failed {
                    message_id: id,
                    group_id: group,
                    code: CHECK_GAVE_UP.into(),
                    refunded: false,
                }]
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(true));
    m.service().step(&claimed).await.unwrap();
}

#[tokio::test]
async fn a_delivered_alimtalk_records_delivered_and_a_pending_one_nothing() {
    let claimed = claim(Channel::Alimtalk, MessageStatus::Sent, 0);
    let (id, group) = (claimed.message.id, claimed.message.group);
    let mut m = Mocks::new(group);
    m.provider.expect_alimtalk_status().returning(|_| Ok(DeliveryStatus::Delivered));
    m.repo
        .expect_mark_delivered()
        .withf(move |_, events, _| {
            decoded(events) == [MessageEvent::Delivered { message_id: id, group_id: group }]
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    m.service().step(&claimed).await.unwrap();

    let mut m = Mocks::new(group);
    m.provider.expect_alimtalk_status().returning(|_| Ok(DeliveryStatus::Pending));
    m.repo
        .expect_reschedule_check()
        .withf(|_, _, events, _| events.is_empty())
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    m.service().step(&claimed).await.unwrap();
}

#[tokio::test]
async fn a_failover_hands_the_events_of_both_outcomes() {
    let claimed = claim(Channel::Alimtalk, MessageStatus::Sent, 0);
    let (id, group) = (claimed.message.id, claimed.message.group);
    let mut m = Mocks::new(group);
    m.provider
        .expect_alimtalk_status()
        .returning(|_| Ok(DeliveryStatus::Failed { code: "3018".into() }));
    m.repo
        .expect_fail_over()
        .withf(move |_, _, resend, events, _| {
            decoded(&events.resent)
                == [MessageEvent::FailedOver {
                    message_id: id,
                    group_id: group,
                    code: "3018".into(),
                    resend_id: resend.id,
                    channel: "sms".into(),
                }]
                && decoded(&events.no_credit)
                    == [MessageEvent::Failed {
                        message_id: id,
                        group_id: group,
                        code: "3018".into(),
                        refunded: true,
                    }]
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(FailOverOutcome::NoCredit));
    m.service().step(&claimed).await.unwrap();
}

#[test]
fn message_events_carry_no_phone_number_or_text() {
    let claimed = claim(Channel::Sms, MessageStatus::Queued, 0);
    let record = Event::record(&failed(&claimed.message, "400", true), at());
    let payload = record.payload.to_string();
    assert!(!payload.contains("821000000001"), "{payload}");
    assert!(!payload.contains("hello"), "{payload}");
    assert_eq!(
        (record.aggregate_type.as_str(), record.aggregate_id),
        ("message", claimed.message.id.as_uuid())
    );
    assert_eq!(record.group, Some(claimed.message.group));
}
