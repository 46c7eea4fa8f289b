//! The SMS credit primitive in PostgreSQL: balance and ledger change together, never below 0.

use diesel_async::AsyncConnection as _;
use onboard_notifications::NotificationType;
use onboard_notifications::ports::NotificationRepository;
use onboard_payments::sms_credit::CreditReason;
use onboard_postgres::PgNotificationRepository;
use onboard_postgres::sms_credit::apply;

use crate::groups::Fixture;
use crate::rows;

const TTL: i64 = 14 * 24 * 3600;

#[tokio::test]
async fn a_debit_the_balance_does_not_cover_changes_nothing() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let mut conn = pool.get().await.expect("a connection");

    assert_eq!(
        apply(&mut conn, group.id, -11, CreditReason::Message, None, f.t, TTL).await.unwrap(),
        None
    );
    assert_eq!(
        apply(&mut conn, group.id, 20, CreditReason::Purchase, Some("m-1"), f.t, TTL)
            .await
            .unwrap(),
        Some(20)
    );
    assert_eq!(
        apply(&mut conn, group.id, -11, CreditReason::Message, Some("msg-1"), f.t, TTL)
            .await
            .unwrap(),
        Some(9)
    );
    assert_eq!(
        apply(&mut conn, group.id, -11, CreditReason::Message, Some("msg-2"), f.t, TTL)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        apply(&mut conn, group.id, 11, CreditReason::Refund, Some("msg-1"), f.t, TTL)
            .await
            .unwrap(),
        Some(20)
    );
    drop(conn);
    assert_eq!(rows(&pool, "sms_credit_ledger").await, 3);
}

#[tokio::test]
async fn a_debit_rolled_back_with_its_transaction_leaves_balance_and_ledger_as_they_were() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let mut conn = pool.get().await.expect("a connection");
    apply(&mut conn, group.id, 100, CreditReason::Purchase, None, f.t, TTL).await.unwrap();

    let outcome: Result<(), diesel::result::Error> = conn
        .transaction(async |conn| {
            let left = apply(conn, group.id, -37, CreditReason::Message, None, f.t, TTL).await?;
            assert_eq!(left, Some(63));
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(outcome.is_err());
    let left =
        apply(&mut conn, group.id, -100, CreditReason::Message, None, f.t, TTL).await.unwrap();
    assert_eq!(left, Some(0), "the whole 100 was still there");
    drop(conn);
    assert_eq!(rows(&pool, "sms_credit_ledger").await, 2);
}

#[tokio::test]
async fn crossing_below_a_thousand_tells_the_billing_managers_once() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let plain = f.member(2).await;
    let group = f.group("acme", owner).await;
    f.join(group.id, plain, f.t).await;
    let pool = f.db.pool();
    let notes = PgNotificationRepository::new(pool.clone());
    let mut conn = pool.get().await.expect("a connection");
    apply(&mut conn, group.id, 1_020, CreditReason::Purchase, None, f.t, TTL).await.unwrap();
    for _ in 0..3 {
        apply(&mut conn, group.id, -11, CreditReason::Message, None, f.t, TTL).await.unwrap();
    }
    drop(conn);
    let owners = notes.list(owner, true, None, 10, f.t).await.unwrap();
    let low: Vec<_> = owners.iter().filter(|n| n.kind == NotificationType::SmsCreditLow).collect();
    assert_eq!(low.len(), 1);
    assert!(low[0].body.contains("998"), "{}", low[0].body);
    assert!(
        notes
            .list(plain, true, None, 10, f.t)
            .await
            .unwrap()
            .iter()
            .all(|n| n.kind != NotificationType::SmsCreditLow)
    );
}
