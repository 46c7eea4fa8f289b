//! Messages in PostgreSQL: paid and queued in one transaction, claimed by one worker at a time.

use chrono::{DateTime, TimeDelta, Utc};
use onboard_kernel::events::{Event, EventFeed as _};
use onboard_kernel::{GroupId, PhoneNumber};
use onboard_messaging::events::MessageEvent;
use onboard_messaging::ports::MessageRepository;
use onboard_messaging::{
    Channel, Claim, FailOverEvents, FailOverOutcome, MessageId, MessageStatus, NewMessage,
    QueueError,
};
use onboard_payments::sms_credit::CreditReason;
use onboard_postgres::sms_credit::apply;
use onboard_postgres::{PgEventFeed, PgMessageRepository, PgPool};

use crate::groups::Fixture;
use crate::rows;

fn message(group: GroupId, n: u32, channel: Channel, price: i64) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        group,
        to: PhoneNumber::parse(&format!("+8210{n:08}"), None).unwrap(),
        channel,
        text: "hi".into(),
        template_code: (channel == Channel::Alimtalk).then(|| "T1".into()),
        failover: channel == Channel::Alimtalk,
        price,
        failover_of: None,
    }
}

fn failed(claim: &Claim, code: &str, at: DateTime<Utc>) -> Vec<Event> {
    let failed = MessageEvent::Failed {
        message_id: claim.message.id,
        group_id: claim.message.group,
        code: code.into(),
        refunded: true,
    };
    vec![Event::record(&failed, at)]
}

/// The types of the events stored so far.
/// The messaging events stored so far (a debit crossing below the low-credit line also stores
/// `sms_credit.low`, which is the SMS credit's, not the messages').
async fn event_types(pool: &PgPool) -> Vec<String> {
    let batch = PgEventFeed::new(pool.clone()).read("test", 100).await.unwrap();
    batch.events.into_iter().map(|e| e.event_type).filter(|t| t.starts_with("message.")).collect()
}

#[tokio::test]
async fn a_batch_the_credit_does_not_cover_stores_and_debits_nothing() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await.id;
    let pool = f.db.pool();
    let mut conn = pool.get().await.unwrap();
    apply(&mut conn, group, 30, CreditReason::Purchase, None, f.t).await.unwrap();
    let repo = PgMessageRepository::new(pool.clone());

    let batch: Vec<_> = (0..3).map(|n| message(group, n, Channel::Sms, 11)).collect();
    let queued = |count: u32| {
        let queued = MessageEvent::Queued {
            group_id: group,
            channel: "sms".into(),
            count,
            total_price: i64::from(count) * 11,
            by: owner,
        };
        vec![Event::record(&queued, f.t)]
    };
    let refused = repo.queue_batch(&batch, &queued(3), f.t).await;
    assert!(matches!(refused, Err(QueueError::InsufficientCredit)));
    assert_eq!(rows(&pool, "messages").await, 0);
    assert_eq!(rows(&pool, "sms_credit_ledger").await, 1);
    assert!(event_types(&pool).await.is_empty(), "a refused batch stores no event");

    repo.queue_batch(&batch[..2], &queued(2), f.t).await.unwrap();
    assert_eq!(rows(&pool, "messages").await, 2);
    assert_eq!(event_types(&pool).await, ["message.queued"]);
    let stored = repo.get(group, batch[0].id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.price), (MessageStatus::Queued, 11));
    assert!(repo.get(GroupId::new(), batch[0].id).await.unwrap().is_none(), "another group's");
}

#[tokio::test]
async fn concurrent_claims_never_share_a_message_and_a_lost_lease_records_nothing() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await.id;
    let pool = f.db.pool();
    let mut conn = pool.get().await.unwrap();
    apply(&mut conn, group, 1_000, CreditReason::Purchase, None, f.t).await.unwrap();
    let repo = PgMessageRepository::new(pool.clone());
    let batch: Vec<_> = (0..30).map(|n| message(group, n, Channel::Sms, 11)).collect();
    repo.queue_batch(&batch, &[], f.t).await.unwrap();

    let lease = f.t + TimeDelta::seconds(30);
    let (a, b, c) = tokio::join!(
        repo.claim(f.t, lease, 12),
        repo.claim(f.t, lease, 12),
        repo.claim(f.t, lease, 12)
    );
    let mut ids: Vec<MessageId> =
        [a.unwrap(), b.unwrap(), c.unwrap()].concat().iter().map(|c| c.message.id).collect();
    assert_eq!(ids.len(), 30);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "no message claimed twice");
    assert!(repo.claim(f.t, lease, 50).await.unwrap().is_empty());

    // After the lease another worker takes a message over; the first one's record is refused.
    let first = repo.claim(lease, lease + TimeDelta::seconds(30), 1).await.unwrap();
    let again = repo
        .claim(lease + TimeDelta::seconds(30), lease + TimeDelta::seconds(60), 1)
        .await
        .unwrap();
    assert_eq!(first[0].message.id, again[0].message.id);
    let sent = MessageEvent::Sent {
        message_id: first[0].message.id,
        group_id: group,
        channel: "sms".into(),
    };
    let sent = [Event::record(&sent, lease)];
    let lost = &first[0];
    assert!(!repo.mark_sent(lost, None, None, &sent, lease).await.unwrap());
    assert!(
        !repo.mark_failed(lost, "400", true, &failed(lost, "400", lease), lease).await.unwrap()
    );
    assert!(!repo.mark_delivered(lost, &sent, lease).await.unwrap());
    assert!(!repo.reschedule_check(lost, lease, &sent, lease).await.unwrap());
    assert!(event_types(&pool).await.is_empty(), "a lost lease stores no event");
    let held = &again[0];
    assert!(repo.mark_failed(held, "400", true, &failed(held, "400", lease), lease).await.unwrap());
    assert_eq!(event_types(&pool).await, ["message.failed"]);
    let failed = repo.get(group, again[0].message.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.result_code.as_deref()),
        (MessageStatus::Failed, Some("400"))
    );
    // 1,000 - 30 × 11 + 11 refunded.
    let balance: i64 =
        apply(&mut conn, group, 1, CreditReason::Purchase, None, f.t).await.unwrap().unwrap();
    assert_eq!(balance, 1_000 - 330 + 11 + 1);
}

