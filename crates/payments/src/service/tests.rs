use std::collections::BTreeSet;

use chrono::TimeZone;
use onboard_groups::ports::MockGroupRepository;
use onboard_groups::{GroupName, GroupsConfig, Membership, MembershipStatus, RoleName};
use onboard_kernel::MockClock;

use super::*;
use crate::error::ChangePlanError;
use crate::events::BillingEvent;
use crate::gateway::{MockPaymentGateway, Payment, PaymentStatus, Unscheduled, WebhookNotice};
use crate::model::{
    CardChange, CardChangeId, CardChangeStep, CardId, ChargeKind, ChargeStatus, CustomerUid,
    Interval, MerchantUid, Money,
};
use crate::plan_change::PlanRequest;
use crate::ports::{
    BillingCommit, MockBillingRepository, MockCardRepository, MockIdempotencyRepository,
    MockUsageRepository,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time")
}

fn group() -> Group {
    Group {
        id: GroupId::from_uuid(uuid::Uuid::nil()),
        slug: Slug::from_trusted("acme"),
        name: GroupName::parse("Acme").expect("a name"),
        approval_required: false,
        created_at: now(),
    }
}

fn card() -> Card {
    Card {
        id: CardId::new(),
        group: group().id,
        customer_uid: CustomerUid::generate(),
        card_name: "Test Card".into(),
        number_masked: "424242******4242".into(),
        main: true,
        created_at: now(),
    }
}

struct Mocks {
    billing: MockBillingRepository,
    cards: MockCardRepository,
    gateway: MockPaymentGateway,
}

impl Mocks {
    fn new() -> Self {
        let mut billing = MockBillingRepository::new();
        billing.expect_catalogue().returning(|| Ok(Catalogue::seed()));
        Self { billing, cards: MockCardRepository::new(), gateway: MockPaymentGateway::new() }
    }

    fn service(self, role: RoleName) -> PaymentsService {
        let mut groups = MockGroupRepository::new();
        groups.expect_find_for_member().returning(move |_, _| {
            Ok(Some((
                group(),
                Some(Membership {
                    role: role.clone(),
                    status: MembershipStatus::Active,
                    role_permissions: BTreeSet::new(),
                }),
            )))
        });
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let groups = GroupsService::new(Arc::new(groups), GroupsConfig::default(), clock.clone());
        let ports = PaymentsPorts {
            billing: Arc::new(self.billing),
            cards: Arc::new(self.cards),
            usage: Arc::new(MockUsageRepository::new()),
            idempotency: Arc::new(MockIdempotencyRepository::new()),
            gateway: Arc::new(self.gateway),
        };
        PaymentsService::new(ports, groups, clock, PaymentsConfig::default())
    }
}

fn pro() -> PlanRequest {
    PlanRequest {
        plan: PlanCode::from_trusted("pro"),
        interval: Some(Interval::Month),
        addons: vec![],
    }
}

#[tokio::test]
async fn a_change_records_exactly_what_the_preview_announced() {
    let card = card();
    let mut m = Mocks::new();
    m.billing.expect_billing().returning(|_| Ok(None));
    let c = card.clone();
    m.cards.expect_cards().returning(move |_| Ok(vec![c.clone()]));
    m.gateway.expect_schedule().times(1).returning(|_| Ok(()));
    let recorded = Arc::new(std::sync::Mutex::new(None));
    let r = recorded.clone();
    m.billing.expect_commit().times(1).returning(move |commit| {
        *r.lock().expect("lock") = Some(commit.clone());
        Ok(())
    });
    let service = m.service(RoleName::OWNER);
    let slug = Slug::from_trusted("acme");
    let preview = service.preview(&slug, MemberId::new(), &pro()).await.expect("a preview");
    let after = service.change_plan(&group(), &pro()).await.expect("changed");
    let commit = recorded.lock().expect("lock").clone().expect("recorded");
    assert_eq!(preview.billing.status, after.status);
    assert_eq!(preview.billing.trial_ends_at, after.trial_ends_at);
    let (p, c) = (preview.schedule.expect("scheduled"), commit.new_charges[0].clone());
    assert_eq!((p.at, p.money, p.kind, p.card_id), (c.at, c.money, c.kind, c.card_id));
    assert_eq!(commit.billing.next_charge.map(|n| n.merchant_uid), Some(c.merchant_uid));
}

