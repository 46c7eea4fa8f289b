#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use mockall::predicate::eq;
use onboard_groups::ports::MockGroupRepository;
use onboard_groups::{
    Group, GroupName, GroupsConfig, GroupsService, Membership, MembershipStatus, RoleName, Slug,
};
use onboard_kernel::{Clock, GroupId, MemberId, MockClock};

use super::*;
use crate::events::BillingEvent;
use crate::gateway::{ChargeRequest, GatewayError, MockPaymentGateway, Payment, PaymentStatus};
use crate::model::{Card, CardId, CustomerUid, MerchantUid, Money, ReceiptKind, ReceiptStatus};
use crate::ports::MockCardRepository;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time")
}

/// The billing events of `records`, typed again.
fn decoded(records: &[onboard_kernel::events::Event]) -> Vec<BillingEvent> {
    records.iter().map(|r| r.decode::<BillingEvent>().expect("a billing event")).collect()
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

fn payment(request: &ChargeRequest, status: PaymentStatus) -> Payment {
    Payment {
        imp_uid: format!("imp_{}", request.merchant_uid),
        merchant_uid: request.merchant_uid.clone(),
        customer_uid: Some(request.customer_uid.clone()),
        amount: request.amount,
        status,
        failure_reason: (status == PaymentStatus::Failed).then(|| "card declined".to_owned()),
        paid_at: Some(now()),
    }
}

struct Mocks {
    credit: MockSmsCreditRepository,
    cards: MockCardRepository,
    gateway: MockPaymentGateway,
}

impl Mocks {
    fn new() -> Self {
        Self {
            credit: MockSmsCreditRepository::new(),
            cards: MockCardRepository::new(),
            gateway: MockPaymentGateway::new(),
        }
    }

    fn with_main_card(mut self) -> Self {
        self.cards.expect_cards().returning(|_| Ok(vec![card()]));
        self
    }

    fn service(self, role: RoleName) -> SmsCreditService {
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
        let ports = SmsCreditPorts {
            credit: Arc::new(self.credit),
            cards: Arc::new(self.cards),
            gateway: Arc::new(self.gateway),
            idempotency: Arc::new(crate::ports::MockIdempotencyRepository::new()),
        };
        SmsCreditService::new(ports, groups, clock, SmsPrices::default(), Duration::minutes(10))
    }
}

#[tokio::test]
async fn a_paid_purchase_is_recorded_before_the_charge_and_credited_with_its_receipt() {
    let mut m = Mocks::new().with_main_card();
    let mut seq = mockall::Sequence::new();
    m.credit
        .expect_begin_purchase()
        .withf(|p| p.amount == 5_000 && p.status == PurchaseStatus::Pending)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(true));
    m.gateway
        .expect_charge()
        .withf(|r| r.amount == 5_000)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|r| Ok(payment(r, PaymentStatus::Paid)));
    m.credit
        .expect_complete_purchase()
        .withf(|uid, r, events| {
            decoded(events)
                == [BillingEvent::SmsCreditPurchased {
                    group_id: group().id,
                    amount: 5_000,
                    reason: CreditReason::Purchase,
                }]
                && r.merchant_uid == *uid
                && r.kind == ReceiptKind::SmsCredit
                && r.money == Money { amount: 5_000, vat: 455 }
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(5_000));
    let service = m.service(RoleName::OWNER);
    let done = service.purchase(group().id, 5_000).await.expect("purchased");
    assert_eq!(done.balance, 5_000);
    assert_eq!(done.receipt.status, ReceiptStatus::Paid);
}

#[tokio::test]
async fn a_declined_purchase_adds_nothing_and_answers_payment_failed() {
    let mut m = Mocks::new().with_main_card();
    m.credit.expect_begin_purchase().returning(|_| Ok(true));
    m.gateway.expect_charge().returning(|r| Ok(payment(r, PaymentStatus::Failed)));
    m.credit.expect_complete_purchase().never();
    m.credit
        .expect_fail_purchase()
        .withf(|_, reason, _, _| reason == "card declined")
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    let e = m.service(RoleName::OWNER).purchase(group().id, 1_000).await.expect_err("declined");
    assert!(matches!(e, SmsCreditError::PaymentFailed(r) if r == "card declined"));
}

#[tokio::test]
async fn an_unreachable_gateway_leaves_the_purchase_pending_for_reconciliation() {
    let mut m = Mocks::new().with_main_card();
    m.credit.expect_begin_purchase().returning(|_| Ok(true));
    m.gateway.expect_charge().returning(|_| Err(GatewayError::Unavailable("timeout".into())));
    m.credit.expect_complete_purchase().never();
    m.credit.expect_fail_purchase().never();
    let e = m.service(RoleName::OWNER).purchase(group().id, 1_000).await.expect_err("unknown");
    assert!(matches!(e, SmsCreditError::GatewayUnavailable));
}

