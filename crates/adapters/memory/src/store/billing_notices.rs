//! Billing notifications in memory: the billing store creates them under this
//! store's lock, in the same critical section as the billing change they report (the memory
//! twin of notifying in the change's transaction).
//!
//! Lock order: this store's lock first, then the billing store's; never the other way round.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{SubsecRound as _, Utc};
use onboard_groups::Permission;
use onboard_kernel::GroupId;
use onboard_notifications::{NewNotification, NotificationId};
use onboard_payments::notices::BillingNotice;

use super::State;

/// A handle on the store's state through which the billing store notifies.
#[derive(Clone)]
pub(crate) struct BillingNotifier(Arc<Mutex<State>>);

impl std::fmt::Debug for BillingNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BillingNotifier")
    }
}

impl BillingNotifier {
    pub(super) fn new(state: Arc<Mutex<State>>) -> Self {
        Self(state)
    }

    /// Runs `change` (which may take the billing store's lock) while holding the store's lock,
    /// then notifies the holders of `billing.manage` of each group of the notices it answers,
    /// still under that lock: nobody sees the change without its notifications.
    pub(crate) fn atomically<T>(
        &self,
        change: impl FnOnce() -> (T, Vec<(GroupId, BillingNotice)>),
    ) -> T {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (out, notices) = change();
        for (group, notice) in notices {
            state.notify_billing(group, &notice);
        }
        out
    }
}