/// The commits the service hands to storage, in order.
type Recorded = Arc<std::sync::Mutex<Vec<BillingCommit>>>;

fn recording(m: &mut Mocks) -> Recorded {
    let recorded: Recorded = Arc::default();
    let r = recorded.clone();
    m.billing.expect_commit().returning(move |commit| {
        r.lock().expect("lock").push(commit.clone());
        Ok(())
    });
    recorded
}

fn pending(card: &Card, kind: ChargeKind, attempt: u32) -> Charge {
    Charge {
        merchant_uid: MerchantUid::from_trusted("ob_pending"),
        group: group().id,
        card_id: card.id,
        customer_uid: card.customer_uid.clone(),
        money: Money::with_vat(75_800),
        at: now() - chrono::Duration::hours(1),
        plan: PlanCode::from_trusted("pro"),
        interval: Interval::Month,
        addons: vec![],
        period_start: now() - chrono::Duration::hours(1),
        kind,
        attempt,
        status: ChargeStatus::Scheduled,
        created_at: now(),
    }
}

/// Mocks for a webhook of `outcome` paying `charge`, the account's pending charge.
fn webhook_of(m: &mut Mocks, card: &Card, charge: &Charge, status: BillingStatus, paid: bool) {
    let mut billing = Billing::free(group().id, 10);
    billing.plan = PlanCode::from_trusted("pro");
    billing.interval = Some(Interval::Month);
    billing.status = status;
    billing.trial_used = true;
    billing.current_period_start = Some(charge.period_start);
    billing.current_period_end = Some(charge.period_start);
    billing.next_charge = Some(charge.clone());
    billing.version = 3;
    m.billing.expect_receipt_exists().returning(|_| Ok(false));
    let c = charge.clone();
    m.billing.expect_charge().returning(move |_| Ok(Some(c.clone())));
    m.billing.expect_billing().returning(move |_| Ok(Some(billing.clone())));
    let main = card.clone();
    m.cards.expect_cards().returning(move |_| Ok(vec![main.clone()]));
    m.gateway.expect_schedule().returning(|_| Ok(()));
    let (uid, amount) = (charge.merchant_uid.to_string(), charge.money.amount);
    m.gateway.expect_payment().returning(move |imp_uid| {
        Ok(Some(Payment {
            imp_uid: imp_uid.to_owned(),
            merchant_uid: uid.clone(),
            customer_uid: None,
            amount,
            status: if paid { PaymentStatus::Paid } else { PaymentStatus::Failed },
            failure_reason: (!paid).then(|| "card declined".to_owned()),
            paid_at: None,
        }))
    });
}

/// The billing events of `records`, typed again.
fn decoded(records: &[Event]) -> Vec<BillingEvent> {
    records.iter().map(|r| r.decode::<BillingEvent>().expect("a billing event")).collect()
}

fn notice_of(uid: &MerchantUid, status: &str) -> WebhookNotice {
    WebhookNotice { imp_uid: "imp_1".into(), merchant_uid: uid.to_string(), status: status.into() }
}

#[tokio::test]
async fn starting_a_trial_tells_the_billing_managers_in_the_same_commit() {
    let mut m = Mocks::new();
    m.billing.expect_billing().returning(|_| Ok(None));
    let c = card();
    m.cards.expect_cards().returning(move |_| Ok(vec![c.clone()]));
    m.gateway.expect_schedule().returning(|_| Ok(()));
    let recorded = recording(&mut m);
    let service = m.service(RoleName::OWNER);
    let after = service.change_plan(&group(), &pro()).await.expect("changed");
    let commits = recorded.lock().expect("lock").clone();
    assert_eq!(commits.len(), 1);
    let ends_on = PaymentsConfig::default().clock.day_of(after.trial_ends_at.expect("a trial"));
    let group_id = group().id;
    assert_eq!(
        decoded(&commits[0].events),
        vec![
            BillingEvent::PlanChanged { group_id, from: "free".into(), to: "pro".into() },
            BillingEvent::TrialStarted { group_id, plan: "Pro".into(), ends_on }
        ]
    );
}

