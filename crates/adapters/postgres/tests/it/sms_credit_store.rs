//! `PgSmsCreditStore`: purchases, ledger pages and the auto top-up request against a real
//! database.

use std::sync::Arc;

use chrono::Duration;
use onboard_kernel::GroupId;
use onboard_kernel::events::{Event, EventFeed as _};
use onboard_payments::events::BillingEvent;
use onboard_payments::model::{MerchantUid, Money, Receipt, ReceiptId, ReceiptKind, ReceiptStatus};
use onboard_payments::sms_credit::{
    AutoTopup, CompletePurchaseError, CreditPurchase, CreditReason, DueTopup, PurchaseStatus,
    SmsCreditRepository,
};
use onboard_postgres::sms_credit::apply;
use onboard_postgres::{PgEventFeed, PgSmsCreditStore};

use crate::groups::Fixture;
use crate::rows;

fn purchase(group: GroupId, amount: i64, reason: CreditReason, f: &Fixture) -> CreditPurchase {
    CreditPurchase {
        merchant_uid: MerchantUid::generate(),
        group,
        amount,
        reason,
        card: None,
        status: PurchaseStatus::Pending,
        created_at: f.t,
    }
}

fn receipt(p: &CreditPurchase) -> Receipt {
    Receipt {
        id: ReceiptId::new(),
        group: p.group,
        kind: ReceiptKind::SmsCredit,
        money: Money { amount: p.amount, vat: 0 },
        status: ReceiptStatus::Paid,
        imp_uid: format!("imp_{}", p.merchant_uid),
        merchant_uid: p.merchant_uid.clone(),
        card_id: None,
        paid_at: Some(p.created_at),
        failure_reason: None,
        created_at: p.created_at,
    }
}

#[tokio::test]
async fn a_paid_purchase_credits_the_wallet_with_its_ledger_entry_and_receipt_once() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let store = PgSmsCreditStore::new(f.db.pool());
    let p = purchase(group.id, 5_000, CreditReason::Purchase, &f);
    assert!(store.begin_purchase(&p).await.unwrap());
    assert!(!store.begin_purchase(&p).await.unwrap(), "begun once");
    assert_eq!(store.complete_purchase(&p.merchant_uid, &receipt(&p), &[]).await.unwrap(), 5_000);
    let again = store.complete_purchase(&p.merchant_uid, &receipt(&p), &[]).await;
    assert!(matches!(again, Err(CompletePurchaseError::NotPending)));
    assert_eq!(store.wallet(group.id).await.unwrap().balance, 5_000);
    let ledger = store.ledger(group.id, None, 10).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].reason, CreditReason::Purchase);
    assert_eq!(ledger[0].reference.as_deref(), Some(p.merchant_uid.as_str()));
    assert_eq!(rows(&f.db.pool(), "billing_receipts").await, 1);
    let stored = store.purchase(&p.merchant_uid).await.unwrap().unwrap();
    assert_eq!(stored.status, PurchaseStatus::Paid);
}

#[tokio::test]
async fn a_purchase_whose_receipt_exists_credits_nothing() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let store = PgSmsCreditStore::new(f.db.pool());
    let first = purchase(group.id, 1_000, CreditReason::Purchase, &f);
    let second = purchase(group.id, 1_000, CreditReason::Purchase, &f);
    store.begin_purchase(&first).await.unwrap();
    store.begin_purchase(&second).await.unwrap();
    store.complete_purchase(&first.merchant_uid, &receipt(&first), &[]).await.unwrap();
    // The same gateway payment (imp_uid) cannot pay for a second purchase.
    let reused = Receipt { merchant_uid: second.merchant_uid.clone(), ..receipt(&first) };
    let e = store.complete_purchase(&second.merchant_uid, &reused, &[]).await;
    assert!(matches!(e, Err(CompletePurchaseError::NotPending)));
    assert_eq!(store.wallet(group.id).await.unwrap().balance, 1_000);
    assert_eq!(rows(&f.db.pool(), "sms_credit_ledger").await, 1);
    let still = store.purchase(&second.merchant_uid).await.unwrap().unwrap();
    assert_eq!(still.status, PurchaseStatus::Pending, "rolled back with the rest");
}

#[tokio::test]
async fn the_ledger_pages_newest_first() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let store = PgSmsCreditStore::new(pool.clone());
    let mut conn = pool.get().await.unwrap();
    for _ in 0..5 {
        apply(&mut conn, group.id, 100, CreditReason::Purchase, None, f.t).await.unwrap();
    }
    drop(conn);
    let first = store.ledger(group.id, None, 2).await.unwrap();
    assert_eq!(first.iter().map(|e| e.balance).collect::<Vec<_>>(), [500, 400]);
    let next = store.ledger(group.id, Some(first[1].id), 2).await.unwrap();
    assert_eq!(next.iter().map(|e| e.balance).collect::<Vec<_>>(), [300, 200]);
    let last = store.ledger(group.id, Some(next[1].id), 2).await.unwrap();
    assert_eq!(last.iter().map(|e| e.balance).collect::<Vec<_>>(), [100]);
}

