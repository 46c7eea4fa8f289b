//! `PgBillingStore`: the payments storage ports against a real database.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{Text, Uuid};
use diesel_async::RunQueryDsl as _;
use onboard_kernel::GroupId;
use onboard_payments::model::{
    Billing, BillingStatus, Card, CardChange, CardChangeId, CardChangeStep, CardId, Catalogue,
    Charge, ChargeKind, ChargeStatus, CustomerUid, Interval, MerchantUid, Money, PlanCode, Receipt,
    ReceiptCursor, ReceiptId, ReceiptKind, ReceiptStatus,
};
use onboard_payments::ports::{
    AddCardError, BeginCardChangeError, BillingCommit, BillingRepository, CardRepository, Claim,
    CommitError, DeleteCardError, IdempotencyRepository, IncrementError, UsageRepository,
};
use onboard_postgres::PgBillingStore;
use onboard_postgres::testing::TestDatabase;

use crate::{now, rows};

struct Fixture {
    db: TestDatabase,
    store: Arc<PgBillingStore>,
}

impl Fixture {
    async fn new() -> Self {
        let db = TestDatabase::new().await;
        let store = Arc::new(PgBillingStore::new(db.pool()));
        Self { db, store }
    }

    /// A stored group.
    async fn group(&self, slug: &str) -> GroupId {
        let id = GroupId::new();
        let mut conn = self.db.pool().get().await.unwrap();
        diesel::sql_query(
            "INSERT INTO groups (id, slug, name, created_at) VALUES ($1, $2, 'Acme', now())",
        )
        .bind::<Uuid, _>(id.as_uuid())
        .bind::<Text, _>(slug)
        .execute(&mut conn)
        .await
        .unwrap();
        id
    }

    /// A card of `group` (prepared, then added).
    async fn card(&self, group: GroupId, t: DateTime<Utc>) -> Card {
        let uid = CustomerUid::generate();
        self.store.prepare(group, &uid, t).await.expect("prepares");
        self.store.add(&card(group, &uid, t)).await.expect("adds")
    }
}

fn card(group: GroupId, uid: &CustomerUid, t: DateTime<Utc>) -> Card {
    Card {
        id: CardId::new(),
        group,
        customer_uid: uid.clone(),
        card_name: "Test card".into(),
        number_masked: "424242******4242".into(),
        main: false,
        created_at: t,
    }
}

fn pro() -> PlanCode {
    PlanCode::parse("pro").unwrap()
}

fn charge(card: &Card, at: DateTime<Utc>, t: DateTime<Utc>) -> Charge {
    Charge {
        merchant_uid: MerchantUid::generate(),
        group: card.group,
        card_id: card.id,
        customer_uid: card.customer_uid.clone(),
        money: Money::with_vat(75_800),
        at,
        plan: pro(),
        interval: Interval::Month,
        addons: vec![PlanCode::parse("chat").unwrap()],
        period_start: at,
        kind: ChargeKind::TrialEnd,
        attempt: 0,
        status: ChargeStatus::Scheduled,
        created_at: t,
    }
}

fn trialing(group: GroupId, next: &Charge, t: DateTime<Utc>) -> Billing {
    Billing {
        plan: pro(),
        interval: Some(Interval::Month),
        addons: vec![PlanCode::parse("chat").unwrap()],
        status: BillingStatus::Trialing,
        trial_ends_at: Some(next.at),
        current_period_start: Some(t),
        current_period_end: Some(next.at),
        trial_used: true,
        next_charge: Some(next.clone()),
        ..Billing::free(group, 10)
    }
}

fn receipt(charge: &Charge, imp_uid: &str, t: DateTime<Utc>) -> Receipt {
    Receipt {
        id: ReceiptId::new(),
        group: charge.group,
        kind: ReceiptKind::Subscription,
        money: charge.money,
        status: ReceiptStatus::Paid,
        imp_uid: imp_uid.to_owned(),
        merchant_uid: charge.merchant_uid.clone(),
        card_id: Some(charge.card_id),
        paid_at: Some(t),
        failure_reason: None,
        created_at: t,
    }
}

