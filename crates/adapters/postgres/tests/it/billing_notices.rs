//! Billing notifications in PostgreSQL (billnote): made in the transaction of the billing
//! change, the usage increment or the trial-ending record they report, each once.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use onboard_groups::ports::GroupRepository;
use onboard_groups::{Permission, RoleName};
use onboard_kernel::{GroupId, MemberId};
use onboard_notifications::ports::NotificationRepository;
use onboard_notifications::{Notification, NotificationType};
use onboard_payments::model::{Billing, BillingStatus, PlanCode};
use onboard_payments::notices::BillingNotice;
use onboard_payments::ports::{BillingCommit, BillingRepository, CommitError, UsageRepository};
use onboard_postgres::{PgBillingStore, PgNotificationRepository};

use crate::groups::Fixture;
use crate::{now, rows};

/// A group `acme` with its owner, a plain member and a member whose custom role holds
/// `billing.manage`; the billing store and the notifications on the fixture's database.
struct Billed {
    f: Fixture,
    store: Arc<PgBillingStore>,
    notifications: PgNotificationRepository,
    group: GroupId,
    owner: MemberId,
    plain: MemberId,
    treasurer: MemberId,
}

async fn billed() -> Billed {
    let f = Fixture::new().await;
    let owner = f.member(1).await;
    let group = f.group("acme", owner).await.id;
    let (plain, treasurer) = (f.member(2).await, f.member(3).await);
    f.join(group, plain, f.t).await;
    f.join(group, treasurer, f.t).await;
    let role = RoleName::parse("treasurer").unwrap();
    let perms = [Permission::BILLING_MANAGE].into_iter().collect();
    f.groups.create_role(group, &role, &perms).await.unwrap();
    f.groups.change_role(group, treasurer, &RoleName::MEMBER, &role, &[]).await.unwrap();
    let store = Arc::new(
        PgBillingStore::new(f.db.pool()).with_notification_ttl(std::time::Duration::from_secs(60)),
    );
    let notifications = PgNotificationRepository::new(f.db.pool());
    Billed { f, store, notifications, group, owner, plain, treasurer }
}

impl Billed {
    async fn billing_notifications(&self, member: MemberId) -> Vec<Notification> {
        let list = self.notifications.list(member, false, None, 100, now()).await.unwrap();
        list.into_iter().filter(|n| n.kind != NotificationType::MemberRoleChanged).collect()
    }
}

fn kinds(list: &[Notification]) -> Vec<NotificationType> {
    list.iter().map(|n| n.kind).collect()
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

fn started(group: GroupId, ends: chrono::DateTime<chrono::Utc>) -> BillingCommit {
    BillingCommit {
        billing: trialing(group, ends),
        new_charges: vec![],
        closed_charges: vec![],
        receipt: None,
        notices: vec![BillingNotice::TrialStarted {
            plan: "Pro".into(),
            ends_on: NaiveDate::from_ymd_opt(2026, 12, 11).unwrap(),
        }],
    }
}

#[tokio::test]
async fn a_billing_commit_notifies_the_billing_managers_in_its_transaction() {
    let b = billed().await;
    b.store.commit(&started(b.group, now() + Duration::days(14))).await.unwrap();
    for who in [b.owner, b.treasurer] {
        let list = b.billing_notifications(who).await;
        assert_eq!(kinds(&list), [NotificationType::BillingTrialStarted]);
        assert_eq!(list[0].title, "Trial started");
        assert_eq!(list[0].body, "Group acme is trying Pro until 2026-12-11");
        assert_eq!(list[0].group.as_deref(), Some("acme"));
        assert_eq!(list[0].link.as_deref(), Some("/groups/acme/billing"));
        assert_eq!(list[0].expires_at, list[0].created_at + Duration::seconds(60));
    }
    assert_eq!(b.billing_notifications(b.plain).await, vec![], "no billing.manage");
    // A stale commit writes nothing, its notices included.
    let stale = started(b.group, now() + Duration::days(14));
    assert!(matches!(b.store.commit(&stale).await, Err(CommitError::Stale)));
    assert_eq!(b.billing_notifications(b.owner).await.len(), 1);
}

#[tokio::test]
async fn each_usage_threshold_is_notified_once_per_counter_in_the_increments_transaction() {
    let b = billed().await;
    let period = now();
    let usage = |delta, limit| b.store.increment(b.group, "customers", period, delta, Some(limit));
    assert_eq!(usage(1, 4).await.unwrap(), 1);
    assert_eq!(usage(1, 4).await.unwrap(), 2, "50 %");
    // A larger limit (a plan change within the period) makes 3 the new 50 %: told already.
    assert_eq!(usage(1, 6).await.unwrap(), 3);
    assert_eq!(usage(2, 6).await.unwrap(), 5, "80 %");
    assert!(usage(2, 6).await.is_err(), "over the limit: nothing counted, nobody told");
    assert_eq!(usage(1, 6).await.unwrap(), 6, "100 %");
    let list = b.billing_notifications(b.treasurer).await;
    let mut titles: Vec<&str> = list.iter().map(|n| n.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["Usage at 100 %", "Usage at 50 %", "Usage at 80 %"]);
    assert!(list.iter().any(|n| n.body == "Group acme has used 5 of 6 customers this period"));
    assert_eq!(b.billing_notifications(b.plain).await, vec![]);
    assert_eq!(rows(&b.f.db.pool(), "billing_usage_notices").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_ending_notice_is_sent_once_even_when_two_instances_ask_at_once() {
    let b = billed().await;
    let ends = now() + Duration::days(6);
    b.store.commit(&started(b.group, ends)).await.unwrap();
    let found = b.store.trials_ending(now(), now() + Duration::days(30), None, 10).await.unwrap();
    assert_eq!(found.iter().map(|a| a.group).collect::<Vec<_>>(), [b.group]);
    let after = Some((ends, b.group));
    let none = b.store.trials_ending(now(), now() + Duration::days(30), after, 10).await.unwrap();
    assert!(none.is_empty(), "the page after the last one is empty");

    let notice = BillingNotice::TrialEnding {
        plan: "Pro".into(),
        days: 7,
        ends_on: NaiveDate::from_ymd_opt(2026, 12, 11).unwrap(),
    };
    // Two instances: each its own pool.
    let other =
        Arc::new(PgBillingStore::new(onboard_postgres::connect(b.f.db.url(), 4).await.unwrap()));
    let runs = (0..8).map(|i| {
        let store = if i % 2 == 0 { b.store.clone() } else { other.clone() };
        let (group, notice) = (b.group, notice.clone());
        tokio::spawn(async move { store.notify_trial_ending(group, ends, 7, &notice).await })
    });
    let mut sent = 0;
    for run in runs {
        sent += usize::from(run.await.unwrap().unwrap());
    }
    assert_eq!(sent, 1);
    for who in [b.owner, b.treasurer] {
        let list = b.billing_notifications(who).await;
        let ending: Vec<_> =
            list.iter().filter(|n| n.kind == NotificationType::BillingTrialEnding).collect();
        assert_eq!(ending.len(), 1);
        assert_eq!(ending[0].body, "The Pro trial of Group acme ends in 7 days, on 2026-12-11");
    }
    assert_eq!(b.billing_notifications(b.plain).await, vec![]);
    // Another trial end (the trial changed) is not this trial: nothing recorded, nobody told.
    let moved = ends + Duration::days(1);
    assert!(!b.store.notify_trial_ending(b.group, moved, 7, &notice).await.unwrap());
    assert_eq!(rows(&b.f.db.pool(), "billing_trial_notices").await, 1);
}
