use std::sync::Arc;

use chrono::{Duration, TimeZone};
use onboard_payments::ports::{
    BillingRepository, Claim, IdempotencyRepository, IncrementError, UsageRepository,
};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time")
}

#[tokio::test]
async fn parallel_increments_at_the_limit_edge_never_go_over() {
    let store = Arc::new(MemoryBillingStore::default());
    let group = GroupId::new();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(
                async move { store.increment(group, "consultations", now(), 1, Some(3)).await },
            )
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.expect("the task ends").is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 3);
    let usage = store.usage(group, now()).await.expect("usage");
    assert_eq!(usage, vec![("consultations".to_owned(), 3)]);
}

#[tokio::test]
async fn an_increment_over_the_limit_counts_nothing() {
    let store = MemoryBillingStore::default();
    let group = GroupId::new();
    assert_eq!(store.increment(group, "forms", now(), 1, Some(1)).await.expect("counted"), 1);
    let refused = store.increment(group, "forms", now(), 1, Some(1)).await;
    assert!(matches!(refused, Err(IncrementError::LimitReached { used: 1 })));
    assert_eq!(store.increment(group, "forms", now(), 5, None).await.expect("unlimited"), 6);
}

#[tokio::test]
async fn an_idempotency_key_is_claimed_once_and_lives_a_day() {
    let store = MemoryBillingStore::default();
    let group = GroupId::new();
    assert_eq!(store.claim(group, "k", "h1", now()).await.expect("claim"), Claim::Claimed);
    assert_eq!(
        store.claim(group, "k", "h1", now()).await.expect("claim"),
        Claim::Existing { request_hash: "h1".into(), outcome: None }
    );
    let outcome = serde_json::json!({"changed": {"plan": "pro"}});
    store.complete(group, "k", &outcome).await.expect("complete");
    assert_eq!(
        store.claim(group, "k", "h2", now()).await.expect("claim"),
        Claim::Existing { request_hash: "h1".into(), outcome: Some(outcome) }
    );
    let tomorrow = now() + Duration::hours(25);
    assert_eq!(store.claim(group, "k", "h2", tomorrow).await.expect("claim"), Claim::Claimed);
}

#[tokio::test]
async fn a_stale_commit_writes_nothing() {
    let store = MemoryBillingStore::default();
    let group = GroupId::new();
    let billing = Billing::free(group, 10);
    let commit = BillingCommit {
        billing,
        new_charges: vec![],
        closed_charges: vec![],
        receipt: None,
        events: vec![],
    };
    store.commit(&commit).await.expect("the first write");
    assert!(matches!(store.commit(&commit).await, Err(CommitError::Stale)));
    assert_eq!(store.billing(group).await.expect("read").expect("stored").version, 1);
}
