//! Billing events in memory: the billing store records them in this store's outbox under
//! this store's lock, in the same critical section as the billing change they report (the
//! memory twin of storing them in the change's transaction).
//!
//! Lock order: this store's lock first, then the billing store's; never the other way round.

use std::sync::{Arc, Mutex, PoisonError};

use onboard_kernel::events::Event;

use super::State;

/// A handle on the store's state through which the billing store records its events.
#[derive(Clone)]
pub(crate) struct BillingOutbox(Arc<Mutex<State>>);

impl std::fmt::Debug for BillingOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BillingOutbox")
    }
}

impl BillingOutbox {
    pub(super) fn new(state: Arc<Mutex<State>>) -> Self {
        Self(state)
    }

    /// Runs `change` (which may take the billing store's lock) while holding the store's lock,
    /// then records the events it answers in the outbox, still under that lock: nobody sees
    /// the change without its events.
    pub(crate) fn atomically<T>(&self, change: impl FnOnce() -> (T, Vec<Event>)) -> T {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (out, events) = change();
        state.outbox.record(&events);
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, NaiveDate, SubsecRound as _, Utc};
    use onboard_kernel::GroupId;
    use onboard_payments::events::BillingEvent;
    use onboard_payments::model::{Billing, BillingStatus, PlanCode};
    use onboard_payments::ports::{BillingCommit, BillingRepository, CommitError, UsageRepository};

    use super::*;
    use crate::MemoryStore;

    fn now() -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }

    /// The billing events in the store's outbox, oldest first.
    fn recorded(store: &MemoryStore) -> Vec<BillingEvent> {
        store.state().outbox.all().filter_map(Event::decode::<BillingEvent>).collect()
    }

    fn trialing(group: GroupId, ends: DateTime<Utc>) -> Billing {
        let mut b = Billing::free(group, 10);
        b.plan = PlanCode::from_trusted("pro");
        b.status = BillingStatus::Trialing;
        b.trial_used = true;
        b.trial_ends_at = Some(ends);
        b.current_period_start = Some(now());
        b.current_period_end = Some(ends);
        b
    }

    fn started(group: GroupId, ends: DateTime<Utc>) -> BillingCommit {
        let event = BillingEvent::TrialStarted {
            group_id: group,
            plan: "Pro".into(),
            ends_on: NaiveDate::from_ymd_opt(2026, 12, 11).expect("a day"),
        };
        BillingCommit {
            billing: trialing(group, ends),
            new_charges: vec![],
            closed_charges: vec![],
            receipt: None,
            events: vec![Event::record(&event, now())],
        }
    }

    #[tokio::test]
    async fn a_commit_records_its_events_and_a_stale_one_none() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let billing = store.billing();
        let commit = started(group, now() + Duration::days(14));
        billing.commit(&commit).await.expect("writes");
        assert_eq!(store.state().outbox.all().cloned().collect::<Vec<_>>(), commit.events);
        // The same commit again is stale: nothing written, no event.
        assert!(matches!(billing.commit(&commit).await, Err(CommitError::Stale)));
        assert_eq!(store.state().outbox.all().count(), 1);
    }

    #[tokio::test]
    async fn each_usage_threshold_is_recorded_once_per_period_and_metric() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let usage = store.billing();
        let period = now();
        for _ in 0..3 {
            usage.increment(group, "consultations", period, 1, Some(3)).await.expect("counts");
        }
        // 1 of 3: nothing; 2 of 3: 50 %; 3 of 3: 80 % and 100 %.
        let percents = |events: Vec<BillingEvent>| -> Vec<u8> {
            events
                .into_iter()
                .filter_map(|e| match e {
                    BillingEvent::UsageThreshold { percent, .. } => Some(percent),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(percents(recorded(&store)), [50, 80, 100]);
        // Refused increments record nothing; the next period counts afresh.
        assert!(usage.increment(group, "consultations", period, 1, Some(3)).await.is_err());
        usage
            .increment(group, "consultations", period + Duration::days(30), 2, Some(3))
            .await
            .expect("counts");
        assert_eq!(percents(recorded(&store)), [50, 80, 100, 50]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trial_ending_event_is_recorded_once_even_when_asked_concurrently() {
        let store = MemoryStore::default();
        let group = GroupId::new();
        let billing = store.billing();
        let ends = now() + Duration::days(6);
        billing.commit(&started(group, ends)).await.expect("writes");
        let ending = BillingEvent::TrialEnding {
            group_id: group,
            plan: "Pro".into(),
            days: 7,
            ends_on: NaiveDate::from_ymd_opt(2026, 12, 11).expect("a day"),
        };
        let events = vec![Event::record(&ending, now())];
        let runs = (0..8).map(|_| {
            let (billing, events) = (billing.clone(), events.clone());
            tokio::spawn(async move { billing.record_trial_ending(group, ends, 7, &events).await })
        });
        let mut sent = 0;
        for run in runs {
            if run.await.expect("runs").expect("records") {
                sent += 1;
            }
        }
        assert_eq!(sent, 1);
        let is_ending = |e: &BillingEvent| matches!(e, BillingEvent::TrialEnding { .. });
        assert_eq!(recorded(&store).iter().filter(|e| is_ending(e)).count(), 1);
        // The 1-day notice is another one; a trial that moved on gets none.
        assert!(billing.record_trial_ending(group, ends, 1, &events).await.expect("records"));
        let moved = ends + Duration::days(1);
        assert!(!billing.record_trial_ending(group, moved, 7, &events).await.expect("answers"));
        assert_eq!(recorded(&store).iter().filter(|e| is_ending(e)).count(), 2);
    }
}