#[tokio::test]
async fn a_paid_first_charge_tells_of_the_payment_only() {
    let mut m = Mocks::new();
    let card = card();
    let charge = pending(&card, ChargeKind::TrialEnd, 0);
    webhook_of(&mut m, &card, &charge, BillingStatus::Trialing, true);
    let recorded = recording(&mut m);
    let service = m.service(RoleName::OWNER);
    let outcome = service.handle_webhook(&notice_of(&charge.merchant_uid, "paid")).await;
    assert_eq!(outcome.expect("handled"), WebhookOutcome::Applied);
    let commits = recorded.lock().expect("lock").clone();
    let receipt_id = commits[0].receipt.as_ref().expect("a receipt").id;
    assert_eq!(
        decoded(&commits[0].events),
        vec![BillingEvent::PaymentSucceeded {
            group_id: group().id,
            plan: "Pro".into(),
            amount: 83_380,
            receipt_id,
        }]
    );
}

#[tokio::test]
async fn a_failed_renewal_tells_of_the_failure_and_the_retry_day() {
    let mut m = Mocks::new();
    let card = card();
    let charge = pending(&card, ChargeKind::Renewal, 0);
    webhook_of(&mut m, &card, &charge, BillingStatus::Active, false);
    let recorded = recording(&mut m);
    let service = m.service(RoleName::OWNER);
    let outcome = service.handle_webhook(&notice_of(&charge.merchant_uid, "failed")).await;
    assert_eq!(outcome.expect("handled"), WebhookOutcome::Applied);
    let commit = recorded.lock().expect("lock")[0].clone();
    let retry = commit.new_charges[0].at;
    assert_eq!(
        decoded(&commit.events),
        vec![BillingEvent::PaymentFailed {
            group_id: group().id,
            plan: "Pro".into(),
            amount: 83_380,
            reason: "card declined".into(),
            retry_at: Some(retry),
            retry_on: Some(PaymentsConfig::default().clock.day_of(retry)),
        }]
    );
}

#[tokio::test]
async fn the_last_failed_retry_tells_of_the_failure_and_the_fall_to_free() {
    let mut m = Mocks::new();
    let card = card();
    let charge = pending(&card, ChargeKind::Retry, 3);
    webhook_of(&mut m, &card, &charge, BillingStatus::PastDue, false);
    let recorded = recording(&mut m);
    let service = m.service(RoleName::OWNER);
    let outcome = service.handle_webhook(&notice_of(&charge.merchant_uid, "failed")).await;
    assert_eq!(outcome.expect("handled"), WebhookOutcome::Applied);
    let commit = recorded.lock().expect("lock")[0].clone();
    assert_eq!(commit.billing.status, BillingStatus::Free);
    let group_id = group().id;
    assert_eq!(
        decoded(&commit.events),
        vec![
            BillingEvent::PaymentFailed {
                group_id,
                plan: "Pro".into(),
                amount: 83_380,
                reason: "card declined".into(),
                retry_at: None,
                retry_on: None,
            },
            BillingEvent::PlanChanged { group_id, from: "pro".into(), to: "free".into() },
            BillingEvent::Downgraded { group_id, from: "Pro".into() },
        ]
    );
}

#[tokio::test]
async fn a_declined_charge_made_at_once_tells_of_the_failure_and_changes_nothing_else() {
    let mut m = Mocks::new();
    let mut used = Billing::free(group().id, 10);
    used.trial_used = true;
    used.version = 2;
    m.billing.expect_billing().returning(move |_| Ok(Some(used.clone())));
    let c = card();
    m.cards.expect_cards().returning(move |_| Ok(vec![c.clone()]));
    m.gateway.expect_charge().returning(|request| {
        Ok(Payment {
            imp_uid: "imp_declined".into(),
            merchant_uid: request.merchant_uid.clone(),
            customer_uid: None,
            amount: request.amount,
            status: PaymentStatus::Failed,
            failure_reason: Some("card declined".into()),
            paid_at: None,
        })
    });
    let recorded = recording(&mut m);
    let service = m.service(RoleName::OWNER);
    let refused = service.change_plan(&group(), &pro()).await;
    assert!(matches!(refused, Err(ChangePlanError::PaymentFailed(_))));
    let commits = recorded.lock().expect("lock").clone();
    // The marker (nothing to tell), then its closing with the failure.
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0].events, vec![]);
    assert_eq!(commits[1].billing.status, BillingStatus::Free);
    assert_eq!(
        decoded(&commits[1].events),
        vec![BillingEvent::PaymentFailed {
            group_id: group().id,
            plan: "Pro".into(),
            amount: 83_380,
            reason: "card declined".into(),
            retry_at: None,
            retry_on: None,
        }]
    );
}