/// A trialing account with its first charge scheduled on a new main card.
async fn trial(f: &Fixture, slug: &str, t: DateTime<Utc>) -> (Billing, Card, Charge) {
    let group = f.group(slug).await;
    let card = f.card(group, t).await;
    let next = charge(&card, t + Duration::days(14), t);
    let billing = trialing(group, &next, t);
    let commit = BillingCommit {
        billing: billing.clone(),
        new_charges: vec![next.clone()],
        closed_charges: vec![],
        receipt: None,
        events: vec![],
    };
    f.store.commit(&commit).await.expect("the trial starts");
    (Billing { version: 1, ..billing }, card, next)
}

#[tokio::test]
async fn the_seeded_catalogue_is_the_domains_seed() {
    let f = Fixture::new().await;
    assert_eq!(f.store.catalogue().await.expect("reads"), Catalogue::seed());
}

#[tokio::test]
async fn a_group_without_an_account_has_none() {
    let f = Fixture::new().await;
    let group = f.group("acme").await;
    assert_eq!(f.store.billing(group).await.expect("reads"), None);
}

#[tokio::test]
async fn a_commit_stores_the_account_with_its_next_charge() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, _, next) = trial(&f, "acme", t).await;
    let stored = f.store.billing(billing.group).await.expect("reads").expect("stored");
    assert_eq!(stored, billing);
    assert_eq!(f.store.charge(&next.merchant_uid).await.expect("reads"), Some(next));
}

#[tokio::test]
async fn a_stale_commit_writes_nothing() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, card, _) = trial(&f, "acme", t).await;

    // Version 0 again: a row exists.
    let again = BillingCommit {
        billing: Billing::free(billing.group, 10),
        new_charges: vec![charge(&card, t, t)],
        closed_charges: vec![],
        receipt: None,
        events: vec![],
    };
    assert!(matches!(f.store.commit(&again).await, Err(CommitError::Stale)));

    // An old version.
    let mut old = billing.clone();
    old.version = 7;
    old.status = BillingStatus::Active;
    let stale = BillingCommit {
        billing: old,
        new_charges: vec![charge(&card, t, t)],
        closed_charges: vec![],
        receipt: None,
        events: vec![],
    };
    assert!(matches!(f.store.commit(&stale).await, Err(CommitError::Stale)));
    assert_eq!(f.store.billing(billing.group).await.unwrap().unwrap(), billing);
    assert_eq!(rows(&f.db.pool(), "billing_charges").await, 1);
}

#[tokio::test]
async fn closing_a_charge_that_is_no_longer_scheduled_is_stale() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, _, next) = trial(&f, "acme", t).await;
    let mut canceled = billing.clone();
    canceled.status = BillingStatus::Canceling;
    canceled.next_charge = None;
    let close = BillingCommit {
        billing: canceled.clone(),
        new_charges: vec![],
        closed_charges: vec![(next.merchant_uid.clone(), ChargeStatus::Cancelled)],
        receipt: None,
        events: vec![],
    };
    f.store.commit(&close).await.expect("closes");
    let stored = f.store.billing(billing.group).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.next_charge, None);
    assert_eq!(
        f.store.charge(&next.merchant_uid).await.unwrap().unwrap().status,
        ChargeStatus::Cancelled
    );

    let twice = BillingCommit { billing: Billing { version: 2, ..canceled }, ..close };
    assert!(matches!(f.store.commit(&twice).await, Err(CommitError::Stale)));
    assert_eq!(f.store.billing(billing.group).await.unwrap().unwrap().version, 2);
}

