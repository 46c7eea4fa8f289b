//! The periodic work: reconciliation, period ends, trial-ending notices, gateway clean-up.

use anyhow::Context;

use crate::events::{BillingEvent, TRIAL_ENDING_DAYS, trial_ending_due};
use crate::ports::{BillingCommit, CommitError};

use super::{PaymentsService, plan_name, to_free};

/// What a periodic run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodicReport {
    /// Accounts that fell back to Free.
    pub expired: usize,
    /// Overdue charges whose outcome was read back from the gateway and applied.
    pub reconciled: usize,
    /// Trial-ending notices sent.
    pub trials_noticed: usize,
    /// Schedules and billing keys of deleted groups removed from the gateway.
    pub leftovers_cleaned: usize,
}

impl PaymentsService {
    /// Accounts past their period end with nothing to charge (canceled, or whose charges were
    /// never scheduled) fall back to Free.
    #[tracing::instrument(level = "debug", name = "payments.expire_periods", skip_all)]
    pub async fn expire_periods(&self) -> anyhow::Result<usize> {
        let now = self.now();
        let mut done = 0;
        let expired = self.ports.billing.expired_billings(now, 100).await?;
        if expired.is_empty() {
            return Ok(0);
        }
        let catalogue = self.catalogue().await?;
        for billing in expired {
            let mut after = billing.clone();
            to_free(&mut after);
            let commit = BillingCommit {
                events: self.records(&self.status_events(&billing, &after, &catalogue)),
                billing: after,
                new_charges: vec![],
                closed_charges: vec![],
                receipt: None,
            };
            match self.ports.billing.commit(&commit).await {
                Ok(()) => done += 1,
                Err(CommitError::Stale | CommitError::DuplicateReceipt) => {}
                Err(CommitError::Unexpected(e)) => return Err(e),
            }
        }
        Ok(done)
    }

    /// The periodic use cases, for the job runner (or the embedded mode's interval task).
    #[tracing::instrument(level = "debug", name = "payments.run_periodic", skip_all)]
    pub async fn run_periodic(&self) -> anyhow::Result<PeriodicReport> {
        let reconciled = self.reconcile().await.context("reconciliation")?;
        let expired = self.expire_periods().await.context("period ends")?;
        let trials_noticed = self.notify_trials_ending().await.context("trial-ending notices")?;
        let leftovers_cleaned = self.clean_up_gateway().await.context("gateway clean-up")?;
        Ok(PeriodicReport { expired, reconciled, trials_noticed, leftovers_cleaned })
    }

    /// Tells the billing managers of every trial whose end is near (`billing.trial_ending`, 30,
    /// 7 and 1 days before; see [`trial_ending_due`]), each (trial, days) once however often
    /// and on however many instances this runs: storage records each (trial, days) and its
    /// `billing.trial_ending` event once. Answers how many it recorded now.
    #[tracing::instrument(level = "debug", name = "payments.notify_trials_ending", skip_all)]
    pub async fn notify_trials_ending(&self) -> anyhow::Result<usize> {
        const PAGE: u32 = 100;
        let now = self.now();
        let horizon = TRIAL_ENDING_DAYS.into_iter().max().unwrap_or_default();
        let until = now + chrono::Duration::days(i64::from(horizon));
        let mut after = None;
        let mut catalogue = None;
        let mut notified = 0;
        loop {
            let page = self.ports.billing.trials_ending(now, until, after, PAGE).await?;
            for billing in &page {
                let (Some(days), Some(end)) =
                    (trial_ending_due(billing, now), billing.trial_ends_at)
                else {
                    continue;
                };
                let catalogue = match &catalogue {
                    Some(c) => c,
                    None => catalogue.insert(self.catalogue().await?),
                };
                let ending = BillingEvent::TrialEnding {
                    group_id: billing.group,
                    plan: plan_name(catalogue, &billing.plan),
                    days,
                    ends_on: self.config.clock.day_of(end),
                };
                let events = self.records(&[ending]);
                if self.ports.billing.record_trial_ending(billing.group, end, days, &events).await?
                {
                    notified += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => {
                    after = last.trial_ends_at.map(|end| (end, last.group));
                }
                _ => return Ok(notified),
            }
        }
    }
}