#[tokio::test]
async fn a_cancellation_taking_effect_tells_of_the_fall_to_free() {
    let mut m = Mocks::new();
    let mut canceling = Billing::free(group().id, 10);
    canceling.plan = PlanCode::from_trusted("team");
    canceling.interval = Some(Interval::Year);
    canceling.status = BillingStatus::Canceling;
    canceling.cancel_at_period_end = true;
    canceling.current_period_start = Some(now() - chrono::Duration::days(365));
    canceling.current_period_end = Some(now() - chrono::Duration::hours(1));
    canceling.version = 7;
    m.billing.expect_expired_billings().returning(move |_, _| Ok(vec![canceling.clone()]));
    let recorded = recording(&mut m);
    let service = m.service(RoleName::OWNER);
    assert_eq!(service.expire_periods().await.expect("ran"), 1);
    let commit = recorded.lock().expect("lock")[0].clone();
    assert_eq!(commit.billing.status, BillingStatus::Free);
    let group_id = group().id;
    assert_eq!(
        decoded(&commit.events),
        vec![
            BillingEvent::PlanChanged { group_id, from: "team".into(), to: "free".into() },
            BillingEvent::Downgraded { group_id, from: "Team".into() }
        ]
    );
}

#[tokio::test]
async fn the_trial_ending_job_asks_storage_for_the_due_notice_of_each_near_trial() {
    let mut m = Mocks::new();
    let trial = |ends: DateTime<Utc>| {
        let mut b = Billing::free(GroupId::new(), 10);
        b.plan = PlanCode::from_trusted("pro");
        b.status = BillingStatus::Trialing;
        b.trial_ends_at = Some(ends);
        b.current_period_start = Some(ends - chrono::Duration::days(14));
        b.current_period_end = Some(ends);
        b
    };
    // Ends in 6.5 days: the 7-day notice. Ends in 10 days: nothing yet.
    let soon = trial(now() + chrono::Duration::hours(156));
    let later = trial(now() + chrono::Duration::days(10));
    let found = vec![soon.clone(), later];
    m.billing
        .expect_trials_ending()
        .withf(|from, until, after, _| {
            *from == now() && *until == now() + chrono::Duration::days(30) && after.is_none()
        })
        .times(1)
        .returning(move |_, _, _, _| Ok(found.clone()));
    let (group, end) = (soon.group, soon.trial_ends_at.expect("an end"));
    let ends_on = PaymentsConfig::default().clock.day_of(end);
    m.billing
        .expect_record_trial_ending()
        .withf(move |g, e, days, events| {
            *g == group
                && *e == end
                && *days == 7
                && decoded(events)
                    == [BillingEvent::TrialEnding {
                        group_id: group,
                        plan: "Pro".into(),
                        days: 7,
                        ends_on,
                    }]
        })
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    let service = m.service(RoleName::OWNER);
    assert_eq!(service.notify_trials_ending().await.expect("ran"), 1);
}

#[tokio::test]
async fn a_deleted_groups_schedule_is_cancelled_before_its_key_goes_and_a_refusal_stays() {
    use crate::gateway::Unscheduled;
    use crate::ports::GatewayLeftover;
    let mut m = Mocks::new();
    let leftover = |id, customer: &str, merchant: Option<&str>| GatewayLeftover {
        id,
        customer_uid: customer.to_owned(),
        merchant_uid: merchant.map(str::to_owned),
    };
    let found = vec![
        leftover(1, "cu_a", None),
        leftover(2, "cu_b", None),
        leftover(3, "cu_a", Some("mu_next")),
    ];
    m.billing.expect_gateway_leftovers().times(1).returning(move |_| Ok(found.clone()));
    let mut seq = mockall::Sequence::new();
    m.gateway
        .expect_unschedule()
        .withf(|c, mu| c == "cu_a" && mu == "mu_next")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(Unscheduled::Cancelled));
    m.gateway
        .expect_delete_billing_key()
        .withf(|c| c == "cu_a")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    m.gateway
        .expect_delete_billing_key()
        .withf(|c| c == "cu_b")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(GatewayError::Unavailable("down".to_owned())));
    // Forgotten: the two the gateway agreed to, not the refused one.
    m.billing.expect_forget_leftover().withf(|id| *id == 3).times(1).returning(|_| Ok(()));
    m.billing.expect_forget_leftover().withf(|id| *id == 1).times(1).returning(|_| Ok(()));
    let service = m.service(RoleName::OWNER);
    assert_eq!(service.clean_up_gateway().await.expect("ran"), 2);
}

