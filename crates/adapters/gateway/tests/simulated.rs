//! The simulated gateway: test cards, charges, schedules, webhooks and faults.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use onboard_gateway::{ExecuteError, Op, RegisterCardError, SimCard, SimOutcome, SimulatedGateway};
use onboard_kernel::MockClock;
use onboard_payments::gateway::{
    ChargeRequest, GatewayError, MockWebhookSink, Payment, PaymentGateway, PaymentStatus,
    ScheduleRequest, Unscheduled, WebhookNotice, WebhookSink,
};

const PAYS: &str = "4242 4242 4242 4242";
const DECLINES: &str = "4000-0000-0000-0002";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).single().expect("valid")
        + chrono::Duration::microseconds(123_456)
}

fn gateway() -> Arc<SimulatedGateway> {
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    Arc::new(SimulatedGateway::new(Arc::new(clock)))
}

fn card(number: &str) -> SimCard {
    SimCard::new(number, "2030-12", "900101", Some("12"))
}

fn with_card(number: &str) -> Arc<SimulatedGateway> {
    let sim = gateway();
    sim.register_card("cust_1", card(number)).expect("a test card");
    sim
}

fn charge(merchant_uid: &str) -> ChargeRequest {
    ChargeRequest {
        customer_uid: "cust_1".into(),
        merchant_uid: merchant_uid.into(),
        amount: 83_380,
        name: "Onboard Pro (monthly)".into(),
    }
}

fn schedule(customer_uid: &str, merchant_uid: &str, at: DateTime<Utc>) -> ScheduleRequest {
    ScheduleRequest {
        customer_uid: customer_uid.into(),
        merchant_uid: merchant_uid.into(),
        at,
        amount: 83_380,
        name: "Onboard Pro (monthly)".into(),
    }
}

/// Records each notice with the payment the gateway reports for it at delivery time.
#[derive(Default)]
struct RecordingSink {
    gateway: Mutex<Weak<SimulatedGateway>>,
    seen: Mutex<Vec<(WebhookNotice, Option<Payment>)>>,
}

#[async_trait]
impl WebhookSink for RecordingSink {
    async fn deliver(&self, notice: WebhookNotice) -> anyhow::Result<()> {
        let gateway = self.gateway.lock().expect("lock").upgrade();
        let read_back = match gateway {
            Some(g) => g.payment(&notice.imp_uid).await?,
            None => None,
        };
        self.seen.lock().expect("lock").push((notice, read_back));
        Ok(())
    }
}

fn recording(sim: &Arc<SimulatedGateway>) -> Arc<RecordingSink> {
    let sink = Arc::new(RecordingSink::default());
    *sink.gateway.lock().expect("lock") = Arc::downgrade(sim);
    sim.set_webhook_sink(sink.clone());
    sink
}