#[tokio::test]
async fn a_payment_is_recorded_once() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, card, next) = trial(&f, "acme", t).await;
    let renewal = charge(&card, next.at + Duration::days(30), t);
    let mut active = billing.clone();
    active.status = BillingStatus::Active;
    active.next_charge = Some(renewal.clone());
    let paid = BillingCommit {
        billing: active.clone(),
        new_charges: vec![renewal.clone()],
        closed_charges: vec![(next.merchant_uid.clone(), ChargeStatus::Paid)],
        receipt: Some(receipt(&next, "imp_1", t)),
        events: vec![],
    };
    assert!(!f.store.receipt_exists("imp_1").await.unwrap());
    f.store.commit(&paid).await.expect("records the payment");
    assert!(f.store.receipt_exists("imp_1").await.unwrap());

    // The same payment again, judged on the new version: refused, nothing written.
    let again = BillingCommit {
        billing: Billing { version: 2, ..active },
        new_charges: vec![charge(&card, next.at + Duration::days(60), t)],
        closed_charges: vec![],
        receipt: Some(receipt(&next, "imp_1", t)),
        events: vec![],
    };
    assert!(matches!(f.store.commit(&again).await, Err(CommitError::DuplicateReceipt)));
    assert_eq!(rows(&f.db.pool(), "billing_receipts").await, 1);
    assert_eq!(rows(&f.db.pool(), "billing_charges").await, 2);
    let stored = f.store.billing(billing.group).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.next_charge), (2, Some(renewal)));
}