#[tokio::test]
async fn a_top_up_is_requested_once_per_crossing_and_a_failed_one_stores_its_event() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let store = PgSmsCreditStore::new(pool.clone());
    let mut conn = pool.get().await.unwrap();
    apply(&mut conn, group.id, 2_000, CreditReason::Purchase, None, f.t).await.unwrap();
    store
        .set_auto_topup(group.id, Some(AutoTopup { below: 1_500, amount: 3_000 }), f.t)
        .await
        .unwrap();
    apply(&mut conn, group.id, -600, CreditReason::Message, None, f.t).await.unwrap();
    let later = f.t + Duration::seconds(1);
    apply(&mut conn, group.id, -100, CreditReason::Message, None, later).await.unwrap();
    drop(conn);
    let due = store.due_topups(10).await.unwrap();
    assert_eq!(due, [DueTopup { group: group.id, amount: 3_000, requested_at: f.t }]);

    let p = purchase(group.id, 3_000, CreditReason::AutoTopup, &f);
    store.begin_purchase(&p).await.unwrap();
    let failed = BillingEvent::SmsCreditTopupFailed {
        group_id: group.id,
        amount: 3_000,
        reason: "card declined".into(),
    };
    let events = [Event::record(&failed, f.t)];
    assert!(store.fail_purchase(&p.merchant_uid, "card declined", f.t, &events).await.unwrap());
    assert!(!store.fail_purchase(&p.merchant_uid, "card declined", f.t, &events).await.unwrap());
    assert!(store.due_topups(10).await.unwrap().is_empty());
    // Its event once (the second call found nothing pending); 1,300 KRW is not low.
    let batch = PgEventFeed::new(pool.clone()).read("test", 100).await.unwrap();
    let stored: Vec<BillingEvent> =
        batch.events.iter().filter_map(Event::decode::<BillingEvent>).collect();
    assert_eq!(stored, [failed]);
}

#[tokio::test]
async fn a_paid_top_up_clears_its_request() {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let store = PgSmsCreditStore::new(pool.clone());
    store
        .set_auto_topup(group.id, Some(AutoTopup { below: 500, amount: 1_000 }), f.t)
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    apply(&mut conn, group.id, 500, CreditReason::Purchase, None, f.t).await.unwrap();
    apply(&mut conn, group.id, -11, CreditReason::Message, None, f.t).await.unwrap();
    drop(conn);
    assert_eq!(store.due_topups(10).await.unwrap().len(), 1);
    let p = purchase(group.id, 1_000, CreditReason::AutoTopup, &f);
    store.begin_purchase(&p).await.unwrap();
    assert_eq!(store.complete_purchase(&p.merchant_uid, &receipt(&p), &[]).await.unwrap(), 1_489);
    assert!(store.due_topups(10).await.unwrap().is_empty());
    assert_eq!(store.ledger(group.id, None, 1).await.unwrap()[0].reason, CreditReason::AutoTopup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_debits_never_take_the_balance_below_zero() {
    let f = Fixture::with_pool(8).await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let mut conn = pool.get().await.unwrap();
    apply(&mut conn, group.id, 100, CreditReason::Purchase, None, f.t).await.unwrap();
    drop(conn);
    let pool = Arc::new(pool);
    let t = f.t;
    let debits = (0..20).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            apply(&mut conn, group.id, -11, CreditReason::Message, None, t).await.unwrap()
        })
    });
    let mut covered = 0;
    for d in debits {
        if d.await.unwrap().is_some() {
            covered += 1;
        }
    }
    assert_eq!(covered, 9, "100 KRW pays for nine 11 KRW messages");
    let store = PgSmsCreditStore::new(f.db.pool());
    assert_eq!(store.wallet(group.id).await.unwrap().balance, 1);
}

#[tokio::test]
async fn a_billed_invite_is_debited_with_its_row_refused_without_credit_and_refunded() {
    use onboard_invites::ports::{InviteRepository, NewInvite, SmsCharge};
    use onboard_invites::{CreateInviteRefusal, InviteId, InviteeName};
    use onboard_postgres::PgInviteRepository;

    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await;
    let pool = f.db.pool();
    let invites = PgInviteRepository::new(pool.clone());
    let store = PgSmsCreditStore::new(pool.clone());
    let invite = |n: u32| {
        let id = InviteId::new();
        NewInvite {
            id,
            group: group.id,
            name: InviteeName::parse("Ann Lee").unwrap(),
            phone: Some(crate::phone(100 + n)),
            email: None,
            role: onboard_groups::RoleName::MEMBER,
            invited_by: owner,
            created_at: f.t,
            expires_at: f.t + Duration::days(1),
            sms_charge: Some(SmsCharge { group: group.id, amount: 11, invite: id }),
        }
    };

    let refused = invites.create(&invite(1), &[]).await;
    assert!(matches!(refused, Err(CreateInviteRefusal::InsufficientCredit)), "{refused:?}");
    assert_eq!(rows(&pool, "invites").await, 0, "no invite row without credit");

    let mut conn = pool.get().await.unwrap();
    apply(&mut conn, group.id, 20, CreditReason::Purchase, None, f.t).await.unwrap();
    drop(conn);
    let paid = invite(2);
    invites.create(&paid, &[]).await.unwrap();
    assert_eq!(store.wallet(group.id).await.unwrap().balance, 9);
    let charge = paid.sms_charge.expect("a charge");
    invites.refund_sms(&charge, f.t, &[]).await.unwrap();
    assert_eq!(store.wallet(group.id).await.unwrap().balance, 20);
    let ledger = store.ledger(group.id, None, 10).await.unwrap();
    let reasons: Vec<_> = ledger.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, [CreditReason::Refund, CreditReason::InviteSms, CreditReason::Purchase]);
    assert_eq!(ledger[1].reference.as_deref(), Some(paid.id.to_string().as_str()));
}
