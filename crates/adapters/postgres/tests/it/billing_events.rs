//! Billing events in PostgreSQL: stored in the outbox in the transaction of the billing
//! change, the usage increment or the trial-ending record they report, each once.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use onboard_kernel::GroupId;
use onboard_kernel::events::{Event, EventFeed as _};
use onboard_payments::events::BillingEvent;
use onboard_payments::model::{Billing, BillingStatus, PlanCode};
use onboard_payments::ports::{BillingCommit, BillingRepository, CommitError, UsageRepository};
use onboard_postgres::{PgBillingStore, PgEventFeed};

use crate::groups::Fixture;
use crate::{now, rows};

/// A group `acme` and the billing store on the fixture's database.
struct Billed {
    f: Fixture,
    store: Arc<PgBillingStore>,
    group: GroupId,
}

async fn billed() -> Billed {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await.id;
    let store = Arc::new(PgBillingStore::new(f.db.pool()));
    Billed { f, store, group }
}

impl Billed {
    /// The billing events in the outbox, oldest first.
    async fn events(&self) -> Vec<BillingEvent> {
        let feed = PgEventFeed::new(self.f.db.pool());
        let batch = feed.read("test", 100).await.unwrap();
        batch.events.iter().filter_map(Event::decode::<BillingEvent>).collect()
    }
}

fn trialing(group: GroupId, ends: chrono::DateTime<chrono::Utc>) -> Billing {
    Billing {
        plan: PlanCode::parse("pro").unwrap(),
        status: BillingStatus::Trialing,
        trial_used: true,
        trial_ends_at: Some(ends),
        current_period_start: Some(now()),
        current_period_end: Some(ends),
        ..Billing::free(group, 10)
    }
}

fn trial_started(group: GroupId) -> BillingEvent {
    BillingEvent::TrialStarted {
        group_id: group,
        plan: "Pro".into(),
        ends_on: NaiveDate::from_ymd_opt(2026, 12, 11).unwrap(),
    }
}

fn started(group: GroupId, ends: chrono::DateTime<chrono::Utc>) -> BillingCommit {
    BillingCommit {
        billing: trialing(group, ends),
        new_charges: vec![],
        closed_charges: vec![],
        receipt: None,
        events: vec![Event::record(&trial_started(group), now())],
    }
}

#[tokio::test]
async fn a_billing_commit_stores_its_events_in_its_transaction_and_a_stale_one_none() {
    let b = billed().await;
    b.store.commit(&started(b.group, now() + Duration::days(14))).await.unwrap();
    assert_eq!(b.events().await, [trial_started(b.group)]);
    // A stale commit writes nothing, its events included.
    let stale = started(b.group, now() + Duration::days(14));
    assert!(matches!(b.store.commit(&stale).await, Err(CommitError::Stale)));
    assert_eq!(b.events().await.len(), 1);
}

#[tokio::test]
async fn each_usage_threshold_is_stored_once_per_counter_in_the_increments_transaction() {
    let b = billed().await;
    let period = now();
    let usage = |delta, limit| b.store.increment(b.group, "customers", period, delta, Some(limit));
    assert_eq!(usage(1, 4).await.unwrap(), 1);
    assert_eq!(usage(1, 4).await.unwrap(), 2, "50 %");
    // A larger limit (a plan change within the period) makes 3 the new 50 %: stored already.
    assert_eq!(usage(1, 6).await.unwrap(), 3);
    assert_eq!(usage(2, 6).await.unwrap(), 5, "80 %");
    assert!(usage(2, 6).await.is_err(), "over the limit: nothing counted, nothing stored");
    assert_eq!(usage(1, 6).await.unwrap(), 6, "100 %");
    let threshold = |percent, used, limit| BillingEvent::UsageThreshold {
        group_id: b.group,
        metric: "customers".into(),
        percent,
        used,
        limit,
    };
    assert_eq!(b.events().await, [threshold(50, 2, 4), threshold(80, 5, 6), threshold(100, 6, 6)]);
    assert_eq!(rows(&b.f.db.pool(), "billing_usage_notices").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_ending_event_is_stored_once_even_when_two_instances_ask_at_once() {
    let b = billed().await;
    let ends = now() + Duration::days(6);
    b.store.commit(&started(b.group, ends)).await.unwrap();
    let found = b.store.trials_ending(now(), now() + Duration::days(30), None, 10).await.unwrap();
    assert_eq!(found.iter().map(|a| a.group).collect::<Vec<_>>(), [b.group]);
    let after = Some((ends, b.group));
    let none = b.store.trials_ending(now(), now() + Duration::days(30), after, 10).await.unwrap();
    assert!(none.is_empty(), "the page after the last one is empty");

    let ending = BillingEvent::TrialEnding {
        group_id: b.group,
        plan: "Pro".into(),
        days: 7,
        ends_on: NaiveDate::from_ymd_opt(2026, 12, 11).unwrap(),
    };
    let events = vec![Event::record(&ending, now())];
    // Two instances: each its own pool.
    let other =
        Arc::new(PgBillingStore::new(onboard_postgres::connect(b.f.db.url(), 4).await.unwrap()));
    let runs = (0..8).map(|i| {
        let store = if i % 2 == 0 { b.store.clone() } else { other.clone() };
        let (group, events) = (b.group, events.clone());
        tokio::spawn(async move { store.record_trial_ending(group, ends, 7, &events).await })
    });
    let mut sent = 0;
    for run in runs {
        sent += usize::from(run.await.unwrap().unwrap());
    }
    assert_eq!(sent, 1);
    assert_eq!(b.events().await, [trial_started(b.group), ending.clone()]);
    // Another trial end (the trial changed) is not this trial: nothing recorded or stored.
    let moved = ends + Duration::days(1);
    assert!(!b.store.record_trial_ending(b.group, moved, 7, &events).await.unwrap());
    assert_eq!(rows(&b.f.db.pool(), "billing_trial_notices").await, 1);
    assert_eq!(b.events().await.len(), 2);
}