#[tokio::test]
async fn receipts_are_listed_newest_first_in_pages() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, card, _) = trial(&f, "acme", t).await;
    for i in 0..5 {
        let c = charge(&card, t, t);
        let version = billing.version + i;
        let commit = BillingCommit {
            billing: Billing { version, next_charge: None, ..billing.clone() },
            new_charges: vec![c.clone()],
            closed_charges: vec![],
            receipt: Some(receipt(&c, &format!("imp_{i}"), t + Duration::minutes(i))),
            events: vec![],
        };
        f.store.commit(&commit).await.expect("commits");
    }
    let first = f.store.receipts(billing.group, None, 3).await.unwrap();
    let imps: Vec<&str> = first.iter().map(|r| r.imp_uid.as_str()).collect();
    assert_eq!(imps, ["imp_4", "imp_3", "imp_2"]);
    let last = &first[2];
    let cursor = ReceiptCursor { created_at: last.created_at, id: last.id };
    let second = f.store.receipts(billing.group, Some(cursor), 3).await.unwrap();
    let imps: Vec<&str> = second.iter().map(|r| r.imp_uid.as_str()).collect();
    assert_eq!(imps, ["imp_1", "imp_0"]);
    let other = f.group("other").await;
    assert!(f.store.receipts(other, None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn overdue_charges_and_expired_accounts_are_found() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, _, next) = trial(&f, "acme", t).await;
    assert!(f.store.overdue_charges(next.at, 10).await.unwrap().is_empty());
    let overdue = f.store.overdue_charges(next.at + Duration::minutes(11), 10).await.unwrap();
    assert_eq!(overdue, vec![next.clone()]);

    // Scheduled: not expired even after the period end.
    let later = next.at + Duration::days(1);
    assert!(f.store.expired_billings(later, 10).await.unwrap().is_empty());
    // Canceling: expired after the period end only.
    let mut canceling = billing.clone();
    canceling.status = BillingStatus::Canceling;
    canceling.cancel_at_period_end = true;
    canceling.next_charge = None;
    let commit = BillingCommit {
        billing: canceling.clone(),
        new_charges: vec![],
        closed_charges: vec![(next.merchant_uid.clone(), ChargeStatus::Cancelled)],
        receipt: None,
        events: vec![],
    };
    f.store.commit(&commit).await.unwrap();
    assert!(f.store.expired_billings(next.at, 10).await.unwrap().is_empty());
    let expired = f.store.expired_billings(later, 10).await.unwrap();
    assert_eq!(expired, vec![Billing { version: 2, ..canceling }]);
    assert!(f.store.overdue_charges(later, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_card_needs_a_customer_uid_prepared_for_its_group() {
    let f = Fixture::new().await;
    let t = now();
    let acme = f.group("acme").await;
    let other = f.group("other").await;
    let uid = CustomerUid::generate();
    assert!(matches!(f.store.add(&card(acme, &uid, t)).await, Err(AddCardError::NotPrepared)));
    f.store.prepare(other, &uid, t).await.unwrap();
    assert!(matches!(f.store.add(&card(acme, &uid, t)).await, Err(AddCardError::NotPrepared)));
    assert!(f.store.add(&card(other, &uid, t)).await.is_ok());
    assert!(matches!(f.store.add(&card(other, &uid, t)).await, Err(AddCardError::Exists)));
    assert_eq!(rows(&f.db.pool(), "billing_cards").await, 1);
}

#[tokio::test]
async fn the_first_card_is_main_and_later_ones_are_not() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    let first = f.card(group, t).await;
    let second = f.card(group, t + Duration::seconds(1)).await;
    assert!(first.main);
    assert!(!second.main);
    assert_eq!(f.store.cards(group).await.unwrap(), vec![first.clone(), second]);
    assert_eq!(f.store.card(group, first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(f.store.card(f.group("other").await, first.id).await.unwrap(), None);
}

#[tokio::test]
async fn cards_added_at_once_get_one_main() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    let mut cards = Vec::new();
    for _ in 0..8 {
        let uid = CustomerUid::generate();
        f.store.prepare(group, &uid, t).await.unwrap();
        cards.push(card(group, &uid, t));
    }
    let tasks: Vec<_> = cards
        .into_iter()
        .map(|c| {
            let store = f.store.clone();
            tokio::spawn(async move { store.add(&c).await })
        })
        .collect();
    let mut mains = 0;
    for task in tasks {
        if task.await.unwrap().expect("adds").main {
            mains += 1;
        }
    }
    assert_eq!(mains, 1);
    assert_eq!(f.store.cards(group).await.unwrap().iter().filter(|c| c.main).count(), 1);
}

#[tokio::test]
async fn a_card_with_a_scheduled_charge_cannot_be_deleted() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, card, next) = trial(&f, "acme", t).await;
    let group = billing.group;
    assert!(matches!(f.store.delete(group, card.id).await, Err(DeleteCardError::InUse)));
    assert!(matches!(f.store.delete(group, CardId::new()).await, Err(DeleteCardError::NotFound)));
    let close = BillingCommit {
        billing: Billing { next_charge: None, ..billing },
        new_charges: vec![],
        closed_charges: vec![(next.merchant_uid, ChargeStatus::Cancelled)],
        receipt: None,
        events: vec![],
    };
    f.store.commit(&close).await.unwrap();
    f.store.delete(group, card.id).await.expect("deletes");
    assert!(f.store.cards(group).await.unwrap().is_empty());
}

fn change(group: GroupId, old: &Card, new: &Card, old_charge: Option<Charge>) -> CardChange {
    CardChange {
        id: CardChangeId::new(),
        group,
        old_card: Some(old.id),
        new_card: new.id,
        old_charge,
        new_merchant_uid: MerchantUid::generate(),
        step: CardChangeStep::Marked,
        created_at: now(),
    }
}

async fn main_card(f: &Fixture, group: GroupId) -> Vec<CardId> {
    f.store.cards(group).await.unwrap().into_iter().filter(|c| c.main).map(|c| c.id).collect()
}

#[tokio::test]
async fn a_main_card_change_is_journaled_and_finished_with_its_commit() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, old, next) = trial(&f, "acme", t).await;
    let group = billing.group;
    let new = f.card(group, t).await;
    let ch = change(group, &old, &new, Some(next.clone()));

    f.store.begin_main_change(&ch).await.expect("begins");
    assert_eq!(main_card(&f, group).await, vec![new.id]);
    // Busy while unfinished.
    let other = change(group, &new, &old, None);
    assert!(matches!(f.store.begin_main_change(&other).await, Err(BeginCardChangeError::Busy)));
    f.store.advance_main_change(ch.id, CardChangeStep::Unscheduled).await.unwrap();
    f.store.advance_main_change(ch.id, CardChangeStep::Scheduled).await.unwrap();
    let unfinished = f.store.unfinished_main_changes().await.unwrap();
    assert_eq!(unfinished, vec![CardChange { step: CardChangeStep::Scheduled, ..ch.clone() }]);

    let moved = Charge {
        merchant_uid: ch.new_merchant_uid.clone(),
        card_id: new.id,
        customer_uid: new.customer_uid.clone(),
        ..next.clone()
    };
    let commit = BillingCommit {
        billing: Billing { next_charge: Some(moved.clone()), ..billing.clone() },
        new_charges: vec![moved.clone()],
        closed_charges: vec![(next.merchant_uid.clone(), ChargeStatus::Cancelled)],
        receipt: None,
        events: vec![],
    };
    f.store.finish_main_change(ch.id, Some(commit)).await.expect("finishes");
    assert!(f.store.unfinished_main_changes().await.unwrap().is_empty());
    let stored = f.store.billing(group).await.unwrap().unwrap();
    assert_eq!(stored.next_charge, Some(moved));
    // The old card is free to go now; the new one is not.
    assert!(matches!(f.store.delete(group, new.id).await, Err(DeleteCardError::InUse)));
    f.store.delete(group, old.id).await.expect("deletes the old card");
}