#[tokio::test]
async fn a_failover_without_credit_for_the_resend_leaves_the_alimtalk_failed_and_refunded() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await.id;
    let pool = f.db.pool();
    let mut conn = pool.get().await.unwrap();
    apply(&mut conn, group, 10, CreditReason::Purchase, None, f.t).await.unwrap();
    let repo = PgMessageRepository::new(pool.clone());
    let alimtalk = message(group, 1, Channel::Alimtalk, 10);
    repo.queue_batch(std::slice::from_ref(&alimtalk), &[], f.t).await.unwrap();
    let claim = repo.claim(f.t, f.t + TimeDelta::seconds(30), 1).await.unwrap().remove(0);

    let resend =
        NewMessage { failover_of: Some(alimtalk.id), ..message(group, 1, Channel::Sms, 11) };
    let resent = MessageEvent::FailedOver {
        message_id: alimtalk.id,
        group_id: group,
        code: "3018".into(),
        resend_id: resend.id,
        channel: "sms".into(),
    };
    let events = FailOverEvents {
        resent: vec![Event::record(&resent, f.t)],
        no_credit: failed(&claim, "3018", f.t),
    };
    let outcome = repo.fail_over(&claim, "3018", &resend, &events, f.t).await.unwrap();
    assert_eq!(outcome, FailOverOutcome::NoCredit);
    assert_eq!(event_types(&pool).await, ["message.failed"], "the outcome's events only");
    let stored = repo.get(group, alimtalk.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.failover_id), (MessageStatus::Failed, None));
    assert!(repo.get(group, resend.id).await.unwrap().is_none());
    // Purchase, message, refund: the balance is whole again.
    assert_eq!(rows(&pool, "sms_credit_ledger").await, 3);
}

#[tokio::test]
async fn a_failover_stores_its_events_with_the_resend_and_none_under_a_lost_lease() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await.id;
    let pool = f.db.pool();
    let mut conn = pool.get().await.unwrap();
    apply(&mut conn, group, 100, CreditReason::Purchase, None, f.t).await.unwrap();
    let repo = PgMessageRepository::new(pool.clone());
    let alimtalk = message(group, 1, Channel::Alimtalk, 10);
    repo.queue_batch(std::slice::from_ref(&alimtalk), &[], f.t).await.unwrap();
    let lease = f.t + TimeDelta::seconds(30);
    let lost = repo.claim(f.t, lease, 1).await.unwrap().remove(0);
    let claim = repo.claim(lease, lease + TimeDelta::seconds(30), 1).await.unwrap().remove(0);

    let resend =
        NewMessage { failover_of: Some(alimtalk.id), ..message(group, 1, Channel::Sms, 11) };
    let resent = MessageEvent::FailedOver {
        message_id: alimtalk.id,
        group_id: group,
        code: "3018".into(),
        resend_id: resend.id,
        channel: "sms".into(),
    };
    let events = |claim: &Claim| FailOverEvents {
        resent: vec![Event::record(&resent, lease)],
        no_credit: failed(claim, "3018", lease),
    };
    let outcome = repo.fail_over(&lost, "3018", &resend, &events(&lost), lease).await.unwrap();
    assert_eq!(outcome, FailOverOutcome::LeaseLost);
    assert!(event_types(&pool).await.is_empty(), "a lost lease stores no event");

    let outcome = repo.fail_over(&claim, "3018", &resend, &events(&claim), lease).await.unwrap();
    assert_eq!(outcome, FailOverOutcome::Resent);
    assert_eq!(event_types(&pool).await, ["message.failed_over"]);
    let stored = repo.get(group, alimtalk.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.failover_id), (MessageStatus::FailedOver, Some(resend.id)));
}