#[tokio::test]
async fn a_purchase_below_100_krw_or_without_a_main_card_charges_nothing() {
    let mut m = Mocks::new();
    m.cards.expect_cards().returning(|_| Ok(vec![]));
    m.gateway.expect_charge().never();
    m.credit.expect_begin_purchase().never();
    let service = m.service(RoleName::OWNER);
    let small = service.purchase(group().id, 99).await.expect_err("too small");
    assert!(matches!(small, SmsCreditError::Invalid(_)));
    let no_card = service.purchase(group().id, 100).await.expect_err("no card");
    assert!(matches!(no_card, SmsCreditError::NoMainCard));
}

#[tokio::test]
async fn buying_credit_needs_billing_manage() {
    let service = Mocks::new().service(RoleName::MEMBER);
    let e = service.manager_of(&Slug::from_trusted("acme"), MemberId::new()).await;
    assert!(matches!(e, Err(SmsCreditError::Forbidden)));
}

#[tokio::test]
async fn an_auto_top_up_charges_under_the_merchant_uid_of_its_request() {
    let requested_at = now() - Duration::minutes(1);
    let uid = topup_merchant_uid(group().id, requested_at);
    let mut m = Mocks::new().with_main_card();
    m.credit
        .expect_due_topups()
        .returning(move |_| Ok(vec![DueTopup { group: group().id, amount: 2_000, requested_at }]));
    let expected = uid.clone();
    m.credit
        .expect_begin_purchase()
        .withf(move |p| p.merchant_uid == expected && p.reason == CreditReason::AutoTopup)
        .returning(|_| Ok(true));
    m.gateway
        .expect_charge()
        .withf(move |r| r.merchant_uid == uid.as_str() && r.amount == 2_000)
        .times(1)
        .returning(|r| Ok(payment(r, PaymentStatus::Paid)));
    m.credit.expect_complete_purchase().times(1).returning(|_, _, _| Ok(2_500));
    let report = m.service(RoleName::OWNER).run_topups().await.expect("runs");
    assert_eq!(report.topped_up, 1);
}

#[tokio::test]
async fn a_top_up_found_pending_after_a_crash_is_read_back_not_charged_again() {
    let requested_at = now() - Duration::minutes(1);
    let uid = topup_merchant_uid(group().id, requested_at);
    let mut m = Mocks::new().with_main_card();
    m.credit
        .expect_due_topups()
        .returning(move |_| Ok(vec![DueTopup { group: group().id, amount: 2_000, requested_at }]));
    m.credit.expect_begin_purchase().returning(|_| Ok(false));
    m.credit.expect_purchase().with(eq(uid.clone())).returning(move |uid| {
        Ok(Some(CreditPurchase {
            merchant_uid: uid.clone(),
            group: group().id,
            amount: 2_000,
            reason: CreditReason::AutoTopup,
            card: Some((card().id, card().customer_uid)),
            status: PurchaseStatus::Pending,
            created_at: now(),
        }))
    });
    m.gateway.expect_payment_by_merchant_uid().times(1).returning(|uid| {
        let request = ChargeRequest {
            customer_uid: "cu".into(),
            merchant_uid: uid.to_owned(),
            amount: 2_000,
            name: String::new(),
        };
        Ok(Some(payment(&request, PaymentStatus::Paid)))
    });
    m.gateway.expect_charge().never();
    m.credit.expect_complete_purchase().times(1).returning(|_, _, _| Ok(2_000));
    let report = m.service(RoleName::OWNER).run_topups().await.expect("runs");
    assert_eq!(report.topped_up, 1);
}

#[tokio::test]
async fn a_top_up_without_a_main_card_fails_and_charges_nothing() {
    let requested_at = now();
    let mut m = Mocks::new();
    m.cards.expect_cards().returning(|_| Ok(vec![]));
    m.credit
        .expect_due_topups()
        .returning(move |_| Ok(vec![DueTopup { group: group().id, amount: 2_000, requested_at }]));
    m.credit.expect_begin_purchase().returning(|_| Ok(true));
    m.gateway.expect_charge().never();
    m.credit
        .expect_fail_purchase()
        .withf(|_, reason, _, events| {
            decoded(events)
                == [BillingEvent::SmsCreditTopupFailed {
                    group_id: group().id,
                    amount: 2_000,
                    reason: reason.to_owned(),
                }]
        })
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    let report = m.service(RoleName::OWNER).run_topups().await.expect("runs");
    assert_eq!(report.topups_failed, 1);
}