#[tokio::test]
async fn a_stale_finish_leaves_the_journal_unfinished() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, old, next) = trial(&f, "acme", t).await;
    let new = f.card(billing.group, t).await;
    let ch = change(billing.group, &old, &new, Some(next.clone()));
    f.store.begin_main_change(&ch).await.unwrap();
    let commit = BillingCommit {
        billing: Billing { version: 9, ..billing },
        new_charges: vec![],
        closed_charges: vec![],
        receipt: None,
        events: vec![],
    };
    assert!(matches!(
        f.store.finish_main_change(ch.id, Some(commit)).await,
        Err(CommitError::Stale)
    ));
    assert_eq!(f.store.unfinished_main_changes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_rolled_back_change_restores_the_marks() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, old, next) = trial(&f, "acme", t).await;
    let group = billing.group;
    let new = f.card(group, t).await;
    let ch = change(group, &old, &new, Some(next.clone()));
    f.store.begin_main_change(&ch).await.unwrap();
    f.store.roll_back_main_change(&ch).await.expect("rolls back");
    assert_eq!(main_card(&f, group).await, vec![old.id]);
    assert!(f.store.unfinished_main_changes().await.unwrap().is_empty());
    // The account and its charge are untouched.
    assert_eq!(f.store.billing(group).await.unwrap().unwrap(), billing);
    // A new change may begin.
    f.store.begin_main_change(&change(group, &old, &new, None)).await.expect("begins again");
}

#[tokio::test]
async fn a_change_to_an_unknown_card_or_from_a_card_no_longer_main_is_refused() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    let old = f.card(group, t).await;
    let new = f.card(group, t).await;
    let stranger = Card { id: CardId::new(), ..new.clone() };
    assert!(matches!(
        f.store.begin_main_change(&change(group, &old, &stranger, None)).await,
        Err(BeginCardChangeError::NotFound)
    ));
    assert!(matches!(
        f.store.begin_main_change(&change(group, &new, &old, None)).await,
        Err(BeginCardChangeError::Busy)
    ));
    assert_eq!(main_card(&f, group).await, vec![old.id]);
}

