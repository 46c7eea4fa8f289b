//! The SMS credit primitive in PostgreSQL: balance and ledger change together, never below 0.

use diesel_async::AsyncConnection as _;
use onboard_kernel::events::{Event, EventFeed as _};
use onboard_payments::events::BillingEvent;
use onboard_payments::sms_credit::CreditReason;
use onboard_postgres::PgEventFeed;
use onboard_postgres::sms_credit::apply;

use crate::groups::Fixture;
use crate::rows;

#[tokio::test]
async fn a_debit_the_balance_does_not_cover_changes_nothing() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let mut conn = pool.get().await.expect("a connection");

    assert_eq!(
        apply(&mut conn, group.id, -11, CreditReason::Message, None, f.t).await.unwrap(),
        None
    );
    assert_eq!(
        apply(&mut conn, group.id, 20, CreditReason::Purchase, Some("m-1"), f.t).await.unwrap(),
        Some(20)
    );
    assert_eq!(
        apply(&mut conn, group.id, -11, CreditReason::Message, Some("msg-1"), f.t).await.unwrap(),
        Some(9)
    );
    assert_eq!(
        apply(&mut conn, group.id, -11, CreditReason::Message, Some("msg-2"), f.t).await.unwrap(),
        None
    );
    assert_eq!(
        apply(&mut conn, group.id, 11, CreditReason::Refund, Some("msg-1"), f.t).await.unwrap(),
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
    apply(&mut conn, group.id, 100, CreditReason::Purchase, None, f.t).await.unwrap();

    let outcome: Result<(), diesel::result::Error> = conn
        .transaction(async |conn| {
            let left = apply(conn, group.id, -37, CreditReason::Message, None, f.t).await?;
            assert_eq!(left, Some(63));
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(outcome.is_err());
    let left = apply(&mut conn, group.id, -100, CreditReason::Message, None, f.t).await.unwrap();
    assert_eq!(left, Some(0), "the whole 100 was still there");
    drop(conn);
    assert_eq!(rows(&pool, "sms_credit_ledger").await, 2);
}

#[tokio::test]
async fn crossing_below_a_thousand_stores_the_low_credit_event_once() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let mut conn = pool.get().await.expect("a connection");
    apply(&mut conn, group.id, 1_020, CreditReason::Purchase, None, f.t).await.unwrap();
    for _ in 0..3 {
        apply(&mut conn, group.id, -11, CreditReason::Message, None, f.t).await.unwrap();
    }
    drop(conn);
    let batch = PgEventFeed::new(pool.clone()).read("test", 100).await.unwrap();
    let stored: Vec<BillingEvent> =
        batch.events.iter().filter_map(Event::decode::<BillingEvent>).collect();
    assert_eq!(stored, [BillingEvent::SmsCreditLow { group_id: group.id, balance: 998 }]);
    assert_eq!(rows(&pool, "notifications").await, 0, "the store notifies nobody itself");
}