#[test]
fn a_top_up_request_has_one_merchant_uid_and_another_request_another() {
    let g = GroupId::new();
    assert_eq!(topup_merchant_uid(g, now()), topup_merchant_uid(g, now()));
    assert_ne!(topup_merchant_uid(g, now()), topup_merchant_uid(g, now() + Duration::seconds(1)));
    assert_eq!(topup_merchant_uid(g, now()).as_str().len(), 35);
}

#[test]
fn the_vat_of_an_amount_that_includes_it_is_one_eleventh_rounded() {
    assert_eq!(vat_included(11_000), 1_000);
    assert_eq!(vat_included(5_000), 455);
    assert_eq!(vat_included(100), 9);
}

fn pending(reason: CreditReason) -> CreditPurchase {
    CreditPurchase {
        merchant_uid: MerchantUid::from_trusted("ob_pending"),
        group: group().id,
        amount: 3_000,
        reason,
        card: Some((card().id, card().customer_uid)),
        status: PurchaseStatus::Pending,
        created_at: now() - Duration::minutes(30),
    }
}

#[tokio::test]
async fn reconciliation_credits_a_pending_purchase_the_gateway_charged() {
    let mut m = Mocks::new();
    m.credit
        .expect_pending_purchases()
        .withf(|before, _| *before == now() - Duration::minutes(10))
        .returning(|_, _| Ok(vec![pending(CreditReason::Purchase)]));
    m.gateway.expect_payment_by_merchant_uid().returning(|uid| {
        let request = ChargeRequest {
            customer_uid: "cu".into(),
            merchant_uid: uid.to_owned(),
            amount: 3_000,
            name: String::new(),
        };
        Ok(Some(payment(&request, PaymentStatus::Paid)))
    });
    m.gateway.expect_charge().never();
    m.credit.expect_complete_purchase().times(1).returning(|_, _, _| Ok(3_000));
    assert_eq!(m.service(RoleName::OWNER).reconcile().await.expect("runs"), 1);
}

#[tokio::test]
async fn reconciliation_fails_a_purchase_the_gateway_never_saw() {
    let mut m = Mocks::new();
    m.credit.expect_pending_purchases().returning(|_, _| Ok(vec![pending(CreditReason::Purchase)]));
    m.gateway.expect_payment_by_merchant_uid().returning(|_| Ok(None));
    m.credit.expect_complete_purchase().never();
    m.credit
        .expect_fail_purchase()
        .withf(|_, _, _, events| events.is_empty())
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    assert_eq!(m.service(RoleName::OWNER).reconcile().await.expect("runs"), 1);
}

#[tokio::test]
async fn reconciliation_leaves_an_unseen_top_up_to_the_top_up_run() {
    let mut m = Mocks::new();
    m.credit
        .expect_pending_purchases()
        .returning(|_, _| Ok(vec![pending(CreditReason::AutoTopup)]));
    m.gateway.expect_payment_by_merchant_uid().returning(|_| Ok(None));
    m.credit.expect_fail_purchase().never();
    assert_eq!(m.service(RoleName::OWNER).reconcile().await.expect("runs"), 0);
}

#[tokio::test]
async fn a_top_up_whose_payment_cannot_be_read_back_waits_for_the_next_run() {
    let requested_at = now();
    let mut m = Mocks::new().with_main_card();
    m.credit.expect_due_topups().returning(move |_| {
        Ok(vec![
            DueTopup { group: group().id, amount: 2_000, requested_at },
            DueTopup { group: group().id, amount: 2_000, requested_at },
        ])
    });
    m.credit.expect_begin_purchase().returning(|_| Ok(false));
    m.credit.expect_purchase().returning(move |uid| {
        Ok(Some(CreditPurchase {
            merchant_uid: uid.clone(),
            group: group().id,
            amount: 2_000,
            reason: CreditReason::AutoTopup,
            card: Some((card().id, card().customer_uid)),
            status: PurchaseStatus::Pending,
            created_at: now(),
        }))
    });
    m.gateway
        .expect_payment_by_merchant_uid()
        .times(2)
        .returning(|_| Err(GatewayError::Unavailable("down".into())));
    m.gateway.expect_charge().never();
    m.credit.expect_fail_purchase().never();
    let report = m.service(RoleName::OWNER).run_topups().await.expect("runs on");
    assert_eq!(report, CreditReport::default());
}