#[tokio::test]
async fn two_cards_marked_main_at_once_leave_one_main() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    let old = f.card(group, t).await;
    let a = f.card(group, t).await;
    let b = f.card(group, t).await;
    let changes = [change(group, &old, &a, None), change(group, &old, &b, None)];
    let tasks: Vec<_> = changes
        .clone()
        .into_iter()
        .map(|c| {
            let store = f.store.clone();
            tokio::spawn(async move { store.begin_main_change(&c).await })
        })
        .collect();
    let mut won = Vec::new();
    for (task, c) in tasks.into_iter().zip(&changes) {
        match task.await.unwrap() {
            Ok(()) => won.push(c.new_card),
            Err(BeginCardChangeError::Busy) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(main_card(&f, group).await, won);
}

#[tokio::test]
async fn parallel_increments_at_the_limit_edge_never_go_over() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    f.store.increment(group, "consultations", t, 7, Some(10)).await.expect("counts");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(
                async move { store.increment(group, "consultations", t, 1, Some(10)).await },
            )
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(IncrementError::LimitReached { used }) => {
                assert!(used <= 10);
                refused += 1;
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((ok, refused), (3, 17));
    assert_eq!(f.store.usage(group, t).await.unwrap(), vec![("consultations".to_owned(), 10)]);
}

#[tokio::test]
async fn an_increment_over_the_limit_counts_nothing() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    // Over the limit on the first count: no counter is created.
    assert!(matches!(
        f.store.increment(group, "forms", t, 2, Some(1)).await,
        Err(IncrementError::LimitReached { used: 0 })
    ));
    assert!(f.store.usage(group, t).await.unwrap().is_empty());
    assert_eq!(f.store.increment(group, "forms", t, 1, Some(1)).await.unwrap(), 1);
    assert!(matches!(
        f.store.increment(group, "forms", t, 1, Some(1)).await,
        Err(IncrementError::LimitReached { used: 1 })
    ));
    assert_eq!(f.store.increment(group, "forms", t, 5, None).await.unwrap(), 6);
    // Another period counts from zero.
    let next = t + Duration::days(31);
    assert_eq!(f.store.increment(group, "forms", next, 1, Some(1)).await.unwrap(), 1);
    assert_eq!(f.store.usage(group, t).await.unwrap(), vec![("forms".to_owned(), 6)]);
}

#[tokio::test]
async fn parallel_claims_of_one_key_claim_it_once() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move { store.claim(group, "key-1", "h1", t).await })
        })
        .collect();
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap().expect("claims") {
            Claim::Claimed => claimed += 1,
            Claim::Existing { request_hash, outcome } => {
                assert_eq!((request_hash.as_str(), outcome), ("h1", None));
            }
        }
    }
    assert_eq!(claimed, 1);
}

#[tokio::test]
async fn an_idempotency_key_answers_its_outcome_for_a_day() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    assert_eq!(f.store.claim(group, "k", "h1", t).await.unwrap(), Claim::Claimed);
    let outcome = serde_json::json!({"changed": {"plan": "pro", "n": [1]}});
    f.store.complete(group, "k", &outcome).await.unwrap();
    // A completed record is not released.
    f.store.release(group, "k").await.unwrap();
    assert_eq!(
        f.store.claim(group, "k", "h2", t + Duration::hours(23)).await.unwrap(),
        Claim::Existing { request_hash: "h1".into(), outcome: Some(outcome) }
    );
    // Another group's key of the same name is its own.
    let other = f.group("other").await;
    assert_eq!(f.store.claim(other, "k", "h2", t).await.unwrap(), Claim::Claimed);
    // After a day the key is claimed anew.
    let tomorrow = t + Duration::hours(24);
    assert_eq!(f.store.claim(group, "k", "h2", tomorrow).await.unwrap(), Claim::Claimed);
    assert_eq!(
        f.store.claim(group, "k", "h3", tomorrow).await.unwrap(),
        Claim::Existing { request_hash: "h2".into(), outcome: None }
    );
}

#[tokio::test]
async fn a_released_claim_can_be_claimed_again() {
    let f = Fixture::new().await;
    let t = now();
    let group = f.group("acme").await;
    assert_eq!(f.store.claim(group, "k", "h1", t).await.unwrap(), Claim::Claimed);
    f.store.release(group, "k").await.unwrap();
    assert_eq!(f.store.claim(group, "k", "h2", t).await.unwrap(), Claim::Claimed);
}

#[tokio::test]
async fn a_groups_billing_rows_go_with_the_group() {
    let f = Fixture::new().await;
    let t = now();
    let (billing, _, _) = trial(&f, "acme", t).await;
    f.store.increment(billing.group, "forms", t, 1, None).await.unwrap();
    let mut conn = f.db.pool().get().await.unwrap();
    diesel::sql_query("DELETE FROM groups WHERE id = $1")
        .bind::<Uuid, _>(billing.group.as_uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    for table in ["billing_accounts", "billing_charges", "billing_cards", "billing_usage"] {
        assert_eq!(rows(&f.db.pool(), table).await, 0, "{table}");
    }
}