#[tokio::test]
async fn a_plan_change_needs_billing_manage() {
    let service = Mocks::new().service(RoleName::MEMBER);
    let slug = Slug::from_trusted("acme");
    let refused = service.preview(&slug, MemberId::new(), &pro()).await;
    assert!(matches!(refused, Err(ChangePlanError::Forbidden)));
}

#[tokio::test]
async fn a_scheduling_failure_changes_nothing() {
    let mut m = Mocks::new();
    m.billing.expect_billing().returning(|_| Ok(None));
    let c = card();
    m.cards.expect_cards().returning(move |_| Ok(vec![c.clone()]));
    m.gateway.expect_schedule().returning(|_| Err(GatewayError::Unavailable("down".into())));
    m.billing.expect_commit().never();
    let service = m.service(RoleName::OWNER);
    let refused = service.change_plan(&group(), &pro()).await;
    assert!(matches!(refused, Err(ChangePlanError::GatewayUnavailable)));
}

#[tokio::test]
async fn a_webhook_whose_payment_does_not_match_the_charge_changes_nothing() {
    let mut m = Mocks::new();
    let card = card();
    let charge = Charge {
        merchant_uid: MerchantUid::from_trusted("ob_1"),
        group: group().id,
        card_id: card.id,
        customer_uid: card.customer_uid.clone(),
        money: Money::with_vat(75_800),
        at: now(),
        plan: PlanCode::from_trusted("pro"),
        interval: Interval::Month,
        addons: vec![],
        period_start: now(),
        kind: ChargeKind::Renewal,
        attempt: 0,
        status: ChargeStatus::Scheduled,
        created_at: now(),
    };
    m.billing.expect_receipt_exists().returning(|_| Ok(false));
    m.billing.expect_charge().returning(move |_| Ok(Some(charge.clone())));
    m.gateway.expect_payment().returning(|imp_uid| {
        Ok(Some(Payment {
            imp_uid: imp_uid.to_owned(),
            merchant_uid: "ob_1".into(),
            customer_uid: None,
            amount: 1_000,
            status: PaymentStatus::Paid,
            failure_reason: None,
            paid_at: None,
        }))
    });
    m.billing.expect_commit().never();
    m.gateway.expect_schedule().never();
    let service = m.service(RoleName::OWNER);
    let notice = WebhookNotice {
        imp_uid: "imp_1".into(),
        merchant_uid: "ob_1".into(),
        status: "paid".into(),
    };
    assert_eq!(service.handle_webhook(&notice).await.expect("handled"), WebhookOutcome::Ignored);
}

#[tokio::test]
async fn recovery_rolls_back_a_change_that_stopped_after_the_marks() {
    let mut m = Mocks::new();
    let card = card();
    let old = Charge {
        merchant_uid: MerchantUid::from_trusted("ob_old"),
        group: group().id,
        card_id: CardId::new(),
        customer_uid: CustomerUid::generate(),
        money: Money::with_vat(75_800),
        at: now(),
        plan: PlanCode::from_trusted("pro"),
        interval: Interval::Month,
        addons: vec![],
        period_start: now(),
        kind: ChargeKind::Renewal,
        attempt: 0,
        status: ChargeStatus::Scheduled,
        created_at: now(),
    };
    let change = CardChange {
        id: CardChangeId::new(),
        group: group().id,
        old_card: Some(old.card_id),
        new_card: card.id,
        old_charge: Some(old),
        new_merchant_uid: MerchantUid::from_trusted("ob_new"),
        step: CardChangeStep::Unscheduled,
        created_at: now(),
    };
    let c = change.clone();
    m.cards.expect_unfinished_main_changes().returning(move || Ok(vec![c.clone()]));
    m.cards.expect_card().returning(move |_, _| Ok(Some(card.clone())));
    m.gateway
        .expect_unschedule()
        .withf(|_, uid| uid == "ob_new")
        .times(1)
        .returning(|_, _| Ok(Unscheduled::NothingToCancel));
    m.gateway
        .expect_schedule()
        .withf(|r| r.merchant_uid == "ob_old")
        .times(1)
        .returning(|_| Ok(()));
    m.cards.expect_roll_back_main_change().times(1).returning(|_| Ok(()));
    let service = m.service(RoleName::OWNER);
    assert_eq!(service.recover().await.expect("recovered"), 1);
}