impl State {
    /// Notifies the active members of `group` holding `billing.manage` of `notice`.
    fn notify_billing(&mut self, group: GroupId, notice: &BillingNotice) {
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        let text = notice.text().render(g.group.name.as_str(), g.group.slug.as_str());
        let slug = g.group.slug.as_str().to_owned();
        let created_at = Utc::now().trunc_subsecs(6);
        let expires_at = created_at + self.notifications.ttl;
        for member in self.holders_of(group, &Permission::BILLING_MANAGE) {
            self.notifications.insert(NewNotification {
                id: NotificationId::new(),
                member,
                kind: text.kind,
                title: text.title.clone(),
                body: text.body.clone(),
                group: Some(slug.clone()),
                link: text.link.clone(),
                created_at,
                expires_at,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, NaiveDate};
    use onboard_groups::ports::{GroupRepository, NewGroup};
    use onboard_groups::{GroupName, MembershipStatus, Slug};
    use onboard_kernel::{MemberId, PhoneNumber, ReferralCode, SessionId};
    use onboard_members::TokenHash;
    use onboard_members::ports::{MemberRepository, NewSession, SignInRequest};
    use onboard_notifications::NotificationType;
    use onboard_notifications::ports::NotificationRepository;
    use onboard_payments::model::{Billing, BillingStatus, PlanCode};
    use onboard_payments::ports::{BillingCommit, BillingRepository, CommitError, UsageRepository};

    use super::*;
    use crate::MemoryStore;

    fn now() -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }

    async fn member(store: &MemoryStore, n: u32) -> MemberId {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&n.to_be_bytes());
        let request = SignInRequest {
            phone: PhoneNumber::parse(&format!("+7917666{n:04}"), None).expect("a phone"),
            new_member_id: MemberId::new(),
            new_referral_code: ReferralCode::parse(&format!("B{n:05}")).expect("a code"),
            referred_by: None,
            session: NewSession {
                id: SessionId::new(),
                refresh_hash: TokenHash(hash),
                user_agent: None,
                expires_at: now() + Duration::days(1),
            },
            personal_workspace: None,
            created_events: Vec::new(),
            now: now(),
        };
        store.sign_in(request).await.expect("signs in").member.id
    }

    /// A store with a group `acme` ("Acme") of an owner and a plain member.
    async fn acme() -> (MemoryStore, GroupId, MemberId, MemberId) {
        let store = MemoryStore::default();
        let (owner, plain) = (member(&store, 1).await, member(&store, 2).await);
        let group = GroupId::new();
        store
            .create(
                &NewGroup {
                    id: group,
                    slug: Slug::parse("acme").expect("a slug"),
                    name: GroupName::parse("Acme").expect("a name"),
                    approval_required: false,
                    owner,
                    now: now(),
                },
                &[],
            )
            .await
            .expect("creates");
        store.join(group, plain, MembershipStatus::Active, now(), &[]).await.expect("joins");
        (store, group, owner, plain)
    }

    async fn kinds(store: &MemoryStore, member: MemberId) -> Vec<NotificationType> {
        let list = store.list(member, false, None, 100, now()).await.expect("lists");
        list.into_iter().map(|n| n.kind).collect()
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
        BillingCommit {
            billing: trialing(group, ends),
            new_charges: vec![],
            closed_charges: vec![],
            receipt: None,
            notices: vec![BillingNotice::TrialStarted {
                plan: "Pro".into(),
                ends_on: NaiveDate::from_ymd_opt(2026, 12, 11).expect("a day"),
            }],
        }
    }

    #[tokio::test]
    async fn a_commit_notifies_the_billing_managers_with_it_and_a_stale_one_nobody() {
        let (store, group, owner, plain) = acme().await;
        let billing = store.billing();
        let commit = started(group, now() + Duration::days(14));
        billing.commit(&commit).await.expect("writes");
        assert_eq!(kinds(&store, owner).await, vec![NotificationType::BillingTrialStarted]);
        assert_eq!(kinds(&store, plain).await, vec![], "a plain member lacks billing.manage");
        let n = &store.list(owner, false, None, 1, now()).await.expect("lists")[0];
        assert_eq!(n.body, "Acme is trying Pro until 2026-12-11");
        assert_eq!(n.group.as_deref(), Some("acme"));
        assert_eq!(n.link.as_deref(), Some("/groups/acme/billing"));
        // The same commit again is stale: nothing written, nobody notified.
        assert!(matches!(billing.commit(&commit).await, Err(CommitError::Stale)));
        assert_eq!(kinds(&store, owner).await.len(), 1);
    }

    #[tokio::test]
    async fn each_usage_threshold_is_notified_once_per_period_and_metric() {
        let (store, group, owner, _) = acme().await;
        let usage = store.billing();
        let period = now();
        for _ in 0..3 {
            usage.increment(group, "consultations", period, 1, Some(3)).await.expect("counts");
        }
        // 1 of 3: nothing; 2 of 3: 50 %; 3 of 3: 80 % and 100 %.
        let list = store.list(owner, false, None, 100, now()).await.expect("lists");
        let mut titles: Vec<&str> = list.iter().map(|n| n.title.as_str()).collect();
        titles.sort_unstable();
        assert_eq!(titles, ["Usage at 100 %", "Usage at 50 %", "Usage at 80 %"]);
        assert!(list.iter().all(|n| n.kind == NotificationType::UsageThreshold));
        // Refused increments notify nothing; the next period counts afresh.
        assert!(usage.increment(group, "consultations", period, 1, Some(3)).await.is_err());
        usage
            .increment(group, "consultations", period + Duration::days(30), 2, Some(3))
            .await
            .expect("counts");
        assert_eq!(kinds(&store, owner).await.len(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trial_ending_notice_is_sent_once_even_when_asked_concurrently() {
        let (store, group, owner, plain) = acme().await;
        let billing = store.billing();
        let ends = now() + Duration::days(6);
        billing.commit(&started(group, ends)).await.expect("writes");
        let notice = BillingNotice::TrialEnding {
            plan: "Pro".into(),
            days: 7,
            ends_on: NaiveDate::from_ymd_opt(2026, 12, 11).expect("a day"),
        };
        let found = billing
            .trials_ending(now(), now() + Duration::days(30), None, 10)
            .await
            .expect("reads");
        assert_eq!(found.iter().map(|b| b.group).collect::<Vec<_>>(), vec![group]);
        let runs = (0..8).map(|_| {
            let (billing, notice) = (billing.clone(), notice.clone());
            tokio::spawn(async move { billing.notify_trial_ending(group, ends, 7, &notice).await })
        });
        let mut sent = 0;
        for run in runs {
            if run.await.expect("runs").expect("notifies") {
                sent += 1;
            }
        }
        assert_eq!(sent, 1);
        let ending = |k: &NotificationType| *k == NotificationType::BillingTrialEnding;
        assert_eq!(kinds(&store, owner).await.iter().filter(|k| ending(k)).count(), 1);
        assert_eq!(kinds(&store, plain).await, vec![]);
        // The 1-day notice is another one; a trial that moved on gets none.
        assert!(billing.notify_trial_ending(group, ends, 1, &notice).await.expect("notifies"));
        assert!(
            !billing
                .notify_trial_ending(group, ends + Duration::days(1), 7, &notice)
                .await
                .expect("answers")
        );
    }
}