#[tokio::test]
async fn a_test_card_registers_and_only_its_masked_number_is_kept() {
    let sim = gateway();
    let key = sim.register_card("cust_1", card("4242-4242 4242-4242")).expect("registers");
    assert_eq!(key.number_masked, "424242******4242");
    assert_eq!(key.card_name, "Test Card");
    assert_eq!(sim.billing_key("cust_1").await.expect("answers"), Some(key));
    let debug = format!("{sim:?} {:?}", card(PAYS));
    for secret in ["4242424242424242", "4242 4242 4242 4242", "2030-12", "900101"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[tokio::test]
async fn any_other_card_is_refused_at_registration() {
    let sim = gateway();
    assert!(matches!(
        sim.register_card("cust_1", card("5555 5555 5555 4444")),
        Err(RegisterCardError::Declined)
    ));
    let invalid = |card: SimCard| match sim.register_card("cust_1", card) {
        Err(RegisterCardError::Invalid { field, .. }) => field,
        other => panic!("expected invalid, got {other:?}"),
    };
    assert_eq!(invalid(card("4242 abcd")), "card_number");
    assert_eq!(invalid(SimCard::new(PAYS, "2030-13", "900101", None)), "expiry");
    assert_eq!(invalid(SimCard::new(PAYS, "2030-12", "9001", None)), "birth");
    assert_eq!(invalid(SimCard::new(PAYS, "2030-12", "900101", Some("1"))), "pwd_2digit");
    assert!(matches!(
        sim.register_card("", card(PAYS)),
        Err(RegisterCardError::Invalid { field: "customer_uid", .. })
    ));
    assert_eq!(sim.billing_key("cust_1").await.expect("answers"), None);
    // A corporate card: no PIN digits, a business registration number.
    sim.register_card("cust_2", SimCard::new(PAYS, "2030-12", "1234567890", None))
        .expect("registers");
}

#[tokio::test]
async fn a_charge_on_the_paying_card_is_paid_and_reads_back() {
    let sim = with_card(PAYS);
    let payment = sim.charge(&charge("m_1")).await.expect("an answer");
    assert_eq!(payment.status, PaymentStatus::Paid);
    assert_eq!(payment.amount, 83_380);
    assert_eq!(payment.customer_uid.as_deref(), Some("cust_1"));
    assert_eq!(payment.failure_reason, None);
    assert_eq!(payment.paid_at, DateTime::from_timestamp(now().timestamp(), 0));
    assert!(payment.imp_uid.starts_with("imp_"));
    assert_eq!(sim.payment(&payment.imp_uid).await.expect("answers"), Some(payment));
    assert_eq!(sim.payment("imp_unknown").await.expect("answers"), None);
}

#[tokio::test]
async fn a_charge_on_the_declining_card_is_a_failed_payment() {
    let sim = with_card(DECLINES);
    let payment = sim.charge(&charge("m_1")).await.expect("a decline is an answer");
    assert_eq!(payment.status, PaymentStatus::Failed);
    assert!(payment.failure_reason.is_some());
    assert_eq!(payment.paid_at, None);
    assert_eq!(sim.payment(&payment.imp_uid).await.expect("answers"), Some(payment));
}

#[tokio::test]
async fn a_charge_without_a_billing_key_is_refused() {
    let sim = gateway();
    let err = sim.charge(&charge("m_1")).await.expect_err("no key");
    assert!(matches!(err, GatewayError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn a_paid_merchant_uid_is_neither_charged_nor_scheduled_again() {
    let sim = with_card(PAYS);
    sim.charge(&charge("m_1")).await.expect("paid");
    assert!(matches!(sim.charge(&charge("m_1")).await, Err(GatewayError::Rejected { .. })));
    assert!(matches!(
        sim.schedule(&schedule("cust_1", "m_1", now())).await,
        Err(GatewayError::Rejected { .. })
    ));
}

#[tokio::test]
async fn a_failed_merchant_uid_may_be_charged_again() {
    let sim = with_card(DECLINES);
    sim.charge(&charge("m_1")).await.expect("declined");
    sim.register_card("cust_1", card(PAYS)).expect("replaced");
    let retry = sim.charge(&charge("m_1")).await.expect("an answer");
    assert_eq!(retry.status, PaymentStatus::Paid);
}

#[tokio::test]
async fn a_merchant_uid_is_scheduled_at_most_once() {
    let sim = with_card(PAYS);
    let at = now() + chrono::Duration::days(14);
    sim.schedule(&schedule("cust_1", "m_1", at)).await.expect("scheduled");
    let err = sim.schedule(&schedule("cust_1", "m_1", at)).await.expect_err("duplicate");
    assert!(matches!(err, GatewayError::Rejected { .. }), "{err:?}");
    let held = sim.scheduled();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].merchant_uid, "m_1");
    assert_eq!(held[0].at, DateTime::from_timestamp(at.timestamp(), 0).expect("valid"));
    assert_eq!(held[0].amount, 83_380);
}

#[tokio::test]
async fn scheduling_without_a_billing_key_is_refused() {
    let sim = gateway();
    let err = sim.schedule(&schedule("cust_1", "m_1", now())).await.expect_err("no key");
    assert!(matches!(err, GatewayError::Rejected { .. }), "{err:?}");
    assert!(sim.scheduled().is_empty());
}

#[tokio::test]
async fn unscheduling_cancels_once_then_finds_nothing() {
    let sim = with_card(PAYS);
    sim.schedule(&schedule("cust_1", "m_1", now())).await.expect("scheduled");
    assert_eq!(
        sim.unschedule("cust_2", "m_1").await.expect("answers"),
        Unscheduled::NothingToCancel
    );
    assert_eq!(sim.scheduled().len(), 1, "another customer's schedule stays");
    assert_eq!(sim.unschedule("cust_1", "m_1").await.expect("answers"), Unscheduled::Cancelled);
    assert_eq!(
        sim.unschedule("cust_1", "m_1").await.expect("answers"),
        Unscheduled::NothingToCancel
    );
    assert!(sim.scheduled().is_empty());
}

#[tokio::test]
async fn executing_a_schedule_records_the_payment_before_notifying_the_sink() {
    let sim = with_card(PAYS);
    let sink = recording(&sim);
    sim.schedule(&schedule("cust_1", "m_1", now() + chrono::Duration::days(30)))
        .await
        .expect("scheduled");
    let payment = sim.execute("m_1", SimOutcome::Paid).await.expect("executed");
    assert_eq!(payment.status, PaymentStatus::Paid);
    assert_eq!(payment.merchant_uid, "m_1");
    assert!(sim.scheduled().is_empty());
    let seen = sink.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let (notice, read_back) = &seen[0];
    assert_eq!(
        notice,
        &WebhookNotice {
            imp_uid: payment.imp_uid.clone(),
            merchant_uid: "m_1".into(),
            status: "paid".into(),
        }
    );
    assert_eq!(read_back.as_ref(), Some(&payment));
}

#[tokio::test]
async fn a_schedule_executed_as_failed_notifies_a_failed_payment() {
    let sim = with_card(PAYS);
    let mut sink = MockWebhookSink::new();
    sink.expect_deliver()
        .withf(|n| n.merchant_uid == "m_1" && n.status == "failed")
        .times(1)
        .returning(|_| Ok(()));
    sim.set_webhook_sink(Arc::new(sink));
    sim.schedule(&schedule("cust_1", "m_1", now())).await.expect("scheduled");
    let payment = sim.execute("m_1", SimOutcome::Failed).await.expect("executed");
    assert_eq!(payment.status, PaymentStatus::Failed);
    assert!(payment.failure_reason.is_some());
    assert_eq!(sim.payment(&payment.imp_uid).await.expect("answers"), Some(payment));
}

#[tokio::test]
async fn a_schedule_runs_at_most_once() {
    let sim = with_card(PAYS);
    sim.schedule(&schedule("cust_1", "m_1", now())).await.expect("scheduled");
    sim.execute("m_1", SimOutcome::Paid).await.expect("executed");
    assert!(matches!(sim.execute("m_1", SimOutcome::Paid).await, Err(ExecuteError::NotScheduled)));
    assert!(matches!(
        sim.execute("m_never", SimOutcome::Paid).await,
        Err(ExecuteError::NotScheduled)
    ));
    assert!(sim.run_due(now() + chrono::Duration::days(365)).await.is_empty());
}

#[tokio::test]
async fn without_a_sink_an_execution_is_still_recorded() {
    let sim = with_card(PAYS);
    sim.schedule(&schedule("cust_1", "m_1", now())).await.expect("scheduled");
    let payment = sim.execute_by_card("m_1").await.expect("executed");
    assert_eq!(payment.status, PaymentStatus::Paid);
    assert_eq!(sim.payment(&payment.imp_uid).await.expect("answers"), Some(payment));
}

#[tokio::test]
async fn due_schedules_run_by_card_and_later_ones_wait() {
    let sim = gateway();
    let sink = recording(&sim);
    sim.register_card("cust_pays", card(PAYS)).expect("registers");
    sim.register_card("cust_declines", card(DECLINES)).expect("registers");
    sim.register_card("cust_deleted", card(PAYS)).expect("registers");
    let due = now() - chrono::Duration::seconds(1);
    sim.schedule(&schedule("cust_pays", "m_a", due)).await.expect("scheduled");
    sim.schedule(&schedule("cust_declines", "m_b", due)).await.expect("scheduled");
    sim.schedule(&schedule("cust_deleted", "m_c", due)).await.expect("scheduled");
    sim.schedule(&schedule("cust_pays", "m_later", now() + chrono::Duration::hours(1)))
        .await
        .expect("scheduled");
    sim.delete_billing_key("cust_deleted").await.expect("deleted");
    sim.delete_billing_key("cust_deleted").await.expect("deleting again is fine");

    let ran = sim.run_due(now()).await;
    let outcome = |m: &str| ran.iter().find(|p| p.merchant_uid == m).map(|p| p.status);
    assert_eq!(ran.len(), 3);
    assert_eq!(outcome("m_a"), Some(PaymentStatus::Paid));
    assert_eq!(outcome("m_b"), Some(PaymentStatus::Failed));
    assert_eq!(outcome("m_c"), Some(PaymentStatus::Failed));
    assert_eq!(sink.seen.lock().expect("lock").len(), 3);
    let left = sim.scheduled();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].merchant_uid, "m_later");
}

#[tokio::test]
async fn the_executor_runs_due_charges_by_itself() {
    let sim = with_card(PAYS);
    let sink = recording(&sim);
    sim.schedule(&schedule("cust_1", "m_due", now())).await.expect("scheduled");
    let executor = sim.spawn_executor(Duration::from_millis(10));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sink.seen.lock().expect("lock").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the executor never ran the charge");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = sink.seen.lock().expect("lock").clone();
    assert_eq!(seen[0].0.merchant_uid, "m_due");
    assert_eq!(seen[0].0.status, "paid");
    executor.abort();
}

#[tokio::test]
async fn an_injected_fault_fails_the_next_call_only_and_changes_nothing() {
    let sim = with_card(PAYS);

    sim.fail_next(Op::Schedule);
    let err = sim.schedule(&schedule("cust_1", "m_1", now())).await.expect_err("fault");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
    assert!(sim.scheduled().is_empty());
    sim.schedule(&schedule("cust_1", "m_1", now())).await.expect("next call works");

    sim.fail_next(Op::Unschedule);
    assert!(matches!(sim.unschedule("cust_1", "m_1").await, Err(GatewayError::Unavailable(_))));
    assert_eq!(sim.scheduled().len(), 1);
    assert_eq!(sim.unschedule("cust_1", "m_1").await.expect("answers"), Unscheduled::Cancelled);

    sim.fail_next(Op::Charge);
    sim.fail_next(Op::Charge);
    assert!(matches!(sim.charge(&charge("m_2")).await, Err(GatewayError::Unavailable(_))));
    assert!(matches!(sim.charge(&charge("m_2")).await, Err(GatewayError::Unavailable(_))));
    let paid = sim.charge(&charge("m_2")).await.expect("faults used up");
    assert_eq!(paid.status, PaymentStatus::Paid);
}

#[test]
fn the_client_configuration_says_simulated() {
    let sim = gateway();
    assert_eq!(
        sim.client_config(),
        serde_json::json!({ "merchant_id": SimulatedGateway::MERCHANT_ID, "pg": "simulated" })
    );
}
