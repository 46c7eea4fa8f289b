//! `PgJobQueue` against a real database.

use std::sync::Arc;

use chrono::TimeDelta;
use onboard_kernel::jobs::{JobQueue, NewJob};
use onboard_postgres::PgJobQueue;
use onboard_postgres::testing::TestDatabase;

use crate::{now, rows};

#[tokio::test]
async fn a_keyed_job_is_enqueued_once() {
    let db = TestDatabase::new().await;
    let queue = PgJobQueue::new(db.pool());
    let t = now();
    assert!(queue.enqueue(&NewJob::periodic("tick", t)).await.unwrap());
    assert!(!queue.enqueue(&NewJob::periodic("tick", t)).await.unwrap());
    let payload = serde_json::json!({"id": 1});
    assert!(queue.enqueue(&NewJob::once("check", payload.clone(), t)).await.unwrap());
    assert!(queue.enqueue(&NewJob::once("check", payload, t)).await.unwrap());
    assert_eq!(rows(&db.pool(), "jobs").await, 3);
}

#[tokio::test]
async fn parallel_claims_hand_each_due_job_to_one_worker() {
    let db = TestDatabase::new().await;
    let queue = Arc::new(PgJobQueue::new(db.pool()));
    let t = now();
    for i in 0..10 {
        let job = NewJob::once("check", serde_json::json!({ "n": i }), t);
        queue.enqueue(&job).await.unwrap();
    }
    // Not yet due.
    queue.enqueue(&NewJob::periodic("later", t + TimeDelta::hours(1))).await.unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.claim_due(t, TimeDelta::minutes(5), 3).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        for job in task.await.unwrap().expect("claims") {
            assert_eq!((job.name.as_str(), job.attempts), ("check", 1));
            ids.push(job.id);
        }
    }
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!((before, ids.len()), (10, 10));
}

#[tokio::test]
async fn a_lease_that_ran_out_is_taken_over_and_the_old_holder_changes_nothing() {
    let db = TestDatabase::new().await;
    let queue = PgJobQueue::new(db.pool());
    let t = now();
    queue.enqueue(&NewJob::periodic("tick", t)).await.unwrap();
    let lease = TimeDelta::minutes(5);
    let first = queue.claim_due(t, lease, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(queue.claim_due(t + TimeDelta::minutes(4), lease, 10).await.unwrap().is_empty());
    let taken = queue.claim_due(t + lease, lease, 10).await.unwrap();
    assert_eq!((taken[0].id, taken[0].attempts), (first[0].id, 2));
    assert!(!queue.complete(&first[0]).await.unwrap());
    assert!(!queue.reschedule(&first[0], t, None).await.unwrap());

    let next = t + TimeDelta::hours(1);
    assert!(queue.reschedule(&taken[0], next, Some("boom".into())).await.unwrap());
    assert!(queue.claim_due(next - TimeDelta::seconds(1), lease, 10).await.unwrap().is_empty());
    let again = queue.claim_due(next, lease, 10).await.unwrap();
    assert_eq!(again[0].attempts, 3);
    assert!(queue.reschedule(&again[0], next + TimeDelta::hours(1), None).await.unwrap());
    let after = queue.claim_due(next + TimeDelta::hours(1), lease, 10).await.unwrap();
    assert_eq!(after[0].attempts, 1);
    assert!(queue.complete(&after[0]).await.unwrap());
    assert_eq!(rows(&db.pool(), "jobs").await, 0);
}

#[tokio::test]
async fn work_under_an_advisory_lock_never_overlaps_across_pools() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let db = TestDatabase::new().await;
    let pools = [db.pool(), onboard_postgres::connect(db.url(), 2).await.unwrap()];
    let running = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let pool = pools[i % 2].clone();
            let (running, overlaps) = (running.clone(), overlaps.clone());
            tokio::spawn(async move {
                onboard_postgres::exclusively(&pool, 42, async {
                    if running.fetch_add(1, Ordering::SeqCst) > 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::task::yield_now().await;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("runs");
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
}
